"""Billing end to end in a real browser, on the demo pointed at the local Stripe server: Cranstoun's admin
sets up payouts; a platform admin closes last month and sees, per force and provider, the statement and
its invoice; Cranstoun's admin sees its own statements and nothing of another provider's; a replayed
``invoice.paid`` changes nothing; the reconciliation is clean, then shows a line changed on Stripe."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from diversion.billing.demo import seed_contracts
from diversion.billing.models import InvoiceStatus, Statement, StripeEvent
from diversion.billing.months import month_key, month_label, month_of, previous_month
from diversion.catalogue.models import Provider
from diversion.demo import case_work_window, demo_forces, seed_case_work, seed_demo
from diversion.extensions import db
from diversion.jobs import work_now
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.stripe_server import StripeServer

pytestmark = BROWSER_MARKS
DEMO_PASSWORD = "demo-password-for-the-browser"
KEY = "sk_test_browser_billing"
WEBHOOK_SECRET = "whsec_browser_billing"
FORCES = ["west-midlands", "thames-valley", "durham"]
LAST_MONTH = previous_month(month_of(datetime.now(UTC)))


@pytest.fixture
def server(app: Flask) -> Iterator[StripeServer]:
    with StripeServer() as running:
        app.config.update(STRIPE_SECRET_KEY=KEY, STRIPE_API_BASE=running.url, STRIPE_NETWORK_RETRIES=0,
                          STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, STRIPE_WEBHOOK_TOLERANCE_SECONDS=300)
        yield running


def _seed(app: Flask) -> None:
    with app.app_context():
        today = datetime.now(UTC).date()
        seed_demo(password=DEMO_PASSWORD, forces=demo_forces(today=today).filled)
        for tenant in db.session.scalars(select(Tenant).where(Tenant.slug.in_(FORCES))):
            with scoped(tenant.id):
                # Contracts first: the case work's moves are billed as they are announced.
                seed_contracts(tenant, starts_on=case_work_window(today)[0])
                seed_case_work(tenant, today=today, per_state=2)
        db.session.commit()


def _work_jobs(app: Flask) -> None:
    """Run the due jobs, as the worker would: in a thread of its own, since Playwright's event loop
    runs in this one."""
    failure: list[BaseException] = []

    def work() -> None:
        try:
            work_now(app)
        except BaseException as error:  # raised again below, in the test's thread
            failure.append(error)

    worker = threading.Thread(target=work, name="billing-jobs")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-user")).to_contain_text(email)


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"billing-month-{name}.png"), full_page=True)


def _statement(app: Flask, force: str, provider: str) -> Statement:
    with app.app_context():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == force))
        assert tenant is not None
        with scoped(tenant.id):
            found = db.session.scalar(select(Statement).join(Provider, Provider.id == Statement.provider_id)
                                      .where(Provider.slug == provider, Statement.month == LAST_MONTH))
            assert found is not None
            db.session.expunge(found)
            return found


def _providers_of(app: Flask) -> dict[str, set[str]]:
    """Each seeded force's providers with a statement last month, by slug."""
    with app.app_context():
        found: dict[str, set[str]] = {}
        for tenant in db.session.scalars(select(Tenant).where(Tenant.slug.in_(FORCES))):
            with scoped(tenant.id):
                found[tenant.slug] = set(db.session.scalars(
                    select(Provider.slug).join(Statement, Statement.provider_id == Provider.id)
                    .where(Statement.month == LAST_MONTH)))
        return found


def _set_up_payouts(page: Page, live_server: str) -> None:
    """Cranstoun's admin sets up payouts on Stripe's Account Link page, and comes back ready."""
    _sign_in(page, "admin@cranstoun.example")
    page.goto("/provider/billing/payouts/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Payouts")
    expect(page.locator("main")).to_contain_text("Not set up")
    _shot(page, "payouts-not-set-up")
    page.get_by_role("button", name="Set up payouts on Stripe").click()
    expect(page.locator(".govuk-tag")).to_have_text("Payouts can be received")
    assert page.url.startswith(live_server)
    _shot(page, "payouts-ready")
    _sign_out(page)


def _close_last_month(app: Flask, page: Page) -> None:
    """The platform admin closes last month from the console, and sees how it went."""
    _sign_in(page, "platform@diversion.example")
    page.goto("/admin/")
    page.get_by_role("link", name="Billing").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Billing")
    page.get_by_role("link", name="Close a month").click()
    expect(page.get_by_label("Month")).to_have_value(month_key(LAST_MONTH))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Close {month_label(LAST_MONTH)} for every force?")
    expect(page.locator("main")).to_contain_text("makes each statement of the month final")
    _shot(page, "close-confirm")
    page.get_by_role("button", name="Close the month").click()
    expect(page.locator("main")).to_contain_text("This close has not started yet")
    _shot(page, "close-waiting")
    _work_jobs(app)
    page.reload()
    expect(page.locator(".govuk-tag").first).to_have_text("Finished")
    expect(page.locator("main")).to_contain_text(f"{month_label(LAST_MONTH)} is closed for the forces asked")
    page.get_by_label("Search the forces").fill("West Midlands")
    page.get_by_role("button", name="Search").click()
    table = page.locator("table.govuk-table")
    expect(table).to_contain_text("West Midlands Police")
    expect(table).to_contain_text("Closed")
    expect(table).to_contain_text("Sent, awaiting payment")
    _shot(page, "close-finished")


def _statements_per_force_and_provider(app: Flask, page: Page, providers: dict[str, set[str]],
                                       names: dict[str, str]) -> Statement:
    """Per force and provider, the statement and its invoice; West Midlands' with Cranstoun opened."""
    table = page.locator("table.govuk-table")
    for force, slugs in sorted(providers.items()):
        with app.app_context():
            force_name = db.session.scalar(select(Tenant.name).where(Tenant.slug == force))
        page.goto(f"/admin/billing/?month={month_key(LAST_MONTH)}&q={force_name}")
        for slug in slugs:
            link = page.get_by_role("link", name=re.compile(rf"^{re.escape(names[slug])}\s*, {force_name}$"))
            row = table.locator("tr", has=link)
            expect(row).to_have_count(1)
            expected = ("Sent, awaiting payment" if slug == "cranstoun"
                        else "Not sent: the provider cannot receive payouts yet")
            expect(row).to_contain_text(expected)
        _shot(page, f"admin-statements-{force}")

    page.goto(f"/admin/billing/?month={month_key(LAST_MONTH)}&q=West Midlands")
    cranstoun = names["cranstoun"]
    page.get_by_role("link", name=re.compile(rf"^{cranstoun}\s*, West Midlands Police$")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"West Midlands Police to {cranstoun}")
    main = page.locator("main")
    expect(main).to_contain_text("Sent, awaiting payment")
    statement = _statement(app, "west-midlands", "cranstoun")
    assert statement.stripe_invoice_id
    assert statement.invoice_status is InvoiceStatus.OPEN
    assert statement.net_pence > 0
    expect(main).to_contain_text("Referral accepted")
    for pence in (statement.net_pence, statement.to_provider_pence):
        expect(main).to_contain_text(f"£{pence / 100:,.2f}")
    _shot(page, "admin-statement")
    _sign_out(page)
    return statement


def _cranstoun_sees_its_own(page: Page, others: list[str]) -> None:
    """Cranstoun's admin: its statements for West Midlands and Thames Valley, nothing of another provider."""
    _sign_in(page, "admin@cranstoun.example")
    page.goto("/provider/billing/")
    main = page.locator("main")
    expect(main).to_contain_text("West Midlands Police")
    expect(main).to_contain_text("Thames Valley Police")
    expect(main).to_contain_text(month_label(LAST_MONTH))
    for name in others:
        expect(page.locator("body")).not_to_contain_text(name)
    _shot(page, "provider-statements")
    answer = page.goto(f"/provider/billing/durham/{month_key(LAST_MONTH)}")  # another provider's statement
    assert answer is not None
    assert answer.status == 404
    _shot(page, "provider-other-statement-404")


def _paid_twice(app: Flask, page: Page, server: StripeServer, live_server: str, invoice_id: str) -> None:
    """Stripe reports West Midlands' invoice paid, twice: the second delivery changes nothing."""
    paid = server.objects[invoice_id]
    paid.update(status="paid", amount_paid=paid["amount_due"], amount_remaining=0)
    event = server.event("invoice.paid", paid)
    for _ in range(2):
        status, _body = server.deliver(live_server + "/billing/stripe/webhook", event, WEBHOOK_SECRET)
        assert status == 200
        after = _statement(app, "west-midlands", "cranstoun")
        assert (after.invoice_status, after.amount_paid_pence) == (InvoiceStatus.PAID, paid["amount_due"])
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(StripeEvent)
                                     .where(StripeEvent.event_id == event["id"])) == 1
    page.goto(f"/provider/billing/west-midlands/{month_key(LAST_MONTH)}")
    expect(page.locator(".govuk-summary-list")).to_contain_text("Paid")
    _shot(page, "provider-statement-paid")
    _sign_out(page)


def _reconciled(page: Page, server: StripeServer, invoice_id: str) -> None:
    """The reconciliation: clean, then a line changed on Stripe is named."""
    _sign_in(page, "platform@diversion.example")
    page.goto(f"/admin/billing/reconciliation?month={month_key(LAST_MONTH)}")
    expect(page.locator(".govuk-panel")).to_contain_text("No mismatches")
    _shot(page, "reconciliation-clean")
    server.change_line(invoice_id, 0, quantity=99)
    page.reload()
    table = page.locator("table.govuk-table")
    expect(table.locator("caption")).to_contain_text("mismatch")
    expect(table).to_contain_text("West Midlands Police")
    expect(table).to_contain_text("The invoice on Stripe bills 99 ×")
    _shot(page, "reconciliation-line-changed")


def test_a_month_billed_end_to_end(app: Flask, browser_page: Session, live_server: str,
                                   server: StripeServer) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    _seed(app)
    page = browser_page.page
    _set_up_payouts(page, live_server)
    _close_last_month(app, page)
    providers = _providers_of(app)
    assert "cranstoun" in providers["west-midlands"]
    assert "cranstoun" in providers["thames-valley"]
    assert "cranstoun" not in providers["durham"]
    with app.app_context():
        names = dict(db.session.execute(select(Provider.slug, Provider.name)).tuples().all())
    others = sorted({names[slug] for slugs in providers.values() for slug in slugs} - {names["cranstoun"]})
    assert others
    statement = _statements_per_force_and_provider(app, page, providers, names)
    assert statement.stripe_invoice_id is not None
    _cranstoun_sees_its_own(page, others)
    _paid_twice(app, page, server, live_server, statement.stripe_invoice_id)
    _reconciled(page, server, statement.stripe_invoice_id)
    assert browser_page.errors == []
    assert browser_page.failed == []
