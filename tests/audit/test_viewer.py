"""The audit viewer: the platform's log for platform admins, a force's for its
admins (who viewed or changed which case), filtered, paginated, in plain
words, and downloaded as CSV with the same filters."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, insert, select, text

from diversion.accounts.access import SYSTEM
from diversion.audit.models import AuditEvent
from diversion.audit.reading import Known, action_words, details_words, read_filter
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World, sign_in

TODAY = datetime.now(UTC).date()


def _table(html: str) -> str:
    """The events' table of a page (not its filters' options, not its header)."""
    return html.split("<table", 1)[1].split("</table>", 1)[0] if "<table" in html else ""


def _recorded(app: Flask, world: World, surname: str = "Audit") -> tuple[str, str]:
    """A West Midlands case, recorded by the platform: its encounter's id and its reference."""
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        with scoped(world.a.id):
            encounter, _decision = cases.record_encounter(tenant, cases.Intake(
                Identity(surname, "Ali", date(1991, 7, 8)), Contact(), "W1", TODAY,
                {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
                 "admission": "admitted", "stage": "street"}), actor=SYSTEM, today=TODAY)
            found = str(encounter.id), encounter.reference
        db.session.commit()
        return found


def _case(app: Flask, world: World) -> str:
    """A West Midlands case, recorded by the platform; its encounter's id."""
    return _recorded(app, world)[0]


def test_a_force_admin_sees_who_viewed_which_case_in_plain_words(app: Flask, world: World) -> None:
    encounter, reference = _recorded(app, world)
    officer = app.test_client()
    sign_in(officer, world.email("a_officer"))
    assert officer.get(f"/west-midlands/cases/{encounter}").status_code == 200
    assert officer.get("/west-midlands/referrals").status_code == 200
    admin = app.test_client()
    sign_in(admin, world.email("a_force_admin"))
    page = admin.get("/west-midlands/audit/?action=case.viewed")
    assert page.status_code == 200
    assert "1 event matches the filters" in page.text
    assert "Case viewed (name and contact details shown)" in page.text
    assert world.users["a_officer"].name in page.text
    assert f"Case {reference}" in page.text
    assert "contact details shown: yes" in page.text
    assert "{" not in page.text.split("<main", 1)[1].split("</main>", 1)[0]  # no raw JSON
    # The object's link shows every event about that case.
    about = admin.get(f"/west-midlands/audit/?object_type=encounter&object_id={encounter}")
    assert "Encounter recorded" in about.text
    assert "Case viewed" in about.text
    listed = admin.get("/west-midlands/audit/?action=referrals")
    assert "Referrals list viewed" in listed.text


def test_a_forces_log_names_each_case_by_its_reference_however_close_in_time_they_were_made(
        app: Flask, world: World) -> None:
    """Keys made in the same minute begin with the same digits: the log names the case, its
    decision and its referral by the case's reference; ids it cannot name, by their last digits."""
    first, first_reference = _recorded(app, world, "Early")
    second, second_reference = _recorded(app, world, "Later")
    admin = app.test_client()
    sign_in(admin, world.email("a_force_admin"))
    page = _table(admin.get("/west-midlands/audit/?action=encounter.recorded").text)
    assert f"Case {first_reference}" in page
    assert f"Case {second_reference}" in page
    assert f"Case {first[:8]}" not in page  # the digits they share name neither
    platform = app.test_client()
    sign_in(platform, world.email("platform_admin"))
    whole = _table(platform.get("/admin/audit/?action=encounter.recorded").text)
    assert f"Case {first[-8:]}" in whole
    assert f"Case {second[-8:]}" in whole


def test_a_force_sees_its_own_events_only_and_no_sign_ins(app: Flask, world: World) -> None:
    durham_officer = app.test_client()
    sign_in(durham_officer, world.email("b_officer"))
    admin = app.test_client()
    sign_in(admin, world.email("a_force_admin"))
    page = _table(admin.get("/west-midlands/audit/").text)
    assert "Member added" in page
    assert world.users["a_supervisor"].name in page  # "person: A Supervisor"
    assert world.users["b_supervisor"].name not in page
    assert "Signed in" not in page
    assert "Durham" not in page
    download = admin.get("/west-midlands/audit/events.csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert rows
    assert {row["Force"] for row in rows} == {"West Midlands Police"}


def test_the_platform_admin_sees_every_event_sign_ins_and_console_actions(app: Flask, world: World) -> None:
    failed = app.test_client()
    sign_in(failed, "stranger@example.org", "wrong-password-here")
    admin = app.test_client()
    sign_in(admin, world.email("platform_admin"))
    page = admin.get("/admin/audit/")
    assert page.status_code == 200
    for words in ("Signed in", "Sign-in refused", "stranger@example.org (not signed in)", "Member added",
                  "West Midlands Police", "Durham Constabulary", "Platform role given"):
        assert words in page.text, words
    page = admin.get("/admin/audit/?action=auth")
    assert "Member added" not in _table(page.text)
    assert "2 events match the filters" in page.text


def test_filters_by_person_object_and_dates(app: Flask, world: World) -> None:
    admin = app.test_client()
    sign_in(admin, world.email("platform_admin"))
    mine = admin.get("/admin/audit/?person=platform-admin")
    assert "1 event matches the filters" in mine.text
    assert "Signed in" in mine.text
    user_id = str(world.users["no_role"].id)
    about = admin.get(f"/admin/audit/?object_type=user&object_id={user_id}")
    assert "1 event matches the filters" in about.text
    assert "Account created" in about.text
    assert world.email("no_role") in about.text
    today = datetime.now(UTC).date()
    assert "No events" in admin.get(f"/admin/audit/?until={today - timedelta(days=2)}").text
    assert "No events" in admin.get(f"/admin/audit/?since={today + timedelta(days=2)}").text
    some = admin.get(f"/admin/audit/?since={(today - timedelta(days=1)).strftime('%d/%m/%Y')}&until={today}")
    assert "events match the filters" in some.text


@pytest.mark.parametrize(("query", "field", "message"), [
    ("since=31/02/2026", "since", "Enter the from date as a real date"),
    ("until=yesterday", "until", "Enter the to date as a real date"),
    ("since=2026-12-05&until=2026-12-01", "until", "The to date must be the same as or after the from date"),
    ("action=drop%20table", "action", "Enter the action as its code"),
    ("person=" + "x" * 101, "person", "Enter 100 characters or fewer"),
])
def test_a_bad_filter_is_named_and_nothing_is_shown(app: Flask, world: World, query: str, field: str,
                                                    message: str) -> None:
    admin = app.test_client()
    sign_in(admin, world.email("platform_admin"))
    for url in (f"/admin/audit/?{query}", f"/admin/audit/events.csv?{query}"):
        page = admin.get(url)
        assert page.status_code == 400
        assert "There is a problem" in page.text
        assert f'href="#{field}"' in page.text
        assert message in page.text
        assert "Events, newest first" not in page.text


def _many_events(app: Flask, world: World, count: int) -> None:
    with app.app_context(), scoped(world.a.id):
        db.session.execute(insert(AuditEvent), [
            {"id": uuid.uuid4(), "action": "decision.viewed", "tenant_id": world.a.id, "object_type": "decision",
             "object_id": str(uuid.uuid4()), "actor_email": "=HYPERLINK(\"http://evil\")",
             "occurred_at": datetime.now(UTC) - timedelta(minutes=n), "details": {}} for n in range(count)])
        db.session.commit()


def test_pages_and_csv_follow_the_filters_and_the_csv_streams(app: Flask, world: World) -> None:
    _many_events(app, world, 60)
    admin = app.test_client()
    sign_in(admin, world.email("a_force_admin"))
    first = admin.get("/west-midlands/audit/?action=decision.viewed")
    assert "60 events match the filters" in first.text
    assert first.text.count("Decision viewed") == 25 + 1  # the rows, and the action's option
    assert 'href="/west-midlands/audit/?action=decision.viewed&amp;page=2"' in first.text
    third = admin.get("/west-midlands/audit/?action=decision.viewed&page=3")
    assert third.text.count("Decision viewed") == 10 + 1
    assert 'href="/west-midlands/audit/events.csv?action=decision.viewed"' in first.text
    download = admin.get("/west-midlands/audit/events.csv?action=decision.viewed")
    assert download.status_code == 200
    assert download.is_streamed
    assert download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == 'attachment; filename="west-midlands-audit.csv"'
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert len(rows) == 60
    assert {row["What happened"] for row in rows} == {"Decision viewed"}
    # A cell that a spreadsheet would run as a formula is written as text.
    assert rows[0]["Email address"] == "'=HYPERLINK(\"http://evil\")"


def test_details_read_as_words() -> None:
    assert details_words({"before": {"retention_months": None}, "after": {"retention_months": 72}}) == \
        "retention months: not set → 72"
    assert details_words({"from": "active", "to": "suspended", "sessions_ended": 3}) == \
        "from active to suspended; sessions ended: 3"
    assert details_words({"user_id": 4, "role": "force_admin"}, known=Known(people={4: "Ann"})) == \
        "person: Ann; role: force admin"
    assert details_words({"hash": "sha256:abc", "number": 2}) == "number: 2"
    assert details_words({"before": {"languages": ["en"]}, "after": {"languages": ["en", "cy"]}}) == \
        "languages: English → English, Welsh"
    assert details_words({"outcome": "eligible", "source": "api"}) == \
        "outcome: eligible; source: recorded through the API"
    assert details_words({"referrals": ["a", "b", "c", "d"]}) == "referrals: 4 referrals"
    assert details_words({"offerings": ["a", "b", "c", "d"]}) == "courses offered: 4 items"
    assert details_words({"starts_at": "2026-09-25T10:00:00+01:00"}) == "starts at: 25 September 2026 10:00"
    assert action_words("tenant.status_changed", {"from": "active", "to": "suspended"}) == "Force suspended"
    assert action_words("tenant.status_changed", {"from": "draft", "to": "active"}) == "Force opened"
    assert action_words("tenant.status_changed", {"from": "suspended", "to": "active"}) == "Force reopened"
    assert action_words("referral.not_completed") == "Referral not completed"
    assert len(details_words({"note": "x" * 500})) == 240


def test_read_filter_takes_both_date_forms() -> None:
    wanted = read_filter({"since": "1/12/2026", "until": "2026-12-02", "action": "Referral"})
    assert (wanted.since, wanted.until, wanted.action) == (date(2026, 12, 1), date(2026, 12, 2), "referral")
    assert wanted.as_args() == {"action": "referral", "since": "2026-12-01", "until": "2026-12-02"}


def test_only_a_platform_admin_in_scope_reads_the_whole_log_on_postgresql(app: Flask, world: World) -> None:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("row-level security is PostgreSQL's")
        count = text("SELECT count(*) FROM audit_events")
        with scoped(None, world.users["platform_admin"].id):
            everything = db.session.execute(count).scalar()
            outside = db.session.scalar(select(func.count()).select_from(AuditEvent)
                                        .where(AuditEvent.tenant_id.is_(None)))
        with scoped(None, world.users["a_force_admin"].id):
            assert db.session.execute(count).scalar() == 0
        with scoped(world.a.id, world.users["a_force_admin"].id):
            own = db.session.execute(count).scalar()
            assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                     .where(AuditEvent.tenant_id != world.a.id)) == 0
    assert everything > own > 0
    assert outside > 0


def test_details_name_courses_pathways_providers_forces_and_sessions_not_their_ids() -> None:
    known = Known(people={4: "Ann"}, forces={"west-midlands": "West Midlands Police", 1: "West Midlands Police"},
                  courses={"cranstoun-divert": "DIVERT", 7: "DIVERT"},
                  providers={3: "Cranstoun", "cranstoun": "Cranstoun"},
                  pathways={1: {"divert": "DIVERT (adults)"}},
                  sessions={"01a245ad-8dd0-7205-b0ca-f40c56f17393": datetime(2026, 12, 2, 13, 53, tzinfo=UTC)})
    assert details_words({"course": "cranstoun-divert", "pathway": "divert"}, known=known, force=1) == \
        "course: DIVERT; pathway: DIVERT (adults)"
    assert details_words({"pathway": "divert", "course": 7}, known=known, force=1) == \
        "pathway: DIVERT (adults); course: DIVERT"
    assert details_words({"email": "a@b.example", "role": "officer", "replaced": []}) == \
        "email address: a@b.example; role: officer"
    replaced = details_words({"replaced": ["01a245ae-1b90-7845-b163-4ac745a6f9d9"]})
    assert replaced == "replaces 1 earlier invitation to the same address"
    assert "replaces 2 earlier invitations" in details_words({"replaced": [str(uuid.uuid4()), str(uuid.uuid4())]})
    assert details_words({"decision": str(uuid.uuid4()), "outcome": "eligible"}) == "outcome: eligible"
    assert details_words({"session": "01a245ad-8dd0-7205-b0ca-f40c56f17393", "attendance": "attended"},
                         known=known) == "session: 2 December 2026 13:53; attendance: attended"
    assert details_words({"session": str(uuid.uuid4()), "attendance": "attended"}) == "attendance: attended"
    assert details_words({"provider": "cranstoun", "delivery": str(uuid.uuid4())}, known=known) == "provider: Cranstoun"
    assert details_words({"provider_id": 3, "email": "x@y.example"}, known=known).startswith("provider: Cranstoun")
    assert details_words({"from": "west-midlands", "version": 2}, known=known, action="tenant.policy_copied") == \
        "copied from West Midlands Police; policy version: 2"
    assert details_words({"from": str(uuid.uuid4()), "was": "needs_review", "outcome": "eligible"}) == \
        "outcome before: needs review; outcome: eligible"
    assert details_words({"dropped": ["cranstoun-divert for divert"]}, known=known, force=1) == \
        "dropped: DIVERT for DIVERT (adults)"
    assert details_words({"provider": 3, "prices": {"course_completed:divert": 2000}}, known=known, force=1) == \
        "provider: Cranstoun; prices: course completed for DIVERT (adults): £20.00"
    assert details_words({"slug": "cranstoun-divert"}, known=known, action="course.created") == "name: DIVERT"
    assert details_words({"invitation": str(uuid.uuid4())}) == "through an invitation"
    assert details_words({"file": "a.csv", "sha256": "c658b5dfbba6c180"}) == "file: a.csv"
    assert details_words({"effective_from": "2020-10-01"}) == "in force from: 1 October 2020"


def test_a_forces_log_names_courses_pathways_and_replaced_invitations_in_words_in_fixed_statements(
        app: Flask, world: World) -> None:
    from diversion.accounts import invitations
    from diversion.accounts.models import Role, User
    from diversion.catalogue import services as catalogue
    from diversion.catalogue.models import Course, Provider
    from tests.conftest import statements_of

    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        admin = db.session.get(User, world.users["a_force_admin"].id)
        assert tenant is not None
        assert admin is not None
        provider = Provider(slug="audit-words-provider", name="Audit Words Trust")
        db.session.add(provider)
        db.session.flush()
        course = Course(provider_id=provider.id, slug="audit-words-course", title="Words Course", sessions=2,
                        areas=["west-midlands"], kinds=["adult_education"])
        db.session.add(course)
        db.session.flush()
        with scoped(world.a.id):
            offering = catalogue.add_offering(tenant, course, "divert", catalogue.LocalDetails([], "", ""),
                                              actor=admin, today=TODAY)
            catalogue.withdraw_offering(tenant, offering, actor=admin)
            for _ in range(2):
                invitations.invite_to_force(tenant, email="words@example.org", name="Words", role=Role.OFFICER,
                                            actor=admin)
        db.session.commit()
    client = app.test_client()
    sign_in(client, world.email("a_force_admin"))
    count, page = statements_of(app, client, "/west-midlands/audit/?action=offering")
    table = _table(page)
    assert "course: Words Course" in table
    assert "audit-words-course" not in table
    assert "Course offered Words Course" in table  # the object, by its course's title
    assert "pathway: divert" not in table
    assert "pathway: DIVERT" in table  # as the force's policy names it
    invited = _table(client.get("/west-midlands/audit/?action=invitation.created").text)
    assert "replaces 1 earlier invitation to the same address" in invited
    assert "invitations replaced" not in invited
    assert "Invitation words@example.org" in invited
    # More events on the page cost no more statements.
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        admin = db.session.get(User, world.users["a_force_admin"].id)
        assert tenant is not None
        assert admin is not None
        again = db.session.scalars(select(Course).where(Course.slug == "audit-words-course")).one()
        for _ in range(3):
            reopened = catalogue.add_offering(tenant, again, "divert", catalogue.LocalDetails([], "", ""), actor=admin,
                                              today=TODAY)
            catalogue.withdraw_offering(tenant, reopened, actor=admin)
        db.session.commit()
    more, _page = statements_of(app, client, "/west-midlands/audit/?action=offering")
    assert more == count


def _record_events(app: Flask, world: World) -> None:
    """A contract made and changed, a provider's list of referrals, a force's non-completion action
    changed and a force opened: events whose details and objects the log puts in words."""
    from diversion.audit.services import record

    with app.app_context():
        north_wales = db.session.scalars(select(Tenant).where(Tenant.slug == "north-wales")).one()
        provider = world.providers["cranstoun"].id
        prices = {"course_completed:divert": 1500}
        contract = {"provider": provider, "starts_on": "2026-12-01", "ends_on": None, "monthly_fee_pence": 150000,
                    "vat": "standard", "platform_fee_basis_points": 250, "prices": prices}
        with scoped(world.a.id):
            record("contract.created", actor=SYSTEM, object_type="contract", object_id=str(uuid.uuid4()),
                   details=contract)
            record("provider.referrals_listed", actor=SYSTEM, object_type="provider", object_id=provider,
                   details={"provider": "cranstoun", "referrals": [str(uuid.uuid4())]})
            record("provider.referrals_listed", actor=SYSTEM, object_type="provider", object_id=provider,
                   details={"provider": "cranstoun", "referrals": [str(uuid.uuid4()) for _ in range(24)]})
            record("tenant.settings_changed", actor=SYSTEM, object_type="tenant", object_id=world.a.id,
                   details={"before": {"not_completed_action": "prosecution"},
                            "after": {"not_completed_action": "court"}})
        with scoped(north_wales.id):
            record("tenant.status_changed", actor=SYSTEM, object_type="tenant", object_id=north_wales.id,
                   details={"from": "suspended", "to": "active"})
        db.session.commit()


def test_contracts_lists_and_settings_read_in_words_not_codes_pence_or_ids(app: Flask, world: World) -> None:
    _record_events(app, world)
    admin = app.test_client()
    sign_in(admin, world.email("a_force_admin"))
    force = _table(admin.get("/west-midlands/audit/").text)
    platform = app.test_client()
    sign_in(platform, world.email("platform_admin"))
    console = _table(platform.get("/admin/audit/").text)
    for table in (force, console):
        assert "what happens when a person does not complete: prosecution resumes → the case goes to court" in table
        assert "monthly fee: £1,500.00; " in table
        assert "platform fee: 2.5%" in table
        assert ": £15.00" in table
        assert "prices: course completed for " in table
        assert "ends on: until further notice" in table
        assert "pence" not in table
        assert "basis points" not in table
        assert "referrals: 1 referral;" not in table
        assert "referrals: 1 referral" in table
        assert "referrals: 24 referrals" in table
        assert "24 items" not in table
        assert "Contract West Midlands Police and Cranstoun" in table
        assert ">West Midlands Police<span" in table  # a force is named by its name alone
    download = admin.get("/west-midlands/audit/events.csv").text
    assert "monthly fee: £1,500.00" in download
    assert "referrals: 24 referrals" in download
    assert "prosecution resumes → the case goes to court" in download
    welsh = _table(platform.get("/admin/audit/", headers={"Accept-Language": "cy"}).text)
    assert "Heddlu Heddlu" not in welsh
    assert ">Heddlu Gogledd Cymru<span" in welsh
    assert "Prosecution resumes" not in welsh
    assert "monthly fee" not in welsh
    assert "£1,500.00" in welsh
