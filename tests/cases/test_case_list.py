"""The force's cases list: found by reference, PNC ID, surname with date of birth, or date of
birth; filtered, sorted and paginated from the address; names escaped."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import User
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import Encounter
from diversion.catalogue.models import Offering
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.cases.test_case_work import USER_DEALER
from tests.conftest import World, sign_in, statements_and_parameters_sent, statements_of, statements_sent

TODAY = date.today()  # noqa: DTZ011 - the list reads today's date, as an officer would


def _durham(world: World) -> Tenant:
    tenant = db.session.get(Tenant, world.b.id)
    assert tenant is not None
    return tenant


def _record(world: World, surname: str, born: date, *, pnc: str | None = None, refer: bool = False,
            **facts: object) -> Encounter:
    tenant = _durham(world)
    intake = cases.Intake(Identity(surname, "Sam", born, pnc), Contact(), "W1", TODAY - timedelta(days=2),
                          {**USER_DEALER, **facts})
    encounter, decision = cases.record_encounter(tenant, intake, actor=SYSTEM, today=TODAY)
    if refer:
        offering = db.session.scalar(select(Offering).where(Offering.pathway == "checkpoint"))
        assert offering is not None
        cases.refer(tenant, decision, offering, actor=SYSTEM, today=TODAY)
    return encounter


def _listed(html: str) -> list[str]:
    table = re.search(r'data-testid="cases">(.*?)</table>', html, re.S)
    return re.findall(r'>(DUR-\d{4}-\d{6})</a>', table.group(1)) if table else []


def test_cases_are_found_by_reference_pnc_surname_and_birth(app: Flask, client, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        jo = _record(world, "O'Neill", date(1990, 5, 1), pnc="2001/0012345A", refer=True)
        other = _record(world, "Oneil", date(1990, 5, 1))
        third = _record(world, "O'Neill", date(1991, 6, 2), held_for_court=True)
        references = (jo.reference, other.reference, third.reference)
        db.session.commit()
    jo_ref, other_ref = references[0], references[1]
    sign_in(client, world.email("b_officer"))
    everything = client.get("/durham/cases/")
    assert everything.status_code == 200
    assert _listed(everything.text) == sorted(references, reverse=True)
    assert "3 cases" in everything.text
    assert "Sam O&#39;Neill" in everything.text
    number = int(jo_ref.rsplit("-", 1)[1])
    assert _listed(client.get(f"/durham/cases/?q=dur-{jo_ref.split('-')[1]}-{number}").text) == [jo_ref]
    assert _listed(client.get("/durham/cases/?q=2001/12345a").text) == []  # a PNC ID is found whole
    assert _listed(client.get("/durham/cases/?q=2001/0012345a").text) == [jo_ref]
    by_name = client.get("/durham/cases/?surname=oneill&born-day=1&born-month=5&born-year=1990")
    assert _listed(by_name.text) == [jo_ref]
    by_birth = client.get("/durham/cases/?born-day=1&born-month=5&born-year=1990")
    assert _listed(by_birth.text) == sorted([jo_ref, other_ref], reverse=True)
    no_birth = client.get("/durham/cases/?surname=oneill")
    assert no_birth.status_code == 400
    assert 'href="#born-day"' in no_birth.text
    assert "a surname is searched together with a date of birth" in no_birth.text
    assert "No case matches" in client.get("/durham/cases/?q=DUR-2026-999999").text


def test_filters_and_sorts_come_from_the_address(app: Flask, client, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        referred = _record(world, "Able", date(1990, 1, 1), refer=True).reference
        review_case = _record(world, "Baker", date(1990, 1, 2), personal_use=None, user_dealer=None)
        assert review_case.outcome == "needs_review"
        review = review_case.reference
        plain = _record(world, "Cole", date(1990, 1, 3)).reference
        db.session.commit()
    sign_in(client, world.email("b_supervisor"))
    assert _listed(client.get("/durham/cases/?decision=needs_review").text) == [review]
    assert _listed(client.get("/durham/cases/?state=offered").text) == [referred]
    assert _listed(client.get("/durham/cases/?sort=due").text) == [referred]
    assert _listed(client.get("/durham/cases/?sort=reference").text) == [referred, review, plain]
    assert _listed(client.get(f"/durham/cases/?from={TODAY.isoformat()}").text) == []
    # Unless an order is asked for, a referral filter lists referrals by due date, a date filter by offence date.
    by_state = client.get("/durham/cases/?state=offered").text
    assert "1 referral</caption>" in by_state
    assert "Sorted by referral" in by_state
    assert '<option value="" selected>' not in by_state
    assert '<option value="">To suit the search</option>' in by_state
    asked = client.get("/durham/cases/?state=offered&sort=-reference").text
    assert "1 case</caption>" in asked
    assert '<option value="-reference" selected>' in asked
    assert "Sorted by referral" not in asked
    dated = client.get(f"/durham/cases/?from={(TODAY - timedelta(days=30)).isoformat()}").text
    assert _listed(dated) == [plain, review, referred]  # the same offence date: newest reference first
    assert "3 cases</caption>" in dated
    bad = client.get("/durham/cases/?from=2026-02-31")
    assert bad.status_code == 400
    assert "The earliest offence date must be a real date" in bad.text
    assert _listed(client.get("/durham/cases/?decision=maybe&state=lost").text) == \
        [plain, review, referred]  # values not offered are ignored


def test_the_list_is_paginated_and_a_case_opens_by_its_reference(app: Flask, client, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        made = [_record(world, f"Person{n:02d}", date(1980, 1, 1) + timedelta(days=n)).reference for n in range(27)]
        db.session.commit()
    sign_in(client, world.email("b_officer"))
    first = client.get("/durham/cases/?decision=eligible")
    assert len(_listed(first.text)) == 25
    assert "27 cases" in first.text
    second = client.get("/durham/cases/?decision=eligible&page=2")
    assert _listed(second.text) == sorted(made)[:2][::-1]
    assert "decision=eligible" in re.search(r'class="govuk-pagination.*?</nav>', first.text, re.S).group(0)
    case = client.get(f"/durham/cases/{made[0].lower()}")
    assert case.status_code == 200
    assert "Sam Person00" in case.text
    assert client.get("/durham/cases/DUR-1999-000001").status_code == 404
    assert client.get("/durham/cases/not-a-reference").status_code == 404


def test_names_in_the_list_are_escaped(app: Flask, client, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        _record(world, "<script>alert(1)</script>", date(1990, 1, 1))
        db.session.commit()
    sign_in(client, world.email("b_officer"))
    page = client.get("/durham/cases/")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_a_page_costs_the_same_statements_for_3_cases_as_for_25(app: Flask, client, world: World) -> None:
    """The people, referrals, courses and officers of a page come in one query each, never one per row."""
    with app.app_context(), scoped(world.b.id):
        for n in range(3):
            _record(world, f"Few{n}", date(1980, 1, 1) + timedelta(days=n), refer=True)
        db.session.commit()
    sign_in(client, world.email("b_officer"))
    few = {url: statements_of(app, client, url)[0] for url in ("/durham/cases/", "/durham/referrals")}
    with app.app_context(), scoped(world.b.id):
        for n in range(27):
            _record(world, f"Many{n}", date(1970, 1, 1) + timedelta(days=n), refer=True)
        db.session.commit()
    many = {url: statements_of(app, client, url)[0] for url in ("/durham/cases/", "/durham/referrals")}
    assert many == few


def _counts(app: Flask, client, url: str) -> tuple[list[str], str]:
    """The COUNT statements sent to answer GET ``url``, and the page."""
    seen, page = statements_sent(app, client, url)
    return [statement for statement in seen if "count(*)" in statement], page


def test_a_list_of_referrals_is_counted_from_the_referrals_alone_unless_a_case_field_narrows_it(
        app: Flask, client, world: World) -> None:
    """Every referral has its case, so a count of referrals filtered on nothing of the case need not
    join each to it (the join made the count grow with the force's history); a search on the case does."""
    with app.app_context(), scoped(world.b.id):
        references = [_record(world, f"Counted{n}", date(1980, 1, 1) + timedelta(days=n), refer=True).reference
                      for n in range(3)]
        _record(world, "Unreferred", date(1981, 1, 1))
        db.session.commit()
    sign_in(client, world.email("b_officer"))
    for url, total in (("/durham/referrals", "3 referrals"), ("/durham/referrals?state=offered", "3 referrals"),
                       ("/durham/referrals?state=completed", "No referral"),
                       ("/durham/cases/?sort=due", "3 referrals")):
        counts, page = _counts(app, client, url)
        assert total in page, url
        assert len(counts) == 1, url
        assert "encounters" not in counts[0], url
    counts, page = _counts(app, client, f"/durham/cases/?sort=due&q={references[1]}")
    assert "encounters" in counts[0]
    assert "1 referral" in page


def _plan(app: Flask, client, world: World, url: str, marker: str) -> list[str]:
    """PostgreSQL's plan, with sequential scans and sorts discouraged, of the statement holding ``marker`` that
    answering GET ``url`` sent (the officer of Durham signed in)."""
    sign_in(client, world.email("b_officer"))
    sent, _ = statements_and_parameters_sent(app, client, url)
    statement, parameters = next((s, p) for s, p in sent if marker in s)
    with app.app_context(), scoped(world.b.id):
        connection = db.session.connection()
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        # A sort too: a list's index must give its whole order, whatever a table of a few rows would cost.
        connection.exec_driver_sql("SET LOCAL enable_sort = off")
        return list(connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())


def test_the_referrals_list_reads_a_page_in_its_index_order_however_many_share_a_due_date(
        app: Flask, client, world: World) -> None:
    """Every referral made on one day is due on one day: the whole list's order (due date, then id)
    is its index's, so that a page is cut from the index, never found and sorted from them all."""
    with app.app_context(), scoped(world.b.id):
        for n in range(3):
            _record(world, f"Tied{n}", date(1980, 1, 1) + timedelta(days=n), refer=True)
        db.session.commit()
        if db.engine.dialect.name != "postgresql":
            pytest.skip("the plan is PostgreSQL's")
    plan = _plan(app, client, world, "/durham/referrals", "ORDER BY referrals.deadline DESC")
    assert any("ix_referrals_tenant_id_deadline_id" in line for line in plan), "\n".join(plan)
    assert not any("Sort" in line for line in plan), "\n".join(plan)


def test_an_officers_cases_are_read_from_the_index_of_the_cases_officers_recorded(
        app: Flask, client, world: World) -> None:
    """The cases a case system sent or an import brought have no officer, and no entry in the index
    an officer's cases are read from."""
    with app.app_context(), scoped(world.b.id):
        officer = db.session.scalar(select(User).where(User.email == world.email("b_officer")))
        assert officer is not None
        tenant = _durham(world)
        for n, actor in enumerate((officer, SYSTEM)):
            intake = cases.Intake(Identity(f"Kept{n}", "Sam", date(1980, 1, 1 + n), None), Contact(), "W1",
                                  TODAY - timedelta(days=2), dict(USER_DEALER))
            cases.record_encounter(tenant, intake, actor=actor, today=TODAY)
        db.session.commit()
        officer_id = officer.id
        if db.engine.dialect.name != "postgresql":
            pytest.skip("the plan is PostgreSQL's")
    plan = _plan(app, client, world, f"/durham/cases/?officer={officer_id}", "ORDER BY encounters.reference DESC")
    assert any("ix_encounters_officer_tenant_id_recorded_by_id_reference" in line for line in plan), "\n".join(plan)
