"""The audit log outlives the forces it names: ``audit_events.tenant_id`` loses its foreign key.

A draft force (being set up in the console) can be discarded: the force and
everything it had are deleted (``forces.onboarding.discard``). Its audit
events cannot be deleted or rewritten (the app role may only append to the
log), and a foreign key would forbid deleting the force while they name it,
or (``SET NULL``) rewrite them. Without the key, the events stay exactly as
written, naming the force's id; the discard event itself names the force's
address and name. The column and its index stay.

On PostgreSQL the key is dropped in place; SQLite rebuilds the table (no
other table points at ``audit_events``, so nothing else moves).

The downgrade puts the key back; it is refused while events name a force
that no longer exists.

Revision ID: 4f0c8e2b7a61
Revises: 4f1a8c2e6b90
Create Date: 2026-12-02 02:40:00

"""
from alembic import op

revision = "4f0c8e2b7a61"
down_revision = "4f1a8c2e6b90"
branch_labels = None
depends_on = None

KEY = "fk_audit_events_tenant_id_tenants"


def upgrade():
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(KEY, type_="foreignkey")


def downgrade():
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_foreign_key(KEY, "tenants", ["tenant_id"], ["id"], ondelete="RESTRICT")
