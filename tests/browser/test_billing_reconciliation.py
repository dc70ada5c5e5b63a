"""The reconciliation page in a real browser: a clean month, then a month with mismatches, a wrong
month named in place, and the list searched."""

from __future__ import annotations

from datetime import UTC, date, datetime

import stripe
from flask import Flask
from playwright.sync_api import Page, expect

from diversion.billing.models import InvoiceStatus, StripeEvent
from diversion.extensions import db
from tests.billing.test_reconcile import bill
from tests.billing.test_reconcile_stripe import KEY, invoice_statement
from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World
from tests.stripe_server import StripeServer

pytestmark = BROWSER_MARKS


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-user")).to_contain_text(email)


def test_the_reconciliation_of_a_month(app: Flask, browser_page: Session, world: World) -> None:
    page = browser_page.page
    ARTIFACTS.mkdir(exist_ok=True)
    bill(app, world, status=InvoiceStatus.PAID, paid=28800)
    bill(app, world, force="b", invoice_id="in_durham_cranstoun", status=InvoiceStatus.OPEN,
         due_on=date(2026, 11, 30))
    with app.app_context():
        db.session.add(StripeEvent(event_id="evt_stray", type="invoice.paid", matched=False,
                                   created=datetime(2026, 11, 12, 9, tzinfo=UTC), stripe_invoice_id="in_stray",
                                   amount_paid_pence=4200))
        db.session.commit()
    _sign_in(page, world.email("platform_admin"))

    # One force whose month agrees.
    page.goto("/admin/billing/reconciliation")
    page.get_by_label("Month").fill("2026-11")
    page.get_by_label("Force").select_option(label="West Midlands Police")
    page.get_by_role("button", name="Reconcile").click()
    expect(page.get_by_role("heading", name="November 2026: West Midlands Police")).to_be_visible()
    expect(page.locator(".govuk-panel")).to_contain_text("No mismatches")
    page.screenshot(path=str(ARTIFACTS / "billing-reconciliation-clean.png"), full_page=True)

    # Every force: Durham's unpaid invoice and a payment of no invoice of ours.
    page.get_by_label("Force").select_option(label="Every force")
    page.get_by_role("button", name="Reconcile").click()
    table = page.locator("table.govuk-table")
    expect(table.locator("caption")).to_have_text("2 mismatches")
    expect(table).to_contain_text("Unpaid past due")
    expect(table).to_contain_text("Durham Constabulary")
    expect(table).to_contain_text("Due on 30 November 2026 and not paid: £288.00 outstanding")
    expect(table).to_contain_text("Stripe reported a payment of £42.00 on 12 November 2026")
    page.screenshot(path=str(ARTIFACTS / "billing-reconciliation-mismatches.png"), full_page=True)

    page.get_by_label("Search the mismatches").fill("durham")
    page.get_by_role("button", name="Search").click()
    expect(table.locator("caption")).to_have_text("1 mismatch matching “durham” of 2")

    # A month that is not one: named in place, and its link leads to the field.
    page.get_by_label("Month").fill("Nov 2026")
    page.get_by_role("button", name="Reconcile").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter the month as year and month, like 2026-11")
    summary.get_by_role("link").first.click()
    assert page.evaluate("document.activeElement.id") == "month"
    page.screenshot(path=str(ARTIFACTS / "billing-reconciliation-error.png"), full_page=True)
    assert browser_page.errors == []
    assert browser_page.failed == []


def test_the_page_shows_a_line_changed_on_the_stripe_server(app: Flask, browser_page: Session, world: World) -> None:
    """Done as the close does it, on the local Stripe server: clean; then a line edited on Stripe shows."""
    page = browser_page.page
    ARTIFACTS.mkdir(exist_ok=True)
    with StripeServer() as server:
        app.config.update(STRIPE_SECRET_KEY=KEY, STRIPE_API_BASE=server.url, STRIPE_TIMEOUT_SECONDS=5)
        http = stripe.RequestsClient(timeout=5)
        try:
            sdk = stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0,
                                      http_client=http)
            on_stripe = invoice_statement(app, world, sdk)
        finally:
            http.close()
        _sign_in(page, world.email("platform_admin"))
        page.goto("/admin/billing/reconciliation?month=2026-11")
        expect(page.get_by_text("1 statement compared, 1 invoice read from Stripe.")).to_be_visible()
        expect(page.locator(".govuk-panel")).to_contain_text("No mismatches")
        server.change_line(on_stripe.invoice_id, 0, quantity=4)
        page.get_by_role("button", name="Reconcile").click()
        table = page.locator("table.govuk-table")
        expect(table.locator("caption")).to_have_text("2 mismatches")
        expect(table).to_contain_text("The invoice on Stripe bills 4 × Referral accepted, education, at £70.00 "
                                      "(£280.00); the statement has 3 (£210.00).")
        page.screenshot(path=str(ARTIFACTS / "billing-reconciliation-stripe-line-changed.png"), full_page=True)
    assert browser_page.errors == []
