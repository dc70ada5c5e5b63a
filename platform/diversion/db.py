"""Declarative base, constraint naming convention and the tenant mixin."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    MetaData,
    UniqueConstraint,
    Uuid,
    any_,
    bindparam,
    event,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, QueryableAttribute, declared_attr, mapped_column
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Times are stored in UTC and shown in London's time.
LONDON = ZoneInfo("Europe/London")
# Session.info: the session's transaction has written something (a request that reads commits only then).
WROTE = "diversion_wrote"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class _Ids(threading.local):
    """Each thread's stock of random bits for new keys (``new_id``)."""

    def __init__(self) -> None:
        self.stock: list[int] = []


_IDS = _Ids()
os.register_at_fork(after_in_child=_IDS.stock.clear)  # a child never hands out its parent's keys
ID_STOCK = 4096
_RANDOM_BITS = 74  # of a version 7 UUID: 12 after the version, 62 after the variant


def new_id() -> uuid.UUID:
    """A new row key: a version 7 UUID (RFC 9562), the millisecond it was made
    followed by 74 random bits. Unguessable as a version 4 is; made in time
    order, so that each index on keys grows at its end (a million keys written
    at once touch a few pages, not a page each). The random bits are read from
    the system ``ID_STOCK`` keys at a time: each read lets go of the
    interpreter's lock, which a bulk write would then wait for behind the
    thread writing its previous batch."""
    stock = _IDS.stock
    if not stock:
        data = os.urandom(10 * ID_STOCK)
        stock.extend(int.from_bytes(data[start:start + 10]) >> (80 - _RANDOM_BITS)
                     for start in range(0, len(data), 10))
    bits = stock.pop()
    high, low = bits >> 62, bits & ((1 << 62) - 1)
    return uuid.UUID(int=(time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | high << 64 | 0b10 << 62 | low)


TENANT_SCOPED = "tenant_scoped"  # Table.info key marking force-owned tables


class TenantScoped:
    """Mixin for every row owned by one force.

    Gives the row an unguessable UUID key (``new_id``), ``tenant_id NOT NULL`` and
    ``UNIQUE (tenant_id, id)`` so that children can point at it with a
    composite foreign key ``(tenant_id, parent_id)``: the database itself then
    refuses a link between two forces. The ORM guard (``tenancy.guard``) and
    PostgreSQL row-level security (``tenancy.rls``) find tables through this
    mixin. The unique constraint leads with ``tenant_id`` and so doubles as the
    tenant index.

    A leaf (``__tenant_leaf__``: a table no other row points at, such as a
    referral's steps) has no such constraint: it would be a second index of
    every row for nothing. Its own indexes lead with ``tenant_id``.

    A child (``__tenant_from_parent__``: a row that must have a force-owned
    parent, such as an encounter's person) has no foreign key of its own from
    ``tenant_id`` to ``tenants``: its composite foreign key, on columns that
    cannot be empty, already finds its force through the parent, whose own key
    to ``tenants`` holds (and, being ``RESTRICT``, keeps the force while the
    parent is there). A second key would be a second check of every row
    written, for nothing.
    """

    __tenant_scoped__ = True
    __tenant_leaf__ = False
    __tenant_from_parent__ = False

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:  # noqa: N805 - declared_attr takes the class
        if cls.__tenant_from_parent__:
            return mapped_column(nullable=False)
        return mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False)

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool] | None:
        """Which of these rows staff of ``provider_id`` may read (provider scope).

        None, the default, means none: the ORM guard refuses the query outright
        (fail closed). Referrals and the rows hanging off them override this.
        """
        return None

    def provider_may_write(self, provider_id: int) -> bool:
        """Whether staff of ``provider_id`` may create or change this row (default: no)."""
        return False

    @declared_attr.directive
    def __table_args__(cls) -> tuple[object, ...]:  # noqa: N805
        return (
            *(() if cls.__tenant_leaf__ else (UniqueConstraint("tenant_id", "id"),)),
            *getattr(cls, "__tenant_table_args__", ()),
            {"info": {TENANT_SCOPED: True}},
        )


class ProviderOwned:
    """Mixin for a provider's own rows (its API tokens, its webhook endpoint and secret).

    These rows belong to no force, and hold secrets, so they are reached only
    with their provider in scope (``tenancy.context.provider_scoped``): the
    ORM guard (``tenancy.guard``) filters them to that provider and refuses
    them outright when no provider is in scope, and PostgreSQL row-level
    security says the same with ``app.provider_id``
    (``tenancy.rls.provider_owned_sql``).
    """

    provider_id: Mapped[int]


def among(column: ColumnElement[Any] | QueryableAttribute[Any], values: list[Any],
          dialect: Dialect) -> ColumnElement[bool]:
    """``column IN values``, sent to PostgreSQL as one array (``column = ANY(:values)``): a
    statement of thousands of keys is then the same text each time, where an IN list is written
    out key by key and parsed again on every run. Elsewhere (SQLite) a plain IN."""
    if dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.expression.type)))
    return column.in_(values)


def among_bound(column: ColumnElement[Any] | QueryableAttribute[Any], name: str,
                dialect_name: str) -> ColumnElement[bool]:
    """``among``, for a statement built once (for the dialect named): the values are bound under
    ``name`` when it runs."""
    if dialect_name == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.expression.type)))
    return column.in_(bindparam(name, expanding=True))


class _SkipConflicts(ClauseElement):
    """``ON CONFLICT DO NOTHING``, with no target: skip a row that any unique key already holds."""

    __visit_name__ = "skip_conflicts"
    _traverse_internals: list[Any] = []  # nothing varies: the class alone is its cache key


@compiles(_SkipConflicts)
def _skip_conflicts(_element: _SkipConflicts, _compiler: Any, **_kw: Any) -> str:
    return "ON CONFLICT DO NOTHING"


class _InsertSkippingConflicts(Insert):
    """``INSERT ... ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite alike (``insert_skipping_conflicts``).

    The dialects' own ``insert(...).on_conflict_do_nothing()`` statements are never cached by
    SQLAlchemy (its issue 10445): each run compiled them again, about 5% of an intake's time.
    This one is core's INSERT with the clause in the place the dialects put theirs, before any
    ``RETURNING``, and keeps core's cache key."""

    inherit_cache = True

    def __init__(self, table: Any) -> None:
        super().__init__(table)
        self._post_values_clause = _SkipConflicts()


def insert_skipping_conflicts(table: Any) -> Insert:
    """An INSERT (of values, or ``from_select``) that skips each row a unique key of ``table`` already
    holds; on PostgreSQL, one that another transaction holds uncommitted is waited for first."""
    return _InsertSkippingConflicts(table)


def tenant_foreign_key(parent_table: str, column: str, *, ondelete: str = "RESTRICT") -> ForeignKeyConstraint:
    """A composite foreign key ``(tenant_id, column) -> parent (tenant_id, id)``."""
    return ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{parent_table}.tenant_id", f"{parent_table}.id"],
        ondelete=ondelete,
    )



def _get_byte(data: bytes | None, offset: int | None) -> int | None:
    """PostgreSQL's ``get_byte`` for SQLite: the byte at ``offset`` (from 0), or NULL outside the data."""
    if data is None or offset is None or not 0 <= offset < len(data):
        return None
    return data[offset]


def _set_up_sqlite(dbapi_connection: object, _record: object) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        dbapi_connection.create_function("get_byte", 2, _get_byte, deterministic=True)


def enforce_sqlite_foreign_keys() -> None:
    """SQLite ignores foreign keys unless asked, per connection; ask on every one. Each connection
    also learns ``get_byte``, which PostgreSQL has, so that SQL reading packed facts runs on both."""
    if not event.contains(Engine, "connect", _set_up_sqlite):
        event.listen(Engine, "connect", _set_up_sqlite)


_CHECKED_IN_AT = "diversion_checked_in_at"  # a pooled connection's record: when it was last given back


def ping_when_idle(engine: Engine, after_seconds: float) -> None:
    """Check a pooled connection before use only when it has lain idle for ``after_seconds``
    (a server restart or a firewall may have closed it meanwhile), not before every use as
    ``pool_pre_ping`` would: a busy server's connections are in use all the time, and a ping
    per request is a round trip per request. A connection that fails its ping is thrown away
    and the pool takes or opens another (``DisconnectionError``); one that breaks in use
    anyway is answered as an outage (``outage``), and the pool starts afresh."""
    import time

    from sqlalchemy import exc

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN_AT)
        if since is None or time.monotonic() - since < after_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            # The ping began a transaction (the driver's default): end it, so that the connection is
            # handed out as it lay in the pool (one asked for in autocommit cannot be, inside one).
            dbapi_connection.rollback()
        except Exception as error:  # any failure of a ping means the connection is gone
            raise exc.DisconnectionError("a pooled connection idle too long no longer answers") from error

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)
