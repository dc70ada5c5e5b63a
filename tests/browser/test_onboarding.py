"""A platform admin onboards Cleveland Police in a real browser: details (a
mistake first), a policy copied from Durham, two offerings, single sign-on,
the first force admin, and opening the force; the invited admin then takes
the link up and sees the new force's home page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import Role
from diversion.eligibility import services as policies
from diversion.extensions import db
from diversion.forces import onboarding
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant
from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World

pytestmark = BROWSER_MARKS
PLATFORM = "platform@diversion.example"


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"onboarding-{name}.png"), full_page=True)


def _no_page_trouble(session: Session) -> None:
    assert session.errors == []
    assert session.failed == []
    assert session.page.evaluate("window.cspViolations") == []


def _fill_details(page: Page, *, colour: str) -> None:
    page.get_by_label("Force name").fill("Cleveland Police")
    page.get_by_label("Address", exact=True).fill("cleveland")
    page.get_by_label("Scheme name").fill("Checkpoint Cleveland")
    page.get_by_label("Police force area").select_option(label="Cleveland")
    page.get_by_label("Code on completion", exact=True).fill("outcome-22")
    page.get_by_label("What the code on completion means").fill("No further action (Outcome 22)")
    page.get_by_label("Code on non-completion", exact=True).fill("prosecution")
    page.get_by_label("What the code on non-completion means").fill("Prosecution resumes")
    page.get_by_label("Prosecution resumes", exact=True).check()
    page.get_by_label("Brand colour").fill(colour)


def test_a_platform_admin_onboards_cleveland(app: Flask, browser_page: Session, world: World) -> None:
    with app.app_context():
        admin = accounts.create_user(email=PLATFORM, name="Platform admin", password=PASSWORD, actor=SYSTEM)
        accounts.grant_platform_role(admin, Role.PLATFORM_ADMIN, actor=SYSTEM)
        db.session.commit()
    page = browser_page.page
    _sign_in(page, PLATFORM)
    page.goto("/admin/")
    page.get_by_role("link", name="Set up a new force").click()

    _details_step(page)
    _policy_and_offerings(page)
    _sign_on_step(page)
    link = _first_admin_step(page)

    page.get_by_test_id("finish").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Cleveland Police is open")
    _shot(page, "10-open")
    _the_admin_accepts(page, link)
    _no_page_trouble(browser_page)

    with app.app_context():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == "cleveland"))
        assert tenant is not None
        assert tenant.status is ForceStatus.ACTIVE
        with scoped(tenant.id):
            version = policies.policy_in_force(datetime.now(UTC).date())
            assert version is not None
            assert version.note.startswith("Copied from Durham Constabulary")
            assert len(onboarding.offered()) == 2
            assert [m.user.email for m in accounts.members(tenant)] == ["admin@cleveland.example"]


def _details_step(page: Page) -> None:
    """Details: a colour that is not #rrggbb is shown in place, then put right; the draft is kept."""
    _fill_details(page, colour="dark blue")
    page.get_by_role("button", name="Save and continue").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter the brand colour as #rrggbb")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#brand_colour")
    _shot(page, "1-details-error")
    page.get_by_label("Brand colour").fill("#00558c")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("heading", name="Cleveland Police")).to_be_visible()
    expect(page.locator(".govuk-task-list")).to_contain_text("Not yet started")
    _shot(page, "2-tasks")

    # Leaving half way keeps the draft: the console offers to resume it.
    page.goto("/admin/")
    expect(page.get_by_test_id("drafts")).to_contain_text("Cleveland Police")
    _shot(page, "3-console-draft")
    page.get_by_role("link", name="Resume setting up Cleveland Police").click()


def _policy_and_offerings(page: Page) -> None:
    # The first policy: a copy of Durham's.
    page.get_by_role("link", name="Choose the first policy").click()
    _shot(page, "4-policy")
    page.get_by_label("A copy of Durham Constabulary's policy").check()
    page.get_by_role("button", name="Use this policy").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("passes its tests")

    # Two offerings, both Cleveland courses of the catalogue.
    page.get_by_role("link", name="Choose the courses offered").click()
    page.get_by_role("button", name="Save the courses offered").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Choose at least one course")
    _shot(page, "5-offerings-error")
    page.get_by_label("Deferred prosecution contract with a navigator (Cleveland, example)").check()
    page.get_by_label("Drug education for a deferred prosecution (Cleveland, example)").check()
    _shot(page, "6-offerings")
    page.get_by_role("button", name="Save the courses offered").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("2 courses are offered")


def _sign_on_step(page: Page) -> None:
    # Single sign-on (optional).
    page.get_by_role("link", name="Set up single sign-on").click()
    page.get_by_label("Issuer").fill("https://example.org/cleveland")
    page.get_by_label("Client ID").fill("diversion-platform")
    page.get_by_label("Client secret").fill("a-secret-entered-once")
    page.get_by_label("Refuse them: people join by invitation only").check()
    _shot(page, "7-sign-on")
    page.get_by_role("button", name="Save sign-on settings").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Single sign-on is saved")


def _first_admin_step(page: Page) -> str:
    """The first force admin: the invitation's link, shown once."""
    page.get_by_role("link", name="Invite the first force admin").click()
    page.get_by_label("Full name").fill("Cleveland Admin")
    page.get_by_label("Email address").fill("admin@cleveland.example")
    page.get_by_role("button", name="Invite them").click()
    link = page.get_by_test_id("invitation-link")
    expect(link).to_contain_text("/cleveland/invitation/")
    _shot(page, "8-invited")
    shown = link.inner_text().strip()
    page.get_by_role("link", name="Back to the set-up of Cleveland Police").click()
    expect(page.locator(".govuk-task-list")).to_contain_text("Cleveland Admin (admin@cleveland.example)")
    _shot(page, "9-tasks-done")
    return shown


def _the_admin_accepts(page: Page, link: str) -> None:
    """The invited admin takes the link up with a new account and lands on the force's home page."""
    page.get_by_role("button", name="Sign out").click()
    page.goto(link)
    page.get_by_label("Create a password").fill("a long enough password")
    page.get_by_label("Type the password again").fill("a long enough password")
    _shot(page, "11-accept")
    page.get_by_role("button", name="Create my account and accept").click()
    expect(page).to_have_url(re.compile(r"/cleveland/$"))
    expect(page.locator(".govuk-service-navigation")).to_contain_text("Cleveland Police")
    _shot(page, "12-cleveland-home")
