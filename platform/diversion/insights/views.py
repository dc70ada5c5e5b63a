"""The national comparison's pages: every force for national leads (``/national/``), and a force's own
figures against the national rate for its admins (``/<force>/insights/``).

Pages read released figures only (``insights.reading``, through the insights
login); each table is built once (``insights.tables``) and rendered as HTML
or as its CSV (``?format=csv``), so the download holds the figures the page
shows (as plain numbers, for spreadsheets: ``insights.shown``).
Charts are images drawn on the server (``insights.charts``), each beside a
table with its numbers.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput, GovTextInput
from wtforms import DecimalField, SubmitField
from wtforms.validators import InputRequired, NumberRange

from diversion.accounts.access import Action, requires_force_action, requires_platform_action
from diversion.db import LONDON, utcnow
from diversion.forces.services import change_police_time, police_time
from diversion.forms import Form
from diversion.insights import charts, reading, tables
from diversion.insights.metrics import BREAKDOWNS, MEASURES, RATES, Rate
from diversion.insights.reading import NATIONAL, Force
from diversion.insights.shown import Table, soon_legend
from diversion.insights.tables import FILTERS, OVERVIEW_RATES, Choices, category_name
from diversion.listing import search_terms
from diversion.tenancy.web import force_blueprint
from diversion.web import change_on_form

national_bp = Blueprint("national", __name__, url_prefix="/national")
force_bp = force_blueprint("force_insights", __name__, "/insights")


def _choices(*, filters: bool = False) -> Choices:
    return tables.choose(request.args.get("period", ""),
                         {name: request.args.get(name, "") for name in FILTERS} if filters else None,
                         today=utcnow().astimezone(LONDON).date())


def _scope() -> Force | None:
    """The force whose admin reads its own figures (None on the national pages)."""
    tenant = g.get("tenant")
    if tenant is None:
        return None
    found = next((force for force in reading.forces() if force.id == tenant.id), None)
    return found or Force(tenant.id, tenant.name, utcnow(), *police_time(tenant), name_cy=tenant.name_cy)


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1


def _computed(own: Force | None) -> Any:
    """When the figures shown were computed: the force's own, or the oldest force's."""
    if own is not None:
        return own.computed_at
    times = [force.computed_at for force in reading.forces()]
    return min(times) if times else None


def _endpoints(own: Force | None) -> dict[str, str]:
    """The endpoints of the pages a template links to: the national ones, or the force's."""
    names = ("index", "metric", "funnel_svg", "trend_svg")
    if own is None:
        return {name: f"national.{name}" for name in names}
    return {name: f"force_insights.force_{name}" for name in names}


def _csv(table: Table, name: str, chosen: Choices) -> Response:
    period = chosen.period.key if chosen.period else "none"
    return Response(table.csv(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}-{period}.csv"'})


def _answer(html: str, chosen: Choices) -> Any:
    return (html, 400) if chosen.problems else html


# ---------------------------------------------------------------- the overview

def _overview(own: Force | None) -> Any:
    chosen = _choices()
    page = None
    if own is None:
        page = reading.force_page(search_terms(), _page_number())
        shown = list(page.items)
    else:
        shown = [own]
    table, saved = tables.overview(chosen, shown), tables.police_time(chosen, shown)
    every = tables.compare(chosen, [own]) if own is not None else None
    wanted = {"police-time": saved, "all": every}.get(request.args.get("table", ""))
    if request.args.get("format") == "csv":
        return _csv(wanted or table, "overview", chosen)
    return _answer(render_template("insights/overview.html", chosen=chosen, table=table, saved=saved, every=every,
                                   page=page, own=own,
                                   rates={name: RATES[name] for name in OVERVIEW_RATES}, computed=_computed(own),
                                   search=search_terms(), endpoints=_endpoints(own),
                                   soon=soon_legend([*table.soon, *(every.soon if every else [])])), chosen)


@national_bp.route("/")
@requires_platform_action(Action.READ_NATIONAL_FIGURES)
def index() -> Any:
    """Every force's figures for a period, against all forces."""
    return _overview(None)


@force_bp.route("/")
@requires_force_action(Action.READ_FORCE_FIGURES)
def force_index() -> Any:
    """The force's own figures for a period, against all forces."""
    return _overview(_scope())


# ---------------------------------------------------------------- one rate

def _rate(name: str) -> Rate:
    if name not in RATES:
        abort(404)
    return RATES[name]


def _metric(name: str, own: Force | None) -> Any:
    chosen = _choices(filters=True)
    page = tables.metric(_rate(name), chosen, own)
    if request.args.get("format") == "csv":
        return _csv(page.trend if request.args.get("table") == "trend" else page.forces, name, chosen)
    return _answer(render_template("insights/metric.html", page=page, chosen=chosen, own=own, measures=MEASURES,
                                   breakdowns=BREAKDOWNS, filters=FILTERS, category_name=category_name,
                                   computed=_computed(own), endpoints=_endpoints(own), name=name,
                                   soon=soon_legend([*page.forces.soon, *page.trend.soon])), chosen)


def _svg(svg: str) -> Response:
    # An image drawn here: no script of it runs, and its own styles stay inside it.
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def _funnel_svg(name: str, own: Force | None) -> Response:
    page = tables.metric(_rate(name), _choices(filters=True), own)
    if page.funnel is None:
        abort(404)
    return _svg(charts.funnel_plot(page.forces.caption, page.funnel, page.points,
                                   highlight=tables.force_name(own) if own is not None else None))


def _trend_svg(name: str, own: Force | None) -> Response:
    page = tables.metric(_rate(name), _choices(filters=True), own)
    lines = [(_("All forces"), page.national_trend)]
    if own is not None:
        lines.append((tables.force_name(own), page.own_trend))
    return _svg(charts.trend_chart(page.trend.caption, page.quarters, lines))


@national_bp.route("/<name>")
@requires_platform_action(Action.READ_NATIONAL_FIGURES)
def metric(name: str) -> Any:
    """One rate: every force on a funnel plot against all forces, and the trend by quarter."""
    return _metric(name, None)


@national_bp.route("/<name>/funnel.svg")
@requires_platform_action(Action.READ_NATIONAL_FIGURES)
def funnel_svg(name: str) -> Response:
    return _funnel_svg(name, None)


@national_bp.route("/<name>/trend.svg")
@requires_platform_action(Action.READ_NATIONAL_FIGURES)
def trend_svg(name: str) -> Response:
    return _trend_svg(name, None)


@force_bp.route("/<name>")
@requires_force_action(Action.READ_FORCE_FIGURES)
def force_metric(name: str) -> Any:
    """One rate of the force, against the national rate and its limits."""
    return _metric(name, _scope())


@force_bp.route("/<name>/funnel.svg")
@requires_force_action(Action.READ_FORCE_FIGURES)
def force_funnel_svg(name: str) -> Response:
    return _funnel_svg(name, _scope())


@force_bp.route("/<name>/trend.svg")
@requires_force_action(Action.READ_FORCE_FIGURES)
def force_trend_svg(name: str) -> Response:
    return _trend_svg(name, _scope())


# ---------------------------------------------------------------- two forces; ethnic groups

def _force_asked(field: str, everyone: list[Force], chosen: Choices) -> Force | None:
    """The force chosen in ``field`` (by its number), refused with a message when not listed."""
    asked = request.args.get(field, "")
    found = next((force for force in everyone if str(force.id) == asked), None)
    if asked and found is None:
        chosen.problems.append({"text": _("Choose a force from the list"), "href": f"#{field}"})
    return found


@national_bp.route("/compare")
@requires_platform_action(Action.READ_NATIONAL_FIGURES)
def compare() -> Any:
    """Two forces' rates side by side, each with its interval, and all forces'."""
    chosen = _choices()
    everyone = reading.forces()
    picked = [force for field in ("first", "second") if (force := _force_asked(field, everyone, chosen))]
    if len(picked) == 2 and picked[0].id == picked[1].id:  # a force against itself compares nothing
        chosen.problems.append({"text": _("Choose two different forces"), "href": "#second"})
        picked = picked[:1]
    table = tables.compare(chosen, picked)
    if request.args.get("format") == "csv" and table.rows:
        return _csv(table, "compare", chosen)
    return _answer(render_template("insights/compare.html", chosen=chosen, table=table, forces=everyone,
                                   computed=_computed(None), soon=soon_legend(table.soon)), chosen)


@national_bp.route("/equality")
@requires_platform_action(Action.READ_NATIONAL_FIGURES)
def equality() -> Any:
    """Each ethnic group's referral rate against the whole force's (or all forces'), as a ratio."""
    chosen = _choices()
    everyone = reading.forces()
    force = _force_asked("force", everyone, chosen)
    table = tables.equality(chosen, force.id if force else NATIONAL,
                            tables.force_name(force) if force else _("All forces"))
    if request.args.get("format") == "csv" and table.rows:
        return _csv(table, "equality", chosen)
    return _answer(render_template("insights/equality.html", chosen=chosen, table=table, forces=everyone,
                                   area=force.id if force else None, computed=_computed(None)), chosen)


# ---------------------------------------------------------------- a force's assumptions

class _Amount(DecimalField):
    """A number; anything else is named as such, in ``not_a_number`` ("Enter the hours as a number, such as 6.5")."""

    widget = GovTextInput()

    def __init__(self, label: str | LazyString, *, not_a_number: str | LazyString, **options: Any) -> None:
        super().__init__(label, **options)
        self.not_a_number = not_a_number

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata([str(value).strip() for value in valuelist])
        except ValueError as error:
            raise ValueError(str(self.not_a_number)) from error


class AssumptionsForm(Form):
    hours = _Amount(_l("Police hours saved by each referral"),
                    not_a_number=_l("Enter the hours as a number, such as 6.5"),
                    description=_l("The officer time a referral saves against a charge: the file, the custody time "
                                   "and the court. In hours, to one decimal place."),
                    validators=[InputRequired(message=_l("Enter the hours saved by each referral")),
                                NumberRange(min=0, max=100, message=_l("Enter hours from 0 to 100"))])
    cost = _Amount(_l("Cost of an hour of police time, in pounds"),
                   not_a_number=_l("Enter the cost as a number, such as 38.50"),
                   description=_l("An hour of an officer's time with its on-costs."),
                   validators=[InputRequired(message=_l("Enter the cost of an hour of police time")),
                               NumberRange(min=0, max=1000, message=_l("Enter pounds from 0 to 1,000"))])
    submit = SubmitField(_l("Save the assumptions"), widget=GovSubmitInput())


@force_bp.route("/assumptions", methods=["GET", "POST"])
@requires_force_action(Action.CHANGE_FORCE_SETTINGS)
def assumptions() -> Any:
    """The force's assumptions for police time and cost saved, shown beside its figures."""
    hours, cost = police_time(g.tenant)
    form = AssumptionsForm(data={"hours": hours / 10, "cost": cost / 100} if request.method == "GET" else None)
    if form.validate_on_submit() and change_on_form(form, lambda: change_police_time(
            g.tenant, hours_saved=round(float(form.hours.data or 0) * 10),
            cost_per_hour=round(float(form.cost.data or 0) * 100), actor=current_user)) is not None:
        flash(_("The assumptions are saved. Your figures use them from the next time they are counted, "
                "within a day."), "success")
        return redirect(url_for(".force_index"))
    html = render_template("insights/assumptions.html", form=form)
    return (html, 400) if form.errors else html
