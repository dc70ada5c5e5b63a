"""Where a provider's webhooks may go: refused on the page when saved, refused again by
the worker when sent, pinned to the address checked with TLS verified for the name,
and told to the provider in four plain results only.

Connections are watched by the audit hook on ``socket.connect`` and real
listeners on 127.0.0.1 (tests/network.py); names resolve through the tests'
own table.
"""

from __future__ import annotations

import re
import socket
from datetime import datetime

import pytest
import trustme
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.catalogue.models import Provider
from diversion.db import utcnow
from diversion.extensions import db
from diversion.providers import webhooks
from diversion.providers.models import AttemptResult, DeliveryStatus, WebhookEndpoint
from diversion.tenancy.context import provider_scoped
from tests.conftest import World
from tests.network import CONNECTIONS, PUBLIC, FakeDNS, in_turn, listening
from tests.providers.conftest import Providers, refer
from tests.providers.test_tokens_and_pages import PAGE, _admin, _post
from tests.providers.test_webhooks import Receiver, deliveries, expected_signature, hooked, receiver
from tests.test_outbound import ELSEWHERE_FORMS, HOOKS, LOOPBACK_FORMS, names, test_ca, tls_server

__all__ = ["hooked", "names", "receiver", "test_ca"]  # fixtures used here, defined beside their tests

PLAIN_ANSWERS = {"Delivered", "Refused by your endpoint (status 500)", "Could not connect", "Timed out"}


def _row_url(app: Flask, provider_id: int, url: str) -> None:
    """Write an endpoint's address straight into its row, as one saved before the rules were."""
    with app.app_context(), provider_scoped(provider_id):
        endpoint = db.session.scalar(select(WebhookEndpoint))
        if endpoint is None:
            provider = db.session.get(Provider, provider_id)
            assert provider is not None
            webhooks.set_endpoint(provider, url="https://example.org/hooks", actor=SYSTEM)
            endpoint = db.session.scalar(select(WebhookEndpoint))
        assert endpoint is not None
        endpoint.url = url
        db.session.commit()


def _deliver(app: Flask, now: datetime | None = None, **kwargs: object) -> webhooks.DeliveryRound:
    with app.app_context():
        return webhooks.deliver_due(now=now or utcnow(), **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- saving

LOOPBACK_ON_THE_PAGE = [*LOOPBACK_FORMS, "https://[::1]:{port}/", "https://[::ffff:7f00:1]:{port}/"]
MALFORMED = [
    ("https://[::1", "not a web address we can use"),
    ("https://[::1/hooks", "not a web address we can use"),
    ("https://[example.org]/", "not a web address we can use"),
    ("https://example.org:99999/", "not a web address we can use"),
    ("https://example.org:port/", "not a web address we can use"),
    ("https://example.org:8443/", "port (443), not port 8443"),
    ("https://example.org/#x", "#fragment"),
    ("https://nowhere.test/", "We could not find this host name"),
]


def _refused_on_the_page(client: FlaskClient, url: str, message: str) -> None:
    page = _post(client, f"{PAGE}webhook", {"webhook-url": url})
    assert page.status_code == 400, url
    assert "There is a problem" in page.text, url
    assert 'href="#webhook-url"' in page.text, url  # the summary points at the field
    error = re.search(r'id="webhook-url-error"[^>]*>(.*?)</p>', page.text, re.S)
    assert error is not None, url
    assert re.search(message, error.group(1)), (url, error.group(1))


def test_the_page_refuses_loopback_in_any_form_and_nothing_is_called(
    app: Flask, client: FlaskClient, world: World, providers: Providers, names: FakeDNS,
) -> None:
    _admin(app, client, world, providers)
    with listening() as (listener,):
        app.config["OUTBOUND_ALLOWED_PORTS"] = (443, listener.port)  # the port is not what refuses them
        with CONNECTIONS.recording() as seen:
            for form in LOOPBACK_ON_THE_PAGE:
                _refused_on_the_page(client, form.format(port=listener.port), "public internet|public address")
        recorded = [item for item in seen if item[1] == listener.port]
    assert recorded == []
    assert listener.accepted == 0
    with app.app_context(), provider_scoped(providers.p1.id):
        assert db.session.scalar(select(WebhookEndpoint)) is None


def test_the_page_refuses_every_inside_address(
    app: Flask, client: FlaskClient, world: World, providers: Providers, names: FakeDNS,
) -> None:
    _admin(app, client, world, providers)
    with CONNECTIONS.recording() as seen:
        for url in ELSEWHERE_FORMS:
            _refused_on_the_page(client, url, "public internet|public address")
    assert list(seen) == []  # the test client calls the app in-process: any connection was ours
    with app.app_context(), provider_scoped(providers.p1.id):
        assert db.session.scalar(select(WebhookEndpoint)) is None


def test_a_malformed_address_is_a_field_error_not_a_crash(
    app: Flask, client: FlaskClient, world: World, providers: Providers, names: FakeDNS,
) -> None:
    _admin(app, client, world, providers)
    for url, message in MALFORMED:
        _refused_on_the_page(client, url, re.escape(message))
    with app.app_context(), provider_scoped(providers.p1.id):
        assert db.session.scalar(select(WebhookEndpoint)) is None


def test_a_public_address_is_saved(
    app: Flask, client: FlaskClient, world: World, providers: Providers, names: FakeDNS,
) -> None:
    _admin(app, client, world, providers)
    with CONNECTIONS.recording() as seen:
        page = _post(client, f"{PAGE}webhook", {"webhook-url": "https://example.org/diversion/hooks"})
    assert page.status_code == 200
    assert list(seen) == []  # saving calls nobody
    assert names.asked == ["example.org"]


# ---------------------------------------------------------------- sending

SAVED_BEFORE_THE_RULES = ["https://127.0.0.1:{port}/", "https://[::ffff:127.0.0.1]:{port}/",
                          "https://2130706433:{port}/", "https://loopback.test:{port}/", "https://[::1]:{port}/"]


def test_the_worker_does_not_call_an_address_saved_before_the_rules(
    app: Flask, world: World, providers: Providers, names: FakeDNS,
) -> None:
    with listening() as (listener,):
        app.config["OUTBOUND_ALLOWED_PORTS"] = (443, listener.port)
        for number, form in enumerate(SAVED_BEFORE_THE_RULES):
            _row_url(app, providers.p1.id, form.format(port=listener.port))
            refer(app, world.a, providers.offerings["a1"], surname=f"Quinn{'x' * number}")
            with CONNECTIONS.recording() as seen:
                outcome = _deliver(app)
            assert outcome.retrying == 1, form
            assert [item for item in seen if item[1] == listener.port] == [], form
    assert listener.accepted == 0
    found = deliveries(app, world.a)
    assert len(found) == len(SAVED_BEFORE_THE_RULES)
    for delivery, attempts in found:
        assert delivery.status is DeliveryStatus.PENDING
        assert [(a.result, a.status_code, a.answer) for a in attempts] == [
            (AttemptResult.NOT_ALLOWED, None, "Could not connect")]


def test_a_name_rebound_to_loopback_after_saving_is_not_called(
    app: Flask, world: World, providers: Providers, names: FakeDNS,
) -> None:
    with listening() as (listener,):
        app.config["OUTBOUND_ALLOWED_PORTS"] = (443, listener.port)
        names.table["rebind.test"] = in_turn([PUBLIC], ["127.0.0.1"])
        with app.app_context():
            provider = db.session.get(Provider, providers.p1.id)
            assert provider is not None
            webhooks.set_endpoint(provider, url=f"https://rebind.test:{listener.port}/hooks", actor=SYSTEM)
            db.session.commit()
        refer(app, world.a, providers.offerings["a1"], surname="Rees")
        with CONNECTIONS.recording() as seen:
            _deliver(app)
        recorded = [item for item in seen if item[1] == listener.port]
    assert recorded == []
    assert listener.accepted == 0
    ((_delivery, attempts),) = deliveries(app, world.a)
    assert [a.result for a in attempts] == [AttemptResult.NOT_ALLOWED]


def hooked_over_tls(app: Flask, provider_id: int, port: int) -> str:
    """Point the provider's webhook at the local TLS listener on ``port``; its signing secret."""
    with app.app_context():
        provider = db.session.get(Provider, provider_id)
        assert provider is not None
        _endpoint, secret = webhooks.set_endpoint(provider, url=f"https://{HOOKS}:{port}/hooks", actor=SYSTEM)
        db.session.commit()
    assert secret is not None
    return secret


def test_deliveries_over_tls_go_to_the_checked_address_and_verify_the_name(
    app: Flask, world: World, providers: Providers, names: FakeDNS, test_ca: trustme.CA,
) -> None:
    app.config["OUTBOUND_TEST_ALLOW_HOSTS"] = (HOOKS,)
    with tls_server(test_ca, HOOKS) as server:
        secret = hooked_over_tls(app, providers.p1.id, server.port)
        refer(app, world.a, providers.offerings["a1"], surname="Shaw")
        # Resolved once per attempt; a later answer elsewhere is never used for this one.
        names.table[HOOKS] = in_turn(["127.0.0.1"], ["127.0.0.2"])
        with CONNECTIONS.recording() as seen:
            outcome = _deliver(app, ssl_context=server.client_context)
        recorded = list(seen)
    assert outcome.delivered == 1
    assert ("127.0.0.1", server.port) in recorded
    assert not any(host == "127.0.0.2" for host, _port in recorded)
    assert server.server_names == [HOOKS]
    (sent,) = server.requests
    assert sent["Host"] == f"{HOOKS}:{server.port}"
    assert sent["path"] == "/hooks"
    ((_delivery, attempts),) = deliveries(app, world.a)
    assert [(a.result, a.status_code) for a in attempts] == [(AttemptResult.DELIVERED, 200)]
    assert sent["Diversion-Signature"] == expected_signature(secret, sent["Diversion-Timestamp"], server.bodies[0])


def test_a_certificate_for_another_name_fails_the_delivery(
    app: Flask, world: World, providers: Providers, names: FakeDNS, test_ca: trustme.CA,
) -> None:
    app.config["OUTBOUND_TEST_ALLOW_HOSTS"] = (HOOKS,)
    with tls_server(test_ca, "not-the-provider.test") as server:
        _row_url(app, providers.p1.id, f"https://{HOOKS}:{server.port}/hooks")
        refer(app, world.a, providers.offerings["a1"], surname="Tate")
        outcome = _deliver(app, ssl_context=server.client_context)
    assert (outcome.delivered, outcome.retrying) == (0, 1)
    assert server.requests == []
    ((_delivery, attempts),) = deliveries(app, world.a)
    assert [(a.result, a.answer) for a in attempts] == [(AttemptResult.COULD_NOT_CONNECT, "Could not connect")]


# ---------------------------------------------------------------- what the provider reads

def _last_answers(page: str) -> list[str]:
    table = page.split('data-testid="deliveries"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr class="govuk-table__row">(.*?)</tr>', table, re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    return [re.sub(r"\s+", " ", row[-1]).strip() for row in cells if row]


def test_the_page_shows_only_the_four_plain_results(
    request: pytest.FixtureRequest, app: Flask, client: FlaskClient, world: World, providers: Providers,
    receiver: Receiver, hooked: str, names: FakeDNS,
) -> None:
    def one(surname: str) -> None:
        refer(app, world.a, providers.offerings["a1"], surname=surname)
        _deliver(app)

    receiver.script = ["200"]
    one("Upton")
    receiver.script = ["500"]
    one("Vance")
    receiver.script = ["slow"]
    one("Wade")
    closed = socket.socket()  # bound, not listening: the connection is refused
    request.addfinalizer(closed.close)
    closed.bind(("127.0.0.1", 0))
    _row_url(app, providers.p1.id, f"http://127.0.0.1:{closed.getsockname()[1]}/hooks")
    one("Xu")
    _row_url(app, providers.p1.id, "https://10.0.0.1/hooks")  # saved before the rules: not called
    one("Young")
    results = sorted(attempts[-1].result.value for _d, attempts in deliveries(app, world.a))
    assert results == sorted(["delivered", "refused", "timed_out", "could_not_connect", "not_allowed"])

    _admin(app, client, world, providers)
    page = client.get(PAGE).text
    answers = _last_answers(page)
    assert len(answers) == 5
    assert set(answers) == PLAIN_ANSWERS
    table = page.split('data-testid="deliveries"', 1)[1].split("</table>", 1)[0]
    for leak in ("Errno", "refused", "Connection", "Pool", "Max retries", "allowed", "10.0.0.1", "seconds"):
        assert leak not in table, leak
