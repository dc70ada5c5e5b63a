"""An officer records a user-dealer encounter in Durham, sees the Checkpoint decision,
refers the person and reads the case timeline, in a real browser."""

from __future__ import annotations

from datetime import date

from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World

pytestmark = BROWSER_MARKS


def _date(page: Page, field: str, day: date) -> None:
    page.locator(f"#{field}-day").fill(str(day.day))
    page.locator(f"#{field}-month").fill(str(day.month))
    page.locator(f"#{field}-year").fill(str(day.year))


def test_officer_records_decides_refers_and_reads_the_timeline(browser_page: Session, world: World) -> None:
    page = browser_page.page
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(world.email("b_officer"))
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()  # an officer of one force lands on it
    expect(page.get_by_test_id("force-name")).to_have_text("Durham Constabulary")
    page.get_by_role("link", name="Record an encounter").click()

    page.get_by_label("Surname").fill("Bell")
    page.get_by_label("Given name").fill("Casey")
    _date(page, "date_of_birth", date(1993, 7, 14))
    _date(page, "offence_on", date.today())  # noqa: DTZ011 - as the officer would
    answers = {"offence": "Supply", "user_dealer": "Yes", "personal_use": "No", "admission": "Admitted the offence",
               "stage": "In custody (after arrest)", "under_court_order": "No", "held_for_court": "No",
               "detained_mental_health_act": "No", "resident_in_force_area": "Yes", "drug_class": "Class A"}
    for name, label in answers.items():
        page.locator(f"fieldset:has(input[name={name}])").get_by_label(label, exact=True).check()
    page.locator("fieldset:has(input[name=substances])").get_by_label("Heroin").check()
    page.locator("fieldset:has(input[name=aggravating_factors])").get_by_label("None", exact=True).check()
    page.get_by_role("button", name="Record and decide").click()

    outcome = page.get_by_test_id("decision-outcome")
    expect(outcome).to_contain_text("Eligible")
    expect(outcome).to_contain_text("Checkpoint: 4-month contract")
    expect(page.get_by_test_id("reasons")).to_contain_text("Dealt with after arrest, in custody.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "case-decision.png"), full_page=True)

    page.get_by_label("Checkpoint 4-month contract with a navigator", exact=False).check()
    page.get_by_role("button", name="Offer a place").click()
    expect(page.get_by_test_id("person-name")).to_have_text("Casey Bell")
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("Referral offered")
    expect(timeline).to_contain_text("Decision: Eligible, Checkpoint: 4-month contract")
    expect(timeline).to_contain_text("Encounter recorded")

    page.locator("fieldset:has(input[name=to])").get_by_label("Accepted").check()
    page.get_by_role("button", name="Record").click()
    expect(page.get_by_test_id("timeline")).to_contain_text("Referral accepted")
    page.screenshot(path=str(ARTIFACTS / "case-timeline.png"), full_page=True)
    assert browser_page.errors == []
    assert browser_page.failed == []
