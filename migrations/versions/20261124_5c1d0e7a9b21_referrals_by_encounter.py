"""Index referrals by encounter (the open-referral check when referring, and imports).

Revision ID: 5c1d0e7a9b21
Revises: 8bb6b49f97b6
Create Date: 2026-11-24 10:36:00

"""
from alembic import op

revision = "5c1d0e7a9b21"
down_revision = "8bb6b49f97b6"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referrals_tenant_id_encounter_id"), ["tenant_id", "encounter_id"],
                              unique=False)


def downgrade():
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referrals_tenant_id_encounter_id"))
