"""``db.among``: ``IN`` a list of keys, sent to PostgreSQL as one array."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import Uuid, literal, select, union_all

from diversion.db import among, new_id
from diversion.extensions import db


def _keys(*keys: Any) -> Any:
    """Rows of one column, ``key``: the keys given."""
    return union_all(*(select(literal(key, Uuid).label("key")) for key in keys)).subquery("keys")


def test_among_finds_the_rows_whose_key_is_in_the_list(app: Flask) -> None:
    keys = [new_id() for _ in range(5)]
    table = _keys(*keys)
    with app.app_context():
        dialect = db.session.get_bind().dialect
        asked = [keys[1], keys[3], new_id()]
        found = db.session.scalars(select(table.c.key).where(among(table.c.key, asked, dialect))).all()
        assert sorted(found) == sorted([keys[1], keys[3]])
        assert db.session.scalars(select(table.c.key).where(among(table.c.key, [new_id()], dialect))).all() == []


def test_on_postgresql_the_statement_is_the_same_whatever_the_number_of_keys(app: Flask) -> None:
    table = _keys(new_id(), new_id())
    with app.app_context():
        dialect = db.session.get_bind().dialect

        def sent(count: int) -> str:
            statement = select(table.c.key).where(among(table.c.key, [new_id() for _ in range(count)], dialect))
            return str(statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True}))

        if dialect.name == "postgresql":
            assert sent(2) == sent(2000)
            assert "ANY" in sent(2)
        else:
            assert sent(2) != sent(3)  # a plain IN, key by key
