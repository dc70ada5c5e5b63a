"""The home page's "completed this month" reads an index of completing steps alone.

``referral_transitions (tenant_id, to_state, occurred_at)`` held every step of
every referral (three or four an encounter) for the one count that asks for the
steps to completed. It becomes ``(tenant_id, occurred_at) WHERE to_state =
'completed'``: the same count, from a few entries in a hundred.

Revision ID: d2e8a5c1f7b9
Revises: 13536ea36f4f
Create Date: 2026-12-04 03:40:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd2e8a5c1f7b9'
down_revision = '13536ea36f4f'
branch_labels = None
depends_on = None

COMPLETING = sa.text("to_state = 'completed'")


def upgrade():
    op.drop_index('ix_referral_transitions_tenant_id_to_state_occurred_at', table_name='referral_transitions')
    op.create_index('ix_referral_transitions_completed_tenant_id_occurred_at', 'referral_transitions',
                    ['tenant_id', 'occurred_at'], postgresql_where=COMPLETING, sqlite_where=COMPLETING)


def downgrade():
    op.drop_index('ix_referral_transitions_completed_tenant_id_occurred_at', table_name='referral_transitions')
    op.create_index('ix_referral_transitions_tenant_id_to_state_occurred_at', 'referral_transitions',
                    ['tenant_id', 'to_state', 'occurred_at'])
