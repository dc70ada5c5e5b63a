"""Isolation through the API: a provider sees and changes its own referrals, from
the forces it serves, and nothing else (SQLite, and PostgreSQL with row-level security);
and a provider's own rows (token hashes, webhook endpoint and secret) are reached
in its scope only, by the ORM guard and, in raw SQL as the app role, by PostgreSQL.

Cranstoun (P1) serves West Midlands and Durham; Checkpoint Navigators (P2)
serves Durham only. Durham has a referral to each.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg.errors
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from diversion.accounts.access import SYSTEM
from diversion.cases.models import State
from diversion.catalogue.models import Provider
from diversion.extensions import db
from diversion.jsonapi.tokens import ProviderToken
from diversion.providers import webhooks
from diversion.providers.models import WebhookEndpoint
from diversion.tenancy.context import provider_scoped, scoped
from diversion.tenancy.guard import OutsideProviderScope
from tests import databases
from tests.api.conftest import make_token
from tests.conftest import World
from tests.databases import postgres_admin_url
from tests.providers.conftest import Providers, bearer, ids, state_of

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


# ---------------------------------------------------------------- a provider's own rows
# Tokens (their hashes) and the webhook endpoint with its sealed secret are the
# provider's alone: reached with that provider in scope, and never without one.

SECRET_TABLES = ("provider_tokens", "provider_webhooks")


@pytest.fixture
def secrets_of_both(app: Flask, providers: Providers, p1_token: str, p2_token: str) -> dict[str, dict[str, set[str]]]:
    """Each provider's token and endpoint ids, by table; both providers have both."""
    found: dict[str, dict[str, set[str]]] = {}
    with app.app_context():
        for key, ref in (("p1", providers.p1), ("p2", providers.p2)):
            provider = db.session.get(Provider, ref.id)
            assert provider is not None
            webhooks.set_endpoint(provider, url=f"https://example.org/{key}", actor=SYSTEM)
            db.session.commit()
            with provider_scoped(ref.id):
                found[key] = {
                    "provider_tokens": {str(row) for row in db.session.scalars(select(ProviderToken.id))},
                    "provider_webhooks": {str(row) for row in db.session.scalars(select(WebhookEndpoint.id))},
                }
    assert all(found[key][table] for key in found for table in SECRET_TABLES)
    return found


def test_the_orm_guard_keeps_provider_secrets_to_their_provider(
    app: Flask, world: World, providers: Providers, secrets_of_both: dict[str, dict[str, set[str]]],
) -> None:
    with app.app_context():
        for statement in (select(ProviderToken), select(WebhookEndpoint), select(func.count(ProviderToken.id)),
                          select(func.count()).select_from(WebhookEndpoint)):
            with pytest.raises(OutsideProviderScope):  # no provider in scope: refused, not empty
                db.session.execute(statement)
            db.session.rollback()
            with scoped(world.b.id), pytest.raises(OutsideProviderScope):  # a force is not a provider
                db.session.execute(statement)
            db.session.rollback()
        with provider_scoped(providers.p2.id):
            assert {str(t.id) for t in db.session.scalars(select(ProviderToken))} == \
                secrets_of_both["p2"]["provider_tokens"]
            assert {str(e.id) for e in db.session.scalars(select(WebhookEndpoint))} == \
                secrets_of_both["p2"]["provider_webhooks"]
            p1_token_id = uuid.UUID(next(iter(secrets_of_both["p1"]["provider_tokens"])))
            assert db.session.get(ProviderToken, p1_token_id) is None
        # A row of P1 loaded in P1's scope cannot be changed, nor a new one made, in P2's.
        with provider_scoped(providers.p1.id):
            token = db.session.get(ProviderToken, p1_token_id)
            assert token is not None
        with provider_scoped(providers.p2.id):
            token.name = "Taken over"
            with pytest.raises(OutsideProviderScope):
                db.session.flush()
            db.session.rollback()
            db.session.add(WebhookEndpoint(provider_id=providers.p1.id, url="https://example.org/x",
                                           secret_sealed="x"))
            with pytest.raises(OutsideProviderScope):
                db.session.flush()
            db.session.rollback()
        with provider_scoped(providers.p1.id):
            token = db.session.get(ProviderToken, p1_token_id)
            assert token is not None
            assert token.name == "Case system"


requires_postgresql = pytest.mark.skipif(postgres_admin_url() is None,
                                         reason="PostgreSQL only (row-level security): set TEST_DATABASE_URL")
SCOPE = text("SELECT set_config('app.tenant_id', :tenant, true), set_config('app.provider_id', :provider, true)")


@pytest.fixture
def app_role(database: databases.TestDatabase) -> Iterator[Engine]:
    """The app's own role, in raw SQL: no Flask, no ORM guard, only row-level security."""
    engine = create_engine(database.app_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


@contextmanager
def as_app(engine: Engine, *, provider: int | None = None, tenant: int | None = None) -> Iterator[Connection]:
    with engine.begin() as connection:
        assert connection.scalar(text("SELECT current_user")) == databases.APP_ROLE
        connection.execute(SCOPE, {"tenant": "" if tenant is None else str(tenant),
                                   "provider": "" if provider is None else str(provider)})
        yield connection


def _ids(connection: Connection, table: str) -> set[str]:
    return {str(row[0]) for row in connection.execute(text(f"SELECT id FROM {table}"))}


@requires_postgresql
@pytest.mark.postgres
def test_row_level_security_shows_provider_secrets_to_their_provider_only(
    app_role: Engine, world: World, providers: Providers, secrets_of_both: dict[str, dict[str, set[str]]],
) -> None:
    for table in SECRET_TABLES:
        with as_app(app_role, provider=providers.p1.id) as connection:  # the rows are there
            assert _ids(connection, table) == secrets_of_both["p1"][table]
        with as_app(app_role, provider=providers.p2.id) as connection:
            assert _ids(connection, table) == secrets_of_both["p2"][table]
            assert connection.scalar(text(f"SELECT count(*) FROM {table} WHERE provider_id = :p1"),
                                     {"p1": providers.p1.id}) == 0
        with as_app(app_role) as connection:  # no scope at all
            assert _ids(connection, table) == set()
        with as_app(app_role, tenant=world.a.id) as connection:  # a force, no provider
            assert _ids(connection, table) == set()
        with as_app(app_role, tenant=world.b.id, provider=providers.p2.id) as connection:  # a force cannot widen it
            assert _ids(connection, table) == secrets_of_both["p2"][table]
    with as_app(app_role, provider=providers.p2.id) as connection:
        assert connection.execute(text("SELECT secret_hash FROM provider_tokens WHERE provider_id = :p1"),
                                  {"p1": providers.p1.id}).all() == []


@requires_postgresql
@pytest.mark.postgres
@pytest.mark.parametrize("scope", ["other provider", "no scope", "force only"])
def test_row_level_security_refuses_writes_to_another_providers_secrets(
    app_role: Engine, world: World, providers: Providers, secrets_of_both: dict[str, dict[str, set[str]]],
    scope: str,
) -> None:
    where = {"other provider": {"provider": providers.p2.id}, "no scope": {},
             "force only": {"tenant": world.a.id}}[scope]
    p1 = {"p1": providers.p1.id}
    with as_app(app_role, **where) as connection:
        assert connection.execute(text("UPDATE provider_tokens SET revoked_at = now(), name = 'x' "
                                       "WHERE provider_id = :p1"), p1).rowcount == 0
        assert connection.execute(text("UPDATE provider_webhooks SET url = 'https://attacker.example/' "
                                       "WHERE provider_id = :p1"), p1).rowcount == 0
        assert connection.execute(text("DELETE FROM provider_tokens WHERE provider_id = :p1"), p1).rowcount == 0
        assert connection.execute(text("DELETE FROM provider_webhooks WHERE provider_id = :p1"), p1).rowcount == 0
    inserts = {
        "provider_tokens": text("INSERT INTO provider_tokens (id, provider_id, name, prefix, secret_hash, created_at) "
                                "VALUES (:id, :p1, 'Planted', 'deadbeef', :hash, now())"),
        "provider_webhooks": text("INSERT INTO provider_webhooks (provider_id, url, secret_sealed, created_at, "
                                  "secret_made_at) VALUES (:p1, 'https://attacker.example/', 'x', now(), now())"),
    }
    for table, insert in inserts.items():
        # The policy is checked before the unique key on provider_webhooks: its refusal is the one seen.
        with pytest.raises(DBAPIError) as refused, as_app(app_role, **where) as connection:
            connection.execute(insert, {"id": uuid.uuid4(), "hash": "0" * 64, **p1})
        assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege), table
        assert "row-level security" in str(refused.value.orig)
    with as_app(app_role, provider=providers.p1.id) as connection:  # P1's rows as they were
        for table in SECRET_TABLES:
            assert _ids(connection, table) == secrets_of_both["p1"][table]
        assert connection.scalar(text("SELECT count(*) FROM provider_tokens WHERE revoked_at IS NOT NULL")) == 0
        assert connection.scalar(text("SELECT url FROM provider_webhooks")) == "https://example.org/p1"
    # A provider's own rows cannot be handed to another either.
    with pytest.raises(DBAPIError) as moved, as_app(app_role, provider=providers.p2.id) as connection:
        connection.execute(text("UPDATE provider_tokens SET provider_id = :p1"), p1)
    assert isinstance(moved.value.orig, psycopg.errors.InsufficientPrivilege)
