"""The databases the suite runs on: SQLite always, PostgreSQL with TEST_DATABASE_URL.

On PostgreSQL the suite builds what production has: a fresh database owned
by ``diversion_owner`` (who runs the migrations) and the application
connecting as ``diversion_app``, a role that is neither superuser, owner nor
BYPASSRLS, so row-level security binds every query the app makes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

OWNER_ROLE = "diversion_owner"
APP_ROLE = "diversion_app"
INSIGHTS_ROLE = "diversion_insights"  # the national pages' login: the aggregate tables alone


@dataclass(frozen=True)
class TestDatabase:
    app_url: str
    owner_url: str
    admin_url: str | None
    name: str
    insights_url: str

    @property
    def is_postgresql(self) -> bool:
        return self.app_url.startswith("postgresql")

    @property
    def inspector_url(self) -> str:
        """A connection that sees every row: the superuser on PostgreSQL.

        Even the owner is bound by FORCE ROW LEVEL SECURITY, so tests that
        check what was written read through this.
        """
        if self.admin_url is None:
            return self.app_url
        return make_url(self.admin_url).set(database=self.name).render_as_string(hide_password=False)


def postgres_admin_url() -> URL | None:
    raw = os.environ.get("TEST_DATABASE_URL")
    if not raw:
        return None
    url = make_url(raw)
    return url.set(drivername="postgresql+psycopg")


_ROLES_LOCK = 7_210_001  # the advisory lock the test set-up takes while it creates the roles


def create_roles(admin: URL) -> None:
    """Create the owner and app roles once per cluster (idempotent). Test workers starting side by side
    on a new cluster take turns under an advisory lock, so that no two create the same role."""
    engine = create_engine(admin)
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ROLES_LOCK})
        for role, options in (
            (OWNER_ROLE, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE"),
            (APP_ROLE, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB"),
            (INSIGHTS_ROLE, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB"),
        ):
            exists = connection.scalar(
                text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
            )
            if not exists:
                connection.execute(text(f"CREATE ROLE {role} {options}"))
    engine.dispose()


def create_postgres_database(admin: URL, name: str) -> TestDatabase:
    """A fresh database for one test run, set up as infra/postgres/roles.sql does."""
    create_roles(admin)
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}" OWNER {OWNER_ROLE}'))
    engine.dispose()
    owner = admin.set(username=OWNER_ROLE, password=None, database=name)
    engine = create_engine(owner, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"REVOKE ALL ON DATABASE \"{name}\" FROM PUBLIC"))
        connection.execute(text(f"GRANT CONNECT, TEMPORARY ON DATABASE \"{name}\" TO {APP_ROLE}"))
        connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}"))
        connection.execute(text(f"GRANT CONNECT ON DATABASE \"{name}\" TO {INSIGHTS_ROLE}"))
        connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {INSIGHTS_ROLE}"))
        connection.execute(text(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}"
        ))
        connection.execute(text(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}"
        ))
    engine.dispose()
    app = admin.set(username=APP_ROLE, password=None, database=name)
    insights = admin.set(username=INSIGHTS_ROLE, password=None, database=name)
    return TestDatabase(
        app_url=app.render_as_string(hide_password=False),
        owner_url=owner.render_as_string(hide_password=False),
        admin_url=admin.render_as_string(hide_password=False),
        name=name,
        insights_url=insights.render_as_string(hide_password=False),
    )


def drop_postgres_database(database: TestDatabase) -> None:
    assert database.admin_url
    engine = create_engine(database.admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)'))
    engine.dispose()


def sqlite_database(folder: Path, name: str) -> TestDatabase:
    url = f"sqlite:///{folder / (name + '.db')}"
    return TestDatabase(app_url=url, owner_url=url, admin_url=None, name=name, insights_url=url)
