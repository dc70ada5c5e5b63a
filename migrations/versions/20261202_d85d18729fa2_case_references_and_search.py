"""Case references, the standing decision on each encounter, search keys, decisions made again.

- ``tenants.reference_prefix``: the start of the force's case references,
  from its slug (``west-midlands`` → ``WM``, ``durham`` → ``DUR``).
- ``encounters.reference``: ``WM-2026-004217``, numbered per force and year
  of the decision, in the order the encounters were recorded. On
  PostgreSQL, ``encounter_numbers(force, year, count)`` hands out the next
  numbers from a sequence per force and year, which
  ``make_encounter_numbers(force, year)`` makes (committed at once, on a
  connection of its own, when first needed; made here, past the numbers
  given to existing encounters): an intake never waits for another, and a
  number taken by an intake that fails is skipped.
- ``encounters.outcome`` and ``pathway``: the standing decision (an
  override's when there is one), for the cases list.
- ``people.search_key`` and ``birth_key``: blind indexes, left empty here
  (they need the force's key): ``diversion cases index-people`` fills them.
- ``decisions.superseded_by_id``: the decision made again in its place once
  the facts it waited for were given.
- Indexes for the referrals list by deadline and by course offering.

Revision ID: d85d18729fa2
Revises: c7a3e1f09b42
Create Date: 2026-12-02 09:46:17

"""
import sqlalchemy as sa
from alembic import op

import diversion.db  # noqa: F401 - custom column types
from diversion.tenancy import rls
from diversion.tenancy.models import reference_prefix_for

revision = "d85d18729fa2"
down_revision = "c7a3e1f09b42"
branch_labels = None
depends_on = None

tenants = sa.table("tenants", sa.column("id", sa.Integer), sa.column("slug", sa.String),
                   sa.column("reference_prefix", sa.String))
encounters = sa.table("encounters", sa.column("id", sa.Uuid), sa.column("tenant_id", sa.Integer),
                      sa.column("recorded_at", sa.DateTime(timezone=True)), sa.column("reference", sa.String),
                      sa.column("outcome", sa.String), sa.column("pathway", sa.String))
decisions = sa.table("decisions", sa.column("encounter_id", sa.Uuid), sa.column("decided_on", sa.Date),
                     sa.column("decided_at", sa.DateTime(timezone=True)), sa.column("outcome", sa.String),
                     sa.column("pathway", sa.String), sa.column("override_outcome", sa.String),
                     sa.column("override_pathway", sa.String))

BACKFILLED = ("encounters", "decisions")  # tenant-owned tables read or written by the backfill
NUMBERS_FUNCTIONS = ("""
CREATE FUNCTION make_encounter_numbers(p_tenant integer, p_year integer)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I', format('encounter_numbers_%s_%s', p_tenant, p_year));
EXCEPTION WHEN unique_violation OR duplicate_table THEN
    RETURN;  -- made at the same moment by another connection
END $$
""", """
CREATE FUNCTION encounter_numbers(p_tenant integer, p_year integer, p_count integer)
RETURNS SETOF bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    BEGIN
        RETURN QUERY SELECT nextval(format('encounter_numbers_%s_%s', p_tenant, p_year)::regclass)
            FROM generate_series(1, p_count);
        RETURN;
    EXCEPTION WHEN undefined_table THEN
        NULL;
    END;
    -- No sequence (the caller had not made it first): made here, in the caller's transaction.
    PERFORM make_encounter_numbers(p_tenant, p_year);
    RETURN QUERY SELECT nextval(format('encounter_numbers_%s_%s', p_tenant, p_year)::regclass)
        FROM generate_series(1, p_count);
END $$
""")


def _backfill(connection: sa.Connection) -> dict[tuple[int, int], int]:
    """Give every force its prefix, and every encounter its reference and standing decision;
    returns the last number given per (force, year)."""
    prefixes = {}
    for tenant in connection.execute(sa.select(tenants.c.id, tenants.c.slug)).all():
        prefixes[tenant.id] = reference_prefix_for(tenant.slug)
        connection.execute(sa.update(tenants).where(tenants.c.id == tenant.id)
                           .values(reference_prefix=prefixes[tenant.id]))
    standing = {row.encounter_id: row for row in connection.execute(
        sa.select(decisions).where(decisions.c.encounter_id.is_not(None)).order_by(decisions.c.decided_at))}
    last: dict[tuple[int, int], int] = {}
    for encounter in connection.execute(sa.select(encounters.c.id, encounters.c.tenant_id, encounters.c.recorded_at)
                                        .order_by(encounters.c.tenant_id, encounters.c.recorded_at,
                                                  encounters.c.id)).all():
        decision = standing.get(encounter.id)
        year = decision.decided_on.year if decision is not None else encounter.recorded_at.year
        number = last[encounter.tenant_id, year] = last.get((encounter.tenant_id, year), 0) + 1
        values = {"reference": f"{prefixes[encounter.tenant_id]}-{year}-{number:06d}"}
        if decision is not None:
            values["outcome"] = decision.override_outcome or decision.outcome
            values["pathway"] = decision.override_pathway if decision.override_outcome else decision.pathway
        connection.execute(sa.update(encounters).where(encounters.c.id == encounter.id).values(**values))
    return last


def upgrade():
    # Added in place (no table rebuilt: on SQLite every other table points at these).
    op.add_column("tenants", sa.Column("reference_prefix", sa.String(length=8), nullable=False, server_default=""))
    op.add_column("encounters", sa.Column("reference", sa.String(length=24), nullable=False, server_default=""))
    op.add_column("encounters", sa.Column("outcome", sa.String(length=16), nullable=True))
    op.add_column("encounters", sa.Column("pathway", sa.String(length=63), nullable=True))
    op.add_column("people", sa.Column("search_key", sa.String(length=64), nullable=True))
    op.add_column("people", sa.Column("birth_key", sa.String(length=64), nullable=True))
    connection = op.get_bind()
    postgresql = rls.is_postgresql(connection)
    # The owner is bound by FORCE ROW LEVEL SECURITY too, and no force is in scope here.
    if postgresql:
        for table in BACKFILLED:
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    last = _backfill(connection)
    if postgresql:
        for table in BACKFILLED:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.create_index("ix_encounters_tenant_id_reference", "encounters", ["tenant_id", "reference"], unique=True)
    op.create_index("ix_encounters_tenant_id_offence_on", "encounters", ["tenant_id", "offence_on"])
    op.create_index("ix_encounters_tenant_id_outcome_reference", "encounters", ["tenant_id", "outcome", "reference"])
    op.create_index("ix_encounters_tenant_id_pathway_reference", "encounters", ["tenant_id", "pathway", "reference"])
    op.create_index("ix_encounters_tenant_id_recorded_by_id_reference", "encounters",
                    ["tenant_id", "recorded_by_id", "reference"])
    op.create_index("ix_people_tenant_id_birth_key", "people", ["tenant_id", "birth_key"])
    op.create_index("ix_people_tenant_id_search_key", "people", ["tenant_id", "search_key"])
    op.create_index("ix_referrals_tenant_id_deadline", "referrals", ["tenant_id", "deadline"])
    op.create_index("ix_referrals_tenant_id_offering_id_deadline", "referrals", ["tenant_id", "offering_id", "deadline"])
    # Nothing points at decisions: on SQLite the table may be rebuilt for its new key.
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("superseded_by_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_decisions_tenant_id_superseded_by_id_decisions"), "decisions",
                                    ["tenant_id", "superseded_by_id"], ["tenant_id", "id"], ondelete="RESTRICT")

    if postgresql:
        for function in NUMBERS_FUNCTIONS:
            op.execute(function)
        for (tenant_id, year), number in last.items():
            # Integers from the database's own rows, never input.
            op.execute(f"SELECT make_encounter_numbers({tenant_id}, {year})")
            op.execute(f"SELECT setval('encounter_numbers_{tenant_id}_{year}', {number})")


def downgrade():
    connection = op.get_bind()
    if rls.is_postgresql(connection):
        op.execute("DROP FUNCTION IF EXISTS encounter_numbers(integer, integer, integer)")
        op.execute("DROP FUNCTION IF EXISTS make_encounter_numbers(integer, integer)")
        for name in connection.scalars(sa.text(
                "SELECT relname FROM pg_class WHERE relkind = 'S' AND relname LIKE 'encounter\\_numbers\\_%'")):
            op.execute(f'DROP SEQUENCE IF EXISTS "{name}"')
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_decisions_tenant_id_superseded_by_id_decisions"), type_="foreignkey")
        batch_op.drop_column("superseded_by_id")
    for name, table in (("ix_referrals_tenant_id_offering_id_deadline", "referrals"),
                        ("ix_referrals_tenant_id_deadline", "referrals"),
                        ("ix_people_tenant_id_search_key", "people"), ("ix_people_tenant_id_birth_key", "people"),
                        ("ix_encounters_tenant_id_recorded_by_id_reference", "encounters"),
                        ("ix_encounters_tenant_id_pathway_reference", "encounters"),
                        ("ix_encounters_tenant_id_outcome_reference", "encounters"),
                        ("ix_encounters_tenant_id_offence_on", "encounters"),
                        ("ix_encounters_tenant_id_reference", "encounters")):
        op.drop_index(name, table_name=table)
    for table, column in (("people", "birth_key"), ("people", "search_key"), ("encounters", "pathway"),
                          ("encounters", "outcome"), ("encounters", "reference"), ("tenants", "reference_prefix")):
        op.drop_column(table, column)
