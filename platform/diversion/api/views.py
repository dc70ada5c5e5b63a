"""API v1: encounters, decisions, referrals and their transitions, as JSON.

The force comes from the bearer token, never from the URL or a session: a
token of force A sees force A's rows only (the ORM guard and row-level
security, as for pages), and another force's id gets the same 404 as an id
that does not exist. Views parse, call the case services (the same ones the
pages use) and serialise; one request is one unit of work, committed once
at its end (``unit``), after the answer is serialised: nothing is read
after the commit, which may be the moment the connection drops. A change's
answer is kept with it under its key (``jsonapi.http.idempotent``).
The creating calls take an ``Idempotency-Key`` (``jsonapi.idempotency``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, NoReturn, TypeVar, cast

from flask import current_app, g, jsonify, request, url_for
from pydantic import BaseModel
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import joinedload, load_only
from werkzeug.wrappers import Response

from diversion.accounts.access import Action, require
from diversion.api import openapi, schemas
from diversion.audit import services as audit
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import API, Encounter, Referral
from diversion.cases.references import looks_like_reference, normalise_reference
from diversion.cases.rules import DERIVED_FACTS, Intake
from diversion.catalogue.models import Course, Offering
from diversion.eligibility.fields import FIELDS
from diversion.eligibility.models import Decision, Outcome
from diversion.extensions import db
from diversion.jsonapi import idempotency, tokens
from diversion.jsonapi.http import (
    HTTP_MESSAGES,
    UNAUTHORIZED,
    ApiProblem,
    answer,
    api_blueprint,
    body,
    idempotent,
    query,
)
from diversion.jsonapi.openapi import document, with_part
from diversion.jsonapi.schemas import session_out, transition_out
from diversion.jsonapi.tokens import ApiToken, parse_bearer
from diversion.tenancy.models import Tenant

M = TypeVar("M", bound=BaseModel)
bp = with_part(api_blueprint("api", __name__), openapi.PART)
# Where each field a case service names sits in the request body.
ENCOUNTER_FIELDS = {"surname": "person.surname", "given_name": "person.given_name",
                    "date_of_birth": "person.date_of_birth", "pnc_id": "person.pnc_id",
                    "ethnicity": "ethnicity", "offence_on": "offence_on"}
REFERRAL_FIELDS = {"decision": "decision_id", "offering": "offering_id", "reason": "reason"}
# The operations that answer with the force's cases without changing them.
READS_CASES = frozenset({"api.get_encounter", "api.get_decision", "api.list_referrals", "api.get_referral"})
TRANSITION_FIELDS = {"state": "to", "reason": "reason", "session": "session", "venue": "session.venue",
                     "starts_at": "session.starts_at", "session_id": "session_id", "referral": "to",
                     "attendance": "session_id"}


@bp.before_request
def _authenticate() -> None:
    """Resolve the force from the bearer token; 401 without a good one."""
    if request.endpoint == "api.openapi_document":
        return
    presented = parse_bearer(request.headers.get("Authorization"))
    found = tokens.authenticate_force(presented) if presented else None
    if found is None:
        raise ApiProblem(401, [(None, UNAUTHORIZED)])
    tenant, token = found  # and the force is in scope
    g.api_tenant, g.api_token = tenant, token
    # The case services' events name no person for a token: they name the token.
    audit.through({"token": str(token.id), "prefix": tokens.display_prefix(tenant.slug, token)})
    if request.endpoint in READS_CASES:  # the changes are checked by the case services
        require(token, Action.READ_CASES, tenant_id=tenant.id)


def _token() -> ApiToken:
    """The force system's token the request came with: the actor of its changes."""
    token: ApiToken = g.api_token
    return token


def _tenant() -> Tenant:
    tenant: Tenant = g.api_tenant
    return tenant


def _today() -> date:
    return datetime.now(UTC).date()


def _explain(location: tuple[int | str, ...], kind: str) -> str | None:
    if kind == "extra_forbidden" and len(location) == 2 and location[0] == "facts" and location[1] in DERIVED_FACTS:
        return "This fact is worked out by the platform; leave it out."
    return None


def _body(model: type[M]) -> M:
    return body(model, _explain)


def _case_problem(error: cases.CaseError, fields: dict[str, str]) -> NoReturn:
    field = fields.get(error.field) or (f"facts.{error.field}" if error.field in FIELDS else None)
    raise ApiProblem(422, [(field, error.message)])


def _reference_of(encounter_id: uuid.UUID | None) -> str | None:
    """The reference of a case of the token's force (one indexed read), or None."""
    if encounter_id is None:
        return None
    return db.session.scalar(select(Encounter.reference).where(Encounter.id == encounter_id))


def _encounter(asked: str) -> Encounter:
    """An encounter of the token's force by its id or its reference (any case, zeros or not);
    404 for anything else."""
    try:
        where = Encounter.id == uuid.UUID(asked)
    except ValueError:
        if not looks_like_reference(asked):
            raise ApiProblem(404, [(None, HTTP_MESSAGES[404])]) from None
        where = Encounter.reference == normalise_reference(asked)
    found = db.session.scalar(select(Encounter).where(where, Encounter.tenant_id == _tenant().id))
    if found is None:
        raise ApiProblem(404, [(None, HTTP_MESSAGES[404])])
    return found


@cache
def _by_id(model: Any) -> Select[Any]:
    """A row of ``model`` by id in the token's force (built once, its parameters bound when run)."""
    return select(model).where(model.id == bindparam("id"), model.tenant_id == bindparam("tenant_id"))


# A decision with its encounter, the course offered (or None) and the state of the encounter's
# referral (or None), for a referral made from them: the columns a referral and its answer read alone.
_REFERRAL_FROM = (select(Decision, Encounter, Offering, cases.referral_state_of(Decision.encounter_id))
                  .outerjoin(Encounter, Encounter.id == Decision.encounter_id)
                  .outerjoin(Offering, Offering.id == bindparam("offering_id"))
                  .options(joinedload(Offering.course).load_only(Course.provider_id, Course.sessions,
                                                                 Course.retired_at),
                           load_only(Encounter.person_id, Encounter.reference),
                           load_only(Decision.encounter_id, Decision.decided_on, Decision.outcome, Decision.pathway,
                                     Decision.override_outcome, Decision.override_pathway, Decision.superseded_by_id,
                                     Decision.policy_version_id),
                           load_only(Offering.pathway, Offering.course_id, Offering.withdrawn_at))
                  .where(Decision.id == bindparam("id"), Decision.tenant_id == bindparam("tenant_id")))


def _found(statement: Select[Any], object_id: uuid.UUID, **more: Any) -> Any:
    """The row ``statement`` finds by id in the token's force (with ``more`` parameters); 404 for one
    of another force or none. The answer is the whole result row: keep it while the request needs its
    objects, since the session's identity map holds an object only while something else does."""
    found = db.session.execute(statement, {"id": object_id, "tenant_id": _tenant().id, **more}).first()
    if found is None:
        raise ApiProblem(404, [(None, HTTP_MESSAGES[404])])
    return found


def _one(model: Any, object_id: uuid.UUID) -> Any:
    """A row of the token's force by id; 404 for one of another force or none."""
    return _found(_by_id(model), object_id)[0]


# ---------------------------------------------------------------- serialising

def decision_out(decision: Decision, reference: str | None) -> schemas.DecisionOut:
    """A decision as the API answers it, with its case's ``reference``."""
    override = None
    if decision.override_outcome:
        override = schemas.Override(outcome=Outcome(decision.override_outcome), pathway=decision.override_pathway,
                                    reason=decision.override_reason or "", at=decision.overridden_at)
    return schemas.DecisionOut(
        id=decision.id, encounter_id=decision.encounter_id, reference=reference, decided_on=decision.decided_on,
        outcome=Outcome(decision.outcome), pathway=decision.pathway,
        unmet=[schemas.Unmet(pathway=r.pathway, criterion=r.criterion, reason=r.reason)
               for r in decision.unmet_criteria()],
        missing=list(decision.missing), policy_version=decision.policy_version.number,
        policy_hash=decision.policy_hash, override=override, final_outcome=Outcome(decision.final_outcome),
        final_pathway=decision.final_pathway, superseded_by_id=decision.superseded_by_id,
    )


def _encounter_record(encounter: Encounter, decision: Decision | None) -> schemas.EncounterRecord:
    return schemas.EncounterRecord(
        encounter=schemas.EncounterOut(id=encounter.id, reference=encounter.reference, person_id=encounter.person_id,
                                       offence_on=encounter.offence_on, recorded_at=encounter.recorded_at,
                                       source=encounter.source, facts=encounter.facts),
        decision=decision_out(decision, encounter.reference) if decision is not None else None,
    )


def referral_out(referral: Referral, reference: str, *, new: bool = False) -> schemas.ReferralOut:
    """A referral as the API answers it, with its case's ``reference`` (``new``: just offered, so with
    no sessions yet, and none read)."""
    ended = not referral.state.is_open
    return schemas.ReferralOut(
        id=referral.id, encounter_id=referral.encounter_id, reference=reference, offering_id=referral.offering_id,
        pathway=referral.pathway, state=referral.state, deadline=referral.deadline,
        sessions_required=referral.sessions_required, sessions_attended=referral.sessions_attended,
        outcome=schemas.CaseOutcome(code=referral.outcome_code, label=referral.outcome_label) if ended else None,
        created_at=referral.created_at, updated_at=referral.updated_at,
        transitions=[transition_out(t) for t in referral.transitions],
        sessions=[] if new else [session_out(s) for s in cases.sessions_of(referral)],
    )


# ---------------------------------------------------------------- the document

@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(document(current_app))


# ---------------------------------------------------------------- encounters and decisions

# The creating calls: their Idempotency-Key rows are the force's, per token.
_idempotent = idempotent(idempotency.IdempotencyKey, lambda: {"tenant_id": _tenant().id, "token_id": _token().id})


@bp.post("/encounters")
@_idempotent
def record_encounter() -> Response:
    body = _body(schemas.EncounterIn)
    intake = Intake(
        identity=Identity(body.person.surname, body.person.given_name, body.person.date_of_birth,
                          body.person.pnc_id),
        contact=Contact(body.contact.phone, body.contact.email, body.contact.address),
        ethnicity=body.ethnicity, offence_on=body.offence_on,
        facts=cast(BaseModel, body.facts).model_dump(exclude_none=True),
    )
    try:
        encounter, decision = cases.record_encounter(_tenant(), intake, actor=_token(), today=_today(), source=API)
    except cases.CaseError as error:
        _case_problem(error, ENCOUNTER_FIELDS)
    return answer(_encounter_record(encounter, decision), 201, url_for(".get_encounter", encounter_id=encounter.id))


@bp.get("/encounters/<encounter_id>")
def get_encounter(encounter_id: str) -> Response:
    """An encounter by its id or its case reference, with the decision that stands."""
    encounter = _encounter(encounter_id)
    return answer(_encounter_record(encounter, cases.standing(encounter.id)))


@bp.get("/decisions/<uuid:decision_id>")
def get_decision(decision_id: uuid.UUID) -> Response:
    decision = _one(Decision, decision_id)
    return answer(decision_out(decision, _reference_of(decision.encounter_id)))


# ---------------------------------------------------------------- referrals

@bp.get("/offerings")
def list_offerings() -> Response:
    # Only offerings that take new referrals: not withdrawn, their course not retired.
    offerings = db.session.scalars(
        select(Offering).join(Course)
        .where(Offering.withdrawn_at.is_(None), Course.retired_at.is_(None))
        .order_by(Offering.pathway, Offering.created_at)).all()
    return answer(schemas.OfferingList(offerings=[
        schemas.OfferingOut(id=o.id, pathway=o.pathway, course=schemas.CourseOut(
            id=o.course.id, slug=o.course.slug, title=o.course.title, sessions=o.course.sessions,
            provider=o.course.provider.name))
        for o in offerings
    ]))


@bp.post("/decisions/<uuid:decision_id>/referrals")
@_idempotent
def refer(decision_id: uuid.UUID) -> Response:
    try:
        body = _body(schemas.ReferralIn)
    except ApiProblem:
        _one(Decision, decision_id)  # a decision that is not there is named first
        raise
    # The decision, its encounter, the course and any referral already made, in one read.
    decision, encounter, offering, referral_state = _found(_REFERRAL_FROM, decision_id, offering_id=body.offering_id)
    if offering is None:
        raise ApiProblem(422, [("offering_id", "This force offers no course with this id.")])
    try:
        referral = cases.refer(_tenant(), decision, offering, actor=_token(), today=_today(), reason=body.reason,
                               referral_state=referral_state)
    except cases.CaseError as error:
        _case_problem(error, REFERRAL_FIELDS)
    return answer(referral_out(referral, encounter.reference, new=True), 201,
                  url_for(".get_referral", referral_id=referral.id))


@bp.get("/referrals")
def list_referrals() -> Response:
    asked = query(schemas.ReferralQuery)
    statement = select(Referral).order_by(Referral.created_at.desc(), Referral.id)
    if asked.state is not None:
        statement = statement.where(Referral.state == asked.state)
    # The page's references come with it, by a join (not a read per referral).
    rows = db.session.execute(statement.add_columns(Encounter.reference)
                              .join(Encounter, (Encounter.tenant_id == Referral.tenant_id)
                                    & (Encounter.id == Referral.encounter_id))
                              .offset(asked.offset).limit(asked.limit + 1)).tuples().all()
    more = len(rows) > asked.limit
    return answer(schemas.ReferralPage(
        referrals=[referral_out(r, reference) for r, reference in rows[:asked.limit]], limit=asked.limit,
        offset=asked.offset,
        next_offset=asked.offset + asked.limit if more else None,
    ))


@bp.get("/referrals/<uuid:referral_id>")
def get_referral(referral_id: uuid.UUID) -> Response:
    referral = _one(Referral, referral_id)
    return answer(referral_out(referral, _reference_of(referral.encounter_id) or ""))


@bp.post("/referrals/<uuid:referral_id>/transitions")
@_idempotent
def move_referral(referral_id: uuid.UUID) -> Response:
    referral = _one(Referral, referral_id)
    body = _body(schemas.TransitionIn)
    try:
        step = cases.move_to(_tenant(), referral, body.to, actor=_token(), reason=body.reason,
                             session=cases.SessionDetails(body.session.starts_at, body.session.venue)
                             if body.session else None, session_id=body.session_id)
    except cases.CaseError as error:
        _case_problem(error, TRANSITION_FIELDS)
    return answer(schemas.TransitionRecord(transition=transition_out(step),
                                           referral=referral_out(referral, _reference_of(referral.encounter_id) or "")),
                  201)
