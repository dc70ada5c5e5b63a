"""The index of an officer's cases holds the cases officers recorded, alone.

``(tenant_id, recorded_by_id, reference)`` serves the cases list filtered on
one officer. The cases a force's case system sends through the API, and those
an import brings, have no officer: they had an entry each that no filter
could ask for.

Revision ID: 3e8b1f6a9c52
Revises: 7d2a9c4e1b38
Create Date: 2026-12-05 01:25:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '3e8b1f6a9c52'
down_revision = '7d2a9c4e1b38'
branch_labels = None
depends_on = None

BY_OFFICER = sa.text("recorded_by_id IS NOT NULL")
COLUMNS = ['tenant_id', 'recorded_by_id', 'reference']


def upgrade():
    op.create_index('ix_encounters_officer_tenant_id_recorded_by_id_reference', 'encounters', COLUMNS,
                    postgresql_where=BY_OFFICER, sqlite_where=BY_OFFICER)
    op.drop_index('ix_encounters_tenant_id_recorded_by_id_reference', table_name='encounters')


def downgrade():
    op.create_index('ix_encounters_tenant_id_recorded_by_id_reference', 'encounters', COLUMNS)
    op.drop_index('ix_encounters_officer_tenant_id_recorded_by_id_reference', table_name='encounters')
