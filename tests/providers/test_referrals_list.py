"""The provider's referrals list: a page at a time, with names and case references, searched by reference,
filtered by state, force, overdue and course (the filters in the address), its people read in one query."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from diversion.cases.models import Encounter, Referral, State
from diversion.catalogue.models import Course
from diversion.extensions import db
from diversion.tenancy.context import scoped
from tests.conftest import World, sign_in, statements_of
from tests.providers.conftest import Made, Referrals, make_referral, today


def _set(app: Flask, made: Made, **values: Any) -> None:
    with app.app_context(), scoped(made.tenant_id):
        db.session.execute(update(Referral).where(Referral.id == made.id).values(**values))
        db.session.commit()


def _reference(app: Flask, made: Made) -> str:
    with app.app_context(), scoped(made.tenant_id):
        found = db.session.scalar(select(Encounter.reference).where(Encounter.id == made.encounter_id))
        assert found is not None
        return found


def _rows(html: str) -> list[str]:
    return re.findall(r'href="/provider/referrals/([0-9a-f-]{36})"', html)


def test_each_row_names_the_person_and_the_case_and_every_name_is_escaped(
        app: Flask, client: FlaskClient, world: World, referrals: Referrals) -> None:
    hostile = make_referral(app, "west-midlands", "cranstoun-divert", "<script>alert(1)</script>", "07700 900909")
    sign_in(client, world.email("provider_staff"))
    page = client.get("/provider/").get_data(as_text=True)
    assert "Sam Midlander" in page
    assert "Sam Valleyman" in page
    assert _reference(app, referrals.west_midlands) in page
    assert "<script>alert(1)</script>" not in page
    assert "Sam &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert str(hostile.id) in page
    assert "Durhamite" not in page  # another provider's person is not read
    assert "Druglinked" not in page


def test_search_by_case_reference(app: Flask, client: FlaskClient, world: World, referrals: Referrals) -> None:
    sign_in(client, world.email("provider_staff"))
    reference = _reference(app, referrals.thames_valley)
    prefix, year, number = reference.split("-")
    typed = f" {prefix.lower()}-{year}-{int(number)} "  # any case, zeros left off
    found = client.get("/provider/", query_string={"q": typed})
    assert found.status_code == 200
    assert _rows(found.text) == [str(referrals.thames_valley.id)]
    # Another provider's case, found by its reference, is not shown.
    other = _reference(app, referrals.druglink)
    assert f"No referral has the case reference {other}." in client.get(f"/provider/?q={other}").text
    bad = client.get("/provider/?q=Smith")
    assert bad.status_code == 400
    assert "Enter a case reference like WM-2026-000042." in bad.text


def test_filters_by_state_force_overdue_and_course(app: Flask, client: FlaskClient, world: World,
                                                   referrals: Referrals) -> None:
    late = make_referral(app, "west-midlands", "cranstoun-divert", "Latecomer", "07700 900808")
    _set(app, late, deadline=today() - timedelta(days=3), state=State.ACCEPTED)
    done = make_referral(app, "west-midlands", "cranstoun-divert", "Finisher", "07700 900707")
    _set(app, done, deadline=today() - timedelta(days=3), state=State.COMPLETED)
    sign_in(client, world.email("provider_staff"))
    assert _rows(client.get("/provider/?overdue=yes").text) == [str(late.id)]
    assert _rows(client.get("/provider/?state=completed").text) == [str(done.id)]
    assert set(_rows(client.get("/provider/?force=thames-valley").text)) == {str(referrals.thames_valley.id)}
    with app.app_context():
        course = db.session.scalar(select(Course.id).where(Course.slug == "cranstoun-divert"))
    assert len(_rows(client.get(f"/provider/?course={course}&state=all").text)) == 4
    assert len(_rows(client.get(f"/provider/?course={course}").text)) == 3  # the open ones: not the finished
    together = client.get(f"/provider/?course={course}&force=west-midlands&overdue=yes&state=accepted").text
    assert _rows(together) == [str(late.id)]
    for wrong, message in (("overdue=maybe", "Choose whether to show only referrals past their deadline."),
                           ("course=999999", "Choose one of your organisation&#39;s courses."),
                           ("state=lost", "Choose one of the referral states.")):
        refused = client.get(f"/provider/?{wrong}")
        assert refused.status_code == 400
        assert message in refused.text


def test_the_list_holds_the_open_referrals_until_asked_for_the_ended_ones(
        app: Flask, client: FlaskClient, world: World, referrals: Referrals) -> None:
    done = make_referral(app, "west-midlands", "cranstoun-divert", "Finisher", "07700 900707")
    _set(app, done, state=State.COMPLETED)
    sign_in(client, world.email("provider_staff"))
    shown = client.get("/provider/").text
    assert str(done.id) not in _rows(shown)
    assert str(referrals.west_midlands.id) in _rows(shown)
    assert re.search(r"\d+ open referrals?<", shown)
    everything = client.get("/provider/?state=all").text
    assert {str(done.id), str(referrals.west_midlands.id)} <= set(_rows(everything))
    assert '<option value="all" selected>All states</option>' in everything
    assert _rows(client.get("/provider/?state=completed").text) == [str(done.id)]
    # A case reference is found whatever its referral's state.
    assert _rows(client.get("/provider/", query_string={"q": _reference(app, done)}).text) == [str(done.id)]
    # With none open, the list says how to see the others.
    for made in (referrals.west_midlands, referrals.thames_valley):
        _set(app, made, state=State.WITHDRAWN)
    empty = client.get("/provider/").text
    assert "No open referrals. To see the ones that have ended, choose All states." in empty


def test_the_selected_filters_are_shown_each_with_a_link_that_removes_it(
        app: Flask, client: FlaskClient, world: World, referrals: Referrals) -> None:
    sign_in(client, world.email("provider_staff"))
    page = client.get("/provider/?state=offered&force=thames-valley&overdue=yes&sort=state").text
    tags = dict(re.findall(r'<a class="moj-filter__tag" href="([^"]*)"><span class="govuk-visually-hidden">'
                           r'Remove this filter:</span> ([^<]*)</a>', page))
    assert sorted(tags.values()) == ["Offered", "Only open past their deadline", "Thames Valley Police"]
    without_state = next(href for href, words in tags.items() if words == "Offered")
    assert without_state.startswith("/provider/?")
    assert "state=" not in without_state
    assert "force=thames-valley" in without_state
    assert "sort=state" in without_state  # the order is kept: it is not a filter
    assert "moj-filter__tag" not in client.get("/provider/").text


def test_a_due_window_that_ends_before_it_starts_filters_on_neither_date(
        app: Flask, client: FlaskClient, world: World, referrals: Referrals) -> None:
    sign_in(client, world.email("provider_staff"))
    everything = _rows(client.get("/provider/").text)
    refused = client.get(f"/provider/?due_from={today() + timedelta(days=30)}&due_to={today() - timedelta(days=30)}")
    assert refused.status_code == 400
    assert "Due by must be the same as or after due from." in refused.text
    assert _rows(refused.text) == everything
    assert "moj-filter__tag" not in refused.text


@pytest.fixture
def many(app: Flask, referrals: Referrals) -> list[Made]:
    made = [make_referral(app, "west-midlands", "cranstoun-divert", f"Person{number:02d}", "07700 900100")
            for number in range(28)]
    for number, one in enumerate(made):
        _set(app, one, deadline=today() + timedelta(days=number + 1))  # due before the fixture's, in order
    return made


def test_pages_of_25_keep_the_filters_and_read_the_people_in_one_query(
        app: Flask, client: FlaskClient, world: World, many: list[Made]) -> None:
    sign_in(client, world.email("provider_staff"))
    first = client.get("/provider/?force=west-midlands").text
    assert "29 open referrals" in first  # 28 here and the fixture's West Midlands one
    assert _rows(first) == [str(made.id) for made in many[:25]]
    assert "force=west-midlands&amp;page=2" in first
    second = client.get("/provider/?force=west-midlands&page=2").text
    assert _rows(second) == [*(str(made.id) for made in many[25:]), _rows(second)[-1]]
    assert len(_rows(second)) == 4
    # The statements of a page do not grow with its rows: 25 rows cost what 4 do.
    assert statements_of(app, client, "/provider/?force=west-midlands")[0] == \
        statements_of(app, client, "/provider/?force=west-midlands&page=2")[0]
