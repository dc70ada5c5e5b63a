"""Recording audit events. Every service that changes something calls ``record``; an event that
must outlast a refused or failed request (a failed sign-in) is recorded with ``record(..., lasting=True)``."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from flask import has_request_context, request

from diversion import unit
from diversion.audit.models import AuditEvent
from diversion.db import new_id, utcnow
from diversion.extensions import db
from diversion.tenancy.bulk import insert_values
from diversion.tenancy.context import current_tenant_id

if TYPE_CHECKING:
    from diversion.accounts.models import User


class Acting(Protocol):
    """Whoever acts (a user, a system's token, the platform itself): the person, if a person."""

    @property
    def person(self) -> User | None: ...


_THROUGH = "diversion.audit_through"  # the request's WSGI environ: what its changes are made through


def through(details: dict[str, Any]) -> None:
    """Note that the rest of the request acts through something that is not a person (a
    system's token): every event it records carries ``details`` (which token), so that the
    service's own event says who did it and no second event is needed."""
    request.environ[_THROUGH] = details


class _InScope:
    """Marker: file the event under the force in scope."""


IN_SCOPE = _InScope()


def record(
    action: str,
    *,
    actor: Acting | None,
    tenant_id: int | _InScope | None = IN_SCOPE,
    object_type: str | None = None,
    object_id: object = None,
    actor_email: str | None = None,
    details: dict[str, Any] | None = None,
    lasting: bool = False,
) -> AuditEvent:
    """Append one event, filed under the force in scope unless ``tenant_id`` says
    otherwise (``None``: an event outside any force, such as a sign-in). The
    event names the person who acted; a token or the platform itself, none
    (a token is named in the details: ``through``).

    A ``lasting`` event stays recorded even when the request's change is
    refused or fails: a failed sign-in, the personal details a page showed
    (``unit.lasting``)."""
    append = partial(_append, action, person=actor.person if actor is not None else None, actor_email=actor_email,
                     tenant_id=tenant_id, object_type=object_type, object_id=object_id, details=details)
    return unit.lasting(append) if lasting else append()


def _append(action: str, *, person: User | None, actor_email: str | None, tenant_id: int | _InScope | None,
            object_type: str | None, object_id: object, details: dict[str, Any] | None) -> AuditEvent:
    if has_request_context() and _THROUGH in request.environ:
        details = {**request.environ[_THROUGH], **(details or {})}
    values = {
        "id": new_id(), "occurred_at": utcnow(), "action": action,
        "actor_id": person.id if person is not None else None,
        "actor_email": person.email if person is not None else actor_email,
        "tenant_id": current_tenant_id() if isinstance(tenant_id, _InScope) else tenant_id,
        "object_type": object_type, "object_id": None if object_id is None else str(object_id),
        "ip_address": request.remote_addr if has_request_context() else None, "details": details or {},
    }
    # Written after what the unit holds, the change the event follows, and sent with the rows
    # written next to it (``insert_values``); nothing in the unit points at it.
    insert_values(db.session, AuditEvent, values)
    return AuditEvent(**values)
