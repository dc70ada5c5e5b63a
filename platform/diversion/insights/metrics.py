"""The national comparison's metrics: one definition of each, written down once, for every force.

The unit is the *case* (an encounter) and a case belongs to the month of its
standing decision (the one not superseded; an override's outcome where a
supervisor overrode it). Every figure is a count of cases; rates are one
count over another. Each force's counts are worked out in SQL by
``count_force``, per month and per category of each breakdown, and kept in
``insight_counts``; quarters and years are sums of months.

``MEASURES`` and ``BREAKDOWNS`` say how each is counted, in the words the
pages show under "How this is counted": each name (``label``) and definition (``meaning``) is a
message, said in the reader's language (English on the command line).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import reduce
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import Date, Integer, and_, case, exists, func, literal, or_, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from diversion.cases.models import Attendance, BookedSession, Encounter, Referral, State
from diversion.eligibility.models import Decision, Outcome
from diversion.eligibility.packed import PLACE
from diversion.monitoring import AGE_BANDS, UNKNOWN_BAND
from diversion.words import Described

SHORT, LONG = 182, 365  # the reoffending windows, in days after the decision (6 and 12 months)
WINDOW_MONTHS = {SHORT: 6, LONG: 12}  # each window as pages name it, in months
NOT_RECORDED = "not_recorded"


@dataclass(frozen=True)
class Measure(Described):
    """A count of cases, with the words that define it, in the reader's language."""

    name: str
    title: LazyString  # its name on pages (``label``)
    explanation: LazyString  # how it is counted, as the page says it (``meaning``)
    window: int | None = None  # the days that must pass after a case's decision before it is counted (SHORT, LONG)


@dataclass(frozen=True)
class Rate(Described):
    """One measure over another, with the words that define it, in the reader's language."""

    name: str
    title: LazyString  # its name on pages (``label``)
    numerator: str
    denominator: str
    explanation: LazyString  # how it is counted (``meaning``)

    @property
    def window(self) -> int | None:
        """The days that must pass after a case's decision before it is counted: its denominator's."""
        return MEASURES[self.denominator].window


MEASURES: dict[str, Measure] = {measure.name: measure for measure in (
    Measure("cases", _l("Cases decided"),
            _l("Encounters with a standing eligibility decision dated in the period. A case decided again once "
               "missing facts were given counts once, in the month of its latest decision.")),
    Measure("eligible", _l("Eligible"), _l("Cases whose standing decision (a supervisor's override where there is "
                                           "one) is eligible.")),
    Measure("not_eligible", _l("Not eligible"), _l("Cases whose standing decision is not eligible.")),
    Measure("needs_review", _l("Waiting for review"),
            _l("Cases whose standing decision still needs a supervisor's review.")),
    Measure("referred", _l("Referred"), _l("Cases with a referral to a course, whatever became of it.")),
    Measure("declined", _l("Declined"), _l("Referred cases whose referral the person declined.")),
    Measure("engaged", _l("Engaged"), _l("Referred cases in which the person attended at least one session.")),
    Measure("completed", _l("Completed"), _l("Referred cases whose referral was completed.")),
    Measure("not_completed", _l("Not completed"),
            _l("Referred cases whose referral ended as not completed (the force then takes the case back). "
               "Declined and withdrawn referrals are counted apart.")),
    Measure("withdrawn", _l("Withdrawn"), _l("Referred cases whose referral was withdrawn.")),
    Measure("diverted_6", _l("Diverted, 6 months passed"),
            _l("Referred cases decided at least 182 days before the figures were computed, so that their 6-month "
               "window has fully passed."), window=SHORT),
    Measure("reoffended_6", _l("Met again within 6 months"),
            _l("Of those, cases in which the same person was met again by the same force for another offence "
               "dated in the 182 days after the decision."), window=SHORT),
    Measure("diverted_12", _l("Diverted, 12 months passed"),
            _l("Referred cases decided at least 365 days before the figures were computed."), window=LONG),
    Measure("reoffended_12", _l("Met again within 12 months"),
            _l("Of those, cases in which the same person was met again by the same force within 365 days of the "
               "decision."), window=LONG),
    Measure("completed_6", _l("Completed, 6 months passed"),
            _l("Completed cases decided at least 182 days before."), window=SHORT),
    Measure("completed_reoffended_6", _l("Completed and met again within 6 months"),
            _l("Of those, cases in which the same person was met again within 182 days of the decision."),
            window=SHORT),
    Measure("completed_12", _l("Completed, 12 months passed"),
            _l("Completed cases decided at least 365 days before."), window=LONG),
    Measure("completed_reoffended_12", _l("Completed and met again within 12 months"),
            _l("Of those, cases in which the same person was met again within 365 days of the decision."),
            window=LONG),
)}

RATES: dict[str, Rate] = {rate.name: rate for rate in (
    Rate("eligibility", _l("Eligibility rate"), "eligible", "cases",
         _l("Cases found eligible, of all cases decided.")),
    Rate("referral", _l("Referral rate"), "referred", "cases",
         _l("Cases referred to a course, of all cases decided.")),
    Rate("engagement", _l("Engagement"), "engaged", "referred",
         _l("Referred cases in which the person attended at least one session, of all referred cases.")),
    Rate("completion", _l("Completion"), "completed", "referred",
         _l("Referred cases whose referral was completed, of all referred cases (those still open count "
            "against it until they end: read recent months with care).")),
    Rate("reoffending_6", _l("Met again within 6 months"), "reoffended_6", "diverted_6",
         _l("Referred cases whose person was met again by the force within 182 days of the decision, of the "
            "referred cases whose 6 months have passed.")),
    Rate("reoffending_12", _l("Met again within 12 months"), "reoffended_12", "diverted_12",
         _l("Referred cases whose person was met again by the force within 365 days of the decision, of the "
            "referred cases whose 12 months have passed.")),
    Rate("completer_reoffending_12", _l("Met again within 12 months, completers"), "completed_reoffended_12",
         "completed_12", _l("Completed cases whose person was met again by the force within 365 days of the "
                            "decision, of the completed cases whose 12 months have passed.")),
)}


def too_soon(window: int, start: date, counted_on: date) -> bool:
    """Whether no case of a period that began on ``start`` can be counted in a measure of ``window``
    (days after the decision, ``Measure.window``) by counts made on ``counted_on``: the window had not
    passed even for a case decided on the period's first day (``count_force`` counts a case once its
    decision is ``window`` days or more before the day counted). Reasoned from the dates, since a count
    of none is withheld like any small one."""
    return start + timedelta(days=window) > counted_on


# How a case is placed in each breakdown. A case found with several substances is counted once,
# under the first of them in SUBSTANCE_ORDER (class A first), so that the categories add up.
SUBSTANCE_ORDER = ("heroin", "crack_cocaine", "cocaine", "mdma", "ketamine", "amphetamine",
                   "synthetic_cannabinoid", "cannabis", "nitrous_oxide", "other")
# The broad ethnic groups, each named in the reader's language.
ETHNIC_GROUPS: dict[str, LazyString] = {
    "A": _l("Asian or Asian British"), "B": _l("Black or Black British"), "M": _l("Mixed"),
    "O": _l("Other ethnic group"), "W": _l("White"), "N": _l("Not stated"),
}
WAIT_BANDS = ((7, "0-7"), (14, "8-14"), (28, "15-28"), (56, "29-56"), (None, "57+"))


@dataclass(frozen=True)
class Breakdown(Described):
    """A way of splitting the cases into categories, with the words that define it."""

    name: str
    title: LazyString  # its name on pages (``label``)
    categories: tuple[str, ...]
    explanation: LazyString  # how a case is placed (``meaning``)


BREAKDOWNS: dict[str, Breakdown] = {breakdown.name: breakdown for breakdown in (
    Breakdown("all", _l("All cases"), ("all",), _l("Every case, whatever its categories.")),
    Breakdown("substance", _l("Substance"), (*SUBSTANCE_ORDER, NOT_RECORDED),
              _l("The substance found. A case with several is counted once, under the first of them in this "
                 "order: heroin, crack cocaine, cocaine, MDMA, ketamine, amphetamine, synthetic cannabinoid, "
                 "cannabis, nitrous oxide, other.")),
    Breakdown("drug_class", _l("Drug class"), ("A", "B", "C", NOT_RECORDED),
              _l("The highest class among the substances found, as the officer recorded it.")),
    Breakdown("age_band", _l("Age band"), (*(band for band, _, _ in AGE_BANDS), UNKNOWN_BAND),
              _l("The person's age on the date of the offence.")),
    Breakdown("ethnicity", _l("Ethnic group"), tuple(ETHNIC_GROUPS),
              _l("The person's self-defined ethnicity, in the five broad groups of the census and not stated.")),
    Breakdown("wait", _l("Days to first session"), tuple(band for _, band in WAIT_BANDS),
              _l("Engaged cases only: the days from the decision to the first session the person attended.")),
    Breakdown("ending", _l("How referrals ended without completion"), ("never_attended", "stopped_attending"),
              _l("Not completed cases only: those in which the person attended no session, and those in which "
                 "they attended some and stopped.")),
)}
# The breakdowns that split every case, so each adds up to the whole; the others split one measure.
PARTITIONS = ("all", "substance", "drug_class", "age_band", "ethnicity")


class _Month(FunctionElement[date]):
    """The first day of a date's month (``month_of``)."""

    type = Date()
    inherit_cache = True


@compiles(_Month)
def _month_default(element: _Month, compiler: Any, **kw: Any) -> str:
    return f"date(strftime('%Y-%m-01', {compiler.process(element.clauses, **kw)}))"


@compiles(_Month, "postgresql")
def _month_postgresql(element: _Month, compiler: Any, **kw: Any) -> str:
    return f"CAST(date_trunc('month', {compiler.process(element.clauses, **kw)}) AS DATE)"


def month_of(day: ColumnElement[date]) -> ColumnElement[date]:
    """The first day of ``day``'s month, in SQL."""
    return _Month(day)


class _DaysBetween(FunctionElement[int]):
    """Whole days from the first date to the second."""

    type = Integer()
    inherit_cache = True


@compiles(_DaysBetween)
def _days_default(element: _DaysBetween, compiler: Any, **kw: Any) -> str:
    first, second = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(julianday({second}) - julianday({first}) AS INTEGER)"


@compiles(_DaysBetween, "postgresql")
def _days_postgresql(element: _DaysBetween, compiler: Any, **kw: Any) -> str:
    first, second = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(CAST({second} AS DATE) - CAST({first} AS DATE))"


def _byte(column: ColumnElement[Any], offset: int) -> ColumnElement[int]:
    """One byte of the packed facts (PostgreSQL's ``get_byte``; SQLite has the same, from ``db``)."""
    return func.get_byte(column, offset)


def _substance(facts: ColumnElement[Any]) -> ColumnElement[str]:
    place = PLACE["substances"]
    bits = _byte(facts, place.offset) * 256 + _byte(facts, place.offset + 1)
    values = place.field.values
    return case(*((bits.op("&")(1 << values.index(name)) != 0, literal(name)) for name in SUBSTANCE_ORDER),
                else_=literal(NOT_RECORDED))


def _drug_class(facts: ColumnElement[Any]) -> ColumnElement[str]:
    place = PLACE["drug_class"]
    byte = _byte(facts, place.offset)
    return case(*((byte == number, literal(value)) for number, value in enumerate(place.field.values, start=1)),
                else_=literal(NOT_RECORDED))


def _wait(days: ColumnElement[int]) -> ColumnElement[str | None]:
    """The band of days to the first session; none where the person attended none."""
    return case((days.is_(None), literal(None)),
                *((days <= limit, literal(band)) for limit, band in WAIT_BANDS if limit is not None),
                else_=literal(WAIT_BANDS[-1][1]))


@dataclass(frozen=True)
class Count:
    """A force's counts of one month in one category of one breakdown."""

    month: date
    breakdown: str
    category: str
    counts: dict[str, int]


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


# The referral states a case's referrals are counted by, and the bit each (and being referred, and
# engaging) takes in the number ``_cases`` reads them from.
_REFERRAL_STATES = (State.COMPLETED, State.NOT_COMPLETED, State.DECLINED, State.WITHDRAWN)
_REFERRAL_BITS: dict[str, int] = {"referred": 1, "engaged": 2,
                                  **{state.value: 4 << place for place, state in enumerate(_REFERRAL_STATES)}}


def _cases(force_id: int, today: date, months: Sequence[date] | None) -> Any:
    """One row per case of the force: its month, its categories and a 0/1 flag per measure."""
    decision, encounter, referral, booked = (Decision.__table__, Encounter.__table__, Referral.__table__,
                                             BookedSession.__table__)
    first_session = (
        select(func.min(booked.c.starts_at))
        .select_from(booked.join(referral, and_(referral.c.tenant_id == booked.c.tenant_id,
                                                referral.c.id == booked.c.referral_id)))
        .where(referral.c.tenant_id == force_id, referral.c.encounter_id == encounter.c.id,
               booked.c.attendance == Attendance.ATTENDED.value)
        .scalar_subquery()
    )
    # What the case's referrals reached, one bit each (``_REFERRAL_BITS``): looked up per case by
    # the referrals' index on their encounter, whatever the planner believes of the tables' sizes
    # (a join to the referrals grouped by encounter went quadratic on statistics not yet gathered).
    bits = [func.max(case((condition, bit), else_=0)) for condition, bit in (
        (literal(True), _REFERRAL_BITS["referred"]),
        (referral.c.sessions_attended > 0, _REFERRAL_BITS["engaged"]),
        *((referral.c.state == state.value, _REFERRAL_BITS[state.value]) for state in _REFERRAL_STATES))]
    reached = func.coalesce(
        select(reduce(operator.add, bits))
        .where(referral.c.tenant_id == force_id, referral.c.encounter_id == encounter.c.id)
        .scalar_subquery(), 0)
    # Each case's own values first, worked out once each (OFFSET 0 keeps PostgreSQL from pulling
    # the subqueries up into every flag that reads them).
    facts = (
        select(month_of(decision.c.decided_on).label("month"), decision.c.decided_on, decision.c.facts,
               decision.c.age_band, decision.c.ethnicity, encounter.c.person_id,
               func.coalesce(decision.c.override_outcome, decision.c.outcome).label("outcome"),
               first_session.label("first_session"), reached.label("reached"))
        .select_from(decision.join(encounter, and_(encounter.c.tenant_id == decision.c.tenant_id,
                                                   encounter.c.id == decision.c.encounter_id)))
        .where(decision.c.tenant_id == force_id, decision.c.superseded_by_id.is_(None), decision.c.decided_on <= today,
               *([or_(*(and_(decision.c.decided_on >= month, decision.c.decided_on < _next_month(month))
                        for month in months))] if months is not None else []))
        .offset(0)
        .subquery("facts")
    )
    again = aliased(Encounter.__table__, name="again")

    def met_again_within(days: int) -> ColumnElement[int]:
        return case((exists().where(
            again.c.tenant_id == force_id, again.c.person_id == facts.c.person_id,
            again.c.offence_on > facts.c.decided_on,
            _DaysBetween(facts.c.decided_on, again.c.offence_on) <= days), 1), else_=0)

    def has(name: str) -> ColumnElement[bool]:
        return (facts.c.reached // _REFERRAL_BITS[name]) % 2 == 1

    short_passed = facts.c.decided_on <= today - timedelta(days=SHORT)
    long_passed = facts.c.decided_on <= today - timedelta(days=LONG)

    def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return case((condition, 1), else_=0)

    return (
        select(
            facts.c.month,
            _substance(facts.c.facts).label("substance"),
            _drug_class(facts.c.facts).label("drug_class"),
            facts.c.age_band.label("age_band"),
            func.substr(facts.c.ethnicity, 1, 1).label("ethnicity"),
            _wait(_DaysBetween(facts.c.decided_on, facts.c.first_session)).label("wait"),
            case((has(State.NOT_COMPLETED.value),
                  case((has("engaged"), literal("stopped_attending")), else_=literal("never_attended"))),
                 else_=literal(None)).label("ending"),
            literal(1).label("cases"),
            *(flag(facts.c.outcome == value.value).label(value.value) for value in Outcome),
            flag(has("referred")).label("referred"),
            *(flag(has(name)).label(name) for name in ("engaged", *(state.value for state in _REFERRAL_STATES))),
            flag(has("referred") & short_passed).label("diverted_6"),
            (flag(has("referred") & short_passed) * met_again_within(SHORT)).label("reoffended_6"),
            flag(has("referred") & long_passed).label("diverted_12"),
            (flag(has("referred") & long_passed) * met_again_within(LONG)).label("reoffended_12"),
            flag(has(State.COMPLETED.value) & short_passed).label("completed_6"),
            (flag(has(State.COMPLETED.value) & short_passed) * met_again_within(SHORT)).label("completed_reoffended_6"),
            flag(has(State.COMPLETED.value) & long_passed).label("completed_12"),
            (flag(has(State.COMPLETED.value) & long_passed) * met_again_within(LONG)).label("completed_reoffended_12"),
        )
        .cte("cases")
    )


def count_force(session: Session, force_id: int, today: date, *,
                months: Sequence[date] | None = None) -> list[Count]:
    """The force's counts per month (``months`` alone, each the first of its month, when given),
    for every category of every breakdown, as of ``today`` (which decides whose reoffending
    windows have passed). Cases decided after ``today`` are left out. The caller puts the force
    in scope (row-level security reads only its rows)."""
    cases = _cases(force_id, today, months)
    parts = []
    for name in BREAKDOWNS:
        category = literal("all") if name == "all" else cases.c[name]
        rows = select(cases.c.month, literal(name).label("breakdown"), category.label("category"),
                      *(func.sum(cases.c[measure]).label(measure) for measure in MEASURES))
        if name in PARTITIONS:
            parts.append(rows.group_by(cases.c.month, category))
        else:
            parts.append(rows.where(category.is_not(None)).group_by(cases.c.month, category))
    found = []
    for row in session.execute(union_all(*parts)).mappings():
        month = row["month"] if isinstance(row["month"], date) else date.fromisoformat(row["month"])
        category = row["category"]
        if row["breakdown"] == "ethnicity":
            category = category if category in ETHNIC_GROUPS else "N"
        found.append(Count(month, row["breakdown"], category, {measure: int(row[measure] or 0)
                                                                for measure in MEASURES}))
    return _merged(found)


def _merged(counts: Sequence[Count]) -> list[Count]:
    """Counts of the same month and category added together (ethnicity codes outside the
    broad groups fall into "not stated")."""
    merged: dict[tuple[date, str, str], dict[str, int]] = {}
    for count in counts:
        into = merged.setdefault((count.month, count.breakdown, count.category), dict.fromkeys(MEASURES, 0))
        for measure, value in count.counts.items():
            into[measure] += value
    return [Count(month, breakdown, category, values)
            for (month, breakdown, category), values in sorted(merged.items())]

