"""A force admin edits, tests, publishes and compares a policy in a real browser,
and simulates another force's policy on the force's past decisions."""

from __future__ import annotations

import re

from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session, axe_violations, sign_in
from tests.conftest import World
from tests.eligibility.test_views import give_thames_valley_history

pytestmark = BROWSER_MARKS


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_edit_test_publish_and_diff(browser_page: Session, world: World) -> None:
    page = browser_page.page
    sign_in(page, world.email("b_force_admin"))
    page.goto("/durham/policy/")
    expect(page.get_by_role("heading", name="Policy in force")).to_be_visible()
    page.get_by_role("button", name="Start a draft").click()

    editor = page.get_by_label("Draft policy")
    text = editor.input_value()
    editor.fill(text.replace('expression = "resident_in_force_area"', 'expression = "resident_in_forces_area"'))
    page.get_by_role("button", name="Save draft").click()
    summary = page.get_by_test_id("policy-problems")
    expect(summary).to_contain_text("Pathway checkpoint, criterion resident")
    expect(summary).to_contain_text("unknown field 'resident_in_forces_area'")
    _shot(page, "policy-draft-error")

    editor = page.get_by_label("Draft policy")
    editor.fill(editor.input_value()
                .replace("resident_in_forces_area", "resident_in_force_area")
                .replace('reason = "Excluded: a driving offence."', 'reason = "Excluded: any driving offence."'))
    page.get_by_label("What changed").fill("Plainer driving reason")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Draft version 2 saved")

    page.get_by_role("button", name="Run the test cases").click()
    expect(page.get_by_test_id("test-results")).to_contain_text("19 of 19 test cases pass")

    page.get_by_label("Day").fill("1")
    page.get_by_label("Month").fill("12")
    page.get_by_label("Year").fill("2026")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Version 2 is published")
    _shot(page, "policy-versions")

    page.get_by_role("button", name="Compare").click()
    changes = page.get_by_test_id("changes")
    expect(changes).to_contain_text("driving")
    expect(changes).to_contain_text("Excluded: any driving offence.")
    _shot(page, "policy-diff")
    assert browser_page.errors == []
    assert browser_page.failed == []


def test_discarding_a_draft_asks_first(browser_page: Session, world: World) -> None:
    page = browser_page.page
    sign_in(page, world.email("b_force_admin"))
    page.goto("/durham/policy/draft")
    page.get_by_label("What changed").fill("Only trying")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Draft version 2 saved")

    page.get_by_role("button", name="Discard the draft").click()  # a link to the question
    expect(page.get_by_role("heading", name="Discard draft version 2?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Only trying")
    expect(page.locator("main")).to_contain_text("Version 1, the policy in force, stays as it is.")
    assert axe_violations(page) == []
    _shot(page, "policy-discard-question")
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name="Draft version 2")).to_be_visible()  # kept

    page.get_by_role("button", name="Discard the draft").click()
    page.get_by_role("button", name="Discard the draft").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("The draft was discarded.")
    expect(page.get_by_role("button", name="Start a draft")).to_be_visible()
    assert browser_page.errors == []
    assert browser_page.failed == []


def test_simulate_durhams_policy_on_thames_valley(app: Flask, browser_page: Session, world: World) -> None:
    give_thames_valley_history(app, world, 400)
    page = browser_page.page
    sign_in(page, world.email("a_force_admin"))
    page.goto("/thames-valley/policy/simulate")
    page.get_by_label("Durham Constabulary: Checkpoint (published)").check()
    page.get_by_role("button", name="Run simulation").click()
    heading = page.get_by_role("heading", name=re.compile("If Durham Constabulary version 1 had been used"))
    expect(heading).to_be_visible()
    expect(page.get_by_test_id("changed")).to_contain_text("of 400 decisions would change")
    expect(page.get_by_test_id("outcome-table")).to_contain_text("Eligible, Checkpoint: 4-month contract")
    expect(page.locator("main")).to_contain_text("Eligible then and now, by ethnicity")
    _shot(page, "policy-simulation")
    assert browser_page.errors == []
