"""A simulation run keeps the policy it tried as a force and a version, not an English label.

``simulation_runs.policy_label`` ("draft version 3", "Durham Constabulary
version 2") becomes ``policy_force`` (the other force's name; NULL for the
force's own draft) and ``policy_number``; pages name the policy in the
reader's language. A label that is neither form stops the upgrade, naming
the run, and nothing is changed. The downgrade writes the English label back.

Revision ID: b3dec0596c53
Revises: 511c990d9bb9
Create Date: 2026-12-03 22:20:00.000000

"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

from diversion.tenancy import rls

# revision identifiers, used by Alembic.
revision = 'b3dec0596c53'
down_revision = '511c990d9bb9'
branch_labels = None
depends_on = None

LABEL = re.compile(r"(?:draft|(?P<force>.+)) version (?P<number>\d+)")
runs = sa.table("simulation_runs", sa.column("id", sa.Uuid), sa.column("policy_label", sa.String),
                sa.column("policy_force", sa.String), sa.column("policy_number", sa.Integer))


@contextmanager
def _every_force() -> Iterator[sa.Connection]:
    """The connection, with row-level security lifted from the table on PostgreSQL (the owner is
    bound by FORCE ROW LEVEL SECURITY too, and no force is in scope here)."""
    connection = op.get_bind()
    postgresql = rls.is_postgresql(connection)
    if postgresql:
        op.execute("ALTER TABLE simulation_runs NO FORCE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE simulation_runs DISABLE ROW LEVEL SECURITY")
    try:
        yield connection
    finally:
        if postgresql:
            op.execute("ALTER TABLE simulation_runs ENABLE ROW LEVEL SECURITY")
            op.execute("ALTER TABLE simulation_runs FORCE ROW LEVEL SECURITY")


def upgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.add_column('simulation_runs', sa.Column('policy_force', sa.String(length=200), nullable=True))
    # SQLite adds a NOT NULL column only with a default; PostgreSQL makes it NOT NULL once filled.
    op.add_column('simulation_runs', sa.Column('policy_number', sa.Integer(), nullable=not sqlite,
                                               server_default=sa.text('0') if sqlite else None))
    with _every_force() as connection:
        values, refused = [], []
        for row in connection.execute(sa.select(runs.c.id, runs.c.policy_label)):
            found = LABEL.fullmatch(row.policy_label)
            if found is None:
                refused.append(f"{row.id}: {row.policy_label!r}")
            else:
                values.append({"key": row.id, "force": found["force"], "number": int(found["number"])})
        if refused:
            raise RuntimeError(f"{len(refused)} simulation runs name their policy in no form this upgrade reads; "
                               "nothing was changed: " + "; ".join(refused[:20]))
        if values:
            connection.execute(sa.update(runs).where(runs.c.id == sa.bindparam("key")).values(
                policy_force=sa.bindparam("force"), policy_number=sa.bindparam("number")), values)
    if not sqlite:
        op.alter_column('simulation_runs', 'policy_number', nullable=False)
    op.drop_column('simulation_runs', 'policy_label')


def downgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.add_column('simulation_runs', sa.Column('policy_label', sa.String(length=300), nullable=not sqlite,
                                               server_default=sa.text("''") if sqlite else None))
    with _every_force() as connection:
        connection.execute(sa.update(runs).values(policy_label=sa.case(
            (runs.c.policy_force.is_(None), sa.literal("draft version ") + sa.cast(runs.c.policy_number, sa.String)),
            else_=runs.c.policy_force + sa.literal(" version ") + sa.cast(runs.c.policy_number, sa.String))))
    if not sqlite:
        op.alter_column('simulation_runs', 'policy_label', nullable=False)
    op.drop_column('simulation_runs', 'policy_number')
    op.drop_column('simulation_runs', 'policy_force')
