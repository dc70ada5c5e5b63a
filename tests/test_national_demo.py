"""``diversion demo --scale national``: a force for every area of England and Wales, and their history."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from diversion.audit.models import AuditEvent
from diversion.cases.models import IMPORTED, Encounter, Referral, State
from diversion.catalogue.vocabulary import AREAS
from diversion.config import REPO_ROOT
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.forces.files import read_force_files
from diversion.insights import services as insights
from diversion.insights.models import InsightFigure, InsightTable, insight_counts
from diversion.national_demo import PEOPLE, _History, national_folder, shares
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.databases import postgres_admin_url
from tests.test_cli import _run

TODAY = date(2026, 12, 1)


def _released(session: Session) -> tuple[list[Any], list[Any]]:
    """Every force's counts and every released figure, with the table it is in."""
    counts = session.execute(select(insight_counts).order_by(*insight_counts.c)).all()
    figures = session.execute(
        select(InsightTable.force_id, InsightTable.measure, InsightTable.breakdown, InsightTable.year,
               InsightFigure.category, InsightFigure.period, InsightFigure.value)
        .join(InsightFigure, InsightFigure.table_id == InsightTable.id)).all()
    return counts, sorted(figures, key=repr)


def _counted_as_a_whole_count_counts(app: Flask) -> None:
    """Each force was counted for the national comparison, as counting them all again counts them."""
    with app.app_context():
        counted = _released(db.session())
        assert {row.force_id for row in counted[0]} == set(db.session.scalars(select(Tenant.id)))
        assert any(force_id is None for force_id, *_ in counted[1])  # the national tables too
        insights.refresh_all(db.session(), today=datetime.now(UTC).date(), now=datetime.now(UTC))
        assert _released(db.session()) == counted
        db.session.rollback()


def test_every_area_has_a_force_and_its_share_of_the_encounters(tmp_path: Path) -> None:
    made = national_folder(REPO_ROOT / "tenants", tmp_path)
    catalogue, forces = read_force_files(tmp_path)  # refuses a file the sync would refuse
    assert sorted(force.area for force in forces) == sorted(AREAS) == sorted(PEOPLE)
    assert len(made) == len(AREAS) - 5
    for force in forces:
        assert force.name.endswith("(demo)") == (force.slug in made)
        courses = {course.slug: course for course in catalogue.courses}
        assert all(force.area in courses[offering.course].areas for offering in force.offerings)
    counted = shares(5_000_000)
    assert abs(sum(counted.values()) - 5_000_000) < len(counted)
    assert max(counted, key=counted.__getitem__) == "metropolitan"
    assert min(shares(43).values()) == 1


def test_no_area_is_made_up_at_the_address_of_a_force_the_demo_passes_over(tmp_path: Path) -> None:
    made = national_folder(REPO_ROOT / "tenants", tmp_path, taken={"cleveland"})
    assert "cleveland" not in made
    assert not (tmp_path / "cleveland.toml").exists()
    assert len(made) == len(AREAS) - 6


def _made_up(app: Flask, slug: str, count: int, seed: str) -> list[tuple[object, ...]]:
    with app.app_context():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
        assert tenant is not None
        with scoped(tenant.id):
            history = _History(tenant, count=count, start=date(2021, 12, 1), today=TODAY, seed=seed)
            return [(row.number, row.intake.identity, row.intake.ethnicity, row.intake.facts, row.decided_on,
                     row.course, row.state, row.ended_on) for row in history.rows()]


def test_the_same_seed_makes_the_same_history(app: Flask) -> None:
    assert _run(app, "tenants", "sync").exit_code == 0
    first = _made_up(app, "durham", 300, "one")
    assert first == _made_up(app, "durham", 300, "one")
    assert first != _made_up(app, "durham", 300, "two")
    assert [row[4] for row in first] == sorted(row[4] for row in first)  # in date order
    assert any(row[5] is not None for row in first)
    assert any(row[5] is None for row in first)
    people = [row[1] for row in first]
    assert len(set(people)) < len(people)  # some people met again


def test_the_national_demo_records_every_forces_history_once(app: Flask) -> None:
    assert _run(app, "tenants", "sync").exit_code == 0
    result = _run(app, "demo", "--scale", "national", "--encounters", "4300", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "38 made-up forces" in result.output
    assert "encounters recorded" in result.output
    _counted_as_a_whole_count_counts(app)
    with app.app_context():
        forces = db.session.scalars(select(Tenant)).all()
        assert sorted(force.area for force in forces) == sorted(AREAS)
        for force in forces:
            with scoped(force.id):
                imported = db.session.scalar(select(func.count()).select_from(Decision)
                                             .where(Decision.source == IMPORTED))
                recorded = db.session.scalar(select(func.count()).select_from(AuditEvent)
                                             .where(AuditEvent.action == "cases.imported",
                                                    AuditEvent.tenant_id == force.id))
                if force.slug == "metropolitan":
                    states = set(db.session.scalars(select(Referral.state).distinct()))
                    again = db.session.scalar(select(func.count()).select_from(
                        select(Encounter.person_id).group_by(Encounter.person_id)
                        .having(func.count() > 1).subquery()))
            assert imported, force.slug
            assert recorded == 1, force.slug
        assert {State.COMPLETED, State.NOT_COMPLETED}.issubset(states)
        assert again
    again_run = _run(app, "demo", "--scale", "national", "--encounters", "4300", "--workers", "1")
    assert again_run.exit_code == 0, again_run.output
    assert "0 encounters recorded" in again_run.output
    assert "0 created now" in again_run.output


@pytest.mark.skipif(postgres_admin_url() is None, reason="PostgreSQL: processes writing side by side")
def test_two_processes_record_the_forces_side_by_side(app: Flask) -> None:
    assert _run(app, "tenants", "sync").exit_code == 0
    result = _run(app, "demo", "--scale", "national", "--encounters", "2000", "--workers", "2")
    assert result.exit_code == 0, result.output
    _counted_as_a_whole_count_counts(app)
    with app.app_context():
        for force in db.session.scalars(select(Tenant)).all():
            with scoped(force.id):
                assert db.session.scalar(select(func.count()).select_from(Encounter)), force.slug
