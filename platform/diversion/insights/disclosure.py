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
programme), the smallest first, so that the least is lost. The programmes are
solved by HiGHS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import highspy
import numpy as np

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
    """The attacker's linear programmes over a table's cells, given what is released.

    One HiGHS model per table: a column per cell (at least 0), a row per figure, bounded by what
    the figure's release says (``bounds``) or free while it is suppressed. Each programme changes
    only the objective and the rows released since the last, so HiGHS starts from the last
    solution's basis: a table's hundreds of programmes take milliseconds each.

    It keeps every table it has met that fits what is released (the true one first, then each
    programme's solution): releasing less only loosens the constraints, so each stays a witness,
    and a figure that is 0 in one witness and 9 or more in another is safe without a programme."""

    def __init__(self, cells: int, figures: Sequence[frozenset[int]], truth: Sequence[int] | None = None) -> None:
        self.figures = [np.fromiter(sorted(members), dtype=np.int32, count=len(members)) for members in figures]
        # The witnesses, a row each, in the first ``witnessed`` rows (the rest room for more).
        self.witnesses = np.empty((8, cells))
        self.witnessed = 0
        if truth is not None:
            self._witness(np.asarray(truth, dtype=float))
        self.model = highspy.Highs()  # type: ignore[no-untyped-call]
        self.model.setOptionValue("output_flag", False)
        self.model.setOptionValue("presolve", "off")  # small programmes, each started from the last basis
        self.model.addVars(cells, np.zeros(cells), np.full(cells, highspy.kHighsInf))
        for members in self.figures:
            self.model.addRow(-highspy.kHighsInf, highspy.kHighsInf, len(members), members, np.ones(len(members)))
        self.bound: dict[int, int] = {}  # the figures whose rows are bounded, by their released value
        self.objective: np.ndarray = np.zeros(0, dtype=np.int32)

    def _witness(self, table: np.ndarray) -> None:
        if self.witnessed == len(self.witnesses):
            self.witnesses = np.concatenate([self.witnesses, np.empty_like(self.witnesses)])
        self.witnesses[self.witnessed] = table
        self.witnessed += 1

    def _release(self, released: dict[int, int]) -> None:
        """The rows bounded as ``released`` says (a figure suppressed since is freed)."""
        for index in [index for index in self.bound if index not in released]:
            self.model.changeRowBounds(index, -highspy.kHighsInf, highspy.kHighsInf)
            del self.bound[index]
        for index, value in released.items():
            if self.bound.get(index) != value:
                self.model.changeRowBounds(index, *map(float, bounds(value)))
                self.bound[index] = value

    def _solve(self, figure: int, released: dict[int, int], sign: float) -> tuple[float, list[int]]:
        """The least (``sign`` 1) or greatest (-1) value of ``figure``, and the released figures
        whose bounds bind it there."""
        self._release(released)
        if len(self.objective):
            self.model.changeColsCost(len(self.objective), self.objective, np.zeros(len(self.objective)))
        self.objective = self.figures[figure]
        self.model.changeColsCost(len(self.objective), self.objective, np.full(len(self.objective), sign))
        self.model.run()
        status = self.model.getModelStatus()
        if status in (highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return float("inf"), []  # nothing caps it (no bounds can make these programmes infeasible)
        if status != highspy.HighsModelStatus.kOptimal:
            raise ValueError(f"the released figures contradict each other ({self.model.modelStatusToString(status)})")
        solution = self.model.getSolution()
        self._witness(np.asarray(solution.col_value))
        duals = np.abs(np.asarray(solution.row_dual))
        value = sign * self.model.getInfo().objective_function_value
        return float(value), [index for index in np.flatnonzero(duals > _TOLERANCE).tolist() if index in released]

    def extremes(self, figure: int, released: dict[int, int]) -> tuple[float, float]:
        """The least and greatest value of ``figure`` given the ``released`` figures."""
        return self._solve(figure, released, 1.0)[0], self._solve(figure, released, -1.0)[0]

    def exposed(self, figure: int, released: dict[int, int]) -> list[int] | None:
        """None where ``figure`` can be anything from 0 to 9 given the ``released`` figures; else
        the released figures that pin it (perhaps none)."""
        members = self.figures[figure]
        values = self.witnesses[:self.witnessed, members].sum(axis=1)
        pinned: list[int] = []
        exposed = False
        if not (values <= SAFE_LOW + _TOLERANCE).any():
            low, binding = self._solve(figure, released, 1.0)
            if low > SAFE_LOW + _TOLERANCE:
                exposed, pinned = True, pinned + binding
        if not (values >= SAFE_HIGH - _TOLERANCE).any():
            high, binding = self._solve(figure, released, -1.0)
            if high < SAFE_HIGH - _TOLERANCE:
                exposed, pinned = True, pinned + binding
        return pinned if exposed else None


def feasible_range(cells: int, figures: Sequence[Sequence[int]], values: Sequence[int | None],
                   figure: int) -> tuple[float, float]:
    """The least and greatest value ``figure`` could take given the released ``values``
    (None where suppressed) of ``figures`` over ``cells`` cells."""
    members = [frozenset(members) for members in figures]
    released = {index: value for index, value in enumerate(values) if value is not None}
    return _Programme(cells, members).extremes(figure, released)


def protect(cells: Sequence[int], figures: Sequence[Sequence[int]], *,
            given: Mapping[int, int | None] | None = None) -> Released:
    """Release ``figures`` (each a list of indices into ``cells``, the true counts) under the
    three rules above. ``given`` holds figures already released elsewhere (their value, or None
    where they were suppressed there): they are kept as they were, so the same number is never
    shown in one table and hidden in another, and never chosen to be suppressed here.

    Refuses negative counts, a figure with no cells, an index outside ``cells``, and a given
    figure released that is under 10 or not its count rounded.
    """
    if any(count < 0 for count in cells):
        raise ValueError("counts cannot be negative")
    members = [frozenset(figure) for figure in figures]
    for index, cells_of in enumerate(members):
        if not cells_of:
            raise ValueError(f"figure {index} sums no cells")
        if min(cells_of) < 0 or max(cells_of) >= len(cells):
            raise ValueError(f"figure {index} names a cell the table does not have")
    totals = [sum(cells[cell] for cell in cells_of) for cells_of in members]
    given = dict(given or {})
    for index, value in given.items():
        if value is not None and (totals[index] < THRESHOLD or value != rounded(totals[index])):
            raise ValueError(f"figure {index} was released elsewhere as {value}, which its count does not give")
    primary = {index for index, total in enumerate(totals) if total < THRESHOLD}
    hidden = primary | {index for index, value in given.items() if value is None}
    released = {index: rounded(total) for index, total in enumerate(totals) if index not in hidden}
    secondary: set[int] = hidden - primary
    programme = _Programme(len(cells), members, cells)
    waiting = sorted(hidden)
    while waiting and released:  # with nothing released, nothing can be worked out
        exposed = waiting.pop()
        while (pinned := programme.exposed(exposed, released)) is not None:
            free = [index for index in released if index not in given]
            if not free:
                break  # nothing left here to hide: what remains was released, and protected, elsewhere
            candidates = [index for index in pinned if index in released and index not in given] or sorted(free)
            chosen = min(candidates, key=lambda index: (totals[index], len(members[index]), index))
            del released[chosen]
            secondary.add(chosen)
            waiting.append(chosen)
    values = tuple(released.get(index) for index in range(len(members)))
    return Released(values, frozenset(primary), frozenset(secondary))
