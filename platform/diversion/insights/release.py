"""What the national comparison releases: fixed tables of counts, each protected before anyone reads it.

A *table* is one measure of one area (a force, or all forces together) by one
breakdown over one calendar year. Its cells are the area's counts of each
category in each month; what it releases (its *figures*) is fixed:

- for the whole (category ``all``): every month, every quarter and the year;
- for each category of a breakdown: every quarter and the year (months by
  category are too small to show).

Months after the one being counted are left out (a year to date). The
whole's figures are those of the ``all`` table, protected first: a
breakdown's table takes them as they were released (``disclosure.protect``'s
``given``), so that the same number is never released in one table and
hidden in another. Whether a hidden figure was under ten or hidden to
protect another is never said: that would tell an attacker too much.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from diversion.insights.disclosure import protect

ALL = "all"


def month_label(year: int, month: int) -> str:
    return f"{year}-{month:02d}"


def quarter_label(year: int, quarter: int) -> str:
    return f"{year}-Q{quarter}"


@dataclass(frozen=True)
class Figure:
    category: str
    period: str  # "2025", "2025-Q1" or "2025-03"
    value: int | None  # None: suppressed


def _spans(year: int, months: int) -> list[tuple[str, list[int]]]:
    """The periods of a year whose first ``months`` months are counted: (label, month indexes)."""
    spans = [(month_label(year, month + 1), [month]) for month in range(months)]
    spans += [(quarter_label(year, quarter + 1), [month for month in range(quarter * 3, quarter * 3 + 3)
                                                   if month < months])
              for quarter in range((months + 2) // 3)]
    spans.append((str(year), list(range(months))))
    return spans


def _layout(categories: Sequence[str], year: int, months: int) -> tuple[list[tuple[str, str]], list[list[int]]]:
    """The figures of a table (category, period) and the cells each sums; cell ``c * months + m``
    is category ``c`` in month ``m``."""
    labels: list[tuple[str, str]] = []
    figures: list[list[int]] = []
    for label, span in _spans(year, months):
        labels.append((ALL, label))
        figures.append([index * months + month for index in range(len(categories)) for month in span])
    if list(categories) != [ALL]:
        for index, category in enumerate(categories):
            for label, span in _spans(year, months):
                if "-Q" in label or "-" not in label:  # quarters and the year
                    labels.append((category, label))
                    figures.append([index * months + month for month in span])
    return labels, figures


def release(counts: Mapping[tuple[str, int], int], categories: Sequence[str], *, year: int, months: int,
            whole: Sequence[Figure] | None = None) -> list[Figure]:
    """The figures a table releases, protected. ``counts`` maps (category, month 1-12) to the
    count; ``months`` is how many months of the year are counted; ``whole`` is the ``all``
    table's release, which a breakdown's table keeps as it was (None for the ``all`` table).

    Refuses a month outside the counted ones and a category the table does not have."""
    for category, month in counts:
        if category not in categories:
            raise ValueError(f"no category {category!r} in this table")
        if not 1 <= month <= months:
            raise ValueError(f"month {month} is not among the {months} counted")
    labels, figures = _layout(categories, year, months)
    cells = [counts.get((category, month + 1), 0) for category in categories for month in range(months)]
    given: dict[int, int | None] = {}
    if whole is not None:
        released = {(figure.category, figure.period): figure.value for figure in whole}
        given = {index: released[label] for index, label in enumerate(labels) if label in released}
    protected = protect(cells, figures, given=given)
    return [Figure(category, period, value) for (category, period), value in zip(labels, protected.values,
                                                                                   strict=True)]


def fingerprint(counts: Mapping[tuple[str, int], int], months: int, whole: Sequence[Figure] | None) -> str:
    """What a table's release depends on, hashed: an unchanged table need not be protected again."""
    content = {"counts": sorted([category, month, value] for (category, month), value in counts.items() if value),
               "months": months,
               "whole": sorted([figure.category, figure.period, figure.value] for figure in whole or ())}
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()


def counted_months(year: int, today: date) -> int:
    """How many months of ``year`` are counted on ``today``: all of a past year, the months so far
    of this one (the current month included), none of a year to come."""
    if year < today.year:
        return 12
    if year > today.year:
        return 0
    return today.month
