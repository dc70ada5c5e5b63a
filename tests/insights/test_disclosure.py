"""Disclosure control over random tables: nothing released lets a count under ten be worked out.

The attacks here are the test's own: an integer programme built from what a
reader of the page sees (scipy's MILP, not the linear programme the code
uses), and plain differencing of a total and its released parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from diversion.insights.disclosure import Released, feasible_range, protect, rounded

CAP = 1_000_000  # no count is larger: where nothing bounds a figure, the attacker's maximum comes out at this
small_or_not = st.one_of(st.integers(0, 12), st.integers(0, 60), st.integers(0, 400))


@dataclass
class Table:
    cells: list[int]
    figures: list[list[int]]


@st.composite
def two_way(draw: st.DrawFn) -> Table:
    """A table of groups by columns with its row, column and grand totals."""
    rows, columns = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    cells = draw(st.lists(small_or_not, min_size=rows * columns, max_size=rows * columns))
    figures = [[cell] for cell in range(rows * columns)]
    figures += [[row * columns + column for column in range(columns)] for row in range(rows)]
    figures += [[row * columns + column for row in range(rows)] for column in range(columns)]
    figures.append(list(range(rows * columns)))
    return Table(cells, figures)


@st.composite
def over_time(draw: st.DrawFn) -> Table:
    """Groups by month, with the quarter and year views of each group and of them all."""
    groups, quarters = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    months = quarters * 3
    cells = draw(st.lists(small_or_not, min_size=groups * months, max_size=groups * months))

    def cell(group: int, month: int) -> int:
        return group * months + month

    spans = [[month] for month in range(months)]
    spans += [[quarter * 3 + month for month in range(3)] for quarter in range(quarters)]
    spans.append(list(range(months)))
    figures = [[cell(group, month) for month in span] for group in range(groups) for span in spans]
    figures += [[cell(group, month) for group in range(groups) for month in span] for span in spans]
    return Table(cells, figures)


tables = st.one_of(two_way(), over_time())


def truth(table: Table, figure: int) -> int:
    return sum(table.cells[cell] for cell in table.figures[figure])


def whole_range(size: int, shown: list[tuple[list[int], int]], target: list[int]) -> tuple[float, float]:
    """The least and greatest whole value the cells ``target`` can sum to over ``size`` cells, given
    each released (cells, value): within 2 of its value and at least 10 (an integer programme)."""
    constraints = []
    if shown:
        matrix = np.zeros((len(shown), size))
        for row, (cells, _) in enumerate(shown):
            matrix[row, cells] = 1
        constraints.append(optimize.LinearConstraint(matrix, [max(value - 2, 10) for _, value in shown],
                                                     [value + 2 for _, value in shown]))
    objective = np.zeros(size)
    objective[target] = 1
    ends = []
    for sign in (1, -1):
        result = optimize.milp(sign * objective, constraints=constraints, integrality=np.ones(size),
                               bounds=optimize.Bounds(0, CAP))
        assert result.status == 0, result.message
        ends.append(sign * result.fun)
    return ends[0], ends[1]


def attack(table: Table, released: Released, figure: int) -> tuple[float, float]:
    """The least and greatest whole value ``figure`` can take, given what was released."""
    shown = [(table.figures[index], value) for index, value in enumerate(released.values) if value is not None]
    return whole_range(len(table.cells), shown, table.figures[figure])


@settings(deadline=None, max_examples=40)
@given(tables)
def test_counts_under_ten_are_suppressed_and_the_rest_rounded_to_five(table: Table) -> None:
    released = protect(table.cells, table.figures)
    for index, value in enumerate(released.values):
        true = truth(table, index)
        if true < 10:
            assert value is None
            assert index in released.primary
        if value is not None:
            assert value % 5 == 0
            assert value >= 10
            assert abs(value - true) <= 2
            assert value == rounded(true)
    assert not released.primary & released.secondary


@settings(deadline=None, max_examples=40)
@given(tables)
def test_no_suppressed_figure_can_be_narrowed_below_nought_to_nine(table: Table) -> None:
    released = protect(table.cells, table.figures)
    for index in released.suppressed:
        low, high = attack(table, released, index)
        assert low <= 0, f"figure {index} is at least {low}"
        assert high >= 9, f"figure {index} is at most {high}"


@settings(deadline=None, max_examples=40)
@given(tables)
def test_a_total_less_its_released_parts_reveals_no_suppressed_part(table: Table) -> None:
    released = protect(table.cells, table.figures)
    shown = {index: value for index, value in enumerate(released.values) if value is not None}
    singles = {table.figures[index][0]: index for index in range(len(table.figures))
               if len(table.figures[index]) == 1}
    for total, value in shown.items():
        cells = table.figures[total]
        hidden = [cell for cell in cells if singles.get(cell) not in shown]
        if len(hidden) != 1:
            continue  # the differencing attack needs every part but one
        others = [shown[singles[cell]] for cell in cells if cell != hidden[0]]
        least = max(value - 2, 10) - sum(other + 2 for other in others)
        most = value + 2 - sum(max(other - 2, 10) for other in others)
        assert least <= 0
        assert most >= 9


def test_one_small_cell_of_a_small_table_takes_its_row_and_column_with_it() -> None:
    # 3 | 50      53
    # 40 | 60    100
    # 43  110    153
    cells = [3, 50, 40, 60]
    figures = [[0], [1], [2], [3], [0, 1], [2, 3], [0, 2], [1, 3], [0, 1, 2, 3]]
    released = protect(cells, figures)
    assert released.primary == {0}
    assert 0 in released.suppressed
    assert released.values[8] == 155
    for index in released.suppressed:
        low, high = feasible_range(len(cells), figures, released.values, index)
        assert low <= 0
        assert high >= 9


def test_rounding_alone_protects_a_small_cell_among_many() -> None:
    # A year of 334 released as 335 (333 to 337) less eleven months of 30 released as 30 (28 to 32)
    # leaves the twelfth anywhere from nothing to 29.
    cells = [4, *[30] * 11]
    figures = [[month] for month in range(12)] + [list(range(12))]
    released = protect(cells, figures)
    assert released.suppressed == {0}
    assert feasible_range(12, figures, released.values, 0) == (0, 29)


def test_protect_refuses_a_table_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="negative"):
        protect([-1, 5], [[0], [1]])
    with pytest.raises(ValueError, match="sums no cells"):
        protect([1, 5], [[0], []])
    with pytest.raises(ValueError, match="does not have"):
        protect([1, 5], [[0], [2]])
