"""The national comparison names a force in Welsh too, where the force gives its Welsh name.

``insight_forces`` gains ``name_cy``, copied from ``tenants.name_cy`` at each refresh as the
English name is (and filled here for the forces already there): a reader of Welsh reads "Heddlu
Gogledd Cymru" on the figures pages, anyone else its English name. The insights login reads the
table, as before.

Revision ID: 2c8a2b2a6989
Revises: 3e8b1f6a9c52
Create Date: 2026-12-05 05:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '2c8a2b2a6989'
down_revision = '3e8b1f6a9c52'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('insight_forces', sa.Column('name_cy', sa.String(length=200), nullable=True))
    op.execute('UPDATE insight_forces SET name_cy = (SELECT tenants.name_cy FROM tenants '
               'WHERE tenants.id = insight_forces.force_id)')


def downgrade():
    op.drop_column('insight_forces', 'name_cy')
