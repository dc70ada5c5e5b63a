"""The demo's billing: a contract for every force and provider that work together, made before the
case work moves, and case work whose steps are dated across the last two calendar months, as news."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time
from typing import Any

from flask import Flask
from sqlalchemy import select

from diversion.accounts.models import ProviderMembership, User
from diversion.billing import contracts
from diversion.billing.demo import NOTES, seed_contracts
from diversion.billing.models import Contract, EventKind
from diversion.billing.months import month_of, previous_month
from diversion.cases.events import Moved, referrals_moved
from diversion.cases.models import BookedSession, Referral, State
from diversion.catalogue.models import Course, Offering
from diversion.db import LONDON
from diversion.demo import case_work_window, seed_case_work, seed_demo, session_start, step_times
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World, steps_of


def test_the_window_starts_on_the_first_day_of_the_month_before_last() -> None:
    assert case_work_window(date(2026, 12, 2)) == (date(2026, 10, 1), date(2026, 11, 29))
    assert case_work_window(date(2027, 1, 31)) == (date(2026, 11, 1), date(2027, 1, 28))
    assert case_work_window(date(2027, 3, 1)) == (date(2027, 1, 1), date(2027, 2, 26))


def _in_working_hours(moment: datetime) -> bool:
    """On a weekday, on the hour or half hour, from 09:00 to 17:00 in London."""
    local = moment.astimezone(LONDON)
    return (local.weekday() < 5 and local.minute in (0, 30) and local.second == 0
            and time(9) <= local.time() <= time(17))


def test_steps_are_about_two_days_apart_in_working_hours_or_closer_before_the_limit() -> None:
    offered = datetime(2026, 11, 1, 9, tzinfo=UTC)  # a Sunday
    steps = step_times(offered, 2, limit=datetime(2026, 12, 1, tzinfo=UTC))
    assert [step.astimezone(LONDON).date() for step in steps] == [date(2026, 11, 3), date(2026, 11, 5)]
    assert all(_in_working_hours(step) for step in steps)
    close = step_times(offered, 5, limit=datetime(2026, 11, 2, 17, tzinfo=UTC))  # Monday's working day only
    assert close == sorted(close)
    assert len(set(close)) == 5
    assert offered < close[0]
    assert close[-1] <= datetime(2026, 11, 2, 17, tzinfo=UTC)
    assert all(_in_working_hours(step) for step in close)
    # Fewer working half hours than steps before the limit: spread evenly, whatever the hour.
    crowded = step_times(offered, 3, limit=datetime(2026, 11, 1, 21, tzinfo=UTC))
    assert crowded == sorted(crowded)
    assert offered < crowded[0]
    assert crowded[-1] < datetime(2026, 11, 1, 21, tzinfo=UTC)


def test_a_session_starts_before_its_attendance_is_recorded_or_two_working_days_after_its_booking() -> None:
    booked = datetime(2026, 11, 3, 9, 30, tzinfo=LONDON)
    assert session_start(booked, datetime(2026, 11, 5, 11, tzinfo=LONDON), deadline=date(2026, 12, 1)) == \
        datetime(2026, 11, 5, 10, tzinfo=LONDON)
    # Attendance recorded soon after the booking: the session starts after the booking all the same.
    assert session_start(booked, datetime(2026, 11, 3, 10, 30, tzinfo=LONDON), deadline=date(2026, 12, 1)) == \
        datetime(2026, 11, 3, 10, tzinfo=LONDON)
    assert session_start(booked, datetime(2026, 11, 4, 9, tzinfo=LONDON), deadline=date(2026, 12, 1)) == \
        datetime(2026, 11, 4, 9, tzinfo=LONDON)
    # Not yet attended: two days on (a Thursday booking's session falls on the Monday), or by the deadline.
    assert session_start(datetime(2026, 11, 5, 16, tzinfo=LONDON), None, deadline=date(2026, 12, 1)) == \
        datetime(2026, 11, 9, 9, tzinfo=LONDON)
    assert session_start(booked, None, deadline=date(2026, 11, 4)) == datetime(2026, 11, 4, 17, tzinfo=LONDON)


def test_every_force_and_provider_pair_gets_one_contract_priced_near_70_pounds(app: Flask, world: World) -> None:
    today = datetime.now(UTC).date()
    start = case_work_window(today)[0]
    with app.app_context():
        for tenant in db.session.scalars(select(Tenant)).all():
            with scoped(tenant.id):
                pairs = set(db.session.scalars(select(Course.provider_id).join(Offering,
                                                                               Offering.course_id == Course.id)))
                assert seed_contracts(tenant, starts_on=start) == len(pairs)
                assert seed_contracts(tenant, starts_on=start) == 0  # a pair with a contract is left alone
                made = db.session.scalars(select(Contract)).all()
                assert {c.provider_id for c in made} == pairs
                for contract in made:
                    assert contract.notes == NOTES
                    assert "assumptions" in contract.notes
                    assert contract.starts_on == start
                    assert contract.ends_on is None
                    prices = contracts.prices_of(contract)
                    accepted = [p for (kind, _), p in prices.items() if kind is EventKind.REFERRAL_ACCEPTED]
                    assert accepted
                    assert all(6500 <= p <= 7500 for p in accepted)
                    assert all(p < 7000 for (kind, _), p in prices.items() if kind is not EventKind.REFERRAL_ACCEPTED)
        db.session.commit()


def test_the_case_work_is_dated_across_the_last_two_months_and_announced_as_news(app: Flask, world: World) -> None:
    today = datetime.now(UTC).date()
    heard: list[tuple[bool, Moved]] = []

    def listen(_sender: Any, *, moves: list[Moved], history: bool) -> None:
        heard.extend((history, move) for move in moves)

    with app.app_context(), scoped(world.a.id), referrals_moved.connected_to(listen):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        seed_contracts(tenant, starts_on=case_work_window(today)[0])
        seed_demo(password="demo-password-1", forces=[tenant])
        assert seed_case_work(tenant, today=today) > 0
        db.session.commit()
        assert heard
        assert not any(history for history, _ in heard)  # news: billed as each move happens
        this_month = month_of(datetime.now(UTC))
        last, before_last = previous_month(this_month), previous_month(previous_month(this_month))
        accepted = Counter(month_of(move.occurred_at) for _, move in heard if move.to is State.ACCEPTED)
        assert accepted[last] > 0
        assert accepted[before_last] > 0
        # Every step after the one before it, none in the future; sessions inside the deadline.
        now = datetime.now(UTC)
        officer = db.session.scalars(select(User).where(User.email == f"officer@{tenant.slug}.example")).one()
        staff = {membership.provider_id: membership.user_id for membership in db.session.scalars(
            select(ProviderMembership).join(User, User.id == ProviderMembership.user_id)
            .where(User.email.like("staff@%")))}
        for referral in db.session.scalars(select(Referral)):
            steps = steps_of(referral.id)
            assert steps[0].to_state is State.OFFERED
            assert steps[0].occurred_at.date() <= referral.deadline
            times = [step.occurred_at for step in steps]
            assert times == sorted(times)
            assert len(set(times)) == len(times)
            assert times[-1] <= now
            # The officer offers and withdraws; the provider's demo staff member makes every other step.
            assert steps[0].actor_id == officer.id
            for step in steps[1:]:
                made_by = officer.id if step.to_state is State.WITHDRAWN else staff[referral.provider_id]
                assert (step.actor_id, step.by_system) == (made_by, None), step
            # Each step in working hours (a withdrawal too), each session in them.
            assert all(_in_working_hours(step.occurred_at) for step in steps[1:])
            for session in db.session.scalars(select(BookedSession).where(BookedSession.referral_id == referral.id)):
                assert _in_working_hours(session.starts_at), session.starts_at
                assert session.booked_by_id == staff[referral.provider_id]
                assert session.starts_at.date() <= referral.deadline
                assert session.booked_at <= session.starts_at
                if session.attendance_recorded_at is not None:
                    assert session.starts_at <= session.attendance_recorded_at
        # Each contract was in force on the day of every accepted referral of its provider.
        for _, move in heard:
            if move.to is State.ACCEPTED:
                assert contracts.contract_in_force(move.provider_id, move.occurred_at.date()) is not None
