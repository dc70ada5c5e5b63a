"""infra/postgres/verify.sql, run as the app role on the migrated test database.

A deployment runs the file after `diversion db upgrade` to gate on it; here it
runs on every PostgreSQL test run, over a database with rows in most
force-owned tables (both forces' published policies, a draft, a case with its
decision and referral, an API token), so that its row counts mean something
and a rule the migrations change cannot leave the file behind.

The file is sent through psycopg rather than the psql client, so that the
suite needs no PostgreSQL client tools: its one psql line (`\\set
ON_ERROR_STOP on`) is dropped, and what is left is one DO block whose NOTICEs
and WARNINGs are read back as psql would print them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg
import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from diversion.accounts.access import SYSTEM
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.catalogue.models import Offering
from diversion.config import REPO_ROOT
from diversion.eligibility import services as policies
from diversion.eligibility.views import document_toml
from diversion.extensions import db
from diversion.jsonapi import tokens as api_tokens
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests import databases
from tests.conftest import World
from tests.databases import postgres_admin_url

pytestmark = [
    pytest.mark.skipif(
        postgres_admin_url() is None,
        reason="PostgreSQL only (row-level security): set TEST_DATABASE_URL to run",
    ),
    pytest.mark.postgres,
]

VERIFY_SQL = REPO_ROOT / "infra" / "postgres" / "verify.sql"
FACTS = {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
         "user_dealer": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
         "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
         "resident_in_force_area": True, "stage": "street", "suitable_for_out_of_court_disposal": True}


@dataclass(frozen=True)
class Report:
    passed: bool
    lines: list[str]  # "NOTICE: ok ..." and "WARNING: FAIL ...", in order
    error: str | None

    @property
    def failures(self) -> list[str]:
        return [line for line in self.lines if line.startswith("WARNING")]


def run_verify(url: str) -> Report:
    """Run verify.sql in a fresh session on ``url`` (a SQLAlchemy URL)."""
    statements = "\n".join(line for line in VERIFY_SQL.read_text(encoding="utf-8").splitlines()
                           if not line.startswith("\\"))
    lines: list[str] = []
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.add_notice_handler(
            lambda notice: lines.append(f"{notice.severity}: {notice.message_primary}"))
        try:
            connection.execute(statements.encode())  # bytes: no placeholders to look for
        except psycopg.errors.RaiseException as error:
            return Report(False, lines, str(error).strip())
    return Report(True, lines, None)


@pytest.fixture
def populated(app: Flask, world: World) -> World:
    """A draft and a referred case in force A, and an API token, next to the world's rows."""
    today = datetime.now(UTC).date()
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        in_force = policies.policy_in_force(today)
        assert in_force is not None
        policies.save_draft(tenant, tomllib.loads(document_toml(in_force.document)), actor=SYSTEM,
                            note="a draft stays in its force")
        _, decision = cases.record_encounter(tenant, cases.Intake(
            Identity("Verify", "Robin", date(1996, 2, 3)), Contact(phone="07700 900123"), "W1", today,
            dict(FACTS)), actor=SYSTEM, today=today)
        offering = db.session.scalar(select(Offering).where(Offering.pathway == "divert"))
        assert offering is not None
        cases.refer(tenant, decision, offering, actor=SYSTEM, today=today)
        api_tokens.make_force_token(tenant, name="Verify", actor=SYSTEM)
        db.session.commit()
    return world


def _count(database: databases.TestDatabase, sql: str) -> int:
    engine = create_engine(database.inspector_url)
    with engine.connect() as connection:
        found = int(connection.scalar(text(sql)) or 0)
    engine.dispose()
    return found


@contextmanager
def owner_ddl(database: databases.TestDatabase, do: str, undo: str) -> Iterator[None]:
    """Change the schema as its owner for one test, and put it back."""
    engine = create_engine(database.owner_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(do))
    try:
        yield
    finally:
        with engine.connect() as connection:
            connection.execute(text(undo))
        engine.dispose()


def test_the_migrated_database_passes(database: databases.TestDatabase, populated: World) -> None:
    report = run_verify(database.app_url)
    assert report.passed, "\n".join([*report.failures, report.error or ""])
    assert report.failures == []
    assert report.lines[-1] == "NOTICE: all checks passed"
    # Published versions of both forces are read across forces on purpose; the draft is not among them.
    published = _count(database, "SELECT count(*) FROM policy_versions WHERE status = 'published'")
    drafts = _count(database, "SELECT count(*) FROM policy_versions WHERE status <> 'published'")
    assert published >= 2
    assert drafts == 1
    assert (f"NOTICE: ok   table policy_versions: RLS enabled and forced, nothing visible without a tenant "
            f"but {published} rows shared on purpose (status = 'published')") in report.lines
    for table in ("decisions", "encounters", "people", "referrals", "api_tokens",
                  "force_memberships", "offerings", "audit_events"):
        assert _count(database, f"SELECT count(*) FROM {table}") > 0, table
        assert (f"NOTICE: ok   table {table}: RLS enabled and forced, nothing visible without a tenant"
                in report.lines)
    assert "NOTICE: ok   every policy that lets rows be written compares with app.tenant_id" in report.lines


BREAKAGES = {
    # Drafts become readable by every force: the shared rows must stay the published ones.
    "drafts readable everywhere": (
        "CREATE POLICY probe_leak ON policy_versions FOR SELECT USING (true)",
        "DROP POLICY probe_leak ON policy_versions",
        "WARNING: FAIL table policy_versions: 1 rows visible with no tenant set",
    ),
    "decisions readable everywhere": (
        "CREATE POLICY probe_leak ON decisions FOR SELECT USING (true)",
        "DROP POLICY probe_leak ON decisions",
        "WARNING: FAIL table decisions: 1 rows visible with no tenant set",
    ),
    "a write policy not bound to the force": (
        "CREATE POLICY probe_write ON policy_versions FOR UPDATE USING (status = 'published')",
        "DROP POLICY probe_write ON policy_versions",
        "WARNING: FAIL policy probe_write on policy_versions: lets rows be written without comparing "
        "with app.tenant_id",
    ),
    "RLS not forced": (
        "ALTER TABLE referrals NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE referrals FORCE ROW LEVEL SECURITY",
        "WARNING: FAIL table referrals: RLS not forced",
    ),
    "a view with its owner's rights": (
        "CREATE VIEW probe_view AS SELECT id FROM referrals",
        "DROP VIEW probe_view",
        "WARNING: FAIL view probe_view is not WITH (security_invoker = true)",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_rule_is_reported(database: databases.TestDatabase, populated: World, breakage: str) -> None:
    do, undo, expected = BREAKAGES[breakage]
    with owner_ddl(database, do, undo):
        report = run_verify(database.app_url)
    assert not report.passed
    assert report.failures == [expected]
    assert report.error is not None
    assert "1 check(s) failed" in report.error
    assert run_verify(database.app_url).passed  # put back
