"""Decisions in plain words and the intake's errors, in a real browser, on a phone and on a desktop:
an eligible adult in West Midlands reads nothing of the youth route, and no page overflows sideways."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World

pytestmark = BROWSER_MARKS
TODAY = date.today()  # noqa: DTZ011 - as the officer would
WIDTHS = {"phone": 375, "desktop": 1280}


def _date(page: Page, field: str, day: date) -> None:
    page.locator(f"#{field}-day").fill(str(day.day))
    page.locator(f"#{field}-month").fill(str(day.month))
    page.locator(f"#{field}-year").fill(str(day.year))


def _record(page: Page, surname: str, **answers: str) -> None:
    """An adult found with cannabis on the street in West Midlands; ``answers`` change it."""
    page.goto("/west-midlands/encounters/new")
    page.get_by_label("Surname").fill(surname)
    page.get_by_label("Given name").fill("Sam")
    _date(page, "date_of_birth", date(TODAY.year - 28, 1, 15))
    _date(page, "offence_on", TODAY)
    chosen = {"offence": "Possession", "personal_use": "Yes", "user_dealer": "No", "admission": "Admitted the offence",
              "stage": "On the street (before arrest)", "drug_class": "Class B", "aggravating_factors": "None",
              **answers}
    for name, label in chosen.items():
        if label:
            page.locator(f"fieldset:has(input[name={name}])").get_by_label(label, exact=True).check()
    page.locator("fieldset:has(input[name=substances])").get_by_label("Cannabis", exact=True).check()
    page.get_by_role("button", name="Record and decide").click()


def _fits(page: Page, width: int) -> None:
    """Nothing but a table's own region scrolls sideways."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("device", WIDTHS)
def test_decisions_read_plainly_and_fit_the_screen(browser_page: Session, world: World, device: str) -> None:
    page = browser_page.page
    width = WIDTHS[device]
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(world.email("a_officer"))
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    ARTIFACTS.mkdir(exist_ok=True)

    _record(page, "Adeyemi")
    expect(page.get_by_test_id("decision-outcome")).to_contain_text("DIVERT (adults)")
    reasons = page.get_by_test_id("reasons")
    expect(reasons).to_contain_text("Aged 18 or over on the date of the offence.")
    expect(reasons).not_to_contain_text("young person")
    expect(page.get_by_role("main")).not_to_contain_text("Under 18")
    youth = page.get_by_test_id("audit").get_by_text("DIVERT young person's route").first
    expect(youth).to_be_hidden()  # until the details for audit are opened
    page.get_by_text("Details for audit").click()
    expect(youth).to_be_visible()
    _fits(page, width)
    page.screenshot(path=str(ARTIFACTS / f"decision-eligible-{device}.png"), full_page=True)
    page.locator("[data-testid=audit] .diversion-table-scroll").last.screenshot(
        path=str(ARTIFACTS / f"decision-audit-criteria-{device}.png"))

    _record(page, "Brennan", stage="In custody (after arrest)")
    expect(page.get_by_test_id("decision-outcome")).to_contain_text("Not eligible")
    expect(page.get_by_test_id("reasons").get_by_role("listitem")).to_have_count(1)
    _fits(page, width)
    page.screenshot(path=str(ARTIFACTS / f"decision-not-eligible-{device}.png"), full_page=True)

    _record(page, "Cole", aggravating_factors="Not known yet")
    expect(page.get_by_test_id("decision-outcome")).to_contain_text("Needs review")
    expect(page.get_by_test_id("reasons")).to_contain_text("Aggravating factors")
    _fits(page, width)
    page.screenshot(path=str(ARTIFACTS / f"decision-needs-review-{device}.png"), full_page=True)

    page.goto("/west-midlands/encounters/new")
    for part, value in (("day", "31"), ("month", "2"), ("year", "1990")):  # 31 February: not a real date
        page.locator(f"#date_of_birth-{part}").fill(value)
    _date(page, "offence_on", date(TODAY.year + 1, 1, 1))
    page.get_by_role("button", name="Record and decide").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter the person's surname")
    expect(summary).to_contain_text("Date of birth must be a real date")
    expect(summary).to_contain_text("The offence date cannot be in the future.")
    _fits(page, width)
    page.screenshot(path=str(ARTIFACTS / f"intake-errors-{device}.png"), full_page=True)
    summary.get_by_role("link", name="Date of birth must be a real date").click()
    expect(page.locator("#date_of_birth-day")).to_be_focused()

    page.goto("/west-midlands/referrals")
    _fits(page, width)
    assert browser_page.errors == []
    assert browser_page.failed == []
