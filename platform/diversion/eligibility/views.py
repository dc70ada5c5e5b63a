"""The policy console: the policy in force, the draft editor, tests, publication,
history with differences, the field catalogue and simulation."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Any

import tomli_w
from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from diversion.accounts.access import Action, requires_force_action
from diversion.accounts.forms import ConfirmForm
from diversion.eligibility import runs, services
from diversion.eligibility.compiler import CompiledPolicy, PolicyInvalid, PolicyProblem, compile_cached
from diversion.eligibility.document import PolicyDocument
from diversion.eligibility.engine import TestOutcome
from diversion.eligibility.fields import FIELDS
from diversion.eligibility.forms import DraftForm, PublishForm, SimulationForm
from diversion.eligibility.models import PolicyVersion, policy_named
from diversion.eligibility.naming import Names, ReportNames
from diversion.inputs import InputRefused, id_or_none, load_toml
from diversion.tenancy.models import Tenant
from diversion.tenancy.web import force_blueprint
from diversion.unit import refuse
from diversion.words import current_language, day

bp = force_blueprint("policy", __name__, "/policy")


def _today() -> date:
    return datetime.now(UTC).date()


def document_toml(document: dict[str, Any]) -> str:
    """A stored document as the TOML an admin edits (dates as TOML dates)."""
    plain = PolicyDocument.model_validate(document).model_dump(mode="python", by_alias=True, exclude_defaults=True)
    return tomli_w.dumps(plain)


def _line_of(text: str, problem: PolicyProblem) -> str | None:
    """'line L, column C' of a problem in the TOML text, when it can be found."""
    lines = text.splitlines()
    start = 0
    for wanted in filter(None, (problem.pathway, problem.criterion)):
        pattern = re.compile(rf"""^\s*id\s*=\s*["']{re.escape(wanted)}["']""")
        start = next((i for i in range(start, len(lines)) if pattern.match(lines[i])), -1)
        if start < 0:
            return None
    key = "excluded_if" if problem.pathway is None else "expression"
    for number in range(start, len(lines)):
        match = re.match(rf"""^(\s*{key}\s*=\s*["'])""", lines[number])
        if match:
            column = len(match.group(1)) + (problem.position or 1)
            return str(_("line %(line)s, column %(column)s", line=number + 1, column=column))
    return None


def _render_version(version: PolicyVersion | None, **context: Any) -> str:
    policy = services.compiled(version) if version is not None else None
    return render_template("eligibility/policy.html", version=version, policy=policy,
                           document=policy.document if policy else None,
                           names=Names.of(policy) if policy else None, **context)


@bp.route("/")
@requires_force_action(Action.READ_POLICY)
def in_force() -> str:
    version = services.policy_in_force(_today())
    return _render_version(version, draft=services.current_draft(), title=_("Policy in force"))


@bp.route("/versions/<int:number>")
@requires_force_action(Action.READ_POLICY)
def show_version(number: int) -> str:
    version = services.version(number)
    if version is None:
        abort(404)
    return _render_version(version, draft=None, title=_("Version %(number)s", number=number))


@bp.route("/fields")
@requires_force_action(Action.READ_POLICY)
def fields() -> str:
    return render_template("eligibility/fields.html", fields=FIELDS.values())


@bp.route("/draft", methods=["GET", "POST"])
@requires_force_action(Action.EDIT_POLICY)
def draft() -> str | Response | tuple[str, int]:
    existing = services.current_draft()
    form = DraftForm()
    problems: list[tuple[PolicyProblem, str | None]] = []
    if request.method == "GET":
        source = existing or services.policy_in_force(_today())
        form.document.data = document_toml(source.document) if source else ""
        form.note.data = existing.note if existing else ""
    elif form.validate_on_submit():
        text = form.document.data or ""
        try:
            raw = load_toml(text, what="draft")
        except InputRefused as error:
            form.document.errors = [str(error)]
        else:
            try:
                saved = services.save_draft(g.tenant, raw, actor=current_user, note=form.note.data or "")
            except PolicyInvalid as error:
                refuse()
                problems = [(p, _line_of(text, p)) for p in error.problems]
                form.document.errors = [ngettext("%(count)s problem to fix: nothing was saved",
                                                  "%(count)s problems to fix: nothing was saved",
                                                  len(problems), count=f"{len(problems):,}")]
            else:
                flash(_("Draft version %(number)s saved. Run its tests, then publish it.", number=saved.number),
                      "success")
                return redirect(url_for(".draft"))
    html = _draft_page(existing, form=form, problems=problems)
    return (html, 400) if request.method == "POST" else html


def _draft_page(draft: PolicyVersion | None, *, form: DraftForm | None = None, publish: PublishForm | None = None,
                problems: list[tuple[PolicyProblem, str | None]] | None = None,
                results: list[TestOutcome] | None = None) -> str:
    """The draft editor, showing the stored draft unless a submitted form is given, and
    the results of its test cases when they were run."""
    if form is None and draft is not None:
        form = DraftForm(formdata=None, document=document_toml(draft.document), note=draft.note)
    welsh_missing = services.welsh_gaps(g.tenant, services.compiled(draft).document) if draft else ""
    return render_template("eligibility/draft.html", form=form, draft=draft, problems=problems or [],
                           welsh_missing=welsh_missing,
                           publish=publish or PublishForm(formdata=None), confirm=ConfirmForm(), results=results,
                           names=Names.of(services.compiled(draft)) if results is not None and draft else None)


def _draft(*, confirmed: bool = False) -> PolicyVersion:
    """The force's draft, which a button acts on: 404 without one; with ``confirmed``,
    400 for a POST without the confirm form's token."""
    existing = services.current_draft()
    if existing is None:
        abort(404)
    if confirmed and not ConfirmForm().validate_on_submit():
        abort(400)
    return existing


@bp.route("/draft/test", methods=["POST"])
@requires_force_action(Action.EDIT_POLICY)
def test_draft() -> str:
    existing = _draft(confirmed=True)
    return _draft_page(existing, results=services.test_version(existing, on=_today()))


@bp.route("/draft/publish", methods=["POST"])
@requires_force_action(Action.PUBLISH_POLICY)
def publish() -> Response | tuple[str, int]:
    existing = _draft()
    form = PublishForm()
    if form.validate_on_submit() and form.effective_from.data is not None:
        try:
            version = services.publish(g.tenant, existing, effective_from=form.effective_from.data,
                                       actor=current_user, today=_today())
        except services.PolicyError as error:
            refuse()
            if error.field != "effective_from":
                flash(_("Not published: %(reason)s", reason=error.message), "error")
                return redirect(url_for(".draft"))
            form.effective_from.errors = [error.message]
        else:
            flash(_("Version %(number)s is published, in force from %(date)s.", number=version.number,
                    date=day(version.effective_from)), "success")
            return redirect(url_for(".versions"))
    return _draft_page(existing, publish=form), 400


@bp.route("/draft/discard", methods=["GET", "POST"])
@requires_force_action(Action.EDIT_POLICY)
def discard() -> Response | str:
    """Asks first (GET), then discards the draft (POST); 404 without a draft."""
    if request.method == "GET":
        return render_template("eligibility/discard.html", draft=_draft(), confirm=ConfirmForm(),
                               in_force=services.policy_in_force(_today()))
    services.discard_draft(g.tenant, _draft(confirmed=True), actor=current_user)
    flash(_("The draft was discarded."), "success")
    return redirect(url_for(".in_force"))


@bp.route("/versions")
@requires_force_action(Action.READ_POLICY)
def versions() -> str:
    return render_template("eligibility/versions.html", versions=services.versions())


@bp.route("/versions/diff")
@requires_force_action(Action.READ_POLICY)
def diff() -> str | tuple[str, int]:
    numbers = [id_or_none(request.args.get("from")), id_or_none(request.args.get("to"))]
    found = [services.version(n) if n else None for n in numbers]
    old, new = found
    if old is None or new is None:
        return render_template("eligibility/versions.html", versions=services.versions(),
                               error=_("Choose two versions to compare.")), 400
    return render_template("eligibility/diff.html", old=old, new=new, changes=services.diff(old, new))


def _simulation_form(formdata: Any, draft: PolicyVersion | None) -> tuple[SimulationForm, list[Tenant]]:
    """The simulation form, its choices made: this force's draft, and each other force's published policy
    (a force being set up has none yet: not offered)."""
    form = SimulationForm(formdata)
    others = services.forces_with_policy_in_force(_today(), but=g.tenant.id)
    choices = [SelectChoice(f"force:{t.slug}",
                            _("%(force)s: %(scheme)s (published)", force=t.name_in(current_language()),
                              scheme=t.scheme_name))
               for t in others]
    if draft is not None:
        choices.insert(0, SelectChoice("draft", _("This force's draft (version %(number)s)", number=draft.number)))
    form.source.choices = choices
    return form, others


def _policy_asked(form: SimulationForm, draft: PolicyVersion | None,
                  others: list[Tenant]) -> tuple[CompiledPolicy, str | None, int] | None:
    """The policy the valid ``form`` asks to try, the force whose it is (None: this force's
    draft) and its version; None, with the form's error, when it names a force with no
    published policy."""
    if form.source.data == "draft" and draft is not None:
        return services.compiled(draft), None, draft.number
    slug = (form.source.data or "").removeprefix("force:")
    other = next((t for t in others if t.slug == slug), None)
    version = services.published_policy_of(other, _today()) if other else None
    if other is None or version is None:
        form.source.errors = [_("That force has no published policy to try")]
        return None
    return services.compiled(version), other.name, version.number


def _simulate_page(form: SimulationForm, **context: Any) -> str:
    return render_template("eligibility/simulate.html", form=form, runs=runs.recent(),
                           **{"report": None, "background": None, "policy_label": None, "names": None, **context})


def _report_names(policy: CompiledPolicy) -> ReportNames:
    """How a simulation report of ``policy`` names pathways: those decided then by the force's
    own published policies, those decided now (and the criteria that block, with their reasons) by ``policy``."""
    return ReportNames.of(policy, then=services.past_names())


@bp.route("/simulate")
@requires_force_action(Action.SIMULATE_POLICY)
def simulate() -> str | tuple[str, int]:
    """The simulation form and, once a policy is chosen, its report: made while the page
    waits, or, over ``SIMULATION_JOB_THRESHOLD`` decisions, offered as a run in the background."""
    draft = services.current_draft()
    form, others = _simulation_form(request.args, draft)
    if not request.args.keys() & {"source", "submit"}:  # the form not sent yet (sent, a policy is required)
        return _simulate_page(form)
    chosen = _policy_asked(form, draft, others) if form.validate() else None
    if chosen is None:
        return _simulate_page(form), 400
    policy, force, number = chosen
    policy_label = policy_named(force, number)
    decisions = services.count_past_decisions(form.since.data)
    if runs.in_background(decisions):
        return _simulate_page(form, background=decisions, policy_label=policy_label)
    return _simulate_page(form, report=services.simulate(policy, form.since.data), policy_label=policy_label,
                          names=_report_names(policy))


@bp.route("/simulate/runs", methods=["POST"])
@requires_force_action(Action.SIMULATE_POLICY)
def start_simulation() -> Response | tuple[str, int]:
    """Start a simulation in the background (the form's choices, sent again), then show its page."""
    draft = services.current_draft()
    form, others = _simulation_form(request.form, draft)
    chosen = _policy_asked(form, draft, others) if form.validate() else None
    if chosen is None:
        refuse()
        return _simulate_page(form), 400
    policy, force, number = chosen
    run = runs.start(g.tenant, policy, force=force, number=number, since=form.since.data, actor=current_user,
                     decisions=services.count_past_decisions(form.since.data))
    return redirect(url_for(".simulation_run", run_id=run.id))


@bp.route("/simulate/runs/<uuid:run_id>")
@requires_force_action(Action.SIMULATE_POLICY)
def simulation_run(run_id: uuid.UUID) -> str:
    """A simulation run in the background: how far it has got, then its report."""
    run = runs.find(run_id)
    if run is None:
        abort(404)
    report = runs.report_of(run)
    names = _report_names(compile_cached(run.policy_document)) if report is not None else None
    return render_template("eligibility/simulation_run.html", run=run, report=report, names=names)
