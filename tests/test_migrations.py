"""Migrations: one head, dated files, ``upgrade head`` equals the models, and
(on PostgreSQL) a full upgrade -> downgrade -> upgrade round trip."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

import diversion.models  # noqa: F401 - every table on the metadata
from diversion.config import REPO_ROOT
from diversion.db import TENANT_SCOPED, Base
from diversion.extensions import db
from tests.conftest import make_app
from tests.databases import (
    APP_ROLE,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
    sqlite_database,
)

MIGRATIONS = REPO_ROOT / "migrations"
DATED_FILE = re.compile(r"^\d{8}_[0-9a-f]{12}_[a-z0-9_]+\.py$")
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
