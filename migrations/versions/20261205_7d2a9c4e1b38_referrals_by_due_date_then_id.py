"""A force's referrals are indexed by due date, then id: the referrals list's whole order.

The list reads every referral of the force, due latest first, ties broken by
id. Indexed by ``(tenant_id, deadline)`` alone, the referrals sharing a due
date (every referral made on one day) had to be found and sorted before the
first page could be cut: the page's cost grew with them.

Revision ID: 7d2a9c4e1b38
Revises: 5a8d3f1c9e64
Create Date: 2026-12-05 01:15:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '7d2a9c4e1b38'
down_revision = '5a8d3f1c9e64'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_referrals_tenant_id_deadline_id', 'referrals', ['tenant_id', 'deadline', 'id'])
    op.drop_index('ix_referrals_tenant_id_deadline', table_name='referrals')


def downgrade():
    op.create_index('ix_referrals_tenant_id_deadline', 'referrals', ['tenant_id', 'deadline'])
    op.drop_index('ix_referrals_tenant_id_deadline_id', table_name='referrals')
