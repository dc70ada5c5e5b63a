"""The comparison's charts, drawn on the server as SVG with matplotlib: nothing runs in the browser.

Each chart is an image beside a table holding the same numbers (the table is
what a screen reader reads; the image has a short text alternative). Drawn
with matplotlib's SVG backend alone (no screen, no GUI toolkit), one figure
per drawing, closed once written. Every word drawn (axes, legends) is in the reader's language;
the titles are the captions of the tables beside them.

A chart is a function of what it draws and the reader's language alone, and drawing one takes
about 200 ms, so each process keeps the last ``CHARTS_KEPT`` drawn, by those: a page read again
(or by another reader of the same figures) gets its chart at once, and new figures (the
aggregates counted again) draw anew, since the chart is looked up by the figures themselves.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from flask_babel import gettext

from diversion.insights.statistics import Z95, Z998, Funnel
from diversion.words import current_language

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INK, GREY, BLUE, RED, ORANGE = "#0b0c0c", "#505a5f", "#1d70b8", "#d4351c", "#f47738"
_SIZE = (8.0, 4.8)  # inches: 800 by 480 pixels at 100 to the inch
_FONT: Any = {"font.size": 11, "font.family": "DejaVu Sans", "svg.fonttype": "none", "svg.hashsalt": "diversion"}
CHARTS_KEPT = 64  # drawn charts each process keeps (an SVG is tens of kB)


def _figure(title: str, x_label: str) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure  # imported when a chart is first drawn: it takes a second or two

    figure = Figure(figsize=_SIZE, dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, loc="left", fontsize=13, color=INK)
    axes.set_xlabel(x_label, color=INK)
    axes.set_ylabel(gettext("Rate (%)"), color=INK)
    axes.grid(axis="y", color="#b1b4b6", linewidth=0.6)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _svg(figure: Figure) -> str:
    from matplotlib import rc_context

    out = io.StringIO()
    with rc_context(_FONT):
        figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return out.getvalue()


def funnel_plot(title: str, funnel: Funnel, points: Sequence[tuple[str, int, float]],
                highlight: str | None = None) -> str:
    """Each force's rate (%) against its denominator, with the national rate and its 95% and 99.8%
    limits. ``points``: (force, denominator, rate 0-1); ``highlight`` names a force drawn apart."""
    return _funnel_plot(str(title), funnel, tuple(points), highlight, current_language())


@lru_cache(maxsize=CHARTS_KEPT)
def _funnel_plot(title: str, funnel: Funnel, points: tuple[tuple[str, int, float], ...], highlight: str | None,
                 language: str) -> str:
    del language  # a key of the drawings kept: the words drawn are the reader's
    return _svg(funnel_figure(title, funnel, points, highlight))


def funnel_figure(title: str, funnel: Funnel, points: Sequence[tuple[str, int, float]],
                  highlight: str | None = None) -> Figure:
    """The funnel plot (``funnel_plot``) as a figure, not yet drawn."""
    largest = max((total for _, total, _ in points), default=100)
    sizes = sorted({max(1, round(largest * 1.1 * step / 200)) for step in range(1, 201)})
    figure, axes = _figure(title, gettext("Cases the rate is worked out from"))
    axes.axhline(funnel.target * 100, color=BLUE, linewidth=2, label=gettext("National rate"))
    for coverage, z, style, colour in (("95", Z95, "--", GREY), ("99.8", Z998, ":", RED)):
        limits = [funnel.limits(size, z) for size in sizes]
        axes.plot(sizes, [limit.low * 100 for limit in limits], style, color=colour,
                  linewidth=1.5, label=gettext("%(coverage)s%% limits", coverage=coverage))
        axes.plot(sizes, [limit.high * 100 for limit in limits], style, color=colour,
                  linewidth=1.5)
    others = [(total, value * 100) for name, total, value in points if name != highlight]
    if others:
        axes.scatter([x for x, _ in others], [y for _, y in others], color=INK, s=30, zorder=3,
                     label=gettext("A force") if highlight else gettext("Each force"))
    own = [(total, value * 100) for name, total, value in points if name == highlight]
    if own:
        axes.scatter([x for x, _ in own], [y for _, y in own], color=ORANGE, edgecolor=INK, s=90, marker="D",
                     zorder=4, label=highlight)
    axes.set_xlim(left=0)
    axes.set_ylim(0, 100)
    # Five entries fit one row; with a force's name (which may be long) the legend takes two.
    figure.legend(loc="outside lower center", ncols=3 if own else 5, frameon=False)
    return figure


def trend_chart(title: str, quarters: Sequence[str], lines: Sequence[tuple[str, Sequence[float | None]]]) -> str:
    """Rates (%) over ``quarters`` (keys, "2025-Q3"), one line per series (a gap where a rate is not shown)."""
    return _trend_chart(str(title), tuple(quarters), tuple((str(name), tuple(values)) for name, values in lines),
                        current_language())


QUARTERS_NAMED = 20  # quarters the axis names one by one ("Q3"); more are marked, unnamed, and named by year alone
YEARS_NAMED = 12  # years named under the axis; more are named every other year (or third...)


def quarter_ticks(quarters: Sequence[str]) -> tuple[list[str], list[tuple[float, str]]]:
    """How the axis of ``quarters`` (keys, "2025-Q3") is named, in the reader's language, so that no name
    runs into the next: each quarter by its number ("Q3"; none beyond ``QUARTERS_NAMED``), and each year
    once, under the middle of its quarters (every other year, or third, beyond ``YEARS_NAMED``):
    (each quarter's name, [(place, year)])."""
    named = len(quarters) <= QUARTERS_NAMED
    names = [str(gettext("Q%(quarter)s", quarter=key[-1])) if named else "" for key in quarters]
    years: dict[str, list[int]] = {}
    for place, key in enumerate(quarters):
        years.setdefault(key[:4], []).append(place)
    step = -(-len(years) // YEARS_NAMED)
    return names, [((places[0] + places[-1]) / 2, year) for year, places in list(years.items())[::step]]


@lru_cache(maxsize=CHARTS_KEPT)
def _trend_chart(title: str, quarters: tuple[str, ...], lines: tuple[tuple[str, tuple[float | None, ...]], ...],
                 language: str) -> str:
    del language  # a key of the drawings kept: the words drawn are the reader's
    return _svg(trend_figure(title, quarters, lines))


def trend_figure(title: str, quarters: Sequence[str],
                 lines: Sequence[tuple[str, Sequence[float | None]]]) -> Figure:
    """The trend chart (``trend_chart``) as a figure, not yet drawn."""
    figure, axes = _figure(title, gettext("Quarter"))
    positions = list(range(len(quarters)))
    for (name, values), colour, marker in zip(lines, (BLUE, ORANGE), ("o", "D"), strict=False):
        axes.plot(positions, [float("nan") if value is None else value * 100
                              for value in values], marker=marker, color=colour, linewidth=2, label=name)
    names, years = quarter_ticks(quarters)
    axes.set_xticks(positions, names)
    # The years are the minor ticks' names, unmarked, under the quarters' (a year of one quarter shares
    # its place with that quarter's tick, which must not hide it).
    axes.set_xticks([place for place, _ in years], [year for _, year in years], minor=True)
    axes.xaxis.remove_overlapping_locs = False
    axes.tick_params(axis="x", which="minor", length=0, pad=18 if any(names) else 4)
    axes.set_ylim(bottom=0)
    figure.legend(loc="outside lower center", ncols=2, frameon=False)
    return figure
