"""Account services: users, passwords, memberships and sessions.

Services take explicit arguments, validate, ``flush()`` and never commit:
the request (or CLI command) owns the unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from diversion.accounts.access import Action, require, setting_up, user_id_of
from diversion.accounts.models import (
    FORCE_ROLES,
    PLATFORM_ROLES,
    ForceMembership,
    PlatformGrant,
    Role,
    User,
)
from diversion.audit.services import record
from diversion.db import utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.inputs import printable
from diversion.tenancy.context import current_tenant_id
from diversion.tenancy.guard import ALL_TENANTS
from diversion.tenancy.models import Tenant

if TYPE_CHECKING:
    from diversion.accounts.access import Actor

MIN_PASSWORD_LENGTH = 12
_HASHERS = {
    # RFC 9106's low-memory recommendation: the production default.
    "standard": PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY),
    # For the test suite only: thousands of hashes must not take minutes.
    "fast-insecure": PasswordHasher.from_parameters(profiles.CHEAPEST),
}
# Verified against when the address is unknown, so that a miss costs as much
# time as a wrong password and does not reveal which addresses exist.
_UNKNOWN_USER_HASHES = {name: h.hash("no-such-user-placeholder") for name, h in _HASHERS.items()}


def _profile() -> str:
    return str(current_app.config.get("PASSWORD_HASHING", "standard"))


def _hasher() -> PasswordHasher:
    return _HASHERS[_profile()]


class AccountError(FieldError):
    """A refused account change."""


def normalise_email(email: str) -> str:
    """The canonical form of an address; refuses one that is not valid."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise AccountError("email", _("Enter a valid email address, like name@example.com.")) from error


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            "password", _("Password must be at least %(count)s characters.", count=MIN_PASSWORD_LENGTH)
        )
    return _hasher().hash(password)


def find_user(email: str) -> User | None:
    try:
        email = normalise_email(email)
    except AccountError:
        return None
    return db.session.scalar(select(User).where(User.email == email))


def create_user(*, email: str, name: str, password: str | None, actor: Actor) -> User:
    """Create a user; refuses an actor who may not manage users, an invalid or
    taken address, a blank name, a short password."""
    require(actor, Action.MANAGE_USERS)
    email = normalise_email(email)
    if not name.strip():
        raise AccountError("name", _("Enter the person's name."))
    if find_user(email) is not None:
        raise AccountError("email", _("A user with this email address already exists."))
    user = User(
        email=email,
        name=name.strip(),
        password_hash=hash_password(password) if password is not None else None,
    )
    db.session.add(user)
    db.session.flush()
    record("user.created", actor=actor, object_type="user", object_id=user.id, tenant_id=None)
    return user


def set_password(user: User, password: str, *, actor: Actor) -> None:
    """Set a new password and end the user's other sessions. Refuses an actor
    other than the user who may not manage users."""
    if user_id_of(actor) != user.id:
        require(actor, Action.MANAGE_USERS)
    user.password_hash = hash_password(password)
    user.session_version += 1
    db.session.flush()
    record("user.password_set", actor=actor, object_type="user", object_id=user.id)


def authenticate(email: str, password: str) -> User | None:
    """The active user with this address and password, or None.

    Records a failed sign-in either way it fails (unknown address, wrong
    password, deactivated account) without saying which to the caller; the
    record lasts though the sign-in is refused (``lasting``).
    """
    user = find_user(email)
    ok = False
    try:
        stored = user.password_hash if user and user.password_hash else None
        ok = _hasher().verify(stored or _UNKNOWN_USER_HASHES[_profile()], password)
    except (VerificationError, InvalidHashError):
        ok = False
    if user is None or user.password_hash is None or not ok or not user.active:
        record(
            "auth.sign_in_failed",
            actor=None,
            actor_email=email.strip().lower()[:254],
            tenant_id=None,
            details={"reason": "inactive" if (ok and user and not user.active) else "credentials"},
            lasting=True,
        )
        return None
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hasher().hash(password)
    return user


def record_password_refused(user: User, forces: list[str]) -> None:
    """Record a right password refused because a force of the user's (by slug)
    makes its members sign in with its own account; the record lasts."""
    record("auth.sign_in_failed", actor=None, actor_email=user.email, tenant_id=None,
           details={"reason": "sso_compulsory", "forces": forces}, lasting=True)


def record_malformed_sign_in(email: str) -> None:
    """Record a sign-in refused before any check of the password: its email
    carried characters no address has (shown as \ufffd in the log)."""
    record("auth.sign_in_failed", actor=None, actor_email=printable(email.strip().lower())[:254],
           tenant_id=None, details={"reason": "malformed"}, lasting=True)


def record_sign_in(user: User, *, method: str = "password", tenant_id: int | None = None,
                   details: dict[str, str] | None = None) -> None:
    """Note a sign-in: by ``method`` (``password``, or ``sso`` into the force ``tenant_id``)."""
    user.last_signed_in_at = utcnow()
    db.session.flush()
    record("auth.signed_in", actor=user, object_type="user", object_id=user.id, tenant_id=tenant_id,
           details={"method": method, **(details or {})})


def sign_out(user: User) -> None:
    """End this and every other session of the user (copied cookies too)."""
    user.session_version += 1
    db.session.flush()
    record("auth.signed_out", actor=user, object_type="user", object_id=user.id, tenant_id=None)


def deactivate_user(user: User, *, actor: Actor) -> None:
    """Stop a user signing in and end their sessions; refuses an actor who may
    not manage users, and deactivating yourself."""
    require(actor, Action.MANAGE_USERS)
    if user.id == user_id_of(actor):
        raise AccountError("user", _("You cannot deactivate your own account."))
    user.active = False
    user.session_version += 1
    db.session.flush()
    record("user.deactivated", actor=actor, object_type="user", object_id=user.id, tenant_id=None)


def reactivate_user(user: User, *, actor: Actor) -> None:
    """Let a deactivated user sign in again; refuses an actor who may not manage users."""
    require(actor, Action.MANAGE_USERS)
    user.active = True
    db.session.flush()
    record("user.reactivated", actor=actor, object_type="user", object_id=user.id, tenant_id=None)


def grant_platform_role(user: User, role: Role, *, actor: Actor) -> PlatformGrant:
    """Give a platform-wide role; refuses an actor who may not manage users, and a force or provider role."""
    require(actor, Action.MANAGE_USERS)
    if role not in PLATFORM_ROLES:
        raise AccountError("role", _("%(role)s is not a platform role.", role=role.label))
    grant = next((g for g in user.platform_grants if g.role == role), None)
    if grant is None:
        grant = PlatformGrant(role=role)
        user.platform_grants.append(grant)
        db.session.flush()
        record("user.platform_role_granted", actor=actor, object_type="user",
               object_id=user.id, tenant_id=None, details={"role": role.value})
    return grant


def force_roles(user: User) -> frozenset[Role]:
    """The user's roles in the force in scope (the ORM guard adds the force),
    and force admin for a platform admin while the force is a draft
    (``access.setting_up``)."""
    roles = set(db.session.scalars(
        select(ForceMembership.role).where(ForceMembership.user_id == user.id)
    ))
    if setting_up(user, current_tenant_id()):
        roles.add(Role.FORCE_ADMIN)
    return frozenset(roles)


def sees_closed_forces(user: User) -> bool:
    """Whether ``user`` sees a force's pages while it is a draft or suspended: the platform admin does."""
    return Role.PLATFORM_ADMIN in user.platform_roles


def add_membership(tenant: Tenant, user: User, role: Role, *, actor: Actor) -> ForceMembership:
    """Give ``user`` a role in ``tenant`` (the force in scope); idempotent.

    Refuses an actor who may manage neither the force's members nor users,
    and a role that is not a force role.
    """
    require(actor, Action.MANAGE_MEMBERS, Action.MANAGE_USERS, tenant_id=tenant.id)
    if role not in FORCE_ROLES:
        raise AccountError("role", _("%(role)s is not a role within a force.", role=role.label))
    existing = db.session.scalar(
        select(ForceMembership).where(
            ForceMembership.user_id == user.id, ForceMembership.role == role
        )
    )
    if existing is not None:
        return existing
    membership = ForceMembership(tenant_id=tenant.id, user_id=user.id, role=role)
    db.session.add(membership)
    db.session.flush()
    record("membership.added", actor=actor, tenant_id=tenant.id, object_type="membership",
           object_id=membership.id, details={"user_id": user.id, "role": role.value})
    return membership


def _keep_a_force_admin(membership: ForceMembership) -> None:
    """Refuses taking away the force's last force admin (the force in scope)."""
    if membership.role == Role.FORCE_ADMIN:
        admins = db.session.scalar(
            select(func.count()).select_from(ForceMembership).where(ForceMembership.role == Role.FORCE_ADMIN))
        if (admins or 0) <= 1:
            raise AccountError("membership", _("A force must keep at least one force admin."))


def add_member(tenant: Tenant, *, email: str, name: str, password: str, role: Role,
               actor: Actor) -> tuple[User, ForceMembership]:
    """Give a person a role in ``tenant`` (the force in scope): the account
    with this address, or a new one with ``name`` and ``password``.

    For platform admins only: the answer tells whether the address has an
    account, which a force must not learn of another force's people.
    Refuses an actor who may not manage users, and what ``create_user`` and
    ``add_membership`` refuse.
    """
    require(actor, Action.MANAGE_USERS)
    user = find_user(email)
    if user is None:
        user = create_user(email=email, name=name, password=password, actor=actor)
    return user, add_membership(tenant, user, role, actor=actor)


def change_role(tenant: Tenant, membership: ForceMembership, role: Role, *, actor: Actor) -> ForceMembership:
    """Give a member another role in the force in scope, in place of ``membership``'s.

    Refuses an actor who may not manage the force's members, a role that is
    not a force role, a role the member already holds, and taking away the
    force's last force admin.
    """
    require(actor, Action.MANAGE_MEMBERS, tenant_id=tenant.id)
    if role not in FORCE_ROLES:
        raise AccountError("role", _("%(role)s is not a role within a force.", role=role.label))
    if role == membership.role:
        return membership
    held = db.session.scalar(select(ForceMembership.id).where(
        ForceMembership.user_id == membership.user_id, ForceMembership.role == role))
    if held is not None:
        raise AccountError("role", _("%(name)s is already %(role)s here.", name=membership.user.name,
                                     role=role.with_article))
    _keep_a_force_admin(membership)
    before = membership.role
    membership.role = role
    db.session.flush()
    record("membership.role_changed", actor=actor, tenant_id=tenant.id, object_type="membership",
           object_id=membership.id,
           details={"user_id": membership.user_id, "from": before.value, "to": role.value})
    return membership


def remove_membership(tenant: Tenant, membership: ForceMembership, *, actor: Actor) -> None:
    """Take a role away. The person's next request to this force is checked
    against their memberships and refused; their sessions, and their work in
    other forces, go on untouched.

    Refuses an actor who may not manage the force's members, and removing
    the last force admin of a force.
    """
    require(actor, Action.MANAGE_MEMBERS, tenant_id=tenant.id)
    _keep_a_force_admin(membership)
    db.session.delete(membership)
    db.session.flush()
    record("membership.removed", actor=actor, tenant_id=tenant.id, object_type="membership",
           object_id=membership.id,
           details={"user_id": membership.user_id, "role": membership.role.value})


def other_roles(membership: ForceMembership) -> list[Role]:
    """The roles the member holds in the force besides ``membership``'s (the force in scope), by name."""
    roles = db.session.scalars(select(ForceMembership.role).where(
        ForceMembership.user_id == membership.user_id, ForceMembership.id != membership.id))
    return sorted(roles, key=lambda role: role.label)


def members(tenant: Tenant) -> Sequence[ForceMembership]:
    """The force's memberships, by user name (the force in scope)."""
    return db.session.scalars(
        select(ForceMembership).join(User).order_by(User.name, ForceMembership.role)
    ).all()


def workspaces(user: User) -> list[tuple[Tenant, frozenset[Role]]]:
    """Every force where the user holds a role, with those roles.

    Crosses forces on purpose (``all_tenants``), filtered to the user's own
    rows; row-level security allows exactly that through ``app.user_id``.
    """
    rows = db.session.execute(
        select(Tenant, ForceMembership.role)
        .join(ForceMembership, ForceMembership.tenant_id == Tenant.id)
        .where(ForceMembership.user_id == user.id)
        .order_by(Tenant.name)
        .execution_options(**{ALL_TENANTS: True})
    ).all()
    found: dict[int, tuple[Tenant, set[Role]]] = {}
    for tenant, role in rows:
        found.setdefault(tenant.id, (tenant, set()))[1].add(role)
    return [(tenant, frozenset(roles)) for tenant, roles in found.values()]
