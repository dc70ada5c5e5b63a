"""People's identity and contact details are sealed as bytes, not Fernet tokens in base64.

``people.identity_sealed`` and ``people.contact_sealed`` become binary
(``sealing.seal_bytes``: a version byte, a nonce and AES-GCM, 29 bytes more
than the value, where a Fernet token in base64 takes about twice the value and
90 bytes more). The details sealed already keep their Fernet token, decoded
from base64 to its bytes (a quarter smaller), which ``sealing.open_bytes``
still opens; no key is needed for that, and on PostgreSQL it is one rewrite
of the table. A value that is not a Fernet token is kept as its UTF-8 bytes
(it opened as nothing before, and opens as nothing after). Empty contact
details stay empty.

The downgrade writes every value back as a Fernet token in base64: the ones
sealed as bytes are opened and sealed again as the earlier release sealed
them (a JSON object of the fields), with the configured data keys.

Revision ID: 6b1d9e3f5a27
Revises: 0a56d7b3abb2
Create Date: 2026-12-04 19:10:00.000000

"""
from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from diversion.sealing import FERNET_TOKEN, SEALED_BYTES, open_bytes, seal_text
from diversion.tenancy import rls

# revision identifiers, used by Alembic.
revision = '6b1d9e3f5a27'
down_revision = '0a56d7b3abb2'
branch_labels = None
depends_on = None

BATCH = 2000
COLUMNS = {'identity_sealed': ('surname', 'given_name', 'date_of_birth', 'pnc_id'),
           'contact_sealed': ('phone', 'email', 'address')}
FERNET_TEXT = re.compile(r'^gAAAAA[A-Za-z0-9_-]*={0,2}$')


def _as_bytes(text: str) -> bytes:
    """A Fernet token's bytes; anything else's UTF-8 bytes."""
    if FERNET_TEXT.match(text) and len(text) % 4 == 0:
        return base64.urlsafe_b64decode(text)
    return text.encode()


def _as_text(names: tuple[str, ...]) -> Callable[[bytes], str]:
    def text(value: bytes) -> str:
        if value[:1] == bytes((FERNET_TOKEN,)):
            return base64.urlsafe_b64encode(value).decode()
        if value[:1] == bytes((SEALED_BYTES,)):
            data = json.loads(open_bytes(value))
            return seal_text(json.dumps(dict(zip(names, data, strict=False)) if isinstance(data, list) else data))
        return value.decode(errors='replace')
    return text


def _rewritten(kind: Any, convert: dict[str, Callable[[Any], Any]]) -> None:
    """Each sealed column rewritten through ``convert`` into a column of ``kind``, across every
    force (the owner is bound by FORCE ROW LEVEL SECURITY too, and no force is in scope here)."""
    connection = op.get_bind()
    postgresql = rls.is_postgresql(connection)
    for name in COLUMNS:  # SQLite adds a column NOT NULL only with a default
        if postgresql:
            op.add_column('people', sa.Column(f'{name}_new', kind, nullable=True))
        else:
            op.execute(f"ALTER TABLE people ADD COLUMN {name}_new {kind.compile(dialect=connection.dialect)} "
                       f"NOT NULL DEFAULT {'x' if isinstance(kind, sa.LargeBinary) else ''}''")
    read = sa.table('people', sa.column('id', sa.Uuid), *(sa.column(name) for name in COLUMNS))
    write = sa.table('people', sa.column('id', sa.Uuid), *(sa.column(f'{name}_new') for name in COLUMNS))
    if postgresql:
        op.execute('ALTER TABLE people NO FORCE ROW LEVEL SECURITY')
        op.execute('ALTER TABLE people DISABLE ROW LEVEL SECURITY')
    after = None
    while True:
        query = sa.select(read).order_by(read.c.id).limit(BATCH)
        rows = connection.execute(query.where(read.c.id > after) if after is not None else query).all()
        if not rows:
            break
        after = rows[-1].id
        connection.execute(sa.update(write).where(write.c.id == sa.bindparam('key')).values(
            {f'{name}_new': sa.bindparam(f'{name}_value') for name in COLUMNS}),
            [{'key': row.id, **{f'{name}_value': convert[name](getattr(row, name)) for name in COLUMNS}}
             for row in rows])
    if postgresql:
        op.execute('ALTER TABLE people ENABLE ROW LEVEL SECURITY')
        op.execute('ALTER TABLE people FORCE ROW LEVEL SECURITY')
    for name in COLUMNS:
        op.execute(f'ALTER TABLE people DROP COLUMN {name}')
        op.execute(f'ALTER TABLE people RENAME COLUMN {name}_new TO {name}')
        if postgresql:
            op.alter_column('people', name, nullable=False)


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE people ' + ', '.join(
            f"ALTER COLUMN {name} TYPE bytea USING CASE "
            f"WHEN {name} ~ '^gAAAAA[A-Za-z0-9_-]*={{0,2}}$' AND length({name}) % 4 = 0 "
            f"THEN decode(translate({name}, '-_', '+/'), 'base64') ELSE convert_to({name}, 'UTF8') END"
            for name in COLUMNS))
    else:
        _rewritten(sa.LargeBinary(), {name: lambda value: _as_bytes(str(value)) for name in COLUMNS})


def downgrade():
    _rewritten(sa.Text(), {name: _as_text(names) for name, names in COLUMNS.items()})
