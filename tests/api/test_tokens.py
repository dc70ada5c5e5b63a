"""API tokens: made and revoked by a force admin, hashed at rest, shown once, one force each."""

from __future__ import annotations

import hashlib
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text

from diversion.audit.models import AuditEvent
from diversion.extensions import db
from diversion.jsonapi.tokens import ApiToken
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests import databases
from tests.api.conftest import bearer, make_token, user_dealer
from tests.conftest import World, csrf_token, post_form, sign_in

TOKEN = re.compile(r'data-testid="secret">([^<]+)</textarea>')


def _make_on_the_page(client: FlaskClient, name: str) -> str:
    page = client.post("/durham/api-tokens/", data={
        "name": name, "csrf_token": csrf_token(client.get("/durham/api-tokens/").text)})
    assert page.status_code == 200, page.text[:500]
    assert page.headers["Cache-Control"] == "no-store"
    match = TOKEN.search(page.text)
    assert match, "the token is not on the page"
    return match.group(1)


def _everything_stored(database: databases.TestDatabase) -> str:
    """Every row of the token and audit tables, as one text (read past row-level security)."""
    engine = create_engine(database.inspector_url)
    try:
        with engine.connect() as connection:
            rows = [*connection.execute(text("SELECT * FROM api_tokens")),
                    *connection.execute(text("SELECT * FROM audit_events"))]
    finally:
        engine.dispose()
    return "\n".join(repr(tuple(row)) for row in rows)


def test_a_token_is_shown_once_and_only_its_hash_is_kept(
    app: Flask, client: FlaskClient, world: World, database: databases.TestDatabase,
) -> None:
    sign_in(client, world.email("b_force_admin"))
    secret = _make_on_the_page(client, "Custody records")
    scheme, slug, prefix, rest = secret.split(".")
    assert (scheme, slug) == ("dvt", "durham")
    assert len(rest) >= 40

    listing = client.get("/durham/api-tokens/").text
    assert "Custody records" in listing
    assert f'<code class="diversion-code">dvt.durham.{prefix}…</code>' in listing
    assert secret not in listing
    assert rest not in listing

    with app.app_context(), scoped(world.b.id):
        token = db.session.scalar(select(ApiToken))
        assert token is not None
        assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert token.prefix == prefix
        assert token.created_by_id == world.users["b_force_admin"].id
        assert token.last_used_at is None
        made = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "api_token.created"))
        assert made is not None
        assert made.object_id == str(token.id)
        assert made.actor_id == world.users["b_force_admin"].id
    stored = _everything_stored(database)
    assert prefix in stored
    assert rest not in stored

    # It works, once shown, and the page then says when it was last used.
    assert client.get("/api/v1/referrals", headers=bearer(secret)).status_code == 200
    with app.app_context(), scoped(world.b.id):
        assert db.session.scalar(select(ApiToken.last_used_at)) is not None
    assert "Never" not in re.search(r'data-testid="tokens">(.*?)</table>', client.get("/durham/api-tokens/").text,
                                    re.S).group(1)


def test_a_revoked_token_is_refused_at_once(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("b_force_admin"))
    secret = _make_on_the_page(client, "Custody records")
    kept = make_token(app, world.b, "Case management")
    assert client.get("/api/v1/referrals", headers=bearer(secret)).status_code == 200
    with app.app_context(), scoped(world.b.id):
        token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.name == "Custody records"))
    revoked = post_form(client, "/durham/api-tokens/", f"/durham/api-tokens/{token_id}/revoke")
    assert revoked.status_code == 302
    assert "is revoked" in client.get("/durham/api-tokens/").text

    refused = client.get("/api/v1/referrals", headers=bearer(secret))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/api/v1/encounters", json=user_dealer(), headers=bearer(secret)).status_code == 401
    assert client.get("/api/v1/referrals", headers=bearer(kept)).status_code == 200  # the others go on

    again = post_form(client, "/durham/api-tokens/", f"/durham/api-tokens/{token_id}/revoke")
    assert again.status_code == 302
    assert "already revoked" in client.get("/durham/api-tokens/").text
    with app.app_context(), scoped(world.b.id):
        token = db.session.get(ApiToken, token_id)
        assert token is not None
        assert token.revoked_at is not None
        events = db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == str(token_id))).all()
        assert sorted(events) == ["api_token.created", "api_token.revoked"]
    # A revoked token's name is free again.
    assert _make_on_the_page(client, "Custody records") != secret


def test_a_bad_name_is_refused_on_the_page(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("b_force_admin"))
    token = csrf_token(client.get("/durham/api-tokens/").text)
    blank = client.post("/durham/api-tokens/", data={"name": "  ", "csrf_token": token})
    assert blank.status_code == 400
    assert "There is a problem" in blank.text
    assert "Enter a name for the token" in blank.text
    _make_on_the_page(client, "Custody records")
    taken = client.post("/durham/api-tokens/", data={"name": "Custody records", "csrf_token": token})
    assert taken.status_code == 400
    assert "already has this name" in taken.text
    with app.app_context(), scoped(world.b.id):
        assert len(db.session.scalars(select(ApiToken)).all()) == 1


def test_only_the_force_admin_manages_tokens_and_only_their_force(
    app: Flask, client: FlaskClient, world: World,
) -> None:
    a_token = make_token(app, world.a)
    with app.app_context(), scoped(world.a.id):
        a_id = db.session.scalar(select(ApiToken.id))
    sign_in(client, world.email("b_officer"))
    assert client.get("/durham/api-tokens/").status_code == 403
    sign_in(client, world.email("b_force_admin"))
    # Force A's token, through force B's pages: no such token there.
    response = post_form(client, "/durham/api-tokens/", f"/durham/api-tokens/{a_id}/revoke")
    assert response.status_code == 404
    assert client.get("/west-midlands/api-tokens/").status_code == 404
    assert client.get("/api/v1/referrals", headers=bearer(a_token)).status_code == 200


def test_what_does_not_open_the_api(app: Flask, client: FlaskClient, world: World) -> None:
    secret = make_token(app, world.b)
    scheme, slug, prefix, rest = secret.split(".")
    refused = [
        None,
        "",
        f"Basic {secret}",
        "Bearer",
        "Bearer ",
        f"Bearer {secret} extra",
        f"Bearer {secret}x",
        f"Bearer {scheme}.{slug}.{prefix}.{rest[:-1]}",
        f"Bearer {scheme}.west-midlands.{prefix}.{rest}",  # the right secret, named for another force
        f"Bearer {scheme}.no-such-force.{prefix}.{rest}",
        f"Bearer {scheme}.{slug}.00000000.{rest}",
        f"Bearer {slug}.{prefix}.{rest}",
        f"Bearer {'x' * 5000}",
    ]
    for header in refused:
        headers = {} if header is None else {"Authorization": header}
        response = client.get("/api/v1/referrals", headers=headers)
        assert response.status_code == 401, header
        assert response.json == {"errors": [
            {"field": None, "message": "Send a valid API token: Authorization: Bearer <token>."}]}
    assert client.get("/api/v1/referrals", headers={"Authorization": f"bearer  {secret} "}).status_code == 200

    # A signed-in session, even the force admin's, opens nothing in the API.
    sign_in(client, world.email("b_force_admin"))
    assert client.get("/durham/api-tokens/").status_code == 200
    assert client.get("/api/v1/referrals").status_code == 401
    assert client.post("/api/v1/encounters", json=user_dealer()).status_code == 401


def test_a_token_of_one_force_never_reaches_another_forces_rows(
    app: Flask, client: FlaskClient, world: World, a_token: str, b_token: str,
) -> None:
    """Durham's encounter, decision and referral are 404 to West Midlands' token."""
    with app.app_context(), scoped(world.b.id):
        from diversion.catalogue.models import Offering

        offering = db.session.scalar(select(Offering.id).where(Offering.pathway == "checkpoint"))
    recorded = client.post("/api/v1/encounters", json=user_dealer(), headers=bearer(b_token)).json
    encounter, decision = recorded["encounter"]["id"], recorded["decision"]["id"]
    referral = client.post(f"/api/v1/decisions/{decision}/referrals", json={"offering_id": str(offering)},
                           headers=bearer(b_token)).json["id"]

    other = bearer(a_token)
    not_found = {"errors": [{"field": None, "message": "There is no such item in this force."}]}
    for url in (f"/api/v1/encounters/{encounter}", f"/api/v1/decisions/{decision}",
                f"/api/v1/referrals/{referral}"):
        answer = client.get(url, headers=other)
        assert answer.status_code == 404, url
        assert answer.json == not_found
    assert client.post(f"/api/v1/decisions/{decision}/referrals", json={"offering_id": str(offering)},
                       headers=other).json == not_found
    moved = client.post(f"/api/v1/referrals/{referral}/transitions", json={"to": "withdrawn", "reason": "x"},
                        headers=other)
    assert moved.status_code == 404
    assert client.get("/api/v1/referrals", headers=other).json["referrals"] == []
    assert "checkpoint" not in client.get("/api/v1/offerings", headers=other).text
    # West Midlands may not use Durham's course either: to it, that offering does not exist.
    own = client.post("/api/v1/encounters", headers=other, json=user_dealer(
        facts={"offence": "possession", "user_dealer": False, "substances": ["cannabis"], "drug_class": "B",
               "personal_use": True, "stage": "street"})).json["decision"]
    borrowed = client.post(f"/api/v1/decisions/{own['id']}/referrals", json={"offering_id": str(offering)},
                           headers=other)
    assert borrowed.status_code == 422
    assert borrowed.json["errors"][0]["field"] == "offering_id"

    # Nothing moved, and Durham still sees all of its own.
    mine = bearer(b_token)
    assert client.get(f"/api/v1/referrals/{referral}", headers=mine).json["state"] == "offered"
    assert client.get(f"/api/v1/encounters/{encounter}", headers=mine).status_code == 200


def test_row_level_security_hides_another_forces_tokens(
    app: Flask, world: World, a_token: str, b_token: str, database: databases.TestDatabase,
) -> None:
    """Below the ORM guard: raw SQL as the app sees only the force in scope (PostgreSQL),
    and the guard alone filters on SQLite."""
    with app.app_context():
        with scoped(world.b.id):
            seen = db.session.execute(text("SELECT tenant_id FROM api_tokens")).scalars().all()
            guarded = db.session.scalars(select(ApiToken.tenant_id)).all()
        db.session.rollback()
    assert guarded == [world.b.id]
    if database.is_postgresql:
        assert seen == [world.b.id]
    else:
        assert sorted(seen) == sorted([world.a.id, world.b.id])


def test_the_page_showing_a_token_once_offers_no_language_switch(app: Flask, client: FlaskClient,
                                                                   world: World) -> None:
    """Following the switch would load the page again, without the token it showed once."""
    with app.app_context():
        durham = db.session.get(Tenant, world.b.id)
        assert durham is not None
        durham.languages = ["en", "cy"]  # a force whose pages offer the switch
        db.session.commit()
    sign_in(client, world.email("b_force_admin"))
    assert 'data-testid="language-switch"' in client.get("/durham/api-tokens/").text
    page = client.post("/durham/api-tokens/", data={
        "name": "Case system", "csrf_token": csrf_token(client.get("/durham/api-tokens/").text)})
    assert TOKEN.search(page.text)
    assert 'data-testid="language-switch"' not in page.text
    panel = re.search(r'class="govuk-panel__body">\s*([^<]+?)\s*<', page.text)
    assert panel is not None
    assert panel.group(1) == "Case system"
    assert "if it is lost, revoke it and make another" in page.text
