"""A child row finds its force through its parent: no foreign key of its own to ``tenants``.

Each of these tables has a composite foreign key ``(tenant_id, parent_id)``,
on columns that cannot be empty, to a force-owned parent whose own key to
``tenants`` holds; their second key, ``tenant_id -> tenants``, was a check of
every row written (a fifth of the time PostgreSQL spends taking in an import's
batch) that could never fail where the first passed.

Revision ID: 0a56d7b3abb2
Revises: a4c7e2b9d615
Create Date: 2026-12-04 12:45:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0a56d7b3abb2'
down_revision = 'a4c7e2b9d615'
branch_labels = None
depends_on = None

CHILDREN = ('billing_prices', 'billing_statement_lines', 'ledger_entries', 'encounters', 'referrals',
            'referral_transitions', 'referral_sessions', 'idempotency_keys', 'decisions', 'provider_feed_entries',
            'webhook_deliveries', 'webhook_attempts')


def upgrade():
    for table in CHILDREN:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f'fk_{table}_tenant_id_tenants'), type_='foreignkey')


def downgrade():
    for table in CHILDREN:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(op.f(f'fk_{table}_tenant_id_tenants'), 'tenants', ['tenant_id'], ['id'],
                                        ondelete='RESTRICT')
