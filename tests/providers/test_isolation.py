"""Provider staff reach their provider's referrals and nothing else: pages, ORM, raw SQL.

Cranstoun (the world's ``provider_staff``) serves West Midlands and Thames
Valley. Druglink's referral in Thames Valley (same force, another provider)
and Durham's referral (a force Cranstoun does not serve) must stay out of
reach whatever the way in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, create_engine, event, func, select, text
from sqlalchemy.exc import DBAPIError

from diversion.accounts.models import ForceMembership, User
from diversion.audit.models import AuditEvent
from diversion.cases.models import BookedSession, Encounter, Person, Referral, State
from diversion.catalogue.models import Offering
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.providers import services
from diversion.tenancy.context import acting_for_provider, provider_scoped, scoped
from diversion.tenancy.guard import OutsideProviderScope
from tests.conftest import World, csrf_token, sign_in, started_today
from tests.databases import postgres_admin_url
from tests.providers.conftest import Referrals


def _cranstoun(world: World) -> int:
    return int(world.providers["cranstoun"].id)


def _staff(app: Flask, world: World) -> User:
    user = db.session.get(User, world.users["provider_staff"].id)
    assert user is not None
    return user


# --- ORM guard ------------------------------------------------------------------------


def test_provider_scope_sees_only_its_referrals_in_every_force(app: Flask, world: World,
                                                               referrals: Referrals) -> None:
    with app.app_context(), provider_scoped(_cranstoun(world)):
        assert set(db.session.scalars(select(Referral.id))) == referrals.cranstouns
        assert db.session.scalar(select(func.count()).select_from(Referral)) == 2
        for other in referrals.others:
            assert db.session.get(Referral, other.id) is None
            assert db.session.get(Person, other.person_id) is None
            assert db.session.get(Encounter, other.encounter_id) is None
        people = set(db.session.scalars(select(Person.id)))
        assert people == {referrals.west_midlands.person_id, referrals.thames_valley.person_id}
        assert {referral.id for referral in db.session.scalars(select(Referral)) if referral.steps} \
            == referrals.cranstouns  # their steps with them
        # Offerings of its own courses only: the forces it serves.
        forces = set(db.session.scalars(select(Offering.tenant_id)))
        assert forces == {referrals.west_midlands.tenant_id, referrals.thames_valley.tenant_id}


@pytest.mark.parametrize("model", [Decision, ForceMembership])
def test_provider_scope_refuses_every_other_force_table(app: Flask, world: World, referrals: Referrals,
                                                        model: type) -> None:
    with app.app_context(), provider_scoped(_cranstoun(world)), pytest.raises(OutsideProviderScope):
        db.session.scalars(select(model)).all()
    # The force's scope added does not open them either.
    with app.app_context(), acting_for_provider(_cranstoun(world), referrals.thames_valley.tenant_id), \
            pytest.raises(OutsideProviderScope):
        db.session.scalars(select(model)).all()


def test_the_forces_scope_does_not_widen_the_providers(app: Flask, world: World, referrals: Referrals) -> None:
    """Acting on a Thames Valley referral puts Thames Valley in scope: Druglink's stays out."""
    with app.app_context(), acting_for_provider(_cranstoun(world), referrals.thames_valley.tenant_id):
        assert set(db.session.scalars(select(Referral.id))) == {referrals.thames_valley.id}
        assert db.session.get(Referral, referrals.druglink.id) is None


def test_provider_scope_cannot_change_another_providers_referral(app: Flask, world: World,
                                                                 referrals: Referrals) -> None:
    """Even an object loaded earlier in the force's own scope cannot be written back as the provider."""
    with app.app_context():
        with scoped(referrals.druglink.tenant_id):
            theirs = db.session.get(Referral, referrals.druglink.id)
            assert theirs is not None
        with acting_for_provider(_cranstoun(world), referrals.druglink.tenant_id):
            theirs.state = State.ACCEPTED
            with pytest.raises(OutsideProviderScope):
                db.session.flush()
        db.session.rollback()
        with scoped(referrals.druglink.tenant_id):
            assert db.session.get(Referral, referrals.druglink.id).state is State.OFFERED


def test_provider_scope_without_a_force_writes_nothing(app: Flask, world: World, referrals: Referrals) -> None:
    with app.app_context(), provider_scoped(_cranstoun(world)):
        mine = db.session.get(Referral, referrals.thames_valley.id)
        assert mine is not None
        db.session.add(BookedSession(id=uuid.uuid4(), tenant_id=mine.tenant_id, referral_id=mine.id,
                                     starts_at=datetime.now(UTC), venue="Anywhere"))
        with pytest.raises(Exception, match="No force is in scope"):
            db.session.flush()
        db.session.rollback()


def test_services_find_nothing_of_another_provider(app: Flask, world: World, referrals: Referrals) -> None:
    with app.app_context(), provider_scoped(_cranstoun(world), world.users["provider_staff"].id):
        from diversion.catalogue.models import Provider

        cranstoun = db.session.get(Provider, _cranstoun(world))
        assert cranstoun is not None
        listed = services.referrals(cranstoun, services.ReferralFilter())
        assert {r.id for r, _ in listed} == referrals.cranstouns
        assert {t.slug for _, t in listed} == {"west-midlands", "thames-valley"}
        assert [t.slug for t in services.forces_served(cranstoun)] == ["thames-valley", "west-midlands"]
        for other in referrals.others:
            assert services.find_referral(cranstoun, other.id) is None
        only_tv = services.referrals(cranstoun, services.ReferralFilter(force="thames-valley"))
        assert [r.id for r, _ in only_tv] == [referrals.thames_valley.id]
    with app.app_context(), provider_scoped(int(world.providers["druglink"].id)), pytest.raises(OutsideProviderScope):
        services.referrals(cranstoun, services.ReferralFilter())  # another provider's scope


# --- pages ----------------------------------------------------------------------------


def test_the_workspace_lists_referrals_from_every_force_served_and_no_others(
        client: FlaskClient, world: World, referrals: Referrals) -> None:
    sign_in(client, world.email("provider_staff"))
    page = client.get("/provider/")
    assert page.status_code == 200
    for mine in (referrals.west_midlands, referrals.thames_valley):
        assert f"/provider/referrals/{mine.id}" in page.text
    for other in referrals.others:
        assert str(other.id) not in page.text
    assert "West Midlands Police" in page.text
    assert "Thames Valley Police" in page.text
    assert "Durham" not in page.text
    filtered = client.get("/provider/?force=west-midlands")
    assert str(referrals.west_midlands.id) in filtered.text
    assert str(referrals.thames_valley.id) not in filtered.text
    # Contact details are on the referral page only.
    assert referrals.west_midlands.phone not in page.text


def test_another_providers_referral_is_not_found(client: FlaskClient, app: Flask, world: World,
                                                 referrals: Referrals) -> None:
    sign_in(client, world.email("provider_staff"))
    token = csrf_token(client.get("/provider/").text)
    for other in referrals.others:
        page = client.get(f"/provider/referrals/{other.id}")
        assert page.status_code == 404
        assert other.surname not in page.text
        assert other.phone not in page.text
        assert client.post(f"/provider/referrals/{other.id}/accept", data={"csrf_token": token}).status_code == 404
        assert client.post(f"/provider/referrals/{other.id}/complete",
                           data={"csrf_token": token, "confirm": "y"}).status_code == 404
        with app.app_context(), scoped(other.tenant_id):
            assert db.session.get(Referral, other.id).state is State.OFFERED


def test_another_providers_session_is_not_found(client: FlaskClient, app: Flask, world: World,
                                                referrals: Referrals) -> None:
    """Druglink books a session; Cranstoun's staff cannot record its attendance."""
    with app.app_context():
        from diversion.catalogue.models import Provider

        druglink_staff = db.session.get(User, world.users["druglink_staff"].id)
        with provider_scoped(int(world.providers["druglink"].id), druglink_staff.id):
            druglink = db.session.get(Provider, int(world.providers["druglink"].id))
            theirs = services.find_referral(druglink, referrals.druglink.id)
            services.accept(theirs, actor=druglink_staff)
            booked = services.book_session(theirs, starts_at=started_today(),
                                           venue="Reading", actor=druglink_staff)
            session_id = booked.id
            db.session.commit()
    sign_in(client, world.email("provider_staff"))
    token = csrf_token(client.get("/provider/").text)
    answer = client.post(f"/provider/sessions/{session_id}/attendance",
                         data={"csrf_token": token, "attendance": "did_not_attend", "confirm": "y"})
    assert answer.status_code == 404
    with app.app_context(), scoped(referrals.druglink.tenant_id):
        assert db.session.get(Referral, referrals.druglink.id).state is State.BOOKED
        assert db.session.get(BookedSession, session_id).attendance is None


def test_people_without_a_provider_membership_are_refused(client: FlaskClient, world: World,
                                                          referrals: Referrals) -> None:
    sign_in(client, world.email("a_officer"))
    assert client.get("/provider/").status_code == 403
    assert client.get(f"/provider/referrals/{referrals.west_midlands.id}").status_code == 403


def test_views_are_audited_under_the_referrals_force(client: FlaskClient, database: Any, world: World,
                                                     referrals: Referrals) -> None:
    sign_in(client, world.email("provider_staff"))
    client.get("/provider/")
    client.get(f"/provider/referrals/{referrals.thames_valley.id}")
    engine = create_engine(database.inspector_url)  # sees every row, whatever the policies
    try:
        with engine.connect() as connection:
            events = [dict(row._mapping) for row in connection.execute(
                select(AuditEvent.action, AuditEvent.tenant_id, AuditEvent.object_id, AuditEvent.actor_id))]
    finally:
        engine.dispose()
    listed = [e for e in events if e["action"] == "provider.referrals_listed"]
    assert {e["tenant_id"] for e in listed} == {referrals.west_midlands.tenant_id, referrals.thames_valley.tenant_id}
    viewed = [e for e in events if e["action"] == "provider.referral_viewed"]
    assert [(e["tenant_id"], e["object_id"]) for e in viewed] == [
        (referrals.thames_valley.tenant_id, str(referrals.thames_valley.id))]
    assert all(e["actor_id"] == world.users["provider_staff"].id for e in listed + viewed)


# --- raw SQL as the app role (PostgreSQL row-level security) ----------------------------

postgres_only = pytest.mark.skipif(postgres_admin_url() is None,
                                   reason="PostgreSQL only (row-level security): set TEST_DATABASE_URL to run")
SCOPE = text("SELECT set_config('app.tenant_id', :tenant, true), set_config('app.user_id', '', true), "
             "set_config('app.provider_id', :provider, true)")


@contextmanager
def as_app_role(database: Any, *, provider: int | None, tenant: int | None = None) -> Iterator[Connection]:
    engine = create_engine(database.app_url)
    try:
        with engine.begin() as connection:
            connection.execute(SCOPE, {"tenant": "" if tenant is None else str(tenant),
                                       "provider": "" if provider is None else str(provider)})
            yield connection
    finally:
        engine.dispose()


@postgres_only
def test_raw_sql_as_the_provider_reads_only_its_rows(database: Any, world: World, referrals: Referrals) -> None:
    with as_app_role(database, provider=_cranstoun(world)) as sql:
        assert {row[0] for row in sql.execute(text("SELECT id FROM referrals"))} == referrals.cranstouns
        assert {row[0] for row in sql.execute(text("SELECT id FROM people"))} == {
            referrals.west_midlands.person_id, referrals.thames_valley.person_id}
        assert {row[0] for row in sql.execute(text("SELECT id FROM referrals WHERE steps <> ''"))} \
            == referrals.cranstouns
        for table in ("decisions", "force_memberships", "policy_versions", "api_tokens", "audit_events"):
            assert sql.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table  # constants only


@postgres_only
def test_raw_sql_with_the_force_added_stays_within_the_provider(database: Any, world: World,
                                                                referrals: Referrals) -> None:
    tv = referrals.thames_valley.tenant_id
    with as_app_role(database, provider=_cranstoun(world), tenant=tv) as sql:
        assert {row[0] for row in sql.execute(text("SELECT id FROM referrals"))} == {referrals.thames_valley.id}
        assert sql.scalar(text("SELECT count(*) FROM decisions")) == 0
        assert sql.scalar(text("SELECT count(*) FROM audit_events")) == 0
        changed = sql.execute(text("UPDATE referrals SET state = 'accepted' WHERE id = :id"),
                              {"id": referrals.druglink.id})
        assert changed.rowcount == 0
        deleted = sql.execute(text("DELETE FROM referral_sessions WHERE referral_id = :id"),
                              {"id": referrals.thames_valley.id})
        assert deleted.rowcount == 0  # provider staff delete nothing, even their own


@postgres_only
@pytest.mark.parametrize("statement", [
    "INSERT INTO referral_sessions (id, tenant_id, referral_id, starts_at, venue, booked_at) "
    "VALUES (:new, :tenant, :referral, now(), 'x', now())",
])
def test_raw_sql_cannot_add_to_another_providers_referral(database: Any, world: World, referrals: Referrals,
                                                          statement: str) -> None:
    other = referrals.druglink
    with pytest.raises(DBAPIError, match="row-level security"), \
            as_app_role(database, provider=_cranstoun(world), tenant=other.tenant_id) as sql:
        sql.execute(text(statement), {"new": uuid.uuid4(), "tenant": other.tenant_id, "referral": other.id})
    # ... while the same on its own referral is allowed.
    mine = referrals.thames_valley
    with as_app_role(database, provider=_cranstoun(world), tenant=mine.tenant_id) as sql:
        sql.execute(text(statement), {"new": uuid.uuid4(), "tenant": mine.tenant_id, "referral": mine.id})


@postgres_only
def test_raw_sql_cannot_create_a_referral_as_the_provider(database: Any, world: World, referrals: Referrals) -> None:
    mine = referrals.thames_valley
    with as_app_role(database, provider=_cranstoun(world), tenant=mine.tenant_id) as sql:
        offering = sql.scalar(text("SELECT offering_id FROM referrals WHERE id = :id"), {"id": mine.id})
    with pytest.raises(DBAPIError, match="row-level security"), \
            as_app_role(database, provider=_cranstoun(world), tenant=mine.tenant_id) as sql:
        sql.execute(text(
            "INSERT INTO referrals (id, tenant_id, encounter_id, person_id, offering_id, provider_id, pathway, state, "
            "deadline, sessions_required, sessions_attended, created_at, updated_at) VALUES (:new, :tenant, :enc, "
            ":person, :offering, :provider, 'adult-course', 'offered', now(), 1, 0, now(), now())"),
            {"new": uuid.uuid4(), "tenant": mine.tenant_id, "enc": mine.encounter_id, "person": mine.person_id,
             "offering": offering, "provider": _cranstoun(world)})


def _subplan_only(plan: dict[str, Any], alias: str, within: bool = False) -> list[str]:
    """The plan nodes reading ``alias`` that are not inside a subplan (looked up per row)."""
    within = within or plan.get("Parent Relationship") == "SubPlan"
    found = [plan["Node Type"]] if plan.get("Alias") == alias and not within else []
    for child in plan.get("Plans", []):
        found += _subplan_only(child, alias, within)
    return found


@pytest.mark.skipif(postgres_admin_url() is None, reason="PostgreSQL only: its plans")
@pytest.mark.parametrize("model", [Person, Encounter, BookedSession])
def test_a_provider_reads_rows_by_referral_row_by_row_never_gathering_all_its_referrals(
        app: Flask, world: World, referrals: Referrals, model: Any) -> None:
    """The guard's test of a row held by the provider stays a subquery looked up for each row: a join
    might start from every referral of the provider, whose number row-level security hides from the
    planner (a feed page of 100 read 4,000 referrals so)."""
    sent: list[tuple[str, Any]] = []

    def note(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    with app.app_context(), provider_scoped(_cranstoun(world)):
        column = model.referral_id if hasattr(model, "referral_id") else model.id
        engine = db.engine
        db.session.scalars(select(Referral.id).limit(1)).all()  # the scope is written: the next is the read
        event.listen(engine, "before_cursor_execute", note)
        try:
            db.session.scalars(select(model).where(column.in_([uuid.uuid4() for _ in range(100)]))).all()
        finally:
            event.remove(engine, "before_cursor_execute", note)
        statement, parameters = sent[-1]
        assert " held" in statement
        plan = db.session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar()
        db.session.rollback()
    assert _subplan_only(plan[0]["Plan"], "held") == []
