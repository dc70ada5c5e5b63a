"""Signing in, in a real browser: redirects, errors, styles, CSP and signing out.

Drives the system's Chromium (never a downloaded one) against the test app
served on a free local port, with the users of the ``world`` fixture.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World

SIGN_IN_NEXT_HOME = re.compile(r"/sign-in\?next=%2Fwest-midlands%2F$")
HEADER_INK = "rgb(11, 61, 79)"  # $diversion-ink, from app.scss
WEST_MIDLANDS_COLOUR = "rgb(31, 63, 143)"  # brand_colour #1f3f8f in tenants/west-midlands.toml
pytestmark = BROWSER_MARKS


def _submit_sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def _header_colours(page: Page) -> tuple[str, str]:
    """The header's computed background and bottom border (the force colour)."""
    header = page.locator(".diversion-header")
    return (
        header.evaluate("e => getComputedStyle(e).backgroundColor"),
        header.evaluate("e => getComputedStyle(e).borderBottomColor"),
    )


def _assert_home_page(page: Page, email: str) -> None:
    expect(page.get_by_test_id("force-name")).to_have_text("West Midlands Police")
    expect(page.get_by_test_id("signed-in-user")).to_contain_text(email)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.locator(".govuk-error-summary")).to_have_count(0)
    # The force file's outcomes read as their labels, not as raw data.
    main = page.locator("main")
    expect(main).to_contain_text("Community resolution: no criminal record")
    expect(main).not_to_contain_text("{'")
    # Our brand, not GOV.UK's: no crown (DESIGN.md, app.scss).
    expect(page.locator(".govuk-footer__crown, .govuk-header__crown")).to_have_count(0)
    # The stylesheet applied, and the force colour came through the nonce'd <style>.
    background, border = _header_colours(page)
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    assert background == HEADER_INK
    assert border == WEST_MIDLANDS_COLOUR
    # The module script ran (GOV.UK Frontend initialised) and CSP blocked nothing.
    assert page.evaluate("document.body.classList.contains('govuk-frontend-supported')")
    assert page.evaluate("window.cspViolations") == []


def test_sign_in_home_foreign_force_and_sign_out(browser_page: Session, world: World) -> None:
    page = browser_page.page
    email = world.email("a_officer")

    # Anonymous: a force page sends us to sign in, and back after it.
    page.goto("/west-midlands/")
    expect(page).to_have_url(SIGN_IN_NEXT_HOME)
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page).to_have_title("Sign in – diversion")

    # A wrong password: the GOV.UK error summary, shown and focused.
    _submit_sign_in(page, email, "not-the-password")
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_contain_text("Enter a correct email address and password")
    expect(summary).to_be_focused()
    expect(page).to_have_title("Error: Sign in – diversion")
    expect(page).to_have_url(SIGN_IN_NEXT_HOME)

    # The right password: the force's home page, as this user.
    _submit_sign_in(page, email, PASSWORD)
    page.wait_for_url("**/west-midlands/")
    _assert_home_page(page, email)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sign-in-home.png"), full_page=True)

    # Another force: the same 404 as a force that does not exist, without its
    # name or its colour.
    response = page.goto("/durham/")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Durham")
    assert _header_colours(page) == (HEADER_INK, HEADER_INK)

    # Sign out: back at sign-in, and the force page asks for it again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    page.goto("/west-midlands/")
    expect(page).to_have_url(SIGN_IN_NEXT_HOME)

    csp = [line for line in browser_page.console if "Content Security Policy" in line]
    assert not csp, csp
    assert not browser_page.errors, browser_page.errors
    assert not browser_page.failed, browser_page.failed
