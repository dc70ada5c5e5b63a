"""Idempotency-Key on a provider's moves: once per key and token, across every force the provider serves;
the kept answers are the provider's alone and sealed."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from werkzeug.test import TestResponse

from diversion.cases.models import Referral
from diversion.extensions import db
from diversion.tenancy.context import scoped
from tests import databases
from tests.conftest import World
from tests.databases import postgres_admin_url
from tests.providers.conftest import Providers, bearer, state_of

requires_postgresql = pytest.mark.skipif(postgres_admin_url() is None,
                                         reason="PostgreSQL only: set TEST_DATABASE_URL to run")


def _move(client: FlaskClient, token: str, referral: Any, body: dict[str, Any], key: str | None) -> TestResponse:
    headers = bearer(token) | ({"Idempotency-Key": key} if key else {})
    return client.post(f"/api/v1/provider/referrals/{referral}/transitions", json=body, headers=headers)


def _steps(app: Flask, world: World) -> int:
    with app.app_context(), scoped(world.a.id):
        return sum(len(referral.steps) for referral in db.session.scalars(select(Referral)))


def test_a_move_sent_again_is_done_once_and_answered_as_before(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
) -> None:
    referral = providers.referrals["a1"]
    first = _move(client, p1_token, referral, {"to": "accepted", "expected_state": "offered"}, "move-a1")
    again = _move(client, p1_token, referral, {"expected_state": "offered", "to": "accepted"}, "move-a1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert first.json["referral"]["state"] == "accepted"
    assert [t["to"] for t in first.json["referral"]["transitions"]] == ["offered", "accepted"]
    assert first.json["transition"]["to"] == "accepted"
    assert _steps(app, world) == 2
    # Without the key the same move is refused: the referral is no longer offered.
    assert _move(client, p1_token, referral, {"to": "accepted", "expected_state": "offered"}, None).status_code == 409


def test_a_key_used_for_another_referral_is_refused_even_in_another_force(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
) -> None:
    assert _move(client, p1_token, providers.referrals["a1"], {"to": "accepted"}, "one-key").status_code == 201
    other = _move(client, p1_token, providers.referrals["b1"], {"to": "accepted"}, "one-key")
    assert other.status_code == 422
    assert other.json["errors"][0]["field"] == "Idempotency-Key"
    assert state_of(app, world.b, providers.referrals["b1"]).value == "offered"


def test_another_providers_token_has_keys_of_its_own(
    client: FlaskClient, providers: Providers, p1_token: str, p2_token: str,
) -> None:
    assert _move(client, p1_token, providers.referrals["b1"], {"to": "accepted"}, "same").status_code == 201
    mine = _move(client, p2_token, providers.referrals["b2"], {"to": "accepted"}, "same")
    assert mine.status_code == 201
    assert "Idempotent-Replayed" not in mine.headers
    assert mine.json["referral"]["id"] == str(providers.referrals["b2"])


def test_the_kept_answer_is_sealed(
    client: FlaskClient, providers: Providers, p1_token: str, database: databases.TestDatabase,
) -> None:
    answer = _move(client, p1_token, providers.referrals["a1"], {"to": "accepted"}, "sealed")
    assert answer.json["referral"]["person"]["surname"] == "Archer"
    engine = create_engine(database.inspector_url)
    try:
        with engine.connect() as connection:
            (body,) = connection.execute(text("SELECT body_sealed FROM provider_idempotency_keys")).scalars()
    finally:
        engine.dispose()
    assert "Archer" not in body
    assert "archer@example.org" not in body


@requires_postgresql
@pytest.mark.postgres
def test_only_the_provider_reaches_its_kept_answers(
    client: FlaskClient, world: World, providers: Providers, p1_token: str, database: databases.TestDatabase,
) -> None:
    assert _move(client, p1_token, providers.referrals["a1"], {"to": "accepted"}, "mine").status_code == 201
    engine = create_engine(database.app_url)  # the app's role, bound by row-level security
    try:
        for tenant, provider, seen in ((None, providers.p1.id, 1), (world.a.id, providers.p1.id, 1),
                                       (None, providers.p2.id, 0), (world.a.id, None, 0), (None, None, 0)):
            with engine.begin() as connection:
                connection.execute(text("SELECT set_config('app.tenant_id', :t, true), "
                                        "set_config('app.provider_id', :p, true)"),
                                   {"t": "" if tenant is None else str(tenant),
                                    "p": "" if provider is None else str(provider)})
                count = connection.scalar(text("SELECT count(*) FROM provider_idempotency_keys"))
                changed = connection.execute(text("UPDATE provider_idempotency_keys SET status = 500")).rowcount
                assert (count, changed) == (seen, seen), (tenant, provider)
                connection.rollback()
    finally:
        engine.dispose()
