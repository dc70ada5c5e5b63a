"""A force admin invites a person, who accepts in their own browser and lands in the force."""

from __future__ import annotations

from flask import Flask
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World

pytestmark = BROWSER_MARKS


def test_a_force_admin_invites_and_the_newcomer_joins(app: Flask, browser_page: Session, world: World,
                                                      live_server: str) -> None:
    page = browser_page.page
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(world.email("a_force_admin"))
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/west-midlands/members/")
    page.get_by_role("button", name="Invite a person").click()
    page.get_by_role("button", name="Send the invitation").click()  # nothing filled: the error summary
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter the person's name")
    expect(summary).to_contain_text("Choose a role")
    page.get_by_label("Full name").fill("Priya Newcomer")
    page.get_by_label("Email address").fill("priya@example.org")
    page.get_by_label("Supervisor").check()
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("heading", name="Invitation ready")).to_be_visible()
    link = page.get_by_test_id("invitation-link").input_value()
    assert link.startswith(f"{live_server}/west-midlands/invitation/")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "invitation-ready.png"), full_page=True)
    page.get_by_role("button", name="Done").click()
    expect(page.get_by_role("table").first).to_contain_text("priya@example.org")

    browser = page.context.browser
    assert browser is not None
    newcomer = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    newcomer.goto(link)
    expect(newcomer.get_by_role("heading", name="Join West Midlands Police")).to_be_visible()
    expect(newcomer.get_by_label("Your full name")).to_have_value("Priya Newcomer")
    newcomer.get_by_label("Create a password").fill("a-long-enough-password")
    newcomer.get_by_label("Type the password again").fill("a-long-enough-password")
    newcomer.get_by_role("button", name="Create my account and accept").click()
    expect(newcomer.locator(".govuk-notification-banner")).to_contain_text(
        "Your account is ready and you have joined West Midlands Police.")
    expect(newcomer.get_by_test_id("signed-in-user")).to_contain_text("priya@example.org")
    newcomer.screenshot(path=str(ARTIFACTS / "invitation-accepted.png"), full_page=True)
    newcomer.goto(link)  # used: the newcomer is sent on to the force
    expect(newcomer).to_have_url(f"{live_server}/west-midlands/")
    newcomer.context.close()

    page.reload()
    expect(page.get_by_role("table").first).to_contain_text("Priya Newcomer")
    expect(page.get_by_role("table").first).to_contain_text("Supervisor")
    assert browser_page.errors == []
    assert browser_page.failed == []
    assert page.evaluate("window.cspViolations") == []
