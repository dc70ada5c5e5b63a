"""Feed entries lose ``(tenant_id, provider_id, position)``.

A provider's feed is read by provider and position, across its forces
(``UNIQUE (provider_id, position)`` serves every read); no query asks for one
force's entries in order. The index was a second entry for every referral, and
a second write at every change of one.

Revision ID: 5a8d3f1c9e64
Revises: 2e6f9b4c8d31
Create Date: 2026-12-04 20:30:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '5a8d3f1c9e64'
down_revision = '2e6f9b4c8d31'
branch_labels = None
depends_on = None

INDEX = 'ix_provider_feed_entries_tenant_id_provider_id_position'


def upgrade():
    op.drop_index(INDEX, table_name='provider_feed_entries')


def downgrade():
    op.create_index(INDEX, 'provider_feed_entries', ['tenant_id', 'provider_id', 'position'])
