"""The feed's cursor never skips a change, even when two changes race (PostgreSQL).

Two transactions change two of Cranstoun's referrals in two forces at once;
the first holds its transaction open. Whatever order they commit in, a
reader polling with its cursor in between must, over its reads, see both
changes. With positions from a sequence or a clock the second would commit
first with the higher position, the reader would move past the first, and
lose it; here the second waits for the first (the provider's counter row
stays locked until the first commits), which this test observes in
pg_stat_activity.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from diversion.accounts.access import SYSTEM
from diversion.cases import services as cases
from diversion.cases.models import Referral, State
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests import databases
from tests.conftest import Ref, World
from tests.databases import postgres_admin_url
from tests.providers.conftest import Providers, bearer, ids

pytestmark = pytest.mark.skipif(postgres_admin_url() is None,
                                reason="PostgreSQL only (concurrent writers): set TEST_DATABASE_URL to run")
FEED = "/api/v1/provider/referrals"


def _change(app: Flask, force: Ref, referral_id: uuid.UUID, *, changed: threading.Event | None = None,
            commit: threading.Event | None = None) -> None:
    """Accept a referral in its own session; optionally hold the transaction open until told."""
    with app.app_context(), scoped(force.id):
        tenant = db.session.get(Tenant, force.id)
        referral = db.session.get(Referral, referral_id)
        assert tenant is not None
        assert referral is not None
        cases.transition(tenant, referral, State.ACCEPTED, actor=SYSTEM)
        if changed is not None:
            changed.set()
        if commit is not None:
            commit.wait(30)
        db.session.commit()
        db.session.remove()


def _waiting_on_a_lock(database: databases.TestDatabase) -> bool:
    engine = create_engine(database.inspector_url)
    try:
        with engine.connect() as connection:
            return bool(connection.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")))
    finally:
        engine.dispose()


def test_a_change_that_commits_late_is_not_skipped(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
    database: databases.TestDatabase,
) -> None:
    start = client.get(FEED, headers=bearer(p1_token)).json["next_cursor"]
    first_changed, let_first_commit = threading.Event(), threading.Event()
    first = threading.Thread(target=_change, args=(app, world.b, providers.referrals["b1"]),
                             kwargs={"changed": first_changed, "commit": let_first_commit})
    second = threading.Thread(target=_change, args=(app, world.a, providers.referrals["a1"]))
    first.start()
    try:
        assert first_changed.wait(30)
        second.start()
        # Until the second has finished or is waiting for the first's lock (bounded: not a timing check).
        for _ in range(400):
            if not second.is_alive() or _waiting_on_a_lock(database):
                break
            time.sleep(0.05)
        assert second.is_alive(), "the second change committed while the first held its position"
        between = client.get(f"{FEED}?cursor={start}", headers=bearer(p1_token)).json
    finally:
        let_first_commit.set()
        first.join(30)
        second.join(30)
    after = client.get(f"{FEED}?cursor={between['next_cursor']}", headers=bearer(p1_token)).json
    seen = ids(between) + ids(after)
    assert sorted(seen) == sorted([str(providers.referrals["b1"]), str(providers.referrals["a1"])])
    # In commit order: the first change's position is the lower one.
    assert seen == [str(providers.referrals["b1"]), str(providers.referrals["a1"])]
