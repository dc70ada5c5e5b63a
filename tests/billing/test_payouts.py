"""A provider admin sets up payouts through Stripe's Account Links (the local Stripe server)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.accounts.models import ProviderMembership, ProviderRole
from diversion.billing.models import ConnectedAccount
from diversion.extensions import db
from tests.conftest import World, post_form, sign_in
from tests.stripe_server import StripeServer

PAGE = "/provider/billing/payouts/"


@pytest.fixture
def server() -> Iterator[StripeServer]:
    with StripeServer() as running:
        yield running


@pytest.fixture
def admin(app: Flask, world: World, client: FlaskClient) -> FlaskClient:
    with app.app_context():
        membership = db.session.scalar(select(ProviderMembership).where(
            ProviderMembership.user_id == world.users["provider_staff"].id))
        assert membership is not None
        membership.role = ProviderRole.ADMIN
        db.session.commit()
    sign_in(client, world.email("provider_staff"))
    return client


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


def _visit(url: str) -> str:
    """Open a page of the local server as the browser would; where it sends the browser next."""
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.build_opener(_Stay).open(url, timeout=5)
    answer.value.close()
    return str(answer.value.headers["Location"])


def test_a_provider_admin_sets_up_payouts_on_stripe(app: Flask, world: World, admin: FlaskClient,
                                                    server: StripeServer) -> None:
    app.config.update(STRIPE_SECRET_KEY="sk_test_payouts", STRIPE_API_BASE=server.url, STRIPE_NETWORK_RETRIES=0)
    assert "Not set up" in admin.get(PAGE).text
    sent = post_form(admin, PAGE, PAGE)
    assert sent.status_code == 302
    link = sent.headers["Location"]
    assert link.startswith(f"{server.url}/connect/onboard/acct_")
    account, linked = (each for each in server.requests if each.method == "POST")
    assert account.path == "/v1/accounts"
    assert account.idempotency_key == "connected-account:cranstoun"
    assert account.fields["metadata[diversion_provider]"] == str(world.providers["cranstoun"].id)
    assert account.fields["capabilities[transfers][requested]"] == "true"
    assert linked.path == "/v1/account_links"
    assert linked.fields["type"] == "account_onboarding"
    assert linked.fields["return_url"] == f"http://localhost{PAGE}?returned=1"
    assert "Not ready yet" in admin.get(PAGE).text

    back = _visit(link)  # the provider gives its details on Stripe, and comes back
    assert back == f"http://localhost{PAGE}?returned=1"
    page = admin.get(f"{PAGE}?returned=1")
    assert "Payouts can be received" in page.text
    with app.app_context():
        stored = db.session.scalar(select(ConnectedAccount))
        assert stored is not None
        assert stored.transfers_active
        assert stored.details_submitted

    again = post_form(admin, PAGE, PAGE)  # changing the details: the same account, a new link
    assert again.status_code == 302
    assert len(server.of_kind("account")) == 1


def test_without_stripe_payouts_cannot_be_set_up_and_nothing_is_kept(app: Flask, admin: FlaskClient) -> None:
    page = admin.get(PAGE)
    assert "Payouts cannot be set up yet: the platform is not connected to Stripe." in page.text  # said at once,
    assert "Set up payouts on Stripe" not in page.text  # not offered to fail
    assert 'action="/provider/billing/payouts/"' not in page.text
    answer = post_form(admin, PAGE, PAGE)
    assert answer.status_code == 302
    assert "not connected to Stripe" in admin.get(PAGE).text
    with app.app_context():
        assert db.session.scalar(select(ConnectedAccount)) is None
