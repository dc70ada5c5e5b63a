"""Courses in Welsh, and the language a person prefers to be spoken to.

A course offered in Welsh has its title and description in Welsh beside the English; a force
that works in Welsh asks each person at intake which language they prefer.

Revision ID: 4d6072162e95
Revises: fc5fa8a73969
Create Date: 2026-12-03 19:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '4d6072162e95'
down_revision = 'fc5fa8a73969'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (no table rebuild): other tables hold foreign keys to both.
    op.add_column('courses', sa.Column('title_cy', sa.String(length=200), nullable=True))
    op.add_column('courses', sa.Column('description_cy', sa.String(length=2000), nullable=True))
    op.add_column('people', sa.Column('language', sa.String(length=2), nullable=True))


def downgrade():
    op.drop_column('people', 'language')
    op.drop_column('courses', 'description_cy')
    op.drop_column('courses', 'title_cy')
