"""Forces' single sign-on: each force's identity provider (its client secret
sealed), and the (issuer, subject) identities people sign in with.

``force_sign_ons`` belongs to its force: on PostgreSQL it is under
row-level security like every force-owned table, and closed to provider
staff. ``sign_on_identities`` is global on purpose, like ``users``: an
identity is the person's; what they may open is still their memberships.

Revision ID: 4f1c8e2a7b90
Revises: 58c770242c26
Create Date: 2026-12-02 02:30:00

"""
import sqlalchemy as sa
from alembic import op

import diversion.db
from diversion.tenancy import rls

revision = "4f1c8e2a7b90"
down_revision = "58c770242c26"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "force_sign_ons",
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret_sealed", sa.Text(), nullable=False),
        sa.Column("compulsory", sa.Boolean(), nullable=False),
        sa.Column("new_people", sa.String(length=32), nullable=False),
        sa.Column("created_at", diversion.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", diversion.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_force_sign_ons_tenant_id_tenants"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_force_sign_ons")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_force_sign_ons_tenant_id")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_force_sign_ons_tenant_id_id")),
        info={"tenant_scoped": True},
    )
    op.create_table(
        "sign_on_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", diversion.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", diversion.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sign_on_identities_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_on_identities")),
        sa.UniqueConstraint("issuer", "subject", name=op.f("uq_sign_on_identities_issuer_subject")),
    )
    with op.batch_alter_table("sign_on_identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_on_identities_user_id"), ["user_id"], unique=False)

    if rls.is_postgresql(op.get_bind()):
        for statement in [*rls.policy_sql("force_sign_ons"), *rls.provider_excluded_sql("force_sign_ons")]:
            op.execute(statement)


def downgrade():
    if rls.is_postgresql(op.get_bind()):
        op.execute("DROP POLICY IF EXISTS provider_restriction ON force_sign_ons")
        for statement in rls.drop_policy_sql("force_sign_ons"):
            op.execute(statement)
    with op.batch_alter_table("sign_on_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_on_identities_user_id"))
    op.drop_table("sign_on_identities")
    op.drop_table("force_sign_ons")
