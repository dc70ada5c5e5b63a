"""Case work in the browser: intake, decisions and overrides, referrals, the case page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import partial

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import Field
from wtforms.fields.choices import SelectChoice

from diversion.accounts.access import Action, requires_force_action
from diversion.accounts.models import User
from diversion.cases import rules, services
from diversion.cases import search as finding
from diversion.cases.forms import (
    ASKED_FACTS,
    AttendanceForm,
    BookForm,
    FactsForm,
    IntakeBase,
    IntakeForm,
    OverrideForm,
    ReferForm,
    TransitionForm,
    attendance_message,
    facts_form,
)
from diversion.cases.identity import Contact, Identity, open_contact, open_identity
from diversion.cases.models import (
    IMPORTED,
    TRANSITIONS,
    BookedSession,
    Encounter,
    Person,
    Referral,
    State,
    made_by,
    recorded_by,
)
from diversion.cases.references import looks_like_reference, normalise_reference
from diversion.cases.rules import Intake
from diversion.catalogue.models import Offering
from diversion.db import LONDON, utcnow
from diversion.eligibility import services as eligibility
from diversion.eligibility.explain import explain_decision
from diversion.eligibility.fields import FIELDS
from diversion.eligibility.models import Decision, Outcome
from diversion.extensions import db
from diversion.listing import page_of, total_text
from diversion.monitoring import ETHNICITIES
from diversion.tenancy.web import force_blueprint
from diversion.unit import refuse
from diversion.web import change_on_form
from diversion.words import WELSH, counted, current_language, day

bp = force_blueprint("cases", __name__)
# How a fact and an offence read on the review pages.
FACT_LABELS = {name: field.title for name, field in FIELDS.items()}  # translated when a page reads them


def _today() -> date:
    return datetime.now(UTC).date()


def _intake_of(form: IntakeBase) -> Intake | None:
    """What the form records, once both its dates are real dates."""
    if form.date_of_birth.data is None or form.offence_on.data is None:
        return None
    return Intake(
        identity=Identity(form.surname.data or "", form.given_name.data or "", form.date_of_birth.data,
                          form.pnc_id.data or None),
        contact=Contact(form.phone.data or "", form.email.data or "", form.address.data or ""),
        ethnicity=form.ethnicity.data or "NS", offence_on=form.offence_on.data, facts=form.facts(),
        language=form.language.data if "language" in form else None)


def _rulebook_on_form(form: IntakeBase) -> bool:
    """Put every rule the intake breaks on its field (one the form has not
    already faulted), so that the error summary shows them all at once; the
    service refuses them too. Until both dates are real dates, the rules of
    the texts and of each date on its own. True when it breaks none."""
    today = _today()
    entry = _intake_of(form)
    if entry is not None:
        broken = rules.intake_broken(entry, decided_on=today, today=today)
    else:
        broken = rules.texts_broken(form.surname.data or "", form.given_name.data or "", form.pnc_id.data or "",
                                    Contact(form.phone.data or "", form.email.data or "", form.address.data or ""))
        for dated in (form.date_of_birth, form.offence_on):
            if dated.data is not None and (wrong := rules.date_broken(dated.name, dated.data, today)) is not None:
                broken.append(wrong)
    for rule in broken:
        field = getattr(form, rule.field, None)
        if not isinstance(field, Field):
            form.form_errors.append(rule.sentence)
        elif not field.errors:
            field.errors = [rule.sentence]
    return not broken


@bp.route("/encounters/new", methods=["GET", "POST"])
@requires_force_action(Action.RECORD_ENCOUNTER)
def intake() -> str | Response | tuple[str, int]:
    form = IntakeForm()
    if WELSH not in g.tenant.languages:
        del form.language  # a force that works in English alone does not ask
    valid = form.validate_on_submit()
    if form.is_submitted() and _rulebook_on_form(form) and valid and (entry := _intake_of(form)) is not None:
        recorded = change_on_form(form, lambda: services.record_encounter(g.tenant, entry, actor=current_user,
                                                                          today=_today()))
        if recorded is not None:
            decision = recorded[1]
            return redirect(url_for(".decision", decision_id=decision.id))
    html = render_template("cases/intake.html", form=form, facts=ASKED_FACTS)
    return (html, 400) if request.method == "POST" else html


def _refer_form(decision: Decision, refer: ReferForm | None = None) -> tuple[ReferForm, list[Offering]]:
    """The form offering a place on the courses of the decision's pathway, and those offerings."""
    person = db.session.scalar(select(Person).join(Encounter, Encounter.person_id == Person.id)
                               .where(Encounter.id == decision.encounter_id)) if decision.encounter_id else None
    offerings = list(services.offerings_for(decision.final_pathway, language=person.language if person else None)) \
        if decision.final_pathway else []
    refer = refer or ReferForm(formdata=None)
    language = current_language()
    refer.offering.choices = [SelectChoice(str(o.id), f"{o.course.title_in(language)} ({o.course.provider.name})")
                              for o in offerings]
    return refer, offerings


def _decision_page(decision: Decision, *, override: OverrideForm | None = None, refer: ReferForm | None = None) -> str:
    policy = eligibility.compiled(decision.policy_version)
    override = override or OverrideForm(formdata=None)
    override.pathway.choices = [SelectChoice("", _("Choose a pathway"))] + [
        SelectChoice(p.id, p.name_in(current_language())) for p in policy.pathways]
    refer, offerings = _refer_form(decision, refer)
    encounter = db.session.get(Encounter, decision.encounter_id) if decision.encounter_id else None
    referrals = db.session.scalars(select(Referral).where(Referral.encounter_id == decision.encounter_id)).all() \
        if decision.encounter_id else []
    case_reference = db.session.scalar(select(Encounter.reference).where(Encounter.id == decision.encounter_id)) \
        if decision.encounter_id else None
    # A decision made again: the one it replaced, and the facts given then (the audit's history).
    earlier = db.session.scalar(select(Decision).where(Decision.superseded_by_id == decision.id))
    given = sorted(set(decision.facts) - set(earlier.facts)) if earlier is not None else []
    return render_template("cases/decision.html", decision=decision, policy=policy, override=override,
                           refer=refer, offerings=offerings, referrals=referrals, encounter=encounter,
                           case_reference=case_reference,
                           explanation=explain_decision(policy, decision, current_language()),
                           earlier=earlier, given=given, awaited=services.awaited(decision),
                           may_give_facts=services.may_decide_again(current_user, g.tenant, encounter),
                           labels=FACT_LABELS)


@bp.route("/decisions/<uuid:decision_id>")
@requires_force_action(Action.READ_CASES)
def decision(decision_id: uuid.UUID) -> str:
    found = db.get_or_404(Decision, decision_id)
    services.viewed(g.tenant, "decision.viewed", actor=current_user, object_type="decision", object_id=found.id,
                    details={"case": str(found.encounter_id)} if found.encounter_id else None)
    return _decision_page(found)


@bp.route("/decisions/<uuid:decision_id>/override", methods=["POST"])
@requires_force_action(Action.OVERRIDE_DECISION)
def override(decision_id: uuid.UUID) -> str | Response | tuple[str, int]:
    found = db.get_or_404(Decision, decision_id)
    form = OverrideForm()
    form.pathway.choices = [SelectChoice(p.id, p.id) for p in eligibility.compiled(found.policy_version).pathways]
    form.pathway.choices.insert(0, SelectChoice("", ""))
    if form.validate_on_submit():
        try:
            services.override(g.tenant, found, outcome=form.outcome.data or "", pathway=form.pathway.data or None,
                              reason=form.reason.data or "", actor=current_user)
        except services.CaseError as error:
            refuse()
            getattr(form, error.field, form.reason).errors.append(error.message)
        else:
            flash(_("The override is recorded with its reason."), "success")
            return redirect(url_for(".decision", decision_id=decision_id))
    return _decision_page(found, override=form), 400


@bp.route("/decisions/<uuid:decision_id>/referrals", methods=["POST"])
@requires_force_action(Action.REFER)
def refer(decision_id: uuid.UUID) -> str | Response | tuple[str, int]:
    """Offer a place; from the decision page or the case page (``?from=case``: its errors show there)."""
    found = db.get_or_404(Decision, decision_id)
    form = ReferForm()
    offerings = {str(o.id): o for o in services.offerings_for(found.final_pathway or "")}
    form.offering.choices = [SelectChoice(key, key) for key in offerings]
    if form.validate_on_submit():
        try:
            referral = services.refer(g.tenant, found, offerings[form.offering.data or ""], actor=current_user,
                                      today=_today())
        except services.CaseError as error:
            refuse()
            form.offering.errors.append(error.message)
        else:
            flash(_("The place is offered. Record the person's answer on the case page."), "success")
            return redirect(url_for(".case", encounter_id=referral.encounter_id))
    if request.args.get("from") == "case" and found.encounter_id is not None:
        refer_form = _refer_form(found, form)[0]
        return _case_page(db.get_or_404(Encounter, found.encounter_id), refer=refer_form), 400
    return _decision_page(found, refer=form), 400


def waited(since: date, today: date) -> str:
    """How long a decision has waited since its date, in days: "Since today", "1 day", "12 days".
    (From the decision date, not the row's time: a case recorded after the fact, or decided
    again with only some of its facts, has waited since the date it was first decided.)"""
    days = (today - since).days
    return _("Since today") if days < 1 else counted(days, "day")


@bp.route("/review")
@requires_force_action(Action.REVIEW_DECISIONS)
def review() -> str:
    page = page_of(services.review_queue(), capped=True)
    items = services.review_items(page.items)
    services.viewed(g.tenant, "review.listed", actor=current_user, details={"decisions": len(items),
                                                                            "page": page.page})
    return render_template("cases/review.html", page=page, items=items, total=total_text(page, "decision"),
                           today=_today(), waited=waited, offence=FIELDS["offence"])


def _facts_page(decision: Decision, encounter: Encounter, form: FactsForm) -> str:
    person = db.get_or_404(Person, encounter.person_id)
    return render_template("cases/add_facts.html", decision=decision, encounter=encounter, form=form,
                           identity=open_identity(person.identity_sealed), policy=decision.policy_version,
                           in_force=eligibility.policy_in_force(decision.decided_on))


@bp.route("/decisions/<uuid:decision_id>/facts", methods=["GET", "POST"])
@requires_force_action(Action.RECORD_ENCOUNTER)
def add_facts(decision_id: uuid.UUID) -> str | Response | tuple[str, int]:
    """Give the facts a decision waits for, and decide again (``services.decide_again``):
    a supervisor, or the officer who recorded the case (403 for anyone else)."""
    found = db.get_or_404(Decision, decision_id)
    encounter = db.get_or_404(Encounter, found.encounter_id) if found.encounter_id else None
    if encounter is None or not services.may_decide_again(current_user, g.tenant, encounter):
        abort(403)
    names = services.awaited(found)
    if not names:
        stands = services.standing(encounter.id) or found
        flash(_("This decision waits for no facts: it was decided, overridden or made again."), "info")
        return redirect(url_for(".decision", decision_id=stands.id))
    form = facts_form(names)()
    if form.validate_on_submit():
        try:
            again = services.decide_again(g.tenant, found, form.facts(), actor=current_user)
        except services.CaseError as error:
            refuse()
            getattr(form, error.field, getattr(form, names[0])).errors.append(error.message)
        else:
            flash(_("Decided again with the facts given: %(outcome)s.",
                    outcome=Outcome(again.final_outcome).label.lower()), "success")
            return redirect(url_for(".decision", decision_id=again.id))
    html = _facts_page(found, encounter, form)
    return (html, 400) if request.method == "POST" else html


@dataclass(frozen=True)
class Event:
    at: datetime
    title: str
    by: str
    detail: str = ""
    on_day: bool = False  # from a record of the past: its day is known, not its hour


def verdict(decision: Decision, outcome: str, pathway: str | None) -> str:
    """An outcome in words, with its pathway's name, in the reader's language: "Eligible, DIVERT (adults)"."""
    said = Outcome(outcome).label
    if not pathway:
        return said
    found = eligibility.compiled(decision.policy_version).pathway(pathway)
    return str(_("%(outcome)s, %(pathway)s", outcome=said,
                 pathway=found.name_in(current_language()) if found else pathway))


def _provider_name(referral: Referral) -> str:
    return str(referral.offering.course.provider.name)


def _timeline(encounter: Encounter, decisions: list[Decision], referrals: list[Referral]) -> list[Event]:
    """What happened in this case, newest first (MoJ Frontend timeline)."""
    actor_ids = {encounter.recorded_by_id} | {d.decided_by_id for d in decisions} \
        | {d.overridden_by_id for d in decisions} | {s.actor_id for r in referrals for s in r.transitions}
    people = {u.id: u.name for u in db.session.scalars(select(User).where(User.id.in_(actor_ids - {None})))}
    force = g.tenant.name_in(current_language())
    past = encounter.source == IMPORTED
    recorder = recorded_by(encounter, people, force=force)  # a decision made at intake is theirs too
    events = [Event(encounter.recorded_at, _("Record imported") if past else _("Encounter recorded"), recorder,
                    _("Offence on %(date)s", date=day(encounter.offence_on)))]
    for d in decisions:
        said = verdict(d, d.outcome, d.pathway)
        if d.source == IMPORTED:
            # Decided as on its day in the record, when the record was imported: told on that day,
            # before what followed it (the referral's steps of the record start at midday).
            events.append(Event(datetime.combine(d.decided_on, time.min, tzinfo=LONDON),
                                _("Decision: %(verdict)s", verdict=said), recorder,
                                _("Policy version %(number)s, in force on that day; decided when the record was "
                                  "imported", number=d.policy_version.number), on_day=True))
            continue
        made_again = d.source == "review"
        events.append(Event(d.decided_at,
                            _("Decided again on review: %(verdict)s", verdict=said) if made_again
                            else _("Decision: %(verdict)s", verdict=said),
                            people.get(d.decided_by_id or 0, recorder),
                            _("Policy version %(number)s, in force on %(date)s", number=d.policy_version.number,
                              date=day(d.decided_on)) if made_again
                            else _("Policy version %(number)s", number=d.policy_version.number)))
        if d.overridden_at and d.override_outcome:
            events.append(Event(d.overridden_at,
                                _("Overridden: %(verdict)s",
                                  verdict=verdict(d, d.override_outcome, d.override_pathway)),
                                people.get(d.overridden_by_id or 0, ""), d.override_reason or ""))
    for r in referrals:
        for step in r.transitions:
            state = step.to_state.label.lower()
            if step.to_state.value in ("completed", "not_completed", "declined") and r.outcome_label:
                title = _("Referral %(state)s – outcome: %(outcome)s", state=state, outcome=rules.outcome_named(
                    r.outcome_label, r.outcome_code, g.tenant, current_language()))
            else:
                title = _("Referral %(state)s", state=state)
            # Neither a person nor a case system: the platform, or the import of a record of the past.
            platform = recorder if past and step.occurred_at <= encounter.recorded_at else _("the platform")
            events.append(Event(step.occurred_at, title, made_by(
                step, people, force=force, provider=partial(_provider_name, r), otherwise=platform), step.account))
    # Newest first; of two at the same moment, the one told later (a decision after its encounter) first.
    return [event for _told, event in sorted(enumerate(events), key=lambda pair: (pair[1].at, pair[0]), reverse=True)]


# Moves the "What happened" form does not offer: booked, attended and missed come from booking and attendance.
SESSION_STATES = services.SESSION_STATES


def _case_page(encounter: Encounter, *, transition: TransitionForm | None = None, book: BookForm | None = None,
               attendance: AttendanceForm | None = None, refer: ReferForm | None = None) -> str:
    """The case page; a form given is a submitted one, to show again with its errors."""
    person = db.get_or_404(Person, encounter.person_id)
    history = db.session.scalars(
        select(Encounter).where(Encounter.person_id == person.id).order_by(Encounter.offence_on.desc())).all()
    decisions = db.session.scalars(
        select(Decision).where(Decision.encounter_id.in_([e.id for e in history]))
        .order_by(Decision.decided_at)).all()
    # Each encounter's standing decision: the latest not made again (the page never reads a superseded one).
    by_encounter = {d.encounter_id: d for d in decisions if d.superseded_by_id is None}
    stands = by_encounter.get(encounter.id)
    referrals = db.session.scalars(select(Referral).where(Referral.person_id == person.id)).all()
    these = [r for r in referrals if r.encounter_id == encounter.id]
    open_referral = next((r for r in these if r.state.is_open), None)
    form = transition or TransitionForm(formdata=None)
    waiting, if_missed = None, None
    if open_referral is not None:
        form.to.choices = [SelectChoice(s.value, s.label)
                           for s in sorted(TRANSITIONS[open_referral.state] - SESSION_STATES)]
        waiting = next((s for s in services.sessions_of(open_referral) if s.attendance is None), None)
        if waiting is not None:
            if_missed = services.if_missed(g.tenant, open_referral, on=_today())
    refers = _refer_form(stands, refer) if stands is not None else (ReferForm(formdata=None), [])
    return render_template(
        "cases/case.html", encounter=encounter, person=person, identity=open_identity(person.identity_sealed),
        contact=open_contact(person.contact_sealed), history=history, by_encounter=by_encounter,
        referrals_by_encounter={r.encounter_id: r for r in referrals},
        verdicts={d.id: verdict(d, d.final_outcome, d.final_pathway) for d in decisions},
        timeline=_timeline(encounter, [d for d in decisions if d.encounter_id == encounter.id], these),
        reoffended=services.reoffended(list(by_encounter.values())), stands=stands,
        refer=refers[0], offerings=refers[1],
        may_give_facts=services.may_decide_again(current_user, g.tenant, encounter),
        awaited=services.awaited(stands) if stands is not None else [], labels=FACT_LABELS,
        open_referral=open_referral, transition=form, ethnicities=ETHNICITIES, case_referrals=these,
        waiting=waiting, bookable=open_referral is not None and open_referral.state in services.BOOKABLE,
        book=book or BookForm(formdata=None), attendance=attendance or AttendanceForm(formdata=None),
        now=utcnow(), if_missed=if_missed, missed_allowed=rules.missed_sessions_allowed(g.tenant))


@bp.route("/cases/<uuid:encounter_id>")
@bp.route("/cases/<reference>")
@requires_force_action(Action.READ_CASES)
def case(encounter_id: uuid.UUID | None = None, reference: str | None = None) -> str:
    """The case page, by the encounter's reference (``WM-2026-000042``, as typed) or its id."""
    if reference is not None and looks_like_reference(reference):
        encounter = db.first_or_404(select(Encounter).where(Encounter.reference == normalise_reference(reference)))
    else:
        try:
            encounter = db.get_or_404(Encounter, encounter_id or uuid.UUID(reference or ""))
        except ValueError:
            abort(404)
    services.viewed(g.tenant, "case.viewed", actor=current_user, object_type="encounter", object_id=encounter.id,
                    details={"contact_details_shown": True})
    return _case_page(encounter)


@bp.route("/referrals/<uuid:referral_id>/transitions", methods=["POST"])
@requires_force_action(Action.MOVE_REFERRAL)
def move(referral_id: uuid.UUID) -> Response | tuple[str, int]:
    referral = db.get_or_404(Referral, referral_id)
    form = TransitionForm()
    form.to.choices = [SelectChoice(s.value, s.value) for s in State if s not in SESSION_STATES]
    if form.validate_on_submit():
        to = State(form.to.data)
        if change_on_form(form, lambda: services.transition(g.tenant, referral, to, actor=current_user,
                                                             reason=form.reason.data or ""), {"state": form.to}):
            flash(_("Recorded: %(state)s.", state=to.label.lower()), "success")
            return redirect(url_for(".case", encounter_id=referral.encounter_id))
    return _case_page(db.get_or_404(Encounter, referral.encounter_id), transition=form), 400


@bp.route("/referrals/<uuid:referral_id>/sessions", methods=["POST"])
@requires_force_action(Action.BOOK_SESSION)
def book(referral_id: uuid.UUID) -> Response | tuple[str, int]:
    referral = db.get_or_404(Referral, referral_id)
    form = BookForm()
    if form.validate_on_submit() and (starts_at := form.starts_at()) is not None and change_on_form(
            form, lambda: services.book_session(g.tenant, referral, starts_at=starts_at, venue=form.venue.data or "",
                                                actor=current_user), {"starts_at": form.day, "referral": form.day}):
        local = starts_at.astimezone(LONDON)
        flash(_("The session is booked for %(date)s at %(time)s.", date=day(local.date()),
                time=local.strftime("%H:%M")), "success")
        return redirect(url_for(".case", encounter_id=referral.encounter_id))
    return _case_page(db.get_or_404(Encounter, referral.encounter_id), book=form), 400


@bp.route("/sessions/<uuid:session_id>/attendance", methods=["POST"])
@requires_force_action(Action.RECORD_ATTENDANCE)
def attendance(session_id: uuid.UUID) -> Response | tuple[str, int]:
    session = db.get_or_404(BookedSession, session_id)
    referral = db.get_or_404(Referral, session.referral_id)
    form = AttendanceForm()
    if form.validate_on_submit() and form.confirm.data:
        attended = form.attendance.data == "attended"
        if change_on_form(form, lambda: services.record_attendance(g.tenant, session, attended=attended,
                                                                    actor=current_user, note=form.note.data or ""),
                          {"session": form.attendance}):
            flash(attendance_message(referral, g.tenant, attended), "success")
            return redirect(url_for(".case", encounter_id=referral.encounter_id))
    return _case_page(db.get_or_404(Encounter, referral.encounter_id), attendance=form), 400


@bp.route("/referrals")
@requires_force_action(Action.READ_CASES)
def referrals() -> str:
    """The force's referrals: every one, due latest first, or by state (``?state=``) or open past
    their deadline (``?overdue=yes``), due soonest first; paginated, each with its case's
    reference and person."""
    today = _today()
    wanted = {key: request.args.get(key, "") for key in ("state", "overdue")}
    # A state's or the overdue's list is work to do, due soonest first; every referral, latest first.
    search = finding.read_search(wanted | {"sort": "due" if any(wanted.values()) else "-due"})
    page = finding.page(g.tenant, search, today=today)
    shown = finding.rows(page.items, force=g.tenant.name_in(current_language()))
    services.viewed(g.tenant, "referrals.listed", actor=current_user,
                    details={"referrals": len(shown), "state": search.state or "any", "overdue": search.overdue})
    return render_template("cases/referrals.html", page=page, rows=shown, search=search, states=list(State),
                           today=today, total=total_text(page, "referral"))
