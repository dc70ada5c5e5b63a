"""The comparison's tables as a reader sees them: one table makes both the page's table and its CSV,
so the download equals what is shown, cell for cell.

A rate is worked out from the released counts (each rounded to 5), never the
true ones, so that it reveals no more than its counts do; it is shown only
where both are released. Its interval is the Wilson interval of those counts.

Every word a table holds is said in the reader's language (English on the command line); the
marks ``[c]`` and ``[x]`` are those of statistical releases, the same in every language.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from flask_babel import gettext

from diversion.insights.statistics import Z95, Z998, Funnel, Interval, wilson

SUPPRESSED = "[c]"  # the mark statistical releases use for a figure withheld to protect confidentiality
NOT_SHOWN = "[x]"  # a rate whose counts are not both released
# The columns any national table or CSV may have, in English: the test of "aggregates only" checks every
# page against it.
ALLOWED_COLUMNS = frozenset({
    "Force", "All forces", "Period", "Quarter", "Ethnic group", "Category", "Measure",
    "Cases decided", "Eligible", "Not eligible", "Waiting for review", "Referred", "Declined", "Engaged",
    "Completed", "Not completed", "Withdrawn", "Diverted, 6 months passed", "Met again within 6 months",
    "Diverted, 12 months passed", "Met again within 12 months", "Completed, 6 months passed",
    "Completed and met again within 6 months", "Completed, 12 months passed",
    "Completed and met again within 12 months", "Rate", "95% interval", "Against the national rate",
    "Referral rate", "Engagement", "Completion", "Met again within 12 months, completers",
    "Ratio to every group's rate", "Police hours saved", "Cost saved", "Hours saved per referral", "Cost per hour",
})


@dataclass(frozen=True)
class Rate:
    events: int | None
    total: int | None

    @property
    def shown(self) -> bool:
        return self.events is not None and self.total is not None and self.total > 0

    @property
    def value(self) -> float | None:
        if self.events is None or self.total is None or not self.total:
            return None
        return self.events / self.total

    @property
    def interval(self) -> Interval | None:
        if self.events is None or self.total is None or not self.total:
            return None
        return wilson(self.events, self.total)


def count_text(value: int | None) -> str:
    return SUPPRESSED if value is None else f"{value:,}"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def rate_text(rate: Rate) -> str:
    """"40%", or the mark of a rate not shown."""
    return percent(rate.value) if rate.value is not None else NOT_SHOWN


def between(low: str, high: str) -> str:
    """"35% to 46%": an interval from ``low`` to ``high``, in the reader's language."""
    return str(gettext("%(low)s to %(high)s", low=low, high=high))


def interval_text(rate: Rate) -> str:
    interval = rate.interval
    return NOT_SHOWN if interval is None else between(percent(interval.low), percent(interval.high))


def interval_heading() -> str:
    """The heading of a column of 95% intervals, in the reader's language."""
    return str(gettext("%(coverage)s%% interval", coverage=95))


def rate_with_interval(rate: Rate) -> str:
    """"40% (35% to 46%)", or the mark of a rate not shown."""
    return NOT_SHOWN if not rate.shown else f"{rate_text(rate)} ({interval_text(rate)})"


def against(funnel: Funnel, rate: Rate) -> str:
    """Where a force's rate falls against the national one, by the funnel's limits."""
    if not rate.shown or rate.total is None or rate.value is None:
        return NOT_SHOWN
    outer, inner = funnel.limits(rate.total, Z998), funnel.limits(rate.total, Z95)
    for limits, coverage in ((outer, "99.8"), (inner, "95")):
        if rate.value > limits.high:
            return str(gettext("Above the %(coverage)s%% limit", coverage=coverage))
        if rate.value < limits.low:
            return str(gettext("Below the %(coverage)s%% limit", coverage=coverage))
    return str(gettext("Within the limits"))


@dataclass
class Table:
    """A table of text cells, with the columns holding numbers (right-aligned on the page)."""

    caption: str
    head: list[str]
    rows: list[list[str]] = field(default_factory=list)
    numeric: frozenset[int] = frozenset()

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.head)
        writer.writerows(_safe(row) for row in self.rows)
        return out.getvalue()


def _safe(row: Sequence[str]) -> list[str]:
    """Cells as a spreadsheet should read them: text that starts like a formula is quoted."""
    return [f"'{cell}" if cell[:1] in ("=", "+", "-", "@") and not cell[1:2].isdigit() else cell for cell in row]
