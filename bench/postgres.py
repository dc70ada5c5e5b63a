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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
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
