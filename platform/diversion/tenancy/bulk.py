"""Writing many force-owned rows at once: the bulk path of imports.

On PostgreSQL a batch is COPYed (in binary, typed as the columns) into a
temporary table shaped like its table (made once per transaction, dropped
at its end, emptied after each batch), then moved across by one ``INSERT ... SELECT``: row-level security
checks every row as it checks any INSERT (``COPY`` straight into a table
under row-level security is refused), and the foreign keys and indexes do
their usual work. That runs in a thread of its own (``Batches``), so that an
import works out its next batch while the database takes in the last.
Elsewhere (SQLite) a batch is one ``executemany``.

The ORM guard does not see these rows, so ``insert_rows`` does its part
itself: every row is stamped with the force in scope, and a row of another
force is refused before anything is written.

A request that makes a few new rows whole (an intake: its person, encounter,
decision, referral, feed entry and audit events) writes each with
``insert_object`` or ``insert_values``: stamped the same way, the object
then kept in the session as a row read, without the unit of work's
bookkeeping. The row waits for whatever the session sends next and goes
just before it (a statement, a flush, a savepoint, the commit, a change of
scope); rows queued one after another go as one statement on PostgreSQL,
or inside the next statement when it is marked to carry them
(``carrying_queued_rows``).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from psycopg import sql
from sqlalchemy import Column, Connection, Table, bindparam, event, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, make_transient_to_detached, scoped_session
from sqlalchemy.orm.base import instance_state
from sqlalchemy.sql.dml import Insert

from diversion.db import WROTE, Base, TenantScoped, insert_skipping_conflicts
from diversion.tenancy.context import current_scope, require_tenant_id
from diversion.tenancy.guard import CrossTenantWrite, OutsideProviderScope

# Allocations between two looks of Python's cyclic collector at its youngest objects, while
# bulk work runs (``collecting_rarely``); Python's own default is 700.
YOUNG_COLLECTION_EVERY = 100_000

@dataclass(frozen=True, eq=False)  # one per model and database (``_plan``): known by identity
class _Plan:
    """How a model's rows are written: its table, and the columns written (all but those the server
    fills in: server defaults and a generated key), each with its attribute, its conversion to what
    the driver takes and its default; the INSERT of one row (one that skips a row a unique key
    already holds, for ``insert_values(..., skipping_conflicts=True)``); and the columns a row may
    leave out when None: those with no default of their own, whose None is sent as NULL (not as
    JSON's ``null``, say)."""

    table: Table
    names: list[str]
    keys: list[str]
    processors: list[Callable[[Any], Any] | None]
    defaults: list[Callable[[], Any] | None]
    insert_one: Any
    null_when_none: frozenset[str]


_PLANS: dict[tuple[type[Base], str, bool], _Plan] = {}


def _plan(model: type[Base], dialect: Dialect, *, skipping_conflicts: bool = False) -> _Plan:
    plan = _PLANS.get((model, dialect.name, skipping_conflicts))
    if plan is None:
        table = model.__table__
        if not isinstance(table, Table):
            raise TypeError(f"{model.__name__} is not mapped to one table")
        columns: list[Column[Any]] = [c for c in table.columns
                                      if c.server_default is None and c is not table.autoincrement_column]
        processors: list[Callable[[Any], Any] | None] = [c.type.bind_processor(dialect) for c in columns]
        plan = _PLANS[model, dialect.name, skipping_conflicts] = _Plan(
            table, [c.name for c in columns], [model.__mapper__.get_property_by_column(c).key for c in columns],
            processors, [_default_of(c) for c in columns],
            insert_skipping_conflicts(table) if skipping_conflicts else insert(table),
            frozenset(c.name for c, process in zip(columns, processors, strict=True)
                      if c.default is None and (process is None or process(None) is None)))
    return plan


def _default_of(column: Column[Any]) -> Callable[[], Any] | None:
    default = column.default
    if default is None:
        return None
    if default.is_scalar:  # type: ignore[attr-defined]
        value = default.arg  # type: ignore[attr-defined]
        return lambda: value
    if default.is_callable:  # type: ignore[attr-defined]
        make = default.arg  # type: ignore[attr-defined]  # SQLAlchemy wraps it to take a context
        return lambda: make(None)
    raise ValueError(f"{column.table.name}.{column.name}: a default the bulk path cannot compute")


@contextmanager
def collecting_rarely() -> Iterator[None]:
    """While the block runs, Python's cyclic collector looks for garbage after every
    ``YOUNG_COLLECTION_EVERY`` allocations rather than every 700; its thresholds are put back after.

    Bulk work makes millions of short-lived rows (dicts, tuples, keys) that hold no cycles and are
    freed with their batch; each look found nothing, and the looks took a seventh of an import's
    time. The collector still runs, so a cycle made meanwhile is still freed."""
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _stamped(model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Every row stamped with the force in scope; refuses a row of another force
    (``CrossTenantWrite``) and provider staff, who never write in bulk."""
    if current_scope().provider_id is not None:
        raise OutsideProviderScope(f"Provider staff cannot create {model.__name__} rows in bulk.")
    tenant_id = require_tenant_id()
    for row in rows:
        if row.setdefault("tenant_id", tenant_id) != tenant_id:
            raise CrossTenantWrite(f"Refusing to create a {model.__name__} for another force.")


Rows = Sequence[dict[str, Any]]


class Batches:
    """Batches of rows for several tables, each written whole (``write``) in the
    session's transaction, in the order given (parents before children).

    On PostgreSQL a batch's COPY and INSERT ... SELECT run in a thread of their
    own on the session's connection, so that the caller works out its next batch
    in Python while the database takes in this one. The caller must not use the
    session until ``wait`` (which ``write`` calls first) returns; a failure of
    the batch is raised there. Elsewhere (SQLite) ``write`` writes at once.
    """

    def __init__(self, session: Session | scoped_session[Any]) -> None:
        self.session = session
        self._thread: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def write(self, batch: Sequence[tuple[type[Base], Rows]]) -> None:
        """Write every table's rows (``insert_rows``), once the batch before is in."""
        self.wait()
        copies = _prepared(self.session, batch)
        if copies is not None:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk")
            self._pending = self._thread.submit(_copy_across, *copies)

    def wait(self) -> None:
        """Until the batch being written is in; raises what went wrong with it."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the last batch and let the thread go (also when that batch failed)."""
        try:
            self.wait()
        finally:
            if self._thread is not None:
                self._thread.shutdown()
                self._thread = None


_Copy = tuple[sql.Composable, str, sql.Composable, list[tuple[str, Callable[[Any], Any] | None,
                                                         Callable[[], Any] | None]], Rows]


def _copy_of(model: type[Base], rows: Rows, dialect: Dialect) -> _Copy:
    """What ``_copy_across`` needs of a table's rows: its name, its staging table's, the
    columns, and each column's key, conversion and default (when the rows leave it out)."""
    plan = _plan(model, dialect)
    given = rows[0].keys()
    columns = [(key, process, default if key not in given else None)
               for key, process, default in zip(plan.keys, plan.processors, plan.defaults, strict=True)]
    return (sql.Identifier(plan.table.name), f"bulk_{plan.table.name}",
            sql.SQL(", ").join(map(sql.Identifier, plan.names)), columns, rows)


# The types each staging table's columns are sent as, by connection (``_sent_as``).
_SENT_AS: WeakKeyDictionary[Any, dict[str, list[int]]] = WeakKeyDictionary()


def _sent_as(cursor: Any, staging: str) -> list[int]:
    """The types (oids) in which a binary COPY sends the staging table's columns, in order: each
    column's own, but json as text (its binary form is its text: the rows hold it serialised)."""
    known = _SENT_AS.setdefault(cursor.connection, {})
    if staging not in known:
        types = cursor.connection.adapters.types
        cursor.execute("SELECT atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                       "AND NOT attisdropped ORDER BY attnum", [staging])
        known[staging] = [types["text"].oid if oid == types["json"].oid else oid for (oid,) in cursor.fetchall()]
    return known[staging]


def _copy_across(driver: Any, copies: list[_Copy]) -> None:
    """Each table's rows COPYed into its staging table and moved across by INSERT ... SELECT.
    The COPY is binary: sent as the columns' types, the values need no quoting or parsing as text
    (two and a half times as fast to send as text)."""
    with driver.cursor() as cursor:
        for target, name, listed, columns, rows in copies:
            staging = sql.Identifier(name)
            # The columns' types and no constraint: the table's own are checked on the way across.
            cursor.execute(sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ON COMMIT DROP "
                                   "AS SELECT {} FROM {} WITH NO DATA").format(staging, listed, target))
            processed = [(place, process) for place, (_, process, _) in enumerate(columns) if process is not None]
            types = _sent_as(cursor, name)
            with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(staging, listed)) as copy:
                copy.set_types(types)
                for row in rows:
                    values = [row.get(key) if default is None else default() for key, _, default in columns]
                    for place, process in processed:
                        if (value := values[place]) is not None:
                            values[place] = process(value)
                    copy.write_row(values)
            cursor.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(target, listed, listed, staging))
            cursor.execute(sql.SQL("TRUNCATE {}").format(staging))


def insert_rows(session: Session | scoped_session[Any], model: type[Base], rows: Rows) -> None:
    """Write ``rows`` (column values by attribute name, each row with the same keys)
    into ``model``'s table, in the session's transaction; columns a row leaves out
    take their defaults. Refuses rows of another force, or with no force in scope."""
    copies = _prepared(session, [(model, rows)])
    if copies is not None:
        _copy_across(*copies)


def _prepared(session: Session | scoped_session[Any],
              batch: Sequence[tuple[type[Base], Rows]]) -> tuple[Any, list[_Copy]] | None:
    """The batch checked (every table's rows, before any is written) and, on PostgreSQL,
    what ``_copy_across`` needs to write it; elsewhere it is written here and None returned."""
    batch = [(model, rows) for model, rows in batch if rows]
    for model, rows in batch:
        if getattr(model, "__tenant_scoped__", False):
            _stamped(model, rows)
    session.flush()  # what the session holds goes first: these rows may point at it
    send_queued(session)
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        for model, rows in batch:
            session.execute(insert(model).execution_options(render_nulls=True), list(rows))
        return None
    return connection.connection.driver_connection, [_copy_of(model, rows, connection.dialect)
                                                     for model, rows in batch]


def insert_object(session: Session | scoped_session[Any], obj: Base) -> None:
    """Write a new object's row (``insert_values``) and keep the object in the session as written
    (as if it had been read): a row made whole in one request needs none of the unit of work's
    bookkeeping, which costs several times the INSERT. Columns the object leaves unset take their
    defaults (or NULL), set on it too; a column the server fills is read when first used. Later
    changes to the object are flushed as usual, after its row.

    Refuses what ``insert_values`` refuses. In provider scope the object is added to the unit
    instead, whose flush checks what provider staff may write."""
    if current_scope().provider_id is not None:
        session.add(obj)
        return
    state = instance_state(obj)
    insert_values(session, type(obj), state.dict)
    make_transient_to_detached(obj)
    session.add(obj)


def insert_values(session: Session | scoped_session[Any], model: type[Base], values: dict[str, Any], *,
                  skipping_conflicts: bool = False) -> None:
    """Write one new row of ``model`` (``values`` by attribute name; those left out take their
    defaults, or NULL, filled into ``values``), in the session's transaction; ``skipping_conflicts``:
    unless a unique key of the table already holds it (no error then).

    The row waits for what the session sends next, and goes first: the next statement, flush,
    savepoint, commit or change of scope. The rows of consecutive calls go as one statement on
    PostgreSQL (``_chained``), so that the person, encounter, decision and audit event of an intake
    cost one round trip; a statement that reads none of them may carry them (``carrying_queued_rows``).
    What the session holds is flushed before the row is queued: the row may point at it.

    A force-owned row is stamped with the force in scope; refuses one of another force
    (``CrossTenantWrite``), no force in scope (``TenantNotSet``) and provider staff
    (``OutsideProviderScope``)."""
    if issubclass(model, TenantScoped):
        if values.get("tenant_id") is None:
            values.pop("tenant_id", None)
        _stamped(model, [values])
    session.flush()
    connection = session.connection()
    plan = _plan(model, connection.dialect, skipping_conflicts=skipping_conflicts)
    row = {}
    for name, key, default in zip(plan.names, plan.keys, plan.defaults, strict=True):
        if key not in values:
            values[key] = None if default is None else default()
        row[name] = values[key]
    queued: _Queued = session.info.setdefault(_QUEUED, _Queued(connection))
    queued.rows.append((plan, row))
    session.info[WROTE] = True
    if len(queued.rows) == SENT_TOGETHER_AT_MOST:  # a loop of rows: sent in statements of a bounded size
        send_queued(session)


_QUEUED = "diversion_queued_rows"  # Session.info: rows insert_values made that wait to be sent
# Rows in one statement at most: a request makes a handful; a loop's rows go by this many, in statements
# of a few shapes that PostgreSQL and SQLAlchemy keep prepared.
SENT_TOGETHER_AT_MOST = 8


@dataclass
class _Queued:
    """Rows waiting to be sent, on the connection of the transaction they were made in."""

    connection: Connection
    rows: list[tuple[_Plan, dict[str, Any]]] = field(default_factory=list)


def send_queued(session: Session | scoped_session[Any]) -> None:
    """Send the rows ``insert_values`` queued in the session, if any, before anything else it sends."""
    queued: _Queued | None = session.info.pop(_QUEUED, None)
    if queued is None or not queued.rows:
        return
    connection, rows = queued.connection, queued.rows
    if connection.dialect.name != "postgresql" or len(rows) == 1:
        for plan, row in rows:
            connection.execute(plan.insert_one, row)
        return
    connection.execute(_chained(_shapes(rows)), _bound(rows))


# A row's plan and the columns it sends: sent together, a row leaves out the columns that are None and
# may be (``_Plan.null_when_none``; the table's default for them is NULL), so that a statement binds
# only what its rows hold.
_Shape = tuple[_Plan, tuple[str, ...]]


def _sent(plan: _Plan, row: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    return ((name, value) for name, value in row.items() if value is not None or name not in plan.null_when_none)


def _shapes(rows: list[tuple[_Plan, dict[str, Any]]]) -> tuple[_Shape, ...]:
    return tuple((plan, tuple(name for name, _ in _sent(plan, row))) for plan, row in rows)


def _bound(rows: list[tuple[_Plan, dict[str, Any]]]) -> dict[str, Any]:
    """The queued rows' values as ``_writes`` binds them."""
    return {f"row{number}_{name}": value for number, (plan, row) in enumerate(rows) for name, value in _sent(plan, row)}


def _writes(shapes: tuple[_Shape, ...]) -> list[Insert]:
    """An INSERT for each row's shape, each value bound as ``row<number>_<column>`` (never the name
    of one of SQLAlchemy's own binds, ``<column>_<number>``, in a statement that carries the rows)."""
    return [plan.insert_one.values({name: bindparam(f"row{number}_{name}", type_=plan.table.c[name].type)
                                    for name in names})
            for number, (plan, names) in enumerate(shapes)]


def _with_rows(statement: Any, writes: list[Insert]) -> Any:
    """``statement`` with ``writes`` in data-modifying WITH clauses before it."""
    return statement.add_cte(*(write.cte(f"row_{number}") for number, write in enumerate(writes)))


@lru_cache(maxsize=512)
def _chained(shapes: tuple[_Shape, ...]) -> Insert:
    """One statement for rows of these shapes, in order (PostgreSQL): the last row's INSERT, the others
    in data-modifying WITH clauses. They all run; the foreign keys are checked at the statement's end,
    so a row may point at another of the same statement."""
    writes = _writes(shapes)
    chained: Insert = _with_rows(writes[-1], writes[:-1])
    return chained


@lru_cache(maxsize=512)
def _carried(statement: Any, shapes: tuple[_Shape, ...]) -> Any:
    """``statement`` with rows of these shapes written in data-modifying WITH clauses before it."""
    return _with_rows(statement, _writes(shapes))


_CARRIES = "diversion_carries_queued_rows"  # an execution option (``carrying_queued_rows``)


def carrying_queued_rows(statement: Any) -> Any:
    """``statement``, marked to carry the rows ``insert_values`` queued before it, on PostgreSQL, as
    data-modifying WITH clauses of its own: one round trip for both. Only for a statement that reads
    none of the tables those rows go to, since the rest of a statement does not see the rows its WITH
    clauses write; their foreign keys are checked at its end, as for rows sent together.

    The rows go on their own first (as for any statement) when the session holds changes to flush,
    which might point at them, and elsewhere than PostgreSQL."""
    return statement.execution_options(**{_CARRIES: True})


def _send_before_savepoint(session: Session, transaction: SessionTransaction) -> None:
    # The savepoint is made as the session next uses its connection: the queued rows, made before
    # it, are sent first on the connection they were made on, so that its rollback keeps them.
    if transaction.nested:
        send_queued(session)


def _send_first(session: Session, *_: Any) -> None:
    send_queued(session)


def _send_before_statement(state: ORMExecuteState) -> Any:
    session = state.session
    queued: _Queued | None = session.info.get(_QUEUED)
    if queued is None or not queued.rows:
        return None
    if (not state.execution_options.get(_CARRIES) or queued.connection.dialect.name != "postgresql"
            or session.new or session.deleted or session.dirty or not isinstance(state.parameters or {}, Mapping)):
        send_queued(session)
        return None
    del session.info[_QUEUED]
    state.parameters = state.parameters or {}  # which invoke_statement adds the rows' values to
    return state.invoke_statement(statement=_carried(state.statement, _shapes(queued.rows)),
                                  params=_bound(queued.rows))


def _forget_queued(session: Session, *_: Any) -> None:
    # Rolled back (to a savepoint too: every row queued then was queued inside it).
    session.info.pop(_QUEUED, None)


def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the session's transaction, not a savepoint or a flush within it
        session.info.pop(_QUEUED, None)


def install() -> None:
    """Send queued rows before whatever the session sends next; forget them when it rolls back
    (idempotent)."""
    for name, listener in (("do_orm_execute", _send_before_statement), ("before_flush", _send_first),
                           ("before_commit", _send_first), ("after_transaction_create", _send_before_savepoint),
                           ("after_soft_rollback", _forget_queued), ("after_transaction_end", _forget_at_end)):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


def fresh_plans(session: Session | scoped_session[Any]) -> None:
    """Have PostgreSQL plan its statements again, foreign-key checks included, for the
    tables as they are now: plans cached while a table was small (a connection that
    wrote to it earlier) would otherwise scan whole tables where an index finds the row."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("DISCARD PLANS")
