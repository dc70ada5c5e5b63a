"""The comparison's tables as a reader sees them: one table makes both the page's table and its CSV,
so the download holds what is shown, figure for figure.

A rate is worked out from the released counts (each rounded to 5), never the
true ones, so that it reveals no more than its counts do; it is shown only
where both are released. Its interval is the Wilson interval of those counts.

Each cell has its text on the page ("1,235", "40% (35% to 46%)") and its fields in the CSV, which
are for spreadsheets and programs: plain numbers ("1235"; "40.0", "35.2" and "45.7", with the unit
and what each is in the column's name), one to a column. Every word a table holds is said in the
reader's language (English on the command line); the marks ``[c]`` and ``[x]`` are those of
statistical releases, the same in every language, on the page and in the CSV alike. A figure that
needs 6 or 12 months to pass after each case's decision, of a period too recent for any of its
cases to have had them, says so ("Too soon") rather than look withheld.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flask_babel import gettext

from diversion.insights.statistics import Z95, Z998, Funnel, Interval, wilson

SUPPRESSED = "[c]"  # the mark statistical releases use for a figure withheld to protect confidentiality
NOT_SHOWN = "[x]"  # a rate whose counts are not both released
# The columns any national table or CSV may have, in English: the test of "aggregates only" checks every
# page against it (and every CSV against these as ``csv_columns`` names their fields).
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


# ---------------------------------------------------------------- how a CSV names its fields

Kind = tuple[Callable[[str], str], ...]  # the name of each CSV field of a cell, made from its column's (or row's)


def _same(name: str) -> str:
    return name


def _percent(name: str) -> str:
    return f"{name} (%)"  # the unit, the same in every language


def _pounds(name: str) -> str:
    return f"{name} (£)"


def _lower(name: str) -> str:
    return str(gettext("%(name)s, lower bound", name=name))


def _upper(name: str) -> str:
    return str(gettext("%(name)s, upper bound", name=name))


def _interval_lower(name: str) -> str:
    return str(gettext("%(name)s, 95%% interval, lower bound", name=name))


def _interval_upper(name: str) -> str:
    return str(gettext("%(name)s, 95%% interval, upper bound", name=name))


def _share(name: str) -> str:
    return str(gettext("%(name)s, share (%%)", name=name))


PLAIN: Kind = (_same,)  # words, a count or a number whose unit its name gives
PERCENT: Kind = (_percent,)  # a rate: "Rate (%)"
POUNDS: Kind = (_pounds,)  # money: "Cost saved (£)"
INTERVAL: Kind = (lambda name: _percent(_lower(name)), lambda name: _percent(_upper(name)))  # "95% interval"
RATE: Kind = (_percent, lambda name: _percent(_interval_lower(name)),  # a rate and its interval
              lambda name: _percent(_interval_upper(name)))
RATIO: Kind = (_same, _interval_lower, _interval_upper)  # a ratio and its interval
SHARE: Kind = (_same, _share)  # a count and its share of the whole

KINDS = (PLAIN, PERCENT, POUNDS, INTERVAL, RATE, RATIO, SHARE)


def csv_columns(names: frozenset[str] = ALLOWED_COLUMNS) -> frozenset[str]:
    """Every name a CSV may give a field of a column (or row) named in ``names``, in the reader's
    language: "Rate (%)", "Referral rate, 95% interval, lower bound (%)"."""
    return frozenset(namer(name) for name in names for kind in KINDS for namer in kind)


# ---------------------------------------------------------------- cells

@dataclass(frozen=True)
class Cell:
    """A table's cell: its text on the page, and its fields in the CSV (plain numbers, words or a mark),
    one for each of its column's ``Kind``."""

    text: str
    fields: tuple[str, ...]
    soon: int | None = None  # where the cell says "too soon": the months not passed for any case of its period


def text(words: str) -> Cell:
    """Words, the same on the page and in the CSV."""
    return Cell(words, (words,))


def too_soon_text() -> str:
    """What a figure says of a period too recent for any of its cases to have had its 6 or 12 months."""
    return str(gettext("Too soon"))


def _marked(mark: str, width: int, soon: int | None = None) -> Cell:
    return Cell(mark, (mark,) * width, soon)


def _soon(width: int, months: int) -> Cell:
    return _marked(too_soon_text(), width, months)


def _percent_field(value: float) -> str:
    """A proportion as the CSV writes it: a percentage to one decimal place, "85.7"."""
    return f"{value * 100:.1f}"


def count(value: int | None, soon: int | None = None) -> Cell:
    """A released count ("1,235"; 1235 in the CSV), ``[c]`` where withheld, or "Too soon" where
    ``soon`` gives the months not passed for any case of the period."""
    if soon is not None:
        return _soon(1, soon)
    if value is None:
        return _marked(SUPPRESSED, 1)
    return Cell(f"{value:,}", (str(value),))


def number(value: float | None, places: int) -> Cell:
    """A number of ``places`` decimal places ("1,234.5"; 1234.5 in the CSV), ``[c]`` where withheld."""
    if value is None:
        return _marked(SUPPRESSED, 1)
    return Cell(f"{value:,.{places}f}", (f"{value:.{places}f}",))


def pounds(value: float | None, places: int) -> Cell:
    """Money ("£1,234"; 1234 in the CSV, whose column says £), ``[c]`` where withheld."""
    if value is None:
        return _marked(SUPPRESSED, 1)
    return Cell(f"£{value:,.{places}f}", (f"{value:.{places}f}",))


def interval_fields(interval: Interval) -> tuple[str, str]:
    return _percent_field(interval.low), _percent_field(interval.high)


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


def rate(value: Rate, soon: int | None = None) -> Cell:
    """A rate ("40%"; 40.0 in the CSV, a ``PERCENT`` column), the mark of a rate not shown, or "Too soon"."""
    if soon is not None:
        return _soon(1, soon)
    if value.value is None:
        return _marked(NOT_SHOWN, 1)
    return Cell(percent(value.value), (_percent_field(value.value),))


def interval(value: Rate, soon: int | None = None) -> Cell:
    """A rate's 95% interval ("35% to 46%"; 35.2 and 45.7 in the CSV, an ``INTERVAL`` column), the mark of a
    rate not shown, or "Too soon"."""
    if soon is not None:
        return _soon(2, soon)
    found = value.interval
    if found is None:
        return _marked(NOT_SHOWN, 2)
    return Cell(interval_text(value), interval_fields(found))


def rate_with_interval(value: Rate, soon: int | None = None) -> Cell:
    """"40% (35% to 46%)" (40.0, 35.2 and 45.7 in the CSV, a ``RATE`` column), the mark of a rate not
    shown, or "Too soon"."""
    if soon is not None:
        return _soon(3, soon)
    found = value.interval
    if not value.shown or value.value is None or found is None:
        return _marked(NOT_SHOWN, 3)
    return Cell(f"{rate_text(value)} ({interval_text(value)})",
                (_percent_field(value.value), *interval_fields(found)))


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


def soon_legend(months: Sequence[int]) -> str:
    """What "Too soon" means, for the windows (in months) of the figures that say it; empty for none."""
    found = sorted(set(months))
    if not found:
        return ""
    if len(found) == 1:
        return str(gettext("Too soon: %(months)s months have not yet passed since the decision for any case of the "
                           "period, so this figure cannot be counted yet. It is not a withheld count.",
                           months=found[0]))
    return str(gettext("Too soon: %(short)s or %(long)s months (as the figure needs) have not yet passed since the "
                       "decision for any case of the period, so it cannot be counted yet. It is not a withheld count.",
                       short=found[0], long=found[-1]))


@dataclass
class Table:
    """A table of cells, with the columns holding numbers (right-aligned on the page).

    Its CSV names each cell's fields by the cell's ``Kind``: each column's (``kinds``), or, in a table
    read ``by_row`` (a row for each measure, a column for each area), each row's (``row_kinds``),
    where a row of several fields becomes as many rows."""

    caption: str
    head: list[str]
    kinds: list[Kind] = field(default_factory=list)  # each column's; PLAIN where not given
    rows: list[list[Cell]] = field(default_factory=list)
    numeric: frozenset[int] = frozenset()
    by_row: bool = False
    row_kinds: list[Kind] = field(default_factory=list)  # each row's, in a table read by row

    def add(self, *cells: Cell | str, kind: Kind = PLAIN) -> None:
        """A row of ``cells`` (words given as they are); ``kind`` names its fields in a table read by row."""
        self.rows.append([text(cell) if isinstance(cell, str) else cell for cell in cells])
        self.row_kinds.append(kind)

    @property
    def soon(self) -> list[int]:
        """The months not passed, of the cells saying "too soon"."""
        return sorted({cell.soon for row in self.rows for cell in row if cell.soon is not None})

    def _kind(self, column: int) -> Kind:
        return self.kinds[column] if column < len(self.kinds) else PLAIN

    def fields(self) -> tuple[list[str], list[list[str]]]:
        """The CSV's head and rows: plain numbers, words and marks, each named by its kind."""
        if self.by_row:
            rows = []
            for row, kind in zip(self.rows, self.row_kinds, strict=True):
                for place, namer in enumerate(kind):
                    rows.append([namer(row[0].text), *(_field(cell, place, len(kind)) for cell in row[1:])])
            return list(self.head), rows
        head = [namer(title) for column, title in enumerate(self.head) for namer in self._kind(column)]
        return head, [[_field(cell, place, len(self._kind(column))) for column, cell in enumerate(row)
                       for place in range(len(self._kind(column)))] for row in self.rows]

    def csv(self) -> str:
        head, rows = self.fields()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(head)
        writer.writerows(_safe(row) for row in rows)
        return out.getvalue()


def _field(cell: Cell, place: int, width: int) -> str:
    if len(cell.fields) != width:
        raise ValueError(f"the cell {cell.text!r} has {len(cell.fields)} fields, not the {width} of its kind")
    return cell.fields[place]


def _safe(row: Sequence[str]) -> list[str]:
    """Cells as a spreadsheet should read them: text that starts like a formula is quoted."""
    return [f"'{cell}" if cell[:1] in ("=", "+", "-", "@") and not cell[1:2].isdigit() else cell for cell in row]
