"""Catalogue pages.

``admin_bp`` (``/admin/catalogue``): platform admins list, add and change
providers and courses, and retire or reinstate a course.

``offerings_bp`` (``/<force>/offerings``): a force admin chooses which
courses serve which of the force's pathways, with local details (venues,
booking contact, notes), changes those details, and withdraws an offering.
Adding is two steps, so that the course list only holds courses that fit
the chosen pathway (``catalogue.files.misfit``) and works without script.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from diversion.accounts.access import Action, requires_force_action, requires_platform_action
from diversion.accounts.forms import ConfirmForm
from diversion.catalogue import services
from diversion.catalogue.files import misfit
from diversion.catalogue.forms import (
    AddOfferingForm,
    ChoosePathwayForm,
    CourseForm,
    EditOfferingForm,
    LocalDetailsForm,
    ProviderForm,
)
from diversion.catalogue.models import Course, Offering, Provider
from diversion.catalogue.vocabulary import AREAS, DELIVERY_LABELS, FORMAT_LABELS, kind_label
from diversion.extensions import db
from diversion.forms import Form
from diversion.tenancy.web import force_blueprint
from diversion.web import change_on_form, change_or_flash
from diversion.words import current_language

admin_bp = Blueprint("catalogue_admin", __name__, url_prefix="/admin/catalogue")
offerings_bp = force_blueprint("offerings", __name__, "/offerings")

# How the pages write a course's facts.
LABELS: dict[str, Callable[..., str]] = {
    "kinds": lambda kinds: ", ".join(kind_label(k) for k in kinds),
    "format": lambda value: str(FORMAT_LABELS.get(value) or value),
    "delivery": lambda modes: " or ".join(str(DELIVERY_LABELS.get(m, m)) for m in modes).capitalize(),
    "areas": lambda areas: ", ".join(AREAS.get(a, a) for a in areas),
    "ages": lambda course: _("%(youngest)s to %(oldest)s", youngest=course.min_age, oldest=course.max_age)
    if course.max_age else _("%(youngest)s and over", youngest=course.min_age),
}


def _today() -> date:
    return datetime.now(UTC).date()


def _saved(form: Form, change: Callable[[], object]) -> bool:
    """Validate the form and run the service (which answers something) as the request's
    unit of work; on a refusal, put the service's reason on the form (``change_on_form``)."""
    return form.validate_on_submit() and change_on_form(form, change) is not None


# ---------------------------------------------------------------- platform admins

@admin_bp.route("/")
@requires_platform_action(Action.EDIT_CATALOGUE)
def index() -> str:
    return render_template("catalogue/admin_index.html", providers=services.providers(), courses=services.courses(),
                           confirm=ConfirmForm(), labels=LABELS)


def _provider_page(form: ProviderForm, provider: Provider | None) -> tuple[str, int]:
    page = render_template("catalogue/provider_form.html", form=form, provider=provider)
    return page, 400 if request.method == "POST" else 200


@admin_bp.route("/providers/new", methods=["GET", "POST"])
@requires_platform_action(Action.EDIT_CATALOGUE)
def new_provider() -> Response | tuple[str, int]:
    form = ProviderForm()
    if _saved(form, lambda: services.create_provider(form.data_for_service(), actor=current_user)):
        flash(_("%(name)s is added to the catalogue.", name=form.name.data), "success")
        return redirect(url_for(".index"))
    return _provider_page(form, None)


@admin_bp.route("/providers/<int:provider_id>", methods=["GET", "POST"])
@requires_platform_action(Action.EDIT_CATALOGUE)
def edit_provider(provider_id: int) -> Response | tuple[str, int]:
    provider = db.get_or_404(Provider, provider_id)
    form = ProviderForm(obj=provider if request.method == "GET" else None)
    del form.slug  # the address cannot change
    if _saved(form, lambda: services.update_provider(provider, form.data_for_service(), actor=current_user)):
        flash(_("%(name)s is saved.", name=provider.name), "success")
        return redirect(url_for(".index"))
    return _provider_page(form, provider)


def _course_page(form: CourseForm, course: Course | None) -> tuple[str, int]:
    page = render_template("catalogue/course_form.html", form=form, course=course)
    return page, 400 if request.method == "POST" else 200


def _course_form(course: Course | None) -> CourseForm:
    form = CourseForm(obj=course if request.method == "GET" else None)
    form.provider.choices = [SelectChoice("", _("Choose a provider"))] + [
        SelectChoice(p.slug, p.name) for p in services.providers()]
    if course is not None:
        del form.slug  # the address cannot change
        if request.method == "GET":
            form.provider.data = course.provider.slug
    return form


@admin_bp.route("/courses/new", methods=["GET", "POST"])
@requires_platform_action(Action.EDIT_CATALOGUE)
def new_course() -> Response | tuple[str, int]:
    form = _course_form(None)
    if _saved(form, lambda: services.create_course(form.data_for_service(), actor=current_user)):
        flash(_("%(name)s is added to the catalogue.", name=form.title.data), "success")
        return redirect(url_for(".index"))
    return _course_page(form, None)


@admin_bp.route("/courses/<int:course_id>", methods=["GET", "POST"])
@requires_platform_action(Action.EDIT_CATALOGUE)
def edit_course(course_id: int) -> Response | tuple[str, int]:
    course = db.get_or_404(Course, course_id)
    form = _course_form(course)
    if _saved(form, lambda: services.update_course(course, form.data_for_service(), actor=current_user)):
        flash(_("%(name)s is saved.", name=course.title), "success")
        return redirect(url_for(".index"))
    return _course_page(form, course)


def _course_change(course_id: int, change: Callable[..., None], done: Callable[[str], str]) -> Response:
    course = db.get_or_404(Course, course_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: change(course, actor=current_user), done(course.title))
    return redirect(url_for(".index"))


@admin_bp.route("/courses/<int:course_id>/retire", methods=["POST"])
@requires_platform_action(Action.EDIT_CATALOGUE)
def retire_course(course_id: int) -> Response:
    return _course_change(course_id, services.retire_course, lambda title: _(
        "%(course)s is retired: it takes no new offerings or referrals; referrals already made go on.", course=title))


@admin_bp.route("/courses/<int:course_id>/reinstate", methods=["POST"])
@requires_platform_action(Action.EDIT_CATALOGUE)
def reinstate_course(course_id: int) -> Response:
    return _course_change(course_id, services.reinstate_course,
                          lambda title: _("%(course)s is back in the catalogue.", course=title))


# ---------------------------------------------------------------- force admins

def _details(form: LocalDetailsForm) -> services.LocalDetails:
    return services.LocalDetails(venues=form.venue_lines(), booking_contact=form.booking_contact.data or "",
                                 notes=form.notes.data or "")


@offerings_bp.route("/", endpoint="index")
@requires_force_action(Action.MANAGE_OFFERINGS)
def offerings_index() -> str:
    pathways = {p.id: p for p in services.pathways_in_force(_today())}

    def problem(offering: Offering) -> str | None:
        pathway = pathways.get(offering.pathway)
        if pathway is None:
            return str(_("The policy in force has no such pathway."))
        return misfit(offering.course, area=g.tenant.area, kind=pathway.kind)

    return render_template("catalogue/offerings.html", offerings=services.offerings(), pathways=pathways,
                           problem=problem, labels=LABELS)


@offerings_bp.route("/new", methods=["GET", "POST"])
@requires_force_action(Action.MANAGE_OFFERINGS)
def new() -> Response | tuple[str, int]:
    """Step 1 (GET, no pathway): choose a pathway. Step 2: a fitting course and local details."""
    pathways = {p.id: p for p in services.pathways_in_force(_today())}
    chosen = request.form.get("pathway") if request.method == "POST" else request.args.get("pathway")
    pathway = pathways.get(chosen or "")
    if pathway is None:
        asked = request.method == "POST" or bool({"pathway", "submit"} & set(request.args))
        choose = ChoosePathwayForm(request.args if asked else None)
        choose.pathway.choices = [SelectChoice(p.id, p.name_in(current_language())) for p in pathways.values()]
        if asked:
            choose.pathway.errors = [_("Choose a pathway of the force's policy in force")]
        page = render_template("catalogue/offering_pathway.html", form=choose, pathways=pathways)
        return page, 400 if asked else 200
    courses = {str(c.id): c for c in services.fitting_courses(g.tenant, pathway)}
    form = AddOfferingForm()
    form.pathway.data = pathway.id
    form.course.choices = [SelectChoice(key, c.title_in(current_language())) for key, c in courses.items()]

    def add() -> Offering:
        course = courses.get(form.course.data or "")
        if course is None:
            raise services.CatalogueError("course", _("Choose one of the courses that fit this pathway."))
        return services.add_offering(g.tenant, course, pathway.id, _details(form), actor=current_user, today=_today())

    if request.method == "POST" and _saved(form, add):
        flash(_("%(course)s is offered for %(pathway)s.",
                course=courses[form.course.data or ""].title_in(current_language()),
                pathway=pathway.name_in(current_language())), "success")
        return redirect(url_for(".index"))
    page = render_template("catalogue/offering_new.html", form=form, pathway=pathway, courses=courses,
                           labels=LABELS)
    return page, 400 if request.method == "POST" else 200


@offerings_bp.route("/<uuid:offering_id>", methods=["GET", "POST"])
@requires_force_action(Action.MANAGE_OFFERINGS)
def edit(offering_id: uuid.UUID) -> Response | tuple[str, int]:
    offering = db.get_or_404(Offering, offering_id)
    form = EditOfferingForm()
    if request.method == "GET":
        form.venues.data, form.booking_contact.data, form.notes.data = (
            offering.venues, offering.booking_contact, offering.notes)
    if _saved(form, lambda: services.update_offering(g.tenant, offering, _details(form), actor=current_user)):
        flash(_("The offering of %(course)s is saved.", course=offering.course.title), "success")
        return redirect(url_for(".index"))
    pathway = next((p for p in services.pathways_in_force(_today()) if p.id == offering.pathway), None)
    page = render_template("catalogue/offering_edit.html", form=form, offering=offering, pathway=pathway,
                           labels=LABELS)
    return page, 400 if request.method == "POST" else 200


@offerings_bp.route("/<uuid:offering_id>/withdraw", methods=["GET", "POST"])
@requires_force_action(Action.MANAGE_OFFERINGS)
def withdraw(offering_id: uuid.UUID) -> Response | str:
    """Asks first (GET: what follows, and a warning when no other course would be left offered for the
    pathway), then withdraws (POST); refuses what ``services.withdraw_offering`` refuses."""
    offering = db.get_or_404(Offering, offering_id)
    if request.method == "GET":
        if offering.withdrawn_at is not None:
            abort(404)
        pathway = next((p for p in services.pathways_in_force(_today()) if p.id == offering.pathway), None)
        others = [o for o in services.live_offerings_for(offering.pathway) if o.id != offering.id]
        return render_template("catalogue/offering_withdraw.html", offering=offering, pathway=pathway,
                               others=others, confirm=ConfirmForm())
    if not ConfirmForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: services.withdraw_offering(g.tenant, offering, actor=current_user),
                    _("%(course)s is withdrawn: it takes no new referrals; referrals already made go on.",
                      course=offering.course.title_in(current_language())))
    return redirect(url_for(".index"))
