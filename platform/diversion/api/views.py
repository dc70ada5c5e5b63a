"""API v1: encounters, decisions, referrals and their transitions, as JSON.

The force comes from the bearer token, never from the URL or a session: a
token of force A sees force A's rows only (the ORM guard and row-level
security, as for pages), and another force's id gets the same 404 as an id
that does not exist. Views parse, call the case services (the same ones the
pages use) and serialise; one request is one unit of work. The answer is
serialised before the commit and nothing is read after it (``commit_answer``):
the commit may be the moment the connection drops, and an answer must never
be built from a reload that fails, or tell of an effect that is not there.
The creating calls take an ``Idempotency-Key`` (``api.idempotency``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, NoReturn, TypeVar, cast

from flask import Blueprint, g, jsonify, request, url_for
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from diversion import outage
from diversion.api import idempotency, openapi, schemas, services
from diversion.api.bearer import parse_bearer
from diversion.api.models import ApiToken, IdempotencyKey, KeptAnswer
from diversion.audit.services import record
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import Encounter, Referral, Transition
from diversion.catalogue.models import Course, Offering
from diversion.db import utcnow
from diversion.eligibility.fields import FIELDS
from diversion.eligibility.models import Decision, Outcome
from diversion.errors import AddressRefused
from diversion.extensions import csrf, db
from diversion.tenancy.context import set_scope
from diversion.tenancy.models import Tenant

bp = Blueprint("api", __name__, url_prefix=openapi.PREFIX)
# A bearer token is not sent by a browser on its own, so there is no forged
# request to guard against; and a session cookie opens nothing here.
csrf.exempt(bp)
M = TypeVar("M", bound=BaseModel)

# An encounter is a few kilobytes; anything far larger is refused (413) unread.
MAX_BODY_BYTES = 256 * 1024
# Where each field a case service names sits in the request body.
ENCOUNTER_FIELDS = {"surname": "person.surname", "given_name": "person.given_name",
                    "date_of_birth": "person.date_of_birth", "pnc_id": "person.pnc_id",
                    "ethnicity": "ethnicity", "offence_on": "offence_on"}
REFERRAL_FIELDS = {"decision": "decision_id", "offering": "offering_id", "reason": "reason"}
TRANSITION_FIELDS = {"state": "to", "reason": "reason"}
# Friendlier words for the commonest validation errors; the rest keep pydantic's.
MESSAGES = {
    "missing": "This field is required.",
    "extra_forbidden": "This is not a field or parameter of this request.",
    "string_pattern_mismatch": "Control characters are not allowed here.",
    "model_type": "This must be a JSON object.",
    "model_attributes_type": "This must be a JSON object.",
}
HTTP_MESSAGES = {
    401: "Send a valid API token: Authorization: Bearer <token>.",
    404: "There is no such item in this force.",
    405: "This method is not allowed here.",
    413: "The request is too large.",
    429: "Too many requests: slow down.",
}


class ApiProblem(Exception):  # noqa: N818 - the answer, not a fault of the code
    """An answer other than success, with the fields at fault."""

    def __init__(self, status: int, errors: Iterable[tuple[str | None, str]]) -> None:
        super().__init__(status)
        self.status = status
        self.errors = list(errors)


def error_response(status: int, errors: Iterable[tuple[str | None, str]],
                   headers: dict[str, str] | None = None) -> Response:
    body = schemas.ErrorBody(errors=[schemas.ErrorItem(field=f, message=m) for f, m in errors])
    response = Response(body.model_dump_json(), status=status, mimetype="application/json", headers=headers)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="diversion API"'
    return response


def http_error(error: Exception, code: int) -> Response:
    """An error of the app (routing, an abort, a crash) under /api/, as JSON with no internals."""
    headers = {}
    if isinstance(error, HTTPException):  # keep Allow on a 405
        headers = {name: value for name, value in error.get_headers() if name.lower() == "allow"}
    message = HTTP_MESSAGES.get(code) or (f"Something went wrong on our side. {outage.changes_note()}"
                                          if code >= 500 else "The request could not be handled.")
    if isinstance(error, AddressRefused):  # a bad parameter, as the API answers any
        return error_response(422, [(error.parameter, str(error.description))])
    return error_response(code, [(None, message)], headers)


def unavailable() -> Response:
    """503 when the database cannot answer: try again after ``Retry-After`` seconds."""
    return error_response(503, [(None, outage.unavailable_message())], {"Retry-After": outage.retry_after()})


@bp.errorhandler(ApiProblem)
def _problem(error: ApiProblem) -> Response:
    outage.safe_rollback()
    return error_response(error.status, error.errors)


@bp.before_request
def _authenticate() -> None:
    """Resolve the force from the bearer token; 401 without a good one."""
    request.max_content_length = MAX_BODY_BYTES
    if request.endpoint == "api.openapi_document":
        return
    presented = parse_bearer(request.headers.get("Authorization"))
    found = services.authenticate(presented) if presented else None
    if found is None:
        raise ApiProblem(401, [(None, HTTP_MESSAGES[401])])
    # Keep "last used" even if the call itself is refused later.
    db.session.commit()
    outage.forget_commits()  # bookkeeping, not the request's change
    tenant, token = found
    g.api_tenant, g.api_token = tenant, token
    set_scope(tenant.id)


def _tenant() -> Tenant:
    tenant: Tenant = g.api_tenant
    return tenant


def _today() -> date:
    return datetime.now(UTC).date()


def _json(model: BaseModel, status: int = 200, location: str | None = None) -> Response:
    response = Response(model.model_dump_json(by_alias=True), status=status, mimetype="application/json")
    if location is not None:
        response.headers["Location"] = location
    return response


def take_key(model: type[KeptAnswer], owner: dict[str, Any]) -> idempotency.Taken | Response | None:
    """Take the request's ``Idempotency-Key``, if it has one, before its effect.

    None without a key; the key, held until the request commits; or the
    answer the same request got before, to send again as it is. 422 for a
    malformed key or one used with another request.
    """
    try:
        key = idempotency.checked_key(request.headers.getlist(idempotency.HEADER))
        if key is None:
            return None
        found = idempotency.take(model, owner, key,
                                 idempotency.fingerprint(request.method, request.path, request.get_data()),
                                 now=utcnow())
    except idempotency.IdempotencyError as error:
        raise ApiProblem(422, [(error.field, error.message)]) from None
    if isinstance(found, idempotency.Answer):
        db.session.rollback()  # nothing to change: let go of the key's row
        response = Response(found.body, status=found.status, mimetype="application/json")
        if found.location is not None:
            response.headers["Location"] = found.location
        response.headers[idempotency.REPLAYED_HEADER] = "true"
        return response
    return found


def commit_answer(response: Response, taken: idempotency.Taken | None) -> Response:
    """Commit the request's unit of work with its answer, already built (nothing is read after the
    commit, which may be the moment the connection drops), and kept under its key if it has one."""
    if taken is not None:
        idempotency.remember(taken, idempotency.Answer(response.status_code, response.get_data(as_text=True),
                                                       response.headers.get("Location")))
    db.session.commit()
    return response


def _field(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "body"


def _message(location: tuple[int | str, ...], kind: str, default: str) -> str:
    if not location:  # not JSON, or not an object
        return "The body must be a JSON object."
    if kind == "extra_forbidden" and len(location) == 2 and location[0] == "facts" \
            and location[1] in cases.DERIVED_FACTS:
        return "This fact is worked out by the platform; leave it out."
    return MESSAGES.get(kind, default)


def _validation_problem(error: ValidationError) -> ApiProblem:
    return ApiProblem(422, [
        (_field(tuple(item["loc"])), _message(tuple(item["loc"]), item["type"], item["msg"]))
        for item in error.errors(include_url=False, include_input=False)
    ])


def _body(model: type[M]) -> M:
    try:
        return model.model_validate_json(request.get_data(cache=False) or b"")
    except ValidationError as error:
        raise _validation_problem(error) from None


def _case_problem(error: cases.CaseError, fields: dict[str, str]) -> NoReturn:
    field = fields.get(error.field) or (f"facts.{error.field}" if error.field in FIELDS else None)
    raise ApiProblem(422, [(field, error.message)])


def _audit(operation: str, object_type: str, object_id: object) -> None:
    """Which token did it: the case services know no user for an API call."""
    token: ApiToken = g.api_token
    record(f"api.{operation}", actor=None, actor_email=None, tenant_id=_tenant().id, object_type=object_type,
           object_id=object_id,
           details={"token": str(token.id), "prefix": services.display_prefix(_tenant(), token)})


def _one(model: type[Any], object_id: uuid.UUID) -> Any:
    """A row of the token's force by id; 404 for one of another force or none."""
    found = db.session.scalar(select(model).where(model.id == object_id, model.tenant_id == _tenant().id))
    if found is None:
        raise ApiProblem(404, [(None, HTTP_MESSAGES[404])])
    return found


# ---------------------------------------------------------------- serialising

def decision_out(decision: Decision) -> schemas.DecisionOut:
    override = None
    if decision.override_outcome:
        override = schemas.Override(outcome=Outcome(decision.override_outcome), pathway=decision.override_pathway,
                                    reason=decision.override_reason or "", at=decision.overridden_at)
    return schemas.DecisionOut(
        id=decision.id, encounter_id=decision.encounter_id, decided_on=decision.decided_on,
        outcome=Outcome(decision.outcome), pathway=decision.pathway,
        unmet=[schemas.Unmet(pathway=r.get("pathway"), criterion=r["criterion"], reason=r["reason"])
               for r in decision.results if r.get("result") == "unmet"],
        missing=list(decision.missing), policy_version=decision.policy_version.number,
        policy_hash=decision.policy_hash, override=override, final_outcome=Outcome(decision.final_outcome),
        final_pathway=decision.final_pathway,
    )


def _encounter_record(encounter: Encounter, decision: Decision | None) -> schemas.EncounterRecord:
    return schemas.EncounterRecord(
        encounter=schemas.EncounterOut(id=encounter.id, person_id=encounter.person_id, offence_on=encounter.offence_on,
                                       recorded_at=encounter.recorded_at, source=encounter.source,
                                       facts=encounter.facts),
        decision=decision_out(decision) if decision is not None else None,
    )


def _transition_out(step: Transition) -> schemas.TransitionOut:
    return schemas.TransitionOut(id=step.id, referral_id=step.referral_id, from_state=step.from_state,
                                 to_state=step.to_state, occurred_at=step.occurred_at, reason=step.reason)


def referral_out(referral: Referral) -> schemas.ReferralOut:
    ended = not referral.state.is_open
    return schemas.ReferralOut(
        id=referral.id, encounter_id=referral.encounter_id, offering_id=referral.offering_id,
        pathway=referral.pathway, state=referral.state, deadline=referral.deadline,
        sessions_required=referral.sessions_required, sessions_attended=referral.sessions_attended,
        outcome=schemas.CaseOutcome(code=referral.outcome_code, label=referral.outcome_label) if ended else None,
        created_at=referral.created_at, updated_at=referral.updated_at,
        transitions=[_transition_out(t) for t in sorted(referral.transitions, key=lambda t: t.occurred_at)],
    )


# ---------------------------------------------------------------- the document

@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(openapi.document())


# ---------------------------------------------------------------- encounters and decisions

def _taken_key() -> idempotency.Taken | Response | None:
    token: ApiToken = g.api_token
    return take_key(IdempotencyKey, {"tenant_id": _tenant().id, "token_id": token.id})


@bp.post("/encounters")
def record_encounter() -> Response:
    taken = _taken_key()
    if isinstance(taken, Response):
        return taken
    body = _body(schemas.EncounterIn)
    intake = cases.Intake(
        identity=Identity(body.person.surname, body.person.given_name, body.person.date_of_birth,
                          body.person.pnc_id),
        contact=Contact(body.contact.phone, body.contact.email, body.contact.address),
        ethnicity=body.ethnicity, offence_on=body.offence_on,
        facts=cast(BaseModel, body.facts).model_dump(exclude_none=True),
    )
    try:
        encounter, decision = cases.record_encounter(_tenant(), intake, actor=None, today=_today(), source="api")
    except cases.CaseError as error:
        _case_problem(error, ENCOUNTER_FIELDS)
    _audit("encounter_recorded", "encounter", encounter.id)
    return commit_answer(_json(_encounter_record(encounter, decision), 201,
                               url_for(".get_encounter", encounter_id=encounter.id)), taken)


@bp.get("/encounters/<uuid:encounter_id>")
def get_encounter(encounter_id: uuid.UUID) -> Response:
    encounter = _one(Encounter, encounter_id)
    decision = db.session.scalar(select(Decision).where(Decision.encounter_id == encounter.id)
                                 .order_by(Decision.decided_at.desc()).limit(1))
    return _json(_encounter_record(encounter, decision))


@bp.get("/decisions/<uuid:decision_id>")
def get_decision(decision_id: uuid.UUID) -> Response:
    return _json(decision_out(_one(Decision, decision_id)))


# ---------------------------------------------------------------- referrals

@bp.get("/offerings")
def list_offerings() -> Response:
    # Only offerings that take new referrals: not withdrawn, their course not retired.
    offerings = db.session.scalars(
        select(Offering).join(Course)
        .where(Offering.withdrawn_at.is_(None), Course.retired_at.is_(None))
        .order_by(Offering.pathway, Offering.created_at)).all()
    return _json(schemas.OfferingList(offerings=[
        schemas.OfferingOut(id=o.id, pathway=o.pathway, course=schemas.CourseOut(
            id=o.course.id, slug=o.course.slug, title=o.course.title, sessions=o.course.sessions,
            provider=o.course.provider.name))
        for o in offerings
    ]))


@bp.post("/decisions/<uuid:decision_id>/referrals")
def refer(decision_id: uuid.UUID) -> Response:
    taken = _taken_key()
    if isinstance(taken, Response):
        return taken
    decision = _one(Decision, decision_id)
    body = _body(schemas.ReferralIn)
    offering = db.session.scalar(select(Offering).where(Offering.id == body.offering_id))
    if offering is None:
        raise ApiProblem(422, [("offering_id", "This force offers no course with this id.")])
    try:
        referral = cases.refer(_tenant(), decision, offering, actor=None, today=_today(), reason=body.reason)
    except cases.CaseError as error:
        _case_problem(error, REFERRAL_FIELDS)
    _audit("referral_offered", "referral", referral.id)
    db.session.expire(referral, ["transitions"])  # read with the offer just made
    return commit_answer(_json(referral_out(referral), 201, url_for(".get_referral", referral_id=referral.id)),
                         taken)


@bp.get("/referrals")
def list_referrals() -> Response:
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise ApiProblem(422, [(name, "Give this parameter once.") for name in repeated])
    try:
        query = schemas.ReferralQuery.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise _validation_problem(error) from None
    statement = select(Referral).order_by(Referral.created_at.desc(), Referral.id)
    if query.state is not None:
        statement = statement.where(Referral.state == query.state)
    found = db.session.scalars(statement.offset(query.offset).limit(query.limit + 1)).all()
    more = len(found) > query.limit
    return _json(schemas.ReferralPage(
        referrals=[referral_out(r) for r in found[:query.limit]], limit=query.limit, offset=query.offset,
        next_offset=query.offset + query.limit if more else None,
    ))


@bp.get("/referrals/<uuid:referral_id>")
def get_referral(referral_id: uuid.UUID) -> Response:
    return _json(referral_out(_one(Referral, referral_id)))


@bp.post("/referrals/<uuid:referral_id>/transitions")
def move_referral(referral_id: uuid.UUID) -> Response:
    taken = _taken_key()
    if isinstance(taken, Response):
        return taken
    referral = _one(Referral, referral_id)
    body = _body(schemas.TransitionIn)
    try:
        step = cases.transition(_tenant(), referral, body.to, actor=None, reason=body.reason)
    except cases.CaseError as error:
        _case_problem(error, TRANSITION_FIELDS)
    _audit(f"referral_{body.to.value}", "referral", referral.id)
    db.session.expire(referral, ["transitions"])  # read with the move just made
    return commit_answer(_json(schemas.TransitionRecord(transition=_transition_out(step),
                                                        referral=referral_out(referral)), 201), taken)
