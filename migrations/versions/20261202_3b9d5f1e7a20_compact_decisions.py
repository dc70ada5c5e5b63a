"""Compact decisions: a decision keeps its facts packed, the ids of its unmet criteria, and no longer
every criterion's result and reason, nor a copy of its policy's hash.

- ``decisions.facts``: the fact snapshot packed in 30 bytes (``eligibility.packed``), once JSON.
- ``decisions.unmet``: the ids of the criteria that were not met (an exclusion's id, or
  ``pathway/criterion``), taken from the stored results.
- ``decisions.results`` goes: every criterion's result and reason is worked out again from the
  facts and the policy version when a page asks for it. Before a row loses its results they are
  worked out again here and compared with the stored ones; a single difference stops the upgrade,
  naming the decisions, and changes nothing.
- ``decisions.policy_hash`` goes: it is the policy version's content hash, which never changes
  once published. A decision whose copy differs from its version's hash stops the upgrade too.
- ``decisions (tenant_id, outcome)`` replaces ``(tenant_id, outcome, decided_at)``: the decisions
  waiting for review are found by outcome alone (and listed by decision date), and an index whose key
  repeats keeps each key once with its rows, where ``decided_at`` made every key different.

The downgrade writes the results, the hash and the JSON facts back from the same sources.

Revision ID: 3b9d5f1e7a20
Revises: e4b8d2a6c913
Create Date: 2026-12-02 19:55:00

"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

from diversion.eligibility.compiler import CompiledPolicy, compile_cached
from diversion.eligibility.engine import criterion_results, results_json, unmet_id
from diversion.eligibility.packed import Unpackable, pack_facts, unpack_facts
from diversion.tenancy import rls

revision = "3b9d5f1e7a20"
down_revision = "e4b8d2a6c913"
branch_labels = None
depends_on = None

BATCH = 2000
READ = ("decisions", "policy_versions")  # tenant-owned tables read or written across every force
versions = sa.table("policy_versions", sa.column("id", sa.Uuid), sa.column("document", sa.JSON),
                    sa.column("content_hash", sa.String))


def _decisions(*columns: sa.Column[Any]) -> sa.TableClause:
    return sa.table("decisions", sa.column("id", sa.Uuid), sa.column("policy_version_id", sa.Uuid),
                    sa.column("decided_on", sa.Date), *columns)


class _Policies(dict[Any, tuple[CompiledPolicy, str]]):
    """Each policy version compiled, with its content hash, read when first asked for."""

    def __init__(self, connection: sa.Connection) -> None:
        super().__init__()
        self.connection = connection

    def __missing__(self, version_id: Any) -> tuple[CompiledPolicy, str]:
        row = self.connection.execute(sa.select(versions.c.document, versions.c.content_hash)
                                      .where(versions.c.id == version_id)).one()
        found = self[version_id] = (compile_cached(row.document), row.content_hash)
        return found


def _batches(connection: sa.Connection, table: sa.TableClause) -> Iterator[list[Any]]:
    """Every row of ``table``, ``BATCH`` at a time, in the order of their ids."""
    after = None
    while True:
        query = sa.select(table).order_by(table.c.id).limit(BATCH)
        rows = connection.execute(query.where(table.c.id > after) if after is not None else query).all()
        if not rows:
            return
        after = rows[-1].id
        yield rows


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _compacted(connection: sa.Connection) -> None:
    old = _decisions(sa.column("policy_hash", sa.String), sa.column("facts", sa.JSON),
                     sa.column("results", sa.JSON))
    new = sa.table("decisions", sa.column("id", sa.Uuid), sa.column("packed", sa.LargeBinary),
                   sa.column("unmet", sa.JSON))
    policies = _Policies(connection)
    refused: list[str] = []
    for rows in _batches(connection, old):
        values = []
        for row in rows:
            policy, content_hash = policies[row.policy_version_id]
            stored = _json(row.results)
            try:
                packed = pack_facts(_json(row.facts))
            except Unpackable as error:
                refused.append(f"{row.id}: its facts cannot be kept ({error})")
                continue
            if row.policy_hash != content_hash:
                refused.append(f"{row.id}: made with hash {row.policy_hash}, its version has {content_hash}")
            again = results_json(criterion_results(policy, unpack_facts(packed), row.decided_on))
            if again != stored:
                refused.append(f"{row.id}: its results worked out again differ from the stored ones")
            values.append({"key": row.id, "packed": packed,
                           "unmet": [unmet_id(r["pathway"], r["criterion"]) for r in stored if r["result"] == "unmet"]})
        if values and not refused:
            connection.execute(sa.update(new).where(new.c.id == sa.bindparam("key"))
                               .values(packed=sa.bindparam("packed"), unmet=sa.bindparam("unmet")), values)
    if refused:
        raise RuntimeError(f"{len(refused)} decisions cannot be compacted without losing what they hold; "
                           "nothing was changed: " + "; ".join(refused[:20]))


def _expanded(connection: sa.Connection) -> None:
    packed = _decisions(sa.column("facts", sa.LargeBinary))
    old = sa.table("decisions", sa.column("id", sa.Uuid), sa.column("policy_hash", sa.String),
                   sa.column("json_facts", sa.JSON), sa.column("results", sa.JSON))
    policies = _Policies(connection)
    for rows in _batches(connection, packed):
        values = []
        for row in rows:
            policy, content_hash = policies[row.policy_version_id]
            facts = unpack_facts(row.facts)
            values.append({"key": row.id, "policy_hash": content_hash, "json_facts": facts,
                           "results": results_json(criterion_results(policy, facts, row.decided_on))})
        connection.execute(sa.update(old).where(old.c.id == sa.bindparam("key"))
                           .values(policy_hash=sa.bindparam("policy_hash"), json_facts=sa.bindparam("json_facts"),
                                   results=sa.bindparam("results")), values)


def _across_forces(work: Any) -> None:
    """Run ``work`` on every force's rows: the owner is bound by FORCE ROW LEVEL SECURITY too,
    and no force is in scope here."""
    connection = op.get_bind()
    postgresql = rls.is_postgresql(connection)
    if postgresql:
        for table in READ:
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    try:
        work(connection)
    finally:
        if postgresql:
            for table in READ:
                op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
                op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def upgrade():
    op.add_column("decisions", sa.Column("packed", sa.LargeBinary(), nullable=True))
    op.add_column("decisions", sa.Column("unmet", sa.JSON(), nullable=True))
    try:
        _across_forces(_compacted)
    except RuntimeError:  # PostgreSQL rolls the whole upgrade back; SQLite may have kept the new columns
        with op.batch_alter_table("decisions") as batch_op:
            batch_op.drop_column("unmet")
            batch_op.drop_column("packed")
        raise
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_column("results")
        batch_op.drop_column("policy_hash")
        batch_op.drop_column("facts")
        batch_op.alter_column("packed", new_column_name="facts", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column("unmet", existing_type=sa.JSON(), nullable=False)
    op.drop_index("ix_decisions_tenant_id_outcome_decided_at", table_name="decisions")
    op.create_index("ix_decisions_tenant_id_outcome", "decisions", ["tenant_id", "outcome"])


def downgrade():
    op.drop_index("ix_decisions_tenant_id_outcome", table_name="decisions")
    op.create_index("ix_decisions_tenant_id_outcome_decided_at", "decisions", ["tenant_id", "outcome", "decided_at"])
    op.add_column("decisions", sa.Column("policy_hash", sa.String(length=80), nullable=True))
    op.add_column("decisions", sa.Column("json_facts", sa.JSON(), nullable=True))
    op.add_column("decisions", sa.Column("results", sa.JSON(), nullable=True))
    _across_forces(_expanded)
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_column("unmet")
        batch_op.drop_column("facts")
        batch_op.alter_column("json_facts", new_column_name="facts", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("policy_hash", existing_type=sa.String(length=80), nullable=False)
        batch_op.alter_column("results", existing_type=sa.JSON(), nullable=False)
