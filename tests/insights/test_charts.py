"""The charts drawn on the server: each drawing kept, by what it draws and the reader's language, and
every word drawn readable (none running into the next, none cut off at the image's edge)."""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from flask_babel import force_locale

from diversion.insights import charts
from diversion.insights.statistics import Funnel

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

FUNNEL = Funnel(target=0.6, overdispersed=False, tau2=0.0, phi=1.0)
POINTS = [("Durham Constabulary", 120, 0.55), ("Thames Valley Police", 400, 0.64)]


def test_a_chart_drawn_again_is_the_one_kept_and_new_figures_draw_anew(app: Flask) -> None:
    charts._funnel_plot.cache_clear()
    with app.test_request_context(), force_locale("en"):
        first = charts.funnel_plot("Completion", FUNNEL, POINTS)
        again = charts.funnel_plot("Completion", FUNNEL, list(POINTS))
        assert again == first
        assert charts._funnel_plot.cache_info().hits == 1
        moved = charts.funnel_plot("Completion", FUNNEL, [*POINTS[:1], ("Thames Valley Police", 400, 0.7)])
        assert moved != first
        assert charts._funnel_plot.cache_info().misses == 2
        assert "National rate" in first


def test_a_chart_is_kept_apart_for_each_language(app: Flask) -> None:
    charts._trend_chart.cache_clear()
    lines = [("All forces", [0.5, None, 0.6])]
    with app.test_request_context(), force_locale("en"):
        english = charts.trend_chart("Completion by quarter", ["2026 Q1", "2026 Q2", "2026 Q3"], lines)
    with app.test_request_context(), force_locale("cy"):
        welsh = charts.trend_chart("Completion by quarter", ["2026 Q1", "2026 Q2", "2026 Q3"], lines)
    assert charts._trend_chart.cache_info().misses == 2
    assert ">Quarter<" in english
    assert ">Quarter<" not in welsh


def _quarters(first: int, years: int) -> list[str]:
    return [f"{year}-Q{quarter}" for year in range(first, first + years) for quarter in range(1, 5)]


def _drawn(figure: Figure) -> tuple[Bbox, list[Bbox], list[Bbox], Bbox]:
    """The figure drawn as the page's image is: its box, those of its x-axis' names (the quarters', then
    the years'), and its legend's."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    with rc_context(charts._FONT):
        canvas.draw()
    renderer = canvas.get_renderer()
    axes = figure.axes[0]
    quarters, years = ([label.get_window_extent(renderer) for label in axes.get_xticklabels(minor=minor)
                        if label.get_visible() and label.get_text()] for minor in (False, True))
    return figure.bbox, quarters, years, figure.legends[0].get_window_extent(renderer)


GAP = 5  # pixels at the least between two names on an axis


@pytest.mark.parametrize("years", [1, 3, 5, 7, 10, 30])
@pytest.mark.parametrize("language", ["en", "cy"])
def test_no_name_on_the_trends_axis_runs_into_the_next(app: Flask, years: int, language: str) -> None:
    """A year of quarters, three (the demo's), five (a national history) and more: each quarter's name
    clear of the next, the years' below them, each clear of the next, and every one inside the image."""
    quarters = _quarters(2000, years)[1:]  # from a second quarter: the first year is a part of one
    lines = [("All forces", [0.5] * len(quarters)), ("Heddlu Gogledd Cymru", [0.4] * len(quarters))]
    with app.test_request_context(), force_locale(language):
        whole, named, under, legend = _drawn(charts.trend_figure("Completion by quarter, all forces", quarters,
                                                                 lines))
    assert len(named) == (len(quarters) if len(quarters) <= charts.QUARTERS_NAMED else 0)
    if years <= charts.YEARS_NAMED:
        assert len(under) == years
    for boxes in (named, under):
        for box, after in pairwise(boxes):
            assert after.x0 - box.x1 >= GAP
        assert all(whole.x0 <= box.x0 and box.x1 <= whole.x1 for box in boxes)
    assert all(year.y1 < quarter.y0 for year in under for quarter in named)  # below, never across
    assert whole.x0 <= legend.x0
    assert legend.x1 <= whole.x1


def test_each_quarter_is_named_by_its_number_and_each_year_under_its_middle(app: Flask) -> None:
    with app.test_request_context(), force_locale("en"):
        assert charts.quarter_ticks(["2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1"]) \
            == (["Q3", "Q4", "Q1", "Q2", "Q3", "Q4", "Q1"], [(0.5, "2024"), (3.5, "2025"), (6.0, "2026")])
        names, years = charts.quarter_ticks(_quarters(2000, 6))  # too many to name one by one
        assert names == [""] * 24
        assert years == [(place * 4 + 1.5, str(2000 + place)) for place in range(6)]
        _, years = charts.quarter_ticks(_quarters(2000, 30))
        assert [year for _, year in years] == [str(year) for year in range(2000, 2030, 3)]
    with app.test_request_context(), force_locale("cy"):
        assert charts.quarter_ticks(["2025-Q4", "2026-Q1"]) == (["Ch4", "Ch1"], [(0.0, "2025"), (1.0, "2026")])


@pytest.mark.parametrize("force", ["Avon and Somerset Constabulary", "Heddlu Gogledd Cymru"])
@pytest.mark.parametrize("language", ["en", "cy"])
def test_the_funnels_legend_stays_inside_the_image_with_a_forces_name(app: Flask, force: str,
                                                                       language: str) -> None:
    points = [*POINTS, (force, 250, 0.6)]
    with app.test_request_context(), force_locale(language):
        whole, _, _, legend = _drawn(charts.funnel_figure("Completion by force, 2025", FUNNEL, points,
                                                          highlight=force))
    assert whole.x0 <= legend.x0
    assert legend.x1 <= whole.x1
