"""The catalogue in full: providers' contacts; courses' kinds, format, session
length, delivery, ages, languages, areas and retirement; offerings' local
details and withdrawal. Rows seeded from the files remember whether the
console has changed them.

No new force-owned table: offerings are already under row-level security.

Revision ID: a5c1e8d2f3b4
Revises: c9e3a5b7d1f2
Create Date: 2026-11-24 11:30:00

"""
import sqlalchemy as sa
from alembic import op

import diversion.db

revision = "a5c1e8d2f3b4"
down_revision = "c9e3a5b7d1f2"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("website", sa.String(length=300), server_default="", nullable=False))
        batch_op.add_column(sa.Column("contact_email", sa.String(length=254), server_default="", nullable=False))
        batch_op.add_column(sa.Column("edited_in_console", sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kinds", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column("format", sa.String(length=30), server_default="group", nullable=False))
        batch_op.add_column(sa.Column("session_minutes", sa.Integer(), server_default="60", nullable=False))
        batch_op.add_column(sa.Column("delivery", sa.JSON(), server_default=sa.text("'[\"in_person\"]'"),
                                      nullable=False))
        batch_op.add_column(sa.Column("min_age", sa.Integer(), server_default="18", nullable=False))
        batch_op.add_column(sa.Column("max_age", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("languages", sa.JSON(), server_default=sa.text("'[\"en\"]'"), nullable=False))
        batch_op.add_column(sa.Column("areas", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column("retired_at", diversion.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("edited_in_console", sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table("offerings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("venues", sa.String(length=1000), server_default="", nullable=False))
        batch_op.add_column(sa.Column("booking_contact", sa.String(length=300), server_default="", nullable=False))
        batch_op.add_column(sa.Column("withdrawn_at", diversion.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("edited_in_console", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table("offerings", schema=None) as batch_op:
        for column in ("edited_in_console", "withdrawn_at", "booking_contact", "venues"):
            batch_op.drop_column(column)

    with op.batch_alter_table("courses", schema=None) as batch_op:
        for column in ("edited_in_console", "retired_at", "areas", "languages", "max_age", "min_age", "delivery",
                       "session_minutes", "format", "kinds"):
            batch_op.drop_column(column)

    with op.batch_alter_table("providers", schema=None) as batch_op:
        for column in ("edited_in_console", "contact_email", "website"):
            batch_op.drop_column(column)
