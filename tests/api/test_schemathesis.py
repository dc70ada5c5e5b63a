"""Property-based: requests made from the OpenAPI document, valid and invalid,
sent to the app in process with a good token of the `world` fixture's force A,
or, for the provider operations, of Cranstoun, which has referrals in two forces.

No answer may be a server error, and every answer must be one the document
lists, with its content type and body schema; invalid requests must be
refused (4xx). The one built-in check left out is "positive data
acceptance": a request that fits the schema can still break a case rule no
JSON Schema can state (an offence date in the future, a date of birth after
it), and that gets the documented 422.

The document is the app's own (``openapi.document(app)``, what
/api/v1/openapi.json serves; test_openapi.py holds the two equal).
It is loaded here rather than through schemathesis's pytest fixture loader,
which does not run under pytest 9.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings

from diversion import create_app
from diversion.jsonapi import openapi
from tests.api.conftest import bearer, make_token, user_dealer
from tests.conftest import World, started_today
from tests.providers.conftest import build_providers, provider_token

MAX_EXAMPLES = 25
CONFIG = schemathesis.Config.from_dict({
    "seed": 20261124,  # the same requests on every run: a failure can be replayed
    "generation": {"max-examples": MAX_EXAMPLES},
    "checks": {"positive_data_acceptance": {"enabled": False}},
})
# The document of an app as the suite makes them (it depends on the code, not the database).
schema = schemathesis.openapi.from_dict(
    openapi.document(create_app({"ENV_NAME": "test", "SQLALCHEMY_DATABASE_URI": "sqlite://"})), config=CONFIG)


PROVIDER_PATHS = "/api/v1/provider/"


@pytest.fixture
def fuzz_tokens(app: Flask, world: World) -> dict[str, str]:
    providers = build_providers(app, world)
    return {"force": make_token(app, world.a, "Fuzzing"), "provider": provider_token(app, providers.p1, "Fuzzing")}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_the_api_keeps_to_its_document(case: schemathesis.Case, app: Flask, fuzz_tokens: dict[str, str]) -> None:
    # This test's app: the checks that send a request again (without the token, say) send it there too.
    case.operation.schema.app = app
    token = fuzz_tokens["provider" if case.path.startswith(PROVIDER_PATHS) else "force"]
    case.call_and_validate(app=app, headers=bearer(token))


def test_a_whole_referral_answers_as_documented(
    client: FlaskClient, world: World, b_token: str, checkpoint_offering: uuid.UUID,
) -> None:
    """What fuzzing seldom reaches (an existing decision, referral, transition),
    checked against the document the same way, errors included."""
    auth = bearer(b_token)
    answers = []

    def call(method: str, template: str, path: str, body: Any = None, query: str = "") -> Any:
        response = client.open(f"{path}{query}", method=method, json=body, headers=auth)
        operation = schema[template][method]
        assert operation.responses.find_by_status_code(response.status_code) is not None, response.status_code
        operation.validate_response(response)  # raises when the body does not fit
        answers.append((method, template, response.status_code))
        return response.json

    recorded = call("POST", "/api/v1/encounters", "/api/v1/encounters", user_dealer())
    encounter, decision = recorded["encounter"]["id"], recorded["decision"]["id"]
    call("GET", "/api/v1/encounters/{encounter_id}", f"/api/v1/encounters/{encounter}")
    call("GET", "/api/v1/decisions/{decision_id}", f"/api/v1/decisions/{decision}")
    call("GET", "/api/v1/offerings", "/api/v1/offerings")
    refer = "/api/v1/decisions/{decision_id}/referrals"
    referral = call("POST", refer, f"/api/v1/decisions/{decision}/referrals",
                    {"offering_id": str(checkpoint_offering)})["id"]
    call("POST", refer, f"/api/v1/decisions/{decision}/referrals", {"offering_id": str(checkpoint_offering)})
    move = "/api/v1/referrals/{referral_id}/transitions"
    session = {"starts_at": (started_today()).isoformat(), "venue": "Navigator's office"}
    for to in ("accepted", "booked", "attended", "completed", "not_completed"):
        call("POST", move, f"/api/v1/referrals/{referral}/transitions",
             {"to": to, "reason": "as planned", **({"session": session} if to == "booked" else {})})
    call("GET", "/api/v1/referrals/{referral_id}", f"/api/v1/referrals/{referral}")
    call("GET", "/api/v1/referrals", "/api/v1/referrals", query="?state=not_completed&limit=1")
    call("GET", "/api/v1/referrals", "/api/v1/referrals", query="?limit=many")
    assert [status for *_, status in answers] == [201, 200, 200, 200, 201, 422, 201, 201, 201, 422, 201, 200, 200, 422]


def test_a_providers_work_answers_as_documented(app: Flask, client: FlaskClient, world: World) -> None:
    """The provider operations with real referrals: the feed, one referral, moves and refusals."""
    providers = build_providers(app, world)
    auth = bearer(provider_token(app, providers.p1))
    answers = []

    def call(method: str, template: str, path: str, body: Any = None) -> Any:
        response = client.open(path, method=method, json=body, headers=auth)
        operation = schema[template][method]
        assert operation.responses.find_by_status_code(response.status_code) is not None, response.status_code
        operation.validate_response(response)
        answers.append(response.status_code)
        return response.json

    feed = call("GET", "/api/v1/provider/referrals", "/api/v1/provider/referrals?limit=1")
    call("GET", "/api/v1/provider/referrals", f"/api/v1/provider/referrals?cursor={feed['next_cursor']}")
    call("GET", "/api/v1/provider/referrals", "/api/v1/provider/referrals?cursor=nonsense")
    one = "/api/v1/provider/referrals/{referral_id}"
    referral = providers.referrals["a1"]
    call("GET", one, f"/api/v1/provider/referrals/{referral}")
    call("GET", one, f"/api/v1/provider/referrals/{providers.referrals['b2']}")  # P2's: 404
    move = "/api/v1/provider/referrals/{referral_id}/transitions"
    path = f"/api/v1/provider/referrals/{referral}/transitions"
    call("POST", move, path, {"to": "completed"})
    call("POST", move, path, {"to": "accepted", "expected_state": "offered"})
    call("POST", move, path, {"to": "not_completed"})
    call("POST", move, path, {"to": "not_completed", "reason": "Did not attend"})
    assert answers == [200, 200, 422, 200, 404, 409, 201, 422, 201]
