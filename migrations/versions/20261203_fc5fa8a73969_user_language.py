"""The language a person chose to read pages in (English or Welsh), remembered from one sign-in to the next.

Revision ID: fc5fa8a73969
Revises: 784b24276ca1
Create Date: 2026-12-03 17:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'fc5fa8a73969'
down_revision = '784b24276ca1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=2), nullable=True))


def downgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('language')
