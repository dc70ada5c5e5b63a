"""What the national pages read: the released figures and the forces' names, nothing else.

Every read goes through the ``insights`` bind (``INSIGHTS_DATABASE_URL``): on
PostgreSQL a login that may read ``insight_forces``, ``insight_tables`` and
``insight_figures`` alone, so no page of the comparison could read a row
about a person, or an unprotected count, even by mistake.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from flask_babel import gettext
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Connection, and_, func, select

from diversion.db import LONDON
from diversion.extensions import db
from diversion.insights.models import InsightFigure, InsightForce, InsightTable
from diversion.insights.release import ALL
from diversion.listing import PER_PAGE, matching
from diversion.words import in_language

NATIONAL = None  # the area of every force added together


@dataclass(frozen=True)
class Force:
    """A force as the comparison names it, with its assumptions for police time saved."""

    id: int
    name: str
    computed_at: datetime
    hours_saved: int  # tenths of an hour per referral
    cost_per_hour: int  # pence
    name_cy: str | None = None  # its name in Welsh, where it gives one

    def name_in(self, language: str) -> str:
        """The force's name in ``language`` ("Heddlu Gogledd Cymru" in Welsh), where it gives one; else
        its English name."""
        return in_language(self.name, self.name_cy, language)


def _connection() -> Connection:
    return db.engines["insights"].connect()


_FORCE_COLUMNS = (InsightForce.force_id, InsightForce.name, InsightForce.computed_at, InsightForce.hours_saved,
                  InsightForce.cost_per_hour, InsightForce.name_cy)


def _force(row: Any) -> Force:
    return Force(row[0], row[1], _utc(row[2]), row[3], row[4], row[5])


def forces() -> list[Force]:
    """Every force with released figures, by name."""
    with _connection() as connection:
        rows = connection.execute(select(*_FORCE_COLUMNS).order_by(InsightForce.name)).all()
    return [_force(row) for row in rows]


def counted_on() -> date | None:
    """The day, in London, of the latest count of any force's figures (None before the first): every
    figure released was counted as of that day or before, so a window (6 or 12 months after a decision)
    not passed by then had passed for no case counted."""
    with _connection() as connection:
        latest = connection.scalar(select(func.max(InsightForce.computed_at)))
    return None if latest is None else _utc(latest).astimezone(LONDON).date()


class _Page(Pagination):
    """A page of forces, read through the insights login (a COUNT and one page of rows)."""

    def _query_items(self) -> list[Any]:
        statement = self._query_args["select"]
        with _connection() as connection:
            rows = connection.execute(statement.limit(self.per_page).offset(self._query_offset)).all()
        return [_force(row) for row in rows]

    def _query_count(self) -> int:
        statement = self._query_args["select"].order_by(None).subquery()
        with _connection() as connection:
            return int(connection.scalar(select(func.count()).select_from(statement)) or 0)


def force_page(search: str, number: int, *, per_page: int = PER_PAGE) -> Pagination:
    """The page ``number`` of the forces whose name (in English or Welsh) contains ``search``, by name
    (the last page when ``number`` is past it)."""
    statement = select(*_FORCE_COLUMNS).order_by(InsightForce.name)
    if search:
        statement = statement.where(matching(search, InsightForce.__table__.c.name, InsightForce.__table__.c.name_cy))
    page = _Page(page=max(number, 1), per_page=per_page, error_out=False, select=statement)
    if page.pages and number > page.pages:
        page = _Page(page=page.pages, per_page=per_page, error_out=False, select=statement)
    return page


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """A period the figures can be read for: a year (perhaps to date) or a quarter."""

    key: str  # "2025" or "2025-Q3"
    months: int  # how many of its months are counted
    complete: bool  # over: every month of it has ended

    @property
    def year(self) -> int:
        return int(self.key[:4])

    @property
    def start(self) -> date:
        """The period's first day."""
        return start_of(self.key)

    @property
    def label(self) -> str:
        """The period in the reader's language: "2025", "2026, to date", "2025, quarter 3"."""
        if "-Q" in self.key:
            return str(gettext("%(year)s, quarter %(quarter)s", year=self.key[:4], quarter=self.key[-1]))
        if not self.complete:
            return str(gettext("%(year)s, to date", year=self.key))
        return self.key


def start_of(key: str) -> date:
    """The first day of a period, by its key ("2025": 1 January 2025; "2025-Q3": 1 July 2025)."""
    return date(int(key[:4]), int(key[-1]) * 3 - 2 if "-Q" in key else 1, 1)


def quarter_name(key: str) -> str:
    """A quarter (its key, "2025-Q3") as a table's row and a chart's axis name it, in the reader's
    language: "2025 Q3"."""
    return str(gettext("%(year)s Q%(quarter)s", year=key[:4], quarter=key[-1]))


def periods(today: date) -> list[Period]:
    """The years, then the quarters, with released figures, latest first; those not over by
    ``today`` are marked so."""
    with _connection() as connection:
        years = connection.execute(select(InsightTable.year, InsightTable.months)
                                   .where(InsightTable.force_id.is_(None), InsightTable.measure == "cases",
                                          InsightTable.breakdown == ALL)
                                   .order_by(InsightTable.year.desc())).all()
    found = [Period(str(year), months, year < today.year) for year, months in years]
    for year, months in years:
        found += [Period(f"{year}-Q{quarter}", min(3, months - (quarter - 1) * 3),
                         date(year, quarter * 3, 1) < date(today.year, today.month, 1))
                  for quarter in range((months + 2) // 3, 0, -1)]
    return found


def figures(measures: Iterable[str], *, period: Period, breakdown: str = ALL,
            categories: Sequence[str] = (ALL,)) -> dict[tuple[int | None, str, str], int | None]:
    """(area, measure, category) -> the released value (None where suppressed) of every area's
    ``measures`` in ``period``, by ``breakdown``. A figure never released is absent."""
    return _read(measures, breakdown, categories, [period.key], period.year)


def series(measures: Iterable[str], *, periods_wanted: Sequence[str], breakdown: str = ALL,
           category: str = ALL) -> dict[tuple[int | None, str, str], int | None]:
    """(area, measure, period) -> released value, for each of ``periods_wanted``."""
    years = sorted({int(period[:4]) for period in periods_wanted})
    found: dict[tuple[int | None, str, str], int | None] = {}
    for year in years:
        wanted = [period for period in periods_wanted if int(period[:4]) == year]
        rows = _rows(measures, breakdown, [category], wanted, year)
        for area, measure, _, period, value in rows:
            found[area, measure, period] = value
    return found


def _rows(measures: Iterable[str], breakdown: str, categories: Sequence[str], periods_wanted: Sequence[str],
          year: int) -> list[Any]:
    query = (select(InsightTable.force_id, InsightTable.measure, InsightFigure.category, InsightFigure.period,
                    InsightFigure.value)
             .join(InsightFigure, and_(InsightFigure.table_id == InsightTable.id,
                                       InsightFigure.category.in_(list(categories)),
                                       InsightFigure.period.in_(list(periods_wanted))))
             .where(InsightTable.year == year, InsightTable.breakdown == breakdown,
                    InsightTable.measure.in_(list(measures))))
    with _connection() as connection:
        return list(connection.execute(query).all())


def _read(measures: Iterable[str], breakdown: str, categories: Sequence[str], periods_wanted: Sequence[str],
          year: int) -> dict[tuple[int | None, str, str], int | None]:
    return {(area, measure, category): value
            for area, measure, category, _, value in _rows(measures, breakdown, categories, periods_wanted, year)}
