"""A force's outcome labels may be given in Welsh too; a withdrawn referral keeps no English label.

``tenants`` gains ``completed_label_cy`` and ``not_completed_label_cy`` (filled
from the force file by ``tenants sync``, or in the console). A withdrawn
referral, which records no outcome, kept the English "Withdrawn: no outcome
recorded" as its label: that becomes NULL (its state says it). The downgrade
writes it back and drops the Welsh labels.

Revision ID: 13536ea36f4f
Revises: 01555530d055
Create Date: 2026-12-03 23:10:00.000000

"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from diversion.tenancy import rls

# revision identifiers, used by Alembic.
revision = '13536ea36f4f'
down_revision = '01555530d055'
branch_labels = None
depends_on = None

WITHDRAWN = "Withdrawn: no outcome recorded"
referrals = sa.table("referrals", sa.column("state", sa.String), sa.column("outcome_code", sa.String),
                     sa.column("outcome_label", sa.String))


def _every_force(statement: sa.Update) -> None:
    """``statement`` on the referrals of every force (the owner is bound by FORCE ROW LEVEL SECURITY too)."""
    postgresql = rls.is_postgresql(op.get_bind())
    if postgresql:
        op.execute("ALTER TABLE referrals NO FORCE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE referrals DISABLE ROW LEVEL SECURITY")
    try:
        op.execute(statement)
    finally:
        if postgresql:
            op.execute("ALTER TABLE referrals ENABLE ROW LEVEL SECURITY")
            op.execute("ALTER TABLE referrals FORCE ROW LEVEL SECURITY")


def upgrade():
    op.add_column('tenants', sa.Column('completed_label_cy', sa.String(length=200), nullable=True))
    op.add_column('tenants', sa.Column('not_completed_label_cy', sa.String(length=200), nullable=True))
    _every_force(sa.update(referrals).where(referrals.c.state == "withdrawn", referrals.c.outcome_code.is_(None),
                                            referrals.c.outcome_label == WITHDRAWN).values(outcome_label=None))


def downgrade():
    _every_force(sa.update(referrals).where(referrals.c.state == "withdrawn", referrals.c.outcome_label.is_(None))
                 .values(outcome_label=WITHDRAWN))
    op.drop_column('tenants', 'not_completed_label_cy')
    op.drop_column('tenants', 'completed_label_cy')
