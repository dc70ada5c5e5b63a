"""Idempotency-Key on the force API's creating calls: the same request again is done once and
answered as before; another request under the same key is refused; keys are per token and last 24 hours."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select, text
from werkzeug.test import TestResponse

from diversion.cases.models import Encounter, Referral
from diversion.cli import main
from diversion.db import utcnow
from diversion.extensions import db
from diversion.jsonapi.idempotency import IdempotencyKey
from diversion.tenancy.context import scoped
from tests import databases
from tests.api.conftest import bearer, make_token, user_dealer
from tests.conftest import World, steps_of
from tests.databases import postgres_admin_url

requires_postgresql = pytest.mark.skipif(postgres_admin_url() is None,
                                         reason="PostgreSQL only: set TEST_DATABASE_URL to run")
KEY = "Idempotency-Key"


def _count(app: Flask, world: World, model: type[Any]) -> int:
    with app.app_context(), scoped(world.b.id):
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def _post(client: FlaskClient, token: str, path: str, body: Any, key: str | None) -> TestResponse:
    headers = bearer(token) | ({KEY: key} if key is not None else {})
    return client.post(path, json=body, headers=headers)


def _age(database: databases.TestDatabase, *, hours: int = 25) -> None:
    """Make every kept key older than it is (as the superuser, past row-level security)."""
    engine = create_engine(database.inspector_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE idempotency_keys SET expires_at = :at"),
                               {"at": utcnow() - timedelta(hours=hours - 24)})
    finally:
        engine.dispose()


def test_the_same_intake_again_is_recorded_once_and_answered_as_before(
    app: Flask, client: FlaskClient, world: World, b_token: str,
) -> None:
    first = _post(client, b_token, "/api/v1/encounters", user_dealer(), "intake-0001")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    # Sent again, re-serialised in another key order: the same request.
    again = client.post("/api/v1/encounters", data=_reordered(user_dealer()), content_type="application/json",
                        headers=bearer(b_token) | {KEY: "intake-0001"})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert again.headers["Location"] == first.headers["Location"]
    assert _count(app, world, Encounter) == 1
    # Without a key, a request is a new one each time.
    assert _post(client, b_token, "/api/v1/encounters", user_dealer(), None).status_code == 201
    assert _count(app, world, Encounter) == 2


def _reordered(body: dict[str, Any]) -> str:
    import json

    return json.dumps(dict(reversed(list(body.items()))), indent=2)


def test_another_request_under_the_same_key_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, world: World, b_token: str,
) -> None:
    assert _post(client, b_token, "/api/v1/encounters", user_dealer(), "intake-0002").status_code == 201
    other = _post(client, b_token, "/api/v1/encounters", user_dealer(ethnicity="A1"), "intake-0002")
    assert other.status_code == 422
    ((field, message),) = [(e["field"], e["message"]) for e in other.json["errors"]]
    assert field == KEY
    assert "another request" in message
    assert _count(app, world, Encounter) == 1


@pytest.mark.parametrize("key", ["", "has space", "é-not-ascii", "x" * 256, "tab\there"])
def test_a_malformed_key_is_refused(app: Flask, client: FlaskClient, world: World, b_token: str,
                                    key: str) -> None:
    response = client.post("/api/v1/encounters", json=user_dealer(),
                           headers=[("Authorization", f"Bearer {b_token}"), (KEY, key.encode().decode("latin-1"))])
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == KEY
    assert _count(app, world, Encounter) == 0


def test_a_refused_request_keeps_no_key(app: Flask, client: FlaskClient, world: World, b_token: str) -> None:
    refused = _post(client, b_token, "/api/v1/encounters", user_dealer(ethnicity="X1"), "intake-0003")
    assert refused.status_code == 422
    corrected = _post(client, b_token, "/api/v1/encounters", user_dealer(), "intake-0003")
    assert corrected.status_code == 201
    assert "Idempotent-Replayed" not in corrected.headers
    assert _count(app, world, Encounter) == 1


def test_keys_are_per_token(app: Flask, client: FlaskClient, world: World, b_token: str) -> None:
    other_token = make_token(app, world.b, "Another system")
    first = _post(client, b_token, "/api/v1/encounters", user_dealer(), "shared-key")
    second = _post(client, other_token, "/api/v1/encounters", user_dealer(), "shared-key")
    assert (first.status_code, second.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in second.headers
    assert second.json["encounter"]["id"] != first.json["encounter"]["id"]
    assert _count(app, world, Encounter) == 2
    with app.app_context(), scoped(world.b.id):
        assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 2


def test_a_key_is_forgotten_after_24_hours(
    app: Flask, client: FlaskClient, world: World, b_token: str, database: databases.TestDatabase,
) -> None:
    assert _post(client, b_token, "/api/v1/encounters", user_dealer(), "old-key").status_code == 201
    assert _post(client, b_token, "/api/v1/encounters", user_dealer(), "older-key").status_code == 201
    _age(database)
    # The same key again: a new request, done again.
    again = _post(client, b_token, "/api/v1/encounters", user_dealer(), "old-key")
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert _count(app, world, Encounter) == 3
    with app.app_context(), scoped(world.b.id):
        # Taking a key removed the token's expired ones; the key taken afresh stays.
        assert db.session.scalars(select(IdempotencyKey.key)).all() == ["old-key"]
    _age(database)
    result = CliRunner().invoke(main, ["api", "forget-keys"], obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output
    assert "1 expired idempotency keys removed." in result.output
    assert _count(app, world, IdempotencyKey) == 0


def test_referrals_and_moves_are_done_once_per_key(
    app: Flask, client: FlaskClient, world: World, b_token: str, checkpoint_offering: uuid.UUID,
) -> None:
    decision = _post(client, b_token, "/api/v1/encounters", user_dealer(), None).json["decision"]["id"]
    refer = f"/api/v1/decisions/{decision}/referrals"
    body = {"offering_id": str(checkpoint_offering)}
    offered = _post(client, b_token, refer, body, "refer-1")
    replayed = _post(client, b_token, refer, body, "refer-1")
    assert (offered.status_code, replayed.status_code) == (201, 201)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json == offered.json
    assert [(t["from"], t["to"]) for t in offered.json["transitions"]] == [(None, "offered")]
    assert _count(app, world, Referral) == 1

    move = f"/api/v1/referrals/{offered.json['id']}/transitions"
    accepted = _post(client, b_token, move, {"to": "accepted"}, "move-1")
    # Without the key, accepting twice is refused (the referral is accepted already); with it, replayed.
    accepted_again = _post(client, b_token, move, {"to": "accepted"}, "move-1")
    assert (accepted.status_code, accepted_again.status_code) == (201, 201)
    assert accepted_again.json == accepted.json
    assert accepted.json["referral"]["state"] == "accepted"
    assert [t["to"] for t in accepted.json["referral"]["transitions"]] == ["offered", "accepted"]
    with app.app_context(), scoped(world.b.id):
        assert len(steps_of(uuid.UUID(offered.json["id"]))) == 2
    assert _post(client, b_token, move, {"to": "accepted"}, None).status_code == 422


@requires_postgresql
@pytest.mark.postgres
def test_two_requests_at_once_with_the_same_key_give_one_effect(
    app: Flask, world: World, b_token: str, database: databases.TestDatabase,
) -> None:
    """The first request holds the key and is held up (a lock on the audit log); the second, sent
    meanwhile with the same key, waits on the key's unique index; when the first commits, the second
    replays its answer."""
    superuser = create_engine(database.inspector_url)
    answers: dict[str, TestResponse] = {}

    def send(name: str) -> threading.Thread:
        def run() -> None:
            answers[name] = _post(app.test_client(), b_token, "/api/v1/encounters", user_dealer(), "together")
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    try:
        with superuser.connect() as holder:
            holder.execute(text("LOCK TABLE audit_events IN EXCLUSIVE MODE"))
            first = send("first")
            _wait_until(superuser, lambda waiting: waiting >= 1)
            second = send("second")
            _wait_until(superuser, lambda waiting: waiting >= 2)
            holder.rollback()  # let go of the lock
        first.join(timeout=60)
        second.join(timeout=60)
    finally:
        superuser.dispose()
    assert sorted(answer.status_code for answer in answers.values()) == [201, 201]
    assert answers["first"].json == answers["second"].json
    assert [answer.headers.get("Idempotent-Replayed") for answer in answers.values()].count("true") == 1
    assert _count(app, world, Encounter) == 1


def _wait_until(engine: Any, enough: Callable[[int], bool]) -> None:
    """Until enough of the app's connections wait on a lock (polled, bounded; not a timing)."""
    for _ in range(2000):
        with engine.connect() as connection:
            waiting = connection.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'diversion_app' "
                "AND wait_event_type = 'Lock'"))
        if enough(int(waiting or 0)):
            return
        threading.Event().wait(0.01)
    pytest.fail("the requests never waited on a lock")
