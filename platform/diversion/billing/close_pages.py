"""The console's monthly close, /admin/billing/close: a platform admin chooses a month
(and a force, or every force), is asked to confirm on a page naming the forces and the
month and saying what closing does (``/admin/billing/close/<month>``, GET), and starts
the close as a background job (the same address, POST); the first page shows the run's
progress and, force by force, where the month's invoices stand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from govuk_frontend_wtf.wtforms_widgets import GovSelect, GovSubmitInput, GovTextInput
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import InputRequired

from diversion import jobs
from diversion.accounts.access import Action, requires_platform_action
from diversion.accounts.forms import ConfirmForm
from diversion.billing.close import CLOSE_TASK
from diversion.billing.models import ClosedMonth, InvoiceStatus, Statement
from diversion.billing.months import month_key, month_label, month_of, parse_month, previous_month
from diversion.db import utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.forms import Form
from diversion.jobs.models import JobRun
from diversion.listing import matching, page_of, search_terms
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.words import current_language

bp = Blueprint("billing_close", __name__, url_prefix="/admin/billing/close")
EVERY_FORCE = ""


class CloseForm(Form):
    month = StringField(_l("Month"), widget=GovTextInput(),
                        description=_l("The year and month, like 2026-11. It must have ended."),
                        validators=[InputRequired(message=_l("Enter the month to close"))])
    force = SelectField(_l("Force"), widget=GovSelect(), validate_choice=False)
    submit = SubmitField(_l("Continue"), widget=GovSubmitInput())


@dataclass(frozen=True)
class ForceMonth:
    """Where one force's month stands, for the page."""

    name: str
    closed: bool
    statements: int
    summary: str  # e.g. "Sent, awaiting payment (3); Not sent: ... (1)"


def _force_month(force: Tenant, month: date) -> ForceMonth:
    with scoped(force.id):
        closed = db.session.scalar(select(ClosedMonth.id).where(ClosedMonth.month == month)) is not None
        statuses = list(db.session.scalars(select(Statement.invoice_status).where(Statement.month == month)))
    summary = "; ".join(f"{status.label} ({statuses.count(status)})" for status in InvoiceStatus if status in statuses)
    return ForceMonth(force.name_in(current_language()), closed, len(statuses), summary)


@bp.route("/", methods=["GET", "POST"])
@requires_platform_action(Action.CLOSE_MONTH)
def index() -> str | Response | tuple[str, int]:
    forces = db.session.scalars(select(Tenant).order_by(Tenant.name)).all()
    form = CloseForm(data={"month": month_key(previous_month(month_of(utcnow())))} if request.method == "GET" else None)
    form.force.choices = [(EVERY_FORCE, _("Every force")),
                          *((force.slug, force.name_in(current_language())) for force in forces)]
    if form.validate_on_submit():
        chosen = next((force for force in forces if force.slug == form.force.data), None)
        try:
            month = _ended(form.month.data or "")
        except FieldError as error:
            form.month.errors = [error.message]
        else:
            if form.force.data != EVERY_FORCE and chosen is None:
                form.force.errors = [_("Choose one of the forces, or every force")]
            else:  # asked first: the close cannot be taken back
                return redirect(url_for(".confirm", month=month_key(month), force=chosen.slug if chosen else None))
    month = _month_asked()
    run = _run_asked()
    search = search_terms()
    query = select(Tenant).order_by(Tenant.name)
    if search:
        query = query.where(matching(search, Tenant.name.expression, Tenant.name_cy.expression))
    page = page_of(query)
    rows = [_force_month(force, month) for force in page.items]
    html = render_template("billing/close.html", form=form, run=run, month=month, rows=rows, page=page,
                           search=search, running=run is not None and run.finished_at is None)
    return (html, 400) if form.errors else html


def _ended(text: str) -> date:
    """The month ``text`` names; refuses (``FieldError`` on ``month``) one that is not a month or has not ended."""
    month = parse_month(text)
    if month >= month_of(utcnow()):
        raise FieldError("month", _("%(month)s has not ended yet: only a past month can be closed",
                                    month=month_label(month)))
    return month


@bp.route("/<month>", methods=["GET", "POST"])
@requires_platform_action(Action.CLOSE_MONTH)
def confirm(month: str) -> str | Response:
    """Asks first (GET): the month, the force (``?force=``, or every force) and what closing does;
    then starts the close (POST). A month that is not one or has not ended, or a force that is not
    one, is not found."""
    try:
        chosen_month = _ended(month)
    except FieldError:
        abort(404)
    slug = request.args.get("force", "")
    chosen = db.session.scalar(select(Tenant).where(Tenant.slug == slug)) if slug else None
    if slug and chosen is None:
        abort(404)
    if request.method == "GET":
        forces = [chosen] if chosen else list(db.session.scalars(
            select(Tenant).where(Tenant.status != ForceStatus.DRAFT).order_by(Tenant.name)))  # as the close has it
        return render_template("billing/close_confirm.html", month=chosen_month, chosen=chosen, forces=forces,
                               stripe_on=bool(current_app.config.get("STRIPE_SECRET_KEY")), confirm=ConfirmForm(),
                               action=url_for(".confirm", month=month_key(chosen_month), force=slug or None),
                               back=url_for(".index", month=month_key(chosen_month)))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    job = jobs.defer(CLOSE_TASK, month=month_key(chosen_month), tenant_id=chosen.id if chosen else None,
                     user_id=current_user.id)
    if job is None:
        flash(_("A close is already waiting to run: its progress shows below once it starts."), "error")
        return redirect(url_for(".index", month=month_key(chosen_month)))
    return redirect(url_for(".index", run=job, month=month_key(chosen_month)))


def _month_asked() -> date:
    try:
        return parse_month(request.args.get("month", ""))
    except FieldError:
        return previous_month(month_of(utcnow()))


def _run_asked() -> JobRun | None:
    raw = request.args.get("run", "")
    if not raw.isdigit() or len(raw) > 18:
        return None
    return db.session.scalar(select(JobRun).where(JobRun.task == CLOSE_TASK, JobRun.job_id == int(raw))
                             .order_by(JobRun.id.desc()).limit(1))
