"""The OpenAPI 3.1 document of API v1, assembled from the pydantic models.

Request schemas are the models' validation schemas and response schemas
their serialisation schemas, so the document cannot drift from what the
code accepts and returns. Every operation lists every answer it can give,
errors included.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from diversion.api import schemas
from diversion.integrations import schemas as provider_schemas
from diversion.integrations.schemas import MAX_FEED_PAGE

PREFIX = "/api/v1"
JSON = "application/json"
_REQUESTS: tuple[type[BaseModel], ...] = (schemas.EncounterIn, schemas.ReferralIn, schemas.TransitionIn,
                                          provider_schemas.ProviderMoveIn, provider_schemas.WebhookEvent)
_RESPONSES: tuple[type[BaseModel], ...] = (
    schemas.EncounterRecord, schemas.DecisionOut, schemas.ReferralOut, schemas.ReferralPage,
    schemas.TransitionRecord, schemas.OfferingList, schemas.ErrorBody,
    provider_schemas.ProviderReferralOut, provider_schemas.ProviderReferralPage, provider_schemas.ProviderMoveRecord,
)

DESCRIPTION = """\
The JSON API of the diversion platform, for a police force's own systems.

Each force admin makes bearer tokens for their force's systems on the force's
*API tokens* page; a token works for that force only and is shown once. Send it
as `Authorization: Bearer <token>`. A signed-in browser session does not open
the API.

Recording an encounter decides it at once with the force's policy in force that
day. An eligible decision can lead to a referral to a course the force offers for
the decision's pathway; the referral then moves through its lifecycle
(offered, accepted or declined, booked, attended, completed; or not completed or
withdrawn, with a reason) and the case gets the force's outcome.

Errors are JSON: `{"errors": [{"field": ..., "message": ...}]}`. Bad input gets
422 with every field at fault and changes nothing; a missing, unknown or revoked
token gets 401; an id that does not exist, or belongs to another force, gets 404;
a body over 256 KiB gets 413. When the database cannot answer for a moment
(stopped, restarting, overloaded), every operation gets 503 with `Retry-After`
(seconds): send the request again after that.

**Idempotency-Key.** The creating operations (record an encounter, refer,
move a referral, and a provider's move) take an optional header
`Idempotency-Key: <1 to 255 visible ASCII characters>`, a new one for each
new request (a UUID, say). Send the same request again with the same key,
after a timeout, a dropped connection or a 503, and it is done at most once:
if it was done, the first answer comes back as it was, marked
`Idempotent-Replayed: true`; if not, it is done now. Two requests with the
same key at the same moment give one effect. A key is kept per token for 24
hours; the same key with another request (method, path or body) gets 422
naming the header. A refused request (4xx) keeps no key: correct it and send
it again with the same key.

## For providers

A provider (a charity delivering courses for several forces) has its own
tokens, starting `dvp.`, made by its admins on the provider's *Integrations*
page. They open the `/api/v1/provider/` operations only, which show the
referrals sent to that provider from every force it serves, and nothing else:
another provider's referral, in any force, gets 404.

**The feed.** `GET /api/v1/provider/referrals` lists the referrals new or
changed since `cursor`, oldest change first, each once, as it is now; send
the `next_cursor` of each page as `cursor` on the next call (no cursor: from
the start). A cursor never skips a change, even when changes commit out of
order: the feed only shows a change once every earlier one is settled. Poll
it, or wait for a webhook. When `has_more` is true, ask again at once.

**Moves.** `POST /api/v1/provider/referrals/{referral_id}/transitions` accepts,
declines, books, records attendance (once per session), completes, or ends a
referral as not completed (with a reason). A move the referral's state does
not allow gets 409 with the moves it does allow; `expected_state` guards
against someone else having moved it first (409 too).

**Webhooks.** With an endpoint set, each new referral and each change is
POSTed to it (see `webhooks` below), signed: `Diversion-Signature: v1=<hex>`
is the HMAC-SHA256, keyed with the endpoint's secret, of
`<Diversion-Timestamp>.<raw body>`. Verify it on the raw bytes, compare in
constant time, and refuse timestamps more than 5 minutes from your clock.
Answer 2xx quickly; anything else is retried with growing waits (from 30
seconds, doubling, with jitter) up to 8 attempts. A delivery can arrive more
than once and out of order: de-duplicate on `Diversion-Delivery` (also the
body's `id`) and fetch the referral for its current state.
"""


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}


ERRORS: dict[str, dict[str, Any]] = {
    "Unauthorized": {
        **_error("No bearer token, or one that is malformed, unknown or revoked."),
        "headers": {"WWW-Authenticate": {"description": "The bearer scheme.", "schema": {"type": "string"}}},
    },
    "NotFound": _error("No such item in this force."),
    "Unprocessable": _error("The request was refused; each error names the field at fault. Nothing changed."),
    "TooLarge": _error("The body is over 256 KiB and was not read."),
    "ProviderUnauthorized": {
        **_error("No provider token, or one that is malformed, unknown or revoked (a force token does not "
                 "open these operations)."),
        "headers": {"WWW-Authenticate": {"description": "The bearer scheme.", "schema": {"type": "string"}}},
    },
    "ProviderNotFound": _error("The provider has no such referral (another provider's is not found either)."),
    "Conflict": _error("The referral's state does not allow this move now; the error says which it does. "
                       "Nothing changed."),
    "Unavailable": {
        **_error("The database cannot answer for a moment: send the request again after Retry-After seconds "
                 "(with the same Idempotency-Key, for a creating request)."),
        "headers": {"Retry-After": {"description": "Seconds to wait before trying again.",
                                    "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
    },
}
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "A new key for each new request (a UUID, say). The same request sent again with the same key "
                   "within 24 hours is done at most once, and gets the first answer again.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}
REPLAYED: dict[str, Any] = {"Idempotent-Replayed": {
    "description": "`true` when this is the kept answer of an earlier request with the same Idempotency-Key.",
    "schema": {"type": "string", "const": "true"}}}


def _ok(status: str, description: str, ref: str) -> dict[str, Any]:
    return {status: {"description": description, "content": {JSON: {"schema": ref_to(ref)}}}}


def _created(description: str, ref: str) -> dict[str, Any]:
    """201 of a creating operation, which may be the replay of an earlier answer."""
    answer = _ok("201", description, ref)
    answer["201"]["headers"] = REPLAYED
    return answer


def ref_to(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*names: str) -> dict[str, Any]:
    codes = {"Unauthorized": "401", "NotFound": "404", "TooLarge": "413", "Unprocessable": "422",
             "ProviderUnauthorized": "401", "ProviderNotFound": "404", "Conflict": "409", "Unavailable": "503"}
    # Any operation that reads the database can meet it unavailable.
    return {codes[name]: {"$ref": f"#/components/responses/{name}"} for name in (*names, "Unavailable")}


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": f"The {what}'s id.",
            "schema": {"type": "string", "format": "uuid"}}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": ref_to(name)}}}


def _operation(operation_id: str, summary: str, tag: str, responses: dict[str, Any],
               **extra: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "summary": summary, "tags": [tag], **extra, "responses": responses}


def _paths(names: dict[type[BaseModel], str]) -> dict[str, Any]:
    encounter, decision, referral = (_path_id("encounter_id", "encounter"), _path_id("decision_id", "decision"),
                                     _path_id("referral_id", "referral"))
    query = schemas.ReferralQuery.model_fields
    list_parameters = [
        {"name": "state", "in": "query", "required": False, "description": "Only referrals in this state.",
         "schema": ref_to("State")},
        {"name": "limit", "in": "query", "required": False, "description": "How many referrals per page.",
         "schema": {"type": "integer", "minimum": 1, "maximum": schemas.MAX_PAGE,
                    "default": query["limit"].default}},
        {"name": "offset", "in": "query", "required": False, "description": "How many to skip, newest first.",
         "schema": {"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0}},
    ]
    return {
        f"{PREFIX}/encounters": {"post": _operation(
            "recordEncounter", "Record an encounter and decide it", "Encounters",
            {**_created("Recorded and decided.", names[schemas.EncounterRecord]),
             **_errors("Unauthorized", "TooLarge", "Unprocessable")},
            description="Decides with the policy in force today and returns the decision with every reason.",
            parameters=[IDEMPOTENCY_KEY], requestBody=_body(names[schemas.EncounterIn]))},
        f"{PREFIX}/encounters/{{encounter_id}}": {"get": _operation(
            "getEncounter", "An encounter and its decision", "Encounters",
            {**_ok("200", "The encounter.", names[schemas.EncounterRecord]),
             **_errors("Unauthorized", "NotFound")},
            parameters=[encounter])},
        f"{PREFIX}/decisions/{{decision_id}}": {"get": _operation(
            "getDecision", "A decision with its reasons", "Decisions",
            {**_ok("200", "The decision.", names[schemas.DecisionOut]), **_errors("Unauthorized", "NotFound")},
            parameters=[decision])},
        f"{PREFIX}/decisions/{{decision_id}}/referrals": {"post": _operation(
            "referDecision", "Refer the person to a course", "Referrals",
            {**_created("Offered.", names[schemas.ReferralOut]),
             **_errors("Unauthorized", "NotFound", "TooLarge", "Unprocessable")},
            description="Refused for a decision that is not eligible (or overridden to eligible), a course the "
                        "force does not offer for the decision's pathway, and a second open referral.",
            parameters=[decision, IDEMPOTENCY_KEY], requestBody=_body(names[schemas.ReferralIn]))},
        f"{PREFIX}/referrals": {"get": _operation(
            "listReferrals", "The force's referrals, newest first", "Referrals",
            {**_ok("200", "A page of referrals.", names[schemas.ReferralPage]),
             **_errors("Unauthorized", "Unprocessable")},
            parameters=list_parameters)},
        f"{PREFIX}/referrals/{{referral_id}}": {"get": _operation(
            "getReferral", "A referral with its history", "Referrals",
            {**_ok("200", "The referral.", names[schemas.ReferralOut]), **_errors("Unauthorized", "NotFound")},
            parameters=[referral])},
        f"{PREFIX}/referrals/{{referral_id}}/transitions": {"post": _operation(
            "moveReferral", "Move a referral on", "Referrals",
            {**_created("Moved.", names[schemas.TransitionRecord]),
             **_errors("Unauthorized", "NotFound", "TooLarge", "Unprocessable")},
            description="Refused for a move the lifecycle does not allow (the error lists those it does), "
                        "completion before every session is attended, and ending without a reason.",
            parameters=[referral, IDEMPOTENCY_KEY], requestBody=_body(names[schemas.TransitionIn]))},
        f"{PREFIX}/offerings": {"get": _operation(
            "listOfferings", "The courses the force offers, by pathway", "Referrals",
            {**_ok("200", "The force's offerings.", names[schemas.OfferingList]), **_errors("Unauthorized")})},
        **_provider_paths(names),
        f"{PREFIX}/openapi.json": {"get": _operation(
            "getOpenApi", "This document", "Document",
            {"200": {"description": "The OpenAPI 3.1 document.", "content": {JSON: {"schema": {"type": "object"}}}}},
            security=[])},
    }


PROVIDER_SECURITY: list[dict[str, list[str]]] = [{"providerBearer": []}]


def _provider_paths(names: dict[type[BaseModel], str]) -> dict[str, Any]:
    referral = _path_id("referral_id", "referral")
    feed_parameters = [
        {"name": "cursor", "in": "query", "required": False,
         "description": "The next_cursor of the last page; leave out to start from the beginning.",
         "schema": {"type": "string", "maxLength": 64}},
        {"name": "limit", "in": "query", "required": False, "description": "How many referrals per page.",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_FEED_PAGE,
                    "default": provider_schemas.FeedQuery.model_fields["limit"].default}},
    ]
    return {
        f"{PREFIX}/provider/referrals": {"get": _operation(
            "providerFeed", "New and changed referrals of the provider, from every force it serves", "Providers",
            {**_ok("200", "A page of the feed.", names[provider_schemas.ProviderReferralPage]),
             **_errors("ProviderUnauthorized", "Unprocessable")},
            description="Oldest change first; a referral changed several times appears once, as it is now. "
                        "A cursor the feed did not give out gets 422.",
            parameters=feed_parameters, security=PROVIDER_SECURITY)},
        f"{PREFIX}/provider/referrals/{{referral_id}}": {"get": _operation(
            "providerGetReferral", "One of the provider's referrals, with the person's contact details",
            "Providers",
            {**_ok("200", "The referral.", names[provider_schemas.ProviderReferralOut]),
             **_errors("ProviderUnauthorized", "ProviderNotFound")},
            parameters=[referral], security=PROVIDER_SECURITY)},
        f"{PREFIX}/provider/referrals/{{referral_id}}/transitions": {"post": _operation(
            "providerMoveReferral", "Move one of the provider's referrals on", "Providers",
            {**_created("Moved.", names[provider_schemas.ProviderMoveRecord]),
             **_errors("ProviderUnauthorized", "ProviderNotFound", "Conflict", "TooLarge", "Unprocessable")},
            description="409 for a move the referral's state does not allow, completion before every session "
                        "is attended, or a referral no longer in `expected_state`; 422 for a bad body or "
                        "ending it without a reason.",
            parameters=[referral, IDEMPOTENCY_KEY], requestBody=_body(names[provider_schemas.ProviderMoveIn]),
            security=PROVIDER_SECURITY)},
    }


def _webhook(event: str, summary: str, event_schema: str) -> dict[str, Any]:
    def header(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "header", "required": True, "description": description, "schema": schema}

    return {"post": {
        "operationId": f"webhook{event.title().replace('.', '')}",
        "summary": summary, "tags": ["Providers"], "security": [],
        "description": f"Sent to the provider's endpoint with `type` `{event}`.",
        "parameters": [
            header("Diversion-Delivery", "The delivery id: the same on every retry. De-duplicate on it.",
                   {"type": "string", "format": "uuid"}),
            header("Diversion-Event", "The event type.", {"type": "string", "const": event}),
            header("Diversion-Timestamp", "When this attempt was signed, in Unix seconds.",
                   {"type": "string", "pattern": "^[0-9]+$"}),
            header("Diversion-Signature", "`v1=` and the hex HMAC-SHA256 of `<timestamp>.<raw body>`, keyed "
                                          "with the endpoint's signing secret.",
                   {"type": "string", "pattern": "^v1=[0-9a-f]{64}$"}),
        ],
        "requestBody": {"required": True, "content": {JSON: {"schema": ref_to(event_schema)}}},
        "responses": {"2XX": {"description": "Received: not sent again."},
                      "default": {"description": "Anything else, or no answer: sent again later, up to the limit."}},
    }}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document: a copy, for the caller to keep or change."""
    return copy.deepcopy(_document())


@cache
def _document() -> dict[str, Any]:
    """Built once per process: it depends on the code only."""
    keys: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in _REQUESTS),
        *((model, "serialization") for model in _RESPONSES),
    ]
    refs, top = models_json_schema(keys, ref_template="#/components/schemas/{model}")
    names = {model: refs[(model, mode)]["$ref"].rsplit("/", 1)[1] for model, mode in keys}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "diversion API", "version": "1.0.0", "description": DESCRIPTION},
        "tags": [{"name": name} for name in ("Encounters", "Decisions", "Referrals", "Providers", "Document")],
        "security": [{"bearer": []}],
        "paths": _paths(names),
        "webhooks": {
            "referralCreated": _webhook("referral.created", "A referral was sent to the provider",
                                        names[provider_schemas.WebhookEvent]),
            "referralChanged": _webhook("referral.changed", "One of the provider's referrals changed",
                                        names[provider_schemas.WebhookEvent]),
        },
        "components": {
            "schemas": top["$defs"],
            "responses": ERRORS,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "A token made by the force admin on the force's API tokens page."},
                "providerBearer": {
                    "type": "http", "scheme": "bearer",
                    "description": "A provider token (dvp.…) made by a provider admin on the provider's "
                                   "Integrations page."}},
        },
    }
