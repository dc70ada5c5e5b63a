"""People's keys are kept as their 16 bytes, not 32 hex digits.

The name, PNC, search and birth keys (``cases.identity``) become binary: the
same keys, in 16 bytes instead of 33 in the row and in each of the four
indexes that find people (a third smaller). On PostgreSQL the keys are decoded
in one rewrite of the table and its indexes; on SQLite the table is rebuilt
with the new types and each person's keys decoded. The downgrade writes them
back as hex digits.

Revision ID: 2e6f9b4c8d31
Revises: 9c4e7a2d5b18
Create Date: 2026-12-04 20:15:00.000000

"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '2e6f9b4c8d31'
down_revision = '9c4e7a2d5b18'
branch_labels = None
depends_on = None

KEYS = ('name_key', 'pnc_key', 'search_key', 'birth_key')


def _retyped_on_sqlite(kind: Any, was: Any) -> None:
    """The table rebuilt with the keys' new type (SQLite casts each value as it copies it)."""
    with op.batch_alter_table('people') as batch:
        for key in KEYS:
            batch.alter_column(key, type_=kind, existing_type=was, existing_nullable=key != 'name_key')


def _converted_on_sqlite(convert: Callable[[Any], Any]) -> None:
    """Every person's keys written again through ``convert`` (an empty key stays empty)."""
    people = sa.table('people', sa.column('id', sa.Uuid), *(sa.column(key) for key in KEYS))
    connection = op.get_bind()
    rows = connection.execute(sa.select(people)).all()
    if rows:
        connection.execute(sa.update(people).where(people.c.id == sa.bindparam('person')).values(
            {key: sa.bindparam(f'new_{key}') for key in KEYS}),
            [{'person': row.id, **{f'new_{key}': None if getattr(row, key) is None else convert(getattr(row, key))
                                   for key in KEYS}} for row in rows])


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE people ' + ', '.join(
            f"ALTER COLUMN {key} TYPE bytea USING decode({key}, 'hex')" for key in KEYS))
    else:
        _retyped_on_sqlite(sa.LargeBinary(16), sa.String(64))  # the hex digits, as bytes: decoded next
        _converted_on_sqlite(lambda key: bytes.fromhex(key.decode() if isinstance(key, bytes) else key))


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE people ' + ', '.join(
            f"ALTER COLUMN {key} TYPE varchar(64) USING encode({key}, 'hex')" for key in KEYS))
    else:
        _converted_on_sqlite(lambda key: bytes(key).hex())  # hex digits first: the copy keeps text as it is
        _retyped_on_sqlite(sa.String(64), sa.LargeBinary(16))
