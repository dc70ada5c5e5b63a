"""The import writes what the services write: the same 200 varied rows, recorded once
through the case services one row at a time and once by ``diversion import``,
leave the same people, encounters, decisions, referrals, steps and sessions
(ids and times aside).

The rows are made up but varied: people met once or several times (in date
order, some by PNC ID under another name), decisions eligible, not eligible
and needing review, and referrals taken to every state. Rows whose referral
the check refuses (a decision that is not eligible, an earlier diversion) are
kept without their referral: the file the import takes is one it accepts.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.cases import importer, rules
from diversion.cases import services as cases
from diversion.cases.identity import open_contact, open_identity
from diversion.cases.models import IMPORTED, BookedSession, Encounter, Person, Referral, State, Why, told
from diversion.catalogue.models import Course, Offering
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.providers.models import FeedEntry
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.cases.test_import import DURHAM_COURSE, row, write
from tests.conftest import World, build_world, empty_database

ROWS = 200
LABEL = "history.csv"
# The file does not say where a session was: the services need a venue, so they are given the words a page shows.
PLACE_NOT_RECORDED = "a place not recorded"
SURNAMES = ("Walker", "Hussain", "Evans", "Patel", "Roberts", "Okafor", "Nowak", "Hughes", "Begum", "Jones")
GIVEN = ("Jordan", "Aisha", "Callum", "Priya", "Kieran", "Grace", "Tomasz", "Chloe")


def _rows() -> list[dict[str, str]]:
    """200 rows of made-up Durham history, each person's rows in date order."""
    rng = random.Random(20261201)
    people = [(rng.choice(SURNAMES), rng.choice(GIVEN), date(1960 + rng.randrange(45), 1 + rng.randrange(12),
                                                             1 + rng.randrange(28)), f"{i:02d}/{100000 + i}A")
              for i in range(80)]
    last: dict[int, date] = {}
    made = []
    for _ in range(ROWS):
        who = rng.randrange(len(people))
        surname, given, born, pnc = people[who]
        decided = max(last.get(who, date(2021, 1, 1)), date(2021, 1, 1)) + timedelta(days=rng.randint(20, 200))
        last[who] = decided
        changes: dict[str, str] = {
            "surname": surname if rng.random() > 0.1 else f"{surname}-Smith",  # found again by the PNC ID
            "given_name": given, "date_of_birth": born.isoformat(), "pnc_id": pnc if rng.random() > 0.3 else "",
            "ethnicity": rng.choice(("W1", "B2", "A3", "NS")), "phone": f"07700 9{rng.randrange(10**5):05d}",
            "offence_on": (decided - timedelta(days=rng.randint(0, 10))).isoformat(),
            "decided_on": decided.isoformat(),
            "stage": rng.choice(("custody", "custody", "street")),
            "admission": rng.choice(("admitted", "admitted", "admitted", "")),  # not known: needs review
        }
        if rng.random() < 0.7:
            state = rng.choice(list(State))
            changes.update(course=DURHAM_COURSE, referral_state=state.value)
            if not state.is_open or rng.random() < 0.5:
                changes["referral_outcome_on"] = (decided + timedelta(days=rng.randint(0, 100))).isoformat()
            if state in rules.ENDED_UNFINISHED and rng.random() < 0.5:  # after some of the 5 sessions
                changes["sessions_attended"] = str(rng.randint(1, 4))
        made.append(row(**changes))
    return made


def _importable(app: Flask, world: World, tmp_path: Path) -> Path:
    """The rows, less the referrals the check refuses, as a file the import takes."""
    rows = _rows()
    today = datetime.now(UTC).date()
    while True:
        path = write(tmp_path / LABEL, rows)
        with app.app_context(), scoped(world.b.id):
            tenant = db.session.get(Tenant, world.b.id)
            assert tenant is not None
            try:
                importer.check_file(tenant, path, today=today)
            except importer.ImportInvalid as refused:
                problems = refused.problems
            else:
                return path
        assert all(p.column in ("course", "referral_outcome_on") for p in problems), problems
        for problem in problems:
            rows[problem.row - 2].update(course="", referral_state="", referral_outcome_on="", sessions_attended="")


def _through_the_services(app: Flask, world: World, path: Path) -> None:
    """Each row recorded as an officer's intake, referral and moves would record it, one at a time."""
    today = datetime.now(UTC).date()
    with app.app_context(), scoped(world.b.id):
        tenant = db.session.get(Tenant, world.b.id)
        assert tenant is not None
        offerings = {(course_slug, offering.pathway): offering for offering, course_slug in
                     db.session.execute(select(Offering, Course.slug).join(Course))}
        for found in importer.read_rows(path, today=today):
            _, decision = cases.record_encounter(tenant, found.intake, actor=SYSTEM, today=today,
                                                 source=IMPORTED, decided_on=found.decided_on)
            if found.course is None or found.state is None:
                continue
            reason = told(Why.IMPORTED, importer.imported_details(LABEL, found.number))
            referral = cases.refer(tenant, decision, offerings[(found.course, decision.final_pathway)],
                                   actor=SYSTEM, today=found.decided_on, reason=reason)
            held = datetime.combine(found.ended_on or found.decided_on, time(12), tzinfo=UTC)
            path = rules.path_to(found.state, sessions=referral.sessions_required, attended=found.attended)
            cases.take_path(tenant, referral, path,
                            actor=SYSTEM, reason=reason, session_at=held,
                            venue=PLACE_NOT_RECORDED, reason_each_step=True)
        db.session.commit()


def _through_the_import(app: Flask, world: World, path: Path) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = db.session.get(Tenant, world.b.id)
        assert tenant is not None
        importer.import_file(tenant, path, today=datetime.now(UTC).date(), actor=SYSTEM)
        db.session.commit()


def _recorded(app: Flask, world: World) -> dict[str, Any]:
    """Everything the rows left in the force, without ids or times (sessions to the minute)."""
    with app.app_context(), scoped(world.b.id):
        people = {p.id: p for p in db.session.scalars(select(Person))}
        decisions = {d.encounter_id: d for d in db.session.scalars(select(Decision))}
        referrals = {r.encounter_id: r for r in db.session.scalars(select(Referral))}
        steps: dict[Any, list[tuple[Any, ...]]] = {}
        for referral in referrals.values():
            steps[referral.id] = [(step.from_state, step.to_state, step.account) for step in referral.transitions]
        sessions: dict[Any, list[tuple[Any, ...]]] = {}
        for held in db.session.scalars(select(BookedSession).order_by(BookedSession.starts_at)):
            sessions.setdefault(held.referral_id, []).append(
                (held.venue or PLACE_NOT_RECORDED, held.attendance, f"{held.starts_at:%Y-%m-%d %H:%M}",
                 held.booked_by_id))
        in_feed = {entry.referral_id for entry in db.session.scalars(select(FeedEntry))}

        def person(person_id: Any) -> tuple[Any, ...]:
            found = people[person_id]
            return (found.name_key, found.pnc_key, found.ethnicity, open_identity(found.identity_sealed),
                    open_contact(found.contact_sealed))

        encounters = []
        for encounter in db.session.scalars(select(Encounter)):
            decision = decisions[encounter.id]
            referral = referrals.get(encounter.id)
            encounters.append((
                person(encounter.person_id), encounter.offence_on, sorted(encounter.facts.items()), encounter.source,
                encounter.recorded_by_id,
                (decision.policy_hash, decision.decided_on, sorted(decision.facts.items()), decision.outcome,
                 decision.pathway, decision.unmet, decision.results, decision.missing, decision.age_band,
                 decision.ethnicity, decision.source, decision.decided_by_id),
                None if referral is None else (
                    referral.pathway, referral.state, referral.deadline, referral.sessions_required,
                    referral.sessions_attended, referral.outcome_code, referral.outcome_label, referral.provider_id,
                    referral.id in in_feed, steps[referral.id], sessions.get(referral.id, []))))
        return {"people": sorted((person(p) for p in people), key=repr), "encounters": sorted(encounters, key=repr),
                "states": {r.state for r in referrals.values()}}


def test_the_import_and_the_services_record_the_same_history(
        app: Flask, database: Any, world: World, tmp_path: Path) -> None:
    path = _importable(app, world, tmp_path)
    _through_the_services(app, world, path)
    by_services = _recorded(app, world)

    empty_database(database)
    with app.app_context():
        db.session.remove()
        again = build_world()
    _through_the_import(app, again, path)
    by_import = _recorded(app, again)

    assert len(by_services["encounters"]) == ROWS
    assert len(by_import["states"]) >= 6  # varied indeed
    assert by_import["people"] == by_services["people"]
    for imported, serviced in zip(by_import["encounters"], by_services["encounters"], strict=True):
        assert imported == serviced
