"""Layer 2 of isolation: the ORM guard.

One ``do_orm_execute`` listener adds ``tenant_id == current`` to every ORM
statement that touches a force-owned entity, and fails closed when no force
is in scope. It also stamps and checks the rows of an ORM bulk INSERT
(``session.execute(insert(Model), rows)``) and refuses an ORM bulk UPDATE
by primary key (``session.execute(update(Model), rows)``), which would
ignore the force criteria. One ``before_flush`` listener stamps new rows
with the current force and refuses writes to another force's rows.

In provider scope (``tenancy.context.provider_scoped``) the guard adds, for
every force-owned entity in the statement, that model's
``provider_criteria`` (the provider's referrals and the rows hanging off
them), and refuses (``OutsideProviderScope``) a statement touching any
force-owned table that has none: fail closed again. With a force in scope
as well (``acting_for_provider``), both the force and the provider criteria
apply. Writes in provider scope need a force in scope and are refused unless
the row's ``provider_may_write`` agrees; deletes are refused.

A provider's own rows (``ProviderOwned``: its API tokens, its webhook
endpoint and secret) belong to no force and are guarded by provider alone:
every ORM statement touching them is filtered to the provider in scope, and
refused (``OutsideProviderScope``) when no provider is in scope; flushes
refuse to create, change or delete another provider's. ``all_tenants``
does not open them.

The only bypass of the force criteria is the execution option
``all_tenants=True``; grep for it.
It is for national aggregates and for queries that filter by something
stronger than the force (a user's own memberships, a provider's referrals).
Objects already in the identity map and ``text()`` SQL are not filtered
here: PostgreSQL row-level security is the backstop for those.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql.visitors import iterate

from diversion.db import TENANT_SCOPED, Base, ProviderOwned, TenantScoped
from diversion.tenancy.context import current_scope, require_tenant_id

ALL_TENANTS = "all_tenants"


class CrossTenantWrite(RuntimeError):  # noqa: N818 - reads as the condition it reports
    """Raised when a flush would write a row of a force that is not in scope."""


class OutsideProviderScope(RuntimeError):  # noqa: N818 - reads as the condition it reports
    """Raised when provider staff's work touches force-owned rows that are not theirs to reach."""


# The mapped class of each table the guard has met (None: a table no model maps).
_CLASS_OF: dict[Table, type[Base] | None] = {}


def _class_of(table: Table) -> type[Base] | None:
    try:
        return _CLASS_OF[table]
    except KeyError:
        # By the table's hash and equality: a table met through an annotated column is a copy.
        found = {mapper.local_table: mapper.class_ for mapper in Base.registry.mappers}.get(table)
        _CLASS_OF[table] = found
        return found


@dataclass(frozen=True)
class _Touched:
    """What one statement touches: every table anywhere in it, and the mapped classes of
    its entities and of those tables. ``all_mappers`` alone misses entities that are only
    in the FROM clause (``select(func.count()).select_from(Model)``), hence the tables,
    walked once per execution."""

    tables: frozenset[Table]
    classes: frozenset[type[Base]]

    @classmethod
    def by(cls, state: ORMExecuteState) -> _Touched:
        statement = state.statement
        try:
            return _TOUCHED[statement]
        except KeyError:
            pass
        tables = frozenset(element for element in iterate(statement)  # type: ignore[arg-type]
                           if isinstance(element, Table))
        classes = {mapper.class_ for mapper in state.all_mappers}
        classes.update(found for found in map(_class_of, tables) if found is not None)
        touched = _TOUCHED[statement] = cls(tables, frozenset(classes))
        return touched

    def force_classes(self) -> list[type[TenantScoped]]:
        """The force-owned models, by name."""
        return sorted((c for c in self.classes if issubclass(c, TenantScoped)), key=lambda c: c.__name__)

    def force_rows(self) -> bool:
        """Whether any force-owned table appears anywhere in the statement."""
        return any(issubclass(c, TenantScoped) for c in self.classes) or \
            any(table.info.get(TENANT_SCOPED) for table in self.tables)

    def provider_owned(self) -> list[type[ProviderOwned]]:
        return sorted((c for c in self.classes if issubclass(c, ProviderOwned)), key=lambda c: c.__name__)


# What the guard worked out for a statement, kept while the statement lives: a statement built
# once and run many times (a module's constant with bound parameters) is walked once, and its
# filtered form, made once per scope, keeps the cache key SQLAlchemy works out for it. Statements
# are immutable, and neither value holds its statement, so an entry goes with its statement.
_TOUCHED: WeakKeyDictionary[Any, _Touched] = WeakKeyDictionary()
_FILTERED: WeakKeyDictionary[Any, dict[tuple[int | None, int | None], Any]] = WeakKeyDictionary()


def _provider_options(touched: _Touched, provider_id: int) -> list[Any]:
    options = []
    for cls in touched.force_classes():
        criteria = cls.provider_criteria(provider_id)
        if criteria is None:
            raise OutsideProviderScope(f"Provider staff cannot reach {cls.__name__} rows.")
        options.append(with_loader_criteria(cls, criteria, include_aliases=True))
    return options


def _check_bulk_insert(state: ORMExecuteState) -> None:
    """Stamp each row of an ORM bulk INSERT of force-owned rows with the force
    in scope; refuse a row of another force, and rows the guard cannot see."""
    mapper = state.bind_mapper
    if mapper is None or not issubclass(mapper.class_, TenantScoped):
        return
    if current_scope().provider_id is not None:
        raise OutsideProviderScope(f"Provider staff cannot create {mapper.class_.__name__} rows in bulk.")
    tenant_id = require_tenant_id()
    given = state.parameters
    rows: list[dict[str, Any]] = given if isinstance(given, list) else [given] if isinstance(given, dict) else []
    if not rows:  # values inside the statement, out of the guard's sight
        raise CrossTenantWrite(f"Give the {mapper.class_.__name__} rows as parameters, so that their force "
                               "can be checked.")
    for row in rows:
        if row.setdefault("tenant_id", tenant_id) != tenant_id:
            raise CrossTenantWrite(f"Refusing to create a {mapper.class_.__name__} for another force.")


def _filter_by_provider(state: ORMExecuteState, touched: _Touched) -> None:
    """Keep a statement on provider-owned rows to the provider in scope; refuse it with none."""
    if not (state.is_select or state.is_update or state.is_delete or state.is_insert):
        return
    classes = touched.provider_owned()
    if not classes:
        return
    names = ", ".join(sorted(cls.__name__ for cls in classes))
    provider_id = current_scope().provider_id
    if provider_id is None:
        raise OutsideProviderScope(f"No provider is in scope: refusing to touch {names} rows.")
    if state.is_insert:
        given = state.parameters
        rows: list[dict[str, Any]] = given if isinstance(given, list) else [given] if isinstance(given, dict) else []
        if not rows or any(row.get("provider_id") != provider_id for row in rows):
            raise OutsideProviderScope(f"Refusing to create {names} rows of another provider.")
        return
    if state.is_update and state.is_executemany:
        raise OutsideProviderScope("An ORM bulk UPDATE by primary key ignores the provider in scope.")
    state.statement = state.statement.options(*(
        with_loader_criteria(cls, cls.provider_id == provider_id, include_aliases=True)
        for cls in classes))


@cache
def _force_criteria(tenant_id: int) -> Any:
    """``tenant_id == tenant_id`` on every force-owned entity of a statement (made once per force)."""
    return with_loader_criteria(TenantScoped, lambda cls: cls.tenant_id == tenant_id, include_aliases=True)


def _filter_by_tenant(state: ORMExecuteState) -> None:
    touched = _Touched.by(state)
    _filter_by_provider(state, touched)
    if state.execution_options.get(ALL_TENANTS):
        return
    if state.is_insert:
        _check_bulk_insert(state)
        return
    if not (state.is_select or state.is_update or state.is_delete) or state.is_column_load:
        return
    if not touched.force_rows():
        return
    if state.is_update and state.is_executemany:
        raise CrossTenantWrite("An ORM bulk UPDATE by primary key ignores the force in scope; change loaded "
                               "objects or UPDATE ... WHERE instead.")
    scope = current_scope()
    by_force = scope.provider_id is None or scope.tenant_id is not None
    tenant_id = require_tenant_id() if by_force else None
    statement = state.statement
    filtered = _FILTERED.setdefault(statement, {})
    key = (scope.tenant_id, scope.provider_id)
    if key not in filtered:
        options = _provider_options(touched, scope.provider_id) if scope.provider_id is not None else []
        if tenant_id is not None:
            options.append(_force_criteria(tenant_id))
        filtered[key] = statement.options(*options)
    state.statement = filtered[key]


def _check_provider_writes(session: Session, provider_id: int) -> None:
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, TenantScoped) and not obj.provider_may_write(provider_id):
            raise OutsideProviderScope(f"Provider staff cannot create or change this {type(obj).__name__}.")
    for obj in session.deleted:
        if isinstance(obj, TenantScoped):
            raise OutsideProviderScope(f"Provider staff cannot delete a {type(obj).__name__}.")


def _check_provider_owned_writes(session: Session, provider_id: int | None) -> None:
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if not isinstance(obj, ProviderOwned):
            continue
        history = inspect(obj, raiseerr=True).attrs.provider_id.history
        original = history.deleted[0] if history.deleted else obj.provider_id
        if provider_id is None or original != provider_id or obj.provider_id != provider_id:
            raise OutsideProviderScope(f"Refusing to create, change or delete a {type(obj).__name__} "
                                       "outside its provider's scope.")


def _check_writes(session: Session, _context: Any, _instances: Any) -> None:
    provider_id = current_scope().provider_id
    _check_provider_owned_writes(session, provider_id)
    if provider_id is not None:
        _check_provider_writes(session, provider_id)
    for obj in session.new:
        if isinstance(obj, TenantScoped):
            tenant_id = require_tenant_id()
            if obj.tenant_id is None:
                obj.tenant_id = tenant_id
            elif obj.tenant_id != tenant_id:
                raise CrossTenantWrite(
                    f"Refusing to create a {type(obj).__name__} for another force."
                )
    for obj in list(session.dirty) + list(session.deleted):
        if not isinstance(obj, TenantScoped):
            continue
        tenant_id = require_tenant_id()
        history = inspect(obj, raiseerr=True).attrs.tenant_id.history
        original = history.deleted[0] if history.deleted else obj.tenant_id
        if original != tenant_id or obj.tenant_id != tenant_id:
            raise CrossTenantWrite(
                f"Refusing to change or move a {type(obj).__name__} of another force."
            )


def install() -> None:
    """Attach the listeners to every SQLAlchemy session (idempotent)."""
    if not event.contains(Session, "do_orm_execute", _filter_by_tenant):
        event.listen(Session, "do_orm_execute", _filter_by_tenant)
        event.listen(Session, "before_flush", _check_writes)
