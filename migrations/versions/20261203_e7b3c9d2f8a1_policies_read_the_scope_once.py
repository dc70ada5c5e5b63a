"""Row-level security reads the scope once per statement, not once per row.

Every policy compared its rows with ``NULLIF(current_setting('app.…', true),
'')::integer``, which PostgreSQL worked out again for each row it looked at,
and could not estimate: the planner guessed that a force's or a provider's
rows were a few dozen whatever their number, and sorted and counted lists as
if they were. Each setting is now a scalar subquery, ``(SELECT NULLIF(…))``,
which PostgreSQL evaluates once per statement (an InitPlan), and plans with
the table's own statistics. The rows each policy lets through are the same.

PostgreSQL only: SQLite has no row-level security.

Revision ID: e7b3c9d2f8a1
Revises: c8d1f4a7e2b6
Create Date: 2026-12-03 07:20:00.000000

"""
import re

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e7b3c9d2f8a1'
down_revision = 'c8d1f4a7e2b6'
branch_labels = None
depends_on = None

# A setting as PostgreSQL prints a policy's expression: per row, and read once.
_PER_ROW = r"\(NULLIF\(current_setting\('app\.[a-z_]+'::text, true\), ''::text\)\)::integer"
_BARE = re.compile(r"(?<!\( SELECT )" + _PER_ROW)
_ONCE = re.compile(r"\( SELECT (" + _PER_ROW + r") AS \"?nullif\"?\)")
_POLICIES = sa.text("SELECT tablename, policyname, qual, with_check FROM pg_policies "
                    "WHERE schemaname = current_schema() ORDER BY tablename, policyname")


def _rewrite(change):
    """Every policy of the schema with ``change`` made to its USING and WITH CHECK expressions."""
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    for table, name, using, check in bind.execute(_POLICIES).all():
        clauses = [f"{word} ({change(expression)})" for word, expression in (("USING", using), ("WITH CHECK", check))
                   if expression is not None and change(expression) != expression]
        if clauses:
            op.execute(f'ALTER POLICY "{name}" ON "{table}" ' + " ".join(clauses))


def upgrade():
    _rewrite(lambda expression: _BARE.sub(lambda found: f"( SELECT {found.group(0)})", expression))


def downgrade():
    _rewrite(lambda expression: _ONCE.sub(lambda found: found.group(1), expression))
