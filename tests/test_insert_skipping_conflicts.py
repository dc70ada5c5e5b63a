"""``db.insert_skipping_conflicts``: ``INSERT ... ON CONFLICT DO NOTHING`` that SQLAlchemy caches."""

from __future__ import annotations

from datetime import date

from flask import Flask
from sqlalchemy import func, literal, select, union_all

from diversion.db import insert_skipping_conflicts
from diversion.extensions import db
from diversion.insights.models import InsightStale
from tests.conftest import World

MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)


def test_a_row_a_unique_key_already_holds_is_skipped_and_the_others_written(app: Flask, world: World) -> None:
    with app.app_context():
        force = world.a.id
        taken = db.session.execute(insert_skipping_conflicts(InsightStale).returning(InsightStale.month),
                                   {"force_id": force, "month": MARCH}).scalars().all()
        skipped = db.session.execute(insert_skipping_conflicts(InsightStale).returning(InsightStale.month),
                                     {"force_id": force, "month": MARCH}).scalars().all()
        assert (taken, skipped) == ([MARCH], [])
        months = union_all(select(literal(force).label("force_id"), literal(MARCH).label("month")),
                           select(literal(force), literal(APRIL))).subquery()
        db.session.execute(insert_skipping_conflicts(InsightStale).from_select(
            ["force_id", "month"], select(months.c.force_id, months.c.month).where(months.c.force_id == force)))
        assert db.session.scalars(select(InsightStale.month).where(InsightStale.force_id == force)
                                  .order_by(InsightStale.month)).all() == [MARCH, APRIL]
        db.session.rollback()


def test_the_statement_is_compiled_once_and_then_taken_from_the_cache(app: Flask, world: World) -> None:
    """The dialects' own ``on_conflict_do_nothing`` statements are compiled again on every run."""
    with app.app_context():
        connection = db.session.connection()
        statement = insert_skipping_conflicts(InsightStale.__table__)
        contexts = [connection.execute(statement, {"force_id": world.a.id, "month": month}).context
                    for month in (MARCH, APRIL, APRIL)]
        assert [context.cache_hit == context.dialect.CACHE_HIT for context in contexts[1:]] == [True, True]
        assert db.session.scalar(select(func.count()).select_from(InsightStale)
                                 .where(InsightStale.force_id == world.a.id)) == 2
        db.session.rollback()
