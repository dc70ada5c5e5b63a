"""Provider tokens and the webhook endpoint, managed by the provider's admins on /provider/integrations."""

from __future__ import annotations

import hashlib
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text

from diversion.accounts.models import ProviderRole
from diversion.extensions import db
from diversion.jsonapi.tokens import ProviderToken
from diversion.providers.models import WebhookEndpoint
from diversion.tenancy.context import provider_scoped
from tests import databases
from tests.conftest import World, csrf_token, sign_in
from tests.providers.conftest import Providers, add_provider_member, bearer, user_ref

PAGE = "/provider/integrations/"
SECRET = re.compile(r'data-testid="secret">([^<]+)</textarea>')


def _post(client: FlaskClient, url: str, data: dict[str, str] | None = None):
    return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client.get(PAGE).text)})


def _shown_secret(page) -> str:
    assert page.status_code == 200, page.text[:500]
    assert page.headers["Cache-Control"] == "no-store"
    match = SECRET.search(page.text)
    assert match, "no secret on the page"
    return match.group(1)


def _admin(app: Flask, client: FlaskClient, world: World, providers: Providers) -> None:
    add_provider_member(app, user_ref(app, "provider_staff", world), providers.p1, ProviderRole.ADMIN)
    assert sign_in(client, world.email("provider_staff")).status_code == 302


def _stored(database: databases.TestDatabase) -> str:
    engine = create_engine(database.inspector_url)
    try:
        with engine.connect() as connection:
            rows = [*connection.execute(text("SELECT * FROM provider_tokens")),
                    *connection.execute(text("SELECT * FROM provider_webhooks")),
                    *connection.execute(text("SELECT * FROM audit_events"))]
    finally:
        engine.dispose()
    return "\n".join(repr(tuple(row)) for row in rows)


def test_an_admin_makes_a_token_shown_once_kept_as_a_hash_and_revokes_it(
    app: Flask, client: FlaskClient, world: World, providers: Providers, database: databases.TestDatabase,
) -> None:
    _admin(app, client, world, providers)
    token = _shown_secret(_post(client, f"{PAGE}tokens", {"token-name": "Case management"}))
    assert re.fullmatch(r"dvp\.cranstoun\.[0-9a-f]{8}\.[A-Za-z0-9_-]{43}", token)
    listed = client.get(PAGE).text
    assert "Case management" in listed
    assert token.rsplit(".", 1)[0] in listed
    assert token not in listed
    stored = _stored(database)
    assert token not in stored
    assert token.rsplit(".", 1)[1] not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    api = app.test_client()
    assert api.get("/api/v1/provider/referrals", headers=bearer(token)).status_code == 200
    with app.app_context(), provider_scoped(providers.p1.id):
        row = db.session.scalar(select(ProviderToken))
        assert row is not None
        assert row.last_used_at is not None
        token_id = row.id
    asked = client.get(f"{PAGE}tokens/{token_id}/revoke")  # the list links to a question, which changes nothing
    assert asked.status_code == 200
    assert "Revoke the token “Case management”?" in asked.text
    assert api.get("/api/v1/provider/referrals", headers=bearer(token)).status_code == 200
    assert _post(client, f"{PAGE}tokens/{token_id}/revoke").status_code == 302
    assert api.get("/api/v1/provider/referrals", headers=bearer(token)).status_code == 401
    assert "Revoked" in client.get(PAGE).text
    assert client.get(f"{PAGE}tokens/{token_id}/revoke").status_code == 404  # nothing left to ask
    assert _post(client, f"{PAGE}tokens/{token_id}/revoke").status_code == 302  # refused, flashed
    assert "already revoked" in client.get(PAGE).text


def test_the_token_page_names_the_token_says_what_the_forces_says_and_offers_no_switch(
    app: Flask, client: FlaskClient, world: World, providers: Providers,
) -> None:
    _admin(app, client, world, providers)
    page = _post(client, f"{PAGE}tokens", {"token-name": "Case management"})
    _shown_secret(page)
    panel = re.search(r'class="govuk-panel__body">\s*([^<]+?)\s*<', page.text)
    assert panel is not None
    assert panel.group(1) == "Case management"
    assert "Copy the token now and keep it in the system’s secret store. It will not be shown again: " \
           "if it is lost, revoke it and make another." in page.text  # as a force's token page says
    # Read in Welsh, the workspace offers the switch, but not on the page showing the token once.
    assert 'data-testid="language-switch"' in client.get(f"{PAGE}?lang=cy").text
    welsh = _post(client, f"{PAGE}tokens", {"token-name": "Ail docyn"})
    _shown_secret(welsh)
    assert 'lang="cy"' in welsh.text
    assert 'data-testid="language-switch"' not in welsh.text


def test_a_bad_token_name_is_refused_on_the_page(
    app: Flask, client: FlaskClient, world: World, providers: Providers,
) -> None:
    _admin(app, client, world, providers)
    for name, message in (("", "Enter a name for the token"), ("x" * 101, "100 characters or fewer")):
        page = _post(client, f"{PAGE}tokens", {"token-name": name})
        assert page.status_code == 400
        assert "There is a problem" in page.text
        assert message in page.text
    _shown_secret(_post(client, f"{PAGE}tokens", {"token-name": "Twice"}))
    again = _post(client, f"{PAGE}tokens", {"token-name": "Twice"})
    assert again.status_code == 400
    assert "already has this name" in again.text
    with app.app_context(), provider_scoped(providers.p1.id):
        assert len(db.session.scalars(select(ProviderToken)).all()) == 1


def test_an_admin_sets_the_webhook_endpoint_and_its_secret_is_sealed(
    app: Flask, client: FlaskClient, world: World, providers: Providers, database: databases.TestDatabase,
) -> None:
    _admin(app, client, world, providers)
    secret = _shown_secret(_post(client, f"{PAGE}webhook", {"webhook-url": "https://example.org/hooks"}))
    assert secret.startswith("dvwh_")
    assert secret not in _stored(database)
    assert "https://example.org/hooks" in client.get(PAGE).text
    # Changing the address keeps the secret (no secret page); a new secret is shown once.
    assert _post(client, f"{PAGE}webhook", {"webhook-url": "https://example.org/v2"}).status_code == 302
    rotated = _shown_secret(_post(client, f"{PAGE}webhook/secret"))
    assert rotated != secret
    assert rotated.startswith("dvwh_")
    from diversion.providers.webhooks import webhook_secret

    with app.app_context(), provider_scoped(providers.p1.id):
        endpoint = db.session.scalar(select(WebhookEndpoint))
        assert endpoint is not None
        assert (endpoint.url, webhook_secret(endpoint)) == ("https://example.org/v2", rotated)
    assert _post(client, f"{PAGE}webhook", {"webhook-url": "https://example.org/a<b>"}).status_code == 302
    assert "https://example.org/a&lt;b&gt;" in client.get(PAGE).text  # shown as text, never as markup
    assert _post(client, f"{PAGE}webhook/remove").status_code == 302
    with app.app_context(), provider_scoped(providers.p1.id):
        assert db.session.scalar(select(WebhookEndpoint)) is None


def test_a_bad_webhook_address_is_refused_naming_the_field(
    app: Flask, client: FlaskClient, world: World, providers: Providers,
) -> None:
    _admin(app, client, world, providers)
    for url, message in (("", "Enter the address of your endpoint"), ("ftp://example.org/x", "https://"),
                         ("https://user:pw@example.org/x", "user name, password"),
                         ("example.org/hooks", "https://"), ("https://" + "a" * 500, "500 characters")):
        page = _post(client, f"{PAGE}webhook", {"webhook-url": url})
        assert page.status_code == 400, url
        assert "There is a problem" in page.text, url
        assert message in page.text, url
    with app.app_context(), provider_scoped(providers.p1.id):
        assert db.session.scalar(select(WebhookEndpoint)) is None


def test_plain_http_is_refused_unless_the_settings_allow_it(
    app: Flask, client: FlaskClient, world: World, providers: Providers,
) -> None:
    _admin(app, client, world, providers)
    assert _post(client, f"{PAGE}webhook", {"webhook-url": "http://example.org/x"}).status_code == 400
    app.config["WEBHOOK_ALLOW_HTTP"] = True
    assert _post(client, f"{PAGE}webhook", {"webhook-url": "http://example.org/x"}).status_code == 200


def test_provider_staff_who_are_not_admins_and_other_users_cannot_manage_integrations(
    app: Flask, client: FlaskClient, world: World, providers: Providers,
) -> None:
    add_provider_member(app, user_ref(app, "provider_staff", world), providers.p1, ProviderRole.STAFF)
    assert client.get(PAGE).status_code == 302  # anonymous: sign in first
    sign_in(client, world.email("provider_staff"))
    assert client.get(PAGE).status_code == 403
    assert _post(client, f"{PAGE}tokens", {"token-name": "Sneaky"}).status_code == 403
    with app.app_context(), provider_scoped(providers.p1.id):
        assert db.session.scalar(select(ProviderToken)) is None


def test_the_workspace_navigation_leads_its_admins_to_integrations_and_back(
    app: Flask, client: FlaskClient, world: World, providers: Providers,
) -> None:
    add_provider_member(app, user_ref(app, "provider_staff", world), providers.p1, ProviderRole.STAFF)
    sign_in(client, world.email("provider_staff"))
    assert "Integrations" not in client.get("/provider/").text  # staff: not theirs to manage
    _admin(app, client, world, providers)
    workspace = client.get("/provider/").text
    assert f'href="/provider/integrations/?provider={providers.p1.slug}"' in workspace
    page = client.get(f"{PAGE}?provider={providers.p1.slug}").text
    assert "provider workspace" in page  # the workspace's own navigation, with the way back
    assert 'href="/provider/"' in page
    assert "govuk-service-navigation__item--active" in page


def test_an_admin_of_one_provider_cannot_revoke_another_providers_token(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p2_token: str,
) -> None:
    _admin(app, client, world, providers)
    with app.app_context(), provider_scoped(providers.p2.id):
        other = db.session.scalar(select(ProviderToken).where(ProviderToken.provider_id == providers.p2.id))
        assert other is not None
        other_id = other.id
    assert _post(client, f"{PAGE}tokens/{other_id}/revoke").status_code == 404
    assert app.test_client().get("/api/v1/provider/referrals", headers=bearer(p2_token)).status_code == 200
    # Acting for a provider one is not a member of is not possible either.
    assert client.get(f"{PAGE}?provider={providers.p2.slug}").status_code == 403
