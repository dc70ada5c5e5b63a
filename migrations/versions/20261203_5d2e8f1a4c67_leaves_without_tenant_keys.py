"""Leaves keep no second key: a referral's steps, its sessions and its feed entry lose
``UNIQUE (tenant_id, id)``.

No row points at these tables, so no composite foreign key needs the
constraint; it was a second index of every row (a referral has three or four
steps). Each keeps indexes that lead with ``tenant_id``.

Revision ID: 5d2e8f1a4c67
Revises: 3b9d5f1e7a20
Create Date: 2026-12-03 03:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '5d2e8f1a4c67'
down_revision = '3b9d5f1e7a20'
branch_labels = None
depends_on = None

LEAVES = ('referral_transitions', 'referral_sessions', 'provider_feed_entries')


def upgrade():
    for table in LEAVES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f'uq_{table}_tenant_id_id'), type_='unique')


def downgrade():
    for table in LEAVES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_unique_constraint(op.f(f'uq_{table}_tenant_id_id'), ['tenant_id', 'id'])
