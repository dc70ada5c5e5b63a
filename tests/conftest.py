"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from diversion import create_app, outbound
from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ProviderMembership, Role, User
from diversion.catalogue.models import Provider
from diversion.config import REPO_ROOT
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

PASSWORD = "correct-horse-battery"
TENANTS_DIR = REPO_ROOT / "tenants"
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
    if admin is not None:
        found = create_postgres_database(admin, name)
    else:
        found = sqlite_database(tmp_path_factory.mktemp("db"), name)
    app = make_app(found)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    yield found
    if found.is_postgresql:
        drop_postgres_database(found)


def make_app(database: TestDatabase, **overrides: Any) -> Flask:
    config: dict[str, Any] = {
        "ENV_NAME": "test",
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-for-tests",
        "SQLALCHEMY_DATABASE_URI": database.app_url,
        "DATABASE_OWNER_URL": database.owner_url,
        "RATELIMIT_STORAGE_URI": "memory://",
        "SIGN_IN_RATE_LIMIT": "1000 per minute",
        "SIGN_IN_ACCOUNT_RATE_LIMIT": "1000 per minute",
        "PASSWORD_HASHING": "fast-insecure",
        "SERVER_NAME": None,
    }
    config.update(overrides)
    return create_app(config)


def empty_database(database: TestDatabase) -> None:
    """Remove every row, as the owner (the app role may not delete audit rows)."""
    from diversion.db import Base

    engine = create_engine(database.owner_url)
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if database.is_postgresql:
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            # Case reference numbers start again from 1 (``cases.references``).
            for name in connection.scalars(text("SELECT relname FROM pg_class WHERE relkind = 'S' "
                                                "AND relname LIKE 'encounter\\_numbers\\_%'")).all():
                connection.execute(text(f'DROP SEQUENCE "{name}"'))
        else:
            # A row may point at another of its table (a ledger reversal at the row it reverses).
            connection.exec_driver_sql("PRAGMA foreign_keys = OFF")  # before the first write opens the transaction
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


@pytest.fixture
def app(database: TestDatabase) -> Iterator[Flask]:
    application = make_app(database)
    with application.app_context():
        limiter.reset()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    empty_database(database)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def statements_of(app: Flask, client: FlaskClient, url: str) -> tuple[int, str]:
    """How many statements the database is sent to answer GET ``url`` (which must be 200), and the page."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])

    with app.app_context():
        engine = db.engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", note)
    try:
        page = client.get(url)
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", note)
    assert page.status_code == 200, url
    return len(seen), page.text


def csrf_token(html: str) -> str:
    match = CSRF_PATTERN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


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


@pytest.fixture
def world(app: Flask) -> World:
    with app.app_context():
        return build_world()
