"""The national comparison's pages and downloads: aggregates only, the CSV holds the figures shown (as plain
numbers), a figure too recent to count says so, bad choices are named, and a force's admin sees the force's
own figures."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import Role, User
from diversion.cli import main
from diversion.db import utcnow
from diversion.extensions import db
from diversion.insights import services
from diversion.insights.metrics import RATES
from diversion.insights.shown import ALLOWED_COLUMNS, csv_columns
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.cases.test_import import DURHAM_COURSE, _run, row, write
from tests.conftest import World, post_form, sign_in

PEOPLE = ("Smith", "Jones", "Brown", "Patel", "Person")  # every surname in the history below


def _history(app: Flask, tmp_path: Path, *, now: datetime | None = None) -> None:
    """Durham's 2025: 36 people referred (30 completed, 6 declined; 12 with cocaine as well as cannabis,
    24 with cannabis alone), and 6 found not eligible (with cannabis); counted on 1 December 2026, or
    at ``now``."""
    rows = []
    for number in range(36):
        month = number % 12 + 1
        found = {"substances": "cocaine;cannabis", "drug_class": "A"} if number % 3 == 0 else {}
        rows.append(row(**found, surname=f"Person{number}", given_name="Sam", date_of_birth=f"1990-{month:02d}-11",
                        ethnicity="W1" if number % 3 else "B2", offence_on=f"2025-{month:02d}-03",
                        decided_on=f"2025-{month:02d}-04", course=DURHAM_COURSE,
                        referral_state="completed" if number < 30 else "declined",
                        referral_outcome_on=f"2025-{month:02d}-20"))
    for number in range(6):
        rows.append(row(surname="Smith" if number < 3 else "Jones", given_name=f"Alex{number}",
                        offence_on="2025-05-01", decided_on="2025-05-01", stage="street"))
    result = _run(app, "import", "--tenant", "durham", str(write(tmp_path / "history.csv", rows)))
    assert result.exit_code == 0, result.output
    with app.app_context():
        services.refresh_all(db.session(), today=now.date() if now else date(2026, 12, 1), now=now or utcnow())
        db.session.commit()


class _Tables(HTMLParser):
    """Every table of a page: its caption and its rows of cell texts (head first)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append(("", []))
        elif tag == "caption":
            self._caption = []
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption" and self._caption is not None:
            self.tables[-1] = (" ".join("".join(self._caption).split()), self.tables[-1][1])
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        for part in (self._cell, self._caption):
            if part is not None:
                part.append(data)


def tables_of(html: str) -> list[tuple[str, list[list[str]]]]:
    reader = _Tables()
    reader.feed(html)
    return reader.tables


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _national_pages(world: World) -> Iterator[str]:
    yield "/national/"
    yield "/national/?period=2025-Q2"
    for name in ("referral", "engagement", "completion", "reoffending_12", "eligibility"):
        yield f"/national/{name}"
        yield f"/national/{name}?substance=cannabis"
        yield f"/national/{name}?age_band=25-34"
    yield f"/national/compare?first={world.b.id}&second={world.a.id}"
    yield f"/national/equality?force={world.b.id}"
    yield "/national/equality"


@pytest.fixture
def lead(app: Flask, world: World, tmp_path: Path) -> FlaskClient:
    _history(app, tmp_path)
    client = app.test_client()
    sign_in(client, world.email("national_lead"))
    return client


def test_every_national_page_and_download_is_aggregates_only(lead: FlaskClient, app: Flask, world: World) -> None:
    # A column is an aggregate or an area (two forces side by side); the CSV's, one of their fields.
    with app.test_request_context():
        downloaded = csv_columns() | {world.a.name, world.b.name}
    allowed = ALLOWED_COLUMNS | {world.a.name, world.b.name}
    for page in _national_pages(world):
        response = lead.get(page)
        assert response.status_code == 200, page
        assert not any(name in response.text for name in PEOPLE), page
        assert "1990-" not in response.text  # no date of birth
        found = tables_of(response.text)
        assert found, page
        for _, rows in found:
            assert set(rows[0]) <= allowed, (page, set(rows[0]) - allowed)
        download = lead.get(page + ("&" if "?" in page else "?") + "format=csv")
        assert download.status_code == 200
        assert download.mimetype == "text/csv"
        assert not any(name in download.text for name in PEOPLE), page
        assert set(csv_rows(download.text)[0]) <= downloaded, page
    for chart in ("completion/funnel.svg", "completion/trend.svg"):
        response = lead.get(f"/national/{chart}")
        assert response.status_code == 200
        assert response.mimetype == "image/svg+xml"
        assert "<script" not in response.text
        assert not any(name in response.text for name in PEOPLE)


PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
NUMBER_SHOWN = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?")


def agree(shown: str, fields: list[str]) -> bool:
    """A page's cell and its fields in the CSV say the same: the same words or mark, or each number
    the page shows for people ("1,235", "£7,980", "86% (71% to 94%)") is the CSV's plain one, to the
    page's rounding."""
    if fields == [shown] or all(field == shown for field in fields):
        return True
    values = [field for field in fields if field]  # an empty field: nothing applies (a ratio's interval)
    if not all(PLAIN_NUMBER.fullmatch(field) for field in values):
        return False
    numbers = [float(found.replace(",", "")) for found in NUMBER_SHOWN.findall(shown)]
    return len(numbers) == len(values) and all(abs(number - float(field)) <= 0.55
                                                 for number, field in zip(numbers, values, strict=True))


def same_figures(shown: list[list[str]], downloaded: list[list[str]], widths: list[int]) -> None:
    """Each row of the page's table is the CSV's, cell by cell, a cell taking ``widths``' fields."""
    assert len(downloaded) == len(shown)
    assert len(downloaded[0]) == sum(widths)
    for page_row, csv_row in zip(shown[1:], downloaded[1:], strict=True):
        at = 0
        for cell, width in zip(page_row, widths, strict=True):
            assert agree(cell, csv_row[at:at + width]), (cell, csv_row[at:at + width])
            at += width


def test_a_download_holds_the_figures_shown_as_plain_numbers(lead: FlaskClient, world: World) -> None:
    """The CSV is for spreadsheets: the numbers the page shows for people, written plain (no thousands
    separator, no percent or pound sign: the unit is in the column's name), a rate's interval in two
    columns of its own, the marks as the page has them."""
    for page, widths in (("/national/?period=2025", [1, 1, 1, 3, 3, 3, 3]),
                         ("/national/completion?period=2025", [1, 1, 1, 1, 2, 1]),
                         ("/national/equality?period=2025", [1, 1, 1, 1, 2, 3])):
        shown = tables_of(lead.get(page).text)[0][1]
        same_figures(shown, csv_rows(lead.get(f"{page}&format=csv").text), widths)
    trend = tables_of(lead.get("/national/completion?period=2025").text)[1][1]
    same_figures(trend, csv_rows(lead.get("/national/completion?period=2025&format=csv&table=trend").text),
                  [1, 1, 1, 1, 2])
    saved = tables_of(lead.get("/national/?period=2025").text)[1][1]
    downloaded = csv_rows(lead.get("/national/?period=2025&format=csv&table=police-time").text)
    same_figures(saved, downloaded, [1] * 6)
    assert downloaded[0] == ["Force", "Referred", "Hours saved per referral", "Cost per hour (£)",
                             "Police hours saved", "Cost saved (£)"]
    durham = "Durham Constabulary"
    # 35 referrals released, 6 hours each at £38 an hour.
    assert next(row for row in saved if row[0] == durham) == [durham, "35", "6.0", "£38.00", "210", "£7,980"]
    assert next(row for row in downloaded if row[0] == durham) == [durham, "35", "6.0", "38.00", "210.0", "7980.00"]

    overview = csv_rows(lead.get("/national/?period=2025&format=csv").text)
    assert overview[0][:6] == ["Force", "Cases decided", "Referred", "Referral rate (%)",
                               "Referral rate, 95% interval, lower bound (%)",
                               "Referral rate, 95% interval, upper bound (%)"]
    assert overview[1][:6] == ["All forces", "40", "35", "87.5", "73.9", "94.5"]  # 35 of 40 released
    completion = csv_rows(lead.get("/national/completion?period=2025&format=csv").text)
    assert completion[0] == ["Force", "Completed", "Referred", "Rate (%)", "95% interval, lower bound (%)",
                             "95% interval, upper bound (%)", "Against the national rate"]
    assert completion[1] == ["All forces", "30", "35", "85.7", "70.6", "93.7", "Not applicable"]
    assert ["West Midlands Police", "[c]", "[c]", "[x]", "[x]", "[x]", "[x]"] in completion  # nothing released

    # Two forces side by side: a row for each number, named with its unit.
    page = f"/national/compare?first={world.b.id}&second={world.a.id}&period=2025"
    every = {row[0]: row[1:] for row in csv_rows(lead.get(f"{page}&format=csv").text)[1:]}
    assert every["Cases by substance: Cannabis"] == ["30", "[c]", "30"]
    assert every["Cases by substance: Cannabis, share (%)"] == ["75.0", "[c]", "75.0"]
    assert every["Completion (%)"][0] == "85.7"
    assert every["Completion, 95% interval, lower bound (%)"][0] == "70.6"
    assert every["Completion, 95% interval, upper bound (%)"][0] == "93.7"
    assert every["Declined"] == ["[c]", "[c]", "[c]"]
    # Row by row: a count takes one row of the CSV, a count and its share two, a rate and its interval three.
    shown = tables_of(lead.get(page).text)[0][1][1:]
    downloaded = csv_rows(lead.get(f"{page}&format=csv").text)[1:]
    rates = len(RATES)
    at = 0
    for place, (label, *cells) in enumerate(shown):
        width = 3 if place >= len(shown) - rates else 2 if ":" in label else 1
        rows = downloaded[at:at + width]
        assert rows[0][0] == (f"{label} (%)" if width == 3 else label)
        for area, cell in enumerate(cells):
            assert agree(cell, [row[area + 1] for row in rows]), (label, cell)
        at += width
    assert at == len(downloaded)
    for fields in every.values():
        assert all(PLAIN_NUMBER.fullmatch(field) or field in ("[c]", "[x]") for field in fields), fields


def test_the_figures_are_those_of_the_history_released(lead: FlaskClient, world: World) -> None:
    caption, rows = tables_of(lead.get("/national/completion?period=2025").text)[0]
    assert caption == "Completion by force, 2025"
    durham = next(cells for cells in rows if cells[0] == "Durham Constabulary")
    # 30 completed of 36 referred: 30 and 35 released, 86% (71% to 93%) from the released counts.
    assert durham[1:5] == ["30", "35", "86%", "71% to 94%"]
    overview = tables_of(lead.get("/national/?period=2025").text)[0][1]
    assert overview[1][:3] == ["All forces", "40", "35"]  # 42 cases and 36 referred, rounded to 5
    every = {cells[0]: cells[1:] for cells in tables_of(
        lead.get(f"/national/compare?first={world.b.id}&second={world.a.id}&period=2025").text)[0][1]}
    # 30 of the 42 cases with cannabis alone; the 12 with cocaine are hidden, for the other substances'
    # sake (none): released, they would show that no more than four cases had anything else.
    assert every["Cases by substance: Cannabis"] == ["30 (75%)", "[c]", "30 (75%)"]
    assert every["Cases by substance: Cocaine"] == ["[c]", "[c]", "[c]"]
    assert every["Declined"] == ["[c]", "[c]", "[c]"]  # six
    assert every["Completion"][0] == "86% (71% to 94%)"
    # The second quarter alone: counts under ten are withheld, and so are the rates made of them.
    quarter = tables_of(lead.get("/national/?period=2025-Q2").text)[0][1]
    assert quarter[1][1:4] == ["15", "[c]", "[x]"]  # 15 cases (9 referred, 6 not eligible)


def test_a_figure_too_soon_for_its_window_says_so_and_a_small_one_stays_withheld(app: Flask, world: World,
                                                                                  tmp_path: Path) -> None:
    """Counted on 15 October 2025, no case of 2025 has had its 12 months, nor any of its third and fourth
    quarters its 6: the pages and the downloads say "Too soon" of those, not "[c]", and say what it means;
    a figure whose window has passed for some cases keeps its marks."""
    _history(app, tmp_path, now=datetime(2025, 10, 15, 12, tzinfo=UTC))
    lead = app.test_client()
    sign_in(lead, world.email("national_lead"))
    page = f"/national/compare?first={world.b.id}&second={world.a.id}&period=2025"
    response = lead.get(page)
    assert response.status_code == 200
    every = {row[0]: row[1:] for row in tables_of(response.text)[0][1]}
    for label in ("Diverted, 12 months passed", "Met again within 12 months", "Completed, 12 months passed",
                  "Completed and met again within 12 months", "Met again within 12 months, completers"):
        assert every[label] == ["Too soon"] * 3, label
    assert "Too soon" not in every["Diverted, 6 months passed"]  # January to April's cases have had theirs
    assert every["Declined"] == ["[c]", "[c]", "[c]"]  # four: withheld, as ever
    assert ("Too soon: 12 months have not yet passed since the decision for any case of the period, so this "
            "figure cannot be counted yet. It is not a withheld count.") in html.unescape(response.text)
    downloaded = {row[0]: row[1:] for row in csv_rows(lead.get(f"{page}&format=csv").text)}
    assert downloaded["Diverted, 12 months passed"] == ["Too soon"] * 3
    assert downloaded["Met again within 12 months, 95% interval, upper bound (%)"] == ["Too soon"] * 3
    assert downloaded["Declined"] == ["[c]", "[c]", "[c]"]

    overview = tables_of(lead.get("/national/?period=2025").text)[0][1]
    assert overview[0][-1] == "Met again within 12 months"
    assert overview[1][0] == "All forces"
    assert overview[1][-1] == "Too soon"
    assert "Too soon" not in overview[1][:-1]

    rate = html.unescape(lead.get("/national/reoffending_12?period=2025").text)
    assert ("Too soon: 12 months have not passed since the decision for any case of this period, so no force's "
            "rate can be shown yet.") in rate
    assert "its counts are withheld" not in rate
    assert "Not on the chart" not in rate
    forces = {row[0]: row[1:] for row in tables_of(rate)[0][1]}
    assert forces["Durham Constabulary"] == ["Too soon"] * 5
    assert forces["All forces"] == ["Too soon"] * 4 + ["Not applicable"]

    # By quarter, 6 months: the first two quarters' cases have had theirs (their figures are small, and
    # withheld), the last two's have not.
    six = html.unescape(lead.get("/national/reoffending_6?period=2025").text)
    trend = {row[0]: row[1:] for row in tables_of(six)[1][1]}
    assert trend["2025 Q1"] == ["[c]", "[c]", "[x]", "[x]"]
    assert trend["2025 Q2"] == ["[c]", "[c]", "[x]", "[x]"]
    assert trend["2025 Q3"] == trend["2025 Q4"] == ["Too soon"] * 4
    assert "Too soon: 6 months have not yet passed since the decision for any case of the period" in six
    downloaded_trend = csv_rows(lead.get("/national/reoffending_6?period=2025&format=csv&table=trend").text)
    assert ["2025 Q3", *["Too soon"] * 5] in downloaded_trend

    welsh = html.unescape(lead.get(f"{page}&lang=cy").text)
    assert "Too soon" not in welsh
    assert "Rhy gynnar" in welsh
    assert "Rhy gynnar: nid yw 12 mis wedi mynd heibio" in welsh


@pytest.mark.parametrize(("query", "message"), [
    ("period=1999", "Choose a period from the list"),
    ("substance=cannabis&age_band=25-34", "Choose a substance or an age band, not both"),
    ("substance=glue", "Choose a substance from the list"),
    ("age_band=100-120", "Choose an age band from the list"),
])
def test_a_choice_not_offered_is_named_and_refused(lead: FlaskClient, query: str, message: str) -> None:
    response = lead.get(f"/national/completion?{query}")
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert message in response.text


def test_a_force_is_not_compared_with_itself(lead: FlaskClient, world: World) -> None:
    response = lead.get(f"/national/compare?first={world.b.id}&second={world.b.id}&period=2025")
    assert response.status_code == 400
    assert "Choose two different forces" in response.text


def test_an_unknown_rate_is_not_found(lead: FlaskClient) -> None:
    assert lead.get("/national/happiness").status_code == 404
    assert lead.get("/national/happiness/funnel.svg").status_code == 404


def test_a_force_admin_sees_the_force_against_every_force_and_no_other(app: Flask, world: World,
                                                                     tmp_path: Path) -> None:
    _history(app, tmp_path)
    client = app.test_client()
    sign_in(client, world.email("b_force_admin"))
    for page in ("/durham/insights/?period=2025", "/durham/insights/completion?period=2025"):
        response = client.get(page)
        assert response.status_code == 200
        assert "Durham Constabulary" in response.text
        assert "All forces" in response.text
        assert world.a.name not in response.text
    svg = client.get("/durham/insights/completion/funnel.svg?period=2025")
    assert svg.status_code == 200
    assert "Durham Constabulary" in svg.text  # drawn apart from the other forces


def test_a_force_admin_sets_the_assumptions_and_bad_ones_change_nothing(app: Flask, world: World) -> None:
    client = app.test_client()
    sign_in(client, world.email("b_force_admin"))
    page = "/durham/insights/assumptions"
    refused = post_form(client, page, page, {"hours": "lots", "cost": "38"})
    assert refused.status_code == 400
    assert "Enter the hours as a number, such as 6.5" in refused.text
    refused = post_form(client, page, page, {"hours": "101", "cost": "38"})
    assert refused.status_code == 400
    assert "Enter hours from 0 to 100" in refused.text
    with app.app_context():
        durham = db.session.get(Tenant, world.b.id)
        assert durham is not None
        assert "police_hours_saved_per_referral" not in durham.settings
    saved = post_form(client, page, page, {"hours": "4.5", "cost": "41.50"})
    assert saved.status_code == 302
    with app.app_context():
        durham = db.session.get(Tenant, world.b.id)
        assert durham is not None
        assert durham.settings["police_hours_saved_per_referral"] == 45
        assert durham.settings["police_cost_per_hour_pence"] == 4_150


def test_the_export_command_prints_what_the_page_downloads(app: Flask, world: World, tmp_path: Path) -> None:
    _history(app, tmp_path)
    client = app.test_client()
    sign_in(client, world.email("national_lead"))
    runner = CliRunner()
    info = ScriptInfo(create_app=lambda: app)
    printed = runner.invoke(main, ["insights", "export", "--period", "2025"], obj=info)
    assert printed.exit_code == 0, printed.output
    assert printed.output == client.get("/national/?period=2025&format=csv").text.replace("\r\n", "\n")
    as_json = runner.invoke(main, ["insights", "export", "--format", "json", "--rate", "completion",
                                   "--period", "2025"], obj=info)
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.output)
    assert document["caption"] == "Completion by force, 2025"
    # For programs: numbers as numbers, a rate in percent with its interval's bounds apart, marks as text.
    assert {"Force": "All forces", "Completed": 30, "Referred": 35, "Rate (%)": 85.7,
            "95% interval, lower bound (%)": 70.6, "95% interval, upper bound (%)": 93.7,
            "Against the national rate": "Not applicable"} in document["rows"]
    assert {"Force": "West Midlands Police", "Completed": "[c]", "Referred": "[c]", "Rate (%)": "[x]",
            "95% interval, lower bound (%)": "[x]", "95% interval, upper bound (%)": "[x]",
            "Against the national rate": "[x]"} in document["rows"]
    refused = runner.invoke(main, ["insights", "export", "--period", "1999"], obj=info)
    assert refused.exit_code != 0
    assert "'1999' is not a period with figures" in refused.output


def test_a_force_is_named_in_welsh_on_the_figures_pages_to_a_reader_of_welsh(app: Flask, world: World,
                                                                              tmp_path: Path) -> None:
    """North Wales gives its Welsh name: its admin reading Welsh reads it in the heading, the tables and
    the charts of the force's figures, and a national lead reading Welsh reads it in the comparison;
    in English, the English name."""
    _history(app, tmp_path)
    with app.app_context():
        north_wales = db.session.scalar(select(Tenant).where(Tenant.slug == "north-wales"))
        assert north_wales is not None
        with scoped(north_wales.id):
            accounts.add_membership(north_wales, db.session.get(User, world.users["a_force_admin"].id),
                                    Role.FORCE_ADMIN, actor=SYSTEM)
        db.session.commit()
        force_id = north_wales.id
    admin = app.test_client()
    sign_in(admin, world.email("a_force_admin"))
    overview = html.unescape(admin.get("/north-wales/insights/?period=2025&lang=cy").text)
    assert "Heddlu Gogledd Cymru: ffigurau" in overview
    assert "Heddlu Gogledd Cymru o'i gymharu â phob heddlu" in overview
    (_, figures), (every, by_figure), (_, time) = tables_of(overview)
    assert figures[-1][0] == "Heddlu Gogledd Cymru"
    assert every == "Heddlu Gogledd Cymru, 2025"
    assert by_figure[0][1] == "Heddlu Gogledd Cymru"
    assert time[-1][0] == "Heddlu Gogledd Cymru"
    assert "North Wales Police" not in overview
    completion = html.unescape(admin.get("/north-wales/insights/completion?period=2025").text)
    assert "North Wales Police" not in completion
    assert "Heddlu Gogledd Cymru" in completion
    assert "Heddlu Gogledd Cymru" in admin.get("/north-wales/insights/completion/trend.svg?period=2025").text
    english = admin.get("/north-wales/insights/?period=2025&lang=en").text
    assert "North Wales Police: figures" in english
    assert "Heddlu Gogledd Cymru" not in english
    lead = app.test_client()
    sign_in(lead, world.email("national_lead"))
    for page in ("/national/?period=2025&lang=cy", "/national/?period=2025&q=Heddlu",
                 f"/national/compare?first={force_id}&second={world.b.id}&period=2025",
                 f"/national/equality?force={force_id}&period=2025"):
        shown = lead.get(page).text
        assert "Heddlu Gogledd Cymru" in shown, page
        assert "North Wales Police" not in shown, page
    assert "North Wales Police" in lead.get("/national/?period=2025&lang=en").text
