"""Users and the three kinds of membership a user can hold.

A user is a global identity (one email address). What they may do comes
from memberships: in a force (force admin, officer, supervisor: force-owned
rows, under every isolation layer), in a provider (provider staff) or on the
platform itself (platform admin, national lead).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from diversion.db import Base, TenantScoped, UTCDateTime, new_id, utcnow


class Role(enum.StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    FORCE_ADMIN = "force_admin"
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    PROVIDER_STAFF = "provider_staff"
    NATIONAL_LEAD = "national_lead"

    @property
    def label(self) -> str:
        return str(_ROLE_LABELS[self])

    @property
    def with_article(self) -> str:
        """"an officer", "a supervisor": the role in a sentence, in the reader's language."""
        return str(_ROLES_IN_A_SENTENCE[self])


class ProviderRole(enum.StrEnum):
    """What a user may do for a provider: staff work referrals; admins also manage integrations."""

    STAFF = "staff"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return str(_l("Staff") if self is ProviderRole.STAFF else _l("Admin"))


_ROLE_LABELS = {
    Role.PLATFORM_ADMIN: _l("Platform admin"), Role.FORCE_ADMIN: _l("Force admin"), Role.OFFICER: _l("Officer"),
    Role.SUPERVISOR: _l("Supervisor"), Role.PROVIDER_STAFF: _l("Provider staff"),
    Role.NATIONAL_LEAD: _l("National lead"),
}
_ROLES_IN_A_SENTENCE = {
    Role.PLATFORM_ADMIN: _l("a platform admin"), Role.FORCE_ADMIN: _l("a force admin"),
    Role.OFFICER: _l("an officer"), Role.SUPERVISOR: _l("a supervisor"),
    Role.PROVIDER_STAFF: _l("a member of provider staff"), Role.NATIONAL_LEAD: _l("a national lead"),
}
FORCE_ROLES = (Role.FORCE_ADMIN, Role.OFFICER, Role.SUPERVISOR)
PLATFORM_ROLES = (Role.PLATFORM_ADMIN, Role.NATIONAL_LEAD)


def _role_enum(name: str) -> Enum:
    return Enum(Role, name=name, native_enum=False, validate_strings=True, length=32,
                values_callable=lambda roles: [role.value for role in roles])


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # None for users who only sign in through their force's identity provider.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # Part of the session cookie: bumping it ends every existing session.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_signed_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The language the person chose to read pages in ("en" or "cy"); None until they choose.
    language: Mapped[str | None] = mapped_column(String(2))

    platform_grants: Mapped[list[PlatformGrant]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def person(self) -> User:
        """Who acts, when this user acts (see ``accounts.access``)."""
        return self

    @property
    def platform_roles(self) -> frozenset[Role]:
        return frozenset(grant.role for grant in self.platform_grants)

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class ForceMembership(TenantScoped, Base):
    """A user's role in one force. One row per (force, user, role)."""

    __tablename__ = "force_memberships"
    __tenant_table_args__ = (UniqueConstraint("tenant_id", "user_id", "role"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(_role_enum("force_role"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User] = relationship()


class ProviderMembership(Base):
    """Provider staff: one login that works for the provider in every force it serves."""

    __tablename__ = "provider_memberships"
    __table_args__ = (UniqueConstraint("provider_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[ProviderRole] = mapped_column(
        Enum(ProviderRole, name="provider_role", native_enum=False, validate_strings=True, length=16,
             values_callable=lambda roles: [role.value for role in roles]),
        default=ProviderRole.STAFF, server_default=ProviderRole.STAFF.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PlatformGrant(Base):
    """A platform-wide role: platform admin or national lead."""

    __tablename__ = "platform_grants"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(_role_enum("platform_role"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User] = relationship(back_populates="platform_grants")
