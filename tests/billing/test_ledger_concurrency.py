"""Two writers of the same ledger fact at once, on PostgreSQL: exactly one row.

Two transactions, on two connections in two threads, announce the same move
of a referral (the same transition, so the same key). The first writes its
row and holds its transaction open; the second, writing the same key, waits
on the unique index (observed in pg_stat_activity); the first commits; the
second finds the key taken, writes nothing and commits too. Neither fails,
and the ledger has one row.

And a writer under way while the close records a month closed: it waits for the
close, then sees the month closed and writes its row in the next open month, so
a closed month's statement never misses a row.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from diversion.billing import ledger
from diversion.billing.models import ClosedMonth
from diversion.cases.events import Moved, announce
from diversion.cases.models import State
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests import databases
from tests.billing.conftest import Billing, at, make_contract, rows
from tests.conftest import World
from tests.databases import postgres_admin_url

pytestmark = pytest.mark.skipif(postgres_admin_url() is None,
                                reason="PostgreSQL only (concurrent writers): set TEST_DATABASE_URL to run")


def _write(app: Flask, billing: Billing, move: Moved, failures: list[BaseException], *,
           written: threading.Event | None = None, commit: threading.Event | None = None) -> None:
    try:
        with app.app_context(), scoped(billing.force.id):
            tenant = db.session.get(Tenant, billing.force.id)
            assert tenant is not None
            announce(tenant, [move])
            if written is not None:
                written.set()
            if commit is not None:
                commit.wait(30)
            db.session.commit()
            db.session.remove()
    except BaseException as failure:  # reported to the test's own thread
        failures.append(failure)


def _waiting_on_a_lock(database: databases.TestDatabase) -> bool:
    engine = create_engine(database.inspector_url)
    try:
        with engine.connect() as connection:
            return bool(connection.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")))
    finally:
        engine.dispose()


def test_two_concurrent_writers_of_one_fact_write_one_row(
    app: Flask, world: World, billing: Billing, database: databases.TestDatabase,
) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    move = Moved(billing.referral, billing.provider.id, "divert", State.OFFERED, State.ACCEPTED, uuid.uuid4(),
                 at(2026, 10, 3))
    failures: list[BaseException] = []
    written, let_first_commit = threading.Event(), threading.Event()
    first = threading.Thread(target=_write, args=(app, billing, move, failures),
                             kwargs={"written": written, "commit": let_first_commit})
    second = threading.Thread(target=_write, args=(app, billing, move, failures))
    first.start()
    try:
        assert written.wait(30)
        second.start()
        for _ in range(400):  # until the second waits for the first's key (bounded, not a timing check)
            if not second.is_alive() or _waiting_on_a_lock(database):
                break
            time.sleep(0.05)
        assert second.is_alive(), "the second writer finished while the first held the key uncommitted"
    finally:
        let_first_commit.set()
        first.join(30)
        second.join(30)
    assert failures == []
    found = rows(app, billing.force)
    assert [(r["key"], r["amount"]) for r in found] == [(f"referral-event:{move.transition_id}", 7000)]


def _close(app: Flask, billing: Billing, failures: list[BaseException], *, locked: threading.Event,
           commit: threading.Event) -> None:
    """The close's part: lock the force's months, record October closed, commit when told."""
    try:
        with app.app_context(), scoped(billing.force.id):
            ledger.lock_months(billing.force.id)
            locked.set()
            db.session.add(ClosedMonth(tenant_id=billing.force.id, month=date(2026, 10, 1)))
            db.session.flush()
            commit.wait(30)
            db.session.commit()
            db.session.remove()
    except BaseException as failure:  # reported to the test's own thread
        failures.append(failure)


def test_a_writer_during_the_close_waits_and_goes_to_the_next_month(
    app: Flask, world: World, billing: Billing, database: databases.TestDatabase,
) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    move = Moved(billing.referral, billing.provider.id, "divert", State.OFFERED, State.ACCEPTED, uuid.uuid4(),
                 at(2026, 10, 30))
    failures: list[BaseException] = []
    locked, let_close_commit = threading.Event(), threading.Event()
    closing = threading.Thread(target=_close, args=(app, billing, failures),
                               kwargs={"locked": locked, "commit": let_close_commit})
    writer = threading.Thread(target=_write, args=(app, billing, move, failures))
    closing.start()
    try:
        assert locked.wait(30)
        writer.start()
        for _ in range(400):  # until the writer waits for the close (bounded, not a timing check)
            if not writer.is_alive() or _waiting_on_a_lock(database):
                break
            time.sleep(0.05)
        assert writer.is_alive(), "the writer went ahead while the close held the force's months"
    finally:
        let_close_commit.set()
        closing.join(30)
        writer.join(30)
    assert failures == []
    assert [r["month"] for r in rows(app, billing.force)] == [date(2026, 11, 1)]
