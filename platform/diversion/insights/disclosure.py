"""Disclosure control: no released number lets anyone work out a count under ten.

A table is a list of *cells* (the finest counts, e.g. one force's diversions
of one ethnic group in one month) and of the *figures* released from it: each
figure is the sum of some cells (a cell itself, a row or column total, a
quarter, a year, the grand total). Three rules, applied to every figure:

1. a figure under 10 is suppressed (primary suppression);
2. every other figure is rounded to the nearest 5, so it lies within 2 of the truth;
3. more figures are suppressed (secondary suppression) until, for every
   suppressed figure, the values it could take given everything released
   (each released figure within 2 of its value and at least 10, every cell at
   least 0) run from 0 to at least 9. That range is found by linear
   programming, which is what a careful attacker would do: subtracting the
   released parts of a total from it (differencing) is the simplest case.

A suppressed figure is chosen as secondary among the released figures whose
bounds pinned the exposed one (the constraints binding its linear
programme), the smallest first, so that the least is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse

THRESHOLD = 10  # figures under this are never released
BASE = 5  # released figures are rounded to a multiple of this
SPREAD = BASE // 2  # so a released figure lies within this of the truth
SAFE_LOW, SAFE_HIGH = 0, THRESHOLD - 1  # a suppressed figure must be able to be anything from 0 to 9
_TOLERANCE = 1e-6


def rounded(count: int) -> int:
    """``count`` to the nearest multiple of 5 (counts are whole, so there are no ties)."""
    return BASE * ((count + SPREAD) // BASE)


def bounds(released: int) -> tuple[int, int]:
    """What a released figure says of the truth: within 2 of it, and at least 10."""
    return max(released - SPREAD, THRESHOLD), released + SPREAD


@dataclass(frozen=True)
class Released:
    """A protected table: each figure's released value (None where suppressed)."""

    values: tuple[int | None, ...]
    primary: frozenset[int]  # figures suppressed for being under 10
    secondary: frozenset[int]  # figures suppressed to protect them

    @property
    def suppressed(self) -> frozenset[int]:
        return self.primary | self.secondary


class _Programme:
    """The attacker's linear programmes over a table's cells, given what is released."""

    def __init__(self, cells: int, figures: Sequence[frozenset[int]]) -> None:
        self.cells = cells
        rows: list[int] = []
        columns: list[int] = []
        for row, members in enumerate(figures):
            rows.extend([row] * len(members))
            columns.extend(members)
        self.matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(len(figures), cells))

    def extremes(self, figure: int, released: dict[int, int]) -> tuple[tuple[float, float], list[int]]:
        """The least and greatest value of ``figure`` given the ``released`` figures, and the
        released figures whose bounds held it in where it is exposed (the binding constraints)."""
        order = sorted(released)
        lows = np.array([bounds(released[index])[0] for index in order], dtype=float)
        highs = np.array([bounds(released[index])[1] for index in order], dtype=float)
        known = self.matrix[order]
        constraints = sparse.vstack([known, -known]) if order else None
        limits = np.concatenate([highs, -lows]) if order else None
        objective = self.matrix[figure].toarray().ravel()
        pinned: list[int] = []
        ends: list[float] = []
        for sign in (1.0, -1.0):
            result = optimize.linprog(sign * objective, A_ub=constraints, b_ub=limits,
                                      bounds=(0, None), method="highs")
            if result.status == 3:  # unbounded: nothing caps it
                ends.append(float("inf"))
                continue
            if result.status != 0:
                raise ValueError(f"the released figures contradict each other ({result.message})")
            value = float(sign * result.fun)
            ends.append(value)
            exposed = value > SAFE_LOW + _TOLERANCE if sign > 0 else value < SAFE_HIGH - _TOLERANCE
            if exposed and order:
                duals = np.abs(result.ineqlin.marginals)
                pinned.extend(order[row % len(order)] for row in np.flatnonzero(duals > _TOLERANCE))
        return (ends[0], ends[1]), pinned


def feasible_range(cells: int, figures: Sequence[Sequence[int]], values: Sequence[int | None],
                   figure: int) -> tuple[float, float]:
    """The least and greatest value ``figure`` could take given the released ``values``
    (None where suppressed) of ``figures`` over ``cells`` cells."""
    members = [frozenset(members) for members in figures]
    released = {index: value for index, value in enumerate(values) if value is not None}
    return _Programme(cells, members).extremes(figure, released)[0]


def protect(cells: Sequence[int], figures: Sequence[Sequence[int]]) -> Released:
    """Release ``figures`` (each a list of indices into ``cells``, the true counts) under the
    three rules above.

    Refuses negative counts, a figure with no cells and an index outside ``cells``.
    """
    if any(count < 0 for count in cells):
        raise ValueError("counts cannot be negative")
    members = [frozenset(figure) for figure in figures]
    for index, figure in enumerate(members):
        if not figure:
            raise ValueError(f"figure {index} sums no cells")
        if min(figure) < 0 or max(figure) >= len(cells):
            raise ValueError(f"figure {index} names a cell the table does not have")
    totals = [sum(cells[cell] for cell in figure) for figure in members]
    primary = {index for index, total in enumerate(totals) if total < THRESHOLD}
    released = {index: rounded(total) for index, total in enumerate(totals) if index not in primary}
    secondary: set[int] = set()
    programme = _Programme(len(cells), members)
    waiting = sorted(primary)
    while waiting:
        exposed = waiting.pop()
        while True:
            (low, high), pinned = programme.extremes(exposed, released)
            if low <= SAFE_LOW + _TOLERANCE and high >= SAFE_HIGH - _TOLERANCE:
                break
            candidates = [index for index in pinned if index in released] or sorted(released)
            chosen = min(candidates, key=lambda index: (totals[index], len(members[index]), index))
            del released[chosen]
            secondary.add(chosen)
            waiting.append(chosen)
    values = tuple(released.get(index) for index in range(len(members)))
    return Released(values, frozenset(primary), frozenset(secondary))
