"""The current force of a unit of work, held in a ContextVar.

Web requests set it from the URL, the API from its token, the CLI from
``--tenant``. Everything below (ORM guard, row-level security) reads it
from here, so there is exactly one answer to "which force is this?".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """Who the database work is for: a force and, optionally, a user."""

    tenant_id: int | None
    user_id: int | None = None


_scope: ContextVar[Scope] = ContextVar("diversion_scope", default=Scope(None, None))  # noqa: B039 - frozen


class TenantNotSet(RuntimeError):  # noqa: N818 - reads as the condition it reports
    """Raised when force-owned rows are touched with no force in scope."""


def current_scope() -> Scope:
    return _scope.get()


def current_tenant_id() -> int | None:
    return _scope.get().tenant_id


def require_tenant_id() -> int:
    """The current force's id; refuses (``TenantNotSet``) when there is none."""
    tenant_id = _scope.get().tenant_id
    if tenant_id is None:
        raise TenantNotSet("No force is in scope: refusing to touch force-owned rows.")
    return tenant_id


def set_scope(tenant_id: int | None, user_id: int | None = None) -> None:
    """Set the scope for the rest of this context (a request, a CLI command)."""
    _scope.set(Scope(tenant_id, user_id))
    from diversion.tenancy.rls import apply_scope_to_open_transaction

    apply_scope_to_open_transaction()


@contextmanager
def scoped(tenant_id: int | None, user_id: int | None = None) -> Iterator[None]:
    """Run a block in another scope and restore the previous one after it."""
    previous = _scope.get()
    set_scope(tenant_id, user_id)
    try:
        yield
    finally:
        set_scope(previous.tenant_id, previous.user_id)
