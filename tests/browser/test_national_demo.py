"""The national comparison on the demo ``make run`` seeds, in a real browser: the national lead compares
the five forces' completion and 12-month reoffending on funnel plots with their intervals, reads
referral rates by ethnic group for Thames Valley, and downloads each table: the CSV holds the page's
figures (as plain numbers) and releases no count under 10."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, browsing, serving, sign_in
from tests.conftest import PASSWORD
from tests.insights.test_pages import csv_rows, same_figures, tables_of
from tests.test_cli import _run

pytestmark = BROWSER_MARKS

FORCES = ("Avon and Somerset Constabulary", "Durham Constabulary", "North Wales Police", "Thames Valley Police",
          "West Midlands Police")
COUNT = re.compile(r"[0-9]+")  # a field of the CSV that is a count (rates and ratios have decimals)


def _downloaded(page: Page, widths: list[int]) -> list[list[str]]:
    """The first table's CSV, downloaded as a reader would; checked to hold the table's figures, each
    column of the page taking ``widths``' fields."""
    with page.expect_download() as download:
        page.get_by_role("link", name="Download this table (CSV)").first.click()
    rows = csv_rows(Path(download.value.path()).read_text(encoding="utf-8"))
    same_figures(tables_of(page.content())[0][1], rows, widths)
    return rows


def _small_counts(rows: list[list[str]]) -> list[str]:
    return [cell for row in rows[1:] for cell in row if COUNT.fullmatch(cell) and int(cell) < 10]


def _rate_against_every_force(page: Page, name: str, period: str) -> None:
    page.goto(f"/national/?period={period}")
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    chart = page.get_by_role("img", name=re.compile(f"^A funnel plot of {name.lower()} for 5 forces"))
    assert chart.evaluate("image => image.decode().then(() => image.naturalWidth)") > 0  # drawn, and shown
    table = page.get_by_role("table", name=f"{name} by force, {period}")
    for force in FORCES:
        expect(table.get_by_role("row", name=re.compile(force))).to_contain_text(" to ")  # its interval
    rows = _downloaded(page, [1, 1, 1, 1, 2, 1])
    assert {row[0] for row in rows[1:]} == {"All forces", *FORCES}
    assert not _small_counts(rows)


def test_a_national_lead_compares_the_demo_forces(app: Flask, tmp_path: Path) -> None:
    assert _run(app, "tenants", "sync").exit_code == 0
    seeded = _run(app, "demo", "--password", PASSWORD)
    assert seeded.exit_code == 0, seeded.output
    with serving(app) as address, browsing(address) as session:
        page = session.page
        sign_in(page, "national@diversion.example")
        expect(page.get_by_role("heading", name="National comparison")).to_be_visible()
        period = page.get_by_label("Period").locator("option").nth(1).inner_text()  # the last whole year
        assert re.fullmatch(r"20\d\d", period)

        _rate_against_every_force(page, "Completion", period)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "national-demo-completion.png"), full_page=True)
        _rate_against_every_force(page, "Met again within 12 months", period)

        page.goto(f"/national/?period={period}")
        page.get_by_role("link", name="Referral rates by ethnic group").click()
        page.get_by_label("Force", exact=True).select_option(label="Thames Valley Police")
        page.get_by_label("Period").select_option(period)
        page.get_by_role("button", name="Show").click()
        table = page.get_by_role("table", name=f"Referral rate by ethnic group, Thames Valley Police, {period}")
        expect(table.get_by_role("row", name=re.compile("^Every group"))).to_contain_text("1.00")
        rows = _downloaded(page, [1, 1, 1, 1, 2, 3])
        assert len(rows) > 2  # every group, and at least one group released
        assert not _small_counts(rows)
        page.screenshot(path=str(ARTIFACTS / "national-demo-equality.png"), full_page=True)
        assert not session.errors
        assert not session.failed
