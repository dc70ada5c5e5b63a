"""The monthly close, against the local Stripe server through the official SDK."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import stripe
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.accounts.access import SYSTEM, AccessRefused
from diversion.accounts.models import User
from diversion.billing.close import close_month
from diversion.billing.models import (
    ClosedMonth,
    ConnectedAccount,
    Contract,
    EventKind,
    InvoiceStatus,
    LedgerEntry,
    Statement,
    StatementLine,
    VatTreatment,
)
from diversion.billing.months import month_key, month_of, previous_month
from diversion.db import utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.jobs import work_now
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World, post_form, sign_in
from tests.stripe_server import StripeServer

KEY = "sk_test_close"
MONTH = previous_month(month_of(utcnow()))


@pytest.fixture
def server() -> Iterator[StripeServer]:
    with StripeServer() as running:
        yield running


@pytest.fixture
def billed(app: Flask, world: World, server: StripeServer) -> Flask:
    """The app with Stripe on (the local server), Cranstoun ready for payouts, and a month of ledger rows
    for West Midlands with Cranstoun (VAT at the standard rate, a 10% platform fee)."""
    app.config.update(STRIPE_SECRET_KEY=KEY, STRIPE_API_BASE=server.url, STRIPE_NETWORK_RETRIES=0)
    with app.app_context():
        account = server.handle("POST", "/v1/accounts", b"type=express&country=GB",
                                {"Authorization": f"Bearer {KEY}"})
        assert account is not None
        account_id = account[1]["id"]
        server.set_account(account_id, transfers=True)
        server.clear_requests()
        db.session.add(ConnectedAccount(provider_id=world.providers["cranstoun"].id, stripe_account_id=account_id,
                                        transfers_active=True, details_submitted=True))
        _rows(world.a.id, world.providers["cranstoun"].id, VatTreatment.STANDARD, 1000,
              [(EventKind.REFERRAL_ACCEPTED, "cannabis", 7000)] * 3
              + [(EventKind.SESSION_ATTENDED, "cannabis", 1500)] * 2)
        db.session.commit()
    return app


def _rows(tenant_id: int, provider_id: int, vat: VatTreatment, fee_bp: int,
          events: list[tuple[EventKind, str, int]]) -> None:
    with scoped(tenant_id):
        contract = Contract(tenant_id=tenant_id, provider_id=provider_id, starts_on=date(2020, 1, 1), vat=vat,
                            platform_fee_basis_points=fee_bp, notes="")
        db.session.add(contract)
        db.session.flush()
        moment = datetime(MONTH.year, MONTH.month, 10, 12, tzinfo=UTC)
        for number, (kind, pathway, unit) in enumerate(events):
            db.session.add(LedgerEntry(
                tenant_id=tenant_id, key=f"test-event:{provider_id}:{number}", provider_id=provider_id,
                contract_id=contract.id, month=MONTH, kind=kind, pathway=pathway, occurred_at=moment,
                unit_pence=unit, quantity=1, amount_pence=unit))
        db.session.flush()


def _force(world: World, which: str = "a") -> Tenant:
    found = db.session.get(Tenant, getattr(world, which).id)
    assert found is not None
    return found


def _statement(world: World, which: str = "a", provider: str = "cranstoun") -> Statement:
    with scoped(getattr(world, which).id):
        found = db.session.scalar(select(Statement).where(Statement.provider_id == world.providers[provider].id))
        assert found is not None
        return found


def test_a_month_is_billed_with_exactly_these_requests(billed: Flask, world: World, server: StripeServer) -> None:
    with billed.app_context():
        report = close_month(MONTH, tenant=_force(world), actor=SYSTEM)
        statement = _statement(world)
        with scoped(world.a.id):
            lines = list(db.session.scalars(select(StatementLine).order_by(StatementLine.kind)))
        sid, account = str(statement.id), server.of_kind("account")[0]["id"]

    assert [outcome.status for outcome in report.outcomes] == [InvoiceStatus.OPEN]
    invoice_id = statement.stripe_invoice_id
    assert invoice_id is not None
    assert statement.invoice_status is InvoiceStatus.OPEN
    assert statement.invoice_due_on is not None
    assert server.calls() == [
        "GET /v1/customers/search", "POST /v1/customers", "GET /v1/invoices", "POST /v1/invoices",
        "GET /v1/tax_rates", "POST /v1/tax_rates", "POST /v1/invoiceitems", "POST /v1/invoiceitems",
        f"POST /v1/invoices/{invoice_id}/finalize", f"POST /v1/invoices/{invoice_id}/send"]
    by_call = {each.call: each for each in server.requests}
    customer = by_call["POST /v1/customers"]
    assert customer.idempotency_key == "customer:west-midlands"
    assert customer.fields["metadata[diversion_force]"] == "west-midlands"
    invoice = by_call["POST /v1/invoices"]
    assert invoice.idempotency_key == f"invoice:{sid}"
    assert {name: invoice.fields[name] for name in (
        "collection_method", "days_until_due", "currency", "transfer_data[destination]", "application_fee_amount",
        "metadata[diversion_statement]", "metadata[month]",
        "payment_settings[payment_method_types][0]")} == {
        "collection_method": "send_invoice", "days_until_due": "30", "currency": "gbp",
        "transfer_data[destination]": account, "application_fee_amount": str(statement.platform_fee_pence),
        "metadata[diversion_statement]": sid, "metadata[month]": month_key(MONTH),
        "payment_settings[payment_method_types][0]": "customer_balance"}
    assert statement.platform_fee_pence == 2400  # 10% of 21,000 + 3,000
    items = [each for each in server.requests if each.call == "POST /v1/invoiceitems"]
    assert [(each.idempotency_key, each.fields["quantity"], each.fields["unit_amount_decimal"],
             each.fields["metadata[diversion_line]"], each.fields["metadata[diversion_statement]"])
            for each in items] == [(f"invoice-line:{line.id}", str(line.quantity), str(line.unit_pence), str(line.id),
                                    sid) for line in lines]
    assert all(each.fields["tax_rates[0]"].startswith("txr_") for each in items)
    assert by_call[f"POST /v1/invoices/{invoice_id}/finalize"].idempotency_key == f"finalize:{sid}"
    assert by_call[f"POST /v1/invoices/{invoice_id}/send"].idempotency_key == f"send:{sid}"
    stored = server.objects[invoice_id]
    assert stored["total"] == statement.net_pence + statement.vat_pence == 24000 + 4800
    assert server.sent_invoices == [invoice_id]


def test_running_it_twice_changes_nothing(billed: Flask, world: World, server: StripeServer) -> None:
    with billed.app_context():
        close_month(MONTH, tenant=_force(world), actor=SYSTEM)
        first = len(server.requests)
        before = _statement(world)
        report = close_month(MONTH, tenant=_force(world), actor=SYSTEM)
        after = _statement(world)
        with scoped(world.a.id):
            assert len(db.session.scalars(select(ClosedMonth)).all()) == 1
            assert len(db.session.scalars(select(Statement)).all()) == 1
    assert len(server.requests) == first  # not one request more
    assert (after.stripe_invoice_id, after.invoice_status) == (before.stripe_invoice_id, before.invoice_status)
    assert [outcome.status for outcome in report.outcomes] == [InvoiceStatus.OPEN]
    assert len(server.of_kind("invoice")) == 1


@pytest.mark.parametrize("carried_out", [False, True], ids=["cut-before", "answer-lost"])
@pytest.mark.parametrize("forget", [False, True], ids=["keys-kept", "keys-forgotten"])
@pytest.mark.parametrize("after", [1, 3, 4, 7, 8, 9])
def test_a_run_killed_half_way_resumes_without_duplicates(billed: Flask, world: World, server: StripeServer,
                                                          after: int, carried_out: bool, forget: bool) -> None:
    server.die_after(after, carried_out=carried_out)
    with billed.app_context(), pytest.raises(stripe.APIConnectionError):
        close_month(MONTH, tenant=_force(world), actor=SYSTEM)
    server.revive()
    if forget:
        server.forget_keys()
    with billed.app_context():
        db.session.rollback()
        report = close_month(MONTH, tenant=_force(world), actor=SYSTEM)
        statement = _statement(world)
        with scoped(world.a.id):
            lines = list(db.session.scalars(select(StatementLine)))
    assert [outcome.status for outcome in report.outcomes] == [InvoiceStatus.OPEN]
    assert len(server.of_kind("customer")) == 1
    assert len(server.of_kind("invoice")) == 1
    assert len(server.of_kind("tax_rate")) == 1
    invoice = server.objects[statement.stripe_invoice_id or ""]
    assert invoice["status"] == "open"
    assert len(invoice["lines"]["data"]) == len(lines) == 2
    assert sorted(line.stripe_item_id or "" for line in lines) == sorted(
        item["id"] for item in server.of_kind("invoiceitem"))
    assert server.sent_invoices[-1] == invoice["id"]


def test_a_provider_that_cannot_receive_transfers_is_skipped_and_reported(
        billed: Flask, world: World, server: StripeServer) -> None:
    with billed.app_context():
        _rows(world.a.id, world.providers["druglink"].id, VatTreatment.EXEMPT, 0,
              [(EventKind.COURSE_COMPLETED, "cannabis", 2000)])
        db.session.commit()
        report = close_month(MONTH, tenant=_force(world), actor=SYSTEM)
        skipped = _statement(world, provider="druglink")
    assert [each.status for each in report.skipped] == [InvoiceStatus.SKIPPED]
    assert "not set up payouts" in report.skipped[0].note
    assert skipped.invoice_status is InvoiceStatus.SKIPPED
    assert skipped.stripe_invoice_id is None
    assert len(server.of_kind("invoice")) == 1  # Cranstoun's only
    assert any("cannot receive payouts" in line for line in report.lines())


def test_an_account_not_ready_is_asked_again_and_skipped(billed: Flask, world: World, server: StripeServer) -> None:
    with billed.app_context():
        account = db.session.scalar(select(ConnectedAccount))
        assert account is not None
        account.transfers_active = False
        server.set_account(account.stripe_account_id, transfers=False)
        db.session.commit()
        report = close_month(MONTH, tenant=_force(world), actor=SYSTEM)
        assert report.skipped[0].note == "the provider's account cannot receive payouts yet"
        assert server.calls() == [f"GET /v1/accounts/{account.stripe_account_id}"]
        server.set_account(account.stripe_account_id, transfers=True)
        again = close_month(MONTH, tenant=_force(world), actor=SYSTEM)
    assert [each.status for each in again.outcomes] == [InvoiceStatus.OPEN]


def test_without_stripe_months_lock_and_invoices_stay_unsent(billed: Flask, world: World,
                                                            server: StripeServer) -> None:
    billed.config.update(STRIPE_SECRET_KEY="")
    with billed.app_context():
        report = close_month(MONTH, actor=SYSTEM)
        statement = _statement(world)
        with scoped(world.b.id):
            assert db.session.scalar(select(ClosedMonth.month)) == MONTH
    assert statement.invoice_status is InvoiceStatus.NOT_SENT
    assert statement.net_pence == 24000
    assert not report.stripe_on
    assert server.requests == []
    assert "Stripe is not set up" in report.lines()[1]


def test_only_a_past_month_closes_and_only_for_platform_admins(billed: Flask, world: World) -> None:
    with billed.app_context():
        with pytest.raises(FieldError) as refused:
            close_month(month_of(utcnow()), actor=SYSTEM)
        assert refused.value.field == "month"
        force_admin = db.session.get(User, world.users["a_force_admin"].id)
        with pytest.raises(AccessRefused):
            close_month(MONTH, actor=force_admin)  # type: ignore[arg-type]
        with scoped(world.a.id):
            assert db.session.scalar(select(ClosedMonth)) is None


def test_the_command_closes_a_month(billed: Flask, world: World, server: StripeServer) -> None:
    runner = billed.test_cli_runner()
    result = runner.invoke(args=["billing", "close", "--month", month_key(MONTH), "--tenant", "west-midlands"])
    assert result.exit_code == 0, result.output
    assert "is closed for 1 force." in result.output
    assert "Sent, awaiting payment" in result.output
    assert len(server.of_kind("invoice")) == 1
    bad = runner.invoke(args=["billing", "close", "--month", "2026-13"])
    assert bad.exit_code != 0
    assert "--month" in bad.output
    unknown = runner.invoke(args=["billing", "close", "--month", month_key(MONTH), "--tenant", "atlantis"])
    assert "atlantis" in unknown.output


def test_the_command_says_when_stripe_does_not_answer(billed: Flask, server: StripeServer) -> None:
    server.die_after(2)
    result = billed.test_cli_runner().invoke(args=["billing", "close", "--month", month_key(MONTH)])
    assert result.exit_code == 1
    assert "run the command again to carry on" in result.output
    server.revive()
    again = billed.test_cli_runner().invoke(args=["billing", "close", "--month", month_key(MONTH)])
    assert again.exit_code == 0, again.output
    assert len(server.of_kind("invoice")) == 1


def test_the_console_starts_the_close_and_shows_its_progress(billed: Flask, world: World, server: StripeServer,
                                                            client: FlaskClient) -> None:
    sign_in(client, world.email("platform_admin"))
    page = client.get("/admin/billing/close/")
    assert f'value="{month_key(MONTH)}"' in page.text
    refused = post_form(client, "/admin/billing/close/", "/admin/billing/close/", {"month": "last month", "force": ""})
    assert refused.status_code == 400
    assert "Enter the month as year and month" in refused.text
    asked = post_form(client, "/admin/billing/close/", "/admin/billing/close/",
                      {"month": month_key(MONTH), "force": "west-midlands"})
    assert asked.status_code == 302  # asked first: nothing is closed yet
    confirm_url = asked.headers["Location"]
    assert confirm_url == f"/admin/billing/close/{month_key(MONTH)}?force=west-midlands"
    work_now(billed)
    assert not server.of_kind("invoice")
    with billed.app_context(), scoped(world.a.id):
        assert db.session.scalar(select(ClosedMonth)) is None
    started = post_form(client, confirm_url, confirm_url)
    assert started.status_code == 302
    work_now(billed)
    shown = client.get(started.headers["Location"])
    assert "Finished" in shown.text
    assert "Sent, awaiting payment (1)" in shown.text
    assert len(server.of_kind("invoice")) == 1
    with billed.app_context(), scoped(world.b.id):
        assert db.session.scalar(select(ClosedMonth)) is None  # only the force chosen


def test_the_real_stripe_base_refuses_internal_addresses_outside_development_and_test() -> None:
    from diversion.billing import stripe_api
    from diversion.config import ConfigError

    production = Flask("production")
    production.config.update(ENV_NAME="production", STRIPE_SECRET_KEY=KEY, OUTBOUND_ALLOWED_PORTS=(443,))
    assert stripe_api.api_base(production) is None  # Stripe itself
    for internal in ("http://127.0.0.1:12111", "https://10.0.0.8", "https://169.254.169.254/v1"):
        production.config["STRIPE_API_BASE"] = internal
        with pytest.raises(ConfigError, match="STRIPE_API_BASE"):
            stripe_api.client(production)
    testing = Flask("testing")
    testing.config.update(ENV_NAME="test", STRIPE_API_BASE="http://127.0.0.1:12111")
    assert stripe_api.api_base(testing) == "http://127.0.0.1:12111"
    assert stripe_api.client(testing) is None  # no key, no Stripe


def test_a_closed_month_takes_no_new_rows(billed: Flask, world: World) -> None:
    """Late events of a closed month go to the next open one (the ledger's ``open_month``)."""
    ledger = pytest.importorskip("diversion.billing.ledger")
    with billed.app_context():
        with scoped(world.a.id):
            assert ledger.open_month(world.a.id, MONTH) == MONTH
        close_month(MONTH, tenant=_force(world), actor=SYSTEM)
        with scoped(world.a.id):
            assert ledger.open_month(world.a.id, MONTH) == month_of(utcnow())
        with scoped(world.b.id):
            assert ledger.open_month(world.b.id, MONTH) == MONTH  # another force's month is its own


def test_the_console_asks_before_it_closes_a_month(billed: Flask, world: World, server: StripeServer,
                                                  client: FlaskClient) -> None:
    """The page names the month and the forces, says what closing does, and closes nothing until asked."""
    sign_in(client, world.email("platform_admin"))
    url = f"/admin/billing/close/{month_key(MONTH)}"
    page = client.get(f"{url}?force=west-midlands")
    assert page.status_code == 200
    label = MONTH.strftime("%B %Y")
    for words in (f"Close {label} for West Midlands Police?", "makes each statement of the month final",
                  "sends each force an invoice for each statement on Stripe", "A closed month cannot be opened again",
                  "govuk-button--warning", "Cancel", f'href="/admin/billing/close/?month={month_key(MONTH)}"'):
        assert words in page.text
    every = client.get(url)
    assert f"Close {label} for every force?" in every.text
    assert "West Midlands Police" in every.text
    assert "Durham" in every.text
    work_now(billed)
    assert not server.of_kind("invoice")
    with billed.app_context(), scoped(world.a.id):
        assert db.session.scalar(select(ClosedMonth)) is None
    assert client.post(url, data={}).status_code == 400  # no CSRF token: nothing queued
    for wrong in ("/admin/billing/close/2999-01", "/admin/billing/close/someday", f"{url}?force=nowhere"):
        assert client.get(wrong).status_code == 404
