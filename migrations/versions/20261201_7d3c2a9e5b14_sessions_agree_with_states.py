"""Referrals whose booked sessions and state disagree are brought into line.

Until now the force's pages and both APIs could move a referral to booked
or attended with no session booked, which the provider workspace never
did; a referral could then be attended with its sessions still waiting
(the workspace offered "Record attendance" and refused it), or booked with
nothing to attend. From now on only booking a session makes a referral
booked, and only recording attendance at one makes it attended. Each
referral is repaired as that rule would have left it:

- each attendance counted without an attended session takes the earliest
  session still waiting, as attended; failing one, a session is written,
  attended, at the time of that step, its venue "Not recorded";
- a referral booked with no session waiting gets one, at the time it was
  booked, venue "Not recorded", its attendance to be recorded.

Nothing is deleted, and a referral that agrees already is left as it is.
There is no going back: the downgrade leaves the repaired rows.

Revision ID: 7d3c2a9e5b14
Revises: f53b6dfa34fc
Create Date: 2026-12-01 18:00:00

"""
import uuid

import sqlalchemy as sa
from alembic import op

from diversion.tenancy import rls

revision = "7d3c2a9e5b14"
down_revision = "f53b6dfa34fc"
branch_labels = None
depends_on = None

TABLES = ("referrals", "referral_transitions", "referral_sessions")
VENUE = "Not recorded"

referrals = sa.table("referrals", sa.column("id", sa.Uuid), sa.column("tenant_id", sa.Integer),
                     sa.column("state", sa.String), sa.column("sessions_attended", sa.Integer))
steps = sa.table("referral_transitions", sa.column("referral_id", sa.Uuid), sa.column("to_state", sa.String),
                 sa.column("occurred_at", sa.DateTime(timezone=True)), sa.column("actor_id", sa.Integer))
sessions = sa.table("referral_sessions", sa.column("id", sa.Uuid), sa.column("tenant_id", sa.Integer),
                    sa.column("referral_id", sa.Uuid), sa.column("starts_at", sa.DateTime(timezone=True)),
                    sa.column("venue", sa.String), sa.column("booked_at", sa.DateTime(timezone=True)),
                    sa.column("booked_by_id", sa.Integer), sa.column("attendance", sa.String),
                    sa.column("attendance_recorded_at", sa.DateTime(timezone=True)),
                    sa.column("attendance_recorded_by_id", sa.Integer))


def _repair(connection: sa.Connection) -> None:
    for referral in connection.execute(sa.select(referrals)).all():
        held = connection.execute(sa.select(sessions).where(sessions.c.referral_id == referral.id)
                                  .order_by(sessions.c.starts_at)).all()
        moves = connection.execute(sa.select(steps).where(steps.c.referral_id == referral.id)
                                   .order_by(steps.c.occurred_at)).all()
        attended_steps = [m for m in moves if m.to_state == "attended"]
        missing = referral.sessions_attended - sum(s.attendance == "attended" for s in held)
        waiting = [s for s in held if s.attendance is None]
        # The latest attendances are the ones without a session of their own.
        unmatched = attended_steps[len(attended_steps) - missing:] if missing > 0 else []
        for step in unmatched:
            if waiting:
                connection.execute(sa.update(sessions).where(sessions.c.id == waiting.pop(0).id).values(
                    attendance="attended", attendance_recorded_at=step.occurred_at,
                    attendance_recorded_by_id=step.actor_id))
            else:
                connection.execute(sa.insert(sessions).values(
                    id=uuid.uuid4(), tenant_id=referral.tenant_id, referral_id=referral.id,
                    starts_at=step.occurred_at, venue=VENUE, booked_at=step.occurred_at, booked_by_id=step.actor_id,
                    attendance="attended", attendance_recorded_at=step.occurred_at,
                    attendance_recorded_by_id=step.actor_id))
        if referral.state == "booked" and not waiting:
            booked = next((m for m in reversed(moves) if m.to_state == "booked"), None)
            if booked is not None:
                connection.execute(sa.insert(sessions).values(
                    id=uuid.uuid4(), tenant_id=referral.tenant_id, referral_id=referral.id,
                    starts_at=booked.occurred_at, venue=VENUE, booked_at=booked.occurred_at,
                    booked_by_id=booked.actor_id, attendance=None, attendance_recorded_at=None,
                    attendance_recorded_by_id=None))


def upgrade():
    connection = op.get_bind()
    postgresql = rls.is_postgresql(connection)
    # The owner is bound by FORCE ROW LEVEL SECURITY too, and no force is in scope here.
    if postgresql:
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    _repair(connection)
    if postgresql:
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade():
    pass  # the repaired rows stay: they say what happened
