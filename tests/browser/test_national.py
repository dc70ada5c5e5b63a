"""The national comparison in a real browser: a national lead lands on it, reads a rate's funnel plot
and its table, filters by substance, downloads the CSV; a force's admin reads the force's own."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.browser.test_statements import _sign_in
from tests.conftest import World
from tests.insights.test_pages import _history, csv_rows, same_figures, tables_of

pytestmark = BROWSER_MARKS


def test_a_national_lead_compares_the_forces(app: Flask, world: World, browser_page: Session,
                                            tmp_path: Path) -> None:
    _history(app, tmp_path)
    page = browser_page.page
    _sign_in(page, world.email("national_lead"))
    expect(page).to_have_url(f"{page.url.split('/national/')[0]}/national/")
    expect(page.get_by_role("heading", name="National comparison")).to_be_visible()
    page.get_by_label("Period").select_option("2025")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("table", name="Forces, 2025")).to_contain_text("Durham Constabulary")

    page.get_by_role("link", name="Completion").first.click()
    expect(page.get_by_role("heading", name="Completion", exact=True)).to_be_visible()
    chart = page.get_by_role("img", name="A funnel plot of completion")
    expect(chart).to_be_visible()
    assert chart.evaluate("image => image.decode().then(() => image.naturalWidth)") > 0  # drawn, and shown
    expect(page.get_by_test_id("dispersion")).to_contain_text("chance")
    table = page.get_by_role("table", name="Completion by force, 2025")
    expect(table).to_contain_text("86%")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "national-completion.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download this table (CSV)").first.click()
    saved = Path(download.value.path()).read_text(encoding="utf-8")
    same_figures(tables_of(page.content())[0][1], csv_rows(saved), [1, 1, 1, 1, 2, 1])  # plain numbers

    page.get_by_label("Substance").select_option(label="Cannabis")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("table", name="Completion by force, 2025, Substance: Cannabis")).to_be_visible()
    page.get_by_label("Age band").select_option("25-34")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("link", name="Choose a substance or an age band, not both")).to_be_visible()
    assert not browser_page.errors
    assert not browser_page.failed


def test_a_force_admin_reads_the_forces_own_figures(app: Flask, world: World, browser_page: Session,
                                                    tmp_path: Path) -> None:
    _history(app, tmp_path)
    page = browser_page.page
    _sign_in(page, world.email("b_force_admin"))
    page.get_by_role("link", name="Figures").click()
    expect(page.get_by_role("heading", name="Durham Constabulary: figures")).to_be_visible()
    page.get_by_label("Period").select_option("2025")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("table", name="Police time saved, 2025")).to_contain_text("£")
    page.get_by_role("link", name="Change your force's assumptions").click()
    page.get_by_label("Police hours saved by each referral").fill("many")
    page.get_by_role("button", name="Save the assumptions").click()
    expect(page.get_by_role("link", name="Enter the hours as a number, such as 6.5")).to_be_visible()
    page.get_by_label("Police hours saved by each referral").fill("4.5")
    page.get_by_role("button", name="Save the assumptions").click()
    expect(page.get_by_text("The assumptions are saved")).to_be_visible()
    assert not browser_page.errors
    assert not browser_page.failed
