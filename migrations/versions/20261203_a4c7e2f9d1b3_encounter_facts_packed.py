"""An encounter keeps the facts the officer entered packed, as its decision does.

``encounters.facts`` becomes the 30 bytes of ``eligibility.packed`` (once
JSON, several hundred bytes a row): the same facts come back, a list of values
in the catalogue's sorted order as checked facts are. An encounter whose facts
cannot be packed (a field or value outside the catalogue) stops the upgrade,
naming it, and nothing is changed. The downgrade writes the JSON back from the
packed facts.

SQLite takes the new column with a default (a column added NOT NULL must have
one there) and drops and renames columns in place: the table is not rebuilt,
which other tables' foreign keys would refuse.

Revision ID: a4c7e2f9d1b3
Revises: 8f3a1c6e2b95
Create Date: 2026-12-03 03:20:00.000000

"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

from diversion.eligibility.packed import Unpackable, pack_facts, unpack_facts
from diversion.tenancy import rls

# revision identifiers, used by Alembic.
revision = 'a4c7e2f9d1b3'
down_revision = '8f3a1c6e2b95'
branch_labels = None
depends_on = None

BATCH = 2000


def _batches(connection: sa.Connection, table: sa.TableClause) -> Iterator[list[Any]]:
    """Every encounter, ``BATCH`` at a time, in the order of their ids."""
    after = None
    while True:
        query = sa.select(table).order_by(table.c.id).limit(BATCH)
        rows = connection.execute(query.where(table.c.id > after) if after is not None else query).all()
        if not rows:
            return
        after = rows[-1].id
        yield rows


def _copied(source: str, kind: Any, target: str, target_kind: Any, convert: Callable[[Any], Any]) -> None:
    """Every encounter's ``source`` column converted into ``target``, across every force (the owner
    is bound by FORCE ROW LEVEL SECURITY too, and no force is in scope here). Refuses, naming them
    and changing nothing, encounters whose facts ``convert`` refuses."""
    connection = op.get_bind()
    postgresql = rls.is_postgresql(connection)
    read = sa.table("encounters", sa.column("id", sa.Uuid), sa.column(source, kind))
    write = sa.table("encounters", sa.column("id", sa.Uuid), sa.column(target, target_kind))
    if postgresql:
        op.execute("ALTER TABLE encounters NO FORCE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE encounters DISABLE ROW LEVEL SECURITY")
    refused: list[str] = []
    try:
        for rows in _batches(connection, read):
            values = []
            for row in rows:
                stored = getattr(row, source)
                try:
                    values.append({"key": row.id, "value": convert(json.loads(stored) if isinstance(stored, str)
                                                                   else stored)})
                except Unpackable as error:
                    refused.append(f"{row.id}: {error}")
            if values and not refused:
                connection.execute(sa.update(write).where(write.c.id == sa.bindparam("key"))
                                   .values({target: sa.bindparam("value")}), values)
    finally:
        if postgresql:
            op.execute("ALTER TABLE encounters ENABLE ROW LEVEL SECURITY")
            op.execute("ALTER TABLE encounters FORCE ROW LEVEL SECURITY")
    if refused:
        raise RuntimeError(f"{len(refused)} encounters have facts outside the catalogue, which cannot be "
                           "packed; nothing was changed: " + "; ".join(refused[:20]))


def _swap(new: str, kind: str, default: str) -> None:
    """Add ``new`` (NOT NULL with ``default`` on SQLite, nullable until filled on PostgreSQL)."""
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(f"ALTER TABLE encounters ADD COLUMN {new} {kind} NOT NULL DEFAULT {default}")
    else:
        op.add_column('encounters', sa.Column(new, sa.LargeBinary() if kind == 'BLOB' else sa.JSON(), nullable=True))


def _replace(old: str, new: str) -> None:
    """Drop ``old``, give ``new`` its name, and (PostgreSQL) make it NOT NULL."""
    op.execute(f"ALTER TABLE encounters DROP COLUMN {old}")
    op.execute(f"ALTER TABLE encounters RENAME COLUMN {new} TO {old}")
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('encounters', old, nullable=False)


def upgrade():
    _swap('packed', 'BLOB', "x''")
    try:
        _copied('facts', sa.JSON(), 'packed', sa.LargeBinary(), pack_facts)
    except RuntimeError:  # PostgreSQL rolls the whole upgrade back; SQLite keeps what it did
        op.execute("ALTER TABLE encounters DROP COLUMN packed")
        raise
    _replace('facts', 'packed')


def downgrade():
    _swap('json_facts', 'JSON', "'{}'")
    _copied('facts', sa.LargeBinary(), 'json_facts', sa.JSON(), unpack_facts)
    _replace('facts', 'json_facts')
