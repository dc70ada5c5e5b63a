"""Stripe's webhook: signed deliveries only, each event acted on once, invoices never moved backwards."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
import stripe
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select, text
from werkzeug.test import TestResponse

from diversion.billing.models import ConnectedAccount, InvoiceStatus, Statement, StripeEvent
from diversion.db import LONDON
from diversion.extensions import db
from diversion.tenancy.context import scoped
from tests import databases
from tests.billing import stripe_events as events
from tests.billing.stripe_events import SECRET, body_of, signature
from tests.conftest import World
from tests.databases import postgres_admin_url

requires_postgresql = pytest.mark.skipif(postgres_admin_url() is None,
                                         reason="needs PostgreSQL (TEST_DATABASE_URL)")
URL = "/billing/stripe/webhook"
INVOICE = "in_1Pgc6tB7WZ01zgkWu9fdqL6I"  # the fixture's own invoice id
DUE = int(datetime(2026, 12, 31, 12, tzinfo=UTC).timestamp())


@pytest.fixture
def hooked(app: Flask) -> Flask:
    app.config["STRIPE_WEBHOOK_SECRET"] = SECRET
    app.config["STRIPE_WEBHOOK_TOLERANCE_SECONDS"] = 300
    return app


def _statement(app: Flask, world: World, *, tenant: str = "a", invoice_id: str = INVOICE,
               status: InvoiceStatus = InvoiceStatus.DRAFT) -> uuid.UUID:
    force = world.a if tenant == "a" else world.b
    with app.app_context(), scoped(force.id):
        statement = Statement(provider_id=world.providers["cranstoun"].id, month=date(2026, 11, 1),
                              net_pence=10000, to_provider_pence=9500, platform_fee_pence=500,
                              stripe_invoice_id=invoice_id, invoice_status=status)
        db.session.add(statement)
        db.session.commit()
        return statement.id


def _read(app: Flask, world: World, statement_id: uuid.UUID, *, tenant: str = "a") -> Statement:
    force = world.a if tenant == "a" else world.b
    with app.app_context(), scoped(force.id):
        found = db.session.get(Statement, statement_id)
        assert found is not None
        db.session.expunge(found)
        return found


def _recorded(app: Flask) -> list[tuple[str, str, bool, int | None]]:
    with app.app_context():
        return [(row.event_id, row.type, row.matched, row.amount_paid_pence)
                for row in db.session.scalars(select(StripeEvent).order_by(StripeEvent.id))]


def _deliver(client: FlaskClient, found: dict[str, Any], *, at: int | None = None,
             secret: str = SECRET) -> TestResponse:
    body = body_of(found)
    return client.post(URL, data=body, content_type="application/json",
                       headers={"Stripe-Signature": signature(body, secret=secret, at=at)})


def _invoice_event(event_id: str, kind: str, *, status: str, paid: int = 0, created: int | None = None,
                   invoice_id: str = INVOICE, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    subject = events.invoice(invoice_id, status=status, amount_paid=paid, due_date=DUE, metadata=metadata)
    return events.event(event_id, kind, subject, created=created)


def test_the_signature_is_the_one_stripe_documents() -> None:
    """Our signing, written from Stripe's documentation, is the SDK's own."""
    body = body_of(events.event("evt_1", "invoice.paid", events.invoice(INVOICE, status="paid")))
    at = int(time.time())
    assert signature(body, at=at) == stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, at)


def test_an_invoice_finalised_then_paid_ends_paid_with_what_was_paid(
        hooked: Flask, client: FlaskClient, world: World) -> None:
    statement_id = _statement(hooked, world)
    answer = _deliver(client, _invoice_event("evt_final", "invoice.finalized", status="open"))
    assert (answer.status_code, answer.text) == (200, "Received.\n")
    found = _read(hooked, world, statement_id)
    assert found.invoice_status is InvoiceStatus.OPEN
    assert found.invoice_due_on == datetime.fromtimestamp(DUE, UTC).astimezone(LONDON).date()
    assert _deliver(client, _invoice_event("evt_paid", "invoice.paid", status="paid", paid=10000)).status_code == 200
    found = _read(hooked, world, statement_id)
    assert (found.invoice_status, found.amount_paid_pence) == (InvoiceStatus.PAID, 10000)
    assert _recorded(hooked) == [("evt_final", "invoice.finalized", True, None),
                                 ("evt_paid", "invoice.paid", True, 10000)]


def test_a_paid_before_its_finalized_ends_paid(hooked: Flask, client: FlaskClient, world: World) -> None:
    statement_id = _statement(hooked, world)
    now = int(time.time())
    paid = _invoice_event("evt_paid", "invoice.paid", status="paid", paid=10000, created=now)
    finalized = _invoice_event("evt_final", "invoice.finalized", status="open", created=now - 60)
    failed = _invoice_event("evt_failed", "invoice.payment_failed", status="open", created=now - 30)
    for delivered in (paid, finalized, failed):
        assert _deliver(client, delivered).status_code == 200
    found = _read(hooked, world, statement_id)
    assert (found.invoice_status, found.amount_paid_pence) == (InvoiceStatus.PAID, 10000)
    assert [row[0] for row in _recorded(hooked)] == ["evt_paid", "evt_final", "evt_failed"]


def test_a_failed_payment_then_paid_ends_paid_and_a_void_ends_void(
        hooked: Flask, client: FlaskClient, world: World) -> None:
    statement_id = _statement(hooked, world)
    _deliver(client, _invoice_event("evt_1", "invoice.finalized", status="open"))
    _deliver(client, _invoice_event("evt_2", "invoice.payment_failed", status="open"))
    assert _read(hooked, world, statement_id).invoice_status is InvoiceStatus.PAYMENT_FAILED
    _deliver(client, _invoice_event("evt_3", "invoice.paid", status="paid", paid=10000))
    assert _read(hooked, world, statement_id).invoice_status is InvoiceStatus.PAID

    other = _statement(hooked, world, tenant="b", invoice_id="in_other")
    _deliver(client, _invoice_event("evt_4", "invoice.finalized", status="open", invoice_id="in_other"))
    _deliver(client, _invoice_event("evt_5", "invoice.voided", status="void", invoice_id="in_other"))
    _deliver(client, _invoice_event("evt_6", "invoice.payment_failed", status="void", invoice_id="in_other"))
    assert _read(hooked, world, other, tenant="b").invoice_status is InvoiceStatus.VOID


def test_a_replayed_event_changes_nothing(hooked: Flask, client: FlaskClient, world: World) -> None:
    """The same event delivered again (Stripe retries, or someone replays it), freshly signed, after a
    later event: answered 200 and ignored, so the later event's effect stands."""
    statement_id = _statement(hooked, world)
    failed = _invoice_event("evt_failed", "invoice.payment_failed", status="open")
    assert _deliver(client, failed).status_code == 200
    _deliver(client, _invoice_event("evt_paid", "invoice.paid", status="paid", paid=10000))
    # The failure again, as though it were news: a status it could not reach, and a different payment.
    replay = _invoice_event("evt_failed", "invoice.voided", status="void", paid=1)
    before = _read(hooked, world, statement_id)
    for again in (failed, replay, failed):
        answer = _deliver(client, again, at=int(time.time()) + 5)
        assert (answer.status_code, answer.text) == (200, "Already received.\n")
    after = _read(hooked, world, statement_id)
    assert (after.invoice_status, after.amount_paid_pence, after.invoice_updated_at) == \
           (before.invoice_status, before.amount_paid_pence, before.invoice_updated_at)
    assert _recorded(hooked) == [("evt_failed", "invoice.payment_failed", True, None),
                                 ("evt_paid", "invoice.paid", True, 10000)]


def test_the_invoice_of_any_force_is_found_by_its_id(hooked: Flask, client: FlaskClient, world: World) -> None:
    """Durham's statement is found whether the metadata names its force, names another, or is absent."""
    statement_id = _statement(hooked, world, tenant="b", invoice_id="in_durham")
    _deliver(client, _invoice_event("evt_1", "invoice.finalized", status="open", invoice_id="in_durham",
                                    metadata={"diversion_force": "west-midlands"}))
    assert _read(hooked, world, statement_id, tenant="b").invoice_status is InvoiceStatus.OPEN
    _deliver(client, _invoice_event("evt_2", "invoice.paid", status="paid", paid=10000, invoice_id="in_durham",
                                    metadata={"diversion_force": "durham"}))
    assert _read(hooked, world, statement_id, tenant="b").invoice_status is InvoiceStatus.PAID


def test_a_payment_of_an_invoice_we_do_not_know_is_recorded_unmatched(
        hooked: Flask, client: FlaskClient, world: World) -> None:
    statement_id = _statement(hooked, world)
    answer = _deliver(client, _invoice_event("evt_stray", "invoice.paid", status="paid", paid=4200,
                                             invoice_id="in_not_ours"))
    assert answer.status_code == 200
    assert _recorded(hooked) == [("evt_stray", "invoice.paid", False, 4200)]
    assert _read(hooked, world, statement_id).invoice_status is InvoiceStatus.DRAFT


def test_an_event_of_another_type_is_acknowledged_and_does_nothing(
        hooked: Flask, client: FlaskClient, world: World) -> None:
    """Stripe's example event itself (a plan created)."""
    statement_id = _statement(hooked, world)
    found = events.fixture("event")
    found["created"] = int(time.time())
    answer = _deliver(client, found)
    assert (answer.status_code, answer.text) == (200, "Received; nothing to do for this type.\n")
    assert _recorded(hooked) == [(found["id"], "plan.created", True, None)]
    assert _read(hooked, world, statement_id).invoice_status is InvoiceStatus.DRAFT


def _account(app: Flask, world: World, *, updated_at: datetime) -> int:
    with app.app_context():
        found = ConnectedAccount(provider_id=world.providers["cranstoun"].id, stripe_account_id="acct_cranstoun",
                                 created_at=updated_at, updated_at=updated_at)
        db.session.add(found)
        db.session.commit()
        return found.id


def _account_state(app: Flask, account_id: int) -> tuple[bool, bool]:
    with app.app_context():
        found = db.session.get(ConnectedAccount, account_id)
        assert found is not None
        return found.transfers_active, found.details_submitted


def test_an_account_update_says_whether_it_can_receive_transfers(
        hooked: Flask, client: FlaskClient, world: World) -> None:
    now = int(time.time())
    account_id = _account(hooked, world, updated_at=datetime.fromtimestamp(now - 3600, UTC))
    pending = events.account("acct_cranstoun", transfers="pending", details_submitted=True)
    active = events.account("acct_cranstoun", transfers="active", details_submitted=True)
    assert _deliver(client, events.event("evt_a1", "account.updated", pending, created=now - 120)).status_code == 200
    assert _account_state(hooked, account_id) == (False, True)
    _deliver(client, events.event("evt_a2", "account.updated", active, created=now - 60))
    assert _account_state(hooked, account_id) == (True, True)
    # An older update, delivered late, does not take it back.
    stale = events.account("acct_cranstoun", transfers="inactive", details_submitted=False)
    assert _deliver(client, events.event("evt_a0", "account.updated", stale, created=now - 600)).status_code == 200
    assert _account_state(hooked, account_id) == (True, True)
    stranger = events.account("acct_someone_else", transfers="active", details_submitted=True)
    _deliver(client, events.event("evt_a3", "account.updated", stranger, created=now))
    assert [(row[0], row[2]) for row in _recorded(hooked)] == [
        ("evt_a1", True), ("evt_a2", True), ("evt_a0", True), ("evt_a3", False)]


def _refused(client: FlaskClient, body: bytes, header: str | None) -> TestResponse:
    headers = {"Stripe-Signature": header} if header is not None else {}
    return client.post(URL, data=body, content_type="application/json", headers=headers)


@pytest.mark.parametrize(("case", "message"), [
    ("no header", "The Stripe-Signature header is missing."),
    ("another secret", "The signature is refused: No signatures found matching"),
    ("body changed after signing", "The signature is refused: No signatures found matching"),
    ("signed too long ago", "The signature is refused: Timestamp outside the tolerance zone"),
    ("signed in the future", "The signature's time is too far in the future."),
    ("not json", "The body is not a Stripe event in JSON."),
    ("json but not an event", "The body is not a Stripe event"),
    ("garbled header", "The signature is refused: Unable to extract timestamp"),
])
def test_a_delivery_that_is_not_a_genuine_current_event_is_refused_and_changes_nothing(
        hooked: Flask, client: FlaskClient, world: World, case: str, message: str) -> None:
    statement_id = _statement(hooked, world)
    body = body_of(_invoice_event("evt_x", "invoice.paid", status="paid", paid=10000))
    now = int(time.time())
    header: str | None = signature(body)
    if case == "no header":
        header = None
    elif case == "another secret":
        header = signature(body, secret="whsec_someone_else")
    elif case == "body changed after signing":
        body = body.replace(b"10000", b"99999")
    elif case == "signed too long ago":
        header = signature(body, at=now - 301)
    elif case == "signed in the future":
        header = signature(body, at=now + 360)  # a minute past the edge, so a slow request cannot reach it
    elif case == "not json":
        body = b"paid, honest"
        header = signature(body)
    elif case == "json but not an event":
        body = b'{"object": "event"}'
        header = signature(body)
    elif case == "garbled header":
        header = "t=now,v1=nonsense"
    answer = _refused(client, body, header)
    assert answer.status_code == 400
    assert answer.mimetype == "text/plain"
    assert answer.text.startswith(message)
    assert _recorded(hooked) == []
    assert _read(hooked, world, statement_id).invoice_status is InvoiceStatus.DRAFT


def test_a_time_within_the_tolerance_either_way_is_taken(hooked: Flask, client: FlaskClient, world: World) -> None:
    statement_id = _statement(hooked, world)
    now = int(time.time())
    early = _invoice_event("evt_1", "invoice.finalized", status="open")
    late = _invoice_event("evt_2", "invoice.paid", status="paid", paid=10000)
    assert _deliver(client, early, at=now - 240).status_code == 200
    assert _deliver(client, late, at=now + 240).status_code == 200
    assert _read(hooked, world, statement_id).invoice_status is InvoiceStatus.PAID


def test_a_body_too_large_to_be_an_event_is_refused_unread(hooked: Flask, client: FlaskClient) -> None:
    body = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    answer = _refused(client, body, signature(body))
    assert (answer.status_code, answer.text) == (413, "The body is too large for a Stripe event.\n")
    assert _recorded(hooked) == []


def test_without_a_signing_secret_nothing_is_taken(app: Flask, client: FlaskClient, world: World) -> None:
    body = body_of(_invoice_event("evt_1", "invoice.paid", status="paid"))
    answer = _refused(client, body, signature(body))
    assert answer.status_code == 400
    assert "no signing secret is set" in answer.text
    assert _recorded(app) == []


@requires_postgresql
@pytest.mark.postgres
def test_the_same_event_delivered_twice_at_once_takes_effect_once(
        hooked: Flask, world: World, database: databases.TestDatabase) -> None:
    """The first delivery records the event and is held up changing the statement (a lock on the
    statements); the second, meanwhile, waits on the event's unique key; when the first commits, the
    second finds the event taken and answers 200 with no effect."""
    statement_id = _statement(hooked, world)
    superuser = create_engine(database.inspector_url)
    answers: dict[str, TestResponse] = {}
    paid = _invoice_event("evt_together", "invoice.paid", status="paid", paid=10000)

    def send(name: str) -> threading.Thread:
        def run() -> None:
            answers[name] = _deliver(hooked.test_client(), paid)
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    try:
        with superuser.connect() as holder:
            holder.execute(text("LOCK TABLE billing_statements IN EXCLUSIVE MODE"))
            first = send("first")
            _wait_until(superuser, lambda waiting: waiting >= 1)
            second = send("second")
            _wait_until(superuser, lambda waiting: waiting >= 2)
            holder.rollback()
        first.join(timeout=60)
        second.join(timeout=60)
    finally:
        superuser.dispose()
    assert sorted(answer.text for answer in answers.values()) == ["Already received.\n", "Received.\n"]
    assert {answer.status_code for answer in answers.values()} == {200}
    with hooked.app_context():
        assert db.session.scalar(select(func.count()).select_from(StripeEvent)) == 1
    assert _read(hooked, world, statement_id).invoice_status is InvoiceStatus.PAID


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
    pytest.fail("the deliveries never waited on a lock")

