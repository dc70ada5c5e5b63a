"""The provider API: a provider's referrals from every force it serves, as a feed, and their moves.

The provider comes from its bearer token (``dvp.``), never from the URL or
a session. A referral of another provider, whatever its force, gets the
same 404 as one that does not exist. Views parse, call the integration
services and serialise; one request is one unit of work, its answer built
before the commit (``api.views.commit_answer``). A move takes an
``Idempotency-Key``, kept as the provider's own row.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, g, request
from pydantic import ValidationError
from werkzeug.wrappers import Response

from diversion import outage
from diversion.api.bearer import parse_bearer
from diversion.api.openapi import PREFIX
from diversion.api.views import (
    MAX_BODY_BYTES,
    ApiProblem,
    _body,
    _json,
    _transition_out,
    _validation_problem,
    commit_answer,
    error_response,
    take_key,
)
from diversion.cases.models import State
from diversion.cases.services import CaseError
from diversion.catalogue.models import Provider
from diversion.extensions import csrf, db
from diversion.integrations import schemas, services
from diversion.integrations.feed import CursorError, decode_cursor, encode_cursor
from diversion.integrations.models import ProviderIdempotencyKey, ProviderToken
from diversion.tenancy.context import set_provider_scope, set_scope

bp = Blueprint("provider_api", __name__, url_prefix=f"{PREFIX}/provider")
csrf.exempt(bp)  # bearer tokens only: no cookie opens these routes
UNAUTHORIZED = "Send a valid API token: Authorization: Bearer <token>."  # as the force API says
NOT_FOUND = "This provider has no such referral."


@bp.errorhandler(ApiProblem)
def _problem(error: ApiProblem) -> Response:
    outage.safe_rollback()
    return error_response(error.status, error.errors)


@bp.before_request
def _authenticate() -> None:
    """Resolve the provider from the bearer token; 401 without a good one. The
    provider is then in scope, with no force (``set_provider_scope``)."""
    request.max_content_length = MAX_BODY_BYTES
    set_scope(None)
    presented = parse_bearer(request.headers.get("Authorization"))
    found = services.authenticate(presented) if presented else None
    if found is None:
        raise ApiProblem(401, [(None, UNAUTHORIZED)])
    db.session.commit()  # keep "last used" even if the call is refused later
    outage.forget_commits()  # bookkeeping, not the request's change
    g.api_provider, g.api_provider_token = found
    set_provider_scope(found[0].id)


def _provider() -> Provider:
    provider: Provider = g.api_provider
    return provider


def _token() -> ProviderToken:
    token: ProviderToken = g.api_provider_token
    return token


def referral_out(item: services.ProviderReferral) -> schemas.ProviderReferralOut:
    referral, person = item.referral, None
    if item.identity is not None and item.contact is not None:
        person = schemas.PersonContactOut(given_name=item.identity.given_name, surname=item.identity.surname,
                                          phone=item.contact.phone, email=item.contact.email,
                                          address=item.contact.address)
    return schemas.ProviderReferralOut(
        id=referral.id, force=schemas.ForceOut(slug=item.force.slug, name=item.force.name),
        course=schemas.ProviderCourseOut(id=item.course.id, slug=item.course.slug, title=item.course.title,
                                         sessions=item.course.sessions),
        pathway=referral.pathway, state=referral.state, deadline=referral.deadline,
        sessions_required=referral.sessions_required, sessions_attended=referral.sessions_attended,
        person=person, created_at=referral.created_at, updated_at=referral.updated_at,
        transitions=[_transition_out(step) for step in item.transitions],
    )


def _one(referral_id: uuid.UUID) -> services.ProviderReferral:
    found = services.provider_referrals(_provider().id, referral_id=referral_id)
    if not found:
        raise ApiProblem(404, [(None, NOT_FOUND)])
    return found[0]


@bp.get("/referrals")
def feed() -> Response:
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise ApiProblem(422, [(name, "Give this parameter once.") for name in repeated])
    try:
        query = schemas.FeedQuery.model_validate(request.args.to_dict())
        after = decode_cursor(query.cursor)
    except ValidationError as error:
        raise _validation_problem(error) from None
    except CursorError as error:
        raise ApiProblem(422, [(error.field, error.message)]) from None
    try:
        page = services.feed_page(_provider().id, after=after, limit=query.limit)
    except CursorError as error:
        raise ApiProblem(422, [(error.field, error.message)]) from None
    return _json(schemas.ProviderReferralPage(referrals=[referral_out(item) for item in page.items],
                                              next_cursor=encode_cursor(page.next_position), has_more=page.more))


@bp.get("/referrals/<uuid:referral_id>")
def get_referral(referral_id: uuid.UUID) -> Response:
    return _json(referral_out(_one(referral_id)))


@bp.post("/referrals/<uuid:referral_id>/transitions")
def move_referral(referral_id: uuid.UUID) -> Response:
    _one(referral_id)  # 404 before the body: another provider's id tells nothing
    # The provider's own key row, in provider scope (see ProviderIdempotencyKey).
    taken = take_key(ProviderIdempotencyKey, {"provider_id": _provider().id, "token_id": _token().id})
    if isinstance(taken, Response):
        return taken
    body = _body(schemas.ProviderMoveIn)
    try:
        moved = services.move(_provider().id, referral_id, State(body.to), reason=body.reason,
                              expected=body.expected_state, token=_token())
    except services.MoveError as error:
        raise ApiProblem(409, [(error.field, error.message)]) from None
    except CaseError as error:
        raise ApiProblem(422, [(error.field, error.message)]) from None
    if moved is None:
        raise ApiProblem(404, [(None, NOT_FOUND)])
    # Read again inside the transaction, with the move flushed: the answer is
    # built before the commit, and nothing is read after it.
    db.session.expire(moved.referral)
    item = _one(referral_id)
    return commit_answer(_json(schemas.ProviderMoveRecord(transition=_transition_out(item.transitions[-1]),
                                                          referral=referral_out(item)), 201), taken)
