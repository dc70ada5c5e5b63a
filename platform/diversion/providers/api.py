"""The provider API: a provider's referrals from every force it serves, as a feed, and their moves.

The provider comes from its bearer token (``dvp.``), never from the URL or
a session. A referral of another provider, whatever its force, gets the
same 404 as one that does not exist. Views parse, call the integration
services and serialise; one request is one unit of work, committed once at
its end (``unit``), its answer built before the commit. A move takes an
``Idempotency-Key``, its answer kept with it (``jsonapi.http.keep_answer``)
as the provider's own row.
"""

from __future__ import annotations

import uuid
from typing import cast

from flask import g, request
from werkzeug.wrappers import Response

from diversion.accounts.access import Action, require
from diversion.audit import services as audit
from diversion.cases.models import State
from diversion.cases.services import CaseError, SessionDetails
from diversion.catalogue.models import Provider
from diversion.extensions import db
from diversion.jsonapi import tokens
from diversion.jsonapi.http import UNAUTHORIZED, ApiProblem, answer, api_blueprint, body, keep_answer, query, take_key
from diversion.jsonapi.idempotency import ProviderIdempotencyKey
from diversion.jsonapi.openapi import with_part
from diversion.jsonapi.schemas import session_out, transition_out
from diversion.jsonapi.tokens import ProviderToken, parse_bearer
from diversion.providers import openapi, schemas, services
from diversion.providers.feed import CursorError, decode_cursor, encode_cursor
from diversion.tenancy.context import set_provider_scope, set_scope

bp = with_part(api_blueprint("provider_api", __name__, "/provider"), openapi.PART)
NOT_FOUND = "This provider has no such referral."
# Where each field a case service names sits in the request body.
FIELDS = {"venue": "session.venue", "starts_at": "session.starts_at", "referral": "to", "attendance": "session_id"}


@bp.before_request
def _authenticate() -> None:
    """Resolve the provider from the bearer token; 401 without a good one. The
    provider is then in scope, with no force (``set_provider_scope``)."""
    set_scope(None)
    presented = parse_bearer(request.headers.get("Authorization"))
    found = tokens.authenticate_provider(presented) if presented else None
    if found is None:
        raise ApiProblem(401, [(None, UNAUTHORIZED)])
    g.api_provider, g.api_provider_token = found
    set_provider_scope(found[0].id)
    # The case services' events name no person for a token: they name the provider and its token.
    audit.through({"provider": found[0].slug, "token": str(found[1].id),
                   "prefix": tokens.display_prefix(found[0].slug, found[1])})
    # Every answer shows the provider's referrals: the access table must let the token see them.
    require(found[1], Action.READ_PROVIDER_REFERRALS, provider_id=found[0].id)


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
        id=referral.id, reference=item.reference, force=schemas.ForceOut(slug=item.force.slug, name=item.force.name),
        course=schemas.ProviderCourseOut(id=item.course.id, slug=item.course.slug, title=item.course.title,
                                         sessions=item.course.sessions, title_cy=item.course.title_cy),
        pathway=referral.pathway, state=referral.state, deadline=referral.deadline,
        sessions_required=referral.sessions_required, sessions_attended=referral.sessions_attended,
        person=person, language=cast("schemas.Language | None", item.language),
        created_at=referral.created_at, updated_at=referral.updated_at,
        transitions=[transition_out(step) for step in item.transitions],
        sessions=[session_out(session) for session in item.sessions],
    )


def _one(referral_id: uuid.UUID) -> services.ProviderReferral:
    found = services.provider_referrals(_provider().id, referral_id=referral_id)
    if not found:
        raise ApiProblem(404, [(None, NOT_FOUND)])
    return found[0]


@bp.get("/referrals")
def feed() -> Response:
    asked = query(schemas.FeedQuery)
    try:
        after = decode_cursor(asked.cursor)
    except CursorError as error:
        raise ApiProblem(422, [(error.field, error.message)]) from None
    try:
        page = services.feed_page(_provider().id, after=after, limit=asked.limit)
    except CursorError as error:
        raise ApiProblem(422, [(error.field, error.message)]) from None
    return answer(schemas.ProviderReferralPage(referrals=[referral_out(item) for item in page.items],
                                              next_cursor=encode_cursor(page.next_position), has_more=page.more))


@bp.get("/referrals/<uuid:referral_id>")
def get_referral(referral_id: uuid.UUID) -> Response:
    return answer(referral_out(_one(referral_id)))


@bp.post("/referrals/<uuid:referral_id>/transitions")
def move_referral(referral_id: uuid.UUID) -> Response:
    _one(referral_id)  # 404 before the body: another provider's id tells nothing
    # The provider's own key row, in provider scope (see ProviderIdempotencyKey).
    taken = take_key(ProviderIdempotencyKey, {"provider_id": _provider().id, "token_id": _token().id})
    if isinstance(taken, Response):
        return taken
    asked = body(schemas.ProviderMoveIn)
    try:
        moved = services.move(_provider().id, referral_id, State(asked.to), reason=asked.reason,
                              expected=asked.expected_state, token=_token(),
                              session=SessionDetails(asked.session.starts_at, asked.session.venue)
                              if asked.session else None, session_id=asked.session_id)
    except services.MoveError as error:
        raise ApiProblem(409, [(error.field, error.message)]) from None
    except CaseError as error:
        raise ApiProblem(422, [(FIELDS.get(error.field, error.field), error.message)]) from None
    if moved is None:
        raise ApiProblem(404, [(None, NOT_FOUND)])
    # Read again inside the transaction, with the move flushed: the answer is
    # built before the commit, and nothing is read after it.
    db.session.expire(moved.referral)
    item = _one(referral_id)
    return keep_answer(answer(schemas.ProviderMoveRecord(transition=transition_out(item.transitions[-1]),
                                                          referral=referral_out(item)), 201), taken)
