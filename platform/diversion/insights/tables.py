"""The comparison's tables, built from the released figures for a period and a choice of filter:
the pages render them (``insights.views``), their CSVs and ``diversion insights export`` write them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from flask_babel import gettext

from diversion.insights import reading
from diversion.insights.metrics import BREAKDOWNS, ETHNIC_GROUPS, MEASURES, RATES, Rate
from diversion.insights.reading import NATIONAL, Force, Period
from diversion.insights.release import ALL
from diversion.insights.shown import (
    NOT_SHOWN,
    SUPPRESSED,
    Table,
    against,
    count_text,
    interval_text,
    rate_text,
    rate_with_interval,
)
from diversion.insights.shown import Rate as Shown
from diversion.insights.statistics import Funnel, funnel, group_ratio

OVERVIEW_RATES = ("referral", "engagement", "completion", "reoffending_12")
FILTERS = ("substance", "age_band")  # each a table of its own: one at a time, never combined
CATEGORY_NAMES = {
    "substance": {"heroin": "Heroin", "crack_cocaine": "Crack cocaine", "cocaine": "Cocaine", "mdma": "MDMA",
                  "ketamine": "Ketamine", "amphetamine": "Amphetamine",
                  "synthetic_cannabinoid": "Synthetic cannabinoid", "cannabis": "Cannabis",
                  "nitrous_oxide": "Nitrous oxide", "other": "Other", "not_recorded": "Not recorded"},
    "age_band": {"unknown": "Not known"},
    "wait": {"57+": "57 or more"},
    "ending": {"never_attended": "attended no session", "stopped_attending": "attended some, then stopped"},
    "ethnicity": ETHNIC_GROUPS,
}


def category_name(breakdown: str, category: str) -> str:
    return CATEGORY_NAMES.get(breakdown, {}).get(category, category)


@dataclass
class Choices:
    """What the reader chose (period, one filter), checked; ``problems`` name the field and the problem."""

    period: Period | None
    periods: list[Period]
    breakdown: str = ALL
    category: str = ALL
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def args(self) -> dict[str, str]:
        """The query arguments that give these choices again (links, the CSV, the charts)."""
        chosen = {"period": self.period.key} if self.period else {}
        if self.breakdown != ALL:
            chosen[self.breakdown] = self.category
        return chosen

    @property
    def filter_label(self) -> str:
        if self.breakdown == ALL:
            return ""
        return f"{BREAKDOWNS[self.breakdown].title}: {category_name(self.breakdown, self.category)}"


def _not_listed(name: str) -> str:
    """The problem of a filter's category that is not offered, in the reader's language."""
    if name == "substance":
        return str(gettext("Choose a substance from the list"))
    if name == "age_band":
        return str(gettext("Choose a age band from the list"))
    return f"Choose a {BREAKDOWNS[name].title.lower()} from the list"


def choose(period: str, filters: dict[str, str] | None = None, *, today: date) -> Choices:
    """The period (a key such as 2025 or 2025-Q3; empty: the latest year that is over) and the
    filter (at most one of ``FILTERS``) asked for, each refused with a message where not offered."""
    periods = reading.periods(today)
    default = next((found for found in periods if "-Q" not in found.key and found.complete),
                   periods[0] if periods else None)
    chosen = Choices(default, periods)
    if period:
        found = next((candidate for candidate in periods if candidate.key == period), None)
        if found is None:
            chosen.problems.append({"text": gettext("Choose a period from the list"), "href": "#period"})
        else:
            chosen.period = found
    given = [(name, value) for name, value in (filters or {}).items() if name in FILTERS and value]
    if len(given) > 1:
        chosen.problems.append({"text": gettext("Choose a substance or an age band, not both"), "href": "#substance"})
    elif given:
        name, category = given[0]
        if category not in BREAKDOWNS[name].categories:
            chosen.problems.append({"text": _not_listed(name), "href": f"#{name}"})
        else:
            chosen.breakdown, chosen.category = name, category
    return chosen


def _rate_cells(values: dict[tuple[int | None, str, str], int | None], area: int | None, rate: Rate,
                category: str = ALL) -> Shown:
    return Shown(values.get((area, rate.numerator, category)), values.get((area, rate.denominator, category)))


def _measures(rates: Sequence[Rate], *extra: str) -> list[str]:
    return list(dict.fromkeys([*extra, *(name for rate in rates for name in (rate.numerator, rate.denominator))]))


def overview(chosen: Choices, forces: Sequence[Force]) -> Table:
    """All forces' and each of ``forces``' counts and main rates for the period chosen."""
    rates = [RATES[name] for name in OVERVIEW_RATES]
    table = Table("", ["Force", "Cases decided", "Referred", *(rate.title for rate in rates)],
                  numeric=frozenset({1, 2}))
    if chosen.period is None:
        return table
    values = reading.figures(_measures(rates, "cases", "referred"), period=chosen.period)
    table.caption = f"Forces, {chosen.period.label}"
    for area, name in [(NATIONAL, "All forces"), *((force.id, force.name) for force in forces)]:
        table.rows.append([name, count_text(values.get((area, "cases", ALL))),
                           count_text(values.get((area, "referred", ALL))),
                           *(rate_with_interval(_rate_cells(values, area, rate)) for rate in rates)])
    return table


def police_time(chosen: Choices, forces: Sequence[Force]) -> Table:
    """The police time and money each of ``forces``' referrals saved in the period chosen, by the
    force's own assumptions (shown beside them)."""
    table = Table("", ["Force", "Referred", "Hours saved per referral", "Cost per hour", "Police hours saved",
                       "Cost saved"], numeric=frozenset({1, 2, 3, 4, 5}))
    if chosen.period is None:
        return table
    table.caption = f"Police time saved, {chosen.period.label}"
    values = reading.figures(["referred"], period=chosen.period)
    for force in forces:
        referred = values.get((force.id, "referred", ALL))
        hours = None if referred is None else referred * force.hours_saved / 10
        table.rows.append([force.name, count_text(referred), f"{force.hours_saved / 10:.1f}",
                           f"£{force.cost_per_hour / 100:,.2f}",
                           SUPPRESSED if hours is None else f"{hours:,.0f}",
                           SUPPRESSED if hours is None else f"£{hours * force.cost_per_hour / 100:,.0f}"])
    return table


@dataclass
class MetricPage:
    rate: Rate
    chosen: Choices
    forces: Table
    trend: Table
    funnel: Funnel | None
    points: list[tuple[str, int, float]]
    withheld: list[str]
    quarters: list[str]
    national_trend: list[float | None]
    own_trend: list[float | None]


def metric(rate: Rate, chosen: Choices, own: Force | None) -> MetricPage:
    """One rate for the period and filter chosen: every force's (or ``own``'s alone) against all
    forces' with the funnel's limits, and its trend by quarter."""
    numerator, denominator = MEASURES[rate.numerator].title, MEASURES[rate.denominator].title
    forces = Table("", ["Force", numerator, denominator, "Rate", "95% interval", "Against the national rate"],
                   numeric=frozenset({1, 2, 3}))
    trend = Table("", ["Quarter", numerator, denominator, "Rate", "95% interval"], numeric=frozenset({1, 2, 3}))
    page = MetricPage(rate, chosen, forces, trend, None, [], [], [], [], [])
    if chosen.period is None:
        return page
    where = f", {chosen.filter_label}" if chosen.filter_label else ""
    forces.caption = f"{rate.title} by force, {chosen.period.label}{where}"
    values = reading.figures([rate.numerator, rate.denominator], period=chosen.period, breakdown=chosen.breakdown,
                             categories=[chosen.category])
    everyone = reading.forces()
    rated = [(force, _rate_cells(values, force.id, rate, chosen.category)) for force in everyone]
    shown = [(force, cells) for force, cells in rated if cells.shown]
    page.withheld = [force.name for force, cells in rated if not cells.shown and (own is None or force.id == own.id)]
    if shown:
        page.funnel = funnel([(cells.events or 0, cells.total or 0) for _, cells in shown])
        page.points = [(force.name, cells.total or 0, cells.value or 0.0) for force, cells in shown]
    national = _rate_cells(values, NATIONAL, rate, chosen.category)
    forces.rows.append(["All forces", count_text(national.events), count_text(national.total),
                        rate_text(national), interval_text(national), "Not applicable"])
    for force, cells in rated:
        if own is not None and force.id != own.id:
            continue
        forces.rows.append([force.name, count_text(cells.events), count_text(cells.total), rate_text(cells),
                            interval_text(cells), against(page.funnel, cells) if page.funnel else NOT_SHOWN])
    _trend(page, own)
    return page


def _trend(page: MetricPage, own: Force | None) -> None:
    """Every quarter released, by the same filter: all forces', and the force's own."""
    rate, chosen = page.rate, page.chosen
    page.quarters = sorted(period.key for period in chosen.periods if "-Q" in period.key)
    values = reading.series([rate.numerator, rate.denominator], periods_wanted=page.quarters,
                            breakdown=chosen.breakdown, category=chosen.category)
    area = NATIONAL if own is None else own.id
    page.trend.caption = f"{rate.title} by quarter, {'all forces' if own is None else own.name}"
    if chosen.filter_label:
        page.trend.caption += f", {chosen.filter_label}"
    for quarter in page.quarters:
        national = Shown(values.get((NATIONAL, rate.numerator, quarter)),
                         values.get((NATIONAL, rate.denominator, quarter)))
        cells = Shown(values.get((area, rate.numerator, quarter)), values.get((area, rate.denominator, quarter)))
        page.national_trend.append(national.value)
        page.own_trend.append(cells.value)
        page.trend.rows.append([f"{quarter[:4]} Q{quarter[-1]}", count_text(cells.events), count_text(cells.total),
                                rate_text(cells), interval_text(cells)])




def compare(chosen: Choices, picked: Sequence[Force]) -> Table:
    """Every figure of one or two forces side by side, with all forces': each measure's count, cases
    by substance with their share, waits for a first session, how unfinished referrals ended, and
    each rate with its interval."""
    table = Table("", ["Measure", *(force.name for force in picked), "All forces"],
                  numeric=frozenset(range(1, len(picked) + 2)))
    if chosen.period is None or not 1 <= len(picked) <= 2:
        return table
    table.caption = f"{' and '.join(force.name for force in picked)}, {chosen.period.label}"
    areas: list[int | None] = [*(force.id for force in picked), NATIONAL]
    values = reading.figures(list(MEASURES), period=chosen.period)
    for name, measure in MEASURES.items():
        table.rows.append([measure.title, *(count_text(values.get((area, name, ALL))) for area in areas)])
    for breakdown, counted, label in (("substance", "cases", "Cases by substance: {category}"),
                                      ("wait", "engaged", "Days to the first session: {category}"),
                                      ("ending", "not_completed", "Not completed: {category}")):
        categories = BREAKDOWNS[breakdown].categories
        split = reading.figures([counted], period=chosen.period, breakdown=breakdown, categories=categories)
        for category in categories:
            table.rows.append([label.format(category=category_name(breakdown, category)),
                               *(_share(split.get((area, counted, category)), values.get((area, counted, ALL)))
                                 for area in areas)])
    for rate in RATES.values():
        table.rows.append([rate.title, *(rate_with_interval(_rate_cells(values, area, rate)) for area in areas)])
    return table


def _share(part: int | None, whole: int | None) -> str:
    """"120 (27%)": a category's count and its share of the whole, where both are released."""
    if part is None:
        return SUPPRESSED
    if not whole:
        return count_text(part)
    return f"{count_text(part)} ({part / whole:.0%})"


def equality(chosen: Choices, area: int | None, area_name: str) -> Table:
    """Each ethnic group's referral rate in ``area`` (a force, or all forces), and its ratio to the
    whole area's rate with its interval."""
    rate = RATES["referral"]
    table = Table("", ["Ethnic group", "Cases decided", "Referred", "Rate", "95% interval",
                       "Ratio to every group's rate"], numeric=frozenset({1, 2, 3, 5}))
    if chosen.period is None:
        return table
    table.caption = f"Referral rate by ethnic group, {area_name}, {chosen.period.label}"
    groups = list(BREAKDOWNS["ethnicity"].categories)
    values = reading.figures([rate.numerator, rate.denominator], period=chosen.period, breakdown="ethnicity",
                             categories=[ALL, *groups])
    whole = _rate_cells(values, area, rate)
    table.rows.append(["Every group", count_text(whole.total), count_text(whole.events),
                       rate_text(whole), interval_text(whole), "1.00"])
    for group in groups:
        cells = _rate_cells(values, area, rate, group)
        table.rows.append([ETHNIC_GROUPS[group], count_text(cells.total), count_text(cells.events),
                           rate_text(cells), interval_text(cells), _ratio_text(cells, whole)])
    return table


def _ratio_text(group: Shown, whole: Shown) -> str:
    """"0.82 (0.70 to 0.96)": a group's rate over the whole's, where both are shown."""
    if not group.shown or not whole.shown or not whole.events:
        return NOT_SHOWN
    try:
        ratio = group_ratio(group.events or 0, group.total or 0, whole.events or 0, whole.total or 0)
    except ValueError:  # rounding made the group's counts exceed what the whole leaves room for
        return NOT_SHOWN
    if ratio.interval is None:
        return f"{ratio.value:.2f}"
    return f"{ratio.value:.2f} ({ratio.interval.low:.2f} to {ratio.interval.high:.2f})"
