"""The national comparison's aggregates: each force's counts per month (read by the app alone), the
tables and figures released from them once protected, the forces as national pages name them, and
the months a referral change made out of date.

Global tables, holding no row about a person. On PostgreSQL the insights login
(``diversion_insights``, made by ``infra/postgres/roles.sql``) may read the released figures and
the forces' names, and nothing else; where the role does not exist yet, ``roles.sql`` grants the
same when it makes it.

Revision ID: 784b24276ca1
Revises: e7b3c9d2f8a1
Create Date: 2026-12-03 09:27:59.530056

"""
import sqlalchemy as sa
from alembic import op

import diversion.db

INSIGHTS_ROLE = 'diversion_insights'
READABLE = ('insight_forces', 'insight_tables', 'insight_figures')

# revision identifiers, used by Alembic.
revision = '784b24276ca1'
down_revision = 'e7b3c9d2f8a1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('insight_counts',
    sa.Column('force_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('breakdown', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('cases', sa.Integer(), nullable=False),
    sa.Column('eligible', sa.Integer(), nullable=False),
    sa.Column('not_eligible', sa.Integer(), nullable=False),
    sa.Column('needs_review', sa.Integer(), nullable=False),
    sa.Column('referred', sa.Integer(), nullable=False),
    sa.Column('declined', sa.Integer(), nullable=False),
    sa.Column('engaged', sa.Integer(), nullable=False),
    sa.Column('completed', sa.Integer(), nullable=False),
    sa.Column('not_completed', sa.Integer(), nullable=False),
    sa.Column('withdrawn', sa.Integer(), nullable=False),
    sa.Column('diverted_6', sa.Integer(), nullable=False),
    sa.Column('reoffended_6', sa.Integer(), nullable=False),
    sa.Column('diverted_12', sa.Integer(), nullable=False),
    sa.Column('reoffended_12', sa.Integer(), nullable=False),
    sa.Column('completed_6', sa.Integer(), nullable=False),
    sa.Column('completed_reoffended_6', sa.Integer(), nullable=False),
    sa.Column('completed_12', sa.Integer(), nullable=False),
    sa.Column('completed_reoffended_12', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['force_id'], ['tenants.id'], name=op.f('fk_insight_counts_force_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('force_id', 'month', 'breakdown', 'category', name=op.f('pk_insight_counts'))
    )
    op.create_table('insight_forces',
    sa.Column('force_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('computed_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('hours_saved', sa.Integer(), nullable=False),
    sa.Column('cost_per_hour', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['force_id'], ['tenants.id'], name=op.f('fk_insight_forces_force_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('force_id', name=op.f('pk_insight_forces'))
    )
    op.create_table('insight_stale',
    sa.Column('force_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['force_id'], ['tenants.id'], name=op.f('fk_insight_stale_force_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('force_id', 'month', name=op.f('pk_insight_stale'))
    )
    op.create_table('insight_tables',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('force_id', sa.Integer(), nullable=True),
    sa.Column('measure', sa.String(length=32), nullable=False),
    sa.Column('breakdown', sa.String(length=16), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('months', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('computed_at', diversion.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['force_id'], ['tenants.id'], name=op.f('fk_insight_tables_force_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insight_tables')),
    sa.UniqueConstraint('force_id', 'measure', 'breakdown', 'year', name=op.f('uq_insight_tables_force_id_measure_breakdown_year'))
    )
    op.create_table('insight_figures',
    sa.Column('table_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('value', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['table_id'], ['insight_tables.id'], name=op.f('fk_insight_figures_table_id_insight_tables'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('table_id', 'category', 'period', name=op.f('pk_insight_figures'))
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"""
            DO $grant$
            BEGIN
                IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{INSIGHTS_ROLE}') THEN
                    GRANT SELECT ON {', '.join(READABLE)} TO {INSIGHTS_ROLE};
                END IF;
            END
            $grant$""")


def downgrade():
    op.drop_table('insight_figures')
    op.drop_table('insight_tables')
    op.drop_table('insight_stale')
    op.drop_table('insight_forces')
    op.drop_table('insight_counts')
