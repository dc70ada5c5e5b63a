"""The provider API's part of the OpenAPI document (``jsonapi.openapi``), webhooks included."""

from __future__ import annotations

from typing import Any

from diversion.jsonapi.http import PREFIX
from diversion.jsonapi.openapi import (
    JSON,
    Names,
    Part,
    creating,
    errors,
    ok,
    operation,
    path_id,
    ref_to,
)
from diversion.providers import schemas
from diversion.providers.schemas import MAX_FEED_PAGE

PROVIDER_DESCRIPTION = """\
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
declines, books, records attendance (`attended`, or `missed` for a session the
person did not attend: once per session), completes, or ends a referral as not
completed (with a reason). After a missed session the referral is `missed`,
waiting for another session to be booked (`to: booked`), until the person has
missed more sessions than the force allows or the deadline comes: then the miss
ends it as `not_completed`. A move the referral's state does
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


PROVIDER_SECURITY: list[dict[str, list[str]]] = [{"providerBearer": []}]


def _paths(names: Names) -> dict[str, Any]:
    referral = path_id("referral_id", "referral")
    feed_parameters = [
        {"name": "cursor", "in": "query", "required": False,
         "description": "The next_cursor of the last page; leave out to start from the beginning.",
         "schema": {"type": "string", "maxLength": 64}},
        {"name": "limit", "in": "query", "required": False, "description": "How many referrals per page.",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_FEED_PAGE,
                    "default": schemas.FeedQuery.model_fields["limit"].default}},
    ]
    return {
        f"{PREFIX}/provider/referrals": {"get": operation(
            "providerFeed", "New and changed referrals of the provider, from every force it serves", "Providers",
            {**ok("200", "A page of the feed.", names[schemas.ProviderReferralPage]),
             **errors("ProviderUnauthorized", "Unprocessable")},
            description="Oldest change first; a referral changed several times appears once, as it is now. "
                        "A cursor the feed did not give out gets 422.",
            parameters=feed_parameters, security=PROVIDER_SECURITY)},
        f"{PREFIX}/provider/referrals/{{referral_id}}": {"get": operation(
            "providerGetReferral", "One of the provider's referrals, with the person's contact details",
            "Providers",
            {**ok("200", "The referral.", names[schemas.ProviderReferralOut]),
             **errors("ProviderUnauthorized", "ProviderNotFound")},
            parameters=[referral], security=PROVIDER_SECURITY)},
        f"{PREFIX}/provider/referrals/{{referral_id}}/transitions": {"post": creating(
            "providerMoveReferral", "Move one of the provider's referrals on", "Providers",
            ("Moved.", names[schemas.ProviderMoveRecord]), names[schemas.ProviderMoveIn],
            refusals=errors("ProviderUnauthorized", "ProviderNotFound", "Conflict", "TooLarge", "Unprocessable"),
            path=(referral,),
            description="409 for a move the referral's state does not allow, completion before every session "
                        "is attended, or a referral no longer in `expected_state`; 422 for a bad body or "
                        "ending it without a reason.",
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


def _webhooks(names: Names) -> dict[str, Any]:
    return {
        "referralCreated": _webhook("referral.created", "A referral was sent to the provider",
                                    names[schemas.WebhookEvent]),
        "referralChanged": _webhook("referral.changed", "One of the provider's referrals changed",
                                    names[schemas.WebhookEvent]),
    }


PART = Part(
    name="provider",
    requests=(schemas.ProviderMoveIn, schemas.WebhookEvent),
    responses=(schemas.ProviderReferralOut, schemas.ProviderReferralPage, schemas.ProviderMoveRecord),
    paths=_paths,
    webhooks=_webhooks,
    description=PROVIDER_DESCRIPTION,
    tags=("Providers",),
    security_schemes={"providerBearer": {
        "type": "http", "scheme": "bearer",
        "description": "A provider token (dvp.…) made by a provider admin on the provider's Integrations page."}},
)
