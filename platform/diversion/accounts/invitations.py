"""Invitations: a person asked by email to take a role in a force or a provider.

An invitation is a single-use link that lasts ``INVITATION_DAYS`` days. Its
token is made here, shown once to whoever invites (and, when ``MAIL_SERVER``
is set, emailed to the person by a job: ``accounts.mail``) and never kept:
the table holds its SHA-256 only, so a copy of the database opens nobody's
invitation. Taking one up (``take_up_force_invitation``,
``take_up_provider_invitation``) marks it used and gives the role; a used,
expired or withdrawn link opens nothing.

Who may invite:

- a force admin, anyone to their force, with any force role;
- a provider admin, anyone to their provider, as staff or admin;
- a platform admin, the admin of any force or any provider (its first one,
  usually: a force being onboarded, a new provider).

Force invitations belong to their force (``TenantScoped``: every isolation
layer holds); provider invitations are global rows like provider
memberships, found by their token's hash alone.

Nothing here matches a person by email address: an invitation is taken up
through its own link, by the account the caller has established (one signed
in with the invited address, one made from the link, or one the force's
sign-on vouches for).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from flask import current_app, has_request_context, url_for
from flask_babel import gettext as _
from sqlalchemy import Enum, ForeignKey, Select, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from diversion.accounts import mail
from diversion.accounts.access import Action, may, require, user_id_of
from diversion.accounts.models import FORCE_ROLES, ForceMembership, ProviderMembership, ProviderRole, Role, User
from diversion.accounts.services import AccountError, normalise_email
from diversion.audit.services import record
from diversion.db import Base, TenantScoped, UTCDateTime, new_id, utcnow
from diversion.extensions import db
from diversion.tenancy.models import Tenant
from diversion.words import current_language

if TYPE_CHECKING:
    from diversion.accounts.access import Actor
    from diversion.catalogue.models import Provider

INVITATION_DAYS = 7
TOKEN_BYTES = 32  # 256 bits: never guessed, so never rate-limited
MAX_NAME_LENGTH = 200


def _force_role_enum() -> Enum:
    return Enum(Role, name="invitation_role", native_enum=False, validate_strings=True, length=32,
                values_callable=lambda roles: [role.value for role in roles])


def _provider_role_enum() -> Enum:
    return Enum(ProviderRole, name="invitation_provider_role", native_enum=False, validate_strings=True,
                length=16, values_callable=lambda roles: [role.value for role in roles])


class _Invitation:
    """What both kinds of invitation hold."""

    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    token_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the token, hex; never the token
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Who took it up (the account that now holds the role).
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def expired(self) -> bool:
        return self.expires_at <= utcnow()

    @property
    def usable(self) -> bool:
        return self.used_at is None and not self.expired


class ForceInvitation(_Invitation, TenantScoped, Base):
    """A person asked to take a role in a force (the force's own row)."""

    __tablename__ = "force_invitations"
    __tenant_table_args__ = (UniqueConstraint("tenant_id", "token_hash"),)

    role: Mapped[Role] = mapped_column(_force_role_enum())

    tenant: Mapped[Tenant] = relationship()

    @property
    def role_label(self) -> str:
        return self.role.label


class ProviderInvitation(_Invitation, Base):
    """A person asked to work for a provider (a global row, like provider memberships)."""

    __tablename__ = "provider_invitations"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), index=True)
    role: Mapped[ProviderRole] = mapped_column(_provider_role_enum())

    provider: Mapped[Provider] = relationship()

    @property
    def role_label(self) -> str:
        return self.role.label


Invitation = ForceInvitation | ProviderInvitation


def hash_token(token: str) -> str:
    """What is kept of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise AccountError("name", _("Enter the person's name."))
    if len(cleaned) > MAX_NAME_LENGTH:
        raise AccountError("name", _("The name must be %(count)s characters or fewer.", count=MAX_NAME_LENGTH))
    return cleaned


def _looks_like_token(token: str) -> bool:
    return 0 < len(token) <= 200 and token.isascii() and token.isprintable()


# ---------------------------------------------------------------- forces

def invite_to_force(tenant: Tenant, *, email: str, name: str, role: Role,
                    actor: Actor) -> tuple[ForceInvitation, str]:
    """Invite a person to take ``role`` in ``tenant`` (the force in scope); the
    invitation and its token, to be shown once (only its hash is kept).

    An earlier unused invitation of the same address to this force is
    replaced: its link stops working. When ``MAIL_SERVER`` is set, the link
    is emailed once the change is committed (``accounts.mail``).

    Refuses an actor who may manage neither this force's members nor users;
    a platform admin (who manages users, not the force's members) inviting
    anyone but a force admin; a role that is not a force role; an invalid
    address; a blank name; a person who already holds the role here; and,
    when the actor manages the force's members, an officer or supervisor
    here invited as an officer or supervisor (one who works cases changes
    role on the members page; a force admin's role and a casework role are
    held side by side, so either may be invited to the other).
    """
    require(actor, Action.MANAGE_MEMBERS, Action.MANAGE_USERS, tenant_id=tenant.id)
    if role not in FORCE_ROLES:
        raise AccountError("role", _("Choose a role within a force."))
    if role is not Role.FORCE_ADMIN and not may(actor, Action.MANAGE_MEMBERS, tenant_id=tenant.id):
        raise AccountError("role", _("The platform team invites a force's admins only; its admins invite the rest."))
    email = normalise_email(email)
    name = _clean_name(name)
    held = db.session.scalar(select(ForceMembership.id).join(User, User.id == ForceMembership.user_id).where(
        User.email == email, ForceMembership.role == role))
    if held is not None:
        raise AccountError("email", _("The person with this address is already %(role)s here.", role=role.with_article))
    if role in CASEWORK_ROLES and may(actor, Action.MANAGE_MEMBERS, tenant_id=tenant.id):
        _refuse_a_caseworker(tenant, email)
    replaced = db.session.scalars(select(ForceInvitation.id).where(
        ForceInvitation.email == email, ForceInvitation.used_at.is_(None))).all()
    if replaced:
        db.session.execute(delete(ForceInvitation).where(ForceInvitation.id.in_(replaced)))
    token, digest = _new_token()
    invitation = ForceInvitation(tenant_id=tenant.id, email=email, name=name, role=role, token_hash=digest,
                                 expires_at=utcnow() + timedelta(days=INVITATION_DAYS),
                                 invited_by_id=user_id_of(actor))
    db.session.add(invitation)
    db.session.flush()
    record("invitation.created", actor=actor, tenant_id=tenant.id, object_type="invitation",
           object_id=invitation.id, details={"email": email, "role": role.value,
                                             "replaced": [str(each) for each in replaced]})
    _mail(invitation, token, organisation=tenant.name_in(current_language()))  # in the inviter's language
    return invitation, token


CASEWORK_ROLES = frozenset({Role.OFFICER, Role.SUPERVISOR})  # a supervisor does all an officer does


def _refuse_a_caseworker(tenant: Tenant, email: str) -> None:
    """Refuses ``email`` (normalised) when its person is an officer or supervisor in the force in scope,
    naming the roles they hold there."""
    held = db.session.execute(select(User.name, ForceMembership.role).join(User, User.id == ForceMembership.user_id)
                              .where(User.email == email).order_by(ForceMembership.role)).all()
    if any(role in CASEWORK_ROLES for _name, role in held):
        raise AccountError("email", _(
            "%(name)s is already a member of %(force)s, as %(roles)s. To change their role, use Change role "
            "beside their name on the members page.",
            name=held[0].name, force=tenant.name_in(current_language()),
            roles=str(_(" and ")).join(role.with_article for _name, role in held)))


def roles_held(email: str) -> list[Role]:
    """The roles the person with ``email`` holds in the force in scope (none for a newcomer). Refuses an
    invalid address."""
    return list(db.session.scalars(select(ForceMembership.role).join(User, User.id == ForceMembership.user_id)
                                   .where(User.email == normalise_email(email)).order_by(ForceMembership.role)))


def earlier_force_invitation(email: str) -> ForceInvitation | None:
    """The unused invitation of ``email`` to the force in scope that inviting the address again would
    replace (its link would stop working), if there is one. Refuses an invalid address."""
    return db.session.scalar(select(ForceInvitation).where(
        ForceInvitation.email == normalise_email(email), ForceInvitation.used_at.is_(None)))


_Kind = TypeVar("_Kind", ForceInvitation, ProviderInvitation)


def _find(kind: type[_Kind], token: str, *, usable_only: bool) -> _Kind | None:
    if not _looks_like_token(token):
        return None
    invitation = db.session.scalar(select(kind).where(kind.token_hash == hash_token(token)))
    return None if invitation is None or (usable_only and not invitation.usable) else invitation


def find_force_invitation(token: str) -> ForceInvitation | None:
    """The invitation of the force in scope with this token, used or expired too; None when there is none."""
    return _find(ForceInvitation, token, usable_only=False)


def open_force_invitation(token: str) -> ForceInvitation | None:
    """The invitation of the force in scope with this token, if it can still be
    taken up (neither used nor expired); else None."""
    return _find(ForceInvitation, token, usable_only=True)


def _taken_up(invitation: Invitation, user: User) -> None:
    if not invitation.usable:
        raise AccountError("invitation", _("This invitation has been used or has expired."))
    if not user.active:
        raise AccountError("invitation", _("This account is deactivated: ask the platform team."))
    invitation.used_at = utcnow()
    invitation.used_by_id = user.id


def take_up_force_invitation(invitation: ForceInvitation, user: User) -> ForceMembership:
    """Give ``user`` the invitation's role in its force (the force in scope) and
    mark the invitation used; the membership (the one held already, if any).

    The invitation is the authority: no other right is asked. The caller has
    established that ``user`` is the one the link was given to (signed in
    with the invited address, an account just made from the link, or the
    force's sign-on); the addresses are not compared here.

    Refuses a used or expired invitation and a deactivated account.
    """
    _taken_up(invitation, user)
    membership = db.session.scalar(select(ForceMembership).where(
        ForceMembership.user_id == user.id, ForceMembership.role == invitation.role))
    if membership is None:
        membership = ForceMembership(tenant_id=invitation.tenant_id, user_id=user.id, role=invitation.role)
        db.session.add(membership)
    db.session.flush()
    record("invitation.taken_up", actor=user, tenant_id=invitation.tenant_id, object_type="invitation",
           object_id=invitation.id, details={"user_id": user.id, "role": invitation.role.value})
    record("membership.added", actor=user, tenant_id=invitation.tenant_id, object_type="membership",
           object_id=membership.id, details={"user_id": user.id, "role": invitation.role.value,
                                             "invitation": str(invitation.id)})
    return membership


def pending_force_invitations(tenant: Tenant) -> Sequence[ForceInvitation]:
    """The force's invitations not yet taken up (expired ones too), newest first (the force in scope)."""
    return db.session.scalars(select(ForceInvitation).where(ForceInvitation.used_at.is_(None))
                              .order_by(ForceInvitation.created_at.desc())).all()


def withdraw_force_invitation(tenant: Tenant, invitation: ForceInvitation, *, actor: Actor) -> None:
    """Withdraw an invitation not yet taken up: its link stops working.

    Refuses an actor who may manage neither this force's members nor users,
    and an invitation already taken up.
    """
    require(actor, Action.MANAGE_MEMBERS, Action.MANAGE_USERS, tenant_id=tenant.id)
    if invitation.used_at is not None:
        raise AccountError("invitation", _("%(name)s has already accepted this invitation.", name=invitation.name))
    db.session.delete(invitation)
    db.session.flush()
    record("invitation.withdrawn", actor=actor, tenant_id=tenant.id, object_type="invitation",
           object_id=invitation.id, details={"email": invitation.email, "role": invitation.role.value})


# ---------------------------------------------------------------- providers

def invite_to_provider(provider: Provider, *, email: str, name: str, role: ProviderRole,
                       actor: Actor) -> tuple[ProviderInvitation, str]:
    """Invite a person to work for ``provider`` as ``role``; the invitation and
    its token, to be shown once (only its hash is kept).

    An earlier unused invitation of the same address to this provider is
    replaced. When ``MAIL_SERVER`` is set, the link is emailed once the
    change is committed.

    Refuses an actor who may manage neither the provider's people nor users;
    a platform admin inviting anyone but a provider admin; an invalid
    address; a blank name; and a person who already works for the provider.
    """
    require(actor, Action.MANAGE_PROVIDER_PEOPLE, Action.MANAGE_USERS, provider_id=provider.id)
    if not isinstance(role, ProviderRole):
        raise AccountError("role", _("Choose staff or admin."))
    if role is not ProviderRole.ADMIN and not may(actor, Action.MANAGE_PROVIDER_PEOPLE, provider_id=provider.id):
        raise AccountError("role", _("The platform team invites a provider's admins only; its admins invite the rest."))
    email = normalise_email(email)
    name = _clean_name(name)
    held = db.session.scalar(select(ProviderMembership.id).join(User, User.id == ProviderMembership.user_id).where(
        User.email == email, ProviderMembership.provider_id == provider.id))
    if held is not None:
        raise AccountError("email", _("The person with this address already works for %(provider)s.",
                                      provider=provider.name))
    replaced = db.session.scalars(select(ProviderInvitation.id).where(
        ProviderInvitation.provider_id == provider.id, ProviderInvitation.email == email,
        ProviderInvitation.used_at.is_(None))).all()
    if replaced:
        db.session.execute(delete(ProviderInvitation).where(ProviderInvitation.id.in_(replaced)))
    token, digest = _new_token()
    invitation = ProviderInvitation(provider_id=provider.id, email=email, name=name, role=role, token_hash=digest,
                                    expires_at=utcnow() + timedelta(days=INVITATION_DAYS),
                                    invited_by_id=user_id_of(actor))
    db.session.add(invitation)
    db.session.flush()
    record("provider_invitation.created", actor=actor, tenant_id=None, object_type="provider_invitation",
           object_id=invitation.id, details={"provider_id": provider.id, "email": email, "role": role.value,
                                             "replaced": [str(each) for each in replaced]})
    _mail(invitation, token, organisation=provider.name)
    return invitation, token


def earlier_provider_invitation(provider: Provider, email: str) -> ProviderInvitation | None:
    """The unused invitation of ``email`` to ``provider`` that inviting the address again would replace
    (its link would stop working), if there is one. Refuses an invalid address."""
    return db.session.scalar(select(ProviderInvitation).where(
        ProviderInvitation.provider_id == provider.id, ProviderInvitation.email == normalise_email(email),
        ProviderInvitation.used_at.is_(None)))


def find_provider_invitation(token: str) -> ProviderInvitation | None:
    """The provider invitation with this token, used or expired too; None when there is none."""
    return _find(ProviderInvitation, token, usable_only=False)


def open_provider_invitation(token: str) -> ProviderInvitation | None:
    """The provider invitation with this token, if it can still be taken up; else None."""
    return _find(ProviderInvitation, token, usable_only=True)


def take_up_provider_invitation(invitation: ProviderInvitation, user: User) -> ProviderMembership:
    """Make ``user`` work for the invitation's provider with its role, and mark
    the invitation used; the membership.

    As for a force, the invitation is the authority and the caller has
    established who ``user`` is. A person who works for the provider
    already takes the invited role (an admin stays an admin).

    Refuses a used or expired invitation and a deactivated account.
    """
    _taken_up(invitation, user)
    membership = db.session.scalar(select(ProviderMembership).where(
        ProviderMembership.provider_id == invitation.provider_id, ProviderMembership.user_id == user.id))
    if membership is None:
        membership = ProviderMembership(provider_id=invitation.provider_id, user_id=user.id, role=invitation.role)
        db.session.add(membership)
    elif membership.role is not ProviderRole.ADMIN:
        membership.role = invitation.role
    db.session.flush()
    details = {"provider_id": invitation.provider_id, "user_id": user.id, "role": invitation.role.value}
    record("provider_invitation.taken_up", actor=user, tenant_id=None, object_type="provider_invitation",
           object_id=invitation.id, details=details)
    record("provider_membership.added", actor=user, tenant_id=None, object_type="provider_membership",
           object_id=membership.id, details={**details, "invitation": str(invitation.id)})
    return membership


def pending_provider_invitations(provider: Provider) -> Sequence[ProviderInvitation]:
    """The provider's invitations not yet taken up (expired ones too), newest first."""
    return db.session.scalars(select(ProviderInvitation).where(
        ProviderInvitation.provider_id == provider.id, ProviderInvitation.used_at.is_(None))
        .order_by(ProviderInvitation.created_at.desc())).all()


def withdraw_provider_invitation(provider: Provider, invitation: ProviderInvitation, *, actor: Actor) -> None:
    """Withdraw an invitation not yet taken up: its link stops working.

    Refuses an actor who may manage neither the provider's people nor users,
    an invitation of another provider, and one already taken up.
    """
    require(actor, Action.MANAGE_PROVIDER_PEOPLE, Action.MANAGE_USERS, provider_id=provider.id)
    if invitation.provider_id != provider.id:
        raise AccountError("invitation", _("This invitation is not one of this provider's."))
    if invitation.used_at is not None:
        raise AccountError("invitation", _("%(name)s has already accepted this invitation.", name=invitation.name))
    db.session.delete(invitation)
    db.session.flush()
    record("provider_invitation.withdrawn", actor=actor, tenant_id=None, object_type="provider_invitation",
           object_id=invitation.id, details={"provider_id": provider.id, "email": invitation.email,
                                             "role": invitation.role.value})


def provider_invitations_query(provider_id: int) -> Select[Any]:
    """The provider's pending invitations, as a statement (for a paginated list)."""
    return select(ProviderInvitation).where(ProviderInvitation.provider_id == provider_id,
                                            ProviderInvitation.used_at.is_(None))


# ---------------------------------------------------------------- a new account, from a link

def account_from_invitation(invitation: Invitation, *, name: str, password: str) -> User:
    """A new account for the invited address, made from the invitation's link
    (the person's name as they give it, and their password); the account,
    not yet holding the role (``take_up_...``).

    Refuses an invitation that cannot be taken up, an address that has an
    account already (its owner signs in first, then accepts), a blank name
    and a short password.
    """
    from diversion.accounts.services import find_user, hash_password

    if not invitation.usable:
        raise AccountError("invitation", _("This invitation has been used or has expired."))
    if find_user(invitation.email) is not None:
        raise AccountError("email", _("An account with this email address exists: sign in, then open the link again."))
    user = User(email=invitation.email, name=_clean_name(name), password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    kind = "invitation" if isinstance(invitation, ForceInvitation) else "provider_invitation"
    record("user.created", actor=user, tenant_id=None, object_type="user", object_id=user.id,
           details={kind: str(invitation.id)})
    return user


# ---------------------------------------------------------------- links and email

def invitation_link(invitation: Invitation, token: str) -> str:
    """The full address at which ``token`` (``invitation``'s) is accepted.

    Outside a request (a command, a job) it needs ``SERVER_NAME``.
    """
    if isinstance(invitation, ForceInvitation):
        return url_for("invitations.accept", tenant=invitation.tenant.slug, token=token, _external=True)
    return url_for("provider_invitations.accept", token=token, _external=True)


def mail_configured() -> bool:
    """Whether invitations are emailed (``MAIL_SERVER`` is set)."""
    return bool(current_app.config.get("MAIL_SERVER"))


def _mail(invitation: Invitation, token: str, *, organisation: str) -> None:
    if not mail_configured():
        return
    if not has_request_context() and not current_app.config.get("SERVER_NAME"):
        return  # no address to give: the inviter hands the link on
    mail.send_invitation_after_commit(invitation, link=invitation_link(invitation, token), organisation=organisation)

