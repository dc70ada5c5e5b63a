"""A year's table by a breakdown, released with its whole: a reader holding both learns nothing under ten."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diversion.insights.release import ALL, Figure, counted_months, fingerprint, release
from tests.insights.test_disclosure import whole_range


@st.composite
def year_tables(draw: st.DrawFn) -> tuple[list[str], int, dict[tuple[str, int], int]]:
    categories = [f"group {number}" for number in range(draw(st.integers(1, 4)))]
    months = draw(st.integers(1, 12))
    small = st.one_of(st.integers(0, 6), st.integers(0, 40))
    counts = {(category, month): draw(small) for category in categories for month in range(1, months + 1)}
    return categories, months, counts


def both(categories: list[str], months: int, counts: dict[tuple[str, int], int]) -> tuple[list[Figure],
                                                                                         list[Figure]]:
    whole_counts: dict[tuple[str, int], int] = {}
    for (_, month), value in counts.items():
        whole_counts[ALL, month] = whole_counts.get((ALL, month), 0) + value
    whole = release(whole_counts, [ALL], year=2025, months=months)
    return whole, release(counts, categories, year=2025, months=months, whole=whole)


def cells_of(figure: Figure, categories: list[str], months: int) -> list[int]:
    """The (category, month) cells a released figure sums, read from its labels as a reader would."""
    chosen = range(len(categories)) if figure.category == ALL else [categories.index(figure.category)]
    period = figure.period
    if "-Q" in period:
        quarter = int(period[-1])
        span = [month for month in range(quarter * 3 - 3, quarter * 3) if month < months]
    elif "-" in period:
        span = [int(period[-2:]) - 1]
    else:
        span = list(range(months))
    return [index * months + month for index in chosen for month in span]


def truth(figure: Figure, categories: list[str], months: int, counts: dict[tuple[str, int], int]) -> int:
    return sum(counts[categories[cell // months], cell % months + 1] for cell in cells_of(figure, categories, months))


@settings(deadline=None, max_examples=40)
@given(year_tables())
def test_the_whole_is_released_alike_in_both_tables_and_nothing_under_ten_is_shown(
        table: tuple[list[str], int, dict[tuple[str, int], int]]) -> None:
    categories, months, counts = table
    whole, part = both(categories, months, counts)
    in_part = {(figure.category, figure.period): figure.value for figure in part}
    for figure in whole:
        assert in_part[figure.category, figure.period] == figure.value
    for figure in part:
        true = truth(figure, categories, months, counts)
        if figure.value is None:
            continue
        assert true >= 10
        assert figure.value % 5 == 0
        assert abs(figure.value - true) <= 2
    # Months by category are never released; quarters and the year are, by category and for the whole.
    periods = {figure.period for figure in part if figure.category != ALL}
    assert all("-Q" in period or "-" not in period for period in periods)


@settings(deadline=None, max_examples=40)
@given(year_tables())
def test_a_reader_of_both_tables_cannot_narrow_a_hidden_figure_below_nought_to_nine(
        table: tuple[list[str], int, dict[tuple[str, int], int]]) -> None:
    categories, months, counts = table
    _, part = both(categories, months, counts)
    shown = [(cells_of(figure, categories, months), figure.value) for figure in part if figure.value is not None]
    for figure in part:
        if figure.value is None:
            low, high = whole_range(len(categories) * months, shown, cells_of(figure, categories, months))
            assert low <= 0, (figure, low)
            assert high >= 9, (figure, high)


def test_a_year_to_date_counts_its_months_so_far() -> None:
    assert counted_months(2025, date(2026, 3, 4)) == 12
    assert counted_months(2026, date(2026, 3, 4)) == 3
    assert counted_months(2027, date(2026, 3, 4)) == 0
    figures = release({(ALL, 1): 30, (ALL, 2): 31, (ALL, 3): 4}, [ALL], year=2026, months=3)
    assert [figure.period for figure in figures] == ["2026-01", "2026-02", "2026-03", "2026-Q1", "2026"]
    assert [figure.value for figure in figures][:2] == [30, 30]
    assert figures[2].value is None  # 4


def test_a_table_refuses_what_it_does_not_have() -> None:
    with pytest.raises(ValueError, match="no category"):
        release({("elsewhere", 1): 3}, [ALL], year=2025, months=12)
    with pytest.raises(ValueError, match="not among"):
        release({(ALL, 5): 3}, [ALL], year=2026, months=3)


def test_a_tables_fingerprint_changes_with_what_it_releases_from() -> None:
    counts = {(ALL, 1): 12}
    assert fingerprint(counts, 12, None) == fingerprint({**counts, (ALL, 2): 0}, 12, None)
    assert fingerprint(counts, 12, None) != fingerprint({(ALL, 1): 13}, 12, None)
    assert fingerprint(counts, 12, None) != fingerprint(counts, 11, None)
