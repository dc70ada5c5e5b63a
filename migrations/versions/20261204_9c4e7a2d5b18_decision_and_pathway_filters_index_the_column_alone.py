"""The cases list's decision and pathway filters index their column alone.

``encounters (tenant_id, outcome, reference)`` and ``(tenant_id, pathway,
reference)`` held a reference in every entry: 88 bytes an encounter each, two
fifths of the encounters' indexes. Each becomes ``(tenant_id, column)``, whose
entries of one value are kept as one key and a list of rows (a few bytes an
encounter). A page filtered on a decision or a pathway, each of them common,
reads the reference index backwards and skips the others; the same pages at a
million encounters take as long as before. The officer's filter keeps its
reference: an officer's cases are few among many, and a page of them found by
their officer alone and sorted took seven times longer.

Revision ID: 9c4e7a2d5b18
Revises: 6b1d9e3f5a27
Create Date: 2026-12-04 19:30:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '9c4e7a2d5b18'
down_revision = '6b1d9e3f5a27'
branch_labels = None
depends_on = None

COLUMNS = ('outcome', 'pathway')


def upgrade():
    for column in COLUMNS:
        op.drop_index(f'ix_encounters_tenant_id_{column}_reference', table_name='encounters')
        op.create_index(f'ix_encounters_tenant_id_{column}', 'encounters', ['tenant_id', column])


def downgrade():
    for column in COLUMNS:
        op.drop_index(f'ix_encounters_tenant_id_{column}', table_name='encounters')
        op.create_index(f'ix_encounters_tenant_id_{column}_reference', 'encounters', ['tenant_id', column, 'reference'])
