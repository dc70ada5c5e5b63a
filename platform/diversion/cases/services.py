"""Case services: intake, decisions and overrides, referrals and every move of their lifecycle.

The rules are the rulebook's (``cases.rules``); here they meet the
database. Every change of a referral's state goes through one function
(``_move``), whichever door it comes through (the force's pages and API,
the provider's workspace and API, expiry): it records the step, settles
the case outcome when the referral ends, and announces the move
(``cases.events``) in the same transaction. A referral reaches booked only
by a session being booked, and attended only by attendance being recorded
at a booked session, so its sessions and its state never disagree.

Services take explicit arguments, validate, ``flush()`` and never commit.
Every refusal is a ``CaseError`` naming the input at fault.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from flask_babel import gettext as _
from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from diversion.accounts.access import Action, case_system_of, may, require, user_id_of
from diversion.accounts.models import User
from diversion.audit.services import record
from diversion.cases import references, rules
from diversion.cases.events import Moved, announce
from diversion.cases.identity import (
    Identity,
    Unreadable,
    open_identity,
    person_keys,
    seal,
    seal_contact,
    search_keys,
)
from diversion.cases.models import (
    FINAL_STATES,
    INTAKE,
    OPEN_STATES,
    TRANSITIONS,
    Attendance,
    BookedSession,
    Encounter,
    Person,
    Referral,
    State,
    Transition,
    Why,
    ending_sentence,
)
from diversion.cases.references import take_references
from diversion.cases.rules import REOFFENDING_DAYS, Broken, Intake
from diversion.catalogue import services as catalogue
from diversion.catalogue.models import Offering
from diversion.db import LONDON, new_id, utcnow
from diversion.eligibility import services as eligibility
from diversion.eligibility.engine import Assessment
from diversion.eligibility.fields import FIELDS, FactsInvalid, fact_label
from diversion.eligibility.models import Decision, Outcome, PolicyVersion
from diversion.errors import AccessRefused, FieldError
from diversion.extensions import db
from diversion.inputs import EARLIEST_CASE_DATE
from diversion.listing import count_to_cap
from diversion.monitoring import ETHNICITIES
from diversion.tenancy.bulk import insert_object
from diversion.tenancy.models import Tenant
from diversion.words import LANGUAGES, WELSH, current_language, day

if TYPE_CHECKING:
    from diversion.accounts.access import Actor

# States in which a (further) session may be booked.
BOOKABLE = frozenset({State.ACCEPTED, State.BOOKED, State.ATTENDED, State.MISSED})
# States only booking a session, or recording attendance at one, reaches.
SESSION_STATES = frozenset({State.BOOKED, State.ATTENDED, State.MISSED})

class CaseError(FieldError):
    """A refused case change."""


def _refuse(broken: Broken) -> NoReturn:
    raise CaseError(broken.field, broken.sentence)


# ---------------------------------------------------------------- people and encounters

# Statements of every intake, built once (their parameters bound when run): see ``tenancy.guard``.
_PERSON_BY_NAME = select(Person).where(Person.name_key == bindparam("key"))
_PERSON_BY_PNC = select(Person).where(Person.pnc_key == bindparam("key"))
_EARLIER_STATES = (select(Referral.state).join(Encounter, Encounter.id == Referral.encounter_id)
                   .where(Referral.person_id == bindparam("person_id"), Encounter.offence_on <= bindparam("up_to")))


def _referral_of(encounter_id: Any) -> Select[tuple[State]]:
    return (select(Referral.state).where(Referral.encounter_id == encounter_id, Referral.state != State.WITHDRAWN)
            .limit(1))


_REFERRAL_OF_ENCOUNTER = _referral_of(bindparam("encounter_id"))


def referral_state_of(encounter_id: Any) -> Any:
    """A subquery: the state of the encounter's referral that is not withdrawn (it has one at most), or
    NULL; for the statement that reads a decision a referral is to be made from (``refer``'s
    ``referral_state``)."""
    return _referral_of(encounter_id).scalar_subquery()


class _Unread(enum.Enum):
    UNREAD = "unread"


UNREAD = _Unread.UNREAD  # a value the caller has not read: the service reads it


def find_person(tenant: Tenant, identity: Identity) -> Person | None:
    """The force's record of this person, by name key or else by PNC key."""
    name_key, pnc_key = person_keys(tenant.slug, identity)
    return _by_pnc_unless_found(db.session.scalar(_PERSON_BY_NAME, {"key": name_key}), pnc_key)


def _by_pnc_unless_found(person: Person | None, pnc_key: bytes | None) -> Person | None:
    if person is None and pnc_key is not None:
        person = db.session.scalar(_PERSON_BY_PNC, {"key": pnc_key})
    return person


# The person by name key beside the force's next number for a year (``references.NEXT_NUMBER``).
_PERSON_BY_NAME_AND_NUMBER = (select(references.NEXT_NUMBER.c.number, Person).select_from(references.NEXT_NUMBER)
                              .outerjoin(Person, Person.name_key == bindparam("key")))


def _person_and_reference(tenant: Tenant, identity: Identity, year: int) -> tuple[Person | None, str]:
    """The force's record of this person (``find_person``) and a new reference for ``year``: on
    PostgreSQL the person by name key and the number in one statement. The number is taken
    whatever follows: an intake refused after it (a fact outside the catalogue, no policy in
    force) leaves its number unused, as a failed one does (``references``)."""
    if not references.numbered_in_sequence():
        return find_person(tenant, identity), take_references(tenant, year)[0]
    name_key, pnc_key = person_keys(tenant.slug, identity)
    number, person = db.session.execute(_PERSON_BY_NAME_AND_NUMBER,
                                        {"key": name_key, **references.numbering(tenant, year)}).one()
    return _by_pnc_unless_found(person, pnc_key), references.format_reference(tenant.reference_prefix, year, number)


def _person(tenant: Tenant, intake: Intake, person: Person | None) -> Person:
    """The person of ``intake``: ``person`` (as ``find_person`` found them) brought up to date, or a new one."""
    name_key, pnc_key = person_keys(tenant.slug, intake.identity)
    if person is None:
        search_key, birth_key = search_keys(tenant.slug, intake.identity.surname, intake.identity.date_of_birth)
        person = Person(id=new_id(), tenant_id=tenant.id, name_key=name_key, pnc_key=pnc_key,
                        identity_sealed=seal(intake.identity), contact_sealed=seal_contact(intake.contact),
                        ethnicity=intake.ethnicity, search_key=search_key, birth_key=birth_key,
                        language=intake.language)
        insert_object(db.session, person)
    else:
        # The latest contact details and self-defined ethnicity are the ones to keep.
        person.contact_sealed = seal_contact(intake.contact)
        person.ethnicity = intake.ethnicity
        person.pnc_key = person.pnc_key or pnc_key
        person.language = intake.language or person.language
    return person


def index_people(tenant: Tenant) -> int:
    """Give the force's people without search keys their keys, from their sealed
    identity; returns how many. Refuses nothing: a person already indexed is left."""
    people = db.session.scalars(select(Person).where(Person.search_key.is_(None))).all()
    for person in people:
        identity = open_identity(person.identity_sealed)
        person.search_key, person.birth_key = search_keys(tenant.slug, identity.surname, identity.date_of_birth)
    db.session.flush()
    return len(people)


def earlier_states(person: Person | None, *, up_to: date) -> list[State]:
    """The states of the person's referrals in this force for offences up to ``up_to``."""
    if person is None:
        return []
    return list(db.session.scalars(_EARLIER_STATES, {"person_id": person.id, "up_to": up_to}))


def _open_for_cases(tenant: Tenant) -> None:
    """Refuse (``CaseError``) a force that is not open (a draft being set up, or
    suspended): it takes no new cases, through its pages or its API alike.
    (A command-line import of past records, ``cases.importer``, is the
    platform's own work and is not refused here.)"""
    if not tenant.is_active:
        raise CaseError("force", _("%(force)s is not open on the platform: it takes no cases.",
                                   force=tenant.name_in(current_language())))


def record_decision(tenant: Tenant, assessment: Assessment, version: PolicyVersion, *, ethnicity: str,
                    actor: Actor, source: str = INTAKE, encounter_id: uuid.UUID | None = None) -> Decision:
    """Store an assessment as the decision, whole. Refuses an actor who may not record
    an encounter (``accounts.access``), a force that is not open, and an ethnicity
    outside the 16+1 categories."""
    require(actor, Action.RECORD_ENCOUNTER, tenant_id=tenant.id)
    _open_for_cases(tenant)
    if ethnicity not in ETHNICITIES:
        raise CaseError("ethnicity", _("Choose one of the 16+1 ethnicity categories, or 'Not stated'."))
    decision = _store_decision(tenant, assessment, version, ethnicity=ethnicity, actor=actor, source=source,
                               encounter_id=encounter_id)
    record("decision.recorded", actor=actor, tenant_id=tenant.id, object_type="decision", object_id=decision.id,
           details={"outcome": decision.outcome, "pathway": decision.pathway, "source": source})
    return decision


def _store_decision(tenant: Tenant, assessment: Assessment, version: PolicyVersion, *, ethnicity: str,
                    actor: Actor, source: str, encounter_id: uuid.UUID | None) -> Decision:
    """The decision's row, written, its version in hand."""
    values = rules.decision_values(tenant, assessment, version, ethnicity=ethnicity,
                                   actor_id=user_id_of(actor), source=source, encounter_id=encounter_id)
    decision = Decision(**values)
    set_committed_value(decision, "policy_version", version)  # the answer reads it: no second read
    insert_object(db.session, decision)
    return decision


def record_encounter(tenant: Tenant, intake: Intake, *, actor: Actor, today: date,
                     source: str = INTAKE, decided_on: date | None = None) -> tuple[Encounter, Decision]:
    """Record an encounter and decide it at once with the policy in force on
    ``decided_on`` (today, unless a record of the past says otherwise). One
    event is audited: the encounter recorded, with its decision.

    Refuses an actor who may not record an encounter (``AccessRefused``);
    (``CaseError``) a force that is not open (a draft, or suspended), what the
    rulebook refuses (``rules.intake_broken``), facts outside the field
    catalogue, a force with no policy in force, and the person's language
    where the force works in English alone (or a language the platform does
    not have).
    """
    require(actor, Action.RECORD_ENCOUNTER, tenant_id=tenant.id)
    _open_for_cases(tenant)
    decided_on = decided_on or today
    broken = rules.intake_broken(intake, decided_on=decided_on, today=today)
    if broken:
        _refuse(broken[0])
    if intake.language is not None and (intake.language not in LANGUAGES or WELSH not in tenant.languages):
        raise CaseError("language", _("%(force)s does not ask the person's language: it works in English alone.",
                                      force=tenant.name_in(current_language())) if intake.language in LANGUAGES
                        else _("The language must be English or Welsh."))
    # The reference with the person: a statement of its own would send the rows written after it on
    # their own, where they go together (``insert_object``).
    found, reference = _person_and_reference(tenant, intake.identity, decided_on.year)
    earlier = earlier_states(found, up_to=intake.offence_on)
    facts = {**intake.facts, **rules.derived_facts(intake, decided_on=decided_on, earlier=earlier)}
    try:
        assessment, version = eligibility.decide_case(facts, decided_on, force=tenant)
    except FactsInvalid as error:
        name, problem = next(iter(error.problems.items()))
        raise CaseError(name, f"{fact_label(name)} {problem}.") from error
    except eligibility.NoPolicyInForce as error:
        raise CaseError("policy", str(error)) from error
    person = _person(tenant, intake, found)
    encounter = Encounter(id=new_id(), tenant_id=tenant.id, person_id=person.id, offence_on=intake.offence_on,
                          recorded_by_id=user_id_of(actor), facts=intake.facts, source=source,
                          reference=reference, outcome=assessment.outcome, pathway=assessment.pathway)
    insert_object(db.session, encounter)  # before its decision, which points at it
    decision = _store_decision(tenant, assessment, version, ethnicity=intake.ethnicity, actor=actor,
                               source=source, encounter_id=encounter.id)
    record("encounter.recorded", actor=actor, tenant_id=tenant.id, object_type="encounter", object_id=encounter.id,
           details={"decision": str(decision.id), "outcome": decision.outcome})
    return encounter, decision


def viewed(tenant: Tenant, action: str, *, actor: Actor, object_type: str | None = None,
           object_id: object = None, details: dict[str, object] | None = None) -> None:
    """Record that ``actor`` was shown a page of the force's case work (``case.viewed``:
    a person's name and contact details; ``decision.viewed``; ``referrals.listed``),
    as the Data Protection Act 2018 s.62 logging duty expects. The record lasts
    even when the request's unit of work does not commit (``unit.lasting``).
    Refuses (``AccessRefused``) an actor who may not see the force's cases."""
    require(actor, Action.READ_CASES, tenant_id=tenant.id)
    record(action, actor=actor, tenant_id=tenant.id, object_type=object_type, object_id=object_id,
           details=details, lasting=True)


def override(tenant: Tenant, decision: Decision, *, outcome: str, pathway: str | None, reason: str,
             actor: Actor) -> Decision:
    """A supervisor's decision in place of the policy's, with a mandatory reason.

    Refuses an actor who may not override (a supervisor may), a decision made
    again since (``decide_again``: the new one stands), a blank reason,
    an outcome other than eligible or not eligible, and a pathway that the
    decision's policy does not have.
    """
    require(actor, Action.OVERRIDE_DECISION, tenant_id=tenant.id)
    if decision.superseded_by_id is not None:
        raise CaseError("decision", _("This decision was made again: override the one that stands."))
    if not reason.strip():
        raise CaseError("reason", _("Give the reason for the override: it is kept with the decision."))
    if (broken := rules.text_broken("reason", reason)) is not None:
        _refuse(broken)
    if outcome not in (Outcome.ELIGIBLE, Outcome.NOT_ELIGIBLE):
        raise CaseError("outcome", _("Choose eligible or not eligible."))
    if outcome == Outcome.ELIGIBLE:
        policy = eligibility.compiled(decision.policy_version)
        if pathway is None or policy.pathway(pathway) is None:
            raise CaseError("pathway", _("Choose the pathway the person is eligible for."))
    else:
        pathway = None
    decision.override_outcome = outcome
    decision.override_pathway = pathway
    decision.override_reason = reason.strip()
    decision.overridden_by_id = user_id_of(actor)
    decision.overridden_at = utcnow()
    _stands(decision)
    db.session.flush()
    record("decision.overridden", actor=actor, tenant_id=tenant.id, object_type="decision", object_id=decision.id,
           details={"from": decision.outcome, "to": outcome, "pathway": pathway, "reason": reason.strip()})
    return decision


def _stands(decision: Decision) -> None:
    """Copy the decision's outcome and pathway onto its encounter (the cases list reads them there)."""
    if decision.encounter_id is not None:
        db.session.execute(update(Encounter).where(Encounter.id == decision.encounter_id)
                           .values(outcome=decision.final_outcome, pathway=decision.final_pathway))


def review_queue() -> Select[tuple[Decision]]:
    """The decisions of the force in scope that wait for review, oldest first (a
    statement, for ``listing.page_of``): needing review, with an encounter,
    neither overridden nor made again. Ordered by the decision date first, which
    the ``(tenant_id, decided_on)`` index follows."""
    return (select(Decision)
            .where(Decision.outcome == Outcome.NEEDS_REVIEW, Decision.override_outcome.is_(None),
                   Decision.superseded_by_id.is_(None), Decision.encounter_id.is_not(None))
            .order_by(Decision.decided_on, Decision.decided_at, Decision.id))


def awaiting_review() -> int:
    """How many decisions of the force in scope wait for review, counted up to ``listing.COUNT_CAP`` + 1."""
    return count_to_cap(review_queue())


@dataclass(frozen=True)
class ReviewItem:
    """One decision waiting for review, as the queue shows it."""

    decision: Decision
    encounter: Encounter
    identity: Identity | None  # None when the sealed name cannot be opened
    officer: str | None  # who recorded the case; None for an import or a force system
    offence: str | None  # the offence fact, None when not known yet


def review_items(decisions: Sequence[Decision]) -> list[ReviewItem]:
    """What the queue shows of a page of decisions: three statements whatever the
    page's length (its encounters, their people, the officers who recorded them)."""
    encounter_ids = [d.encounter_id for d in decisions if d.encounter_id is not None]
    encounters = {e.id: e for e in db.session.scalars(select(Encounter).where(Encounter.id.in_(encounter_ids)))} \
        if encounter_ids else {}
    people = {p.id: p for p in db.session.scalars(
        select(Person).where(Person.id.in_({e.person_id for e in encounters.values()})))} if encounters else {}
    officer_ids = {e.recorded_by_id for e in encounters.values() if e.recorded_by_id is not None}
    officers = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(officer_ids))).tuples().all()) \
        if officer_ids else {}
    items = []
    for decision in decisions:
        encounter = encounters.get(decision.encounter_id) if decision.encounter_id else None
        if encounter is None:
            continue
        person = people.get(encounter.person_id)
        try:
            identity = open_identity(person.identity_sealed) if person is not None else None
        except Unreadable:
            identity = None
        offence = decision.facts.get("offence") or encounter.facts.get("offence")
        items.append(ReviewItem(decision, encounter, identity,
                                officers.get(encounter.recorded_by_id) if encounter.recorded_by_id else None,
                                offence if isinstance(offence, str) else None))
    return items


def standing(encounter_id: uuid.UUID) -> Decision | None:
    """The encounter's standing decision: the latest not made again (an override stays on it)."""
    return db.session.scalar(select(Decision).where(Decision.encounter_id == encounter_id,
                                                    Decision.superseded_by_id.is_(None))
                             .order_by(Decision.decided_at.desc(), Decision.id).limit(1))


def standing_of(encounter_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Decision]:
    """The standing decision of each encounter (one statement for all of them)."""
    if not encounter_ids:
        return {}
    found: dict[uuid.UUID, Decision] = {}
    for decision in db.session.scalars(
            select(Decision).where(Decision.encounter_id.in_(encounter_ids), Decision.superseded_by_id.is_(None))
            .order_by(Decision.decided_at)):
        if decision.encounter_id is not None:
            found[decision.encounter_id] = decision  # the latest wins
    return found


def awaited(decision: Decision) -> list[str]:
    """The facts a decision waits for that a person can give (the platform works out the others).
    Empty once the decision is overridden or made again: nothing waits any more."""
    if decision.final_outcome != Outcome.NEEDS_REVIEW or decision.superseded_by_id is not None:
        return []
    return [name for name in decision.missing if name in FIELDS and name not in rules.DERIVED_FACTS]


def may_decide_again(actor: Actor | None, tenant: Tenant, encounter: Encounter | None) -> bool:
    """Whether ``actor`` may give the facts a decision of ``encounter`` waits for:
    a supervisor (who reviews decisions), or the officer who recorded the case
    (their own case: they may have learnt the fact since). Not a force system or
    the platform: a decision made again is a person's act."""
    if not isinstance(actor, User):
        return False
    if may(actor, Action.REVIEW_DECISIONS, tenant_id=tenant.id):
        return True
    return (encounter is not None and encounter.recorded_by_id == actor.id
            and may(actor, Action.RECORD_ENCOUNTER, tenant_id=tenant.id))


def decide_again(tenant: Tenant, decision: Decision, facts: dict[str, Any], *, actor: Actor) -> Decision:
    """Decide a case again once facts it waited for are given, under the policy that
    was in force on the original decision's date, and record the new decision in
    its place (the old one is kept, ``superseded_by_id`` pointing to the new).

    The new decision reads the original decision's facts (the officer's and those
    the platform worked out then: age, earlier diversions and the offence's age as
    at that date) with ``facts`` added; it is dated as the original was. The
    given facts join the encounter's; the encounter's standing decision becomes
    the new one (``_stands``). One audit row, ``decision.decided_again``.

    Refuses an actor who may not (``AccessRefused``: neither a supervisor nor
    the officer who recorded the case), and (``CaseError``) a force that is not
    open, a decision that does not need review, one already overridden or
    already made again, no fact given, facts outside the field catalogue or of
    the wrong type, facts the decision was not waiting for, and a date with no
    policy in force.
    """
    encounter = db.session.get(Encounter, decision.encounter_id) if decision.encounter_id else None
    if not may_decide_again(actor, tenant, encounter):
        raise AccessRefused(Action.REVIEW_DECISIONS.value, _("You cannot give the facts of this case: only a "
                                                             "supervisor or the officer who recorded it can."))
    _open_for_cases(tenant)
    if encounter is None:
        raise CaseError("decision", _("This decision has no case to decide again."))
    if decision.superseded_by_id is not None:
        raise CaseError("decision", _("This decision was already made again: give the facts on the one that stands."))
    if decision.override_outcome is not None:
        raise CaseError("decision", _("A supervisor has already overridden this decision: it needs no facts now."))
    if decision.outcome != Outcome.NEEDS_REVIEW:
        raise CaseError("decision", _("Only a decision that needs review waits for facts."))
    given = {name: value for name, value in facts.items() if value is not None}
    if not given:
        raise CaseError(next(iter(awaited(decision)), "facts"), _("Give at least one of the facts the decision "
                                                                   "waits for."))
    for name in given:
        if name not in FIELDS:
            raise CaseError(name, _("%(fact)s is not a fact of the national field catalogue.",
                                    fact=name.replace("_", " ").capitalize()))
        if name not in decision.missing:
            raise CaseError(name, _("The decision was not waiting for %(fact)s: only the facts it waits for can be "
                                    "given here.", fact=name.replace("_", " ")))
    try:
        assessment, version = eligibility.decide_case({**decision.facts, **given}, decision.decided_on)
    except FactsInvalid as error:
        name, problem = next(iter(error.problems.items()))
        raise CaseError(name, f"{name.replace('_', ' ').capitalize()} {problem}.") from error
    except eligibility.NoPolicyInForce as error:
        raise CaseError("policy", str(error)) from error
    values = rules.decision_values(tenant, assessment, version, ethnicity=decision.ethnicity,
                                   actor_id=user_id_of(actor), source="review", encounter_id=encounter.id)
    again = Decision(**values)
    db.session.add(again)
    db.session.flush()
    decision.superseded_by_id = again.id
    encounter.facts = {**encounter.facts, **given}
    _stands(again)
    db.session.flush()
    record("decision.decided_again", actor=actor, tenant_id=tenant.id, object_type="decision", object_id=again.id,
           details={"from": str(decision.id), "was": decision.outcome, "waited_for": list(decision.missing),
                    "given": sorted(given), "outcome": again.outcome, "pathway": again.pathway,
                    "policy_version": version.number})
    return again


# ---------------------------------------------------------------- referrals

def offerings_for(pathway: str, *, language: str | None = None) -> list[Offering]:
    """The force's offerings that take new referrals for ``pathway``; for a person who prefers
    Welsh (``language``), the courses offered in Welsh first."""
    offerings = list(catalogue.live_offerings_for(pathway))
    if language == WELSH:
        offerings.sort(key=lambda offering: not offering.course.offered_in_welsh)  # stable: otherwise as offered
    return offerings


def _moved(referral: Referral, step: Transition, decision: Decision | None = None) -> Moved:
    """The move ``step`` made, with the day its case was decided when ``decision`` is the one in force."""
    decided_on = decision.decided_on if decision is not None and decision.superseded_by_id is None else None
    return Moved(referral.id, referral.provider_id, referral.pathway, step.from_state, step.to_state, step.id,
                 step.occurred_at, decided_on)


def refer(tenant: Tenant, decision: Decision, offering: Offering, *, actor: Actor, today: date,
          reason: str = "", at: datetime | None = None,
          referral_state: State | _Unread | None = UNREAD) -> Referral:
    """Offer the person a place on an offered course of the decision's pathway.

    Refuses a decision that is not (or not overridden to) eligible, a course
    the force does not offer for that pathway, an offering that is withdrawn
    or whose course is retired (its referrals already made go on), a second
    referral for the same encounter while one is open or once one has ended
    with an outcome (after a withdrawn one a place may be offered again), a
    reason the rulebook refuses, and
    an actor who may not refer. The offer is announced (``cases.events``) in
    the same transaction, as made ``at`` (now unless given: case work
    recorded after the fact, such as the demo's). The deadline runs from the
    day it is made (``at``'s day in London, else ``today``); its sessions are
    its course's (``Course.sessions``). ``referral_state``: the state of the
    encounter's referral that is not withdrawn, or None, as the caller read it
    with the decision (``referral_state_of``), in this transaction; read here
    when not given.
    """
    require(actor, Action.REFER, tenant_id=tenant.id)
    if decision.final_outcome != Outcome.ELIGIBLE or decision.final_pathway is None or decision.encounter_id is None:
        raise CaseError("decision", _("Only an eligible decision can lead to a referral."))
    if offering.pathway != decision.final_pathway:
        raise CaseError("offering", _("Choose a course this force offers for the decision's pathway."))
    if not offering.takes_referrals:
        raise CaseError("offering", _("This course is no longer offered (withdrawn or retired): choose another."))
    if (broken := rules.text_broken("reason", reason)) is not None:
        _refuse(broken)
    earlier = (db.session.scalar(_REFERRAL_OF_ENCOUNTER, {"encounter_id": decision.encounter_id})
               if referral_state is UNREAD else referral_state)
    if earlier is not None and earlier.is_open:
        raise CaseError("decision", _("This encounter already has an open referral."))
    if earlier is not None:
        raise CaseError("decision", _("This encounter’s referral has ended (%(state)s): its outcome stands, so no "
                                      "place is offered again.", state=earlier.label.lower()))
    pathway = eligibility.compiled_of(decision).pathway(decision.final_pathway)
    encounter = db.session.get(Encounter, decision.encounter_id)
    if pathway is None or encounter is None:
        raise CaseError("decision", _("The decision's pathway or encounter is no longer there."))
    referral = Referral(**rules.referral_values(
        tenant=tenant, encounter_id=encounter.id, person_id=encounter.person_id, offering_id=offering.id,
        provider_id=offering.course.provider_id, pathway=pathway.id, deadline_days=pathway.deadline_days,
        sessions=offering.course.sessions, offered_on=at.astimezone(LONDON).date() if at is not None else today))
    if at is not None:  # recorded after the fact: the row says when it was made
        referral.created_at = referral.updated_at = at
    step = referral.take(Transition(None, State.OFFERED, at or utcnow(), user_id_of(actor), case_system_of(actor),
                                    reason.strip(), None if reason.strip() else Why.OFFERED))
    insert_object(db.session, referral)
    set_committed_value(referral, "encounter", encounter)  # in hand for whoever answers
    # Audited before it is announced, so that the event goes with the referral's row.
    record("referral.offered", actor=actor, tenant_id=tenant.id, object_type="referral", object_id=referral.id,
           details={"pathway": pathway.id, "course": offering.course_id})
    announce(tenant, [_moved(referral, step, decision)])
    return referral


def _move(tenant: Tenant, referral: Referral, to: State, *, actor: Actor, reason: str,
          why: Why | None = None, details: dict[str, Any] | None = None, at: datetime | None = None) -> Transition:
    """The one way a referral changes state: checked by the rulebook, recorded (as happening
    ``at``, now unless given, with the person's ``reason`` and what the platform says of it,
    ``why`` and its ``details``), announced.

    Refuses what ``rules.move_broken`` refuses, a time in the future or before the
    referral's latest step (its steps happen in order), and a referral another request moved
    since this one read it (its row is locked here until the transaction ends, so that no step
    of either is lost).
    """
    held = db.session.execute(select(Referral.state, Referral.steps).where(Referral.id == referral.id)
                              .with_for_update()).one_or_none()
    if held is None or held.state is not referral.state or held.steps != referral.steps:
        raise CaseError("state", _("This referral changed while the change was being recorded: look at it again, "
                                   "then try again."))
    if (broken := rules.move_broken(referral.state, to, reason=reason, explained=why is not None,
                                    sessions_attended=referral.sessions_attended,
                                    sessions_required=referral.sessions_required)) is not None:
        _refuse(broken)
    if (broken := rules.text_broken("reason", reason)) is not None:
        _refuse(broken)
    if at is not None:
        if at > utcnow():
            raise CaseError("at", _("A step cannot be dated in the future."))
        if referral.steps and at < max(step.occurred_at for step in referral.steps):
            raise CaseError("at", _("A step cannot be dated before the referral's previous step."))
    step = referral.take(Transition(referral.state, to, at or utcnow(), user_id_of(actor), case_system_of(actor),
                                    reason.strip(), why, details or None))
    referral.state = to
    if to is State.ATTENDED:
        referral.sessions_attended += 1
    if to in FINAL_STATES:
        referral.outcome_code, referral.outcome_label = rules.outcome_of(tenant, to)
    db.session.flush()
    announce(tenant, [_moved(referral, step)])
    record(f"referral.{to.value}", actor=actor, tenant_id=tenant.id, object_type="referral", object_id=referral.id,
           details=({"reason": reason.strip()} if reason.strip() else {}) | ({"why": why.value} if why else {}))
    return step


def moving(to: State) -> Action:
    """The action a move to ``to`` is, in the access table."""
    return {State.BOOKED: Action.BOOK_SESSION, State.ATTENDED: Action.RECORD_ATTENDANCE,
            State.WITHDRAWN: Action.WITHDRAW_REFERRAL}.get(to, Action.MOVE_REFERRAL)


def transition(tenant: Tenant, referral: Referral, to: State, *, actor: Actor, reason: str = "",
               why: Why | None = None, details: dict[str, Any] | None = None,
               at: datetime | None = None) -> Transition:
    """Move a referral on, recording who, when and why (the ``reason`` a person gave, and
    what the platform says of the move: ``why`` and its ``details``, ``models.Why``).

    Refuses what the rulebook refuses (a move the lifecycle does not allow,
    with the moves it does; completion before every session is attended;
    ending a referral without a reason), and a move to booked or attended,
    or missed, which only booking a session (``book_session``) and recording
    attendance at one (``record_attendance``) make. Refuses an actor who may not make
    the move (``moving``): only the force withdraws a referral. ``at``: when
    the move happened, for case work recorded after the fact (now unless given).
    """
    require(actor, moving(to), tenant_id=tenant.id, provider_id=referral.provider_id)
    if to in SESSION_STATES and to in TRANSITIONS.get(referral.state, ()):
        raise CaseError("state", _("Book a session, with its date, time and venue, to make a referral booked.")
                        if to is State.BOOKED else
                        _("Record attendance at a booked session to make a referral attended.")
                        if to is State.ATTENDED else
                        _("Record a booked session as not attended to make a referral missed a session."))
    return _move(tenant, referral, to, actor=actor, reason=reason, why=why, details=details, at=at)


def sessions_of(referral: Referral) -> list[BookedSession]:
    """The referral's booked sessions, earliest first."""
    return list(db.session.scalars(select(BookedSession).where(BookedSession.referral_id == referral.id)
                                   .order_by(BookedSession.starts_at, BookedSession.booked_at)))


def book_session(tenant: Tenant, referral: Referral, *, starts_at: datetime, venue: str,
                 actor: Actor, at: datetime | None = None) -> tuple[BookedSession, Transition]:
    """Book a session of the course: when and where. The referral moves to booked
    (again, for a further session); returns the session and that step.

    Refuses a referral that is not accepted (or has ended), a blank venue or
    one the rulebook refuses, a time without a zone or before 2000, a session
    before the day of the offence (in London: the day the case's history, which
    may be recorded late, begins) or after the referral's deadline, and more
    sessions than the course has
    left to attend, and an actor who may not book. A session that already
    happened may be booked (recorded late), so that its attendance can then
    be recorded. ``at``: when it was booked (now unless given).
    """
    require(actor, Action.BOOK_SESSION, tenant_id=tenant.id, provider_id=referral.provider_id)
    if referral.state not in BOOKABLE:
        state = referral.state.label.lower()
        raise CaseError("referral", _("A referral that is %(state)s cannot have sessions booked: accept it first.",
                                      state=state) if referral.state is State.OFFERED
                        else _("A referral that is %(state)s cannot have sessions booked.", state=state))
    venue = venue.strip()
    if not venue:
        raise CaseError("venue", _("Enter where the session takes place."))
    if (broken := rules.text_broken("venue", venue)) is not None:
        _refuse(broken)
    if starts_at.tzinfo is None:
        raise CaseError("starts_at", _("Give the session's time with its time zone."))
    if starts_at.date() < EARLIEST_CASE_DATE:
        raise CaseError("starts_at", _("The session's date must be on or after %(date)s.",
                                       date=day(EARLIEST_CASE_DATE)))
    offence_on = referral.encounter.offence_on
    if starts_at.astimezone(LONDON).date() < offence_on:
        raise CaseError("starts_at", _("The session must be on or after the day of the offence, %(date)s.",
                                       date=day(offence_on)))
    if starts_at.date() > referral.deadline:
        raise CaseError("starts_at", _("The session must be on or before the referral's deadline, %(date)s.",
                                       date=day(referral.deadline)))
    waiting = [s for s in sessions_of(referral) if s.attendance is None]
    if referral.sessions_attended + len(waiting) >= referral.sessions_required:
        raise CaseError("starts_at", _("All %(num)s sessions are already booked or attended.",
                                       num=referral.sessions_required))
    session = BookedSession(id=new_id(), tenant_id=tenant.id, referral_id=referral.id, starts_at=starts_at,
                            venue=venue, booked_by_id=user_id_of(actor), booked_at=at or utcnow())
    db.session.add(session)
    db.session.flush()
    step = _move(tenant, referral, State.BOOKED, actor=actor, reason="", why=Why.BOOKED,
                 details=rules.session_details(starts_at, venue), at=at)
    record("session.booked", actor=actor, tenant_id=tenant.id, object_type="referral", object_id=referral.id,
           details={"session": str(session.id), "starts_at": starts_at.isoformat(), "venue": venue})
    return session, step


def missed_sessions(referral: Referral) -> int:
    """How many of the referral's sessions the person did not attend (flushing what is pending first)."""
    db.session.flush()
    return db.session.scalar(select(func.count()).select_from(BookedSession).where(
        BookedSession.referral_id == referral.id, BookedSession.attendance == Attendance.DID_NOT_ATTEND)) or 0


def if_missed(tenant: Tenant, referral: Referral, *, on: date) -> tuple[State, str]:
    """Where the referral would go were its next session recorded as missed ``on`` that day
    (``rules.after_missing``): what the attendance forms warn of."""
    to, ending = rules.after_missing(missed_sessions(referral) + 1, allowed=rules.missed_sessions_allowed(tenant),
                                     deadline=referral.deadline, on=on)
    return to, ending_sentence(ending)


def next_session(referral: Referral, *, now: datetime | None = None) -> BookedSession | None:
    """The earliest of the referral's sessions that has started and awaits its attendance, or None."""
    moment = now or utcnow()
    return next((s for s in sessions_of(referral) if s.attendance is None and s.starts_at <= moment), None)


def record_attendance(tenant: Tenant, session: BookedSession, *, attended: bool, actor: Actor,
                      note: str = "", now: datetime | None = None, at: datetime | None = None) -> Transition:
    """Record whether the person came to a booked session.

    Attended counts a session (the referral becomes attended). Did not
    attend is recorded on the session, and the referral goes back to
    waiting for another session to be booked (missed), unless the person
    has now missed more sessions than the force allows
    (``rules.missed_sessions_allowed``) or the referral's deadline has come:
    then it ends as not completed, with the force's non-completion
    outcome. Refuses a session whose attendance is already
    recorded, a session that has not started yet, a referral that has
    ended, a note the rulebook refuses, and an actor who may not record it.
    ``at``: when it was recorded (now unless given; the session must have
    started by then).
    """
    referral = db.session.get(Referral, session.referral_id)
    if referral is None:
        raise CaseError("session", _("The session's referral is not there."))
    require(actor, Action.RECORD_ATTENDANCE, tenant_id=tenant.id, provider_id=referral.provider_id)
    if session.attendance is not None:
        raise CaseError("attendance", _("Attendance is already recorded: %(attendance)s.",
                                        attendance=session.attendance.label.lower()))
    if session.starts_at > (at or now or utcnow()):
        raise CaseError("attendance", _("Record attendance once the session has started."))
    if not referral.state.is_open:
        raise CaseError("attendance", _("The referral is %(state)s: nothing more to record.",
                                        state=referral.state.label.lower()))
    session.attendance = Attendance.ATTENDED if attended else Attendance.DID_NOT_ATTEND
    session.attendance_recorded_at = at or utcnow()
    session.attendance_recorded_by_id = user_id_of(actor)
    to, ending = State.ATTENDED, dict[str, Any]()
    if not attended:
        to, ending = rules.after_missing(
            missed_sessions(referral), allowed=rules.missed_sessions_allowed(tenant), deadline=referral.deadline,
            on=(at or now or utcnow()).astimezone(LONDON).date())
    step = _move(tenant, referral, to, actor=actor, at=at, reason=note.strip(),
                 why=Why.ATTENDED if attended else Why.DID_NOT_ATTEND,
                 details=rules.session_details(session.starts_at, session.venue) | ending)
    record("session.attendance_recorded", actor=actor, tenant_id=tenant.id, object_type="referral",
           object_id=referral.id, details={"session": str(session.id), "attendance": session.attendance.value})
    return step


@dataclass(frozen=True)
class SessionDetails:
    """When and where a session takes place, as a door that books one gives them."""

    starts_at: datetime
    venue: str


def move_to(tenant: Tenant, referral: Referral, to: State, *, actor: Actor, reason: str = "",
            session: SessionDetails | None = None, session_id: uuid.UUID | None = None,
            now: datetime | None = None) -> Transition:
    """Move a referral to ``to`` the one way each state is reached, for a door
    that asks by the state (the force API, the provider API): booked by
    booking ``session``; attended (or missed) by recording the person as
    attending (or not) the session ``session_id`` (else the earliest booked
    session that has started and awaits its attendance), and missed may then
    end the referral as not completed (``record_attendance``); any other
    state by ``transition``.

    Refuses what those refuse (an actor who may not make the move first),
    booked without the session's details, and attended with no such
    session, or none awaiting attendance.
    """
    require(actor, moving(to), tenant_id=tenant.id, provider_id=referral.provider_id)
    if to in SESSION_STATES and (broken := rules.move_broken(
            referral.state, to, reason=reason, sessions_attended=referral.sessions_attended,
            sessions_required=referral.sessions_required)) is not None:
        _refuse(broken)
    if to is State.BOOKED:
        if session is None:
            raise CaseError("session", _("Give the session's start (date, time and zone) and venue to book it."))
        return book_session(tenant, referral, starts_at=session.starts_at, venue=session.venue, actor=actor)[1]
    if to in (State.ATTENDED, State.MISSED):
        waiting = next((s for s in sessions_of(referral) if s.id == session_id and s.attendance is None), None) \
            if session_id else next_session(referral, now=now)
        if waiting is None:
            raise CaseError("session_id", _("This referral has no such session awaiting its attendance.")
                            if session_id else _("No booked session of this referral has started and awaits its "
                                                 "attendance: book one first."))
        return record_attendance(tenant, waiting, attended=to is State.ATTENDED, actor=actor, note=reason, now=now)
    return transition(tenant, referral, to, actor=actor, reason=reason)


def take_path(tenant: Tenant, referral: Referral, path: Sequence[State], *, actor: Actor, reason: str,
              session_at: datetime, venue: str, times: Sequence[datetime] | None = None,
              reason_each_step: bool = False) -> None:
    """Move a referral along ``path`` (``rules.path_to``), each step through the
    service that makes it: booking a session for booked, recording attendance
    for attended, a session missed for missed, and for not completed a
    session missed when one awaits attendance (then ended if the force allows
    a missed session); the other steps as plain moves. ``reason`` is the last
    step's (why the referral ended where it did: "Charged for another matter"
    explains a withdrawal, not the acceptance before it); with
    ``reason_each_step`` every plain move is given it (where the steps came
    from, as an import says of each). For case work recorded after the fact
    (the demo); refuses what each step's service refuses.

    Without ``times`` every step happens now and every session starts at
    ``session_at``. With ``times`` (one per step, in order) each step happens
    at its time, and a session booked at one step starts at the next step's
    time (when its attendance is recorded), or at ``session_at`` after the last.
    """
    if times is not None and len(times) != len(path):
        raise CaseError("times", _("Give one time per step of the path."))
    for index, step in enumerate(path):
        said = reason if reason_each_step or index == len(path) - 1 else ""
        at = times[index] if times is not None else None
        starts_at = times[index + 1] if times is not None and index + 1 < len(times) else session_at
        moment = at or session_at
        waiting = next_session(referral, now=moment) \
            if step in (State.ATTENDED, State.MISSED, State.NOT_COMPLETED) else None
        if step is State.BOOKED:
            book_session(tenant, referral, starts_at=starts_at, venue=venue, actor=actor, at=at)
        elif waiting is not None:
            record_attendance(tenant, waiting, attended=step is State.ATTENDED, actor=actor, now=moment, at=at)
            if step is State.NOT_COMPLETED and referral.state is State.MISSED:
                transition(tenant, referral, step, actor=actor, reason=said, at=at)
        else:
            transition(tenant, referral, step, actor=actor, reason=said, at=at)


def expire_overdue(tenant: Tenant, *, today: date, actor: Actor) -> int:
    """Move every open referral past its deadline to not completed; returns how many.
    Refuses an actor other than the platform's jobs (``SYSTEM``)."""
    require(actor, Action.EXPIRE_REFERRALS, tenant_id=tenant.id)
    overdue = db.session.scalars(
        select(Referral).where(Referral.still_open(), Referral.deadline < today)).all()
    for referral in overdue:
        transition(tenant, referral, State.NOT_COMPLETED, actor=actor, why=Why.DEADLINE_PASSED,
                   details={"deadline": referral.deadline.isoformat()})
    return len(overdue)


# ---------------------------------------------------------------- what the force sees

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
        result[decision.id] = any(decision.decided_on < when <= window_end for when in dates)
    return result


@dataclass(frozen=True)
class Dashboard:
    """The force's figures, each counted only up to ``listing.COUNT_CAP`` + 1 (``listing.capped_text``
    says "more than 10,000" beyond)."""

    open_by_state: dict[State, int]
    overdue: int
    completed_this_month: int
    awaiting_review: int


def dashboard(today: date) -> Dashboard:
    """The force's figures, each a capped COUNT that follows an index (never rows loaded to be counted,
    never more than ``COUNT_CAP`` + 1 index entries read): open referrals by state (``(tenant_id, state,
    deadline)``) and those past their deadline (the open referrals by due date), courses completed this
    month (the partial ``(tenant_id, completed_at)`` of completed referrals), and decisions waiting for review
    (``(tenant_id, outcome, decided_at)`` on decisions)."""
    month_start = datetime(today.year, today.month, 1, tzinfo=UTC)
    return Dashboard(
        {state: count_to_cap(select(Referral.id).where(Referral.state == state)) for state in OPEN_STATES},
        count_to_cap(select(Referral.id).where(Referral.still_open(), Referral.deadline < today)),
        count_to_cap(select(Referral.id).where(Referral.completed_at >= month_start)),
        awaiting_review())
