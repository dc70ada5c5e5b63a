"""The bulk path (``tenancy.bulk``): many force-owned rows at once, on SQLite and
on PostgreSQL (COPY into a temporary table, then INSERT ... SELECT under
row-level security), stamped with the force in scope, never another's."""

from __future__ import annotations

import gc
import uuid
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.exc import DBAPIError as SQLAlchemyError

from diversion.audit.models import AuditEvent
from diversion.cases.models import Person
from diversion.extensions import db
from diversion.insights.models import InsightStale
from diversion.tenancy.bulk import (
    SENT_TOGETHER_AT_MOST,
    YOUNG_COLLECTION_EVERY,
    Batches,
    carrying_queued_rows,
    collecting_rarely,
    fresh_plans,
    insert_object,
    insert_rows,
    insert_values,
)
from diversion.tenancy.context import TenantNotSet, scoped
from diversion.tenancy.guard import CrossTenantWrite
from diversion.tenancy.models import Tenant
from tests.conftest import World


def people(count: int) -> list[dict[str, Any]]:
    return [{"id": uuid.uuid4(), "name_key": uuid.uuid4().bytes, "pnc_key": None, "search_key": None,
             "birth_key": None, "identity_sealed": b"sealed identity", "contact_sealed": b"sealed contact",
             "ethnicity": "W1"} for _ in range(count)]


def count(tenant_id: int) -> int:
    with scoped(tenant_id):
        return db.session.scalar(select(func.count()).select_from(Person)) or 0


def test_rows_are_written_with_the_force_in_scope_and_their_defaults(app: Flask, world: World) -> None:
    before = datetime.now(UTC)
    with app.app_context():
        with scoped(world.a.id):
            rows = people(2_500)
            insert_rows(db.session, Person, rows[:1_000])
            fresh_plans(db.session)
            insert_rows(db.session, Person, rows[1_000:])  # a second batch in the same transaction
            db.session.commit()
            stored = {person.id: person for person in db.session.scalars(select(Person))}
        assert set(stored) == {row["id"] for row in rows}
        person = stored[rows[0]["id"]]
        assert person.tenant_id == world.a.id
        assert person.name_key == rows[0]["name_key"]
        assert person.pnc_key is None
        created = person.created_at if person.created_at.tzinfo else person.created_at.replace(tzinfo=UTC)
        assert created >= before.replace(microsecond=0)  # the column's default, filled in
        assert count(world.b.id) == 0


def test_the_next_transaction_writes_again(app: Flask, world: World) -> None:
    with app.app_context():
        for _ in range(2):  # the temporary table went with the first transaction
            with scoped(world.a.id):
                insert_rows(db.session, Person, people(3))
                db.session.commit()
        assert count(world.a.id) == 6


def test_a_row_of_another_force_is_refused_and_nothing_is_written(app: Flask, world: World) -> None:
    with app.app_context():
        with scoped(world.a.id):
            rows = people(3)
            rows[2]["tenant_id"] = world.b.id
            with pytest.raises(CrossTenantWrite):
                insert_rows(db.session, Person, rows)
            db.session.rollback()
        assert count(world.a.id) == 0
        assert count(world.b.id) == 0


def test_no_force_in_scope_is_refused(app: Flask, world: World) -> None:
    with app.app_context(), pytest.raises(TenantNotSet):
        insert_rows(db.session, Person, people(1))


def test_a_batch_that_fails_is_raised_and_the_transaction_undone(app: Flask, world: World) -> None:
    with app.app_context():
        with scoped(world.a.id):
            batches = Batches(db.session)
            first = people(2)
            batches.write([(Person, first)])
            again = [*people(1), {**first[0], "id": uuid.uuid4()}]  # a name key already written
            def write_and_wait() -> None:  # raised by the write on SQLite, by the wait on PostgreSQL
                batches.write([(Person, again)])
                batches.close()

            with pytest.raises((SQLAlchemyError, psycopg.Error)):
                write_and_wait()
            batches.close()
            db.session.rollback()
        assert count(world.a.id) == 0


def test_bulk_work_collects_rarely_and_puts_the_collector_back() -> None:
    before = gc.get_threshold()
    with collecting_rarely():
        assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, *before[1:])
        assert gc.isenabled()  # rarer, not never: a cycle made meanwhile is still freed
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), collecting_rarely():
        raise RuntimeError("the import failed")
    assert gc.get_threshold() == before


# ---------------------------------------------------------------- one object at once (insert_object)

def test_an_object_is_written_at_once_and_kept_as_written(app: Flask, world: World) -> None:
    """``insert_object`` writes the row before anything else the session sends, stamped with the
    force in scope and with its defaults (set on the object too), and leaves the object in the
    session as a row read: a later change to it is flushed as an UPDATE, after the row."""
    before = datetime.now(UTC)
    with app.app_context():
        with scoped(world.a.id):
            person = Person(**people(1)[0])
            insert_object(db.session, person)
            assert person.tenant_id == world.a.id
            assert person.language is None
            assert person.created_at >= before.replace(microsecond=0)
            assert person in db.session
            assert person not in db.session.new  # written, not waiting for a flush
            assert db.session.scalar(select(func.count()).select_from(Person)) == 1
            person.ethnicity = "A1"
            db.session.commit()
        with scoped(world.a.id):
            stored = db.session.get(Person, person.id)
            assert stored is not None
            assert (stored.ethnicity, stored.tenant_id) == ("A1", world.a.id)
        assert count(world.b.id) == 0


def test_an_object_of_another_force_or_with_no_force_in_scope_is_refused(app: Flask, world: World) -> None:
    with app.app_context():
        with scoped(world.a.id):
            with pytest.raises(CrossTenantWrite):
                insert_object(db.session, Person(tenant_id=world.b.id, **people(1)[0]))
            db.session.rollback()
        with pytest.raises(TenantNotSet):
            insert_object(db.session, Person(**people(1)[0]))
        db.session.rollback()
        assert count(world.a.id) == 0
        assert count(world.b.id) == 0


def _stored(tenant_id: int, *ids: uuid.UUID) -> set[uuid.UUID]:
    with scoped(tenant_id):
        return set(db.session.scalars(select(Person.id).where(Person.id.in_(ids))))


def test_rows_written_together_are_sent_before_the_next_read_and_kept_by_the_commit(
    app: Flask, world: World,
) -> None:
    """Rows queued one after another (a person, another, an audit event naming them) are all in
    the database for the session's next statement, and committed with the transaction."""
    with app.app_context():
        with scoped(world.a.id):
            first, second = Person(**people(1)[0]), Person(**people(1)[0])
            insert_object(db.session, first)
            insert_object(db.session, second)
            event = {"action": "person.recorded", "tenant_id": world.a.id, "object_id": str(first.id)}
            insert_values(db.session, AuditEvent, event)
            assert event["details"] == {}
            assert event["id"] is not None
            assert db.session.scalar(select(func.count()).select_from(Person)) == 2
            ids = first.id, second.id
            db.session.commit()
        assert _stored(world.a.id, *ids) == set(ids)
        with scoped(world.a.id):
            assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.id == event["id"])) == "person.recorded"


def test_rows_waiting_when_the_transaction_rolls_back_are_never_written(app: Flask, world: World) -> None:
    with app.app_context():
        with scoped(world.a.id):
            person = Person(**people(1)[0])
            insert_object(db.session, person)
            db.session.rollback()
            db.session.commit()  # a new transaction: nothing of the old one is left to send
        assert count(world.a.id) == 0


def test_rows_made_before_a_savepoint_outlive_its_rollback(app: Flask, world: World) -> None:
    """A savepoint begins after the rows queued before it are written: rolling it back undoes
    what was written inside it alone."""
    with app.app_context():
        with scoped(world.a.id):
            before = Person(**people(1)[0])
            insert_object(db.session, before)
            savepoint = db.session.begin_nested()
            inside = Person(**people(1)[0])
            insert_object(db.session, inside)
            ids = before.id, inside.id
            savepoint.rollback()
            db.session.commit()
        assert _stored(world.a.id, *ids) == {ids[0]}


def test_rows_made_in_one_force_are_written_before_the_scope_changes(app: Flask, world: World) -> None:
    """A row queued in force A's scope is sent, and checked by row-level security, in A's scope,
    before the transaction is told of B's; it stays A's."""
    with app.app_context():
        with scoped(world.a.id):
            person = Person(**people(1)[0])
            insert_object(db.session, person)
            with scoped(world.b.id):
                assert db.session.scalar(select(func.count()).select_from(Person)) == 0
            db.session.commit()
            assert _stored(world.a.id, person.id) == {person.id}
        assert count(world.b.id) == 0


def test_a_loop_of_rows_is_sent_in_statements_of_a_bounded_size(app: Flask, world: World) -> None:
    """However many rows a loop queues, no statement carries more than ``SENT_TOGETHER_AT_MOST``:
    each is sent as the queue fills, the rest before the next read."""
    sent: list[int] = []

    def count_rows(*arguments: Any) -> None:
        sent.append(arguments[2].count("INSERT INTO people"))

    with app.app_context():
        made = SENT_TOGETHER_AT_MOST * 2 + 3
        event.listen(db.engine, "before_cursor_execute", count_rows)
        try:
            with scoped(world.a.id):
                for _ in range(made):
                    insert_object(db.session, Person(**people(1)[0]))
                assert db.session.scalar(select(func.count()).select_from(Person)) == made
                db.session.commit()
        finally:
            event.remove(db.engine, "before_cursor_execute", count_rows)
        assert sum(sent) == made
        assert max(sent) == (SENT_TOGETHER_AT_MOST if db.engine.dialect.name == "postgresql" else 1)


def _statements_sent(app: Flask) -> tuple[list[str], Any]:
    sent: list[str] = []

    def note(*arguments: Any) -> None:
        sent.append(arguments[2])

    event.listen(db.engine, "before_cursor_execute", note)
    return sent, lambda: event.remove(db.engine, "before_cursor_execute", note)


def test_a_statement_that_reads_none_of_the_rows_carries_them(app: Flask, world: World) -> None:
    """On PostgreSQL a statement marked ``carrying_queued_rows`` takes the queued rows along as WITH
    clauses: one statement for both, its own answer unchanged, the rows committed with the rest.
    Elsewhere the rows go first, on their own."""
    with app.app_context():
        sent, stop = _statements_sent(app)
        try:
            with scoped(world.a.id):
                person = Person(**people(1)[0])
                insert_object(db.session, person)
                insert_values(db.session, AuditEvent, {"action": "person.recorded", "tenant_id": world.a.id})
                slug = db.session.scalar(carrying_queued_rows(select(Tenant.slug).where(Tenant.id == world.a.id)))
                made = person.id
                db.session.commit()
        finally:
            stop()
        assert slug == world.a.slug
        assert _stored(world.a.id, made) == {made}
        carried = [s for s in sent if "INSERT INTO people" in s and "FROM tenants" in s]
        assert len(carried) == (1 if db.engine.dialect.name == "postgresql" else 0), sent
        assert sum("INSERT INTO people" in s for s in sent) == 1


def test_rows_go_on_their_own_when_the_session_holds_changes_to_flush(app: Flask, world: World) -> None:
    """A change the session holds might point at a queued row, and is flushed before the statement
    runs: the queued rows go first, on their own, never inside the statement that follows."""
    with app.app_context():
        sent, stop = _statements_sent(app)
        try:
            with scoped(world.a.id):
                queued, pending = Person(**people(1)[0]), Person(**people(1)[0])
                insert_object(db.session, queued)
                db.session.add(pending)
                db.session.scalar(carrying_queued_rows(select(Tenant.slug).where(Tenant.id == world.a.id)))
                ids = queued.id, pending.id
                db.session.commit()
        finally:
            stop()
        assert _stored(world.a.id, *ids) == set(ids)
        assert not [s for s in sent if "INSERT INTO people" in s and "FROM tenants" in s], sent


def test_a_row_skipping_conflicts_leaves_the_one_already_there(app: Flask, world: World) -> None:
    """``skipping_conflicts``: a row whose unique key is taken, by a committed row or by one queued
    with it, is skipped without an error; the others are written."""
    with app.app_context():
        months = [date(2026, 1, 1), date(2026, 2, 1)]
        with scoped(world.a.id):
            insert_values(db.session, InsightStale, {"force_id": world.a.id, "month": months[0]},
                          skipping_conflicts=True)
            db.session.commit()
            for month in (months[0], months[1], months[1]):
                insert_values(db.session, InsightStale, {"force_id": world.a.id, "month": month},
                              skipping_conflicts=True)
            db.session.commit()
            stored = db.session.scalars(select(InsightStale.month).where(InsightStale.force_id == world.a.id)
                                        .order_by(InsightStale.month)).all()
        assert stored == months


def test_rows_sent_together_leave_out_only_the_columns_whose_none_is_null(app: Flask, world: World) -> None:
    """Sent together, a row leaves out a column it holds None for when the table's default for it is
    NULL, but not a JSON column (None is JSON's ``null``) nor one with a default of its own: the rows
    are stored as they would be one by one."""
    with app.app_context():
        with scoped(world.a.id):
            person = Person(**people(1)[0])
            insert_object(db.session, person)
            event = {"action": "person.recorded", "tenant_id": world.a.id, "details": None}
            insert_values(db.session, AuditEvent, event)
            made = person.id
            sent, stop = _statements_sent(app)
            db.session.commit()
            stop()
            stored = db.session.execute(select(AuditEvent.details, AuditEvent.details.is_(None),
                                               AuditEvent.actor_id.is_(None))
                                        .where(AuditEvent.id == event["id"])).one()
            assert tuple(stored) == (None, False, True)  # JSON's null, not SQL's NULL; no actor: NULL
            assert db.session.scalar(select(Person.pnc_key).where(Person.id == made)) is None
        if db.engine.dialect.name == "postgresql":  # together, without the columns left NULL
            assert len(sent) == 1
            assert "row1_details" in sent[0]
            assert "pnc_key" not in sent[0]
            assert "actor_id" not in sent[0]
