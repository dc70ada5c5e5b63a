"""A referral keeps its steps packed in its own row: ``referral_transitions`` goes.

Each referral gains ``steps`` (its steps in order, packed by ``cases.steps``: a
few dozen bytes where each step's row cost about 210 with its two indexes) and
``completed_at`` (when it was completed, indexed for the home page's "completed
this month", which read the partial index of completing steps). Every step
moves into its referral keeping its key (so that the keys already sent to
providers and in the ledger's event keys stay the same); the table then goes.
The downgrade makes the table again, as it was, and writes each step back as
its row, under the same row-level security.

Revision ID: 6d1e4b8a2f37
Revises: 9f4b2d7e1a60
Create Date: 2026-12-05 11:00:00

"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import op

from diversion.cases.steps import pack, step_key, unpack
from diversion.db import UTCDateTime
from diversion.tenancy import rls

revision = "6d1e4b8a2f37"
down_revision = "9f4b2d7e1a60"
branch_labels = None
depends_on = None

BATCH = 2000
_STEPS = "referral_transitions"
_ON_MY_REFERRAL = (f"EXISTS (SELECT 1 FROM referrals r WHERE r.tenant_id = {_STEPS}.tenant_id "  # noqa: S608
                   f"AND r.id = {_STEPS}.referral_id AND r.provider_id = {rls.CURRENT_PROVIDER})")

_referrals = sa.table("referrals", sa.column("id", sa.Uuid), sa.column("tenant_id", sa.Integer),
                      sa.column("steps", sa.LargeBinary), sa.column("completed_at", UTCDateTime()))
_rows = sa.table(_STEPS, sa.column("id", sa.Uuid), sa.column("tenant_id", sa.Integer),
                 sa.column("referral_id", sa.Uuid), sa.column("from_state", sa.String),
                 sa.column("to_state", sa.String), sa.column("occurred_at", UTCDateTime()),
                 sa.column("actor_id", sa.Integer), sa.column("by_system", sa.String),
                 sa.column("reason", sa.String), sa.column("why", sa.String),
                 sa.column("why_details", sa.JSON(none_as_null=True)))


class _Step(NamedTuple):
    """A step as ``cases.steps.pack`` reads it."""

    from_state: str | None
    to_state: str
    occurred_at: Any
    actor_id: int | None
    by_system: str | None
    reason: str
    why: str | None
    why_details: dict[str, Any] | None
    key: Any


@contextmanager
def _whole_tables(*tables: str) -> Iterator[sa.Connection]:
    """The connection, reading and writing every force's rows of ``tables`` (the owner is bound by
    FORCE ROW LEVEL SECURITY too, and no force is in scope here)."""
    connection = op.get_bind()
    postgresql = rls.is_postgresql(connection)
    if postgresql:
        for table in tables:
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    try:
        yield connection
    finally:
        if postgresql:
            for table in tables:
                op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
                op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def _referral_batches(connection: sa.Connection) -> Iterator[list[Any]]:
    """Every referral's key and force, ``BATCH`` at a time, in the order of their keys."""
    after = None
    while True:
        query = sa.select(_referrals.c.id, _referrals.c.tenant_id, _referrals.c.steps).order_by(
            _referrals.c.id).limit(BATCH)
        rows = connection.execute(query.where(_referrals.c.id > after) if after is not None else query).all()
        if not rows:
            return
        after = rows[-1].id
        yield rows


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE referrals ADD COLUMN steps BLOB NOT NULL DEFAULT x''")
    else:
        op.add_column("referrals", sa.Column("steps", sa.LargeBinary(), nullable=True))
    op.add_column("referrals", sa.Column("completed_at", UTCDateTime(), nullable=True))
    with _whole_tables("referrals", _STEPS) as connection:
        for referrals in _referral_batches(connection):
            steps: dict[Any, list[_Step]] = {referral.id: [] for referral in referrals}
            for row in connection.execute(
                    sa.select(_rows).where(_rows.c.referral_id.in_(list(steps)))
                    .order_by(_rows.c.referral_id, _rows.c.occurred_at, _rows.c.id)):
                steps[row.referral_id].append(_Step(row.from_state, row.to_state, row.occurred_at, row.actor_id,
                                                    row.by_system, row.reason, row.why, row.why_details, row.id))
            connection.execute(
                sa.update(_referrals).where(_referrals.c.id == sa.bindparam("key"))
                .values(steps=sa.bindparam("packed"), completed_at=sa.bindparam("completed")),
                [{"key": key, "packed": pack(kept),
                  "completed": next((s.occurred_at for s in kept if s.to_state == "completed"), None)}
                 for key, kept in steps.items()])
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("referrals", "steps", nullable=False)
    op.create_index("ix_referrals_completed_tenant_id_completed_at", "referrals", ["tenant_id", "completed_at"],
                    postgresql_where=sa.text("completed_at IS NOT NULL"),
                    sqlite_where=sa.text("completed_at IS NOT NULL"))
    op.drop_table(_STEPS)


def downgrade():
    op.create_table(
        _STEPS,
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("why", sa.String(length=20), nullable=True),
        sa.Column("why_details", sa.JSON(), nullable=True),
        sa.Column("by_system", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_referral_transitions_actor_id_users"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["tenant_id", "referral_id"], ["referrals.tenant_id", "referrals.id"],
                                name=op.f("fk_referral_transitions_tenant_id_referral_id_referrals"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_transitions")),
        info={"tenant_scoped": True},
    )
    op.create_index("ix_referral_transitions_tenant_id_referral_id", _STEPS, ["tenant_id", "referral_id"])
    op.create_index("ix_referral_transitions_completed_tenant_id_occurred_at", _STEPS, ["tenant_id", "occurred_at"],
                    postgresql_where=sa.text("to_state = 'completed'"),
                    sqlite_where=sa.text("to_state = 'completed'"))
    if rls.is_postgresql(op.get_bind()):
        for statement in (*rls.policy_sql(_STEPS), *rls.provider_policy_sql(_STEPS, _ON_MY_REFERRAL, insert=True)):
            op.execute(statement)
    with _whole_tables("referrals", _STEPS) as connection:
        for referrals in _referral_batches(connection):
            rows = [{"id": step_key(referral.id, number, key), "tenant_id": referral.tenant_id,
                     "referral_id": referral.id, "from_state": came_from, "to_state": to, "occurred_at": at,
                     "actor_id": actor, "by_system": system, "reason": reason, "why": why, "why_details": details}
                    for referral in referrals
                    for number, (came_from, to, at, actor, system, reason, why, details, key)
                    in enumerate(unpack(bytes(referral.steps or b"")))]
            if rows:
                connection.execute(sa.insert(_rows), rows)
    op.drop_index("ix_referrals_completed_tenant_id_completed_at", table_name="referrals")
    op.execute("ALTER TABLE referrals DROP COLUMN completed_at")
    op.execute("ALTER TABLE referrals DROP COLUMN steps")
