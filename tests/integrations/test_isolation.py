"""Isolation through the API: a provider sees and changes its own referrals, from
the forces it serves, and nothing else (SQLite, and PostgreSQL with row-level security).

Cranstoun (P1) serves West Midlands and Durham; Checkpoint Navigators (P2)
serves Durham only. Durham has a referral to each.
"""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient

from diversion.cases.models import State
from tests.api.conftest import make_token
from tests.conftest import World
from tests.integrations.conftest import Providers, bearer, ids, state_of

FEED = "/api/v1/provider/referrals"
NOT_FOUND = {"errors": [{"field": None, "message": "This provider has no such referral."}]}


def test_the_feed_of_each_provider_holds_its_own_referrals_only(
    client: FlaskClient, providers: Providers, p1_token: str, p2_token: str,
) -> None:
    p1 = client.get(FEED, headers=bearer(p1_token)).json
    p2 = client.get(FEED, headers=bearer(p2_token)).json
    assert set(ids(p1)) == {str(providers.referrals["a1"]), str(providers.referrals["b1"])}
    assert ids(p2) == [str(providers.referrals["b2"])]
    assert "Carter" not in str(p1)
    assert "Archer" not in str(p2)
    assert "Baker" not in str(p2)


@pytest.mark.parametrize(("who", "whose"), [
    ("p2", "b1"),  # same force, other provider
    ("p1", "b2"),  # same force, other provider
    ("p2", "a1"),  # a force P2 does not serve
])
def test_another_providers_referral_is_404_to_read_and_to_move(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str, p2_token: str,
    who: str, whose: str,
) -> None:
    token = {"p1": p1_token, "p2": p2_token}[who]
    referral = providers.referrals[whose]
    force = world.a if whose.startswith("a") else world.b
    read = client.get(f"{FEED}/{referral}", headers=bearer(token))
    assert (read.status_code, read.json) == (404, NOT_FOUND)
    moved = client.post(f"{FEED}/{referral}/transitions", json={"to": "accepted"}, headers=bearer(token))
    assert (moved.status_code, moved.json) == (404, NOT_FOUND)
    # The same answer as for an id that does not exist: nothing tells the referral is there.
    unknown = client.post(f"{FEED}/{uuid.uuid4()}/transitions", json={"to": "accepted"}, headers=bearer(token))
    assert (unknown.status_code, unknown.json) == (404, NOT_FOUND)
    assert state_of(app, force, referral) is State.OFFERED


def test_a_force_token_does_not_open_the_provider_api_nor_a_provider_token_the_force_api(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
) -> None:
    force_token = make_token(app, world.b)
    for url in (FEED, f"{FEED}/{providers.referrals['b1']}"):
        refused = client.get(url, headers=bearer(force_token))
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    refused = client.post(f"{FEED}/{providers.referrals['b1']}/transitions", json={"to": "accepted"},
                          headers=bearer(force_token))
    assert refused.status_code == 401
    for url in ("/api/v1/referrals", f"/api/v1/referrals/{providers.referrals['b1']}", "/api/v1/offerings"):
        assert client.get(url, headers=bearer(p1_token)).status_code == 401
    assert state_of(app, world.b, providers.referrals["b1"]) is State.OFFERED


@pytest.mark.parametrize("header", [
    None, "Bearer", "Bearer dvp.cranstoun", "Basic abc", "Bearer dvp.cranstoun.00000000.secret",
    "Bearer dvp.no-such-provider.00000000.secret",
])
def test_no_good_provider_token_is_401(client: FlaskClient, providers: Providers, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get(FEED, headers=headers)
    assert response.status_code == 401
    assert response.json == {"errors": [{"field": None, "message": "Send a valid API token: "
                                                                   "Authorization: Bearer <token>."}]}


def test_a_token_of_another_provider_with_the_right_prefix_is_refused(
    client: FlaskClient, providers: Providers, p1_token: str, p2_token: str,
) -> None:
    """The slug picks the provider: P2's secret under P1's name opens nothing."""
    _scheme, _slug, prefix, secret = p2_token.split(".")
    forged = f"dvp.cranstoun.{prefix}.{secret}"
    assert client.get(FEED, headers=bearer(forged)).status_code == 401
    assert client.get(FEED, headers=bearer(p1_token)).status_code == 200
