"""``scoped()``: the block's own error comes out, and the transaction goes on in the previous scope."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from diversion.errors import FieldError
from diversion.extensions import db
from diversion.tenancy.context import current_scope, scoped
from tests.conftest import World
from tests.databases import postgres_admin_url

requires_postgresql = pytest.mark.skipif(postgres_admin_url() is None,
                                         reason="PostgreSQL only: set TEST_DATABASE_URL to run")


def _tenant_setting() -> str:
    return str(db.session.scalar(text("SELECT current_setting('app.tenant_id', true)")))


def test_a_database_failure_inside_scoped_comes_out_as_it_was(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        db.session.execute(text("SELECT 1"))  # a transaction is open
        # On PostgreSQL the failure aborts the transaction, so restoring the
        # scope there fails too; that must not take the failure's place.
        with pytest.raises(DBAPIError, match="no_such_table"), scoped(world.a.id):
            db.session.execute(text("SELECT * FROM no_such_table"))
        assert current_scope().tenant_id == world.b.id
        db.session.rollback()


@requires_postgresql
@pytest.mark.postgres
def test_after_a_refusal_inside_scoped_the_transaction_is_in_the_previous_scope(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        assert _tenant_setting() == str(world.b.id)
        seen: list[str] = []

        def refused() -> None:
            with scoped(world.a.id):
                seen.append(_tenant_setting())
                raise FieldError("reason", "Refused.")

        with pytest.raises(FieldError):
            refused()
        assert seen == [str(world.a.id)]
        assert _tenant_setting() == str(world.b.id)
        db.session.rollback()


@requires_postgresql
@pytest.mark.postgres
def test_a_savepoint_rolled_back_after_a_failed_block_is_in_the_previous_scope(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        db.session.execute(text("SELECT 1"))
        savepoints: list[Any] = []

        def failing() -> None:
            with scoped(world.a.id):
                savepoints.append(db.session.begin_nested())  # begun in force A's scope, then failed
                db.session.execute(text("SELECT * FROM no_such_table"))

        with pytest.raises(DBAPIError, match="no_such_table"):
            failing()
        (savepoint,) = savepoints
        # Rolling back to the savepoint brings back the settings it began with
        # (force A's); the scope in force is force B's, and so is the transaction.
        savepoint.rollback()
        assert current_scope().tenant_id == world.b.id
        assert _tenant_setting() == str(world.b.id)
        db.session.rollback()
