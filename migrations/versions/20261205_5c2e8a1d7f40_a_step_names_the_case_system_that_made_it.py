"""A referral's step names the case system that made it through the API.

A step a person made names them (``actor_id``). One made with a token had no
actor, as one the platform made itself (a nightly job, an import), and the
pages named the force for both: a provider's case system booking a session
read as the force booking it. ``by_system`` says whose system it was
(``force`` or ``provider``); empty for a person and for the platform. Steps
made before stay empty: which token made them is in the audit log alone.

Revision ID: 5c2e8a1d7f40
Revises: 2c8a2b2a6989
Create Date: 2026-12-05 04:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '5c2e8a1d7f40'
down_revision = '2c8a2b2a6989'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('referral_transitions', sa.Column('by_system', sa.String(length=20), nullable=True))


def downgrade():
    with op.batch_alter_table('referral_transitions') as batch:
        batch.drop_column('by_system')
