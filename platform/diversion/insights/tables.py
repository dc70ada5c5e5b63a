"""The comparison's tables, built from the released figures for a period and a choice of filter:
the pages render them (``insights.views``), their CSVs and ``diversion insights export`` write them.

Every heading, caption and word of a cell is in the reader's language (English on the command line,
outside any request); a page and its CSV are built by the same table, so they say the same (the
page in numbers for people, the CSV in plain numbers: ``insights.shown``).

A figure that needs a window to pass after each case's decision (6 or 12 months: ``Measure.window``)
says "Too soon" for a period that began too recently for the window to have passed for any of its
cases by the day the figures were counted. That is reasoned from the dates alone, never from the
counts: a count of none is withheld like any small one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from diversion.insights import reading
from diversion.insights.metrics import BREAKDOWNS, ETHNIC_GROUPS, MEASURES, RATES, WINDOW_MONTHS, Rate, too_soon
from diversion.insights.reading import NATIONAL, Force, Period, quarter_name, start_of
from diversion.insights.release import ALL
from diversion.insights.shown import (
    INTERVAL,
    NOT_SHOWN,
    PERCENT,
    PLAIN,
    POUNDS,
    RATE,
    RATIO,
    SHARE,
    SUPPRESSED,
    Cell,
    Kind,
    Table,
    against,
    between,
    count,
    interval,
    interval_heading,
    number,
    pounds,
    rate_with_interval,
)
from diversion.insights.shown import Rate as Shown
from diversion.insights.shown import rate as rate_cell
from diversion.insights.statistics import Funnel, funnel, group_ratio
from diversion.words import current_language

OVERVIEW_RATES = ("referral", "engagement", "completion", "reoffending_12")
FILTERS = ("substance", "age_band")  # each a table of its own: one at a time, never combined
# The categories named in words, in the reader's language; any other is named by itself ("25-34").
CATEGORY_NAMES: dict[str, dict[str, LazyString]] = {
    "substance": {"heroin": _l("Heroin"), "crack_cocaine": _l("Crack cocaine"), "cocaine": _l("Cocaine"),
                  "mdma": _l("MDMA"), "ketamine": _l("Ketamine"), "amphetamine": _l("Amphetamine"),
                  "synthetic_cannabinoid": _l("Synthetic cannabinoid"), "cannabis": _l("Cannabis"),
                  "nitrous_oxide": _l("Nitrous oxide"), "other": _l("Other"), "not_recorded": _l("Not recorded")},
    "age_band": {"unknown": _l("Not known")},
    "wait": {"57+": _l("57 or more")},
    "ending": {"never_attended": _l("attended no session"),
               "stopped_attending": _l("attended some, then stopped")},
    "ethnicity": ETHNIC_GROUPS,
}
# The problem of a filter's category that is not offered, for each of ``FILTERS``.
NOT_LISTED: dict[str, LazyString] = {
    "substance": _l("Choose a substance from the list"),
    "age_band": _l("Choose an age band from the list"),
}


def force_name(force: Force) -> str:
    """A force as pages name it, in the reader's language ("Heddlu Gogledd Cymru" in Welsh)."""
    return force.name_in(current_language())


def category_name(breakdown: str, category: str) -> str:
    """A category as pages name it, in the reader's language ("cannabis": "Cannabis")."""
    named = CATEGORY_NAMES.get(breakdown, {}).get(category)
    return category if named is None else str(named)


@dataclass
class Choices:
    """What the reader chose (period, one filter), checked; ``problems`` name the field and the problem."""

    period: Period | None
    periods: list[Period]
    breakdown: str = ALL
    category: str = ALL
    problems: list[dict[str, str]] = field(default_factory=list)
    counted_on: date | None = None  # the day of the latest count of the figures (``reading.counted_on``)

    def soon(self, window: int | None, start: date | None = None) -> int | None:
        """The months of ``window`` (days; None: a figure that needs none) where they cannot have passed
        for any case of the period beginning on ``start`` (the period chosen where not given) by the day
        the figures were counted: the figure is too soon to tell. None where they may have."""
        start = start or (self.period.start if self.period else None)
        if window is None or start is None or self.counted_on is None or not too_soon(window, start, self.counted_on):
            return None
        return WINDOW_MONTHS[window]

    @property
    def args(self) -> dict[str, str]:
        """The query arguments that give these choices again (links, the CSV, the charts)."""
        chosen = {"period": self.period.key} if self.period else {}
        if self.breakdown != ALL:
            chosen[self.breakdown] = self.category
        return chosen

    @property
    def filtered(self) -> dict[str, str]:
        """The filter chosen in words, as a caption's ``filter`` and ``category`` (``{}`` for none):
        "Substance" and "Cannabis"."""
        if self.breakdown == ALL:
            return {}
        return {"filter": BREAKDOWNS[self.breakdown].label, "category": category_name(self.breakdown, self.category)}


def choose(period: str, filters: dict[str, str] | None = None, *, today: date) -> Choices:
    """The period (a key such as 2025 or 2025-Q3; empty: the latest year that is over) and the
    filter (at most one of ``FILTERS``) asked for, each refused with a message where not offered."""
    periods = reading.periods(today)
    default = next((found for found in periods if "-Q" not in found.key and found.complete),
                   periods[0] if periods else None)
    chosen = Choices(default, periods, counted_on=reading.counted_on())
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
            chosen.problems.append({"text": str(NOT_LISTED[name]), "href": f"#{name}"})
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
    table = Table("", [gettext("Force"), MEASURES["cases"].label, MEASURES["referred"].label,
                       *(rate.label for rate in rates)], [PLAIN, PLAIN, PLAIN, *(RATE for _ in rates)],
                  numeric=frozenset({1, 2}))
    if chosen.period is None:
        return table
    values = reading.figures(_measures(rates, "cases", "referred"), period=chosen.period)
    table.caption = str(gettext("Forces, %(period)s", period=chosen.period.label))
    for area, name in [(NATIONAL, gettext("All forces")), *((force.id, force_name(force)) for force in forces)]:
        table.add(name, count(values.get((area, "cases", ALL))), count(values.get((area, "referred", ALL))),
                  *(rate_with_interval(_rate_cells(values, area, rate), chosen.soon(rate.window)) for rate in rates))
    return table



def police_time(chosen: Choices, forces: Sequence[Force]) -> Table:
    """The police time and money each of ``forces``' referrals saved in the period chosen, by the
    force's own assumptions (shown beside them)."""
    table = Table("", [gettext("Force"), MEASURES["referred"].label, gettext("Hours saved per referral"),
                       gettext("Cost per hour"), gettext("Police hours saved"), gettext("Cost saved")],
                  [PLAIN, PLAIN, PLAIN, POUNDS, PLAIN, POUNDS], numeric=frozenset({1, 2, 3, 4, 5}))
    if chosen.period is None:
        return table
    table.caption = str(gettext("Police time saved, %(period)s", period=chosen.period.label))
    values = reading.figures(["referred"], period=chosen.period)
    for force in forces:
        referred = values.get((force.id, "referred", ALL))
        hours = None if referred is None else referred * force.hours_saved / 10
        table.add(force_name(force), count(referred), number(force.hours_saved / 10, 1),
                  pounds(force.cost_per_hour / 100, 2), _whole(hours), _whole_pounds(hours, force.cost_per_hour))
    return table


def _whole(hours: float | None) -> Cell:
    """Hours saved: whole on the page ("1,158"), to the tenth in the CSV ("1157.5")."""
    shown = number(hours, 0)
    return shown if hours is None else Cell(shown.text, (f"{hours:.1f}",))


def _whole_pounds(hours: float | None, pence_an_hour: int) -> Cell:
    """The cost of ``hours``: whole pounds on the page ("£44,560"), to the penny in the CSV ("44559.75")."""
    if hours is None:
        return pounds(None, 0)
    cost = hours * pence_an_hour / 100
    return Cell(pounds(cost, 0).text, (f"{cost:.2f}",))


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
    soon: int | None = None  # the months not passed for any case of the period chosen: too soon to tell


def _rate_columns(numerator: str, denominator: str) -> tuple[list[str], list[Kind]]:
    """The head and kinds of a rate's columns: its two counts, the rate and its interval."""
    return ([numerator, denominator, gettext("Rate"), interval_heading()], [PLAIN, PLAIN, PERCENT, INTERVAL])


def _rate_row(cells: Shown, soon: int | None) -> list[Cell]:
    return [count(cells.events, soon), count(cells.total, soon), rate_cell(cells, soon), interval(cells, soon)]


def metric(rate: Rate, chosen: Choices, own: Force | None) -> MetricPage:
    """One rate for the period and filter chosen: every force's (or ``own``'s alone) against all
    forces' with the funnel's limits, and its trend by quarter."""
    head, kinds = _rate_columns(MEASURES[rate.numerator].label, MEASURES[rate.denominator].label)
    forces = Table("", [gettext("Force"), *head, gettext("Against the national rate")], [PLAIN, *kinds, PLAIN],
                   numeric=frozenset({1, 2, 3}))
    trend = Table("", [gettext("Quarter"), *head], [PLAIN, *kinds], numeric=frozenset({1, 2, 3}))
    page = MetricPage(rate, chosen, forces, trend, None, [], [], [], [], [])
    if chosen.period is None:
        return page
    if chosen.filtered:
        forces.caption = str(gettext("%(rate)s by force, %(period)s, %(filter)s: %(category)s", rate=rate.label,
                                     period=chosen.period.label, **chosen.filtered))
    else:
        forces.caption = str(gettext("%(rate)s by force, %(period)s", rate=rate.label, period=chosen.period.label))
    page.soon = soon = chosen.soon(rate.window)
    values = reading.figures([rate.numerator, rate.denominator], period=chosen.period, breakdown=chosen.breakdown,
                             categories=[chosen.category])
    everyone = reading.forces()
    rated = [(force, _rate_cells(values, force.id, rate, chosen.category)) for force in everyone]
    shown = [(force, cells) for force, cells in rated if cells.shown and soon is None]
    if soon is None:  # too soon, no force's counts are withheld: none is counted yet
        page.withheld = [force_name(force) for force, cells in rated
                         if not cells.shown and (own is None or force.id == own.id)]
    if shown:
        page.funnel = funnel([(cells.events or 0, cells.total or 0) for _, cells in shown])
        page.points = [(force_name(force), cells.total or 0, cells.value or 0.0) for force, cells in shown]
    national = _rate_cells(values, NATIONAL, rate, chosen.category)
    forces.add(gettext("All forces"), *_rate_row(national, soon), gettext("Not applicable"))
    for force, cells in rated:
        if own is not None and force.id != own.id:
            continue
        where = _too_soon(soon) if soon is not None else against(page.funnel, cells) if page.funnel else NOT_SHOWN
        forces.add(force_name(force), *_rate_row(cells, soon), where)
    _trend(page, own)
    return page


def _too_soon(months: int) -> Cell:
    return count(None, months)


def _trend(page: MetricPage, own: Force | None) -> None:
    """Every quarter released, by the same filter: all forces', and the force's own."""
    rate, chosen = page.rate, page.chosen
    page.quarters = sorted(period.key for period in chosen.periods if "-Q" in period.key)
    values = reading.series([rate.numerator, rate.denominator], periods_wanted=page.quarters,
                            breakdown=chosen.breakdown, category=chosen.category)
    area = NATIONAL if own is None else own.id
    page.trend.caption = _trend_caption(rate, own, chosen)
    for quarter in page.quarters:
        national = Shown(values.get((NATIONAL, rate.numerator, quarter)),
                         values.get((NATIONAL, rate.denominator, quarter)))
        cells = Shown(values.get((area, rate.numerator, quarter)), values.get((area, rate.denominator, quarter)))
        page.national_trend.append(national.value)
        page.own_trend.append(cells.value)
        page.trend.add(quarter_name(quarter), *_rate_row(cells, chosen.soon(rate.window, start_of(quarter))))


def _trend_caption(rate: Rate, own: Force | None, chosen: Choices) -> str:
    """"Completion by quarter, all forces" (or the force's name), with the filter chosen if any."""
    if own is None:
        if chosen.filtered:
            return str(gettext("%(rate)s by quarter, all forces, %(filter)s: %(category)s", rate=rate.label,
                               **chosen.filtered))
        return str(gettext("%(rate)s by quarter, all forces", rate=rate.label))
    if chosen.filtered:
        return str(gettext("%(rate)s by quarter, %(force)s, %(filter)s: %(category)s", rate=rate.label,
                           force=force_name(own), **chosen.filtered))
    return str(gettext("%(rate)s by quarter, %(force)s", rate=rate.label, force=force_name(own)))


def compare(chosen: Choices, picked: Sequence[Force]) -> Table:
    """Every figure of one or two forces side by side, with all forces': each measure's count, cases
    by substance with their share, waits for a first session, how unfinished referrals ended, and
    each rate with its interval. Read by row in its CSV: a row for each number."""
    table = Table("", [gettext("Measure"), *(force_name(force) for force in picked), gettext("All forces")],
                  numeric=frozenset(range(1, len(picked) + 2)), by_row=True)
    if chosen.period is None or not 1 <= len(picked) <= 2:
        return table
    if len(picked) == 1:
        table.caption = f"{force_name(picked[0])}, {chosen.period.label}"
    else:
        table.caption = str(gettext("%(first)s and %(second)s, %(period)s", first=force_name(picked[0]),
                                    second=force_name(picked[1]), period=chosen.period.label))
    areas: list[int | None] = [*(force.id for force in picked), NATIONAL]
    values = reading.figures(list(MEASURES), period=chosen.period)
    for name, measure in MEASURES.items():
        soon = chosen.soon(measure.window)
        table.add(measure.label, *(count(values.get((area, name, ALL)), soon) for area in areas))
    for breakdown, counted in (("substance", "cases"), ("wait", "engaged"), ("ending", "not_completed")):
        categories = BREAKDOWNS[breakdown].categories
        split = reading.figures([counted], period=chosen.period, breakdown=breakdown, categories=categories)
        for category in categories:
            table.add(_split_label(breakdown, category_name(breakdown, category)),
                      *(_share(split.get((area, counted, category)), values.get((area, counted, ALL)))
                        for area in areas), kind=SHARE)
    for rate in RATES.values():
        soon = chosen.soon(rate.window)
        table.add(rate.label, *(rate_with_interval(_rate_cells(values, area, rate), soon) for area in areas),
                  kind=RATE)
    return table


def _split_label(breakdown: str, category: str) -> str:
    """The row of one category of a split in the table of every figure: "Cases by substance: Cannabis"."""
    if breakdown == "substance":
        return str(gettext("Cases by substance: %(substance)s", substance=category))
    if breakdown == "wait":
        return str(gettext("Days to the first session: %(days)s", days=category))
    return str(gettext("Not completed: %(how)s", how=category))


def _share(part: int | None, whole: int | None) -> Cell:
    """"120 (27%)": a category's count and its share of the whole, where both are released (120 and
    26.7 in the CSV, the share ``[x]`` where the whole is not released)."""
    if part is None:
        return Cell(SUPPRESSED, (SUPPRESSED, SUPPRESSED))
    if not whole:
        return Cell(count(part).text, (str(part), NOT_SHOWN))
    share = part / whole
    # A count of some, but not all, never reads as none or as all: under half a percent is "<1%".
    shown = "<1%" if 0 < share < 0.005 else ">99%" if 0.995 <= share < 1 else f"{share:.0%}"
    return Cell(f"{count(part).text} ({shown})", (str(part), f"{share * 100:.1f}"))


def equality(chosen: Choices, area: int | None, area_name: str) -> Table:
    """Each ethnic group's referral rate in ``area`` (a force, or all forces), and its ratio to the
    whole area's rate with its interval."""
    rate = RATES["referral"]
    table = Table("", [BREAKDOWNS["ethnicity"].label, MEASURES["cases"].label, MEASURES["referred"].label,
                       gettext("Rate"), interval_heading(), gettext("Ratio to every group's rate")],
                  [PLAIN, PLAIN, PLAIN, PERCENT, INTERVAL, RATIO], numeric=frozenset({1, 2, 3, 5}))
    if chosen.period is None:
        return table
    table.caption = str(gettext("Referral rate by ethnic group, %(area)s, %(period)s", area=area_name,
                                period=chosen.period.label))
    groups = list(BREAKDOWNS["ethnicity"].categories)
    values = reading.figures([rate.numerator, rate.denominator], period=chosen.period, breakdown="ethnicity",
                             categories=[ALL, *groups])
    whole = _rate_cells(values, area, rate)
    table.add(gettext("Every group"), count(whole.total), count(whole.events), rate_cell(whole), interval(whole),
              Cell("1.00", ("1.00", "", "")))  # the whole against itself: no interval to give
    for group in groups:
        cells = _rate_cells(values, area, rate, group)
        table.add(str(ETHNIC_GROUPS[group]), count(cells.total), count(cells.events), rate_cell(cells),
                  interval(cells), _ratio(cells, whole))
    return table


def _ratio(group: Shown, whole: Shown) -> Cell:
    """"0.82 (0.70 to 0.96)": a group's rate over the whole's, where both are shown (0.82, 0.70 and 0.96 in
    the CSV)."""
    if not group.shown or not whole.shown or not whole.events:
        return Cell(NOT_SHOWN, (NOT_SHOWN,) * 3)
    try:
        ratio = group_ratio(group.events or 0, group.total or 0, whole.events or 0, whole.total or 0)
    except ValueError:  # rounding made the group's counts exceed what the whole leaves room for
        return Cell(NOT_SHOWN, (NOT_SHOWN,) * 3)
    value = f"{ratio.value:.2f}"
    if ratio.interval is None:  # no event in the group: a ratio of 0 has no interval to give
        return Cell(value, (value, "", ""))
    low, high = f"{ratio.interval.low:.2f}", f"{ratio.interval.high:.2f}"
    return Cell(f"{value} ({between(low, high)})", (value, low, high))
