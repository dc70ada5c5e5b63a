"""Open referrals by due date: partial indexes for the overdue lists and counts of a force and of a provider.

``referrals (tenant_id, deadline, id)`` and ``referrals (provider_id, deadline, id)``, each holding only the
open referrals (offered, accepted, booked, attended, missed a session). A list or count of the referrals
open past their deadline reads the overdue ones in due-date order from these and nothing else; the
statements say the same predicate (``Referral.still_open``) so that PostgreSQL can use them.

Revision ID: 7c2e9a4b6d10
Revises: 5e7b1c9d2a40
Create Date: 2026-12-02 14:05:00

"""
import sqlalchemy as sa
from alembic import op

revision = "7c2e9a4b6d10"
down_revision = "5e7b1c9d2a40"
branch_labels = None
depends_on = None

OPEN = sa.text("state IN ('offered', 'accepted', 'booked', 'attended', 'missed')")
INDEXES = (
    ("ix_referrals_open_tenant_id_deadline", ["tenant_id", "deadline", "id"]),
    ("ix_referrals_open_provider_id_deadline", ["provider_id", "deadline", "id"]),
)


def upgrade():
    for name, columns in INDEXES:
        op.create_index(name, "referrals", columns, postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade():
    for name, _columns in INDEXES:
        op.drop_index(name, table_name="referrals")
