"""A fresh PostgreSQL database for one benchmark, set up as production has it.

The same set-up as the test suite (``tests/databases.py``): a database owned
by ``diversion_owner``, migrated as the owner, and the application
connecting as ``diversion_app``, which row-level security binds. The forces
are synced from ``tenants/``. The database is dropped afterwards.

The server comes from ``BENCH_DATABASE_URL`` (else ``TEST_DATABASE_URL``,
else ``postgresql://postgres@127.0.0.1:5432/postgres``): a superuser
connection, and it must be on 127.0.0.1.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from flask import Flask
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.databases import TestDatabase, create_postgres_database, drop_postgres_database

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL = ("127.0.0.1", "localhost")
# Fixed secrets for benchmark databases only: made up, dropped with the database.
SECRETS = {
    "SECRET_KEY": "bench-only-secret-key-0123456789abcdef-not-for-use",
    "PERSON_KEY_SECRET": "bench-only-person-key-secret",
    "PERSONAL_DATA_KEYS": "YmVuY2gtb25seS1mZXJuZXQta2V5LW5vdC1zZWNyZXQ=",
}


def server_url() -> Any:
    raw = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER
    url = make_url(raw).set(drivername="postgresql+psycopg")
    if url.host not in LOCAL:
        raise SystemExit(f"benchmarks only talk to 127.0.0.1, not {url.host!r}")
    return url


def app_config(database: TestDatabase) -> dict[str, Any]:
    """The configuration of the app under test: production's, on the benchmark database."""
    return {
        "ENV_NAME": "production",
        **SECRETS,
        "SQLALCHEMY_DATABASE_URI": database.app_url,
        "DATABASE_OWNER_URL": database.owner_url,
        "INSIGHTS_DATABASE_URL": database.insights_url,
        "RATELIMIT_STORAGE_URI": "memory://",
    }


def make_app(database: TestDatabase) -> Flask:
    from diversion import create_app

    return create_app(app_config(database))


@contextmanager
def fresh_database(label: str) -> Iterator[TestDatabase]:
    """A migrated database with the forces synced; dropped on the way out."""
    from flask_migrate import upgrade

    from diversion.accounts.access import SYSTEM
    from diversion.config import REPO_ROOT
    from diversion.extensions import db
    from diversion.forces.services import sync_tenants

    database = create_postgres_database(server_url(), f"diversion_bench_{label}_{os.getpid()}")
    try:
        app = make_app(database)
        with app.app_context():
            upgrade()
            sync_tenants(REPO_ROOT / "tenants", actor=SYSTEM)
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
        yield database
    finally:
        drop_postgres_database(database)


# What autovacuum weighs for each table (PostgreSQL's own rule, with the server's own settings): analyse
# once the rows changed since the last analysis pass a threshold plus a share of the table; vacuum once
# the rows inserted, or the dead rows, since the last vacuum do.
_DUE = """
    SELECT s.schemaname, s.relname,
           s.n_ins_since_vacuum > current_setting('autovacuum_vacuum_insert_threshold')::float8
               + current_setting('autovacuum_vacuum_insert_scale_factor')::float8 * greatest(c.reltuples, 0)
           OR s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8
               + current_setting('autovacuum_vacuum_scale_factor')::float8 * greatest(c.reltuples, 0),
           s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
               + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0)
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
"""


@contextmanager
def autovacuum_stand_in(database: TestDatabase) -> Iterator[Callable[[], str]]:
    """While a long benchmark writes, do what autovacuum would, on a server that has it off.

    Production runs autovacuum, which keeps the statistics the planner needs as tables grow; this
    machine's server runs with it off (for the test suite's speed), so a twenty-minute load would be
    planned from tables last seen empty. Every ``autovacuum_naptime`` this analyses, and vacuums,
    each table past autovacuum's own thresholds (``_DUE``), as the superuser. On a server with
    autovacuum on it does nothing. Yields a function that says what was done.
    """
    url = make_url(database.inspector_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as connection:
        on = connection.execute("SELECT current_setting('autovacuum') = 'on'").fetchone()
        nap = connection.execute("SELECT setting::float8 FROM pg_settings WHERE name = 'autovacuum_naptime'")\
            .fetchone()
        if on is None or on[0] or nap is None:
            yield lambda: "the server's own autovacuum kept the tables' statistics"
            return
        done = {"vacuumed": 0, "analysed": 0}
        stop = threading.Event()

        def work() -> None:
            while not stop.wait(nap[0]):
                for schema, table, vacuum, analyse in connection.execute(_DUE).fetchall():
                    if vacuum or analyse:
                        command = sql.SQL("VACUUM (ANALYZE) {}" if vacuum else "ANALYZE {}")
                        connection.execute(command.format(sql.Identifier(schema, table)))
                        done["vacuumed"] += bool(vacuum)
                        done["analysed"] += 1

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        try:
            yield lambda: (f"autovacuum is off on this server: every {nap[0]:.0f} s the bench did its work, "
                           f"{done['analysed']:,} analyses ({done['vacuumed']:,} with a vacuum)")
        finally:
            stop.set()
            worker.join()
