"""A force may give its name in Welsh.

``tenants`` gains ``name_cy`` (filled from the force file by ``tenants sync``,
or in the console): a reader of Welsh reads the force as it names itself in
Welsh ("Heddlu Gogledd Cymru"), anyone else its English name.

Revision ID: a4c7e2b9d615
Revises: d2e8a5c1f7b9
Create Date: 2026-12-04 10:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a4c7e2b9d615'
down_revision = 'd2e8a5c1f7b9'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('tenants', sa.Column('name_cy', sa.String(length=200), nullable=True))


def downgrade():
    op.drop_column('tenants', 'name_cy')
