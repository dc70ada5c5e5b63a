"""Fixtures shared by the whole suite."""

from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, select, text

from diversion import create_app, outbound
from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ProviderMembership, Role, User
from diversion.catalogue.models import Provider
from diversion.config import REPO_ROOT
from diversion.db import LONDON
from diversion.extensions import db, limiter
from diversion.forces.services import sync_tenants
from diversion.models import Tenant
from diversion.tenancy.context import scoped
from tests.databases import (
    TestDatabase,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
    sqlite_database,
)
from tests.network import DNS, FakeDNS

# No DNS here, and nothing may leave the machine: outward calls resolve names
# through the tests' own table (tests/network.py).
outbound.resolver = DNS


def _remember_url_builders() -> None:
    """Each app the suite makes (one per test) compiles a URL builder for each of its
    routes, by generating and compiling Python code, twice a rule: most of the time
    ``create_app`` takes. The code depends only on the rule's text, its parsed parts
    and its defaults, the same for every app, so it is compiled once per process. Each
    app still gets its own rules, bound to them as ever."""
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    built: dict[tuple[Any, ...], Any] = {}

    def remembered(self: Rule, append_unknown: bool = True) -> Any:
        defaults = self.defaults or {}
        folded = tuple((name, self._converters[name].to_url(defaults[name]))
                       for dynamic, name in self._trace if dynamic and name in defaults) if defaults else ()
        key = (self.rule, append_unknown, tuple(self._trace), tuple(defaults), folded)
        if key not in built:
            built[key] = compile_builder(self, append_unknown)
        return built[key]

    Rule._compile_builder = remembered  # type: ignore[method-assign]


_remember_url_builders()

PASSWORD = "correct-horse-battery"
TENANTS_DIR = REPO_ROOT / "tenants"
MEMORY = Path("/dev/shm")  # noqa: S108 - each run makes a private folder there (mkdtemp)
CSRF_PATTERN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@pytest.fixture(autouse=True)
def dns() -> Iterator[FakeDNS]:
    """The names outward calls resolve; what a test adds is gone after it."""
    yield DNS
    DNS.reset()


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """One migrated database per test process."""
    admin = postgres_admin_url()
    # The process id keeps two runs on one server (two people, CI) apart.
    name = f"diversion_test_{_worker()}_{os.getpid()}"
    folder: Path | None = None
    if admin is not None:
        found = create_postgres_database(admin, name)
    else:
        # In memory where the machine has a tmpfs (the same SQLite, without waiting on the disk
        # at every commit), else among the run's temporary files.
        if MEMORY.is_dir() and os.access(MEMORY, os.W_OK):
            folder = Path(tempfile.mkdtemp(prefix="diversion-test-", dir=MEMORY))
        found = sqlite_database(folder or tmp_path_factory.mktemp("db"), name)
    app = make_app(found)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    yield found
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    if found.is_postgresql:
        drop_postgres_database(found)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def make_app(database: TestDatabase, **overrides: Any) -> Flask:
    config: dict[str, Any] = {
        "ENV_NAME": "test",
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-for-tests",
        "SQLALCHEMY_DATABASE_URI": database.app_url,
        "DATABASE_OWNER_URL": database.owner_url,
        "INSIGHTS_DATABASE_URL": database.insights_url,
        "RATELIMIT_STORAGE_URI": "memory://",
        "SIGN_IN_RATE_LIMIT": "1000 per minute",
        "SIGN_IN_ACCOUNT_RATE_LIMIT": "1000 per minute",
        "PASSWORD_HASHING": "fast-insecure",
        "SERVER_NAME": None,
    }
    config.update(overrides)
    return create_app(config)


def _tables() -> list[str]:
    """The application's tables, children before parents."""
    from diversion.db import Base

    return [table.name for table in reversed(Base.metadata.sorted_tables)]


_engines: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    """One engine per URL for the fixtures' own connections (emptying, snapshots), kept for the run."""
    if url not in _engines:
        _engines[url] = create_engine(url)
    return _engines[url]


# The sequences of the tables' identity and serial columns (PostgreSQL), with where each starts and
# stands (NULL: not used since it was last set back).
_SEQUENCES = (
    "SELECT quote_ident(s.relname), q.start_value, q.last_value FROM pg_class s "
    "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
    "JOIN pg_class t ON t.oid = d.refobjid "
    "JOIN pg_sequences q ON q.schemaname = 'public' AND q.sequencename = s.relname "
    "WHERE s.relkind = 'S' AND t.relname = ANY(%(tables)s)"
)


def empty_database(database: TestDatabase) -> None:
    """Remove every row and set the tables' sequences back to their start.

    On PostgreSQL, as the superuser (row-level security binds even the owner)
    with triggers off (the ledger and published policies refuse deletes,
    foreign keys need no checking when every row goes): what ``TRUNCATE ...
    RESTART IDENTITY CASCADE`` would do, many times faster on tables of a few
    rows. Case reference sequences are dropped, so numbers start again from 1
    (``cases.references``).
    """
    tables = _tables()
    if database.is_postgresql:
        with _engine(database.inspector_url).begin() as connection:
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("; ".join(f'DELETE FROM "{table}"' for table in tables))
            cursor.execute(f"SELECT setval(sequence, start_value, false) FROM ({_SEQUENCES}) AS found(sequence, "
                           "start_value, last_value) WHERE last_value IS NOT NULL", {"tables": tables})
            cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'S' AND relname LIKE %s",
                           ("encounter\\_numbers\\_%",))
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP SEQUENCE "{name}"')
    else:
        with _engine(database.owner_url).begin() as connection:
            # A row may point at another of its table (a ledger reversal at the row it reverses).
            connection.exec_driver_sql("PRAGMA foreign_keys = OFF")  # before the first write opens the transaction
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def app(database: TestDatabase) -> Iterator[Flask]:
    application = make_app(database)
    with application.app_context():
        limiter.reset()
    yield application
    with application.app_context():
        db.session.remove()
        for engine in db.engines.values():  # the app's own and the insights login's
            engine.dispose()
    empty_database(database)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def statements_of(app: Flask, client: FlaskClient, url: str) -> tuple[int, str]:
    """How many statements the database is sent to answer GET ``url`` (which must be 200), and the page."""
    seen, page = statements_sent(app, client, url)
    return len(seen), page


def statements_sent(app: Flask, client: FlaskClient, url: str) -> tuple[list[str], str]:
    """The statements the database is sent to answer GET ``url`` (which must be 200), and the page."""
    sent, page = statements_and_parameters_sent(app, client, url)
    return [statement for statement, _ in sent], page


def statements_and_parameters_sent(app: Flask, client: FlaskClient, url: str) -> tuple[list[tuple[str, Any]], str]:
    """Each statement the database is sent to answer GET ``url`` (which must be 200) with its
    parameters, and the page."""
    seen: list[tuple[str, Any]] = []

    def note(*args: Any) -> None:
        seen.append((args[2], args[3]))

    with app.app_context():
        engine = db.engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", note)
    try:
        page = client.get(url)
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", note)
    assert page.status_code == 200, url
    return seen, page.text


def steps_of(referral_id: Any) -> list[Any]:
    """A referral's steps in order (``Referral.transitions``), read afresh from the database."""
    from diversion.cases.models import Referral

    return db.session.scalars(select(Referral).where(Referral.id == referral_id)
                              .execution_options(populate_existing=True)).one().transitions


def csrf_token(html: str) -> str:
    match = CSRF_PATTERN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def started_today() -> datetime:
    """A moment passed on today's date in London: when a session of a case met today may have
    started (an hour ago; midnight, when the day is not an hour old). A session may not be
    booked before the day of the offence."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.astimezone(LONDON).date(), time(), LONDON).astimezone(UTC)
    return max(now - timedelta(hours=1), midnight)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    page = client.get("/sign-in")
    return client.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
    )


def post_form(client: FlaskClient, page_url: str, action_url: str, data: dict[str, str] | None = None) -> Any:
    """POST to ``action_url`` with the CSRF token of ``page_url``, as a browser would."""
    page = client.get(page_url)
    return client.post(action_url, data={**(data or {}), "csrf_token": csrf_token(page.text)})


@dataclass(frozen=True)
class Ref:
    """A plain record of a row, usable after its session has gone."""

    id: Any
    email: str = ""
    slug: str = ""
    name: str = ""
    tenant_id: int | None = None


@dataclass
class World:
    """Two forces with a user in every role, and people with no access."""

    a: Ref
    b: Ref
    users: dict[str, Ref] = field(default_factory=dict)
    memberships: dict[str, Ref] = field(default_factory=dict)
    providers: dict[str, Ref] = field(default_factory=dict)  # by slug: cranstoun, druglink

    def email(self, key: str) -> str:
        return self.users[key].email


def build_world(force_b: Callable[[], Tenant] | None = None) -> World:
    """Sync the real force files and give each role a user (inside an app context).

    Force B is Durham, synced from its file, unless ``force_b`` makes another
    (a force onboarded in the console, for the isolation tests); its people
    are given their roles the same way either way.
    """
    sync_tenants(TENANTS_DIR, actor=SYSTEM)
    tenants = {t.slug: t for t in db.session.scalars(db.select(Tenant))}
    a, b = tenants["west-midlands"], (force_b() if force_b is not None else tenants["durham"])
    world = World(a=Ref(a.id, slug=a.slug, name=a.name), b=Ref(b.id, slug=b.slug, name=b.name))

    def user(key: str) -> User:
        created = accounts.create_user(
            email=f"{key.replace('_', '-')}@example.org", name=key.replace("_", " ").title(),
            password=PASSWORD, actor=SYSTEM,
        )
        world.users[key] = Ref(created.id, email=created.email, name=created.name)
        return created

    for tenant, prefix in ((a, "a"), (b, "b")):
        with scoped(tenant.id):
            for role in (Role.FORCE_ADMIN, Role.OFFICER, Role.SUPERVISOR):
                key = f"{prefix}_{role.value}"
                membership = accounts.add_membership(tenant, user(key), role, actor=SYSTEM)
                world.memberships[key] = Ref(membership.id, tenant_id=tenant.id)
    accounts.grant_platform_role(user("platform_admin"), Role.PLATFORM_ADMIN, actor=SYSTEM)
    accounts.grant_platform_role(user("national_lead"), Role.NATIONAL_LEAD, actor=SYSTEM)
    # Cranstoun serves force A (West Midlands), Druglink does not.
    providers = {p.slug: p for p in db.session.scalars(db.select(Provider))}
    for key, slug in (("provider_staff", "cranstoun"), ("druglink_staff", "druglink")):
        provider = providers[slug]
        world.providers[slug] = Ref(provider.id, slug=slug, name=provider.name)
        db.session.add(ProviderMembership(provider_id=provider.id, user_id=user(key).id))
    user("no_role")
    db.session.commit()
    return world


# ---------------------------------------------------------------- the world, built once per process
#
# Building the world (every force file synced, policies compiled and
# published, a dozen people) costs far more than most tests that use it. The
# first test of a process that asks for a world builds it in full; its rows
# are then read out of the database, and every later test that asks for the
# same world on an empty database gets those rows written back (and, on
# PostgreSQL, the identity sequences set where the build left them), which
# is the same database the build would have left, and the same ``World``.
# Every test still starts from an empty database and its own world: the
# ``app`` fixture empties the database after each test as before.


@dataclass(frozen=True)
class Snapshot:
    """The rows a world left, per table, and where the tables' sequences stood."""

    world: World
    rows: list[tuple[str, Any]]  # (table, COPY text) on PostgreSQL; (table, (columns, rows)) on SQLite
    sequences: list[tuple[str, int]]  # PostgreSQL only


_snapshots: dict[tuple[str, ...], Snapshot | None] = {}


def _world_key(app: Flask, database: TestDatabase, variant: str) -> tuple[str, ...]:
    """What the rows of a world depend on besides the code and the force files: the day it is
    built on (policies take effect "today") and the application's settings."""
    settings = sorted((name, repr(sorted(value) if isinstance(value, set | frozenset) else value))
                      for name, value in app.config.items())
    today = datetime.now(UTC)
    return (database.name, variant, today.date().isoformat(), today.astimezone().date().isoformat(),
            repr(settings))


def _is_empty(database: TestDatabase) -> bool:
    """No row in any of the application's tables (read as a role that sees every row)."""
    query = " OR ".join(f'EXISTS (SELECT 1 FROM "{table}")' for table in _tables())
    with _engine(database.inspector_url).connect() as connection:
        return not connection.exec_driver_sql(f"SELECT {query}").scalar()


def _take_snapshot(database: TestDatabase, world: World) -> Snapshot | None:
    """The database's rows as they are now, or None when they cannot be written back as taken
    (a case reference sequence, made outside the tables, would be missing)."""
    rows: list[tuple[str, Any]] = []
    sequences: list[tuple[str, int]] = []
    with _engine(database.inspector_url).connect() as connection:
        if database.is_postgresql:
            made = connection.execute(text("SELECT 1 FROM pg_class WHERE relkind = 'S' AND relname LIKE :name"),
                                      {"name": "encounter\\_numbers\\_%"}).first()
            if made is not None:
                return None
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            for table in _tables():
                with cursor.copy(f'COPY "{table}" TO STDOUT') as copy:
                    data = b"".join(bytes(block) for block in copy)
                if data:
                    rows.append((table, data))
            # Where the build left the tables' sequences.
            sequences = [(name, value) for name, _start, value in connection.exec_driver_sql(
                _SEQUENCES, {"tables": _tables()}) if value is not None]
            connection.rollback()
        else:
            for table in _tables():
                result = connection.exec_driver_sql(f'SELECT * FROM "{table}"')
                found = [tuple(row) for row in result]
                if found:
                    rows.append((table, (list(result.keys()), found)))
    return Snapshot(world, rows, sequences)


def _restore(database: TestDatabase, snapshot: Snapshot) -> None:
    """Write a snapshot's rows back into the empty database, as they were read."""
    if database.is_postgresql:
        with _engine(database.inspector_url).begin() as connection:
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            # The rows were consistent when read: no trigger or foreign key check is needed to write them back.
            cursor.execute("SET LOCAL session_replication_role = replica")
            for table, data in snapshot.rows:
                with cursor.copy(f'COPY "{table}" FROM STDIN') as copy:
                    copy.write(data)
            for name, value in snapshot.sequences:
                cursor.execute("SELECT setval(%s, %s)", (name, value))
    else:
        with _engine(database.owner_url).begin() as connection:
            connection.exec_driver_sql("PRAGMA foreign_keys = OFF")  # before the first write opens the transaction
            for table, (columns, found) in snapshot.rows:
                names = ", ".join(f'"{column}"' for column in columns)
                marks = ", ".join("?" for _ in columns)
                connection.exec_driver_sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', found)


def world_of(app: Flask, database: TestDatabase, variant: str, build: Callable[[], World]) -> World:
    """The world ``build`` makes (in an app context), built in full the first time this process
    asks for ``variant``, then written back from its rows. A database that is not empty when
    the world is asked for (a fixture wrote first) gets the world built in full, as ever."""
    if not _is_empty(database):
        with app.app_context():
            return build()
    key = _world_key(app, database, variant)
    if key in _snapshots:
        snapshot = _snapshots[key]
        if snapshot is not None:
            _restore(database, snapshot)
            return copy.deepcopy(snapshot.world)
    with app.app_context():
        world = build()
    if key not in _snapshots:
        _snapshots[key] = _take_snapshot(database, copy.deepcopy(world))
    return world


@pytest.fixture
def world(app: Flask, database: TestDatabase) -> World:
    return world_of(app, database, "seeded", build_world)
