"""A policy version the platform made keeps where it came from as a code, not an English note.

``policy_versions`` gains ``origin`` (``eligibility.models.Origin``: the force
file, a copy of another force's policy, the blank policy) and
``origin_details`` (a copy's force and version); pages say it in the reader's
language. The notes the platform wrote ("From the force file", "The blank
policy", "Copied from Durham Constabulary, version 2") are read back into
them and the note emptied; a note a person wrote stays. Published versions
never change otherwise: their trigger is lifted for this upgrade alone. The
downgrade writes the English notes back.

Revision ID: 01555530d055
Revises: b3dec0596c53
Create Date: 2026-12-03 22:30:00.000000

"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

from diversion.tenancy import rls

# revision identifiers, used by Alembic.
revision = '01555530d055'
down_revision = 'b3dec0596c53'
branch_labels = None
depends_on = None

FIXED = {"From the force file": "force_file", "The blank policy": "blank"}
COPIED = re.compile(r"Copied from (?P<force>.+), version (?P<number>\d+)")
versions = sa.table("policy_versions", sa.column("id", sa.Uuid), sa.column("note", sa.String),
                    sa.column("origin", sa.String), sa.column("origin_details", sa.JSON(none_as_null=True)))


@contextmanager
def _every_version() -> Iterator[sa.Connection]:
    """The connection, with row-level security and (PostgreSQL) the trigger that keeps
    published versions unchanged lifted from the table for the while."""
    connection = op.get_bind()
    postgresql = rls.is_postgresql(connection)
    if postgresql:
        op.execute("ALTER TABLE policy_versions NO FORCE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE policy_versions DISABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE policy_versions DISABLE TRIGGER published_policy_immutable")
    try:
        yield connection
    finally:
        if postgresql:
            op.execute("ALTER TABLE policy_versions ENABLE TRIGGER published_policy_immutable")
            op.execute("ALTER TABLE policy_versions ENABLE ROW LEVEL SECURITY")
            op.execute("ALTER TABLE policy_versions FORCE ROW LEVEL SECURITY")


def upgrade():
    op.add_column('policy_versions', sa.Column('origin', sa.String(length=16), nullable=True))
    op.add_column('policy_versions', sa.Column('origin_details', sa.JSON(), nullable=True))
    with _every_version() as connection:
        values = []
        for row in connection.execute(sa.select(versions.c.id, versions.c.note).where(sa.or_(
                versions.c.note.in_(list(FIXED)), versions.c.note.like("Copied from %, version %")))):
            if row.note in FIXED:
                values.append({"key": row.id, "origin": FIXED[row.note], "details": None})
            elif found := COPIED.fullmatch(row.note):
                values.append({"key": row.id, "origin": "copied",
                               "details": {"force": found["force"], "number": int(found["number"])}})
        if values:
            connection.execute(sa.update(versions).where(versions.c.id == sa.bindparam("key")).values(
                origin=sa.bindparam("origin"), origin_details=sa.bindparam("details"), note=""), values)


def downgrade():
    from diversion.eligibility.models import Origin, origin_sentence

    with _every_version() as connection:
        rows = connection.execute(sa.select(versions.c.id, versions.c.origin, versions.c.origin_details)
                                  .where(versions.c.origin.is_not(None))).all()
        if rows:
            connection.execute(sa.update(versions).where(versions.c.id == sa.bindparam("key")).values(
                note=sa.bindparam("said")),
                [{"key": row.id, "said": origin_sentence(Origin(row.origin), row.origin_details)} for row in rows])
    op.drop_column('policy_versions', 'origin_details')
    op.drop_column('policy_versions', 'origin')
