"""Keeping the aggregates current: each force's counts worked out again from its case work, and the
figures released from them protected again (``insights.release``).

Two ways in. A referral change marks the month of its case out of date
(``months_out_of_date``, a listener of ``cases.events``, in the change's own
transaction; an import's batch marks its months in one statement), and a
sweep every few minutes counts those months again. Every night the whole of
every force is counted again, since some figures change with time alone (a
reoffending window passing) or with a new case (a person met again).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, partial

from flask import current_app
from sqlalchemy import Insert, delete, func, insert, select
from sqlalchemy.orm import Session

from diversion.cases.events import Moved, referrals_moved
from diversion.cases.models import Referral
from diversion.db import LONDON, among_bound, insert_skipping_conflicts, utcnow
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.forces.services import police_time
from diversion.insights.metrics import BREAKDOWNS, MEASURES, RATES, count_force, month_of
from diversion.insights.models import InsightFigure, InsightForce, InsightStale, InsightTable, insight_counts
from diversion.insights.release import ALL, Figure, counted_months, fingerprint, release
from diversion.jobs import task, unit_of_work
from diversion.tenancy.bulk import insert_rows, insert_values
from diversion.tenancy.context import current_scope, scoped
from diversion.tenancy.models import ForceStatus, Tenant

# The tables released: every measure as a whole; by a breakdown, the measures its pages show (a rate's
# two by substance and by age band, the filters of the rate pages; referrals by ethnic group; waits for
# a first session, and how referrals ended unfinished). The rest stay counted, unreleased.
_RATED = tuple(dict.fromkeys(name for rate in RATES.values() for name in (rate.numerator, rate.denominator)))
RELEASED: dict[str, tuple[str, ...]] = {
    ALL: tuple(MEASURES),
    "substance": _RATED,
    "age_band": _RATED,
    "ethnicity": ("cases", "referred"),
    "wait": ("engaged",),
    "ending": ("not_completed",),
}
REFRESH_STALE = "insights.refresh-stale"
REFRESH_ALL = "insights.refresh-all"


def refresh_force(session: Session, force: Tenant, *, today: date, now: datetime,
                  months: Sequence[date] | None = None, national: bool = True) -> int:
    """Count the force's case work again (only ``months``, when given), replace its counts with
    what was found, and release its tables of the years counted again (and, unless ``national``
    is False, the national tables of those years) protected anew; the number of rows of counts
    written. The caller puts the force in scope; this flushes and never commits."""
    found = count_force(session, force.id, today, months=months)
    gone = delete(insight_counts).where(insight_counts.c.force_id == force.id)
    if months is not None:
        gone = gone.where(insight_counts.c.month.in_(list(months)))
    session.execute(gone)
    if found:
        session.execute(insert(insight_counts), [
            {"force_id": force.id, "month": item.month, "breakdown": item.breakdown, "category": item.category,
             **item.counts} for item in found])
    hours, cost = police_time(force)
    kept = session.get(InsightForce, force.id)
    if kept is None:
        session.add(InsightForce(force_id=force.id, name=force.name, name_cy=force.name_cy, computed_at=now,
                                 hours_saved=hours, cost_per_hour=cost))
    else:
        kept.name, kept.name_cy, kept.computed_at = force.name, force.name_cy, now
        kept.hours_saved, kept.cost_per_hour = hours, cost
    session.flush()
    years = sorted({month.year for month in months} if months is not None else _years(session, force.id, today))
    for area in (force.id, None) if national else (force.id,):
        release_years(session, area, years, today=today, now=now)
    return len(found)


def _years(session: Session, force_id: int | None, today: date) -> range:
    """The years from the force's first counted month (any force's, for None) to this one."""
    query = select(insight_counts.c.month).order_by(insight_counts.c.month).limit(1)
    if force_id is not None:
        query = query.where(insight_counts.c.force_id == force_id)
    first = session.scalar(query)
    return range(first.year if first else today.year, today.year + 1)


def _counts_of(session: Session, area: int | None, year: int) -> dict[tuple[str, str], dict[tuple[str, int], int]]:
    """(breakdown, measure) -> {(category, month): count} of ``area`` (a force, or None: all forces
    added together) in ``year``, read from the counts."""
    columns = [func.sum(insight_counts.c[name]).label(name) for name in MEASURES]
    query = (select(insight_counts.c.month, insight_counts.c.breakdown, insight_counts.c.category, *columns)
             .where(insight_counts.c.month >= date(year, 1, 1), insight_counts.c.month < date(year + 1, 1, 1))
             .group_by(insight_counts.c.month, insight_counts.c.breakdown, insight_counts.c.category))
    if area is not None:
        query = query.where(insight_counts.c.force_id == area)
    found: dict[tuple[str, str], dict[tuple[str, int], int]] = {}
    for row in session.execute(query).mappings():
        month = row["month"] if isinstance(row["month"], date) else date.fromisoformat(str(row["month"]))
        for name in RELEASED.get(row["breakdown"], ()):
            if row[name]:
                found.setdefault((row["breakdown"], name), {})[row["category"], month.month] = int(row[name])
    return found


def release_years(session: Session, area: int | None, years: Sequence[int], *, today: date, now: datetime) -> int:
    """Release ``area``'s tables (a force's, or None: all forces') of ``years``, protected; the
    number of tables protected anew (a table whose counts have not changed is kept as it was).
    Flushes, never commits."""
    tables = _tables_of(session, area)
    written: list[tuple[InsightTable, list[Figure]]] = []  # tables protected anew, written at the end
    for year in years:
        months = counted_months(year, today)
        if not months:
            continue
        counts = _counts_of(session, area, year)
        if not counts:
            continue  # nothing counted that year: no table to show
        wholes: dict[str, list[Figure]] = {}
        for breakdown, measures in RELEASED.items():
            categories = (ALL,) if breakdown == ALL else BREAKDOWNS[breakdown].categories
            for measure in measures:
                cells = counts.get((breakdown, measure), {})
                table = tables.get((measure, breakdown, year))
                if not cells:  # nothing counted: no table (a page shows its figures as withheld)
                    if table is not None:
                        session.delete(table)
                    continue
                whole = None if breakdown == ALL else wholes[measure]
                done = _store(session, table, _Key(area, measure, breakdown, year, months),
                              fingerprint(cells, months, whole),
                              protect=partial(release, cells, categories, year=year, months=months, whole=whole),
                              now=now)
                if breakdown == ALL:
                    wholes[measure] = done[0]
                if done[1] is not None:
                    written.append((done[1], done[0]))
    _write_figures(session, written)
    return len(written)


def _tables_of(session: Session, area: int | None) -> dict[tuple[str, str, int], InsightTable]:
    """The area's tables stored (a force's, or None: all forces'), by measure, breakdown and year."""
    return {(table.measure, table.breakdown, table.year): table for table in session.scalars(
        select(InsightTable).where(InsightTable.force_id.is_(None) if area is None
                                   else InsightTable.force_id == area))}


@dataclass(frozen=True)
class _Key:
    area: int | None  # a force, or None: all forces
    measure: str
    breakdown: str
    year: int
    months: int


def _store(session: Session, table: InsightTable | None, key: _Key, mark: str, *,
           protect: Callable[[], list[Figure]], now: datetime) -> tuple[list[Figure], InsightTable | None]:
    """The figures of ``key``'s table (``table`` as stored, if it is): those kept where its
    fingerprint is unchanged, else released anew (``protect()``), with the table to store them in
    (added to the session, or changed in place), which ``_write_figures`` writes. (figures, the
    table protected anew or None)"""
    area, months = key.area, key.months
    if table is not None and table.fingerprint == mark and table.months == months:
        kept = session.execute(select(InsightFigure.category, InsightFigure.period, InsightFigure.value)
                               .where(InsightFigure.table_id == table.id)).all()
        return [Figure(category, period, value) for category, period, value in kept], None
    figures: list[Figure] = protect()
    if table is None:
        table = InsightTable(force_id=area, measure=key.measure, breakdown=key.breakdown, year=key.year,
                             months=months, fingerprint=mark, computed_at=now)
        session.add(table)
    else:
        table.months, table.fingerprint, table.computed_at = months, mark, now
    return figures, table


def _write_figures(session: Session, written: Sequence[tuple[InsightTable, list[Figure]]]) -> None:
    """Each table's figures in place of those it held, in a few statements for them all (the
    new tables given their keys first). Flushes."""
    replaced = [table.id for table, _ in written if table.id is not None]
    session.flush()
    if replaced:
        session.execute(delete(InsightFigure).where(InsightFigure.table_id.in_(replaced)))
    insert_rows(session, InsightFigure, [
        {"table_id": table.id, "category": figure.category, "period": figure.period, "value": figure.value}
        for table, figures in written for figure in figures])


def _forces(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).where(Tenant.status != ForceStatus.DRAFT).order_by(Tenant.name)))


def refresh_all(session: Session, *, today: date, now: datetime, counted: Collection[int] = frozenset()) -> int:
    """Count every force again, each in its own scope, then release the national tables once; the
    rows written. The months marked out of date are taken first (a change committed during the
    count marks its month again). Forces in ``counted`` are left as they are: the caller counted
    them whole (``refresh_force``) since their last change. Flushes, never commits."""
    session.execute(delete(InsightStale))
    written = 0
    for force in _forces(session):
        if force.id not in counted:
            with scoped(force.id):
                written += refresh_force(session, force, today=today, now=now, national=False)
    release_years(session, None, _years(session, None, today), today=today, now=now)
    session.flush()
    return written


def refresh_stale(session: Session, *, today: date, now: datetime) -> int:
    """Count again the months a referral change marked out of date; the rows written.

    The marks are taken (deleted) before the counting: a change committed before that is seen by
    the counting, and one committed after marks its month again for the next sweep."""
    stale: dict[int, list[date]] = {}
    for force_id, month in session.execute(delete(InsightStale).returning(InsightStale.force_id,
                                                                          InsightStale.month)):
        stale.setdefault(force_id, []).append(month)
    written = 0
    for force in _forces(session):
        if force.id in stale:
            with scoped(force.id):
                written += refresh_force(session, force, today=today, now=now, months=stale[force.id])
    session.flush()
    return written


@referrals_moved.connect
def months_out_of_date(tenant: Tenant, *, moves: Sequence[Moved], history: bool) -> None:
    """Listener of referral moves (``cases.events``): the months of the moved referrals' cases
    are marked out of date, in the caller's transaction. A month the move carries (a new
    referral's) is queued with the move's own rows (``insert_values``); the others are marked in
    one statement, each referral's case month looked up by its encounter in the decisions' index
    (a subquery per referral, never a join the planner could turn into a scan of the force's
    decisions).

    A provider's staff move referrals with their provider in scope, which hides the force's
    decisions from them; the lookup is made in the force's scope alone, and writes nothing but
    the months."""
    del history  # an import's months are as out of date as a page's
    scope = current_scope()
    if scope.provider_id is None:  # a month the mover knows is written with the move's own rows
        for month in sorted({move.decided_on.replace(day=1) for move in moves if move.decided_on is not None}):
            insert_values(db.session, InsightStale, {"force_id": tenant.id, "month": month}, skipping_conflicts=True)
        moves = [move for move in moves if move.decided_on is None]
        if not moves:
            return
    statement = _marking_months(db.session.get_bind().dialect.name)
    referrals = {"referrals": [move.referral_id for move in moves]}
    if scope.provider_id is None:
        db.session.execute(statement, referrals)
        return
    with scoped(tenant.id, scope.user_id):
        db.session.execute(statement, referrals)


@cache
def _marking_months(dialect_name: str) -> Insert:
    """``months_out_of_date``'s statement (built once for each kind of database, the referrals bound
    when it runs)."""
    decided_on = (select(Decision.decided_on)
                  .where(Decision.tenant_id == Referral.tenant_id, Decision.encounter_id == Referral.encounter_id,
                         Decision.superseded_by_id.is_(None))
                  .limit(1).scalar_subquery())
    months = (select(Referral.tenant_id, month_of(decided_on))
              .where(among_bound(Referral.id, "referrals", dialect_name), decided_on.is_not(None))
              .distinct())
    # Into the table (not the model): an ORM INSERT run with parameters would be a bulk INSERT of them.
    return insert_skipping_conflicts(InsightStale.__table__).from_select(["force_id", "month"], months)


def _today() -> tuple[date, datetime]:
    now = utcnow()
    return now.astimezone(LONDON).date(), now


@task(REFRESH_STALE, cron="*/5 * * * *", queueing_lock=REFRESH_STALE)
def refresh_stale_job(timestamp: int) -> None:
    """Every five minutes: the months referral changes made out of date, counted again."""
    del timestamp
    today, now = _today()
    with unit_of_work():
        refresh_stale(db.session(), today=today, now=now)


@task(REFRESH_ALL, cron="41 2 * * *", queueing_lock=REFRESH_ALL)
def refresh_all_job(timestamp: int) -> None:
    """Every night: every force counted again."""
    del timestamp
    today, now = _today()
    with unit_of_work():
        refresh_all(db.session(), today=today, now=now)
    current_app.logger.info("insights refreshed for %s", today)
