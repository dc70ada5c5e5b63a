"""Layer 1: the schema itself refuses a link between two forces.

The models here live on their own declarative base and MetaData, never on
``diversion.db.Base``: the migration test compares that metadata with the
database and must not see them. Their two tables are created by the owner
for each test (under row-level security on PostgreSQL, like real tables)
and dropped after it.

The schema tests at the bottom walk the REAL metadata, so a future
force-owned table that forgets its key, its index or its policy fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    create_engine,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

import diversion.models  # noqa: F401 - every real table on the metadata
from diversion.db import (
    NAMING_CONVENTION,
    TENANT_SCOPED,
    Base,
    TenantScoped,
    enforce_sqlite_foreign_keys,
    tenant_foreign_key,
)
from diversion.extensions import db
from diversion.tenancy import rls
from diversion.tenancy.context import scoped
from tests.conftest import World
from tests.databases import postgres_admin_url

requires_postgresql = pytest.mark.skipif(
    postgres_admin_url() is None,
    reason="PostgreSQL only (row-level security): set TEST_DATABASE_URL to run",
)


class ScratchBase(DeclarativeBase):
    """Test-only models, kept off the application's metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# A stub of the real table, only so that the mixin's ``tenants.id`` resolves.
Table("tenants", ScratchBase.metadata, Column("id", Integer, primary_key=True))


class Parent(TenantScoped, ScratchBase):
    __tablename__ = "scratch_parents"

    name: Mapped[str] = mapped_column(String(50))


class Child(TenantScoped, ScratchBase):
    __tablename__ = "scratch_children"
    __tenant_table_args__ = (tenant_foreign_key("scratch_parents", "parent_id"),)

    parent_id: Mapped[uuid.UUID] = mapped_column()
    name: Mapped[str] = mapped_column(String(50))

    parent: Mapped[Parent] = relationship(
        primaryjoin="and_(Child.parent_id == Parent.id, Child.tenant_id == Parent.tenant_id)",
        foreign_keys="[Child.tenant_id, Child.parent_id]",
        viewonly=True,
    )


SCRATCH_TABLES = [Parent.__table__, Child.__table__]

INSERT_PARENT = text(
    "INSERT INTO scratch_parents (id, tenant_id, name) VALUES (:id, :tenant_id, :name)"
).bindparams(bindparam("id", type_=Parent.__table__.c.id.type))
# Raw SQL, past the ORM and its guard: only the database can refuse it.
INSERT_CHILD = text(
    "INSERT INTO scratch_children (id, tenant_id, parent_id, name) "
    "VALUES (:id, :tenant_id, :parent_id, :name)"
).bindparams(
    bindparam("id", type_=Child.__table__.c.id.type),
    bindparam("parent_id", type_=Child.__table__.c.parent_id.type),
)


@contextmanager
def in_force(engine: Engine, tenant_id: int) -> Iterator[Connection]:
    """One transaction for ``tenant_id`` (row-level security on PostgreSQL)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)}
            )
        yield connection


@pytest.fixture
def scratch(database: Any, world: World) -> Iterator[dict[str, Any]]:
    """The two scratch tables, made by the owner, with one parent in each force."""
    enforce_sqlite_foreign_keys()
    owner = create_engine(database.owner_url)
    app_engine = create_engine(database.app_url)
    try:
        with owner.begin() as connection:
            ScratchBase.metadata.create_all(connection, tables=SCRATCH_TABLES)
            if database.is_postgresql:
                for table in SCRATCH_TABLES:
                    for statement in rls.policy_sql(table.name):
                        connection.execute(text(statement))
        parents = {"a": uuid.uuid4(), "b": uuid.uuid4()}
        for key, tenant in (("a", world.a), ("b", world.b)):
            with in_force(app_engine, tenant.id) as connection:
                connection.execute(
                    INSERT_PARENT, {"id": parents[key], "tenant_id": tenant.id, "name": key}
                )
        yield {"engine": app_engine, "parents": parents}
    finally:
        app_engine.dispose()
        with owner.begin() as connection:
            ScratchBase.metadata.drop_all(connection, tables=SCRATCH_TABLES)
        owner.dispose()


def children_of(engine: Engine, tenant_id: int) -> list[tuple[Any, ...]]:
    with in_force(engine, tenant_id) as connection:
        return [tuple(row) for row in connection.execute(
            select(Child.__table__.c.name, Child.__table__.c.parent_id)
        )]


def test_raw_sql_child_pointing_at_other_forces_parent_is_refused(
    scratch: dict[str, Any], world: World
) -> None:
    engine, parents = scratch["engine"], scratch["parents"]
    with pytest.raises(IntegrityError), in_force(engine, world.a.id) as connection:
        connection.execute(INSERT_CHILD, {
            "id": uuid.uuid4(), "tenant_id": world.a.id, "parent_id": parents["b"],
            "name": "crosses forces",
        })
    # Nothing was written, in either force.
    assert children_of(engine, world.a.id) == []
    assert children_of(engine, world.b.id) == []


def test_raw_sql_child_pointing_at_own_forces_parent_is_accepted(
    scratch: dict[str, Any], world: World
) -> None:
    engine, parents = scratch["engine"], scratch["parents"]
    with in_force(engine, world.a.id) as connection:
        connection.execute(INSERT_CHILD, {
            "id": uuid.uuid4(), "tenant_id": world.a.id, "parent_id": parents["a"],
            "name": "same force",
        })
    assert children_of(engine, world.a.id) == [("same force", parents["a"])]


def test_orm_child_pointing_at_other_forces_parent_is_refused(
    app: Flask, scratch: dict[str, Any], world: World
) -> None:
    parents = scratch["parents"]
    with app.app_context(), scoped(world.a.id):
        # The guard stamps force A and has nothing to object to: the
        # parent's force is not its business. The foreign key is.
        db.session.add(Child(parent_id=parents["b"], name="crosses forces"))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()
    assert children_of(scratch["engine"], world.a.id) == []


def test_orm_child_in_same_force_links_to_its_parent(
    app: Flask, scratch: dict[str, Any], world: World
) -> None:
    parents = scratch["parents"]
    with app.app_context(), scoped(world.a.id):
        child = Child(parent_id=parents["a"], name="same force")
        db.session.add(child)
        db.session.flush()
        assert child.tenant_id == world.a.id
        db.session.commit()
    with app.app_context(), scoped(world.a.id):
        loaded = db.session.scalars(select(Child)).one()
        assert loaded.parent.id == parents["a"]
        assert loaded.parent.name == "a"
    with app.app_context(), scoped(world.b.id):
        assert db.session.scalars(select(Child)).all() == []


# --- the real schema ---------------------------------------------------------------


def tenant_tables() -> list[Table]:
    tables = [t for t in Base.metadata.sorted_tables if t.info.get(TENANT_SCOPED)]
    assert tables, "no force-owned table found on the metadata"
    return tables


def leaves() -> set[str]:
    """The force-owned tables no row points at, which need no ``UNIQUE (tenant_id, id)``."""
    return {mapper.local_table.name for mapper in Base.registry.mappers  # type: ignore[union-attr]
            if getattr(mapper.class_, "__tenant_leaf__", False)}


def test_a_leaf_is_pointed_at_by_no_row() -> None:
    assert {"referral_sessions", "provider_feed_entries"} <= leaves()
    pointed_at = {constraint.referred_table.name for table in Base.metadata.tables.values()
                  for constraint in table.foreign_key_constraints}
    assert not leaves() & pointed_at


def parent_keys(table: Table) -> list[ForeignKeyConstraint]:
    """The composite foreign keys through which a row of ``table`` must have a force-owned
    parent (on columns that cannot be empty): each finds the row's force for it."""
    return [constraint for constraint in table.foreign_key_constraints
            if constraint.referred_table is not table and constraint.referred_table.info.get(TENANT_SCOPED)
            and constraint.column_keys[0] == "tenant_id" and not any(c.nullable for c in constraint.columns)]


def keeps_its_own_tenant_key(table: Table) -> bool:
    return "tenants" in {fk.column.table.name for fk in table.c.tenant_id.foreign_keys}


def test_a_child_finds_its_force_through_a_parent_and_only_a_child() -> None:
    children = {table.name for table in tenant_tables() if parent_keys(table)}
    assert {"encounters", "decisions", "referrals", "referral_sessions"} <= children
    for table in tenant_tables():
        # One rule: a table with a parent to vouch for its force has no key of its own to tenants.
        assert keeps_its_own_tenant_key(table) is (table.name not in children), table.name


def test_every_force_owned_row_reaches_the_tenants_table() -> None:
    """Following parents from any table ends at one whose own key holds its force."""
    for table in tenant_tables():
        seen, current = {table.name}, table
        while not keeps_its_own_tenant_key(current):
            current = parent_keys(current)[0].referred_table
            assert current.name not in seen, f"{table.name}: its parents go round in a circle"
            seen.add(current.name)


def test_force_owned_tables_are_marked() -> None:
    names = {table.name for table in tenant_tables()}
    assert "force_memberships" in names
    # Global on purpose: the roots of scope and the shared catalogue.
    assert not names & {"tenants", "users", "providers", "platform_grants"}


@pytest.mark.parametrize("table", tenant_tables(), ids=lambda t: t.name)
def test_force_owned_table_has_tenant_keys_in_the_models(table: Table) -> None:
    assert table.c.tenant_id.nullable is False
    assert keeps_its_own_tenant_key(table) or parent_keys(table)
    uniques = [
        [column.name for column in constraint.columns]
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    # What children's composite foreign keys point at (a leaf has no children).
    assert (["tenant_id", "id"] in uniques) is (table.name not in leaves())
    # The tenant index: an index or unique constraint that leads with tenant_id.
    keys = uniques + [[column.name for column in index.columns] for index in table.indexes]
    assert any(columns[0] == "tenant_id" for columns in keys), keys
    # A link to another force-owned table must carry the force.
    for constraint in table.foreign_key_constraints:
        if constraint.referred_table.info.get(TENANT_SCOPED):
            assert constraint.column_keys[0] == "tenant_id", constraint.name
            assert constraint.elements[0].column.name == "tenant_id", constraint.name


def test_scratch_child_has_a_composite_foreign_key() -> None:
    # The helper the real children use builds what the schema test expects.
    (constraint,) = [
        fk for fk in Child.__table__.foreign_key_constraints
        if fk.referred_table is Parent.__table__
    ]
    assert [c.name for c in constraint.columns] == ["tenant_id", "parent_id"]
    assert [e.column.name for e in constraint.elements] == ["tenant_id", "id"]


@pytest.mark.parametrize("table", tenant_tables(), ids=lambda t: t.name)
def test_force_owned_table_has_tenant_keys_in_the_database(database: Any, table: Table) -> None:
    engine = create_engine(database.owner_url)
    try:
        found = inspect(engine)
        columns = {column["name"]: column for column in found.get_columns(table.name)}
        uniques = [u["column_names"] for u in found.get_unique_constraints(table.name)]
        indexes = [i["column_names"] for i in found.get_indexes(table.name)]
        keys = {(key["referred_table"], tuple(key["constrained_columns"]))
                for key in found.get_foreign_keys(table.name)}
    finally:
        engine.dispose()
    assert columns["tenant_id"]["nullable"] is False
    assert (("tenants", ("tenant_id",)) in keys) is keeps_its_own_tenant_key(table)
    for parent in parent_keys(table):
        assert (parent.referred_table.name, tuple(parent.column_keys)) in keys
    assert (["tenant_id", "id"] in uniques) is (table.name not in leaves())
    assert any(keys[0] == "tenant_id" for keys in uniques + indexes)


def _row_security(connection: Connection, table: str) -> tuple[bool, bool]:
    row = connection.execute(
        text(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE oid = to_regclass(:table)"
        ),
        {"table": f"public.{table}"},
    ).one()
    return bool(row.relrowsecurity), bool(row.relforcerowsecurity)


@requires_postgresql
@pytest.mark.postgres
@pytest.mark.parametrize("table", tenant_tables(), ids=lambda t: t.name)
def test_force_owned_table_is_under_row_level_security(database: Any, table: Table) -> None:
    engine = create_engine(database.owner_url)
    try:
        with engine.connect() as connection:
            security = _row_security(connection, table.name)
            policy = connection.execute(
                text(
                    "SELECT qual, with_check, cmd FROM pg_policies "
                    "WHERE schemaname = 'public' AND tablename = :table "
                    "AND policyname = 'tenant_isolation'"
                ),
                {"table": table.name},
            ).one_or_none()
    finally:
        engine.dispose()
    assert security == (True, True), "ENABLE and FORCE ROW LEVEL SECURITY"
    assert policy is not None, "no tenant_isolation policy"
    assert policy.cmd == "ALL"
    for expression in (policy.qual, policy.with_check):
        # NULLIF keeps a cleared setting ('') from failing the cast; the subquery reads it once a statement.
        assert "tenant_id = ( SELECT (NULLIF(current_setting('app.tenant_id'" in expression


@requires_postgresql
@pytest.mark.postgres
def test_scratch_tables_are_under_row_level_security(
    database: Any, scratch: dict[str, Any], world: World
) -> None:
    engine = create_engine(database.owner_url)
    try:
        with engine.connect() as connection:
            for table in SCRATCH_TABLES:
                assert _row_security(connection, table.name) == (True, True)
    finally:
        engine.dispose()
    # So one force's rows are invisible from the other, even by raw SQL.
    with in_force(scratch["engine"], world.a.id) as connection:
        names = connection.scalars(text("SELECT name FROM scratch_parents")).all()
    assert names == ["a"]
