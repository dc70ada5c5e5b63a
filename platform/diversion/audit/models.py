"""Audit events. Rows are only ever inserted.

On PostgreSQL the app role has no UPDATE, DELETE or TRUNCATE on this table
and row-level security has no policy for them either, so the record cannot
be rewritten by the application even through raw SQL.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from diversion.db import Base, UTCDateTime, new_id, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # By force and time (a force's audit), and by time alone (the platform's).
    __table_args__ = (Index(None, "tenant_id", "occurred_at"), Index(None, "occurred_at"))

    # Made here, not by the database: an INSERT ... RETURNING would need a
    # read policy on the new row, and events outside any force have none.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Null for events outside any force (a platform admin's change, a sign-in).
    # No foreign key on purpose: the log outlives the forces it names. A draft
    # force that is discarded is deleted with everything it had
    # (``forces.onboarding.discard``); its events stay as they were written,
    # naming its id, and the discard event names its address and name.
    tenant_id: Mapped[int | None]
    # RESTRICT, not SET NULL: deleting a user must not rewrite the record.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # Kept as typed so that a failed sign-in for an unknown address is recorded too.
    actor_email: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
