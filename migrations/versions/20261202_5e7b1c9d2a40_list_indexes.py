"""Indexes for lists that scale: the provider's referrals by due date, the courses completed in a month,
the decisions waiting for review.

- ``referrals (provider_id, deadline, id)``: the provider's list by due date, a page at a time.
- ``referral_transitions (tenant_id, to_state, occurred_at)``: the home page's "completed this month".
- ``decisions (tenant_id, outcome, decided_at)``: the home page's count of decisions waiting for review,
  and the review queue, oldest first.

Revision ID: 5e7b1c9d2a40
Revises: d85d18729fa2
Create Date: 2026-12-02 14:10:00

"""
from alembic import op

revision = "5e7b1c9d2a40"
down_revision = "d85d18729fa2"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_referrals_provider_id_deadline_id", "referrals", ["provider_id", "deadline", "id"]),
    ("ix_referral_transitions_tenant_id_to_state_occurred_at", "referral_transitions",
     ["tenant_id", "to_state", "occurred_at"]),
    ("ix_decisions_tenant_id_outcome_decided_at", "decisions", ["tenant_id", "outcome", "decided_at"]),
)


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade():
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
