"""A force's counts come out of its case work: a small history whose true figures are known by hand."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from diversion.extensions import db
from diversion.insights.metrics import (
    BREAKDOWNS,
    LONG,
    MEASURES,
    PARTITIONS,
    RATES,
    SHORT,
    WINDOW_MONTHS,
    Count,
    count_force,
    too_soon,
)
from diversion.insights.statistics import wilson
from diversion.tenancy.context import scoped
from tests.cases.test_import import DURHAM_COURSE, _run, row, write
from tests.conftest import World
from tests.databases import postgres_admin_url

TODAY = date(2026, 12, 1)  # 6-month windows have passed for decisions up to 2 June 2026, 12-month up to 1 Dec 2025
MARCH, APRIL, AUGUST, FEBRUARY = date(2024, 3, 1), date(2024, 4, 1), date(2024, 8, 1), date(2025, 2, 1)


def _history(app: Flask, tmp_path: Path) -> None:
    rows = [
        # Smith (White British, 29): completed, first session 18 days after the decision...
        row(decided_on="2024-03-02", course=DURHAM_COURSE, referral_state="completed",
            referral_outcome_on="2024-03-20"),
        # ...and met again 161 days after that decision, on the street: not eligible.
        row(offence_on="2024-08-10", decided_on="2024-08-10", stage="street"),
        # Jones (Black Caribbean, 24), cocaine and cannabis, class A: declined...
        row(surname="Jones", given_name="Sam", date_of_birth="1999-12-31", ethnicity="B1", offence_on="2024-03-05",
            decided_on="2024-03-05", substances="cocaine;cannabis", drug_class="A", course=DURHAM_COURSE,
            referral_state="declined", referral_outcome_on="2024-04-01"),
        # ...met again 333 days later (25 by then), a referral still open.
        row(surname="Jones", given_name="Sam", date_of_birth="1999-12-31", ethnicity="B1", offence_on="2025-02-01",
            decided_on="2025-02-03", course=DURHAM_COURSE, referral_state="booked"),
        # Brown: the admission not known, so waiting for review.
        row(surname="Brown", given_name="Kim", admission="", decided_on="2024-03-02"),
        # Patel (Indian, 24): took the referral up, then never attended: not completed.
        row(surname="Patel", given_name="Ravi", date_of_birth="2000-01-01", ethnicity="A1", offence_on="2024-04-10",
            decided_on="2024-04-10", course=DURHAM_COURSE, referral_state="not_completed",
            referral_outcome_on="2024-05-20"),
    ]
    result = _run(app, "import", "--tenant", "durham", str(write(tmp_path / "history.csv", rows)))
    assert result.exit_code == 0, result.output


def _found(app: Flask, world: World, today: date = TODAY) -> dict[tuple[date, str, str], dict[str, int]]:
    with app.app_context(), scoped(world.b.id):
        counted = count_force(db.session, world.b.id, today)
        db.session.rollback()
    assert all(isinstance(count, Count) for count in counted)
    return {(count.month, count.breakdown, count.category): {name: value for name, value in count.counts.items()
                                                              if value} for count in counted}


def test_a_forces_counts_are_those_of_its_history(app: Flask, world: World, tmp_path: Path) -> None:
    _history(app, tmp_path)
    found = _found(app, world)

    assert found[MARCH, "all", "all"] == {
        "cases": 3, "eligible": 2, "needs_review": 1, "referred": 2, "engaged": 1, "completed": 1, "declined": 1,
        "diverted_6": 2, "diverted_12": 2, "reoffended_6": 1, "reoffended_12": 2,
        "completed_6": 1, "completed_12": 1, "completed_reoffended_6": 1, "completed_reoffended_12": 1}
    assert found[APRIL, "all", "all"] == {
        "cases": 1, "eligible": 1, "referred": 1, "not_completed": 1, "diverted_6": 1, "diverted_12": 1}
    assert found[AUGUST, "all", "all"] == {"cases": 1, "not_eligible": 1}
    # Jones' second case, decided 3 February 2025: both windows have passed by TODAY.
    assert found[FEBRUARY, "all", "all"] == {"cases": 1, "eligible": 1, "referred": 1, "diverted_6": 1,
                                             "diverted_12": 1}

    assert found[MARCH, "substance", "cannabis"]["cases"] == 2  # Smith and Brown
    assert found[MARCH, "substance", "cocaine"]["cases"] == 1  # Jones: cocaine before cannabis
    assert found[MARCH, "drug_class", "A"]["cases"] == 1
    assert found[MARCH, "drug_class", "B"]["cases"] == 2
    assert found[MARCH, "age_band", "25-34"]["cases"] == 2
    assert found[MARCH, "age_band", "18-24"]["cases"] == 1
    assert found[FEBRUARY, "age_band", "25-34"]["cases"] == 1  # Jones had turned 25
    assert found[MARCH, "ethnicity", "W"]["cases"] == 2
    assert found[MARCH, "ethnicity", "B"] == {"cases": 1, "eligible": 1, "referred": 1, "declined": 1,
                                              "diverted_6": 1, "diverted_12": 1, "reoffended_12": 1}
    assert found[APRIL, "ethnicity", "A"]["not_completed"] == 1
    assert found[MARCH, "wait", "15-28"]["engaged"] == 1
    assert (MARCH, "wait", "0-7") not in found
    assert found[APRIL, "ending", "never_attended"]["not_completed"] == 1
    assert not any(key[1] == "ending" and key[0] != APRIL for key in found)


def test_every_partition_adds_up_to_the_whole(app: Flask, world: World, tmp_path: Path) -> None:
    _history(app, tmp_path)
    found = _found(app, world)
    for month in (MARCH, APRIL, AUGUST, FEBRUARY):
        whole = found[month, "all", "all"]
        for breakdown in PARTITIONS:
            parts = [counts for (at, name, _), counts in found.items() if at == month and name == breakdown]
            assert {measure: sum(part.get(measure, 0) for part in parts) for measure in whole} == whole, breakdown


def test_rates_and_their_intervals_come_from_the_counts(app: Flask, world: World, tmp_path: Path) -> None:
    _history(app, tmp_path)
    found = _found(app, world)
    totals = {measure: sum(counts.get(measure, 0) for (_, name, _), counts in found.items() if name == "all")
              for measure in MEASURES}
    # Counted by hand above: 6 cases, 4 referred, 1 engaged, 1 completed; the 4 referred have all
    # had their 12 months, and in 2 of them the person was met again (Smith, and Jones' first).
    assert (totals["cases"], totals["referred"], totals["engaged"], totals["completed"]) == (6, 4, 1, 1)
    assert (totals["reoffended_12"], totals["diverted_12"]) == (2, 4)
    rate = RATES["reoffending_12"]
    interval = wilson(totals[rate.numerator], totals[rate.denominator])
    assert interval.low == pytest.approx(0.1500, abs=1e-4)  # 2 of 4: 50%, from 15.0% to 85.0%
    assert interval.high == pytest.approx(0.8500, abs=1e-4)


def test_a_force_counts_nothing_of_another_force(app: Flask, world: World, tmp_path: Path) -> None:
    _history(app, tmp_path)
    with app.app_context(), scoped(world.a.id):
        assert count_force(db.session, world.a.id, TODAY) == []
        db.session.rollback()


def test_every_measure_rate_and_breakdown_says_how_it_is_counted() -> None:
    for item in (*MEASURES.values(), *RATES.values(), *BREAKDOWNS.values()):
        assert item.meaning.endswith(".")
        assert len(item.meaning) > 20
    for rate in RATES.values():
        assert rate.numerator in MEASURES
        assert rate.denominator in MEASURES


def test_a_measure_of_a_window_says_it_and_its_rates_take_it() -> None:
    windowed = {name: measure.window for name, measure in MEASURES.items() if measure.window is not None}
    assert windowed == {"diverted_6": SHORT, "reoffended_6": SHORT, "completed_6": SHORT,
                        "completed_reoffended_6": SHORT, "diverted_12": LONG, "reoffended_12": LONG,
                        "completed_12": LONG, "completed_reoffended_12": LONG}
    for name, measure in windowed.items():
        assert f"{WINDOW_MONTHS[measure]} months" in MEASURES[name].label
    assert {name: rate.window for name, rate in RATES.items() if rate.window} == {
        "reoffending_6": SHORT, "reoffending_12": LONG, "completer_reoffending_12": LONG}


def test_too_soon_is_the_day_before_a_case_of_the_periods_first_day_could_be_counted() -> None:
    assert too_soon(LONG, date(2025, 1, 1), date(2025, 12, 31))
    assert not too_soon(LONG, date(2025, 1, 1), date(2026, 1, 1))  # 365 days after 1 January 2025
    assert too_soon(SHORT, date(2025, 7, 1), date(2025, 12, 29))
    assert not too_soon(SHORT, date(2025, 7, 1), date(2025, 12, 30))  # 182 days after 1 July


def test_a_period_too_soon_for_a_window_has_no_case_counted_in_it(app: Flask, world: World, tmp_path: Path) -> None:
    """Counted on any day, a month that is too soon for a window has nothing counted in that window's
    measures (too soon is never said of a month where a case may be counted); and the history's
    cases are counted once their windows pass."""
    _history(app, tmp_path)
    windows = {name: measure.window for name, measure in MEASURES.items() if measure.window is not None}
    # Around the days the history's windows pass: Smith's of 2 March 2024 (6 months: 31 August 2024;
    # 12 months: 2 March 2025), and Jones' second, of 3 February 2025.
    days = [date(2024, 8, 30), date(2024, 8, 31), date(2024, 9, 1), date(2025, 3, 1), date(2025, 3, 2),
            date(2025, 8, 4), date(2025, 8, 5), date(2026, 2, 2), date(2026, 2, 3)]
    seen: set[tuple[date, str]] = set()
    for day in days:
        for (month, breakdown, _), counts in _found(app, world, day).items():
            if breakdown != "all":
                continue
            for name, window in windows.items():
                if too_soon(window, month, day):
                    assert counts.get(name, 0) == 0, (day, month, name)
                elif counts.get(name):
                    seen.add((month, name))
    assert {(MARCH, "diverted_6"), (MARCH, "diverted_12"), (FEBRUARY, "diverted_6"),
            (FEBRUARY, "diverted_12")} <= seen
    # The first day a case may be counted: the window from the month's first day.
    assert not too_soon(LONG, FEBRUARY, FEBRUARY + timedelta(days=LONG))


@pytest.mark.skipif(postgres_admin_url() is None, reason="PostgreSQL only: its plans")
def test_each_case_looks_its_referrals_up_by_their_index(app: Flask, world: World, tmp_path: Path) -> None:
    """A case's referrals are read by a subquery per case: a join to every referral of the force,
    grouped by case, was planned as a loop over them all for each case while the tables' statistics
    lagged behind a bulk import (a force of 14,800 cases counted in 42 s, not 0.4)."""
    _history(app, tmp_path)
    sent: list[tuple[str, Any]] = []

    def note(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    with app.app_context(), scoped(world.b.id):
        event.listen(db.engine, "before_cursor_execute", note)
        try:
            count_force(db.session, world.b.id, TODAY)
        finally:
            event.remove(db.engine, "before_cursor_execute", note)
        statement, parameters = next((s, p) for s, p in sent if s.lstrip().startswith("WITH cases"))
        plan = db.session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar()
        db.session.rollback()
    assert _read_outside_subplans(plan[0]["Plan"], "referrals") == []


def _read_outside_subplans(plan: dict[str, Any], table: str, within: bool = False) -> list[str]:
    """The plan's nodes reading ``table`` (under any of its aliases: ``referrals``, ``referrals_1``...)
    that are not inside a subplan, looked up per row."""
    within = within or plan.get("Parent Relationship") == "SubPlan"
    alias = plan.get("Alias", "")
    found = [alias] if not within and (alias == table or alias.startswith(f"{table}_")) else []
    for child in plan.get("Plans", []):
        found += _read_outside_subplans(child, table, within)
    return found
