"""People lists and a provider's people: who works where, as what.

The lists are statements for ``listing.page_of`` (one page of rows, never
the whole table), searched by name or email address with
``listing.matching``. A force's members are listed in the force in scope
(the ORM guard adds the force); a provider's people by their provider
(provider memberships are global rows); every user, for platform admins.

A provider's admins change their people's roles and remove them, as a
force admin does for the force (``accounts.services``); a provider with
admins always keeps one. Removing a membership closes the provider's pages
to that person at their next request (the workspace checks memberships on
every request); their other work goes on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from sqlalchemy import Select, func, select

from diversion.accounts.access import Action, require
from diversion.accounts.models import ForceMembership, ProviderMembership, ProviderRole, User
from diversion.accounts.services import AccountError
from diversion.audit.services import record
from diversion.extensions import db
from diversion.listing import matching

if TYPE_CHECKING:
    from diversion.accounts.access import Actor
    from diversion.catalogue.models import Provider


def force_members(search: str = "") -> Select[Any]:
    """The memberships of the force in scope, by name then role, matching ``search`` (name or email)."""
    statement = select(ForceMembership).join(User, User.id == ForceMembership.user_id)
    if search:
        statement = statement.where(matching(search, User.name.expression, User.email.expression))
    return statement.order_by(User.name, ForceMembership.role, ForceMembership.id)


def provider_people(provider_id: int, search: str = "") -> Select[Any]:
    """The provider's memberships, by name, matching ``search`` (name or email)."""
    statement = (select(ProviderMembership).join(User, User.id == ProviderMembership.user_id)
                 .where(ProviderMembership.provider_id == provider_id))
    if search:
        statement = statement.where(matching(search, User.name.expression, User.email.expression))
    return statement.order_by(User.name, ProviderMembership.id)


def every_user(search: str = "") -> Select[Any]:
    """Every account on the platform, by email address, matching ``search`` (name or email)."""
    statement = select(User)
    if search:
        statement = statement.where(matching(search, User.name.expression, User.email.expression))
    return statement.order_by(User.email)


def users_by_id(ids: Iterable[int]) -> dict[int, User]:
    """The accounts with these ids (for a page of memberships)."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {user.id: user for user in db.session.scalars(select(User).where(User.id.in_(wanted)))}


def _keep_a_provider_admin(membership: ProviderMembership) -> None:
    """Refuses taking away the provider's last admin."""
    if membership.role is ProviderRole.ADMIN:
        admins = db.session.scalar(select(func.count()).select_from(ProviderMembership).where(
            ProviderMembership.provider_id == membership.provider_id, ProviderMembership.role == ProviderRole.ADMIN))
        if (admins or 0) <= 1:
            raise AccountError("membership", _("A provider must keep at least one admin."))


def _mine(provider: Provider, membership: ProviderMembership) -> None:
    if membership.provider_id != provider.id:
        raise AccountError("membership", _("This person does not work for %(provider)s.", provider=provider.name))


def change_provider_role(provider: Provider, membership: ProviderMembership, role: ProviderRole, *,
                         actor: Actor) -> ProviderMembership:
    """Make a person staff or admin of ``provider``.

    Refuses an actor who may not manage the provider's people, a membership
    of another provider, and taking away the provider's last admin.
    """
    require(actor, Action.MANAGE_PROVIDER_PEOPLE, provider_id=provider.id)
    _mine(provider, membership)
    if not isinstance(role, ProviderRole):
        raise AccountError("role", _("Choose staff or admin."))
    if role is membership.role:
        return membership
    _keep_a_provider_admin(membership)
    before = membership.role
    membership.role = role
    db.session.flush()
    record("provider_membership.role_changed", actor=actor, tenant_id=None, object_type="provider_membership",
           object_id=membership.id, details={"provider_id": provider.id, "user_id": membership.user_id,
                                             "from": before.value, "to": role.value})
    return membership


def remove_provider_membership(provider: Provider, membership: ProviderMembership, *, actor: Actor) -> None:
    """Stop a person working for ``provider``: its pages close to them at their
    next request; their sessions and their other work go on.

    Refuses an actor who may not manage the provider's people, a membership
    of another provider, and removing the provider's last admin.
    """
    require(actor, Action.MANAGE_PROVIDER_PEOPLE, provider_id=provider.id)
    _mine(provider, membership)
    _keep_a_provider_admin(membership)
    db.session.delete(membership)
    db.session.flush()
    record("provider_membership.removed", actor=actor, tenant_id=None, object_type="provider_membership",
           object_id=membership.id, details={"provider_id": provider.id, "user_id": membership.user_id,
                                             "role": membership.role.value})

