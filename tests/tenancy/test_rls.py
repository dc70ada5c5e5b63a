"""Layer 3: PostgreSQL row-level security binds the app role, even in raw SQL.

Everything here goes through a plain SQLAlchemy engine on the app role's URL
with ``text()`` SQL: no Flask, no ORM guard. What these tests see is what a
forgotten filter, a hand-written report query or an injected statement
would see.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg.errors
import pytest
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import World
from tests.databases import APP_ROLE, postgres_admin_url

pytestmark = [
    pytest.mark.skipif(
        postgres_admin_url() is None,
        reason="PostgreSQL only (row-level security): set TEST_DATABASE_URL to run",
    ),
    pytest.mark.postgres,
]

A_KEYS = ("a_force_admin", "a_officer", "a_supervisor")
B_KEYS = ("b_force_admin", "b_officer", "b_supervisor")
MEMBERSHIPS = text("SELECT id, tenant_id, user_id, role FROM force_memberships")
SCOPE = text("SELECT set_config('app.tenant_id', :tenant, true), set_config('app.user_id', :user, true)")


@pytest.fixture
def engine(database: Any, world: World) -> Iterator[Engine]:
    """The app role on one pooled connection, so every test reuses it."""
    found = create_engine(database.app_url, pool_size=1, max_overflow=0)
    yield found
    found.dispose()


@contextmanager
def transaction(engine: Engine, tenant_id: int | None = None, user_id: int | None = None
                ) -> Iterator[Connection]:
    """One transaction with the scope set as the app sets it (``set_config(..., true)``)."""
    with engine.begin() as connection:
        if tenant_id is not None or user_id is not None:
            connection.execute(SCOPE, {
                "tenant": "" if tenant_id is None else str(tenant_id),
                "user": "" if user_id is None else str(user_id),
            })
        yield connection


def ids(world: World, keys: tuple[str, ...]) -> set[uuid.UUID]:
    return {world.memberships[key].id for key in keys}


def visible(engine: Engine, tenant_id: int | None = None, user_id: int | None = None
            ) -> set[uuid.UUID]:
    with transaction(engine, tenant_id, user_id) as connection:
        return {row.id for row in connection.execute(MEMBERSHIPS)}


def insufficient_privilege(error: DBAPIError) -> bool:
    return isinstance(error.orig, psycopg.errors.InsufficientPrivilege)


# --- reading ----------------------------------------------------------------------


def test_without_a_force_nothing_is_visible(engine: Engine, world: World) -> None:
    with transaction(engine) as connection:
        assert connection.scalar(text("SELECT current_setting('app.tenant_id', true)")) is None
        assert connection.execute(MEMBERSHIPS).all() == []
        # Global tables are readable: the role can read, RLS hides the rows.
        assert connection.scalar(text("SELECT count(*) FROM users")) == len(world.users)


def test_a_cleared_setting_matches_nothing_instead_of_failing(engine: Engine, world: World) -> None:
    with transaction(engine, world.a.id) as connection:
        assert {row.id for row in connection.execute(MEMBERSHIPS)} == ids(world, A_KEYS)
        # Cleared within the transaction: '' must not be cast to an integer.
        connection.execute(text("SELECT set_config('app.tenant_id', '', true)"))
        assert connection.execute(MEMBERSHIPS).all() == []
    # The next transaction on the same connection reads the setting back as ''
    # (not NULL): the case NULLIF exists for.
    with transaction(engine) as connection:
        assert connection.scalar(text("SELECT current_setting('app.tenant_id', true)")) == ""
        assert connection.execute(MEMBERSHIPS).all() == []


def test_a_force_sees_only_its_own_rows(engine: Engine, world: World) -> None:
    with transaction(engine, world.a.id) as connection:
        rows = connection.execute(MEMBERSHIPS).all()
        count = connection.scalar(text("SELECT count(*) FROM force_memberships"))
    assert {row.id for row in rows} == ids(world, A_KEYS)
    assert {row.tenant_id for row in rows} == {world.a.id}
    assert count == 3
    assert visible(engine, world.b.id) == ids(world, B_KEYS)


def test_scope_does_not_leak_to_the_next_transaction(engine: Engine, world: World) -> None:
    with transaction(engine, world.a.id) as connection:
        first_pid = connection.scalar(text("SELECT pg_backend_pid()"))
        assert {row.id for row in connection.execute(MEMBERSHIPS)} == ids(world, A_KEYS)
    with engine.connect() as connection:
        connection.execute(SCOPE, {"tenant": str(world.b.id), "user": ""})
        connection.rollback()
    with transaction(engine) as connection:
        assert connection.scalar(text("SELECT pg_backend_pid()")) == first_pid, "not the same connection"
        assert connection.scalar(text("SELECT current_setting('app.tenant_id', true)")) == ""
        assert connection.execute(MEMBERSHIPS).all() == []


# --- writing ----------------------------------------------------------------------


def test_insert_for_another_force_is_refused(engine: Engine, world: World) -> None:
    insert = text(
        "INSERT INTO force_memberships (id, tenant_id, user_id, role, created_at) "
        "VALUES (:id, :tenant, :user, 'officer', now())"
    )
    params = {"id": uuid.uuid4(), "tenant": world.b.id, "user": world.users["no_role"].id}
    with pytest.raises(DBAPIError) as refused, transaction(engine, world.a.id) as connection:
        connection.execute(insert, params)
    assert insufficient_privilege(refused.value)
    assert "row-level security" in str(refused.value.orig)
    assert visible(engine, world.b.id) == ids(world, B_KEYS)
    # The same row for the force in scope is accepted: the policy, not the role, refused.
    with transaction(engine, world.a.id) as connection:
        connection.execute(insert, {**params, "tenant": world.a.id})
    assert visible(engine, world.a.id) == ids(world, A_KEYS) | {params["id"]}


def test_update_and_delete_of_another_forces_rows_touch_nothing(engine: Engine, world: World) -> None:
    b_ids = [str(i) for i in ids(world, B_KEYS)]
    with transaction(engine, world.a.id) as connection:
        updated = connection.execute(
            text("UPDATE force_memberships SET role = 'officer' WHERE tenant_id = :b"),
            {"b": world.b.id},
        )
        deleted = connection.execute(
            text("DELETE FROM force_memberships WHERE id::text = ANY(:ids)"), {"ids": b_ids}
        )
        everything = connection.execute(text("DELETE FROM force_memberships WHERE true"))
        assert (updated.rowcount, deleted.rowcount, everything.rowcount) == (0, 0, 3)
        connection.rollback()
    with transaction(engine, world.b.id) as connection:
        roles = {row.id: row.role for row in connection.execute(MEMBERSHIPS)}
    assert roles == {
        world.memberships["b_force_admin"].id: "force_admin",
        world.memberships["b_officer"].id: "officer",
        world.memberships["b_supervisor"].id: "supervisor",
    }


def test_moving_own_row_to_another_force_is_refused(engine: Engine, world: World) -> None:
    with pytest.raises(DBAPIError) as refused, transaction(engine, world.a.id) as connection:
        connection.execute(
            text("UPDATE force_memberships SET tenant_id = :b WHERE tenant_id = :a"),
            {"a": world.a.id, "b": world.b.id},
        )
    assert insufficient_privilege(refused.value)
    assert visible(engine, world.a.id) == ids(world, A_KEYS)


# --- the role ---------------------------------------------------------------------


def test_app_role_is_not_superuser_bypassrls_or_owner(engine: Engine) -> None:
    with transaction(engine) as connection:
        role = connection.execute(text(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )).one()
        owned = connection.scalars(text(
            "SELECT tablename FROM pg_tables WHERE tableowner = current_user"
        )).all()
        owner = connection.scalar(text(
            "SELECT tableowner FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename = 'force_memberships'"
        ))
    assert role.rolname == APP_ROLE
    assert role.rolsuper is False
    assert role.rolbypassrls is False
    assert owned == []
    assert owner != APP_ROLE


# --- a user's own memberships in other forces -------------------------------------


def test_user_reads_own_memberships_elsewhere_but_cannot_change_them(
    engine: Engine, world: World
) -> None:
    b_officer = world.users["b_officer"].id
    b_officer_membership = world.memberships["b_officer"].id
    # With no force: exactly the user's own rows, in every force.
    assert visible(engine, None, b_officer) == {b_officer_membership}
    # In force A: A's rows and the user's own row in B, nothing else of B.
    assert visible(engine, world.a.id, b_officer) == ids(world, A_KEYS) | {b_officer_membership}
    with transaction(engine, world.a.id, b_officer) as connection:
        updated = connection.execute(
            text("UPDATE force_memberships SET role = 'force_admin' WHERE user_id = :u"),
            {"u": b_officer},
        )
        deleted = connection.execute(
            text("DELETE FROM force_memberships WHERE user_id = :u"), {"u": b_officer}
        )
        assert (updated.rowcount, deleted.rowcount) == (0, 0)
    with transaction(engine, world.b.id) as connection:
        role = connection.scalar(
            text("SELECT role FROM force_memberships WHERE user_id = :u"), {"u": b_officer}
        )
    assert role == "officer"


# --- the audit log ----------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'rewritten'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
    ids=["update", "delete", "truncate"],
)
def test_app_role_cannot_rewrite_the_audit_log(engine: Engine, world: World, statement: str) -> None:
    before = audit_actions(engine, world.a.id)
    assert before, "the world should have audit events in force A"
    with pytest.raises(DBAPIError) as refused, transaction(engine, world.a.id) as connection:
        connection.execute(text(statement))
    assert insufficient_privilege(refused.value)
    assert "permission denied" in str(refused.value.orig)
    assert audit_actions(engine, world.a.id) == before


def audit_actions(engine: Engine, tenant_id: int | None) -> list[tuple[Any, ...]]:
    with transaction(engine, tenant_id) as connection:
        return [tuple(row) for row in connection.execute(
            text("SELECT id, tenant_id, action FROM audit_events ORDER BY id")
        )]


def all_audit_events(database: Any) -> list[tuple[Any, ...]]:
    """Every audit row, read as the cluster's superuser (who skips RLS)."""
    superuser = create_engine(make_url(database.admin_url).set(database=database.name))
    try:
        with superuser.connect() as connection:
            return [tuple(row) for row in connection.execute(
                text("SELECT id, tenant_id, action FROM audit_events ORDER BY id")
            )]
    finally:
        superuser.dispose()


def test_a_force_reads_only_its_own_audit_events(
    database: Any, engine: Engine, world: World
) -> None:
    everything = all_audit_events(database)
    assert {tenant for _, tenant, _ in everything} >= {world.a.id, world.b.id, None}
    for tenant_id in (world.a.id, world.b.id):
        seen = audit_actions(engine, tenant_id)
        assert seen == [row for row in everything if row[1] == tenant_id]
        assert [action for _, _, action in seen].count("membership.added") == 3
    # Events outside any force (forces synced, platform roles granted) are
    # read by no force, and nothing at all is read without one.
    assert audit_actions(engine, None) == []


def test_audit_events_are_appended_for_own_force_or_none_only(engine: Engine, world: World) -> None:
    insert = text(
        "INSERT INTO audit_events (id, occurred_at, tenant_id, action, details) "
        "VALUES (:id, now(), :tenant, 'test.event', '{}')"
    )
    with transaction(engine, world.a.id) as connection:
        connection.execute(insert, {"id": uuid.uuid4(), "tenant": world.a.id})
        connection.execute(insert, {"id": uuid.uuid4(), "tenant": None})
    with pytest.raises(DBAPIError) as refused, transaction(engine, world.a.id) as connection:
        connection.execute(insert, {"id": uuid.uuid4(), "tenant": world.b.id})
    assert insufficient_privilege(refused.value)
    assert [a for _, _, a in audit_actions(engine, world.a.id)].count("test.event") == 1
    assert [a for _, _, a in audit_actions(engine, world.b.id)].count("test.event") == 0
