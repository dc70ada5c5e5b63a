"""Layer 2: the ORM guard filters every ORM statement by the force in scope.

It fails closed (``TenantNotSet``) when no force is set, and its
``before_flush`` listener stamps new rows and refuses writes to another
force's rows. On PostgreSQL row-level security sits underneath; where a
result alone could come from either layer, the tests also look at the SQL
the ORM sent, to show that the guard itself added the force.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, event, func, insert, select, update
from sqlalchemy.sql import Executable

from diversion.accounts.models import ForceMembership, PlatformGrant, Role, User
from diversion.catalogue.models import Provider
from diversion.extensions import db
from diversion.tenancy.context import TenantNotSet, scoped
from diversion.tenancy.guard import ALL_TENANTS, CrossTenantWrite
from diversion.tenancy.models import Tenant
from tests.conftest import World

A_KEYS = ("a_force_admin", "a_officer", "a_supervisor")
B_KEYS = ("b_force_admin", "b_officer", "b_supervisor")
# The guard's criterion as it appears in the SQL: a bound parameter
# compared with the table's tenant column (aliases included).
TENANT_CRITERION = re.compile(r"force_memberships(_\d+)?\.tenant_id = ", re.IGNORECASE)


def membership_ids(world: World, keys: tuple[str, ...]) -> set[Any]:
    return {world.memberships[key].id for key in keys}


@contextmanager
def sent_sql() -> Iterator[list[str]]:
    """Collect the SQL touching force_memberships that the app's engine sends.

    (The row-level security ``set_config`` at each begin is left out.)
    """
    statements: list[str] = []

    def collect(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "force_memberships" in statement:
            statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", collect)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", collect)


def world_roles(world: World, keys: tuple[str, ...]) -> dict[Any, Role]:
    """The roles the world gave: key ``a_officer`` holds ``officer``."""
    return {world.memberships[key].id: Role(key.split("_", 1)[1]) for key in keys}


def roles_by_id(tenant_id: int) -> dict[Any, Role]:
    with scoped(tenant_id):
        rows = db.session.execute(select(ForceMembership.id, ForceMembership.role)).all()
    return {row.id: row.role for row in rows}


def roles_by_id_in(app: Flask, tenant_id: int) -> dict[Any, Role]:
    with app.app_context():
        return roles_by_id(tenant_id)


def db_is_postgresql(app: Flask) -> bool:
    return str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql")


# --- no force in scope: fail closed ------------------------------------------------

UNSCOPED_STATEMENTS = {
    "select entity": lambda: select(ForceMembership),
    "select column": lambda: select(ForceMembership.role),
    "count from FROM only": lambda: select(func.count()).select_from(ForceMembership),
    "join from a global table": lambda: select(User).join(
        ForceMembership, ForceMembership.user_id == User.id
    ),
    "bulk update": lambda: update(ForceMembership).values(role=Role.OFFICER),
    "bulk delete": lambda: delete(ForceMembership),
}


@pytest.mark.parametrize("make_statement", UNSCOPED_STATEMENTS.values(), ids=UNSCOPED_STATEMENTS)
def test_orm_statement_without_force_raises(app: Flask, world: World, make_statement: Any) -> None:
    statement: Executable = make_statement()
    with app.app_context(), sent_sql() as sent:
        with pytest.raises(TenantNotSet):
            db.session.execute(statement)
        assert sent == [], "SQL reached the database"
        db.session.rollback()
    # Nothing was changed by the refused writes.
    assert roles_by_id_in(app, world.a.id) == world_roles(world, A_KEYS)
    assert roles_by_id_in(app, world.b.id) == world_roles(world, B_KEYS)


def test_get_without_force_raises(app: Flask, world: World) -> None:
    with app.app_context(), pytest.raises(TenantNotSet):
        db.session.get(ForceMembership, world.memberships["a_officer"].id)


def test_flush_of_new_row_without_force_raises(app: Flask, world: World) -> None:
    with app.app_context():
        db.session.add(
            ForceMembership(tenant_id=world.a.id, user_id=world.users["no_role"].id, role=Role.OFFICER)
        )
        with pytest.raises(TenantNotSet):
            db.session.flush()
        db.session.rollback()


# --- force A in scope: only A's rows ----------------------------------------------


def test_scoped_list_and_count_see_only_own_force(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id), sent_sql() as sent:
        listed = db.session.scalars(select(ForceMembership)).all()
        counted = db.session.scalar(select(func.count()).select_from(ForceMembership))
        joined = db.session.scalars(
            select(User.email).join(ForceMembership, ForceMembership.user_id == User.id)
        ).all()
    assert {m.id for m in listed} == membership_ids(world, A_KEYS)
    assert {m.tenant_id for m in listed} == {world.a.id}
    assert counted == 3
    assert sorted(joined) == sorted(world.email(key) for key in A_KEYS)
    # The filter is the guard's, not only row-level security's.
    assert len(sent) == 3
    assert all(TENANT_CRITERION.search(sql) for sql in sent), sent
    with app.app_context(), scoped(world.b.id):
        listed_b = db.session.scalars(select(ForceMembership)).all()
    assert {m.id for m in listed_b} == membership_ids(world, B_KEYS)


def test_a_statement_built_once_is_filtered_afresh_in_each_scope(app: Flask, world: World) -> None:
    """The guard keeps its work on a statement for the statement's next run: the same object
    run for force A, then B, then A again, then with no force, sees each force's rows alone,
    and is refused with none."""
    statement = select(ForceMembership.id, ForceMembership.tenant_id)
    with app.app_context():
        for tenant, keys in ((world.a, A_KEYS), (world.b, B_KEYS), (world.a, A_KEYS)):
            with scoped(tenant.id), sent_sql() as sent:
                rows = db.session.execute(statement).all()
            assert {row.id for row in rows} == membership_ids(world, keys)
            assert {row.tenant_id for row in rows} == {tenant.id}
            assert len(sent) == 1
            assert TENANT_CRITERION.search(sent[0]), sent
        with sent_sql() as sent, pytest.raises(TenantNotSet):
            db.session.execute(statement)
        assert sent == []
        db.session.rollback()


def test_get_of_other_forces_row_in_fresh_session_returns_none(app: Flask, world: World) -> None:
    b_id = world.memberships["b_officer"].id
    with app.app_context(), scoped(world.a.id), sent_sql() as sent:
        assert db.session.get(ForceMembership, b_id) is None
    assert len(sent) == 1
    assert TENANT_CRITERION.search(sent[0]), sent
    # The id is real: its own force finds it.
    with app.app_context(), scoped(world.b.id):
        found = db.session.get(ForceMembership, b_id)
        assert found is not None
        assert found.tenant_id == world.b.id


def test_bulk_update_and_delete_leave_other_force_untouched(app: Flask, world: World) -> None:
    with app.app_context():
        b_before = roles_by_id(world.b.id)
        assert b_before == world_roles(world, B_KEYS)
        with scoped(world.a.id), sent_sql() as sent:
            updated = db.session.execute(update(ForceMembership).values(role=Role.SUPERVISOR))
            deleted = db.session.execute(
                delete(ForceMembership).where(
                    ForceMembership.id.in_(
                        [world.memberships["a_officer"].id, world.memberships["b_officer"].id]
                    )
                )
            )
            db.session.commit()
        assert updated.rowcount == 3
        assert deleted.rowcount == 1
        assert [sql.split()[0].upper() for sql in sent[:2]] == ["UPDATE", "DELETE"]
        assert all(TENANT_CRITERION.search(sql) for sql in sent[:2]), sent
    with app.app_context():
        assert roles_by_id(world.b.id) == b_before
        assert roles_by_id(world.a.id) == {
            world.memberships["a_force_admin"].id: Role.SUPERVISOR,
            world.memberships["a_supervisor"].id: Role.SUPERVISOR,
        }


def test_bulk_insert_rows_get_the_force_in_scope_and_another_forces_are_refused(
        app: Flask, world: World) -> None:
    no_role = world.users["no_role"].id
    with app.app_context(), scoped(world.a.id):
        with pytest.raises(CrossTenantWrite):
            db.session.execute(insert(ForceMembership), [
                {"user_id": no_role, "role": Role.OFFICER},
                {"tenant_id": world.b.id, "user_id": no_role, "role": Role.OFFICER},
            ])
        db.session.rollback()
        db.session.execute(insert(ForceMembership), [{"user_id": no_role, "role": Role.OFFICER}])
        db.session.commit()
    with app.app_context():
        assert len(roles_by_id(world.a.id)) == len(A_KEYS) + 1
        assert roles_by_id(world.b.id) == world_roles(world, B_KEYS)


def test_bulk_update_by_primary_key_is_refused(app: Flask, world: World) -> None:
    # It would ignore the force criteria: B's row, named by its key, from A's scope.
    b_officer = world.memberships["b_officer"].id
    with app.app_context(), scoped(world.a.id):
        with pytest.raises(CrossTenantWrite):
            db.session.execute(update(ForceMembership), [{"id": b_officer, "role": Role.FORCE_ADMIN}])
        db.session.rollback()
    with app.app_context():
        assert roles_by_id(world.b.id) == world_roles(world, B_KEYS)


# --- writes: before_flush ----------------------------------------------------------


def test_new_row_for_other_force_is_refused(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        db.session.add(
            ForceMembership(tenant_id=world.b.id, user_id=world.users["no_role"].id, role=Role.OFFICER)
        )
        with pytest.raises(CrossTenantWrite):
            db.session.flush()
        db.session.rollback()
    with app.app_context():
        assert roles_by_id(world.b.id) == world_roles(world, B_KEYS)


def test_moving_a_loaded_row_to_another_force_is_refused(app: Flask, world: World) -> None:
    a_id = world.memberships["a_officer"].id
    with app.app_context(), scoped(world.a.id):
        membership = db.session.get(ForceMembership, a_id)
        assert membership is not None
        membership.tenant_id = world.b.id
        with pytest.raises(CrossTenantWrite):
            db.session.flush()
        db.session.rollback()
    with app.app_context(), scoped(world.a.id):
        assert db.session.get(ForceMembership, a_id).tenant_id == world.a.id


def _load_b_row_across_forces(world: World) -> ForceMembership:
    # The user id lets row-level security show a user's own memberships in
    # other forces (as ``workspaces`` does); on SQLite only the bypass matters.
    b_officer = world.users["b_officer"].id
    row = db.session.scalars(
        select(ForceMembership)
        .where(ForceMembership.user_id == b_officer)
        .execution_options(**{ALL_TENANTS: True})
    ).one()
    assert row.tenant_id == world.b.id
    return row


def test_deleting_other_forces_row_loaded_with_bypass_is_refused(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id, world.users["b_officer"].id):
        db.session.delete(_load_b_row_across_forces(world))
        with pytest.raises(CrossTenantWrite):
            db.session.flush()
        db.session.rollback()
    with app.app_context():
        assert roles_by_id(world.b.id) == world_roles(world, B_KEYS)


def test_changing_other_forces_row_loaded_with_bypass_is_refused(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id, world.users["b_officer"].id):
        _load_b_row_across_forces(world).role = Role.FORCE_ADMIN
        with pytest.raises(CrossTenantWrite):
            db.session.flush()
        db.session.rollback()
    with app.app_context():
        assert roles_by_id(world.b.id)[world.memberships["b_officer"].id] == Role.OFFICER


def test_new_row_without_tenant_gets_the_force_in_scope(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        membership = ForceMembership(user_id=world.users["no_role"].id, role=Role.OFFICER)
        assert membership.tenant_id is None
        db.session.add(membership)
        db.session.flush()
        assert membership.tenant_id == world.a.id
        new_id = membership.id
        db.session.commit()
    with app.app_context():
        assert set(roles_by_id(world.a.id)) == membership_ids(world, A_KEYS) | {new_id}
        assert set(roles_by_id(world.b.id)) == membership_ids(world, B_KEYS)


def test_bypass_is_explicit_and_skips_only_the_guard(app: Flask, world: World) -> None:
    statement = select(ForceMembership.id).execution_options(**{ALL_TENANTS: True})
    with app.app_context(), sent_sql() as sent:
        ids = set(db.session.scalars(statement))
    assert not TENANT_CRITERION.search(sent[0]), sent
    if db_is_postgresql(app):
        # Row-level security still binds: no force and no user, no rows.
        assert ids == set()
    else:
        assert ids == membership_ids(world, A_KEYS + B_KEYS)


# --- global tables need no force --------------------------------------------------


def test_global_tables_work_without_a_force(app: Flask, world: World) -> None:
    with app.app_context():
        tenants = db.session.scalars(select(Tenant.slug)).all()
        users = db.session.scalar(select(func.count()).select_from(User))
        user = db.session.get(User, world.users["a_officer"].id)
        grants = db.session.scalars(select(PlatformGrant.role)).all()
        providers = db.session.scalars(select(Provider.slug)).all()
        assert user is not None
        assert user.email == world.email("a_officer")
        db.session.execute(update(User).where(User.id == user.id).values(name="Renamed"))
        db.session.commit()
    assert {world.a.slug, world.b.slug} <= set(tenants)
    assert users == len(world.users)
    assert sorted(grants) == sorted([Role.PLATFORM_ADMIN, Role.NATIONAL_LEAD])
    assert "cranstoun" in providers  # from the shared catalogue file
    with app.app_context():
        assert db.session.get(User, world.users["a_officer"].id).name == "Renamed"
