"""A supervisor clears a review item by giving the missing fact; the case is decided again under the
policy of its date and then referred from the case page. In a real browser, on the demo."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from flask import Flask
from playwright.sync_api import expect

from diversion.accounts.access import SYSTEM
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.demo import demo_forces, seed_case_work, seed_demo
from diversion.extensions import db
from diversion.models import Tenant
from diversion.tenancy.context import scoped
from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session

pytestmark = BROWSER_MARKS
DEMO_PASSWORD = "demo-password-for-the-browser"
# Yesterday's adult, found with cannabis in the street; whether it was for personal use is not known yet.
FACTS = {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "user_dealer": False,
         "admission": "admitted", "under_court_order": False, "on_bail": False, "held_for_court": False,
         "detained_mental_health_act": False, "aggravating_factors": [], "resident_in_force_area": True,
         "stage": "street", "suitable_for_out_of_court_disposal": True}


def _seed(app: Flask) -> str:
    today = datetime.now(UTC).date()
    with app.app_context():
        seed_demo(password=DEMO_PASSWORD, forces=demo_forces(today=today).filled)
        tenant = db.session.scalar(db.select(Tenant).where(Tenant.slug == "west-midlands"))
        with scoped(tenant.id):
            seed_case_work(tenant, today=today, per_state=1)
            encounter, decision = cases.record_encounter(tenant, cases.Intake(
                Identity("Quarshie", "Dana", date(1991, 4, 2)), Contact(), "B1", today - timedelta(days=1),
                dict(FACTS)), actor=SYSTEM, today=today - timedelta(days=1))
            assert decision.missing == ["personal_use"]
            reference = encounter.reference
        db.session.commit()
    return reference


def test_a_supervisor_gives_the_missing_fact_and_the_case_is_referred(
        app: Flask, browser_page: Session, live_server: str) -> None:
    reference = _seed(app)
    page = browser_page.page
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto("/sign-in")
    page.get_by_label("Email address").fill("supervisor@west-midlands.example")
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/west-midlands/review")
    queue = page.get_by_test_id("review-queue")
    row = queue.locator("tbody tr", has_text=reference)
    expect(row).to_contain_text("Dana Quarshie")
    expect(row).to_contain_text("Possession")
    expect(row).to_contain_text("Recorded by a force system")
    page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)

    row.get_by_role("link", name="Review").click()
    expect(page.get_by_test_id("decision-outcome")).to_contain_text("Needs review")
    page.get_by_role("link", name="Give these facts and decide again").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Give the facts the decision waits for")
    page.screenshot(path=str(ARTIFACTS / "review-add-facts.png"), full_page=True)
    page.locator("fieldset:has(input[name=personal_use])").get_by_label("Yes", exact=True).check()
    page.get_by_role("button", name="Decide again").click()

    expect(page.get_by_test_id("decision-outcome")).to_contain_text("Eligible")
    expect(page.get_by_test_id("decided-again")).to_contain_text("Quantity for personal use")
    expect(page.get_by_test_id("awaited")).to_have_count(0)
    page.get_by_role("link", name=re.compile(r"its page and timeline")).click()
    expect(page.get_by_test_id("person-name")).to_have_text("Dana Quarshie")
    expect(page.get_by_test_id("case-decision")).to_contain_text("Decided again on review")
    page.locator("fieldset:has(input[name=offering])").locator("input[type=radio]").first.check()
    page.get_by_role("button", name="Offer a place").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("The place is offered")
    expect(page.get_by_test_id("timeline")).to_contain_text("Referral offered")
    expect(page.get_by_test_id("timeline")).to_contain_text("Decided again on review: Eligible, DIVERT (adults)")
    page.screenshot(path=str(ARTIFACTS / "review-referred.png"), full_page=True)
    page.goto("/west-midlands/review")
    expect(page.locator("body")).not_to_contain_text(reference)
    assert browser_page.errors == []
    assert browser_page.failed == []
