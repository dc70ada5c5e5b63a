"""The current force (or provider) of a unit of work, held in a ContextVar.

Web requests set it from the URL, the API from its token, the CLI from
``--tenant``. Everything below (ORM guard, row-level security) reads it
from here, so there is exactly one answer to "which force is this?".

A *provider scope* (``provider_id``) is the other kind: provider staff work
for one provider across every force it serves. With a provider in scope and
no force, the guard and row-level security let through only the provider's
own referrals and the rows hanging off them (``provider_scoped``). When the
workspace acts on one referral through the force's services, the referral's
force is put in scope *as well* (``acting_for_provider``): both restrictions
then apply, so the force's scope never widens what provider staff reach.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """Who the database work is for: a force, optionally a user, optionally a provider."""

    tenant_id: int | None
    user_id: int | None = None
    provider_id: int | None = None


_scope: ContextVar[Scope] = ContextVar("diversion_scope", default=Scope(None, None, None))  # noqa: B039 - frozen


class TenantNotSet(RuntimeError):  # noqa: N818 - reads as the condition it reports
    """Raised when force-owned rows are touched with no force in scope."""


def current_scope() -> Scope:
    return _scope.get()


def current_tenant_id() -> int | None:
    return _scope.get().tenant_id


def current_provider_id() -> int | None:
    """The provider in scope (provider staff at work), or None."""
    return _scope.get().provider_id


def require_tenant_id() -> int:
    """The current force's id; refuses (``TenantNotSet``) when there is none."""
    tenant_id = _scope.get().tenant_id
    if tenant_id is None:
        raise TenantNotSet("No force is in scope: refusing to touch force-owned rows.")
    return tenant_id


def set_scope(tenant_id: int | None, user_id: int | None = None, *, provider_id: int | None = None) -> None:
    """Set the scope for the rest of this context (a request, a CLI command)."""
    _scope.set(Scope(tenant_id, user_id, provider_id))
    from diversion.tenancy.rls import apply_scope_to_open_transaction

    apply_scope_to_open_transaction()


@contextmanager
def scoped(tenant_id: int | None, user_id: int | None = None, *,
           provider_id: int | None = None) -> Iterator[None]:
    """Run a block in another scope and restore the previous one after it."""
    previous = _scope.get()
    set_scope(tenant_id, user_id, provider_id=provider_id)
    try:
        yield
    finally:
        set_scope(previous.tenant_id, previous.user_id, provider_id=previous.provider_id)


def set_provider_scope(provider_id: int, user_id: int | None = None) -> None:
    """Provider staff at work: the provider's referrals in every force it serves, nothing else."""
    set_scope(None, user_id, provider_id=provider_id)


@contextmanager
def provider_scoped(provider_id: int, user_id: int | None = None) -> Iterator[None]:
    """A block in the provider's scope (no force): see ``set_provider_scope``."""
    with scoped(None, user_id, provider_id=provider_id):
        yield


@contextmanager
def acting_for_provider(provider_id: int, tenant_id: int, user_id: int | None = None) -> Iterator[None]:
    """A block where provider staff change one of their referrals through the force's services.

    The referral's force is in scope (services stamp and check it) and the
    provider stays in scope: rows must pass both, so nothing of the force
    outside the provider's referrals becomes reachable.
    """
    with scoped(tenant_id, user_id, provider_id=provider_id):
        yield
