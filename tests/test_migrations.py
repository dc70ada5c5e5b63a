"""Migrations: one head, dated files, ``upgrade head`` equals the models, and
(on PostgreSQL) a full upgrade -> downgrade -> upgrade round trip."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import Uuid, column, create_engine, insert, inspect, table, text, update

import diversion.models  # noqa: F401 - every table on the metadata
from diversion.accounts.access import SYSTEM
from diversion.config import REPO_ROOT
from diversion.db import TENANT_SCOPED, Base, UTCDateTime
from diversion.extensions import db
from tests.conftest import make_app, started_today
from tests.databases import (
    APP_ROLE,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
    sqlite_database,
)

MIGRATIONS = REPO_ROOT / "migrations"
BEFORE_PACKED_STEPS = "9f4b2d7e1a60"  # the last revision with a row for each step of a referral
DATED_FILE = re.compile(r"^\d{8}_[0-9a-f]{12}_[a-z0-9_]+\.py$")
# An adult's possession of cannabis, eligible under every test force's policy.
FACTS = {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
         "user_dealer": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
         "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
         "resident_in_force_area": True, "stage": "street", "suitable_for_out_of_court_disposal": True}
requires_postgresql = pytest.mark.skipif(
    postgres_admin_url() is None,
    reason="PostgreSQL only (row-level security): set TEST_DATABASE_URL to run",
)


def scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def test_one_head() -> None:
    heads = scripts().get_heads()
    assert len(heads) == 1, f"several heads, merge them: {heads}"


def test_revisions_are_dated_files_on_one_line() -> None:
    directory = scripts()
    files = sorted(p.name for p in (MIGRATIONS / "versions").glob("*.py"))
    assert files
    assert all(DATED_FILE.match(name) for name in files), files
    revisions = list(directory.walk_revisions())
    assert len(revisions) == len(files)
    assert [r.revision for r in revisions if r.down_revision is None] == [revisions[-1].revision]


def test_upgrade_head_matches_the_models(database: Any) -> None:
    engine = create_engine(database.owner_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert context.get_current_heads() == tuple(scripts().get_heads())
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], "the models and the migrations differ; run `flask db migrate`"


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _row_security(url: str) -> dict[str, bool]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT c.relname, c.relforcerowsecurity AND EXISTS ("
                "  SELECT FROM pg_policies p WHERE p.tablename = c.relname"
                "  AND p.policyname = 'tenant_isolation') AS secured "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relrowsecurity"
            )).all()
        return {row.relname: row.secured for row in rows}
    finally:
        engine.dispose()


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[Any]:
    """A second, empty database: PostgreSQL when configured, else a SQLite file."""
    admin = postgres_admin_url()
    if admin is None:
        yield sqlite_database(tmp_path, "round_trip")
        return
    name = f"diversion_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_round_trip"
    fresh = create_postgres_database(admin, name)
    try:
        yield fresh
    finally:
        drop_postgres_database(fresh)


def test_upgrade_downgrade_upgrade_round_trip(fresh_database: Any) -> None:
    url = fresh_database.owner_url
    models = {table.name for table in Base.metadata.sorted_tables}
    app = make_app(fresh_database)
    with app.app_context():
        assert _tables(url) == set()

        upgrade()
        assert _tables(url) == models

        downgrade(revision="base")
        assert _tables(url) == set()

        upgrade()
        assert _tables(url) == models
        with db.engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM force_memberships")) == 0
        db.session.remove()
        db.engine.dispose()


@requires_postgresql
@pytest.mark.postgres
def test_round_trip_restores_row_level_security(fresh_database: Any) -> None:
    url = fresh_database.owner_url
    tenant_tables = {t.name for t in Base.metadata.sorted_tables if t.info.get(TENANT_SCOPED)}
    app = make_app(fresh_database)
    with app.app_context():
        upgrade()
        assert {t for t, ok in _row_security(url).items() if ok} == tenant_tables
        downgrade(revision="base")
        upgrade()
        assert {t for t, ok in _row_security(url).items() if ok} == tenant_tables
        # The app role can use the re-created tables, RLS binds it again and
        # the audit log is append-only for it again.
        with db.engine.connect() as connection:
            assert connection.scalar(text("SELECT current_user")) == APP_ROLE
            assert connection.scalar(text("SELECT count(*) FROM force_memberships")) == 0
            assert connection.scalar(text(
                "SELECT has_table_privilege(current_user, 'audit_events', 'UPDATE')"
            )) is False
            assert connection.scalar(text(
                "SELECT has_table_privilege(current_user, 'audit_events', 'INSERT')"
            )) is True
        db.session.remove()
        db.engine.dispose()


def test_referrals_whose_sessions_and_state_disagree_are_repaired(fresh_database: Any) -> None:
    """What the old doors left (attended with no attended session, booked with none waiting) is put right."""
    from datetime import UTC, date, datetime

    from diversion.cases import services as cases
    from diversion.cases.identity import Contact, Identity
    from diversion.cases.models import BookedSession, Referral, State
    from diversion.catalogue.models import Offering
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant
    from tests.conftest import build_world

    app = make_app(fresh_database)
    today = datetime.now(UTC).date()
    with app.app_context():
        upgrade()
        world = build_world()
        made = {}
        with scoped(world.a.id):
            tenant = db.session.get(Tenant, world.a.id)
            offering = db.session.scalar(db.select(Offering).where(Offering.pathway == "divert"))
            for name in ("Attended", "Booked", "Behind"):
                _, decision = cases.record_encounter(tenant, cases.Intake(
                    Identity(name, "Sam", date(1990, 1, 1)), Contact(), "W1", today, FACTS), actor=SYSTEM, today=today)
                referral = cases.refer(tenant, decision, offering, actor=SYSTEM, today=today)
                cases.transition(tenant, referral, State.ACCEPTED, actor=SYSTEM)
                made[name] = referral.id
            # "Behind": a session booked and waiting, while the old rule already counted an attendance.
            cases.book_session(tenant, db.session.get(Referral, made["Behind"]),
                               starts_at=started_today(), venue="Hub", actor=SYSTEM)
        db.session.commit()
        # What the old force and provider APIs could leave: states moved with no session behind them, in
        # the tables of the time (a step a row).
        db.session.remove()
        downgrade(revision=BEFORE_PACKED_STEPS)
        owner = create_engine(fresh_database.inspector_url)
        referrals = Referral.__table__
        steps = table("referral_transitions", column("id", Uuid), column("tenant_id"), column("referral_id", Uuid),
                      column("from_state"), column("to_state"), column("occurred_at", UTCDateTime()), column("reason"))
        with owner.begin() as connection:
            at = datetime.now(UTC)
            for name, state, attended in (("Attended", "attended", 1), ("Booked", "booked", 0),
                                          ("Behind", "attended", 1)):
                connection.execute(update(referrals).where(referrals.c.id == made[name])
                                   .values(state=state, sessions_attended=attended))
                for to in ("booked", "attended")[:1 + attended] if name != "Behind" else ("attended",):
                    connection.execute(insert(steps).values(
                        id=uuid4(), tenant_id=world.a.id, referral_id=made[name], from_state="accepted", to_state=to,
                        occurred_at=at, reason="old door"))
        owner.dispose()

        downgrade(revision="f53b6dfa34fc")
        upgrade()

        with scoped(world.a.id):
            def sessions(name: str) -> list[str | None]:
                return [None if s.attendance is None else s.attendance.value for s in db.session.scalars(
                    db.select(BookedSession).where(BookedSession.referral_id == made[name])
                    .order_by(BookedSession.starts_at))]

            assert sessions("Attended") == ["attended"]  # written, at the time of the step
            assert sessions("Booked") == [None]  # one waiting, as booking would have left it
            assert sessions("Behind") == ["attended"]  # the waiting one was the one attended
        db.session.remove()
        db.engine.dispose()


def test_a_forces_outcome_codes_and_area_become_columns(fresh_database: Any) -> None:
    """The outcome codes leave the settings for columns (and come back on a downgrade); the area is the address."""
    import json

    from diversion.tenancy.models import ForceStatus, NonCompletionAction, Tenant
    from tests.conftest import build_world

    app = make_app(fresh_database)
    with app.app_context():
        upgrade()
        build_world()
        db.session.remove()

        downgrade(revision="7d3c2a9e5b14")
        with db.engine.connect() as connection:
            stored = connection.scalar(text("SELECT settings FROM tenants WHERE slug = 'durham'"))
        settings = json.loads(stored) if isinstance(stored, str) else stored
        assert settings["outcomes"] == {
            "completed": {"code": "outcome-22", "label": "No further action (Outcome 22)"},
            "not_completed": {"code": "prosecution", "label": "Prosecution resumes", "action": "prosecution"},
        }

        upgrade()
        durham = db.session.scalar(db.select(Tenant).where(Tenant.slug == "durham"))
        assert durham is not None
        assert (durham.status, durham.area) == (ForceStatus.ACTIVE, "durham")
        assert (durham.completed_code, durham.completed_label) == ("outcome-22", "No further action (Outcome 22)")
        assert (durham.not_completed_code, durham.not_completed_label, durham.not_completed_action) == (
            "prosecution", "Prosecution resumes", NonCompletionAction.PROSECUTION)
        assert "outcomes" not in durham.settings
        db.session.remove()
        db.engine.dispose()


def test_a_provider_with_a_webhook_endpoint_wants_webhooks_on_its_feed_counter(fresh_database: Any) -> None:
    """Counters learn which providers have an endpoint; a provider with one and no counter gets a counter."""
    from datetime import UTC, datetime

    app = make_app(fresh_database)
    with app.app_context():
        upgrade(revision="c370e5872827")
        engine = create_engine(fresh_database.inspector_url)  # sees every provider's rows
        now = datetime.now(UTC)
        with engine.begin() as connection:
            ids = {}
            for slug in ("counted", "uncounted", "quiet"):
                connection.execute(text("INSERT INTO providers (slug, name, created_at) VALUES (:s, :s, :t)"),
                                   {"s": slug, "t": now})
                ids[slug] = connection.scalar(text("SELECT id FROM providers WHERE slug = :s"), {"s": slug})
            for slug in ("counted", "uncounted"):
                connection.execute(text(
                    "INSERT INTO provider_webhooks (provider_id, url, secret_sealed, created_at, secret_made_at) "
                    "VALUES (:p, 'https://example.org/hooks', 'sealed', :t, :t)"), {"p": ids[slug], "t": now})
            for slug in ("counted", "quiet"):
                connection.execute(text("INSERT INTO provider_feed_counters (provider_id, last_position) "
                                        "VALUES (:p, 7)"), {"p": ids[slug]})
        upgrade()
        with engine.connect() as connection:
            counters = {row.provider_id: (row.last_position, row.webhooks) for row in connection.execute(
                text("SELECT provider_id, last_position, webhooks FROM provider_feed_counters"))}
        engine.dispose()
        assert counters == {ids["counted"]: (7, True), ids["uncounted"]: (0, True), ids["quiet"]: (7, False)}
        db.session.remove()
        db.engine.dispose()


# The same case as the engine sees it, with what intake works out.
_FACTS = {**FACTS, "age": 30, "previous_diversions": 0, "previous_non_engagement": False, "offence_age_days": 2}
# Cases of every outcome: eligible, each route's own reasons, an exclusion, needs review, a youth.
_CASES = ({}, {"stage": "custody"}, {"offence": "supply", "substances": ["heroin", "cocaine"]},
          {"admission": None, "stage": None}, {"age": 15, "aggravating_factors": ["weapon", "violence"]},
          {"previous_non_engagement": True, "personal_use": False})


def _with_old_decisions(fresh_database: Any) -> tuple[Any, Any]:
    """The world built at head, then taken back to before compact decisions: the world and its
    decisions in the old form (``_old_decisions``). Runs in the caller's app context."""
    from tests.conftest import build_world

    upgrade()
    world = build_world()
    db.session.commit()
    db.session.remove()
    downgrade(revision="e4b8d2a6c913")
    return world, _old_decisions(fresh_database, world.a.id)


def _old_decisions(fresh_database: Any, tenant_id: int) -> dict[Any, dict[str, Any]]:
    """Decisions in their old form, as the previous writer stored them, straight into the table:
    every criterion's result and reason, the policy's hash and the facts as JSON."""
    from datetime import UTC, date, datetime, time

    import sqlalchemy as sa

    from diversion.db import UTCDateTime
    from diversion.eligibility.compiler import compile_cached
    from diversion.eligibility.engine import decide
    from diversion.monitoring import age_band

    versions = sa.table("policy_versions", sa.column("id", sa.Uuid), sa.column("tenant_id", sa.Integer),
                        sa.column("number", sa.Integer), sa.column("status", sa.String),
                        sa.column("document", sa.JSON), sa.column("content_hash", sa.String))
    decisions = sa.table("decisions", *(sa.column(name, kind) for name, kind in (
        ("id", sa.Uuid), ("tenant_id", sa.Integer), ("policy_version_id", sa.Uuid), ("policy_hash", sa.String),
        ("decided_on", sa.Date), ("decided_at", UTCDateTime()), ("facts", sa.JSON), ("outcome", sa.String),
        ("pathway", sa.String), ("results", sa.JSON), ("missing", sa.JSON), ("age_band", sa.String),
        ("ethnicity", sa.String), ("source", sa.String))))
    owner = create_engine(fresh_database.inspector_url)
    written: dict[Any, dict[str, Any]] = {}
    with owner.begin() as connection:
        version = connection.execute(sa.select(versions).where(
            versions.c.tenant_id == tenant_id, versions.c.status == "published")
            .order_by(versions.c.number.desc()).limit(1)).one()
        policy = compile_cached(version.document)
        for number, changes in enumerate(_CASES):
            on = date(2026, 3, 1 + number)
            assessment = decide(policy, {**_FACTS, **changes}, on, version=version.number)
            row = {"id": uuid4(), "tenant_id": tenant_id, "policy_version_id": version.id,
                   "policy_hash": version.content_hash, "decided_on": on,
                   "decided_at": datetime.combine(on, time(10), UTC), "facts": assessment.facts,
                   "outcome": assessment.outcome, "pathway": assessment.pathway,
                   "results": assessment.results_json(), "missing": list(assessment.missing),
                   "age_band": age_band(assessment.facts.get("age")), "ethnicity": "W1", "source": "demo"}
            connection.execute(sa.insert(decisions).values(**row))
            written[row["id"]] = {**row, "unmet": assessment.unmet_ids()}
    owner.dispose()
    return written


def test_decisions_in_the_old_form_are_compacted_to_the_same_results(fresh_database: Any) -> None:
    """Rows that kept every criterion's result come out of the upgrade with their facts packed and the
    ids of their unmet criteria; their results, worked out again, are the ones they stored, and the
    decision page says the same. The downgrade writes the old form back, the same."""
    from diversion.eligibility.explain import explain, explain_decision
    from diversion.eligibility.models import Decision
    from diversion.eligibility.services import compiled
    from diversion.tenancy.context import scoped

    app = make_app(fresh_database)
    with app.app_context():
        world, old = _with_old_decisions(fresh_database)

        upgrade()
        with scoped(world.a.id):
            stored = {d.id: d for d in db.session.scalars(db.select(Decision))}
            assert stored.keys() == old.keys()
            assert {d.outcome for d in stored.values()} == {"eligible", "not_eligible", "needs_review"}
            for decision_id, was in old.items():
                decision = stored[decision_id]
                assert decision.results == was["results"]
                assert decision.unmet == was["unmet"]
                assert decision.facts == was["facts"]
                assert decision.policy_hash == was["policy_hash"]
                assert decision.missing == was["missing"]
                policy = compiled(decision.policy_version)
                assert explain_decision(policy, decision) == explain(
                    policy, outcome=was["outcome"], pathway=was["pathway"], results=was["results"],
                    missing=was["missing"], facts=was["facts"])
        db.session.remove()

        downgrade(revision="e4b8d2a6c913")
        inspector = create_engine(fresh_database.inspector_url)
        with inspector.connect() as connection:
            rows = connection.execute(text("SELECT id, policy_hash, facts, results FROM decisions")).all()
        inspector.dispose()
        written = {UUID(str(row.id)): (row.policy_hash, json_value(row.facts), json_value(row.results)) for row in rows}
        assert written == {key: (was["policy_hash"], was["facts"], was["results"]) for key, was in old.items()}
        upgrade()
        db.session.remove()
        db.engine.dispose()


def test_a_decision_whose_results_would_change_stops_the_upgrade(fresh_database: Any,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A stored result that the facts and policy no longer give is not thrown away: the upgrade stops."""
    import sqlalchemy as sa


    app = make_app(fresh_database)
    with app.app_context():
        _, old = _with_old_decisions(fresh_database)
        changed = next(iter(old))
        owner = create_engine(fresh_database.inspector_url)
        decisions = sa.table("decisions", sa.column("id", sa.Uuid), sa.column("results", sa.JSON))
        with owner.begin() as connection:
            connection.execute(sa.update(decisions).where(decisions.c.id == changed).values(
                results=[{"pathway": None, "criterion": "supply", "result": "met", "reason": "Not supply."}]))
        with pytest.raises(SystemExit):  # flask-migrate logs the error and exits
            upgrade()
        said = capsys.readouterr()
        assert f"{changed}: its results worked out again differ from the stored ones" in said.err + said.out
        with owner.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM decisions WHERE results IS NOT NULL")) == len(old)
        owner.dispose()
        db.session.remove()
        db.engine.dispose()


def json_value(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def test_people_keyed_by_whole_digests_are_found_by_the_short_keys_after_the_upgrade(fresh_database: Any) -> None:
    """A person written with the whole HMAC digests as keys (64 hex digits) is found by the name,
    PNC and search keys the platform makes now, once the upgrade has cut them."""
    import hashlib
    import hmac
    from datetime import date

    from flask import current_app

    from diversion.cases.identity import Identity, _derive, _letters, normalise_pnc, person_keys, search_keys
    from diversion.cases.services import find_person
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant
    from tests.conftest import build_world

    app = make_app(fresh_database)
    with app.app_context():
        upgrade()
        world = build_world()
        db.session.commit()
        downgrade(revision="5d2e8f1a4c67")
        identity = Identity("O'Brien-Smith", "Róisín", date(1990, 2, 3), "12/345678A")
        secret = _derive(current_app.config["PERSON_KEY_SECRET"], f"person-key:{world.a.slug}")

        def whole(text_: str) -> str:
            return hmac.new(secret, text_.encode(), hashlib.sha256).hexdigest()

        born = identity.date_of_birth.isoformat()
        old = {"name_key": whole(f"{_letters(identity.surname)}|{_letters(identity.given_name)}|{born}"),
               "pnc_key": whole(f"pnc|{normalise_pnc(identity.pnc_id or '')}"),
               "search_key": whole(f"search|{_letters(identity.surname)}|{born}"), "birth_key": whole(f"born|{born}")}
        owner = create_engine(fresh_database.owner_url)
        with owner.begin() as connection:
            if connection.dialect.name == "postgresql":  # the force's scope, as row-level security asks
                connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(world.a.id)})
            connection.execute(text(
                "INSERT INTO people (id, tenant_id, name_key, pnc_key, search_key, birth_key, identity_sealed, "
                "contact_sealed, ethnicity, created_at) VALUES (:id, :tenant, :name_key, :pnc_key, :search_key, "
                ":birth_key, 'sealed', 'sealed', 'W1', CURRENT_TIMESTAMP)"),
                {"id": uuid4().hex if connection.dialect.name == "sqlite" else str(uuid4()), "tenant": world.a.id,
                 **old})
        owner.dispose()
        db.session.remove()

        upgrade()
        with scoped(world.a.id):
            tenant = db.session.get(Tenant, world.a.id)
            assert tenant is not None
            found = find_person(tenant, identity)
            assert found is not None
            assert (found.name_key, found.pnc_key) == person_keys(world.a.slug, identity)
            assert (found.search_key, found.birth_key) == search_keys(world.a.slug, identity.surname,
                                                                   identity.date_of_birth)
            assert all(getattr(found, key) == bytes.fromhex(old[key][:32]) for key in old)
        db.session.remove()
        db.engine.dispose()


def test_encounter_facts_are_packed_and_come_back_the_same(fresh_database: Any,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Facts entered as JSON come out of the upgrade packed and read back equal; the downgrade
    writes the same JSON back; an encounter with a fact outside the catalogue stops the upgrade."""
    from datetime import UTC, date, datetime

    from diversion.cases import services as cases
    from diversion.cases.identity import Contact, Identity
    from diversion.cases.models import Encounter
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant
    from tests.conftest import build_world

    today = datetime.now(UTC).date()
    entered = {"offence": "possession", "substances": ["cocaine", "cannabis"], "drug_class": "A",
               "personal_use": True, "admission": "admitted", "stage": "street"}
    app = make_app(fresh_database)
    with app.app_context():
        upgrade()
        world = build_world()
        with scoped(world.a.id):
            tenant = db.session.get(Tenant, world.a.id)
            assert tenant is not None
            encounter, _ = cases.record_encounter(tenant, cases.Intake(
                Identity("Packed", "Pat", date(1990, 1, 2)), Contact(), "W1", today, entered),
                actor=SYSTEM, today=today)
            encounter_id = encounter.id
        db.session.commit()
        db.session.remove()
        as_checked = {**entered, "substances": sorted(entered["substances"])}

        downgrade(revision="8f3a1c6e2b95")
        inspector = create_engine(fresh_database.inspector_url)
        with inspector.connect() as connection:
            stored = connection.scalar(text("SELECT facts FROM encounters WHERE id = :id"),
                                       {"id": encounter_id if fresh_database.is_postgresql else encounter_id.hex})
        assert json_value(stored) == as_checked
        upgrade()
        with scoped(world.a.id):
            found = db.session.get(Encounter, encounter_id)
            assert found is not None
            assert found.facts == as_checked
        db.session.remove()

        downgrade(revision="8f3a1c6e2b95")
        owner = create_engine(fresh_database.owner_url)
        with owner.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(world.a.id)})
            connection.execute(text("UPDATE encounters SET facts = :facts"), {"facts": '{"shoe_size": 9}'})
        owner.dispose()
        with pytest.raises(SystemExit):  # flask-migrate logs the error and exits
            upgrade()
        said = capsys.readouterr()
        assert f"{encounter_id}: shoe_size: not a field of the catalogue" in said.err + said.out
        with inspector.connect() as connection:
            assert json_value(connection.scalar(text("SELECT facts FROM encounters"))) == {"shoe_size": 9}
        inspector.dispose()
        db.session.remove()
        db.engine.dispose()


@requires_postgresql
@pytest.mark.postgres
def test_policies_that_read_the_scope_per_row_read_it_once_after_the_upgrade(fresh_database: Any) -> None:
    """Policies written as they were (the setting read for each row) are rewritten to read it once a
    statement; the downgrade writes them back; the app role still sees its force's rows alone."""
    from tests.conftest import build_world

    per_row = "(NULLIF(current_setting('app.{}', true), '')::integer)"
    policies = text("SELECT tablename, policyname, coalesce(qual, '') || ' ' || coalesce(with_check, '') "
                    "FROM pg_policies WHERE schemaname = current_schema() ORDER BY 1, 2")
    owner = create_engine(fresh_database.owner_url)
    app = make_app(fresh_database)
    try:
        with app.app_context():
            upgrade(revision="c8d1f4a7e2b6")
            with owner.begin() as connection:
                connection.execute(text(
                    f"ALTER POLICY tenant_isolation ON referrals USING (tenant_id = {per_row.format('tenant_id')}) "
                    f"WITH CHECK (tenant_id = {per_row.format('tenant_id')})"))
                connection.execute(text(
                    "ALTER POLICY provider_restriction ON people USING "
                    f"({per_row.format('provider_id')} IS NULL OR EXISTS (SELECT 1 FROM referrals r "
                    "WHERE r.person_id = people.id AND r.provider_id = " + per_row.format("provider_id") + "))"))
                before = connection.execute(policies).all()
            assert sum("( SELECT" not in found for _, _, found in before) >= 2

            upgrade()
            with owner.begin() as connection:
                after = connection.execute(policies).all()
            added_since = {("force_memberships", "platform_read")}  # by later revisions, read once already
            gone_since = "referral_transitions"  # a referral's steps are packed in its row since
            assert [row[:2] for row in after if row[:2] not in added_since] == [
                row[:2] for row in before if row[0] != gone_since]
            for table, name, expression in after:
                assert expression.count("current_setting") == expression.count("( SELECT (NULLIF(current_setting"), (
                    table, name, expression)
            assert any("EXISTS" in expression for table, _, expression in after if table == "people")

            downgrade(revision="c8d1f4a7e2b6")
            with owner.begin() as connection:
                assert not any("( SELECT (NULLIF" in found for _, _, found in connection.execute(policies))
            upgrade()
            world = build_world()
            db.session.commit()
            with db.engine.begin() as connection:  # the app role, in force A's scope
                connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(world.a.id)})
                seen = set(connection.scalars(text("SELECT DISTINCT tenant_id FROM force_memberships")))
            assert seen == {world.a.id}
            db.session.remove()
            db.engine.dispose()
    finally:
        owner.dispose()


def _every_sentence(tenant_id: int) -> None:
    """Case work whose steps hold every kind of sentence the platform writes, and a person's words."""
    from datetime import UTC, date, datetime

    from diversion.cases import services as cases
    from diversion.cases.identity import Contact, Identity
    from diversion.cases.models import State, Why
    from diversion.catalogue.models import Offering
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant

    today = datetime.now(UTC).date()
    with scoped(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        offering = db.session.scalar(db.select(Offering).where(Offering.pathway == "divert"))
        referrals = []
        for name in ("Missed", "Expired", "Imported"):
            _, decision = cases.record_encounter(tenant, cases.Intake(
                Identity(name, "Sam", date(1990, 1, 1)), Contact(), "W1", today, FACTS), actor=SYSTEM, today=today)
            referrals.append(cases.refer(tenant, decision, offering, actor=SYSTEM, today=today,
                                         reason="" if name != "Imported" else "Asked for by the custody sergeant"))
        missed, expired, imported = referrals
        cases.transition(tenant, missed, State.ACCEPTED, actor=SYSTEM, why=Why.ACCEPTED)
        started = started_today()
        for venue, note in (("Hub: east door", "No answer: phone off"), ("Civic Centre", "")):
            session, _ = cases.book_session(tenant, missed, starts_at=started, venue=venue, actor=SYSTEM)
            cases.record_attendance(tenant, session, attended=False, actor=SYSTEM, note=note)
        cases.transition(tenant, expired, State.NOT_COMPLETED, actor=SYSTEM, why=Why.DEADLINE_PASSED,
                         details={"deadline": expired.deadline.isoformat()})
        cases.transition(tenant, imported, State.WITHDRAWN, actor=SYSTEM, why=Why.IMPORTED,
                         details={"file": "history (2025).csv", "row": 7})


def test_the_sentences_steps_once_kept_become_codes_and_come_back_on_the_downgrade(fresh_database: Any) -> None:
    """Every sentence the platform wrote is read back into its code and details, a venue holding ": "
    and a person's note included; a reason a person typed stays as it was."""
    from diversion.cases.models import BookedSession, Referral, Why
    from diversion.tenancy.context import scoped
    from tests.conftest import build_world

    app = make_app(fresh_database)

    def steps() -> list[tuple[Any, ...]]:
        with scoped(world.a.id):
            return [(step.to_state, step.why, step.why_details, step.reason, step.account)
                    for referral in db.session.scalars(db.select(Referral).order_by(Referral.id))
                    for step in referral.transitions]

    with app.app_context():
        upgrade()
        world = build_world()
        _every_sentence(world.a.id)
        db.session.commit()
        before = steps()
        db.session.remove()
        assert [why for _, why, *_ in before if why is not None] == [
            Why.OFFERED, Why.ACCEPTED, Why.BOOKED, Why.DID_NOT_ATTEND, Why.BOOKED, Why.DID_NOT_ATTEND, Why.OFFERED,
            Why.DEADLINE_PASSED, Why.IMPORTED]

        downgrade(revision="4d6072162e95")
        owner = create_engine(fresh_database.inspector_url)  # every force's rows
        with owner.connect() as connection:
            kept = set(connection.scalars(text("SELECT reason FROM referral_transitions")))
        assert "Offered after the decision" in kept
        assert any(reason.startswith("Did not attend the session of ") and
                   reason.endswith(" at Hub: east door: No answer: phone off") for reason in kept)
        assert "Imported from historic records (history (2025).csv, row 7)" in kept
        assert "Asked for by the custody sergeant" in kept
        # An imported session, as the import once wrote it: where it was, not recorded.
        with owner.begin() as connection:
            connection.execute(text("UPDATE referral_sessions SET venue = :imported WHERE venue = 'Civic Centre'"),
                               {"imported": "Not recorded (imported: history.csv, row 3)"})
            connection.execute(text("UPDATE referral_transitions SET reason = replace(reason, 'Civic Centre', "
                                    ":imported)"), {"imported": "Not recorded (imported: history.csv, row 3)"})
        owner.dispose()
        upgrade()
        db.session.remove()

        def unrecorded(step: tuple[Any, ...]) -> tuple[Any, ...]:
            state, why, details, reason, account = step
            if details and details.get("venue") == "Civic Centre":
                return state, why, details | {"venue": ""}, reason, account.replace("Civic Centre",
                                                                                    "a place not recorded")
            return step

        assert steps() == [unrecorded(step) for step in before]
        with scoped(world.a.id):
            assert set(db.session.scalars(db.select(BookedSession.venue))) == {"Hub: east door", ""}
        db.session.remove()
        db.engine.dispose()


def test_a_simulation_run_names_its_policy_by_force_and_version_after_the_upgrade(fresh_database: Any) -> None:
    from datetime import UTC, datetime

    from diversion.eligibility import runs
    from diversion.eligibility import services as policies
    from diversion.eligibility.models import SimulationRun
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant
    from tests.conftest import build_world

    app = make_app(fresh_database)
    with app.app_context():
        upgrade()
        world = build_world()
        with scoped(world.a.id):
            tenant = db.session.get(Tenant, world.a.id)
            version = policies.published_policy_of(tenant, datetime.now(UTC).date())
            number = version.number
            for force in (None, "Durham Constabulary"):
                runs.start(tenant, policies.compiled(version), force=force, number=number, since=None,
                           decisions=3, actor=SYSTEM)
        db.session.commit()
        db.session.remove()

        downgrade(revision="511c990d9bb9")
        owner = create_engine(fresh_database.inspector_url)  # every force's rows
        with owner.connect() as connection:
            labels = set(connection.scalars(text("SELECT policy_label FROM simulation_runs")))
        owner.dispose()
        assert labels == {f"draft version {number}", f"Durham Constabulary version {number}"}
        upgrade()
        db.session.remove()

        with scoped(world.a.id):
            assert {(run.policy_force, run.policy_number, run.policy_label)
                    for run in db.session.scalars(db.select(SimulationRun))} == {
                (None, number, f"draft version {number}"),
                ("Durham Constabulary", number, f"Durham Constabulary version {number}")}
        db.session.remove()
        db.engine.dispose()


def test_a_policy_version_the_platform_made_keeps_its_origin_through_the_round_trip(fresh_database: Any) -> None:
    from diversion.eligibility import services as policies
    from diversion.eligibility.models import Origin, PolicyVersion
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant
    from tests.conftest import build_world

    app = make_app(fresh_database)

    def origins() -> list[tuple[Any, ...]]:
        with scoped(world.a.id):
            return [(v.number, v.status, v.origin, v.origin_details, v.note, v.described)
                    for v in db.session.scalars(db.select(PolicyVersion).order_by(PolicyVersion.number))]

    with app.app_context():
        upgrade()
        world = build_world()
        with scoped(world.a.id):
            tenant = db.session.get(Tenant, world.a.id)
            published = db.session.scalars(db.select(PolicyVersion)).first()
            policies.save_draft(tenant, dict(published.document), actor=SYSTEM, origin=Origin.COPIED,
                                origin_details={"force": "Durham Constabulary", "number": 2})
        db.session.commit()
        before = origins()
        db.session.remove()
        assert before[-1][1:] == ("draft", Origin.COPIED, {"force": "Durham Constabulary", "number": 2}, "",
                                  "Copied from Durham Constabulary, version 2")

        downgrade(revision="b3dec0596c53")
        owner = create_engine(fresh_database.inspector_url)  # every force's rows
        with owner.connect() as connection:
            notes = set(connection.scalars(text("SELECT note FROM policy_versions")))
        owner.dispose()
        assert "Copied from Durham Constabulary, version 2" in notes
        upgrade()
        db.session.remove()

        assert origins() == before
        db.session.remove()
        db.engine.dispose()


def _insert_as_owner(url: str, tenant_id: int, people: list[dict[str, Any]]) -> None:
    """People written by the owner in the force's scope, each with its id, name key and sealed columns."""
    owner = create_engine(url)
    with owner.begin() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if not sqlite:  # the force's scope, as row-level security asks
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        for person in people:
            connection.execute(text(
                "INSERT INTO people (id, tenant_id, name_key, identity_sealed, contact_sealed, ethnicity, "
                "created_at) VALUES (:id, :tenant, :key, :identity_sealed, :contact_sealed, 'W1', CURRENT_TIMESTAMP)"),
                {**person, "id": person["id"].hex if sqlite else str(person["id"]), "tenant": tenant_id})
    owner.dispose()


def test_people_sealed_as_fernet_tokens_open_after_the_upgrade_and_all_come_back_on_the_downgrade(
        fresh_database: Any) -> None:
    """Details sealed as Fernet tokens in base64 are kept as their bytes by the upgrade and open
    the same; people sealed as bytes after it are sealed as Fernet tokens again by the downgrade,
    which the earlier release opens; empty contact details stay empty both ways."""
    import json
    from datetime import date

    from cryptography.fernet import MultiFernet
    from sqlalchemy import select

    from diversion.cases.identity import Contact, Identity, open_contact, open_identity, seal, seal_contact
    from diversion.cases.models import Person
    from diversion.sealing import data_cipher
    from diversion.tenancy.context import scoped
    from tests.conftest import build_world

    app = make_app(fresh_database)
    with app.app_context():
        upgrade()
        world = build_world()
        db.session.commit()
        downgrade(revision="0a56d7b3abb2")
        cipher: MultiFernet = data_cipher()
        old = {"identity_sealed": cipher.encrypt(json.dumps(
                   {"surname": "O'Neill", "given_name": "Jo", "date_of_birth": "1990-05-01", "pnc_id": None}).encode())
               .decode(), "contact_sealed": cipher.encrypt(json.dumps(
                   {"phone": "07700 900123", "email": "", "address": ""}).encode()).decode()}
        people = {"old": uuid4(), "bare": uuid4(), "odd": uuid4(), "new": uuid4()}
        _insert_as_owner(fresh_database.owner_url, world.a.id, [
            {"id": people["old"], "key": people["old"].hex, **old},
            {"id": people["bare"], "key": people["bare"].hex, "identity_sealed": old["identity_sealed"],
             "contact_sealed": ""},
            {"id": people["odd"], "key": people["odd"].hex, "identity_sealed": "sealed", "contact_sealed": "sealed"}])
        db.session.remove()

        upgrade()
        jo = Identity("O'Neill", "Jo", date(1990, 5, 1))
        with scoped(world.a.id):
            found = {person.id: person for person in db.session.scalars(select(Person))}
            assert open_identity(found[people["old"]].identity_sealed) == jo
            assert open_contact(found[people["old"]].contact_sealed) == Contact(phone="07700 900123")
            assert found[people["bare"]].contact_sealed == b""
            assert found[people["odd"]].identity_sealed == b"sealed"
            assert len(found[people["old"]].identity_sealed) * 4 == len(old["identity_sealed"]) * 3
            new = Identity("Jones", "Sam", date(2001, 1, 1), "12/345678A")
            db.session.add(Person(id=people["new"], tenant_id=world.a.id, name_key=people["new"].bytes,
                                  identity_sealed=seal(new),
                                  contact_sealed=seal_contact(Contact(email="sam@example.org")), ethnicity="W1"))
            db.session.commit()
        db.session.remove()

        downgrade(revision="0a56d7b3abb2")
        with db.engine.begin() as connection:
            if connection.dialect.name != "sqlite":
                connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(world.a.id)})
            rows = {name: row for row in connection.execute(
                text("SELECT name_key, identity_sealed, contact_sealed FROM people"))
                    for name, person in people.items() if row.name_key == person.hex}
        assert rows["old"].identity_sealed == old["identity_sealed"]
        assert rows["bare"].contact_sealed == ""
        assert rows["odd"].identity_sealed == "sealed"
        assert json.loads(cipher.decrypt(rows["new"].identity_sealed.encode())) == {
            "surname": "Jones", "given_name": "Sam", "date_of_birth": "2001-01-01", "pnc_id": "12/345678A"}
        assert json.loads(cipher.decrypt(rows["new"].contact_sealed.encode())) == {
            "phone": "", "email": "sam@example.org", "address": ""}
        db.session.remove()
        upgrade()
        db.session.remove()
        db.engine.dispose()


def test_steps_move_into_their_referral_keeping_their_keys_and_come_back_as_rows(fresh_database: Any) -> None:
    """Every step of every force, its state left and reached, moment, person, case system, words and
    details, goes into its referral's packed steps with the key its row had (the keys providers and the
    ledger were given), its referral completed when it was; the downgrade writes the same rows back."""
    from diversion.cases import rules
    from diversion.cases import services as cases
    from diversion.cases.identity import Contact, Identity
    from diversion.cases.models import Referral, State
    from diversion.catalogue.models import Offering
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant
    from tests.conftest import build_world

    app = make_app(fresh_database)

    def steps() -> dict[Any, tuple[Any, ...]]:
        with scoped(world.a.id):
            return {referral.id: (referral.completed_at, [
                (step.id, step.from_state, step.to_state, step.occurred_at, step.actor_id, step.by_system,
                 step.reason, step.why, step.why_details) for step in referral.transitions])
                for referral in db.session.scalars(db.select(Referral))}

    with app.app_context():
        upgrade()
        world = build_world()
        _every_sentence(world.a.id)
        with scoped(world.a.id):
            tenant = db.session.get(Tenant, world.a.id)
            offering = db.session.scalar(db.select(Offering).where(Offering.pathway == "divert"))
            today = started_today().date()
            _, decision = cases.record_encounter(tenant, cases.Intake(
                Identity("Done", "Sam", today.replace(year=1990)), Contact(), "W1", today, FACTS), actor=SYSTEM,
                today=today)
            referral = cases.refer(tenant, decision, offering, actor=SYSTEM, today=today)
            cases.take_path(tenant, referral, rules.path_to(State.COMPLETED, sessions=referral.sessions_required),
                            actor=SYSTEM, reason="", session_at=started_today(), venue="Hub")
        db.session.commit()
        before = steps()
        assert sum(len(kept) for _, kept in before.values()) >= 12
        assert [completed is not None for completed, _ in before.values()].count(True) == 1
        db.session.remove()

        downgrade(revision=BEFORE_PACKED_STEPS)
        owner = create_engine(fresh_database.inspector_url)  # every force's rows
        with owner.connect() as connection:
            rows = connection.execute(text("SELECT id, referral_id FROM referral_transitions")).all()
        owner.dispose()
        assert sorted((UUID(str(r.referral_id)), UUID(str(r.id))) for r in rows) == sorted(
            (referral_id, step[0]) for referral_id, (_, kept) in before.items() for step in kept)

        upgrade()
        assert steps() == before
        db.session.remove()
        db.engine.dispose()
