"""The aggregates kept current: referral changes mark months, sweeps count them again and release them
protected, and the national login reads the released figures and nothing else."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.exc import ProgrammingError

from diversion.accounts.access import SYSTEM
from diversion.cases.events import Moved
from diversion.cases.models import Referral
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.forces import services as forces
from diversion.insights import services
from diversion.insights.models import InsightFigure, InsightForce, InsightStale, InsightTable, insight_counts
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World
from tests.databases import postgres_admin_url
from tests.insights.test_metrics import TODAY, _history
from tests.providers.test_isolation import _subplan_only

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _released(app: Flask, force_id: int | None, measure: str, period: str, breakdown: str = "all",
              category: str = "all") -> int | None:
    with app.app_context():
        found = db.session.execute(
            select(InsightFigure.value).join(InsightTable, InsightTable.id == InsightFigure.table_id)
            .where(InsightTable.force_id.is_(None) if force_id is None else InsightTable.force_id == force_id,
                   InsightTable.measure == measure, InsightTable.breakdown == breakdown,
                   InsightFigure.category == category, InsightFigure.period == period)).one()
        return found[0]


def test_an_import_marks_the_months_of_its_referrals_for_the_next_sweep(app: Flask, world: World,
                                                                       tmp_path: Path) -> None:
    _history(app, tmp_path)
    with app.app_context():
        marked = set(db.session.execute(select(InsightStale.force_id, InsightStale.month)).tuples())
        # The months of the four referred cases: March 2024 (two), April 2024, February 2025.
        assert marked == {(world.b.id, date(2024, 3, 1)), (world.b.id, date(2024, 4, 1)),
                          (world.b.id, date(2025, 2, 1))}
        services.refresh_stale(db.session(), today=TODAY, now=NOW)
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(InsightStale)) == 0
        months = set(db.session.scalars(select(insight_counts.c.month).where(
            insight_counts.c.force_id == world.b.id).distinct()))
        assert months == {date(2024, 3, 1), date(2024, 4, 1), date(2025, 2, 1)}
        force = db.session.get(InsightForce, world.b.id)
        assert force is not None
        assert force.name == "Durham Constabulary"
        assert force.computed_at == NOW


def test_a_refresh_releases_each_forces_tables_and_the_national_ones_protected(app: Flask, world: World,
                                                                              tmp_path: Path) -> None:
    _history(app, tmp_path)
    with app.app_context():
        services.refresh_all(db.session(), today=TODAY, now=NOW)
        db.session.commit()
        years = set(db.session.scalars(select(InsightTable.year).where(InsightTable.force_id == world.b.id)))
        assert years == {2024, 2025}  # nothing counted in 2026, so no table
        assert set(db.session.scalars(select(InsightTable.months))) == {12}
    # Six cases in all: every figure is under ten, so none is shown, for the force or the nation.
    assert _released(app, world.b.id, "cases", "2024") is None
    assert _released(app, None, "cases", "2024-Q1") is None
    assert _released(app, world.b.id, "referred", "2024", "substance", "cannabis") is None


def test_a_table_whose_counts_have_not_changed_is_not_protected_again(app: Flask, world: World,
                                                                      tmp_path: Path) -> None:
    _history(app, tmp_path)
    with app.app_context():
        services.refresh_all(db.session(), today=TODAY, now=NOW)
        db.session.commit()
        tables = db.session.scalar(select(func.count()).select_from(InsightTable))
        durham = db.session.get(Tenant, world.b.id)
        assert durham is not None
        again = services.release_years(db.session(), world.b.id, [2024, 2025], today=TODAY, now=NOW)
        assert again == 0
        assert db.session.scalar(select(func.count()).select_from(InsightTable)) == tables


def test_a_forces_assumptions_for_police_time_are_its_own_or_the_defaults(app: Flask, world: World) -> None:
    with app.app_context():
        durham = db.session.get(Tenant, world.b.id)
        assert durham is not None
        defaults = (forces.DEFAULT_HOURS_SAVED, forces.DEFAULT_COST_PER_HOUR)
        assert forces.police_time(durham) == defaults
        with scoped(durham.id):
            changes = forces.change_police_time(durham, hours_saved=45, cost_per_hour=4_100, actor=SYSTEM)
        assert changes == {forces.HOURS_SAVED_SETTING: (60, 45), forces.COST_PER_HOUR_SETTING: (3_800, 4_100)}
        assert forces.police_time(durham) == (45, 4_100)
        with scoped(durham.id), pytest.raises(FieldError, match="hours from 0 to 100"):
            forces.change_police_time(durham, hours_saved=1_001, cost_per_hour=4_100, actor=SYSTEM)
        assert forces.police_time(durham) == (45, 4_100)
        durham.settings = {forces.HOURS_SAVED_SETTING: "lots", forces.COST_PER_HOUR_SETTING: True}
        assert forces.police_time(durham) == defaults
        db.session.rollback()


@pytest.mark.postgres
@pytest.mark.skipif(postgres_admin_url() is None, reason="PostgreSQL only (logins): set TEST_DATABASE_URL to run")
def test_the_national_login_reads_the_released_figures_and_nothing_else(app: Flask, world: World, database: Any,
                                                                        tmp_path: Path) -> None:
    _history(app, tmp_path)
    with app.app_context():
        services.refresh_all(db.session(), today=TODAY, now=NOW)
        db.session.commit()
    engine = create_engine(database.insights_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM insight_figures")) > 0
            assert connection.scalar(text("SELECT count(*) FROM insight_tables")) > 0
            assert connection.scalar(text("SELECT name FROM insight_forces WHERE force_id = :id"),
                                     {"id": world.b.id}) == "Durham Constabulary"
        for table in ("insight_counts", "insight_stale", "people", "encounters", "decisions", "referrals",
                      "tenants", "users", "audit_events"):
            with engine.connect() as connection, pytest.raises(ProgrammingError, match="permission denied"):
                connection.execute(text(f'SELECT 1 FROM "{table}" LIMIT 1'))
    finally:
        engine.dispose()


@pytest.mark.skipif(postgres_admin_url() is None, reason="PostgreSQL only: its plans")
def test_marking_a_referrals_month_looks_its_decision_up_per_referral(app: Flask, world: World,
                                                                     tmp_path: Path) -> None:
    """The listener finds each moved referral's case month by the decisions' index, a subquery per
    referral: a join could read every decision of the force, and intake slowed tenfold so."""
    _history(app, tmp_path)
    sent: list[tuple[str, Any]] = []

    def note(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    with app.app_context(), scoped(world.b.id):
        durham = db.session.get(Tenant, world.b.id)
        referral = db.session.scalars(select(Referral)).first()
        assert durham is not None
        assert referral is not None
        move = Moved(referral.id, referral.provider_id, referral.pathway, None, referral.state, uuid.uuid4(), NOW)
        event.listen(db.engine, "before_cursor_execute", note)
        try:
            services.months_out_of_date(durham, moves=[move], history=False)
        finally:
            event.remove(db.engine, "before_cursor_execute", note)
        statement, parameters = next((s, p) for s, p in sent if s.startswith("INSERT INTO insight_stale"))
        plan = db.session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar()
        db.session.rollback()
    assert _subplan_only(plan[0]["Plan"], "decisions") == []
