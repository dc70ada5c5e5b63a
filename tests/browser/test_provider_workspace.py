"""Cranstoun's staff, signed in once, see West Midlands and Thames Valley referrals (and no others),
book and complete one; the force then sees the outcome on its case page. In a real browser, on the demo."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

from flask import Flask
from playwright.sync_api import Page, expect

from diversion.accounts.models import User
from diversion.cases.models import Referral
from diversion.demo import demo_forces, seed_case_work, seed_demo
from diversion.extensions import db
from diversion.models import Tenant
from diversion.tenancy.context import scoped
from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session

pytestmark = BROWSER_MARKS
DEMO_PASSWORD = "demo-password-for-the-browser"


def _seed(app: Flask) -> None:
    with app.app_context():
        today = datetime.now(UTC).date()
        seed_demo(password=DEMO_PASSWORD, forces=demo_forces(today=today).filled)
        for tenant in db.session.scalars(db.select(Tenant).where(
                Tenant.slug.in_(["west-midlands", "thames-valley", "durham"]))):
            with scoped(tenant.id):
                seed_case_work(tenant, today=today, per_state=2)
        db.session.commit()


def _name_of(app: Flask, email: str) -> str:
    with app.app_context():
        name = db.session.scalar(db.select(User.name).where(User.email == email))
        assert name is not None
        return name


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _book(page: Page, day: date, venue: str) -> None:
    page.locator("#day-day").fill(str(day.day))
    page.locator("#day-month").fill(str(day.month))
    page.locator("#day-year").fill(str(day.year))
    page.get_by_label("Start time").fill("10:00")
    page.get_by_label("Venue").fill(venue)
    page.get_by_role("button", name="Book the session").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("The session is booked")


def _attended(page: Page) -> None:
    page.get_by_label("Attended", exact=True).check()
    page.get_by_label("I confirm this is what happened").check()
    page.get_by_role("button", name="Record attendance").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("Attendance recorded")


def test_cranstoun_books_and_completes_and_the_force_sees_the_outcome(
        app: Flask, browser_page: Session, live_server: str) -> None:
    _seed(app)
    page = browser_page.page
    ARTIFACTS.mkdir(exist_ok=True)
    _sign_in(page, "staff@cranstoun.example")  # provider staff land on their workspace
    expect(page.get_by_role("heading", level=1)).to_have_text("Referrals to Cranstoun")
    table = page.get_by_test_id("referrals")
    force_cells = "tbody tr td:nth-child(2) span.govuk-body-s"  # under each case reference
    forces = set(table.locator(force_cells).all_inner_texts())
    assert forces == {"West Midlands Police", "Thames Valley Police"}
    expect(page.locator("body")).not_to_contain_text("Durham")
    page.screenshot(path=str(ARTIFACTS / "provider-referrals.png"), full_page=True)

    page.get_by_label("Force").select_option(label="West Midlands Police")
    page.get_by_label("State").select_option(label="Accepted")
    page.get_by_role("button", name="Apply filters").click()
    assert set(table.locator(force_cells).all_inner_texts()) == {"West Midlands Police"}
    table.locator("tbody tr").first.get_by_role("link").click()
    expect(page.get_by_test_id("referral-summary")).to_contain_text("07700 9")  # the contact, here only
    referral_id = uuid.UUID(re.sub(r".*/referrals/", "", page.url))

    with app.app_context():
        tenant = db.session.scalar(db.select(Tenant).where(Tenant.slug == "west-midlands"))
        with scoped(tenant.id):
            referral = db.session.get(Referral, referral_id)
            encounter_id, deadline = referral.encounter_id, referral.deadline
    # Demo referrals are weeks old: the sessions are recorded late, before the deadline.
    session_day = min(datetime.now(UTC).date() - timedelta(days=1), deadline - timedelta(days=1))
    while page.get_by_role("button", name="Book the session").count():
        _book(page, session_day, "Cranstoun hub, Digbeth")
        _attended(page)
    page.screenshot(path=str(ARTIFACTS / "provider-referral-attended.png"), full_page=True)
    page.get_by_label("I confirm the person has completed the course").check()
    page.get_by_role("button", name="Record completion").click()
    expect(page.get_by_test_id("outcome")).to_contain_text("Community resolution: no criminal record")
    expect(page.get_by_test_id("timeline")).to_contain_text("Referral completed")
    page.screenshot(path=str(ARTIFACTS / "provider-referral-completed.png"), full_page=True)
    page.get_by_role("button", name="Sign out").click()

    _sign_in(page, "officer@west-midlands.example")
    page.goto(f"/west-midlands/cases/{encounter_id}")
    expect(page.get_by_test_id("case-outcome")).to_have_text(
        "Completed – outcome: Community resolution: no criminal record")  # the force's code for it is not shown
    expect(page.get_by_test_id("case-sessions")).to_contain_text("Cranstoun hub, Digbeth")
    expect(page.get_by_test_id("timeline")).to_contain_text(f"by {_name_of(app, 'staff@cranstoun.example')}")
    page.screenshot(path=str(ARTIFACTS / "force-case-outcome.png"), full_page=True)
    assert browser_page.errors == []
    assert browser_page.failed == []
