"""The provider workspace at ``/provider/``: one sign-in, the provider's referrals from every force it serves.

Before any view runs, the signed-in user must work for a provider
(``ProviderMembership``); anyone else gets 403. The provider chosen in the
organisation switcher (kept in the session, checked against the user's
memberships on every request) is put in scope with no force
(``set_provider_scope``): the ORM guard and row-level security then show
that provider's referrals and nothing else. A referral of another provider,
or of a force the provider does not serve, is not found (404).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from diversion.accounts.access import Action, may
from diversion.accounts.models import User
from diversion.cases import services as cases
from diversion.cases.forms import AttendanceForm, BookForm, attendance_message
from diversion.cases.models import BookedSession, Referral, State, made_by
from diversion.db import LONDON
from diversion.errors import FieldError
from diversion.extensions import db, login
from diversion.listing import page_of, search_terms, total_text
from diversion.providers import lists, services
from diversion.providers.forms import AcceptForm, CompleteForm, DeclineForm, OrganisationForm
from diversion.tenancy.context import set_provider_scope
from diversion.tenancy.models import Tenant
from diversion.unit import refuse
from diversion.web import change_on_form, change_or_flash
from diversion.words import current_language, day

bp = Blueprint("provider", __name__, url_prefix="/provider")
CHOSEN = "provider_id"  # session key: the organisation picked in the switcher


@bp.before_request
def _require_provider_staff() -> Any:
    if not current_user.is_authenticated:
        return login.unauthorized()
    mine = services.providers_of(current_user)
    chosen = session.get(CHOSEN)
    provider = next((p for p in mine if p.id == chosen), mine[0] if mine else None)
    if provider is None or not may(current_user, Action.READ_PROVIDER_REFERRALS, provider_id=provider.id):
        abort(403)
    g.provider, g.providers = provider, mine
    set_provider_scope(provider.id, current_user.id)
    return None


def _today() -> date:
    return datetime.now(UTC).date()


def _referral(referral_id: uuid.UUID) -> Referral:
    found = services.find_referral(g.provider, referral_id)
    if found is None:
        abort(404)
    return found


def _date_arg(name: str, problem: str, errors: dict[str, str]) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = problem
        return None


def _filters() -> tuple[lists.ProviderListFilter, dict[str, str]]:
    """The list's search and filters from the query string; bad ones are named and left out."""
    errors: dict[str, str] = {}
    typed = search_terms()
    reference = lists.reference_of(typed) if typed else None
    if typed and reference is None:
        errors["q"] = _("Enter a case reference like WM-2026-000042.")
    slug = request.args.get("force") or None
    force = next((t for t in g.forces if t.slug == slug), None)
    if slug and force is None:
        errors["force"] = _("Choose one of the forces your organisation serves.")
    state_raw = request.args.get("state") or None
    state = None
    if state_raw and state_raw != lists.ALL_STATES:
        if state_raw in {s.value for s in State}:
            state = State(state_raw)
        else:
            errors["state"] = _("Choose one of the referral states.")
    overdue_raw = request.args.get("overdue") or None
    if overdue_raw not in (None, "yes"):
        errors["overdue"] = _("Choose whether to show only referrals past their deadline.")
    course_raw = request.args.get("course") or None
    course = next((c for c in g.courses if str(c.id) == course_raw), None)
    if course_raw and course is None:
        errors["course"] = _("Choose one of your organisation's courses.")
    sort = request.args.get("sort", "due")
    if sort not in lists.SORTS:
        errors["sort"] = _("Sort by due date or state.")
        sort = "due"
    due_from = _date_arg("due_from", _("Due from must be a real date."), errors)
    due_to = _date_arg("due_to", _("Due by must be a real date."), errors)
    if due_from and due_to and due_to < due_from:  # a window that is empty: neither end is kept
        errors["due_to"] = _("Due by must be the same as or after due from.")
        due_from = due_to = None
    return lists.ProviderListFilter(reference=reference, force=force, state=state,
                                    open_only=state_raw != lists.ALL_STATES, overdue=overdue_raw == "yes",
                                    course=course, due_from=due_from, due_to=due_to, sort=sort,
                                    descending=request.args.get("order") == "descending"), errors


def _selected(wanted: lists.ProviderListFilter) -> list[tuple[str, str, str]]:
    """The filters in use, as the selected filters panel shows them: (heading, the filter in words, the
    list's address without it)."""
    chosen: list[tuple[str, str, str]] = []
    if wanted.reference:
        chosen.append((_("Case reference"), wanted.reference, "q"))
    if wanted.force:
        chosen.append((_("Force"), wanted.force.name_in(current_language()), "force"))
    if wanted.state:
        chosen.append((_("State"), wanted.state.label, "state"))
    if wanted.course:
        chosen.append((_("Course"), wanted.course.title_in(current_language()), "course"))
    if wanted.overdue:
        chosen.append((_("Deadline"), _("Only open past their deadline"), "overdue"))
    if wanted.due_from:
        chosen.append((_("Due from"), day(wanted.due_from), "due_from"))
    if wanted.due_to:
        chosen.append((_("Due by"), day(wanted.due_to), "due_to"))
    kept = {name: value for name, value in request.args.items() if name != "page"}
    return [(heading, words, url_for(".referrals") + "?" + urlencode({k: v for k, v in kept.items() if k != name}))
            for heading, words, name in chosen]


@bp.route("/")
def referrals() -> tuple[str, int]:
    """The provider's referrals from every force it serves: a page at a time, with the people's names."""
    g.forces = services.forces_served(g.provider)
    g.courses = lists.courses_of(g.provider)
    wanted, errors = _filters()
    today = _today()
    page = page_of(lists.statement(g.provider, wanted, today), capped=True)
    shown = lists.rows(page.items, g.forces)
    services.record_listing(g.provider, [(row.referral, row.force) for row in shown], actor=current_user)
    noun = "open referral" if lists.shows_open_alone(wanted) else "referral"
    html = render_template("providers/referrals.html", page=page, shown=shown, wanted=wanted, errors=errors,
                           forces=g.forces, courses=g.courses, states=list(State), all_states=lists.ALL_STATES,
                           today=today, search=search_terms(), total=total_text(page, noun),
                           selected=_selected(wanted), organisation=_organisation_form())
    return html, 400 if errors else 200


def _organisation_form() -> OrganisationForm:
    form = OrganisationForm(formdata=None, provider=str(g.provider.id))
    form.provider.choices = [SelectChoice(str(p.id), p.name) for p in g.providers]
    return form


def _referral_page(referral: Referral, *, book: BookForm | None = None, attendance: AttendanceForm | None = None,
                   complete: CompleteForm | None = None, decline: DeclineForm | None = None) -> str:
    view = services.view_referral(g.provider, referral, actor=current_user)
    waiting = next((s for s in view.sessions if s.attendance is None), None)
    actor_ids = {s.actor_id for s in referral.transitions} - {None}
    names = {u.id: u.name for u in db.session.scalars(select(User).where(User.id.in_(actor_ids)))}
    force = view.tenant.name_in(current_language())
    made = {step.id: made_by(step, names, force=force, provider=lambda: g.provider.name, otherwise=force)
            for step in referral.transitions}
    return render_template(
        "providers/referral.html", view=view, referral=referral, made=made, today=_today(),
        accept=AcceptForm(formdata=None), book=book or BookForm(formdata=None),
        attendance=attendance or AttendanceForm(formdata=None), complete=complete or CompleteForm(formdata=None),
        decline=decline or DeclineForm(formdata=None),
        bookable=referral.state in cases.BOOKABLE, organisation=_organisation_form(), waiting=waiting,
        if_missed=services.if_missed(referral, actor=current_user, on=_today())
        if waiting is not None and referral.state.is_open else None,
        missed_allowed=services.missed_allowed(referral, actor=current_user),
        missed=sum(1 for s in view.sessions if s.attendance is not None and s.attendance.value == "did_not_attend"))


@bp.route("/referrals/<uuid:referral_id>")
def referral(referral_id: uuid.UUID) -> str:
    return _referral_page(_referral(referral_id))


@bp.route("/referrals/<uuid:referral_id>/accept", methods=["POST"])
def accept(referral_id: uuid.UUID) -> Response:
    found = _referral(referral_id)
    if AcceptForm().validate_on_submit():
        change_or_flash(lambda: services.accept(found, actor=current_user), _("The referral is accepted."))
    else:
        flash(_("Something was wrong with that request: try again."), "error")
    return redirect(url_for(".referral", referral_id=referral_id))


@bp.route("/referrals/<uuid:referral_id>/decline", methods=["POST"])
def decline(referral_id: uuid.UUID) -> Response | tuple[str, int]:
    found = _referral(referral_id)
    form = DeclineForm()
    if form.validate_on_submit() and change_on_form(
            form, lambda: services.decline(found, actor=current_user, reason=form.reason.data or ""),
            {"state": form.reason}):
        flash(_("The referral is declined. The force sees your reason on its case page."), "success")
        return redirect(url_for(".referral", referral_id=referral_id))
    return _referral_page(_referral(referral_id), decline=form), 400


@bp.route("/referrals/<uuid:referral_id>/sessions", methods=["POST"])
def book(referral_id: uuid.UUID) -> Response | tuple[str, int]:
    found = _referral(referral_id)
    form = BookForm()
    if form.validate_on_submit() and (starts_at := form.starts_at()) is not None and change_on_form(
            form, lambda: services.book_session(found, starts_at=starts_at, venue=form.venue.data or "",
                                                actor=current_user), {"starts_at": form.day}):
        local = starts_at.astimezone(LONDON)
        flash(_("The session is booked for %(day)s at %(time)s.", day=day(local),
                time=local.strftime("%H:%M")), "success")
        return redirect(url_for(".referral", referral_id=referral_id))
    return _referral_page(_referral(referral_id), book=form), 400


@bp.route("/sessions/<uuid:session_id>/attendance", methods=["POST"])
def attendance(session_id: uuid.UUID) -> Response | tuple[str, int]:
    booked: BookedSession | None = services.find_session(g.provider, session_id)
    if booked is None:
        abort(404)
    found = _referral(booked.referral_id)
    back = url_for(".referral", referral_id=found.id)
    form = AttendanceForm()
    if form.validate_on_submit() and form.confirm.data:
        attended = form.attendance.data == "attended"
        try:
            services.record_attendance(booked, attended=attended, actor=current_user, note=form.note.data or "")
        except FieldError as error:
            refuse()
            form.attendance.errors.append(error.message)  # type: ignore[attr-defined]
        else:
            flash(attendance_message(found, db.get_or_404(Tenant, found.tenant_id), attended), "success")
            return redirect(back)
    elif form.attendance.data and not form.confirm.data and not form.confirm.errors:
        form.confirm.errors = [_("Confirm what happened")]
    return _referral_page(_referral(found.id), attendance=form), 400


@bp.route("/referrals/<uuid:referral_id>/complete", methods=["POST"])
def complete(referral_id: uuid.UUID) -> Response | tuple[str, int]:
    found = _referral(referral_id)
    form = CompleteForm()
    if form.validate_on_submit() and form.confirm.data:
        try:
            services.complete(found, actor=current_user, note=form.note.data or "")
        except FieldError as error:
            refuse()
            form.confirm.errors = [error.message]
        else:
            flash(_("Completion recorded. The force sees the outcome on its case page."), "success")
            return redirect(url_for(".referral", referral_id=referral_id))
    elif not form.confirm.errors:
        form.confirm.errors = [_("Confirm that the course is completed")]
    return _referral_page(_referral(referral_id), complete=form), 400


@bp.route("/organisation", methods=["POST"])
def switch() -> Response:
    form = OrganisationForm()
    form.provider.choices = [SelectChoice(str(p.id), p.name) for p in g.providers]
    if form.validate_on_submit():
        session[CHOSEN] = int(form.provider.data or 0)
        flash(_("You are working for %(provider)s.",
                provider=next(p.name for p in g.providers if str(p.id) == form.provider.data)), "success")
    else:
        flash(_("Choose one of your organisations."), "error")
    return redirect(url_for(".referrals"))
