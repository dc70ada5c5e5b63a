"""A force's data retention, and the platform admins' reading of the whole audit log.

- ``tenants.retention_months``: how long a force keeps its case records, in
  months; null until the force sets it (enforcing it is later work).
- ``ix_audit_events_occurred_at``: the platform's audit, newest first,
  without a scan of the whole log.
- On PostgreSQL, ``audit_read_platform``: a second read policy on the
  audit log. Its rows (every force's, and those outside any force, such as
  sign-ins) are readable while the user in scope (``app.user_id``) holds
  the platform admin role, checked against ``platform_grants`` by the
  database itself; nobody else gains anything, and writes are unchanged
  (insert only).

Revision ID: 4f1a8c2e6b90
Revises: 4f1c8e2a7b90
Create Date: 2026-12-02 02:20:00

"""
import sqlalchemy as sa
from alembic import op

from diversion.tenancy import rls

revision = "4f1a8c2e6b90"
down_revision = "4f1c8e2a7b90"
branch_labels = None
depends_on = None


# Plain ALTERs, not batch ones: SQLite adds and drops a column in place, where
# a batch rebuild of ``tenants`` would break every force-owned row's foreign key.
def upgrade():
    op.add_column("tenants", sa.Column("retention_months", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_audit_events_occurred_at"), "audit_events", ["occurred_at"], unique=False)
    if rls.is_postgresql(op.get_bind()):
        for statement in rls.audit_platform_read_sql():
            op.execute(statement)


def downgrade():
    if rls.is_postgresql(op.get_bind()):
        for statement in rls.drop_audit_platform_read_sql():
            op.execute(statement)
    op.drop_index(op.f("ix_audit_events_occurred_at"), table_name="audit_events")
    op.drop_column("tenants", "retention_months")
