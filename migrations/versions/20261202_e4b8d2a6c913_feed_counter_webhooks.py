"""A provider's feed counter says whether it wants webhooks.

A move takes its feed position and learns, in the same statement, whether
to queue a delivery, instead of reading the provider's own endpoint row
(which needs the provider's scope written, read, and taken back). Counters
are set from the endpoints that exist; a provider with an endpoint and no
counter yet gets one.

Revision ID: e4b8d2a6c913
Revises: c370e5872827
Create Date: 2026-12-02 20:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e4b8d2a6c913'
down_revision = 'c370e5872827'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('provider_feed_counters',
                  sa.Column('webhooks', sa.Boolean(), server_default=sa.false(), nullable=False))
    # The migration runs as the owner, whom FORCE ROW LEVEL SECURITY binds on the endpoints'
    # table: read it through a scope that sees every provider's row, one provider at a time.
    bind = op.get_bind()
    providers = [row[0] for row in bind.execute(sa.text("SELECT id FROM providers"))]
    for provider_id in providers:
        if bind.dialect.name == 'postgresql':
            bind.execute(sa.text("SELECT set_config('app.provider_id', :p, true)"), {"p": str(provider_id)})
        if bind.execute(sa.text("SELECT 1 FROM provider_webhooks WHERE provider_id = :p"),
                        {"p": provider_id}).first() is None:
            continue
        noted = bind.execute(sa.text("UPDATE provider_feed_counters SET webhooks = true WHERE provider_id = :p"),
                             {"p": provider_id})
        if noted.rowcount == 0:
            bind.execute(sa.text("INSERT INTO provider_feed_counters (provider_id, last_position, webhooks) "
                                 "VALUES (:p, 0, true)"), {"p": provider_id})
    if bind.dialect.name == 'postgresql':
        bind.execute(sa.text("SELECT set_config('app.provider_id', '', true)"))


def downgrade():
    with op.batch_alter_table('provider_feed_counters') as batch:
        batch.drop_column('webhooks')
