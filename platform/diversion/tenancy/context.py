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
from contextlib import contextmanager, suppress
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


def clear_scope() -> None:
    """Forget the scope at the end of a unit of work, without a word to the database.

    For the end of a request: its session is about to be closed, which rolls
    back whatever is still open, and the settings ``set_scope`` wrote are
    local to that transaction (``set_config(..., true)``), so they go with
    it. A write here could only fail (the connection dropped, the
    transaction failed) and replace the request's answer with a crash. A
    pooled connection is safe: its next transaction gets the scope written
    afresh by ``after_begin`` (``tenancy.rls``).
    """
    _scope.set(Scope(None, None, None))


@contextmanager
def scoped(tenant_id: int | None, user_id: int | None = None, *,
           provider_id: int | None = None) -> Iterator[None]:
    """Run a block in another scope and restore the previous one after it.

    When the block raises, its exception is the one that comes out: see
    ``_restore_after_failure``.
    """
    previous = _scope.get()
    set_scope(tenant_id, user_id, provider_id=provider_id)
    try:
        yield
    except BaseException:
        _restore_after_failure(previous)
        raise
    set_scope(previous.tenant_id, previous.user_id, provider_id=previous.provider_id)


def _restore_after_failure(previous: Scope) -> None:
    """Put the previous scope back after the block raised, without hiding why it raised.

    The scope itself (the ContextVar) is always restored. Then the open
    transaction is told, as ``set_scope`` does, so that a caller who handles
    the exception (a refusal, say) goes on in its own scope, never the
    block's. That write can fail only where the block's failure came from
    the database: the connection dropped, PostgreSQL aborted the transaction,
    or the session awaits a rollback. Its failure is then not reported (the
    block's exception is what the caller must see), and it leaves nothing
    behind: such a transaction accepts no further statement until it is
    rolled back (PostgreSQL refuses every statement in an aborted
    transaction, SQLAlchemy every use of a session awaiting a rollback, a
    dropped connection everything). A full rollback discards the inner
    scope's settings with the rest of the transaction, since they are local
    to it; a rollback to a savepoint brings back what they were when the
    savepoint began, so ``tenancy.rls`` writes the scope in force again after
    every savepoint rollback. Either way no statement runs with the inner
    scope's settings once the scope is restored.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from diversion.tenancy.rls import apply_scope_to_open_transaction

    _scope.set(previous)
    with suppress(SQLAlchemyError):
        apply_scope_to_open_transaction()


def set_provider_scope(provider_id: int, user_id: int | None = None) -> None:
    """Provider staff at work: the provider's referrals in every force it serves, nothing else."""
    set_scope(None, user_id, provider_id=provider_id)


@contextmanager
def provider_scoped(provider_id: int, user_id: int | None = None) -> Iterator[None]:
    """A block in the provider's scope (no force): see ``set_provider_scope``."""
    with scoped(None, user_id, provider_id=provider_id):
        yield


@contextmanager
def for_provider(provider_id: int) -> Iterator[None]:
    """A block that reaches a provider's own rows (its tokens, its webhook endpoint):
    in its scope, unless it is in scope already, when whatever force is in
    scope stays (as when its staff act on one of its referrals)."""
    scope = current_scope()
    if scope.provider_id == provider_id:
        yield
        return
    with provider_scoped(provider_id, scope.user_id):
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
