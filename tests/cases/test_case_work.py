"""Case work: pseudonymous people, intake with derived facts, overrides, referrals and outcomes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import User
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity, open_contact, open_identity
from diversion.cases.models import Person, Referral, State
from diversion.catalogue.models import Offering
from diversion.db import LONDON
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from diversion.words import moment
from tests.conftest import World, started_today, steps_of

TODAY = date(2026, 11, 24)
USER_DEALER = {"offence": "supply", "user_dealer": True, "substances": ["heroin"], "drug_class": "A",
               "personal_use": False, "admission": "admitted", "under_court_order": False,
               "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
               "resident_in_force_area": True, "stage": "custody"}
JO = Identity("O'Neill", "Jo", date(1990, 5, 1), "2001/0012345A")


def _intake(identity: Identity = JO, offence_on: date = TODAY - timedelta(days=3), **facts: object) -> cases.Intake:
    return cases.Intake(identity, Contact("07700 900123", "jo@example.org", "1 High St"), "B2", offence_on,
                        {**USER_DEALER, **facts})


def _durham(world: World) -> Tenant:
    tenant = db.session.get(Tenant, world.b.id)
    assert tenant is not None
    return tenant


def _offering(pathway: str = "checkpoint") -> Offering:
    offering = db.session.scalar(select(Offering).where(Offering.pathway == pathway))
    assert offering is not None
    return offering


def test_intake_decides_at_once_with_derived_facts(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        encounter, decision = cases.record_encounter(_durham(world), _intake(), actor=SYSTEM, today=TODAY)
        assert (decision.outcome, decision.pathway) == ("eligible", "checkpoint")
        assert decision.facts["age"] == 36
        assert decision.facts["offence_age_days"] == 3
        assert decision.facts["previous_diversions"] == 0
        assert "age" not in encounter.facts  # the officer's facts are kept apart from derived ones
        assert decision.encounter_id == encounter.id


def test_a_person_met_without_contact_details_keeps_none_and_later_details_are_sealed(app: Flask,
                                                                                      world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        bare = cases.Intake(JO, Contact(), "B2", TODAY - timedelta(days=3), USER_DEALER)
        encounter, _ = cases.record_encounter(_durham(world), bare, actor=SYSTEM, today=TODAY)
        person = db.session.get(Person, encounter.person_id)
        assert person.contact_sealed == b""  # nothing to seal
        assert open_contact(person.contact_sealed) == Contact()
        cases.record_encounter(_durham(world), _intake(offence_on=TODAY - timedelta(days=1)), actor=SYSTEM,
                               today=TODAY)
        assert person.contact_sealed
        assert b"07700" not in person.contact_sealed
        assert open_contact(person.contact_sealed).phone == "07700 900123"


def test_people_are_pseudonymous_sealed_and_linked_only_within_a_force(app: Flask, world: World,
                                                                       database) -> None:
    with app.app_context():
        with scoped(world.b.id):
            first, _ = cases.record_encounter(_durham(world), _intake(), actor=SYSTEM, today=TODAY)
            # The same person, written differently: still the same key in this force.
            again = Identity("ONEILL ", "jo", date(1990, 5, 1))
            second, _ = cases.record_encounter(_durham(world), _intake(again), actor=SYSTEM, today=TODAY)
            assert first.person_id == second.person_id
            person = db.session.get(Person, first.person_id)
            assert open_identity(person.identity_sealed).surname == "O'Neill"
            assert open_contact(person.contact_sealed).email == "jo@example.org"
        with scoped(world.a.id):
            west = db.session.get(Tenant, world.a.id)
            facts = {**USER_DEALER, "stage": "street"}
            other, _ = cases.record_encounter(west, cases.Intake(JO, Contact(), "B2", TODAY, facts),
                                              actor=SYSTEM, today=TODAY)
            west_key = db.session.get(Person, other.person_id).name_key
        assert west_key != person.name_key
        db.session.commit()
    engine = create_engine(database.inspector_url)
    with engine.connect() as connection:
        stored = [value for row in connection.execute(text("SELECT * FROM people")) for value in row]
    engine.dispose()
    for secret in ("O'Neill", "Neill", "jo@example.org", "07700", "1990-05-01", "2001/0012345A"):
        # Bytes are searched as bytes: their printed form could spell a secret by chance ("\x07700").
        assert not any(secret.encode() in value if isinstance(value, bytes) else secret in str(value)
                       for value in stored)


def test_history_counts_earlier_diversions_and_non_engagement(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        _, first = cases.record_encounter(tenant, _intake(offence_on=date(2026, 1, 10)), actor=SYSTEM,
                                          today=date(2026, 1, 12))
        referral = cases.refer(tenant, first, _offering(), actor=SYSTEM, today=date(2026, 1, 12))
        cases.transition(tenant, referral, State.ACCEPTED, actor=SYSTEM)
        cases.transition(tenant, referral, State.NOT_COMPLETED, actor=SYSTEM, reason="Did not attend")
        assert referral.outcome_code == "prosecution"
        _, later = cases.record_encounter(tenant, _intake(offence_on=date(2026, 6, 1)), actor=SYSTEM,
                                          today=date(2026, 6, 2))
        assert later.facts["previous_diversions"] == 1
        assert later.facts["previous_non_engagement"] is True
        assert cases.reoffended([first, later]) == {first.id: True, later.id: False}


def test_intake_refuses_bad_input_naming_the_field(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        bad = [
            (_intake(offence_on=TODAY + timedelta(days=1)), "offence_on"),
            (_intake(Identity("A", "B", date(2020, 1, 1))), "date_of_birth"),
            (cases.Intake(JO, Contact(), "XX", TODAY, USER_DEALER), "ethnicity"),
            (_intake(age=30), "age"),
            (_intake(offence="murder"), "offence"),
            (_intake(Identity(" ", "B", date(1990, 1, 1))), "surname"),
        ]
        for intake, field in bad:
            with pytest.raises(cases.CaseError) as caught:
                cases.record_encounter(tenant, intake, actor=SYSTEM, today=TODAY)
            assert caught.value.field == field
        assert db.session.scalar(select(func.count()).select_from(Decision).where(Decision.source == "intake")) == 0


def test_needs_review_goes_to_the_queue_and_a_supervisor_overrides_with_a_reason(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        facts = dict(USER_DEALER)
        del facts["admission"]
        intake = cases.Intake(JO, Contact(), "W1", TODAY, facts)
        _, decision = cases.record_encounter(tenant, intake, actor=SYSTEM, today=TODAY)
        assert decision.outcome == "needs_review"
        assert db.session.scalars(cases.review_queue()).all() == [decision]
        supervisor = db.session.get(User, world.users["b_supervisor"].id)
        with pytest.raises(cases.CaseError, match="reason"):
            cases.override(tenant, decision, outcome="eligible", pathway="checkpoint", reason=" ", actor=supervisor)
        with pytest.raises(cases.CaseError, match="pathway"):
            cases.override(tenant, decision, outcome="eligible", pathway="divert", reason="ok", actor=supervisor)
        cases.override(tenant, decision, outcome="eligible", pathway="checkpoint",
                       reason="Admitted on tape", actor=supervisor)
        assert (decision.final_outcome, decision.final_pathway) == ("eligible", "checkpoint")
        assert db.session.scalars(cases.review_queue()).all() == []
        referral = cases.refer(tenant, decision, _offering(), actor=supervisor, today=TODAY)
        assert referral.state is State.OFFERED


def test_the_lifecycle_refuses_illegal_moves_and_records_who_when_why(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        _, decision = cases.record_encounter(tenant, _intake(), actor=SYSTEM, today=TODAY)
        referral = cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=TODAY)
        assert referral.deadline == TODAY + timedelta(days=122)
        assert referral.sessions_required == 5
        with pytest.raises(cases.CaseError, match="offered cannot become completed; it can become accepted"):
            cases.transition(tenant, referral, State.COMPLETED, actor=SYSTEM)
        with pytest.raises(cases.CaseError, match="open referral"):
            cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=TODAY)
        cases.transition(tenant, referral, State.ACCEPTED, actor=SYSTEM)
        monday = started_today().replace(second=0, microsecond=0)  # a session held, recorded late
        # Booked and attended come from booking a session and recording its attendance, at every door.
        with pytest.raises(cases.CaseError, match="Book a session"):
            cases.transition(tenant, referral, State.BOOKED, actor=SYSTEM, reason="Monday 10am")
        session, _ = cases.book_session(tenant, referral, starts_at=monday, venue="Durham hub", actor=SYSTEM)
        with pytest.raises(cases.CaseError, match="Record attendance at a booked session"):
            cases.transition(tenant, referral, State.ATTENDED, actor=SYSTEM)
        cases.record_attendance(tenant, session, attended=True, actor=SYSTEM)
        with pytest.raises(cases.CaseError, match="1 of 5 sessions are attended so far: book and record attendance"):
            cases.transition(tenant, referral, State.COMPLETED, actor=SYSTEM)
        for _ in range(4):
            session, _ = cases.book_session(tenant, referral, starts_at=monday, venue="Durham hub", actor=SYSTEM)
            cases.record_attendance(tenant, session, attended=True, actor=SYSTEM)
        cases.transition(tenant, referral, State.COMPLETED, actor=SYSTEM)
        assert (referral.outcome_code, referral.outcome_label) == ("outcome-22", "No further action (Outcome 22)")
        steps = [(t.from_state, t.to_state, t.account) for t in referral.transitions]
        assert steps[0] == (None, State.OFFERED, "Offered after the decision")
        held = f"{moment(monday)} at Durham hub"
        assert steps[2] == (State.ACCEPTED, State.BOOKED, f"Session booked for {held}")
        assert steps[3] == (State.BOOKED, State.ATTENDED, f"Attended the session of {held}")
        assert steps[-1][1] is State.COMPLETED
        with pytest.raises(cases.CaseError, match="it has ended"):
            cases.transition(tenant, referral, State.WITHDRAWN, actor=SYSTEM, reason="late")
        with pytest.raises(cases.CaseError, match=r"referral has ended \(completed\): its outcome stands"):
            cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=TODAY)


def test_a_place_is_offered_again_after_a_withdrawn_referral_alone(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        _, decision = cases.record_encounter(tenant, _intake(), actor=SYSTEM, today=TODAY)
        first = cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=TODAY)
        cases.transition(tenant, first, State.WITHDRAWN, actor=SYSTEM, reason="Offered the wrong course")
        again = cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=TODAY)
        assert again.id != first.id
        assert again.state is State.OFFERED
        cases.transition(tenant, again, State.DECLINED, actor=SYSTEM)
        with pytest.raises(cases.CaseError, match=r"referral has ended \(declined\)"):
            cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=TODAY)


def test_a_session_cannot_be_booked_before_the_day_of_the_offence(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        offence_on = TODAY - timedelta(days=3)
        _, decision = cases.record_encounter(tenant, _intake(offence_on=offence_on), actor=SYSTEM, today=TODAY)
        referral = cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=TODAY)
        cases.transition(tenant, referral, State.ACCEPTED, actor=SYSTEM)
        evening_before = datetime.combine(offence_on - timedelta(days=1), time(23, 30), LONDON)
        for starts_at in (evening_before, datetime(2020, 1, 1, 10, tzinfo=UTC)):
            with pytest.raises(cases.CaseError, match="on or after the day of the offence") as refused:
                cases.book_session(tenant, referral, starts_at=starts_at, venue="Durham hub", actor=SYSTEM)
            assert refused.value.field == "starts_at"
        assert referral.state is State.ACCEPTED
        assert cases.sessions_of(referral) == []
        # Its morning is the day of the offence in London, though still the evening before in UTC.
        cases.book_session(tenant, referral, starts_at=datetime.combine(offence_on, time(0, 30), LONDON),
                           venue="Durham hub", actor=SYSTEM)
        assert referral.state is State.BOOKED


def test_a_decline_takes_the_forces_non_completion_path(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        _, decision = cases.record_encounter(tenant, _intake(), actor=SYSTEM, today=TODAY)
        referral = cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=TODAY)
        cases.transition(tenant, referral, State.DECLINED, actor=SYSTEM)
        assert (referral.outcome_code, referral.outcome_label) == ("prosecution", "Prosecution resumes")


def test_referral_only_to_an_offered_course_of_the_pathway(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        west = db.session.get(Tenant, world.a.id)
        facts = {**USER_DEALER, "offence": "possession", "user_dealer": False, "personal_use": True,
                 "stage": "street"}
        _, adult = cases.record_encounter(west, cases.Intake(JO, Contact(), "W1", TODAY, facts), actor=SYSTEM,
                                          today=TODAY)
        assert adult.pathway == "divert"
        with pytest.raises(cases.CaseError, match="offers for the decision's pathway"):
            cases.refer(west, adult, _offering("divert-youth"), actor=SYSTEM, today=TODAY)
        assert cases.refer(west, adult, _offering("divert"), actor=SYSTEM, today=TODAY).pathway == "divert"


def test_expire_and_dashboard(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        _, old = cases.record_encounter(tenant, _intake(offence_on=date(2026, 1, 2)), actor=SYSTEM,
                                        today=date(2026, 1, 5))
        late = cases.refer(tenant, old, _offering(), actor=SYSTEM, today=date(2026, 1, 5))
        _, fresh = cases.record_encounter(tenant, _intake(Identity("Lee", "Ana", date(1999, 1, 1))),
                                          actor=SYSTEM, today=TODAY)
        cases.refer(tenant, fresh, _offering(), actor=SYSTEM, today=TODAY)
        board = cases.dashboard(TODAY)
        assert board.open_by_state[State.OFFERED] == 2
        assert board.overdue == 1
        assert cases.expire_overdue(tenant, today=TODAY, actor=SYSTEM) == 1
        assert late.state is State.NOT_COMPLETED
        assert db.session.scalar(select(func.count()).select_from(Referral)
                                 .where(Referral.state == State.OFFERED)) == 1


def test_a_referral_moved_by_another_request_meanwhile_is_refused_and_no_step_is_lost(
        app: Flask, world: World) -> None:
    """Two requests moving one referral at once: the second finds the referral moved since it read it, and
    is refused rather than writing its step over the first's (its steps are one value of the row)."""
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        _, decision = cases.record_encounter(tenant, _intake(), actor=SYSTEM, today=TODAY)
        referral = cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=TODAY)
        db.session.commit()
        referral_id = referral.id
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        mine = db.session.get(Referral, referral_id)
        assert mine is not None
        assert mine.state is State.OFFERED
        # Meanwhile, another request accepts it (another connection, its own transaction).
        with app.app_context(), scoped(world.b.id):
            other = db.session.get(Referral, referral_id)
            assert other is not None
            cases.transition(_durham(world), other, State.ACCEPTED, actor=SYSTEM)
            db.session.commit()
        with pytest.raises(cases.CaseError, match="changed while the change was being recorded"):
            cases.transition(tenant, mine, State.DECLINED, actor=SYSTEM, reason="Not interested")
        db.session.rollback()
    with app.app_context(), scoped(world.b.id):
        assert [step.to_state for step in steps_of(referral_id)] == [State.OFFERED, State.ACCEPTED]
