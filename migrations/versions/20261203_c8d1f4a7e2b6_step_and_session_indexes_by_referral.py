"""A referral's steps and sessions are found by the referral alone.

``referral_transitions (tenant_id, referral_id, occurred_at)`` and
``referral_sessions (tenant_id, referral_id, starts_at)`` become
``(tenant_id, referral_id)``: a referral has a handful of each, read together
and put in order as they are read. With the time gone from the key, the rows
of one referral share one index entry (PostgreSQL keeps equal keys once with
their rows), where each had its own.

Revision ID: c8d1f4a7e2b6
Revises: a4c7e2f9d1b3
Create Date: 2026-12-03 03:40:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c8d1f4a7e2b6'
down_revision = 'a4c7e2f9d1b3'
branch_labels = None
depends_on = None

INDEXES = (('referral_transitions', 'occurred_at'), ('referral_sessions', 'starts_at'))


def upgrade():
    for table, when in INDEXES:
        op.drop_index(f'ix_{table}_tenant_id_referral_id_{when}', table_name=table)
        op.create_index(f'ix_{table}_tenant_id_referral_id', table, ['tenant_id', 'referral_id'])


def downgrade():
    for table, when in INDEXES:
        op.drop_index(f'ix_{table}_tenant_id_referral_id', table_name=table)
        op.create_index(f'ix_{table}_tenant_id_referral_id_{when}', table, ['tenant_id', 'referral_id', when])
