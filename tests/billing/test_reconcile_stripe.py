"""Reconciliation against the invoices on Stripe: the SDK reads the local Stripe server, where a
test bills a statement as the monthly close does and then changes, pays or loses what is there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
import stripe
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.billing.models import InvoiceStatus, Statement, StatementLine
from diversion.billing.reconcile import Mismatch, Problem, reconcile
from diversion.extensions import db
from diversion.tenancy.context import scoped
from tests.billing.stripe_events import SECRET
from tests.billing.test_reconcile import MONTH, TODAY, bill, run_reconcile
from tests.conftest import World, sign_in
from tests.stripe_server import StripeServer

KEY = "sk_test_reconciliation"


@pytest.fixture
def server(app: Flask) -> Iterator[StripeServer]:
    with StripeServer() as running:
        app.config.update(STRIPE_SECRET_KEY=KEY, STRIPE_API_BASE=running.url, STRIPE_WEBHOOK_SECRET=SECRET,
                          STRIPE_TIMEOUT_SECONDS=5)
        yield running


@pytest.fixture
def sdk(server: StripeServer) -> Iterator[stripe.StripeClient]:
    http = stripe.RequestsClient(timeout=5)
    yield stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0, http_client=http)
    http.close()


@dataclass(frozen=True)
class OnStripe:
    invoice_id: str
    item_ids: tuple[str, ...]


def invoice_statement(app: Flask, world: World, sdk: stripe.StripeClient, *, skip_last_line: bool = False,
                      extra_item: bool = False) -> OnStripe:
    """Force A's statement billed on Stripe as the close bills it: one item per line, standard VAT,
    finalised; its invoice and items recorded on the statement."""
    billed = bill(app, world, invoice_id=None, status=InvoiceStatus.NOT_SENT, due_on=None)
    customer = sdk.v1.customers.create({"name": "West Midlands Police"})
    vat = sdk.v1.tax_rates.create({"display_name": "VAT", "percentage": 20.0, "inclusive": False})
    invoice = sdk.v1.invoices.create({"customer": customer.id, "collection_method": "send_invoice",
                                      "days_until_due": 30, "metadata": {"diversion_force": "west-midlands"}})
    items = []
    with app.app_context(), scoped(world.a.id):
        lines = list(db.session.scalars(select(StatementLine).order_by(StatementLine.kind)))
        for line in lines[:-1] if skip_last_line else lines:
            item = sdk.v1.invoice_items.create({
                "customer": customer.id, "invoice": invoice.id, "quantity": line.quantity,
                "unit_amount_decimal": str(line.unit_pence), "currency": "gbp", "tax_rates": [vat.id],
                "description": line.kind.label, "metadata": {"diversion_line": str(line.id)}})
            line.stripe_item_id = item.id
            items.append(item.id)
        if extra_item:
            sdk.v1.invoice_items.create({"customer": customer.id, "invoice": invoice.id, "quantity": 1,
                                         "unit_amount_decimal": "999", "currency": "gbp",
                                         "description": "Something else"})
        finalized = sdk.v1.invoices.finalize_invoice(invoice.id)
        statement = db.session.get(Statement, billed.statement)
        assert statement is not None
        statement.stripe_invoice_id = invoice.id
        statement.invoice_status = InvoiceStatus.OPEN
        statement.invoice_due_on = date(2026, 12, 31)
        db.session.commit()
    assert finalized.status == "open"
    return OnStripe(invoice.id, tuple(items))


def _reconciled(app: Flask, server: StripeServer, *, clear: bool = True) -> list[Mismatch]:
    if clear:
        server.clear_requests()
    with app.app_context():
        from diversion.billing.stripe_api import opened

        with opened() as client:
            found = reconcile(MONTH, stripe_client=client, today=TODAY)
    assert found.stripe_on
    return list(found.mismatches)


def test_a_statement_and_its_invoice_that_agree(app: Flask, world: World, server: StripeServer,
                                                sdk: stripe.StripeClient) -> None:
    on_stripe = invoice_statement(app, world, sdk)
    assert _reconciled(app, server) == []
    # Reading only: the invoice and its lines, nothing written on Stripe.
    assert server.calls() == [f"GET /v1/invoices/{on_stripe.invoice_id}",
                              f"GET /v1/invoices/{on_stripe.invoice_id}/lines"]


def test_a_line_changed_on_stripe_is_a_wrong_amount(app: Flask, world: World, server: StripeServer,
                                                    sdk: stripe.StripeClient) -> None:
    on_stripe = invoice_statement(app, world, sdk)
    server.change_line(on_stripe.invoice_id, 0, quantity=4)
    found = _reconciled(app, server)
    assert [(m.problem, m.detail) for m in found] == [
        (Problem.WRONG_AMOUNT, "The invoice on Stripe bills 4 × Referral accepted, education, at £70.00 (£280.00); "
                               "the statement has 3 (£210.00)."),
        (Problem.WRONG_AMOUNT, "The invoice on Stripe totals £372.00; the statement totals £288.00 with VAT.")]
    assert {m.reference for m in found} == {on_stripe.invoice_id}


def test_a_line_missing_on_stripe_and_a_line_stripe_has_more(app: Flask, world: World, server: StripeServer,
                                                            sdk: stripe.StripeClient) -> None:
    invoice_statement(app, world, sdk, skip_last_line=True, extra_item=True)
    found = _reconciled(app, server)
    assert [(m.problem, m.detail) for m in found] == [
        (Problem.MISSING_LINE, "The invoice on Stripe has no line for 2 × Session attended, education, at £15.00 "
                               "(£30.00)."),
        (Problem.UNEXPECTED_LINE, "The invoice on Stripe has a line (Something else) of 1 for £9.99 that the "
                                  "statement does not have."),
        (Problem.WRONG_AMOUNT, "The invoice on Stripe totals £261.99; the statement totals £288.00 with VAT.")]


def test_a_payment_on_stripe_is_a_mismatch_until_its_event_arrives(
        app: Flask, client: FlaskClient, world: World, server: StripeServer, sdk: stripe.StripeClient) -> None:
    on_stripe = invoice_statement(app, world, sdk)
    paid = sdk.v1.invoices.pay(on_stripe.invoice_id, {"paid_out_of_band": True})
    assert [(m.problem, m.detail) for m in _reconciled(app, server)] == [
        (Problem.PAID_AMOUNT_DIFFERS, "Stripe says the invoice is paid (£288.00); here it is “Sent, awaiting "
                                      "payment”: a payment was not recorded.")]
    # Stripe's event about it, signed as Stripe signs it, reaches the webhook; then all agrees.
    event = server.event("invoice.paid", paid.to_dict())
    body = json.dumps(event).encode()
    answer = client.post("/billing/stripe/webhook", data=body, content_type="application/json",
                         headers={"Stripe-Signature": StripeServer.signature_header(body, SECRET)})
    assert answer.status_code == 200
    assert _reconciled(app, server) == []
    # Replayed, it changes nothing, and all still agrees.
    again = client.post("/billing/stripe/webhook", data=body, content_type="application/json",
                        headers={"Stripe-Signature": StripeServer.signature_header(body, SECRET)})
    assert (again.status_code, again.text) == (200, "Already received.\n")
    assert _reconciled(app, server) == []


def test_an_invoice_voided_on_stripe_without_our_knowing(app: Flask, world: World, server: StripeServer,
                                                        sdk: stripe.StripeClient) -> None:
    on_stripe = invoice_statement(app, world, sdk)
    sdk.v1.invoices.void_invoice(on_stripe.invoice_id)
    assert [(m.problem, m.detail) for m in _reconciled(app, server)] == [
        (Problem.STATUS_DIFFERS, "Stripe says the invoice is “Void”; here it is “Sent, awaiting payment”: an event "
                                 "from Stripe was missed.")]


def test_an_invoice_stripe_cannot_be_asked_for_is_listed_not_checked(
        app: Flask, world: World, server: StripeServer, sdk: stripe.StripeClient) -> None:
    on_stripe = invoice_statement(app, world, sdk)
    server.clear_requests()
    server.die_after(0)
    found = _reconciled(app, server, clear=False)
    assert [(m.problem, m.reference) for m in found] == [(Problem.NOT_CHECKED, on_stripe.invoice_id)]
    assert found[0].detail == "Stripe could not be asked for the invoice: Stripe did not answer."


def test_an_invoice_stripe_does_not_have(app: Flask, world: World, server: StripeServer,
                                         sdk: stripe.StripeClient) -> None:
    invoice_statement(app, world, sdk)
    with app.app_context(), scoped(world.a.id):
        statement = db.session.scalar(select(Statement))
        assert statement is not None
        statement.stripe_invoice_id = "in_lost"
        db.session.commit()
    assert [(m.problem, m.detail) for m in _reconciled(app, server)] == [
        (Problem.NOT_CHECKED, "Stripe could not be asked for the invoice: Stripe has no such invoice.")]


def test_the_page_is_clean_then_shows_a_line_changed_on_stripe(
        app: Flask, client: FlaskClient, world: World, server: StripeServer, sdk: stripe.StripeClient) -> None:
    on_stripe = invoice_statement(app, world, sdk)
    assert sign_in(client, world.email("platform_admin")).status_code == 302
    page = client.get("/admin/billing/reconciliation?month=2026-11")
    assert "1 statement compared, 1 invoice read from Stripe." in page.text
    assert "No mismatches" in page.text
    server.change_line(on_stripe.invoice_id, 1, quantity=1)
    page = client.get("/admin/billing/reconciliation?month=2026-11")
    assert "2 mismatches" in page.text
    assert "The invoice on Stripe bills 1 × Session attended, education, at £15.00 (£15.00); " \
           "the statement has 2 (£30.00)." in page.text
    assert on_stripe.invoice_id not in page.text


def test_the_command_reads_stripe_and_fails_on_a_changed_line(
        app: Flask, world: World, server: StripeServer, sdk: stripe.StripeClient) -> None:
    on_stripe = invoice_statement(app, world, sdk)
    code, output = run_reconcile(app, "--month", "2026-11")
    assert (code, output.splitlines()) == (0, [
        "Reconciliation of November 2026: 1 statement, 1 invoice read from Stripe.", "No mismatches."])
    server.change_line(on_stripe.invoice_id, 0, quantity=2)
    code, output = run_reconcile(app, "--month", "2026-11", "--tenant", "west-midlands")
    assert code == 1
    assert output.splitlines()[1:3] == [
        "2 mismatches:",
        "- Wrong amount: West Midlands Police / Cranstoun: The invoice on Stripe bills 2 × Referral accepted, "
        f"education, at £70.00 (£140.00); the statement has 3 (£210.00). [{on_stripe.invoice_id}]"]


def test_a_statement_the_close_did_not_invoice(app: Flask, world: World, server: StripeServer) -> None:
    """With Stripe on, a statement with no invoice is billed nowhere; one skipped for its provider's
    account is the close's to report, and is not listed again."""
    bill(app, world, invoice_id=None, status=InvoiceStatus.NOT_SENT, due_on=None)
    assert [(m.problem, m.detail) for m in _reconciled(app, server)] == [
        (Problem.MISSING_LINE, "No invoice on Stripe bills this statement's 2 lines (£240.00).")]
    assert server.calls() == []
    with app.app_context(), scoped(world.a.id):
        statement = db.session.scalar(select(Statement))
        assert statement is not None
        statement.invoice_status = InvoiceStatus.SKIPPED
        db.session.commit()
    assert _reconciled(app, server) == []
