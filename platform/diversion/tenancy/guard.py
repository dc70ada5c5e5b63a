"""Layer 2 of isolation: the ORM guard.

One ``do_orm_execute`` listener adds ``tenant_id == current`` to every ORM
statement that touches a force-owned entity, and fails closed when no force
is in scope. It also stamps and checks the rows of an ORM bulk INSERT
(``session.execute(insert(Model), rows)``) and refuses an ORM bulk UPDATE
by primary key (``session.execute(update(Model), rows)``), which would
ignore the force criteria. One ``before_flush`` listener stamps new rows
with the current force and refuses writes to another force's rows.

The only bypass is the execution option ``all_tenants=True``; grep for it.
It is for national aggregates and for queries that filter by something
stronger than the force (a user's own memberships, a provider's referrals).
Objects already in the identity map and ``text()`` SQL are not filtered
here: PostgreSQL row-level security is the backstop for those.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql.visitors import iterate

from diversion.db import TENANT_SCOPED, TenantScoped
from diversion.tenancy.context import require_tenant_id

ALL_TENANTS = "all_tenants"


class CrossTenantWrite(RuntimeError):  # noqa: N818 - reads as the condition it reports
    """Raised when a flush would write a row of a force that is not in scope."""


def _touches_force_rows(state: ORMExecuteState) -> bool:
    """Whether any force-owned table appears anywhere in the statement.

    ``all_mappers`` alone misses entities that are only in the FROM clause
    (``select(func.count()).select_from(Model)``), so walk the tables too.
    """
    if any(issubclass(mapper.class_, TenantScoped) for mapper in state.all_mappers):
        return True
    return any(
        isinstance(element, Table) and element.info.get(TENANT_SCOPED)
        for element in iterate(state.statement)  # type: ignore[arg-type]
    )


def _check_bulk_insert(state: ORMExecuteState) -> None:
    """Stamp each row of an ORM bulk INSERT of force-owned rows with the force
    in scope; refuse a row of another force, and rows the guard cannot see."""
    mapper = state.bind_mapper
    if mapper is None or not issubclass(mapper.class_, TenantScoped):
        return
    tenant_id = require_tenant_id()
    given = state.parameters
    rows: list[dict[str, Any]] = given if isinstance(given, list) else [given] if isinstance(given, dict) else []
    if not rows:  # values inside the statement, out of the guard's sight
        raise CrossTenantWrite(f"Give the {mapper.class_.__name__} rows as parameters, so that their force "
                               "can be checked.")
    for row in rows:
        if row.setdefault("tenant_id", tenant_id) != tenant_id:
            raise CrossTenantWrite(f"Refusing to create a {mapper.class_.__name__} for another force.")


def _filter_by_tenant(state: ORMExecuteState) -> None:
    if state.execution_options.get(ALL_TENANTS):
        return
    if state.is_insert:
        _check_bulk_insert(state)
        return
    if not (state.is_select or state.is_update or state.is_delete) or state.is_column_load:
        return
    if not _touches_force_rows(state):
        return
    if state.is_update and state.is_executemany:
        raise CrossTenantWrite("An ORM bulk UPDATE by primary key ignores the force in scope; change loaded "
                               "objects or UPDATE ... WHERE instead.")
    tenant_id = require_tenant_id()
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
        )
    )


def _check_writes(session: Session, _context: Any, _instances: Any) -> None:
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
