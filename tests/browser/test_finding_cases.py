"""Case work people can live in, in a real browser: an officer finds yesterday's person by
surname and date of birth, then by reference, and opens the case; every list shows its page 2;
a provider declines one referral and rebooks a missed session on another."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import Referral, State
from diversion.catalogue.models import Course, Offering
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session, sign_in
from tests.conftest import World, started_today

pytestmark = BROWSER_MARKS
TODAY = datetime.now(UTC).date()
YESTERDAY = TODAY - timedelta(days=1)
ADULT = {"offence": "possession", "personal_use": True, "user_dealer": False, "admission": "admitted",
         "stage": "street", "drug_class": "B", "aggravating_factors": [], "substances": ["cannabis"]}
BORN = date(1988, 4, 12)


def _seed(app: Flask, world: World) -> dict[str, str]:
    """West Midlands: 27 adults referred to Cranstoun (one of them has missed a session),
    and yesterday's person; returns the names the journeys look for."""
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        offering = db.session.scalar(select(Offering).join(Course, Course.id == Offering.course_id)
                                     .where(Offering.pathway == "divert", Course.slug == "cranstoun-divert"))
        assert offering is not None
        referrals: list[Referral] = []
        for n in range(27):
            intake = cases.Intake(Identity(f"Person{n:02d}", "Alex", date(1990, 1, 1) + timedelta(days=n)),
                                  Contact(phone="07700 900000"), "W1", TODAY - timedelta(days=3), dict(ADULT))
            _, decision = cases.record_encounter(tenant, intake, actor=SYSTEM, today=TODAY)
            assert decision.outcome == "eligible", decision.missing
            referrals.append(cases.refer(tenant, decision, offering, actor=SYSTEM, today=TODAY))
        missed = referrals[0]
        cases.transition(tenant, missed, State.ACCEPTED, actor=SYSTEM)
        session, _ = cases.book_session(tenant, missed, starts_at=started_today(),
                                        venue="Digbeth hub", actor=SYSTEM)
        cases.record_attendance(tenant, session, attended=False, actor=SYSTEM)
        assert missed.state is State.MISSED
        yesterday = cases.Intake(Identity("Yesterday", "Quinn", BORN), Contact(), "W1", YESTERDAY, dict(ADULT))
        cases.record_encounter(tenant, yesterday, actor=SYSTEM, today=YESTERDAY)
        db.session.commit()
    return {"missed": "Alex Person00", "declined": "Alex Person01"}


def _page_two(page: Page, table: str) -> None:
    """The list's pagination reaches page 2, and page 2 lists rows."""
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Page 2", exact=True).click()
    expect(page).to_have_url(re.compile(r"[?&]page=2"))
    expect(page.get_by_test_id(table).locator("tbody tr").first).to_be_visible()


def _officer_finds_yesterdays_person(page: Page, world: World) -> None:
    """By surname and date of birth, then by reference; then the case opens."""
    sign_in(page, world.email("a_officer"))
    expect(page).to_have_url(re.compile(r"/west-midlands/$"))
    page.get_by_role("link", name="Cases", exact=True).click()
    page.get_by_label("Surname").fill("yesterday")
    page.locator("#born-day").fill(str(BORN.day))
    page.locator("#born-month").fill(str(BORN.month))
    page.locator("#born-year").fill(str(BORN.year))
    page.get_by_role("button", name="Search").click()
    found = page.get_by_test_id("cases").locator("tbody tr")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("Quinn Yesterday")
    reference = found.locator("td").first.inner_text().strip()
    assert re.fullmatch(r"WM-\d{4}-\d{6}", reference)
    page.screenshot(path=str(ARTIFACTS / "cases-found.png"), full_page=True)

    page.get_by_role("link", name="Clear search and filters").click()
    page.get_by_label("Reference or PNC ID").fill(reference.lower())
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("cases").locator("tbody tr")).to_have_count(1)
    page.get_by_role("link", name=reference).click()
    expect(page.get_by_test_id("person-name")).to_have_text("Quinn Yesterday")
    expect(page.get_by_test_id("case-reference")).to_contain_text(reference)


def test_find_a_case_page_through_lists_decline_and_rebook(app: Flask, browser_page: Session, world: World) -> None:
    names = _seed(app, world)
    page = browser_page.page
    ARTIFACTS.mkdir(exist_ok=True)
    _officer_finds_yesterdays_person(page, world)

    # Every force list shows its page 2.
    page.get_by_role("link", name="Cases", exact=True).click()
    _page_two(page, "cases")
    page.get_by_role("link", name="Referrals", exact=True).click()
    _page_two(page, "referrals")
    page.get_by_role("button", name="Sign out").click()

    # The provider: its list's page 2, a decline with its reason, a rebooking after a missed session.
    sign_in(page, world.email("provider_staff"))
    expect(page).to_have_url(re.compile(r"/provider/$"))
    _page_two(page, "referrals")
    page.goto("/provider/")
    page.get_by_role("link", name=re.compile(names["declined"])).click()
    page.get_by_label("Why can you not take this referral on?").fill("No places before the deadline")
    page.get_by_role("button", name="Decline the referral").click()
    expect(page.get_by_test_id("referral-summary")).to_contain_text("Declined")

    page.goto("/provider/")
    page.get_by_role("link", name=re.compile(names["missed"])).click()
    expect(page.get_by_test_id("rebook")).to_contain_text("missed a session")
    booked_on = TODAY + timedelta(days=7)
    page.locator("#day-day").fill(str(booked_on.day))
    page.locator("#day-month").fill(str(booked_on.month))
    page.locator("#day-year").fill(str(booked_on.year))
    page.get_by_label("Start time").fill("14:30")
    page.get_by_label("Venue").fill("Digbeth hub")
    page.get_by_role("button", name="Book the session").click()
    expect(page.get_by_test_id("referral-summary")).to_contain_text("Booked")
    page.screenshot(path=str(ARTIFACTS / "provider-rebooked.png"), full_page=True)
    assert browser_page.errors == []
    assert browser_page.failed == []
