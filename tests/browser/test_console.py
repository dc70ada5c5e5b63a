"""The console in a real browser: a force's settings saved with their errors
shown in place, suspended after the confirmation page (its people's sessions
end there and then), reactivated, and the audit filtered and downloaded."""

from __future__ import annotations

import re
import tomllib
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World

pytestmark = BROWSER_MARKS


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-user")).to_contain_text(email)


def _other_page(page: Page) -> Page:
    """A page of a second browser context (another person, their own cookies) on the same server."""
    browser: Browser | None = page.context.browser
    assert browser is not None
    where = urlsplit(page.url)
    return browser.new_context(base_url=f"{where.scheme}://{where.netloc}",
                               viewport={"width": 1280, "height": 800}).new_page()


def test_settings_suspend_reactivate_and_the_audit(browser_page: Session, world: World) -> None:
    page = browser_page.page
    ARTIFACTS.mkdir(exist_ok=True)
    # The force admin's settings: a bad value is named in place, a good one saved.
    _sign_in(page, world.email("a_force_admin"))
    page.goto("/west-midlands/settings/")
    page.get_by_label("How long to keep case records, in months (optional)").fill("0")
    page.get_by_role("button", name="Save settings").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter a number of months from 1 to 1200")
    summary.get_by_role("link").first.click()
    assert page.evaluate("document.activeElement.id") == "retention_months"
    page.get_by_label("How long to keep case records, in months (optional)").fill("72")
    page.get_by_label("Welsh (Cymraeg)").check()  # refused: the force has no Welsh to show
    page.get_by_role("button", name="Save settings").click()
    expect(summary).to_contain_text("West Midlands Police cannot work in Welsh yet")
    page.get_by_label("Welsh (Cymraeg)").uncheck()
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        "Saved: how long to keep case records.")
    page.screenshot(path=str(ARTIFACTS / "console-settings.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the force's configuration").click()
    exported = tomllib.loads(download.value.path().read_text(encoding="utf-8"))
    assert (exported["slug"], exported["retention_months"], exported["languages"]) == (
        "west-midlands", 72, ["en"])

    # The platform admin suspends West Midlands, after the confirmation page.
    admin = _other_page(page)
    _sign_in(admin, world.email("platform_admin"))
    admin.goto("/admin/")
    admin.get_by_role("link", name="Suspend West Midlands Police").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Suspend West Midlands Police?")
    admin.screenshot(path=str(ARTIFACTS / "console-suspend.png"), full_page=True)
    admin.get_by_role("button", name="Suspend West Midlands Police").click()
    expect(admin.locator(".govuk-notification-banner--success")).to_contain_text("is suspended")

    # The force admin's session has ended; signed in again, the force says it is closed.
    page.goto("/west-midlands/settings/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    _sign_in(page, world.email("a_force_admin"))
    page.goto("/west-midlands/")
    expect(page.get_by_role("heading", level=1)).to_have_text("This force's pages are closed")

    # Reactivated, and the audit tells the story in words.
    admin.goto("/admin/")
    admin.get_by_role("button", name="Reactivate West Midlands Police").click()
    expect(admin.locator(".govuk-notification-banner--success")).to_contain_text("is open again")
    page.goto("/west-midlands/audit/")
    page.get_by_label("Action").select_option("tenant")
    page.get_by_role("button", name="Filter").click()
    table = page.locator("table")
    for words in ("Force settings changed", "Force suspended", "Force reopened",
                  "Force configuration downloaded", "retention months: not set → 72"):
        expect(table).to_contain_text(words)
    page.screenshot(path=str(ARTIFACTS / "console-audit.png"), full_page=True)
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Download them as CSV").click()
    assert "Force suspended" in csv_download.value.path().read_text(encoding="utf-8")
    _platform_audit_fits(admin)
    assert browser_page.errors == []


def _platform_audit_fits(admin: Page) -> None:
    """The platform's log, with its column of forces, fits a desktop's width: nothing to scroll to."""
    admin.set_viewport_size({"width": 1280, "height": 900})
    admin.goto("/admin/audit/")
    region = admin.locator(".diversion-table-scroll").first
    expect(region).to_contain_text("Force suspended")
    assert region.evaluate("region => region.scrollWidth <= region.clientWidth")
    admin.screenshot(path=str(ARTIFACTS / "console-platform-audit.png"), full_page=True)
