"""The charts drawn on the server: each drawing kept, by what it draws and the reader's language."""

from __future__ import annotations

from flask import Flask
from flask_babel import force_locale

from diversion.insights import charts
from diversion.insights.statistics import Funnel

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
