"""Platform admins read every force's contracts and their prices.

On PostgreSQL, a second read policy on ``billing_contracts`` and
``billing_prices``: their rows are readable, in every force, while the user
in scope (``app.user_id``) holds the platform admin role, checked against
``platform_grants`` by the database itself (as the audit log's platform
read is). The console lists every contract from one query; nobody else
gains anything, and writes stay under the force's own policy.

Revision ID: c7a3e1f09b42
Revises: bdc1d8ab2f45
Create Date: 2026-12-02 06:40:00

"""
from alembic import op

from diversion.tenancy import rls

revision = "c7a3e1f09b42"
down_revision = "bdc1d8ab2f45"
branch_labels = None
depends_on = None

_TABLES = ("billing_contracts", "billing_prices")


def upgrade():
    if rls.is_postgresql(op.get_bind()):
        for table in _TABLES:
            # Constants of this module and of rls only, never input.
            op.execute(
                f"CREATE POLICY platform_read ON {table} FOR SELECT USING (EXISTS ("  # noqa: S608
                "SELECT 1 FROM platform_grants WHERE platform_grants.role = 'platform_admin' "
                f"AND platform_grants.user_id = {rls.CURRENT_USER}))")


def downgrade():
    if rls.is_postgresql(op.get_bind()):
        for table in _TABLES:
            op.execute(f"DROP POLICY IF EXISTS platform_read ON {table}")
