"""Webhooks to a real HTTP server on 127.0.0.1: signed, de-duplicable, retried with backoff, given up.

The server is a thread of this process answering what each test scripts
(a status, or no answer in time); it records every request as received,
raw body included, and the test checks the signature itself with ``hmac``.
Time is passed to the worker (``now``), so retries come due without waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ProviderRole
from diversion.cases.models import Encounter, Referral, State
from diversion.catalogue.models import Provider
from diversion.db import utcnow
from diversion.extensions import db
from diversion.providers import webhooks
from diversion.providers.models import AttemptResult, DeliveryStatus, FeedEntry, WebhookAttempt, WebhookDelivery
from diversion.providers.schemas import WebhookEvent
from diversion.tenancy.context import scoped
from tests.conftest import Ref, World, csrf_token, sign_in
from tests.providers.conftest import Providers, add_provider_member, move, refer, user_ref


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the endpoint answers next ("200", "500", "302", "slow"), and what it was sent."""

    script: list[str] = field(default_factory=list)
    otherwise: str = "200"
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    heard: threading.Event = field(default_factory=threading.Event)  # set at each request
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(Received(dict(self.headers.items()), body))
            state.heard.set()
            answer = state.script.pop(0) if state.script else state.otherwise
            if answer == "slow":  # later than the worker waits; released when the test ends
                state.release.wait(10)
                answer = "200"
            self.send_response(int(answer))
            if answer == "302":
                self.send_header("Location", "https://example.org/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def hooked(app: Flask, world: World, providers: Providers, receiver: Receiver) -> str:
    """Cranstoun (P1) listens at the receiver; returns the signing secret.

    The receiver is on 127.0.0.1, which the outbound rules refuse: the
    test-only allow-list lets these tests reach it (and nothing else).
    """
    app.config.update(WEBHOOK_ALLOW_HTTP=True, WEBHOOK_TIMEOUT_SECONDS=0.5, WEBHOOK_MAX_ATTEMPTS=4,
                      WEBHOOK_BACKOFF_SECONDS=30, WEBHOOK_BACKOFF_CAP_SECONDS=3600,
                      OUTBOUND_TEST_ALLOW_HOSTS=("127.0.0.1",))
    return set_endpoint(app, providers.p1, receiver.url)


def set_endpoint(app: Flask, provider: Ref, url: str) -> str:
    with app.app_context():
        row = db.session.get(Provider, provider.id)
        assert row is not None
        _endpoint, secret = webhooks.set_endpoint(row, url=url, actor=SYSTEM)
        db.session.commit()
        assert secret is not None
        return secret


def deliver(app: Flask, now: datetime) -> webhooks.DeliveryRound:
    with app.app_context():
        return webhooks.deliver_due(now=now)


def deliveries(app: Flask, force: Ref) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    with app.app_context(), scoped(force.id):
        found = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)).all()
        return [(d, list(db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == d.id)
                                            .order_by(WebhookAttempt.number)))) for d in found]


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def test_a_new_referral_and_its_changes_are_delivered_signed(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    referral = refer(app, world.a, providers.offerings["a1"], surname="Ellis")
    move(app, world.a, referral, State.ACCEPTED)
    now = utcnow()
    outcome = deliver(app, now)
    assert (outcome.delivered, outcome.retrying, outcome.failed) == (2, 0, 0)
    assert len(receiver.received) == 2
    events = []
    for request in receiver.received:
        headers, body = request.headers, request.body
        assert headers["Content-Type"] == "application/json"
        assert headers["Diversion-Timestamp"] == str(int(now.timestamp()))
        assert hmac.compare_digest(headers["Diversion-Signature"],
                                   expected_signature(hooked, headers["Diversion-Timestamp"], body))
        event = WebhookEvent.model_validate_json(body)  # the documented shape
        assert str(event.id) == headers["Diversion-Delivery"]
        assert event.type == headers["Diversion-Event"]
        assert event.data.referral_id == referral
        assert event.data.force == "west-midlands"
        assert b"Ellis" not in body
        assert b"ellis@example.org" not in body
        events.append((event.type, event.data.previous_state, event.data.state))
    assert events == [("referral.created", None, State.OFFERED), ("referral.changed", State.OFFERED,
                                                                  State.ACCEPTED)]
    for delivery, attempts in deliveries(app, world.a):
        assert delivery.status is DeliveryStatus.DELIVERED
        assert [(a.number, a.status_code, a.result) for a in attempts] == [(1, 200, AttemptResult.DELIVERED)]
    # Delivered once: nothing more to send.
    assert deliver(app, now + timedelta(days=1)).attempts == []
    assert len(receiver.received) == 2


def test_a_signature_with_another_secret_or_body_does_not_verify(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    """What the receiver must check, shown to fail when anything differs."""
    refer(app, world.a, providers.offerings["a1"], surname="Ford")
    deliver(app, utcnow())
    (request,) = receiver.received
    timestamp, signature = request.headers["Diversion-Timestamp"], request.headers["Diversion-Signature"]
    assert signature == expected_signature(hooked, timestamp, request.body)
    assert signature != expected_signature(hooked + "x", timestamp, request.body)
    assert signature != expected_signature(hooked, str(int(timestamp) + 1), request.body)
    assert signature != expected_signature(hooked, timestamp, request.body.replace(b"offered", b"accepted"))


def test_failures_are_retried_with_backoff_under_the_same_delivery_id(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    refer(app, world.a, providers.offerings["a1"], surname="Grant")
    receiver.script = ["500", "slow", "302", "200"]
    now = utcnow()
    waits = []
    for expected in ("retrying", "retrying", "retrying", "delivered"):
        outcome = deliver(app, now)
        assert getattr(outcome, expected) == 1, (expected, outcome)
        ((delivery, _attempts),) = deliveries(app, world.a)
        if expected == "retrying":
            # Not due again before its backoff: a run now sends nothing.
            assert deliver(app, now).attempts == []
            waits.append(delivery.next_attempt_at - now)
            now = delivery.next_attempt_at
    ((delivery, attempts),) = deliveries(app, world.a)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.attempts == 4
    assert [(a.number, a.status_code, a.result) for a in attempts] == [
        (1, 500, AttemptResult.REFUSED), (2, None, AttemptResult.TIMED_OUT), (3, 302, AttemptResult.REFUSED),
        (4, 200, AttemptResult.DELIVERED)]
    assert [a.answer for a in attempts] == ["Refused by your endpoint (status 500)", "Timed out",
                                            "Refused by your endpoint (status 302)", "Delivered"]
    # The redirect was not followed: four requests, all to the endpoint.
    assert len(receiver.received) == 4
    # Exponential with jitter: after failure n, between half and all of 30 s x 2^(n-1).
    for n, wait in enumerate(waits, start=1):
        ceiling = 30 * 2 ** (n - 1)
        assert timedelta(seconds=ceiling / 2) <= wait <= timedelta(seconds=ceiling), (n, wait)
    # Every retry carries the same delivery id and the same bytes, freshly signed.
    assert len({r.headers["Diversion-Delivery"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1
    for request in receiver.received:
        assert request.headers["Diversion-Signature"] == expected_signature(
            hooked, request.headers["Diversion-Timestamp"], request.body)


def test_a_delivery_is_given_up_after_the_last_attempt(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    refer(app, world.a, providers.offerings["a1"], surname="Hale")
    receiver.otherwise = "503"
    now = utcnow()
    for _ in range(4):
        deliver(app, now)
        ((delivery, _attempts),) = deliveries(app, world.a)
        now = delivery.next_attempt_at if delivery.status is DeliveryStatus.PENDING else now
    ((delivery, attempts),) = deliveries(app, world.a)
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.finished_at is not None
    assert [a.status_code for a in attempts] == [503, 503, 503, 503]
    assert deliver(app, now + timedelta(days=30)).attempts == []
    assert len(receiver.received) == 4


def test_an_unreachable_endpoint_is_an_attempt_that_could_not_connect(
    request: pytest.FixtureRequest, app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    closed = socket.socket()  # bound but not listening: a connection to it is refused
    request.addfinalizer(closed.close)
    closed.bind(("127.0.0.1", 0))
    set_endpoint_url = f"http://127.0.0.1:{closed.getsockname()[1]}/nothing-listens-here"
    with app.app_context():
        provider = db.session.get(Provider, providers.p1.id)
        assert provider is not None
        webhooks.set_endpoint(provider, url=set_endpoint_url, actor=SYSTEM)
        db.session.commit()
    refer(app, world.a, providers.offerings["a1"], surname="Ives")
    assert deliver(app, utcnow()).retrying == 1
    ((_delivery, attempts),) = deliveries(app, world.a)
    assert (attempts[0].status_code, attempts[0].result) == (None, AttemptResult.COULD_NOT_CONNECT)
    assert attempts[0].answer == "Could not connect"
    assert attempts[0].url == set_endpoint_url
    assert receiver.received == []


def test_the_outbox_is_written_with_the_change_or_not_at_all(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    from diversion.cases import services as cases
    from diversion.cases.models import Referral
    from diversion.tenancy.models import Tenant

    with app.app_context(), scoped(world.b.id):
        referral = db.session.get(Referral, providers.referrals["b1"])
        tenant = db.session.get(Tenant, world.b.id)
        assert referral is not None
        assert tenant is not None
        before = db.session.scalar(select(FeedEntry.position).where(FeedEntry.referral_id == referral.id))
        cases.transition(tenant, referral, State.ACCEPTED, actor=SYSTEM)
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
        db.session.rollback()  # the change is abandoned: so are its feed position and its delivery
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        assert db.session.scalar(select(FeedEntry.position).where(FeedEntry.referral_id == referral.id)) == before
    assert deliver(app, utcnow()).attempts == []


def test_only_the_referrals_provider_hears_of_it(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    move(app, world.b, providers.referrals["b2"], State.ACCEPTED)  # Checkpoint Navigators' referral
    assert deliveries(app, world.b) == []
    move(app, world.b, providers.referrals["b1"], State.ACCEPTED)  # Cranstoun's
    deliver(app, utcnow())
    (request,) = receiver.received
    data = json.loads(request.body)["data"]
    assert data["referral_id"] == str(providers.referrals["b1"])
    with app.app_context(), scoped(world.b.id):  # the case's reference, to quote to the force
        referral = db.session.get(Referral, providers.referrals["b1"])
        assert data["reference"] == db.session.get(Encounter, referral.encounter_id).reference


def test_a_removed_endpoint_gives_up_what_was_waiting(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    refer(app, world.a, providers.offerings["a1"], surname="Jones")
    with app.app_context():
        provider = db.session.get(Provider, providers.p1.id)
        assert provider is not None
        webhooks.remove_endpoint(provider, actor=SYSTEM)
        db.session.commit()
    assert deliver(app, utcnow()).failed == 1
    ((delivery, attempts),) = deliveries(app, world.a)
    assert delivery.status is DeliveryStatus.FAILED
    assert attempts == []  # nothing was tried: there is nowhere to send it
    assert receiver.received == []
    refer(app, world.a, providers.offerings["a1"], surname="Kent")  # no endpoint: nothing queued
    assert len(deliveries(app, world.a)) == 1


def test_the_backoff_doubles_up_to_its_cap_with_jitter_within_bounds() -> None:
    schedule = [webhooks.backoff(n, base=30, cap=600, jitter=0.0) for n in range(1, 8)]
    assert [wait.total_seconds() for wait in schedule] == [15, 30, 60, 120, 240, 300, 300]
    top = [webhooks.backoff(n, base=30, cap=600, jitter=0.999999) for n in range(1, 8)]
    assert [round(wait.total_seconds()) for wait in top] == [30, 60, 120, 240, 480, 600, 600]


def test_the_worker_command_delivers_what_is_due(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    refer(app, world.b, providers.offerings["b1"], surname="Lane")
    result = app.test_cli_runner().invoke(args=["webhooks", "deliver"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 delivered, 0 to retry later, 0 failed."
    assert len(receiver.received) == 1
    assert uuid.UUID(receiver.received[0].headers["Diversion-Delivery"])


def test_a_test_event_asked_for_on_the_page_is_sent_signed_and_listed(
    app: Flask, client: FlaskClient, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    page_url = "/provider/integrations/"
    add_provider_member(app, user_ref(app, "provider_staff", world), providers.p1, ProviderRole.ADMIN)
    sign_in(client, world.email("provider_staff"))
    with app.app_context():  # the referrals' own deliveries, sent: only the test event waits
        webhooks.deliver_due(now=utcnow())
    receiver.received.clear()
    page = client.get(page_url)
    assert "Send a test event" in page.text
    assert client.post("/provider/integrations/webhook/test").status_code == 400  # no CSRF token
    answer = client.post("/provider/integrations/webhook/test", data={"csrf_token": csrf_token(page.text)},
                         follow_redirects=True)
    assert "A test event is queued for your endpoint" in answer.text
    assert 'data-testid="deliveries"' in answer.text
    assert "webhook.test" in answer.text
    outcome = deliver(app, utcnow())  # the same path as every delivery: outbound rules, signature, retries
    assert (outcome.delivered, outcome.failed) == (1, 0)
    [request] = receiver.received
    assert request.headers["Diversion-Event"] == "webhook.test"
    assert hmac.compare_digest(request.headers["Diversion-Signature"],
                               expected_signature(hooked, request.headers["Diversion-Timestamp"], request.body))
    event = WebhookEvent.model_validate_json(request.body)
    assert event.type == "webhook.test"
    assert event.data.referral_id in set(providers.referrals.values())
    listed = client.get(page_url).text
    assert "webhook.test" in listed
    assert "Delivered" in listed
    # Refused, and nothing queued, once the endpoint is removed.
    with app.app_context():
        row = db.session.get(Provider, providers.p1.id)
        assert row is not None
        webhooks.remove_endpoint(row, actor=SYSTEM)
        db.session.commit()
    refused = client.post("/provider/integrations/webhook/test", data={"csrf_token": csrf_token(listed)},
                          follow_redirects=True)
    assert "address first: a test event goes to it" in refused.text


def test_a_missed_session_is_announced_as_a_change_to_missed(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    referral = refer(app, world.a, providers.offerings["a1"], surname="Ellis")
    for to in (State.ACCEPTED, State.BOOKED, State.MISSED):
        move(app, world.a, referral, to)
    deliver(app, utcnow())
    events = [WebhookEvent.model_validate_json(r.body) for r in receiver.received]
    assert [(e.data.previous_state, e.data.state) for e in events][-1] == (State.BOOKED, State.MISSED)
