"""The console's onboarding pages (``/admin/forces/...``, platform admins): a new
force set up step by step on a GOV.UK task list, resumed, finished or discarded.

The steps are ``forces.onboarding``'s; each page parses its form, calls the
service and shows a refusal on the field it names, in the error summary.
A draft's pages put the draft force in scope, as a force's own pages do.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from diversion.accounts import sso
from diversion.accounts.access import Action, requires_platform_action
from diversion.accounts.forms import ConfirmForm
from diversion.accounts.invitations import invitation_link, mail_configured
from diversion.accounts.sso_views import callback_url
from diversion.admin.forms import FirstAdminForm, ForceDetailsForm, OfferingsForm, PolicyTemplateForm
from diversion.catalogue.views import LABELS
from diversion.catalogue.vocabulary import AREAS, kind_label
from diversion.extensions import db
from diversion.forces import onboarding
from diversion.forms import Form
from diversion.tenancy.context import set_scope
from diversion.tenancy.models import Tenant
from diversion.unit import refuse
from diversion.web import change_on_form, change_or_flash
from diversion.words import current_language, day

bp = Blueprint("onboarding", __name__, url_prefix="/admin/forces")

BLANK = "blank"
CHOICE = re.compile(r"^([a-z][a-z0-9_-]{0,62}):([0-9]{1,9})$")  # an offering chosen: <pathway>:<course id>


def _today() -> date:
    return datetime.now(UTC).date()


def _draft(slug: str) -> Tenant:
    """The force being set up at ``slug``, put in scope; 404 for none (or one that has opened)."""
    tenant = onboarding.draft_by_slug(slug)
    if tenant is None:
        abort(404)
    set_scope(tenant.id, current_user.id)
    return tenant


def _page(template: str, form: Form | None = None, **context: Any) -> tuple[str, int]:
    """A step's page: 400 when a submitted form was refused."""
    html = render_template(template, form=form, **context)
    return html, 400 if request.method == "POST" else 200


def _done(message: str, slug: str) -> Response:
    flash(message, "success")
    return redirect(url_for(".tasks", force=slug))


# ---------------------------------------------------------------- details

@bp.route("/new", methods=["GET", "POST"])
@requires_platform_action(Action.ONBOARD_FORCE)
def new() -> Response | tuple[str, int]:
    """The first step: the draft is made when its details are saved."""
    form = ForceDetailsForm()
    if request.method == "GET":
        form.languages.data = ["en"]
    if form.validate_on_submit():
        tenant = change_on_form(form, lambda: onboarding.start_draft(form.details(""), actor=current_user))
        if tenant is not None:
            return _done(_("%(force)s is saved as a draft: its pages stay closed until you open it.",
                           force=tenant.name_in(current_language())), tenant.slug)
    return _page("admin/onboarding/details.html", form, force=None)


@bp.route("/<force>/setup/details", methods=["GET", "POST"])
@requires_platform_action(Action.ONBOARD_FORCE)
def details(force: str) -> Response | tuple[str, int]:
    tenant = _draft(force)
    form = ForceDetailsForm(data=asdict(onboarding.details_of(tenant)) if request.method == "GET" else None)
    del form.slug  # the address cannot change
    if form.validate_on_submit() and change_on_form(
            form, lambda: onboarding.change_details(tenant, form.details(tenant.slug), actor=current_user)) is not None:
        return _done(_("%(force)s's details are saved.", force=tenant.name_in(current_language())), tenant.slug)
    return _page("admin/onboarding/details.html", form, force=tenant)


# ---------------------------------------------------------------- the task list, finishing

def _tasks_page(tenant: Tenant, *, refusal: onboarding.OnboardingError | None = None) -> tuple[str, int]:
    tasks = onboarding.progress(tenant, today=_today())
    links = {key: url_for(f".{key}", force=tenant.slug)
             for key in ("details", "policy", "offerings", "sign_on", "first_admin")}
    html = render_template("admin/onboarding/tasks.html", force=tenant, tasks=tasks, links=links,
                           area=AREAS.get(tenant.area, tenant.area), refusal=refusal, confirm=ConfirmForm())
    return html, 400 if refusal else 200


@bp.route("/<force>/setup/")
@requires_platform_action(Action.ONBOARD_FORCE)
def tasks(force: str) -> tuple[str, int]:
    """Where the draft stands: each step, and the button that opens the force."""
    return _tasks_page(_draft(force))


@bp.route("/<force>/setup/finish", methods=["POST"])
@requires_platform_action(Action.ONBOARD_FORCE)
def finish(force: str) -> Response | tuple[str, int]:
    tenant = _draft(force)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    today = _today()
    try:
        version = onboarding.finish(tenant, actor=current_user, today=today)
    except onboarding.OnboardingError as error:
        refuse()
        return _tasks_page(tenant, refusal=error)
    flash(_("%(force)s is open: its members can sign in at /%(slug)s/, and version %(number)s "
            "of its policy is in force from %(date)s.", force=tenant.name_in(current_language()), slug=tenant.slug,
            number=version.number, date=day(version.effective_from or today)), "success")  # published from today
    return redirect(url_for("admin.index"))


# ---------------------------------------------------------------- the first policy

@bp.route("/<force>/setup/policy", methods=["GET", "POST"])
@requires_platform_action(Action.ONBOARD_FORCE)
def policy(force: str) -> Response | tuple[str, int]:
    tenant = _draft(force)
    templates = {t.force.slug: t for t in onboarding.policy_templates(tenant, today=_today())}
    form = PolicyTemplateForm()
    form.template.choices = [SelectChoice(f"copy:{slug}", t.force.name_in(current_language()))
                             for slug, t in templates.items()]
    form.template.choices.append(SelectChoice(BLANK, _("A blank policy")))

    def choose() -> object:
        chosen = form.template.data or ""
        if chosen == BLANK:
            return onboarding.blank_policy(tenant, actor=current_user, today=_today())
        template = templates.get(chosen.removeprefix("copy:"))
        if template is None:
            raise onboarding.OnboardingError("template", _("Choose one of the policies listed."))
        return onboarding.copy_policy(tenant, template.force, actor=current_user, today=_today())

    if form.validate_on_submit() and change_on_form(form, choose) is not None:
        missing = onboarding.policy_state(tenant, today=_today()).welsh_missing
        if form.template.data == BLANK:
            flash(_("The blank policy is saved as the force's draft. Write its pathways and test cases here, "
                    "then go back to the set-up.") if not missing else
                  _("The blank policy is saved as the force's draft. Write its pathways and test cases here, "
                    "each sentence in Welsh as well as English, then go back to the set-up."), "success")
            return redirect(url_for("policy.draft", tenant=tenant.slug))
        if missing:
            return _done(_("The policy is copied and passes its tests. %(force)s works in Welsh: %(missing)s "
                           "Add it in the policy console before the force opens.",
                           force=tenant.name_in(current_language()), missing=missing), tenant.slug)
        return _done(_("The policy is copied and passes its tests: it will be published when the force opens."),
                     tenant.slug)
    return _page("admin/onboarding/policy.html", form, force=tenant, templates=templates,
                 state=onboarding.policy_state(tenant, today=_today()), kind_label=kind_label)


# ---------------------------------------------------------------- offerings

def _chosen(values: list[str]) -> set[tuple[str, int]]:
    """The offerings ticked; refuses a value the page never draws."""
    chosen = set()
    for value in values:
        match = CHOICE.match(value)
        if match is None:
            raise onboarding.OnboardingError("offerings", _("Choose courses from the lists shown."))
        chosen.add((match.group(1), int(match.group(2))))
    return chosen


@bp.route("/<force>/setup/offerings", methods=["GET", "POST"])
@requires_platform_action(Action.ONBOARD_FORCE)
def offerings(force: str) -> Response | tuple[str, int]:
    tenant = _draft(force)
    form = OfferingsForm()
    if form.validate_on_submit() and change_on_form(form, lambda: onboarding.set_offerings(
            tenant, _chosen(request.form.getlist("offerings")), actor=current_user)) is not None:
        count = len(onboarding.offered())
        return _done(ngettext("%(num)s course is offered.", "%(num)s courses are offered.", count) if count
                     else _("No course is offered: none in the catalogue fits the policy’s pathways."), tenant.slug)
    ticked = (set(request.form.getlist("offerings")) if request.method == "POST"
              else {f"{p}:{c}" for p, c in onboarding.offered()})
    return _page("admin/onboarding/offerings.html", form, force=tenant, choices=onboarding.offering_choices(tenant),
                 ticked=ticked, area=AREAS.get(tenant.area, tenant.area), kind_label=kind_label, labels=LABELS)


# ---------------------------------------------------------------- single sign-on, the first force admin

@bp.route("/<force>/setup/sign-on", methods=["GET", "POST"])
@requires_platform_action(Action.ONBOARD_FORCE)
def sign_on(force: str) -> Response | tuple[str, int]:
    """The optional step: the force's identity provider (the client secret is never shown back)."""
    tenant = _draft(force)
    saved = sso.sign_on_of(tenant)
    form = sso.SignOnForm.for_page(saved, submitted=request.method != "GET")
    if form.validate_on_submit() and change_on_form(
            form, lambda: onboarding.set_sign_on(tenant, actor=current_user, **form.settings())) is not None:
        return _done(_("Single sign-on is saved."), tenant.slug)
    return _page("admin/onboarding/sign_on.html", form, force=tenant, saved=saved, callback=callback_url(tenant.slug))


@bp.route("/<force>/setup/first-admin", methods=["GET", "POST"])
@requires_platform_action(Action.ONBOARD_FORCE)
def first_admin(force: str) -> str | tuple[str, int]:
    """The last step: an invitation whose link is shown once, on the answer to the POST."""
    tenant = _draft(force)
    form = FirstAdminForm()
    if form.validate_on_submit():
        made = change_on_form(form, lambda: onboarding.invite_first_admin(
            tenant, email=form.email.data or "", name=form.name.data or "", actor=current_user))
        if made is not None:
            invitation, token = made
            return render_template("admin/onboarding/invited.html", force=tenant, invitation=invitation,
                                   link=invitation_link(invitation, token), emailed=mail_configured())
    return _page("admin/onboarding/first_admin.html", form, force=tenant, admins=onboarding.first_admins())


# ---------------------------------------------------------------- discarding

@bp.route("/<force>/discard", methods=["GET", "POST"])
@requires_platform_action(Action.ONBOARD_FORCE)
def discard(force: str) -> Response | tuple[str, int]:
    """GET asks to confirm (a draft only); POST discards, or says why not (a force that has opened)."""
    if request.method == "GET":
        return _page("admin/onboarding/discard.html", None, force=_draft(force), confirm=ConfirmForm())
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == force))
    if tenant is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    set_scope(tenant.id, current_user.id)
    change_or_flash(lambda: onboarding.discard(tenant, actor=current_user),
                    _("The draft of %(force)s is discarded.", force=tenant.name_in(current_language())))
    return redirect(url_for("admin.index"))
