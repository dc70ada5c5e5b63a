"""Statements in a real browser: a force admin's list and statement, Cranstoun's admin's own,
and a platform admin reversing a ledger row (a blank reason named in place first)."""

from __future__ import annotations

import re
from datetime import date

from flask import Flask
from playwright.sync_api import Browser, Page, expect

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ProviderRole
from diversion.billing import ledger, statements
from diversion.billing.models import ClosedMonth, VatTreatment
from diversion.cases.models import State
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.billing.conftest import Billing, at, make_contract, moved
from tests.billing.conftest import billing as billing  # noqa: PLC0414 - the fixture, shared with the billing tests
from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World
from tests.providers.conftest import add_provider_member

pytestmark = BROWSER_MARKS


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-user")).to_contain_text(email)


def _another(page: Page) -> Page:
    browser: Browser | None = page.context.browser
    assert browser is not None
    base = page.url.split("/", 3)
    return browser.new_context(base_url=f"{base[0]}//{base[2]}", viewport={"width": 1280, "height": 900}).new_page()


def _ledger(app: Flask, billing: Billing) -> None:
    """October (closed, its statement settled) and November (open) of West Midlands with Cranstoun."""
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1), fee=45000,
                  vat=VatTreatment.STANDARD, basis_points=300)
    for day in (2, 3, 6):
        moved(app, billing, State.ACCEPTED, at(2026, 10, day))
    for day in (8, 9, 15, 16):
        moved(app, billing, State.ATTENDED, at(2026, 10, day))
    moved(app, billing, State.COMPLETED, at(2026, 10, 20))
    moved(app, billing, State.ACCEPTED, at(2026, 11, 4))
    with app.app_context(), scoped(billing.force.id):
        tenant = db.session.get(Tenant, billing.force.id)
        assert tenant is not None
        ledger.charge_monthly_fees(tenant, date(2026, 10, 1), actor=SYSTEM)
        db.session.add(ClosedMonth(tenant_id=tenant.id, month=date(2026, 10, 1)))
        statements.settle_month(tenant, date(2026, 10, 1), actor=SYSTEM)
        db.session.commit()


def test_statements_for_the_force_the_provider_and_the_platform(
        app: Flask, browser_page: Session, world: World, billing: Billing) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    _ledger(app, billing)
    page = browser_page.page
    _sign_in(page, world.email("a_force_admin"))
    page.goto("/west-midlands/billing/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Statements of West Midlands Police")
    expect(page.locator("table")).to_contain_text("October 2026")
    page.set_default_timeout(5000)
    page.screenshot(path=str(ARTIFACTS / "billing-force-statements.png"), full_page=True)
    page.get_by_role("link", name=re.compile(r"^Cranstoun\s*, October 2026$")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("West Midlands Police to Cranstoun")
    expect(page.locator(".govuk-summary-list")).to_contain_text("Not sent")
    expect(page.get_by_role("table").first).to_contain_text("Referral accepted, DIVERT (adults)")
    assert page.get_by_role("link", name="Reverse").count() == 0
    page.screenshot(path=str(ARTIFACTS / "billing-force-statement.png"), full_page=True)

    add_provider_member(app, world.users["provider_staff"], billing.provider, ProviderRole.ADMIN)
    provider = _another(page)
    _sign_in(provider, world.email("provider_staff"))
    provider.goto("/provider/billing/")
    expect(provider.locator("table")).to_contain_text("West Midlands Police")
    provider.screenshot(path=str(ARTIFACTS / "billing-provider-statements.png"), full_page=True)

    admin = _another(page)
    _sign_in(admin, world.email("platform_admin"))
    admin.goto("/admin/billing/?month=2026-10")
    expect(admin.locator("table")).to_contain_text("Cranstoun")
    admin.screenshot(path=str(ARTIFACTS / "billing-admin-month.png"), full_page=True)
    admin.get_by_role("link", name=re.compile(r"^Cranstoun\s*, West Midlands Police$")).click()
    admin.get_by_role("link", name="Reverse").first.click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Reverse a ledger row")
    admin.get_by_role("button", name="Reverse the row").click()
    summary = admin.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter why this row is reversed")
    admin.screenshot(path=str(ARTIFACTS / "billing-admin-reverse-error.png"), full_page=True)
    admin.get_by_label("Why is this row reversed?").fill("The fee was agreed from November")
    admin.get_by_role("button", name="Reverse the row").click()
    expect(admin.locator(".govuk-notification-banner--success")).to_contain_text("The row is reversed")
    admin.screenshot(path=str(ARTIFACTS / "billing-admin-statement.png"), full_page=True)
    assert browser_page.errors == []
    assert browser_page.failed == []
