"""Layer 3 of isolation: PostgreSQL row-level security.

Every force-owned table gets ENABLE and FORCE ROW LEVEL SECURITY and a
policy comparing ``tenant_id`` with the transaction-local setting
``app.tenant_id``. The setting is written with ``set_config(..., true)`` when
a transaction begins (and when the scope changes inside it, once per
change), never with a session-level ``SET``, because pooled connections
outlive a request. ``NULLIF(..., '')`` matters: once a local
setting has been used, it reads back as an empty string, not NULL, and the
cast would fail instead of matching nothing.

A provider's own rows, which belong to no force (its API tokens, its
webhook endpoint and signing secret), are under a policy of their own
(``provider_owned_sql``): visible and writable only while ``app.provider_id``
is their provider.

Provider staff work with ``app.provider_id`` set (and no force, or the force
of the one referral they act on). Two kinds of policy carry it, next to the
tenant policy:

- ``provider_read`` (permissive, SELECT): with no force in scope, a provider
  reads its own referrals and the rows hanging off them
  (``provider_policy_sql``);
- ``provider_restriction`` (RESTRICTIVE, so ANDed with everything else):
  while ``app.provider_id`` is set, only those rows pass, for reads and
  writes alike, even with a force in scope; provider staff never insert a
  referral nor delete anything; on every other force-owned table, and on
  the audit log's reads, nothing passes (``provider_excluded_sql``).

A force-owned table added later without a provider policy is still closed
to provider staff by the ORM guard; give it ``provider_excluded_sql`` (or
``provider_policy_sql``) in its migration too.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from flask import has_app_context
from sqlalchemy import Connection, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from diversion.tenancy.context import current_scope

# Each setting as a scalar subquery: PostgreSQL reads it once per statement (an InitPlan), not once per
# row, and plans with the table's statistics instead of guessing that a force has a few dozen rows.
CURRENT_TENANT = "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::integer)"
CURRENT_USER = "(SELECT NULLIF(current_setting('app.user_id', true), '')::integer)"
CURRENT_PROVIDER = "(SELECT NULLIF(current_setting('app.provider_id', true), '')::integer)"
# Sent to the driver as it is (its parameters in psycopg's style): nothing for SQLAlchemy to compile,
# once or more in every transaction.
_SET_SCOPE = (
    "SELECT set_config('app.tenant_id', %(tenant_id)s, true), "
    "set_config('app.user_id', %(user_id)s, true), "
    "set_config('app.provider_id', %(provider_id)s, true)"
)


_WRITTEN = "diversion_scope"  # Connection.info: the scope last written in the connection's transaction


def _write_scope(connection: Connection, *, again: bool = False) -> None:
    """Write the scope in force into the connection's transaction, unless it is the scope already
    written there (``again``: a new transaction, or one whose settings a savepoint took back)."""
    if connection.dialect.name != "postgresql":
        return
    scope = current_scope()
    if not again and connection.info.get(_WRITTEN) == scope:
        return
    connection.info.pop(_WRITTEN, None)  # until written: a failure leaves nothing believed
    connection.exec_driver_sql(
        _SET_SCOPE,
        {
            "tenant_id": "" if scope.tenant_id is None else str(scope.tenant_id),
            "user_id": "" if scope.user_id is None else str(scope.user_id),
            "provider_id": "" if scope.provider_id is None else str(scope.provider_id),
        },
    )
    connection.info[_WRITTEN] = scope


def _after_begin(_session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    _write_scope(connection, again=True)


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    """After a rollback to a savepoint, write the scope in force again.

    PostgreSQL brings the transaction-local settings back to what they were
    when the savepoint began, which can be another scope's (a scope changed
    inside the savepoint, then restored while it was failing). A failure
    here means the connection is gone, and with it the transaction.
    """
    if previous.nested and session.in_transaction():
        with suppress(SQLAlchemyError):
            _write_scope(session.connection(), again=True)


def apply_scope_to_open_transaction() -> None:
    """Send the scope when it changes inside an open transaction (once: a scope set again
    as it already stands costs nothing)."""
    if not has_app_context():
        return
    from diversion.extensions import db
    from diversion.tenancy.bulk import send_queued

    session = db.session()
    if session.in_transaction():
        send_queued(session)  # rows made in the scope that was: row-level security checks them in it
        _write_scope(session.connection())


def install() -> None:
    """Attach the ``after_begin`` and savepoint listeners to every session (idempotent)."""
    if not event.contains(Session, "after_begin", _after_begin):
        event.listen(Session, "after_begin", _after_begin)
    if not event.contains(Session, "after_soft_rollback", _after_soft_rollback):
        event.listen(Session, "after_soft_rollback", _after_soft_rollback)


def policy_sql(table: str, *, also_readable: str | None = None) -> list[str]:
    """DDL that puts ``table`` under the tenant policy (for migrations).

    ``also_readable`` adds a SELECT-only policy (e.g. a user may read their
    own memberships in every force); writes are always checked against the
    current force alone.
    """
    statements = [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})",
    ]
    if also_readable:
        statements.append(f"CREATE POLICY also_readable ON {table} FOR SELECT USING ({also_readable})")
    return statements


def provider_policy_sql(table: str, rows: str, *, insert: bool = False) -> list[str]:
    """DDL letting provider staff reach ``rows`` of ``table`` (a condition on
    its columns, in terms of ``CURRENT_PROVIDER``) and nothing else of it.

    ``insert`` allows provider staff to insert such rows (with their
    referral's force in scope, which the tenant policy checks).
    """
    mine = f"({CURRENT_PROVIDER} IS NULL OR ({rows}))"
    statements = [
        f"CREATE POLICY provider_read ON {table} FOR SELECT USING ({CURRENT_TENANT} IS NULL AND {rows})",
        f"CREATE POLICY provider_restriction ON {table} AS RESTRICTIVE USING {mine} WITH CHECK {mine}",
        f"CREATE POLICY provider_no_delete ON {table} AS RESTRICTIVE FOR DELETE "
        f"USING ({CURRENT_PROVIDER} IS NULL)",
    ]
    if not insert:
        statements.append(f"CREATE POLICY provider_no_insert ON {table} AS RESTRICTIVE FOR INSERT "
                          f"WITH CHECK ({CURRENT_PROVIDER} IS NULL)")
    return statements


def provider_excluded_sql(table: str, *, command: str = "ALL") -> list[str]:
    """DDL closing ``table`` to provider staff, whatever force is in scope."""
    return [f"CREATE POLICY provider_restriction ON {table} AS RESTRICTIVE FOR {command} "
            f"USING ({CURRENT_PROVIDER} IS NULL)"
            + ("" if command in ("SELECT", "DELETE") else f" WITH CHECK ({CURRENT_PROVIDER} IS NULL)")]


def provider_owned_sql(table: str) -> list[str]:
    """DDL that puts a provider's own table (no force: its API tokens, its
    webhook endpoint and secret) under the provider policy: a row is visible
    and writable only while ``app.provider_id`` is the row's provider,
    whatever force is in scope, and in no scope at all nothing is."""
    mine = f"provider_id = {CURRENT_PROVIDER}"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY provider_owned ON {table} USING ({mine}) WITH CHECK ({mine})",
    ]


def drop_provider_owned_sql(table: str) -> list[str]:
    return [
        f"DROP POLICY IF EXISTS provider_owned ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]


def drop_provider_policy_sql(table: str) -> list[str]:
    return [f"DROP POLICY IF EXISTS {name} ON {table}"
            for name in ("provider_read", "provider_restriction", "provider_no_delete", "provider_no_insert")]


def drop_policy_sql(table: str) -> list[str]:
    return [
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"DROP POLICY IF EXISTS also_readable ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]


def is_postgresql(bind: Any) -> bool:
    return bool(bind.dialect.name == "postgresql")


APP_ROLE = "diversion_app"


def audit_policy_sql() -> list[str]:
    """The audit log: readable within the force in scope, insert-only for the app.

    Events outside any force (sign-ins, platform changes) have no tenant and
    are readable by no force. There is no UPDATE or DELETE policy, and the
    app role's UPDATE, DELETE and TRUNCATE rights are revoked when it exists.
    """
    return [
        "ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE audit_events FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY audit_read ON audit_events FOR SELECT USING (tenant_id = {CURRENT_TENANT})",
        "CREATE POLICY audit_append ON audit_events FOR INSERT "
        f"WITH CHECK (tenant_id IS NULL OR tenant_id = {CURRENT_TENANT})",
        # Constants of this module only, never input.
        "DO $$ BEGIN "  # noqa: S608
        f"IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN "
        f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {APP_ROLE}; "
        "END IF; END $$",
    ]


def audit_platform_read_sql() -> list[str]:
    """The whole audit log (every force's events and those outside any force,
    such as sign-ins) readable while the user in scope holds the platform
    admin role, as ``platform_grants`` says; nobody else gains anything, and
    writes stay insert-only. For the platform admins' audit viewer."""
    return [
        # Constants of this module only, never input.
        "CREATE POLICY audit_read_platform ON audit_events FOR SELECT USING (EXISTS ("  # noqa: S608
        "SELECT 1 FROM platform_grants WHERE platform_grants.role = 'platform_admin' "
        f"AND platform_grants.user_id = {CURRENT_USER}))",
    ]


def drop_audit_platform_read_sql() -> list[str]:
    return ["DROP POLICY IF EXISTS audit_read_platform ON audit_events"]


def drop_audit_policy_sql() -> list[str]:
    return [
        "DROP POLICY IF EXISTS audit_read ON audit_events",
        "DROP POLICY IF EXISTS audit_append ON audit_events",
        "ALTER TABLE audit_events NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE audit_events DISABLE ROW LEVEL SECURITY",
    ]


def published_policy_trigger_sql() -> list[str]:
    """A published policy version never changes: refused by the database too."""
    return [
        "CREATE FUNCTION refuse_published_policy_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF OLD.status = 'published' THEN "
        "RAISE EXCEPTION 'policy version % is published and cannot change', OLD.number "
        "USING ERRCODE = 'integrity_constraint_violation'; END IF; "
        "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER published_policy_immutable BEFORE UPDATE OR DELETE ON policy_versions "
        "FOR EACH ROW EXECUTE FUNCTION refuse_published_policy_change()",
    ]


def drop_published_policy_trigger_sql() -> list[str]:
    return [
        "DROP TRIGGER IF EXISTS published_policy_immutable ON policy_versions",
        "DROP FUNCTION IF EXISTS refuse_published_policy_change()",
    ]
