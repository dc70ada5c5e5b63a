"""A provider's own rows under row-level security; webhook attempts keep how
they ended, not an error text.

- ``provider_tokens`` and ``provider_webhooks`` (API token hashes, the
  webhook endpoint and its sealed signing secret) belong to no force. On
  PostgreSQL they get ENABLE and FORCE ROW LEVEL SECURITY and the provider
  policy: a row is reachable only while ``app.provider_id`` is its provider.
- ``webhook_attempts.error`` (free text, which could tell what answers on the
  platform's network) becomes ``result``, one of delivered, refused,
  could_not_connect, timed_out, not_allowed, beside the status code.
  Existing rows: a 2xx without error was delivered, any other status was
  refused, "No answer within ..." timed out, anything else (refused
  connection, no endpoint any more) could not connect.

Revision ID: f53b6dfa34fc
Revises: 6e892dd8ff54
Create Date: 2026-12-01 09:00:00

"""
import sqlalchemy as sa
from alembic import op

from diversion.tenancy import rls

revision = "f53b6dfa34fc"
down_revision = "6e892dd8ff54"
branch_labels = None
depends_on = None

PROVIDER_OWNED = ("provider_tokens", "provider_webhooks")
RESULTS = ("delivered", "refused", "could_not_connect", "timed_out", "not_allowed")


def _rewrite_attempts(sql: str) -> None:
    """Rewrite every attempt row: the owner is bound by FORCE ROW LEVEL SECURITY
    too (and no force is in scope here), so lift it for this statement only."""
    postgresql = rls.is_postgresql(op.get_bind())
    if postgresql:
        op.execute("ALTER TABLE webhook_attempts NO FORCE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE webhook_attempts DISABLE ROW LEVEL SECURITY")
    op.execute(sql)
    if postgresql:
        op.execute("ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE webhook_attempts FORCE ROW LEVEL SECURITY")


def upgrade():
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result", sa.Enum(*RESULTS, name="attemptresult", native_enum=False,
                                                        length=20), nullable=True))
    _rewrite_attempts(
        "UPDATE webhook_attempts SET result = CASE "
        "WHEN status_code BETWEEN 200 AND 299 AND error = '' THEN 'delivered' "
        "WHEN status_code IS NOT NULL THEN 'refused' "
        "WHEN error LIKE 'No answer within%' THEN 'timed_out' "
        "ELSE 'could_not_connect' END")
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.alter_column("result", existing_type=sa.Enum(*RESULTS, name="attemptresult", native_enum=False,
                                                              length=20), nullable=False)
        batch_op.drop_column("error")

    if rls.is_postgresql(op.get_bind()):
        for table in PROVIDER_OWNED:
            for statement in rls.provider_owned_sql(table):
                op.execute(statement)


def downgrade():
    if rls.is_postgresql(op.get_bind()):
        for table in PROVIDER_OWNED:
            for statement in rls.drop_provider_owned_sql(table):
                op.execute(statement)

    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.String(length=500), server_default="", nullable=False))
    _rewrite_attempts(
        "UPDATE webhook_attempts SET error = CASE result "
        "WHEN 'delivered' THEN '' "
        "WHEN 'refused' THEN 'Answered ' || status_code || '.' "
        "WHEN 'timed_out' THEN 'No answer in time.' "
        "ELSE 'Could not connect.' END")
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.alter_column("error", existing_type=sa.String(length=500), server_default=None)
        batch_op.drop_column("result")
