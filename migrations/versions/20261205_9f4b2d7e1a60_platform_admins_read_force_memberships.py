"""Platform admins read every force's memberships.

On PostgreSQL, a second read policy on ``force_memberships``: its rows are
readable, in every force, while the user in scope (``app.user_id``) holds
the platform admin role, checked against ``platform_grants`` by the database
itself (as the contracts' platform read is). The console's list of every
account says where each one works from one query for a page of accounts;
nobody else gains anything, and writes stay under the force's own policy.

Revision ID: 9f4b2d7e1a60
Revises: 5c2e8a1d7f40
Create Date: 2026-12-05 08:00:00

"""
from alembic import op

from diversion.tenancy import rls

revision = "9f4b2d7e1a60"
down_revision = "5c2e8a1d7f40"
branch_labels = None
depends_on = None


def upgrade():
    if rls.is_postgresql(op.get_bind()):
        # Constants of this module and of rls only, never input.
        op.execute(
            "CREATE POLICY platform_read ON force_memberships FOR SELECT USING (EXISTS ("  # noqa: S608
            "SELECT 1 FROM platform_grants WHERE platform_grants.role = 'platform_admin' "
            f"AND platform_grants.user_id = {rls.CURRENT_USER}))")


def downgrade():
    if rls.is_postgresql(op.get_bind()):
        op.execute("DROP POLICY IF EXISTS platform_read ON force_memberships")
