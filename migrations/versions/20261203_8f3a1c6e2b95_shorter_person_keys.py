"""People's keys are the first 128 bits of their HMAC: 32 hex digits, not 64.

The name, PNC, search and birth keys (``cases.identity``) are cut to the
first half of the digest they were: the same people are found by the same
keys, in half the room in the row and in each of the four indexes. The
columns keep their type (up to 64 characters). On PostgreSQL the keys are cut
in one rewrite of the table and its indexes, which leaves no dead rows behind.

A downgrade changes nothing: it cannot make whole digests again without the
people's identities and the key secret, so an earlier release would not find
the people recorded before it until their keys were rebuilt.

Revision ID: 8f3a1c6e2b95
Revises: 5d2e8f1a4c67
Create Date: 2026-12-03 03:10:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '8f3a1c6e2b95'
down_revision = '5d2e8f1a4c67'
branch_labels = None
depends_on = None

KEYS = ('name_key', 'pnc_key', 'search_key', 'birth_key')


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE people ' + ', '.join(
            f'ALTER COLUMN {key} TYPE varchar(64) USING left({key}, 32)' for key in KEYS))
    else:
        op.execute('UPDATE people SET '  # noqa: S608 - the migration's own column names
                   + ', '.join(f'{key} = substr({key}, 1, 32)' for key in KEYS))


def downgrade():
    pass
