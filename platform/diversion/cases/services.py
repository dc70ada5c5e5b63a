"""Case services: intake, decisions and overrides, referrals and their lifecycle.

Services take explicit arguments, validate, ``flush()`` and never commit.
Every refusal is a ``CaseError`` naming the input at fault.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from diversion.accounts.models import User
from diversion.audit.services import record
from diversion.cases.identity import Contact, Identity, person_keys, seal
from diversion.cases.models import FINAL_STATES, TRANSITIONS, Encounter, Person, Referral, State, Transition
from diversion.catalogue import services as catalogue
from diversion.catalogue.models import Offering
from diversion.db import utcnow
from diversion.eligibility import services as eligibility
from diversion.eligibility.fields import FIELDS, FactsInvalid
from diversion.eligibility.models import Decision, Outcome
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.inputs import case_date_problem, date_of_birth_problem
from diversion.monitoring import ETHNICITIES
from diversion.providers.feed import announce
from diversion.tenancy.models import Tenant

# Facts the platform works out itself; an officer never types them.
DERIVED_FACTS = ("age", "previous_diversions", "previous_non_engagement", "offence_age_days")
# A referral that got this far counts as an earlier diversion.
DIVERTED_STATES = frozenset({State.ACCEPTED, State.BOOKED, State.ATTENDED, State.COMPLETED, State.NOT_COMPLETED})
REOFFENDING_DAYS = 365


class CaseError(FieldError):
    """A refused case change."""


@dataclass(frozen=True)
class Intake:
    """What an officer records about one encounter."""

    identity: Identity
    contact: Contact
    ethnicity: str
    offence_on: date
    facts: dict[str, Any]


def _age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def find_person(tenant: Tenant, identity: Identity) -> Person | None:
    """The force's record of this person, by name key or else by PNC key."""
    name_key, pnc_key = person_keys(tenant.slug, identity)
    person = db.session.scalar(select(Person).where(Person.name_key == name_key))
    if person is None and pnc_key is not None:
        person = db.session.scalar(select(Person).where(Person.pnc_key == pnc_key))
    return person


def _person(tenant: Tenant, identity: Identity, contact: Contact, ethnicity: str) -> Person:
    person = find_person(tenant, identity)
    name_key, pnc_key = person_keys(tenant.slug, identity)
    if person is None:
        person = Person(tenant_id=tenant.id, name_key=name_key, pnc_key=pnc_key, identity_sealed=seal(identity),
                        contact_sealed=seal(contact), ethnicity=ethnicity)
        db.session.add(person)
    else:
        # The latest contact details and self-defined ethnicity are the ones to keep.
        person.contact_sealed = seal(contact)
        person.ethnicity = ethnicity
        person.pnc_key = person.pnc_key or pnc_key
    db.session.flush()
    return person


def history_facts(person: Person | None, *, before: date) -> dict[str, Any]:
    """Earlier diversions of this person in this force, and whether one ended in non-engagement."""
    if person is None:
        return {"previous_diversions": 0, "previous_non_engagement": False}
    states = db.session.scalars(
        select(Referral.state).join(Encounter, Encounter.id == Referral.encounter_id)
        .where(Referral.person_id == person.id, Encounter.offence_on < before)
    ).all()
    return {
        "previous_diversions": sum(state in DIVERTED_STATES for state in states),
        "previous_non_engagement": any(state in (State.NOT_COMPLETED, State.DECLINED) for state in states),
    }


def derive_facts(identity: Identity, person: Person | None, offence_on: date, today: date) -> dict[str, Any]:
    """The facts the platform knows: age on the offence date, history, offence age."""
    return {
        "age": _age_on(identity.date_of_birth, offence_on),
        "offence_age_days": (today - offence_on).days,
        **history_facts(person, before=offence_on + timedelta(days=1)),
    }


def _check_intake(intake: Intake, today: date) -> None:
    if not intake.identity.surname.strip():
        raise CaseError("surname", "Enter the person's surname.")
    if not intake.identity.given_name.strip():
        raise CaseError("given_name", "Enter the person's given name.")
    if problem := case_date_problem(intake.offence_on, today):
        raise CaseError("offence_on", f"The offence date {problem}.")
    if problem := date_of_birth_problem(intake.identity.date_of_birth, today):
        raise CaseError("date_of_birth", f"The date of birth {problem}.")
    if intake.identity.date_of_birth >= intake.offence_on:
        raise CaseError("date_of_birth", "The date of birth must be before the offence date.")
    if _age_on(intake.identity.date_of_birth, intake.offence_on) < FIELDS["age"].minimum:  # type: ignore[operator]
        raise CaseError("date_of_birth", "Under 10 on the offence date: below the age of criminal responsibility.")
    if intake.ethnicity not in ETHNICITIES:
        raise CaseError("ethnicity", "Choose one of the 16+1 ethnicity categories, or 'Not stated'.")
    given_derived = sorted(set(intake.facts) & set(DERIVED_FACTS))
    if given_derived:
        raise CaseError(given_derived[0], "This fact is worked out by the platform; leave it out.")


def record_encounter(tenant: Tenant, intake: Intake, *, actor: User | None, today: date,
                     source: str = "intake") -> tuple[Encounter, Decision]:
    """Record an encounter and decide it at once with the policy in force today.

    Refuses (``CaseError``) missing names, an offence date in the future or
    before 2000, a date of birth before 1900, after the offence or under 10,
    an unknown ethnicity, derived facts given by hand, facts outside the
    catalogue, and a force with no policy in force.
    """
    _check_intake(intake, today)
    person = find_person(tenant, intake.identity)
    facts = {**intake.facts, **derive_facts(intake.identity, person, intake.offence_on, today)}
    try:
        result, version = eligibility.decide_case(facts, today)
    except FactsInvalid as error:
        name, problem = next(iter(error.problems.items()))
        raise CaseError(name, f"{name.replace('_', ' ').capitalize()} {problem}.") from error
    except eligibility.NoPolicyInForce as error:
        raise CaseError("policy", str(error)) from error
    person = _person(tenant, intake.identity, intake.contact, intake.ethnicity)
    encounter = Encounter(id=uuid.uuid4(), tenant_id=tenant.id, person_id=person.id, offence_on=intake.offence_on,
                          recorded_by_id=actor.id if actor else None, facts=intake.facts, source=source)
    db.session.add(encounter)
    db.session.flush()
    decision = eligibility.record_decision(tenant, result, version, ethnicity=intake.ethnicity, actor=actor,
                                           source=source, encounter_id=encounter.id)
    record("encounter.recorded", actor=actor, tenant_id=tenant.id, object_type="encounter", object_id=encounter.id,
           details={"decision": str(decision.id), "outcome": decision.outcome})
    return encounter, decision


def override(tenant: Tenant, decision: Decision, *, outcome: str, pathway: str | None, reason: str,
             actor: User) -> Decision:
    """A supervisor's decision in place of the policy's, with a mandatory reason.

    Refuses a blank reason, an outcome other than eligible or not eligible,
    and a pathway that the decision's policy does not have.
    """
    if not reason.strip():
        raise CaseError("reason", "Give the reason for the override: it is kept with the decision.")
    if outcome not in (Outcome.ELIGIBLE, Outcome.NOT_ELIGIBLE):
        raise CaseError("outcome", "Choose eligible or not eligible.")
    if outcome == Outcome.ELIGIBLE:
        policy = eligibility.compiled(decision.policy_version)
        if pathway is None or policy.pathway(pathway) is None:
            raise CaseError("pathway", "Choose the pathway the person is eligible for.")
    else:
        pathway = None
    decision.override_outcome = outcome
    decision.override_pathway = pathway
    decision.override_reason = reason.strip()
    decision.overridden_by_id = actor.id
    decision.overridden_at = utcnow()
    db.session.flush()
    record("decision.overridden", actor=actor, tenant_id=tenant.id, object_type="decision", object_id=decision.id,
           details={"from": decision.outcome, "to": outcome, "pathway": pathway, "reason": reason.strip()})
    return decision


def review_queue() -> Sequence[Decision]:
    """Decisions of the force in scope that need review and have none yet, oldest first."""
    return db.session.scalars(
        select(Decision).where(Decision.outcome == Outcome.NEEDS_REVIEW, Decision.override_outcome.is_(None),
                               Decision.encounter_id.is_not(None))
        .order_by(Decision.decided_at)
    ).all()


def offerings_for(pathway: str) -> Sequence[Offering]:
    """The force's offerings that take new referrals for ``pathway``."""
    return catalogue.live_offerings_for(pathway)


def _step(tenant: Tenant, referral: Referral, came_from: State | None, to: State, *, actor: User | None,
          reason: str) -> Transition:
    step = Transition(id=uuid.uuid4(), tenant_id=tenant.id, referral_id=referral.id, from_state=came_from,
                      to_state=to, actor_id=actor.id if actor else None, reason=reason.strip()[:1000])
    db.session.add(step)
    referral.state = to
    return step


def refer(tenant: Tenant, decision: Decision, offering: Offering, *, actor: User | None, today: date,
          reason: str = "") -> Referral:
    """Offer the person a place on an offered course of the decision's pathway.

    Refuses a decision that is not (or not overridden to) eligible, a course
    the force does not offer for that pathway, an offering that is withdrawn
    or whose course is retired (its referrals already made go on), and a
    second open referral for the same encounter. The new referral goes into
    its provider's feed (and webhook outbox) in the same transaction.
    """
    if decision.final_outcome != Outcome.ELIGIBLE or decision.final_pathway is None or decision.encounter_id is None:
        raise CaseError("decision", "Only an eligible decision can lead to a referral.")
    if offering.pathway != decision.final_pathway:
        raise CaseError("offering", "Choose a course this force offers for the decision's pathway.")
    if not offering.takes_referrals:
        raise CaseError("offering", "This course is no longer offered (withdrawn or retired): choose another.")
    open_already = db.session.scalar(
        select(func.count()).select_from(Referral)
        .where(Referral.encounter_id == decision.encounter_id, Referral.state.not_in(FINAL_STATES)))
    if open_already:
        raise CaseError("decision", "This encounter already has an open referral.")
    pathway = eligibility.compiled(decision.policy_version).pathway(decision.final_pathway)
    encounter = db.session.get(Encounter, decision.encounter_id)
    if pathway is None or encounter is None:
        raise CaseError("decision", "The decision's pathway or encounter is no longer there.")
    referral = Referral(id=uuid.uuid4(), tenant_id=tenant.id, encounter_id=encounter.id, person_id=encounter.person_id,
                        offering_id=offering.id, provider_id=offering.course.provider_id, pathway=pathway.id,
                        state=State.OFFERED,
                        deadline=today + timedelta(days=pathway.deadline_days), sessions_required=pathway.sessions)
    db.session.add(referral)
    db.session.flush()
    step = _step(tenant, referral, None, State.OFFERED, actor=actor, reason=reason or "Offered after the decision")
    db.session.flush()
    announce(tenant, referral, step)
    record("referral.offered", actor=actor, tenant_id=tenant.id, object_type="referral", object_id=referral.id,
           details={"pathway": pathway.id, "course": offering.course_id})
    return referral


def outcome_of(tenant: Tenant, to: State) -> tuple[str | None, str | None]:
    """The case outcome (the force's code and its meaning) when a referral ends in ``to``."""
    outcomes = tenant.settings.get("outcomes", {})
    if to is State.COMPLETED:
        done = outcomes.get("completed", {})
        return done.get("code"), done.get("label")
    if to in (State.NOT_COMPLETED, State.DECLINED):
        failed = outcomes.get("not_completed", {})
        return failed.get("code"), failed.get("label")
    return None, "Withdrawn: no outcome recorded"


def transition(tenant: Tenant, referral: Referral, to: State, *, actor: User | None, reason: str = "") -> Transition:
    """Move a referral on, recording who, when and why.

    Refuses a move the lifecycle does not allow (with the moves it does),
    completion before every session is attended, attendance beyond the
    sessions required, and ending a referral without a reason. The change
    goes into the provider's feed (and webhook outbox) in the same transaction.
    """
    allowed = TRANSITIONS.get(referral.state, frozenset())
    if to not in allowed:
        options = ", ".join(sorted(s.label.lower() for s in allowed)) or "nothing: it has ended"
        raise CaseError("state", f"A referral that is {referral.state.label.lower()} cannot become "
                                 f"{to.label.lower()}; it can become {options}.")
    if to is State.ATTENDED and referral.sessions_attended >= referral.sessions_required:
        raise CaseError("state", f"All {referral.sessions_required} sessions are already attended: record completion.")
    if to is State.COMPLETED and referral.sessions_attended < referral.sessions_required:
        raise CaseError("state", f"Only {referral.sessions_attended} of {referral.sessions_required} sessions "
                                 "are attended.")
    if to in (State.NOT_COMPLETED, State.WITHDRAWN) and not reason.strip():
        raise CaseError("reason", "Give the reason (did not attend, deadline passed, condition breached...).")
    step = _step(tenant, referral, referral.state, to, actor=actor, reason=reason)
    if to is State.ATTENDED:
        referral.sessions_attended += 1
    if to in FINAL_STATES:
        referral.outcome_code, referral.outcome_label = outcome_of(tenant, to)
    db.session.flush()
    announce(tenant, referral, step)
    record(f"referral.{to.value}", actor=actor, tenant_id=tenant.id, object_type="referral", object_id=referral.id,
           details={"reason": reason.strip()} if reason.strip() else {})
    return step


def expire_overdue(tenant: Tenant, *, today: date, actor: User | None = None) -> int:
    """Move every open referral past its deadline to not completed; returns how many."""
    overdue = db.session.scalars(
        select(Referral).where(Referral.state.not_in(FINAL_STATES), Referral.deadline < today)).all()
    for referral in overdue:
        transition(tenant, referral, State.NOT_COMPLETED, actor=actor,
                   reason=f"Deadline passed on {referral.deadline:%d %B %Y}")
    return len(overdue)


def reoffended(decisions: Sequence[Decision], *, days: int = REOFFENDING_DAYS) -> dict[uuid.UUID, bool]:
    """For each decision with an encounter: did the same person have another
    encounter in this force within ``days`` after the decision date?"""
    with_encounters = [d for d in decisions if d.encounter_id is not None]
    if not with_encounters:
        return {}
    encounter_ids = [d.encounter_id for d in with_encounters]
    people: dict[uuid.UUID, uuid.UUID] = {
        row.id: row.person_id
        for row in db.session.execute(select(Encounter.id, Encounter.person_id).where(Encounter.id.in_(encounter_ids)))
    }
    later: dict[uuid.UUID, list[date]] = {}
    for person_id, offence_on in db.session.execute(
            select(Encounter.person_id, Encounter.offence_on).where(Encounter.person_id.in_(set(people.values())))):
        later.setdefault(person_id, []).append(offence_on)
    result: dict[uuid.UUID, bool] = {}
    for decision in with_encounters:
        window_end = decision.decided_on + timedelta(days=days)
        dates = later.get(people[decision.encounter_id], []) if decision.encounter_id else []
        result[decision.id] = any(decision.decided_on < day <= window_end for day in dates)
    return result


@dataclass(frozen=True)
class Dashboard:
    open_by_state: dict[State, int]
    overdue: Sequence[Referral]
    completed_this_month: int
    awaiting_review: int


def dashboard(today: date) -> Dashboard:
    counts: dict[State, int] = {
        row[0]: row[1] for row in db.session.execute(
            select(Referral.state, func.count()).where(Referral.state.not_in(FINAL_STATES)).group_by(Referral.state))
    }
    overdue = db.session.scalars(
        select(Referral).where(Referral.state.not_in(FINAL_STATES), Referral.deadline < today)
        .order_by(Referral.deadline)).all()
    month_start = today.replace(day=1)
    completed = db.session.scalar(
        select(func.count()).select_from(Transition)
        .where(Transition.to_state == State.COMPLETED, func.date(Transition.occurred_at) >= month_start)) or 0
    return Dashboard({s: counts.get(s, 0) for s in State if s.is_open}, overdue, int(completed),
                     len(review_queue()))
