"""Provider workspace: referrals carry their provider; booked sessions; provider row-level security.

``referrals.provider_id`` is copied from offering -> course -> provider (and
backfilled here) so that the provider scope filters on one column. The
policies (see ``diversion.tenancy.rls``): provider staff read their own
referrals and the rows hanging off them with ``app.provider_id`` set and no
force, and while ``app.provider_id`` is set nothing else passes, whatever
force is in scope.

Revision ID: b7d2f4a6c8e1
Revises: 5c1d0e7a9b21
Create Date: 2026-11-24 11:07:32

"""
import sqlalchemy as sa
from alembic import op

import diversion.db
from diversion.tenancy import rls

revision = "b7d2f4a6c8e1"
down_revision = "5c1d0e7a9b21"
branch_labels = None
depends_on = None

P = rls.CURRENT_PROVIDER


# The policies are built from this migration's constants only, never from input.
def _of_my_referrals(table: str, column: str) -> str:
    return (f"EXISTS (SELECT 1 FROM referrals r WHERE r.tenant_id = {table}.tenant_id "  # noqa: S608
            f"AND r.{column} = {table}.id AND r.provider_id = {P})")


def _on_my_referral(table: str) -> str:
    return (f"EXISTS (SELECT 1 FROM referrals r WHERE r.tenant_id = {table}.tenant_id "  # noqa: S608
            f"AND r.id = {table}.referral_id AND r.provider_id = {P})")


# table -> (rows provider staff may reach, may they insert such rows)
PROVIDER_TABLES = {
    "referrals": (f"provider_id = {P}", False),
    "referral_transitions": (_on_my_referral("referral_transitions"), True),
    "referral_sessions": (_on_my_referral("referral_sessions"), True),
    "people": (_of_my_referrals("people", "person_id"), False),
    "encounters": (_of_my_referrals("encounters", "encounter_id"), False),
    "offerings": (f"EXISTS (SELECT 1 FROM courses c WHERE c.id = offerings.course_id "  # noqa: S608
                  f"AND c.provider_id = {P})", False),
}
CLOSED_TO_PROVIDERS = ("force_memberships", "api_tokens", "policy_versions", "decisions")


def upgrade():
    op.create_table(
        "referral_sessions",
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("starts_at", diversion.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("venue", sa.String(length=300), nullable=False),
        sa.Column("booked_at", diversion.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("booked_by_id", sa.Integer(), nullable=True),
        sa.Column("attendance", sa.Enum("attended", "did_not_attend", name="attendance", native_enum=False,
                                        length=20), nullable=True),
        sa.Column("attendance_recorded_at", diversion.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attendance_recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["attendance_recorded_by_id"], ["users.id"],
                                name=op.f("fk_referral_sessions_attendance_recorded_by_id_users"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["booked_by_id"], ["users.id"], name=op.f("fk_referral_sessions_booked_by_id_users"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["tenant_id", "referral_id"], ["referrals.tenant_id", "referrals.id"],
                                name=op.f("fk_referral_sessions_tenant_id_referral_id_referrals"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_referral_sessions_tenant_id_tenants"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_sessions")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_referral_sessions_tenant_id_id")),
        info={"tenant_scoped": True},
    )
    with op.batch_alter_table("referral_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_sessions_tenant_id_referral_id_starts_at"),
                              ["tenant_id", "referral_id", "starts_at"], unique=False)

    bind = op.get_bind()
    postgresql = rls.is_postgresql(bind)
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_id", sa.Integer(), nullable=True))
    # The owner is bound by FORCE ROW LEVEL SECURITY too: lift it for the backfill only.
    if postgresql:
        for table in ("referrals", "offerings"):
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(
        "UPDATE referrals SET provider_id = (SELECT c.provider_id FROM offerings o JOIN courses c ON c.id = o.course_id "
        "WHERE o.tenant_id = referrals.tenant_id AND o.id = referrals.offering_id)"
    )
    if postgresql:
        for table in ("referrals", "offerings"):
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.alter_column("provider_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f("ix_referrals_provider_id_state_deadline"),
                              ["provider_id", "state", "deadline"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_referrals_provider_id_providers"), "providers", ["provider_id"],
                                    ["id"], ondelete="RESTRICT")

    if postgresql:
        for statement in rls.policy_sql("referral_sessions"):
            op.execute(statement)
        for table, (rows, insert) in PROVIDER_TABLES.items():
            for statement in rls.provider_policy_sql(table, rows, insert=insert):
                op.execute(statement)
        for table in CLOSED_TO_PROVIDERS:
            for statement in rls.provider_excluded_sql(table):
                op.execute(statement)
        for statement in rls.provider_excluded_sql("audit_events", command="SELECT"):
            op.execute(statement)


def downgrade():
    if rls.is_postgresql(op.get_bind()):
        for table in (*PROVIDER_TABLES, *CLOSED_TO_PROVIDERS, "audit_events"):
            for statement in rls.drop_provider_policy_sql(table):
                op.execute(statement)
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_referrals_provider_id_providers"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_referrals_provider_id_state_deadline"))
        batch_op.drop_column("provider_id")

    with op.batch_alter_table("referral_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_sessions_tenant_id_referral_id_starts_at"))

    op.drop_table("referral_sessions")
