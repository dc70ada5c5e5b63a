"""Jobs: each run recorded with its progress (job_runs); on PostgreSQL, the job queue's tables.

job_runs is the platform's record of each run of a job (no force's data).
On PostgreSQL the queue itself is procrastinate's: its tables, types and
functions go in a schema of their own, ``procrastinate`` (the app's tables
stay alone in ``public``), made from the schema the pinned procrastinate
ships; a later version of procrastinate comes with a migration here that
applies its own migration files. Whoever may write the app's tables (the
app role) may use the queue's. SQLite keeps its queue in memory: nothing
to make there.

Revision ID: 9b2e4f7a1c3d
Revises: 2d400481e73b
Create Date: 2026-12-01 23:58:00.000000

"""
import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager

import diversion.db

# revision identifiers, used by Alembic.
revision = "9b2e4f7a1c3d"
down_revision = "2d400481e73b"
branch_labels = None
depends_on = None

SCHEMA = "procrastinate"
# The roles that may write the app's tables get the same on the queue's.
GRANT_TO_THE_APP = """
DO $$
DECLARE grantee_role text;
BEGIN
    FOR grantee_role IN
        SELECT DISTINCT grantee FROM information_schema.role_table_grants
        WHERE table_schema = 'public' AND table_name = 'tenants' AND privilege_type = 'INSERT'
          AND grantee <> current_user AND grantee <> 'PUBLIC'
    LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA procrastinate TO %I', grantee_role);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA procrastinate TO %I', grantee_role);
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA procrastinate TO %I', grantee_role);
    END LOOP;
END $$;
"""


def upgrade():
    op.create_table("job_runs",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("task", sa.String(length=100), nullable=False),
    sa.Column("job_id", sa.BigInteger(), nullable=True),
    sa.Column("state", sa.Enum("running", "succeeded", "failed", name="runstate", native_enum=False, length=20), nullable=False),
    sa.Column("done", sa.Integer(), nullable=False),
    sa.Column("total", sa.Integer(), nullable=True),
    sa.Column("note", sa.String(length=200), nullable=False),
    sa.Column("started_at", diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("finished_at", diversion.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs"))
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_runs_started_at"), ["started_at"], unique=False)

    if op.get_bind().dialect.name != "postgresql":
        return
    connection = op.get_bind()
    connection.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
    path = connection.exec_driver_sql("SELECT current_setting('search_path')").scalar_one()
    connection.exec_driver_sql(f"SELECT set_config('search_path', '{SCHEMA}', true)")
    # Straight to the driver, which then reads no parameters in them (both have % signs).
    driver = connection.connection.driver_connection
    driver.execute(SchemaManager.get_schema())
    connection.exec_driver_sql("SELECT set_config('search_path', %(path)s, true)", {"path": path})
    driver.execute(GRANT_TO_THE_APP)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.get_bind().exec_driver_sql(f"DROP SCHEMA {SCHEMA} CASCADE")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_runs_started_at"))

    op.drop_table("job_runs")
