"""What one intake costs the database: every statement the server is sent, counted on the wire.

PostgreSQL only: the statements that matter there (the scope written into
each transaction, a pool's ping) are not sent to SQLite. Counted as the
intake benchmark counts them (``tests.wire``): everything but the
statements that begin and end a transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from diversion.extensions import db
from tests import databases
from tests.api.conftest import add_offering, bearer, make_token, user_dealer
from tests.conftest import World, make_app
from tests.wire import Wire, wire_to

INTAKE_STATEMENTS = 12  # at most, for an encounter recorded and decided
REFERRAL_STATEMENTS = 12  # at most, for the referral that follows


@pytest.fixture
def wired(app: Flask, database: databases.TestDatabase) -> Iterator[tuple[Flask, Wire]]:
    if not database.is_postgresql:
        pytest.skip("PostgreSQL only: set TEST_DATABASE_URL to run")
    with wire_to(database.app_url) as wire:
        through = make_app(database, SQLALCHEMY_DATABASE_URI=wire.url)
        yield through, wire
        with through.app_context():
            db.engine.dispose()


def _intake(client: Any, token: str, offering: str, wire: Wire, number: int) -> tuple[list[str], list[str]]:
    body = user_dealer()
    body["person"] |= {"surname": f"Statements-{number}", "pnc_id": None}
    wire.clear()
    answer = client.post("/api/v1/encounters", json=body, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    recorded = wire.work()
    decision = answer.get_json()["decision"]
    assert decision["outcome"] == "eligible"
    wire.clear()
    answer = client.post(f"/api/v1/decisions/{decision['id']}/referrals", json={"offering_id": offering},
                         headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return recorded, wire.work()


def test_an_intake_and_its_referral_each_take_a_dozen_statements_at_most(
    app: Flask, world: World, wired: tuple[Flask, Wire],
) -> None:
    through, wire = wired
    token = make_token(app, world.b)
    offering = str(add_offering(app, world.b, "checkpoint"))
    client = through.test_client()
    _intake(client, token, offering, wire, 0)  # the first fills the worker's caches (policy, force id)
    for number in (1, 2):
        recorded, referred = _intake(client, token, offering, wire, number)
        assert len(recorded) <= INTAKE_STATEMENTS, "\n".join(recorded)
        assert len(referred) <= REFERRAL_STATEMENTS, "\n".join(referred)
        for statements in (recorded, referred):
            # The scope once per transaction, no ping, nothing prepared to be thrown away.
            assert sum("set_config" in s for s in statements) == 1, "\n".join(statements)
            assert not any(s.strip() in (";", "SELECT 1") or s.startswith("DEALLOCATE") for s in statements)
        # The person found once, beside the case's number; the policy kept from the first intake (the
        # force's row has not changed since: ``policy_in_force``); one audit row; nothing read again
        # to answer.
        reads = [s for s in recorded if s.startswith("SELECT") and re.search(r"\bJOIN people\b|\bFROM people\b", s)]
        assert len(reads) == 1, "\n".join(recorded)
        assert "encounter_numbers(" in reads[0]
        assert len(recorded) == 4, "\n".join(recorded)
        assert not any("FROM policy_versions" in s for s in recorded)
        assert not any("FROM policy_versions" in s for s in referred)
        assert sum(s.count("INSERT INTO audit_events") for s in recorded) == 1
        assert sum(s.count("INSERT INTO audit_events") for s in referred) == 1
        # The intake's new rows go in one statement; the referral's row with its audit event.
        writes = [s for s in recorded if "INSERT INTO" in s]
        assert len(writes) == 1, "\n".join(recorded)
        assert all(f"INSERT INTO {table} " in writes[0] for table in ("people", "encounters", "decisions"))
        # The referral's row, with its audit event and the month it made out of date, goes with the
        # feed's position taken (which reads none of them) and its feed entry.
        takes = [s for s in referred if "UPDATE provider_feed_counters " in s]
        assert len(takes) == 1, "\n".join(referred)
        assert all(f"INSERT INTO {table} " in takes[0]
                   for table in ("referrals", "audit_events", "insight_stale", "provider_feed_entries"))
        assert len(referred) == 4, "\n".join(referred)
        # The referral's decision read with its encounter and the course, in one statement.
        reads = [s for s in referred if re.search(r"\b(FROM|JOIN) (encounters|offerings)\b", s)]
        assert len(reads) == 1, "\n".join(referred)
        assert "JOIN offerings" in reads[0]


def test_the_apps_connections_compile_no_plans_just_in_time(app: Flask, database: databases.TestDatabase) -> None:
    if not database.is_postgresql:
        pytest.skip("PostgreSQL only: set TEST_DATABASE_URL to run")
    with app.app_context(), db.engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
