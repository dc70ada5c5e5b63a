"""A platform admin adds a contract in the console, in a real browser: a mistake is named on its field, then the
contract is saved; the force's admin reads it, prices and all, and cannot change it."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session, sign_in
from tests.conftest import World

pytestmark = BROWSER_MARKS


def test_a_contract_is_added_in_the_console_and_read_by_the_force(
        browser_page: Session, live_server: str, world: World) -> None:
    page = browser_page.page
    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(page, world.email("platform_admin"))
    page.goto("/admin/billing/contracts/")
    expect(page.locator("body")).to_contain_text("There are no contracts yet.")
    page.get_by_role("button", name="Add a contract").click()
    page.get_by_role("link", name="West Midlands Police").click()
    page.get_by_label("Provider").select_option(label="Cranstoun")
    page.locator("#starts_on-day").fill("1")
    page.locator("#starts_on-month").fill("10")
    page.locator("#starts_on-year").fill("2026")
    page.get_by_label("Exempt from VAT").check()
    page.get_by_label("Platform fee").fill("2.5")
    page.locator("#price_referral_accepted_divert").fill("-70")
    page.get_by_role("button", name="Save contract").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("The price of referral accepted on DIVERT (adults) cannot be negative")
    summary.get_by_role("link").click()  # the summary's link takes the reader to the field
    expect(page.locator("#price_referral_accepted_divert")).to_be_focused()
    page.screenshot(path=str(ARTIFACTS / "contract-form-error.png"), full_page=True)
    page.locator("#price_referral_accepted_divert").fill("70")
    page.locator("#price_session_attended_divert").fill("25")
    page.get_by_role("button", name="Save contract").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("is saved")
    expect(page.get_by_role("heading", level=1)).to_have_text("West Midlands Police and Cranstoun")
    expect(page.locator("body")).to_contain_text("From 1 October 2026, until further notice")
    page.screenshot(path=str(ARTIFACTS / "contract-console.png"), full_page=True)
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, world.email("a_force_admin"))
    page.goto("/west-midlands/billing/contracts/")
    page.get_by_role("link", name="Cranstoun").click()
    prices = page.get_by_role("table")
    expect(prices).to_contain_text("£70.00")
    expect(prices).to_contain_text("£25.00")
    expect(prices).to_contain_text("Not billed")
    expect(page.get_by_role("button", name="Change this contract")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "contract-force.png"), full_page=True)
    assert browser_page.errors == []
    assert browser_page.failed == []
