"""Case references: per force and year, in order, never waiting on another intake."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import Encounter
from diversion.cases.references import looks_like_reference, normalise_reference, take_references
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant, reference_prefix_for
from tests.cases.test_case_work import USER_DEALER
from tests.conftest import World
from tests.databases import postgres_admin_url

TODAY = date(2026, 11, 24)


def _intake(surname: str, offence_on: date = TODAY - timedelta(days=2)) -> cases.Intake:
    return cases.Intake(Identity(surname, "Sam", date(1990, 5, 1)), Contact(), "W1", offence_on, USER_DEALER)


def test_prefixes_come_from_the_forces_names() -> None:
    assert [reference_prefix_for(slug) for slug in ("west-midlands", "thames-valley", "durham",
                                                    "avon-and-somerset", "north-wales")] == \
        ["WM", "TV", "DUR", "AS", "NW"]


def test_a_reference_as_typed_is_found_as_stored() -> None:
    assert looks_like_reference(" dur-2026-42 ")
    assert normalise_reference(" dur-2026-42 ") == "DUR-2026-000042"
    assert not looks_like_reference("O'Neill")
    assert not looks_like_reference("2001/0012345A")


def test_each_force_counts_its_own_encounters_per_year(app: Flask, world: World) -> None:
    with app.app_context():
        with scoped(world.b.id):
            durham = db.session.get(Tenant, world.b.id)
            assert durham is not None
            first, _ = cases.record_encounter(durham, _intake("Able"), actor=SYSTEM, today=TODAY)
            second, _ = cases.record_encounter(durham, _intake("Baker"), actor=SYSTEM, today=TODAY)
            next_year, _ = cases.record_encounter(durham, _intake("Cole", date(2027, 1, 2)), actor=SYSTEM,
                                                  today=date(2027, 1, 3))
            assert [first.reference, second.reference, next_year.reference] == \
                [f"{durham.reference_prefix}-2026-000001", f"{durham.reference_prefix}-2026-000002",
                 f"{durham.reference_prefix}-2027-000001"]
            assert (first.outcome, first.pathway) == ("eligible", "checkpoint")
        with scoped(world.a.id):
            west = db.session.get(Tenant, world.a.id)
            assert west is not None
            other, _ = cases.record_encounter(west, cases.Intake(
                Identity("Able", "Sam", date(1990, 5, 1)), Contact(), "W1", TODAY, {**USER_DEALER, "stage": "street"}),
                actor=SYSTEM, today=TODAY)
            assert other.reference == f"{west.reference_prefix}-2026-000001"
        db.session.commit()


@pytest.mark.skipif(postgres_admin_url() is None, reason="PostgreSQL only (sequences): set TEST_DATABASE_URL")
def test_an_intake_never_waits_for_another_and_a_failed_one_skips_its_number(app: Flask, world: World) -> None:
    """One intake holds its transaction open; another, on another connection,
    takes the next number and commits at once. The first then rolls back: its
    number is skipped, never given again."""
    with app.app_context():
        with scoped(world.b.id):
            durham = db.session.get(Tenant, world.b.id)
            assert durham is not None
            held, _ = cases.record_encounter(durham, _intake("Held"), actor=SYSTEM, today=TODAY)
            done: list[str] = []

            def other_intake() -> None:
                with app.app_context(), scoped(world.b.id):
                    force = db.session.get(Tenant, world.b.id)
                    assert force is not None
                    encounter, _ = cases.record_encounter(force, _intake("Other"), actor=SYSTEM, today=TODAY)
                    done.append(encounter.reference)
                    db.session.commit()

            thread = threading.Thread(target=other_intake)
            thread.start()
            thread.join(timeout=20)
            assert not thread.is_alive(), "the second intake waited for the first"
            assert done == [f"{durham.reference_prefix}-2026-000002"]
            assert held.reference == f"{durham.reference_prefix}-2026-000001"
        db.session.rollback()
        with scoped(world.b.id):
            durham = db.session.get(Tenant, world.b.id)
            assert durham is not None
            assert take_references(durham, 2026, 2) == [f"{durham.reference_prefix}-2026-000003",
                                                         f"{durham.reference_prefix}-2026-000004"]
            assert db.session.scalars(select(Encounter.reference)).all() == done
        db.session.rollback()
