"""Case references: ``WM-2026-004217``, short, per force and year, in order.

Each encounter gets the force's prefix (``Tenant.reference_prefix``), the
year of its decision and a number that counts the force's encounters of
that year from 1. On PostgreSQL the numbers come from a sequence per force
and year (``encounter_numbers``; the first intake of a force and year in a
process makes sure of its sequence on a connection of its own, committed at
once, ``make_encounter_numbers``): taking one
never waits for another intake, and a number taken by an intake that then
fails is skipped, never reused. On
SQLite, which writes one transaction at a time, the next number follows
the largest reference of the force and year.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import bindparam, func, select, text

from diversion.cases.models import Encounter
from diversion.extensions import db
from diversion.tenancy.models import Tenant

DIGITS = 6


def format_reference(prefix: str, year: int, number: int) -> str:
    return f"{prefix}-{year}-{number:0{DIGITS}d}"


_NUMBERS = text("SELECT encounter_numbers(:numbers_tenant, :numbers_year, :numbers_count)")
# The next number, as a table of one row for a statement that reads something else beside it
# (its parameters: ``numbering``).
NEXT_NUMBER = func.encounter_numbers(bindparam("numbers_tenant"), bindparam("numbers_year"),
                                     bindparam("numbers_count")).table_valued("number").render_derived(name="next_number")


def numbered_in_sequence() -> bool:
    """Whether the database hands out the numbers (PostgreSQL's sequences: ``numbering``, ``NEXT_NUMBER``)."""
    return db.session.get_bind().dialect.name == "postgresql"


def numbering(tenant: Tenant, year: int, count: int = 1) -> dict[str, int]:
    """The parameters of ``encounter_numbers`` (``_NUMBERS``, ``NEXT_NUMBER``) for ``count`` numbers of
    ``tenant`` for ``year``, on PostgreSQL; the force's sequence for the year is made first if new."""
    made: set[tuple[int, int]] = current_app.extensions.setdefault("encounter_numbers", set())
    if (tenant.id, year) not in made:
        # Made (if new) and committed apart, before this transaction first looks for it:
        # a transaction that has looked for a sequence in vain does not see it made later.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as apart:
            apart.execute(text("SELECT make_encounter_numbers(:tenant, :year)"), {"tenant": tenant.id, "year": year})
        made.add((tenant.id, year))
    # (made in this transaction, should it have gone since)
    return {"numbers_tenant": tenant.id, "numbers_year": year, "numbers_count": count}


def take_references(tenant: Tenant, year: int, count: int = 1) -> list[str]:
    """``count`` new references of ``tenant`` for ``year``, in order."""
    if count < 1:
        return []
    session = db.session
    if numbered_in_sequence():
        numbers = list(db.session.scalars(_NUMBERS, numbering(tenant, year, count)))
    else:
        stem = f"{tenant.reference_prefix}-{year}-"
        latest = session.scalar(select(func.max(Encounter.reference)).where(
            Encounter.tenant_id == tenant.id, Encounter.reference.startswith(stem, autoescape=True)))
        first = int(latest.rsplit("-", 1)[1]) + 1 if latest else 1
        numbers = list(range(first, first + count))
    return [format_reference(tenant.reference_prefix, year, number) for number in numbers]


def looks_like_reference(text_: str) -> bool:
    """Whether a search text is shaped as a case reference (letters, a year, a number)."""
    parts = text_.strip().upper().split("-")
    return len(parts) == 3 and parts[0].isalpha() and parts[1].isdigit() and len(parts[1]) == 4 \
        and parts[2].isdigit()


def normalise_reference(text_: str) -> str:
    """A reference as typed (any case, number with or without its zeros) as stored."""
    prefix, year, number = text_.strip().upper().split("-")
    return format_reference(prefix, int(year), int(number))
