"""Recording audit events. Every service that changes something calls ``record``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from flask import has_request_context, request

from diversion.audit.models import AuditEvent
from diversion.extensions import db
from diversion.tenancy.context import current_tenant_id

if TYPE_CHECKING:
    from diversion.accounts.models import User


class Acting(Protocol):
    """Whoever acts (a user, a system's token, the platform itself): the person, if a person."""

    @property
    def person(self) -> User | None: ...


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
) -> AuditEvent:
    """Append one event, filed under the force in scope unless ``tenant_id`` says
    otherwise (``None``: an event outside any force, such as a sign-in). The
    event names the person who acted; a token or the platform itself, none."""
    person = actor.person if actor is not None else None
    event = AuditEvent(
        action=action,
        actor_id=person.id if person is not None else None,
        actor_email=person.email if person is not None else actor_email,
        tenant_id=current_tenant_id() if isinstance(tenant_id, _InScope) else tenant_id,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        ip_address=request.remote_addr if has_request_context() else None,
        details=details or {},
    )
    db.session.add(event)
    db.session.flush()
    return event
