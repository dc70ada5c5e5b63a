"""Case work recorded after the fact: each step stamped with the time it happened (``at``), in order, never ahead."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select

from diversion.accounts.access import SYSTEM
from diversion.cases import rules
from diversion.cases import services as cases
from diversion.cases.models import BookedSession, State
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.cases.test_case_work import _durham, _intake, _offering
from tests.conftest import World, steps_of

DAY = date(2026, 10, 5)
NINE = datetime(2026, 10, 5, 9, tzinfo=UTC)


def test_each_step_is_stamped_with_its_own_time(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        _, decision = cases.record_encounter(tenant, _intake(offence_on=DAY), actor=SYSTEM, today=DAY)
        referral = cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=DAY, at=NINE)
        path = rules.path_to(State.COMPLETED, sessions=referral.sessions_required)
        times = [NINE + timedelta(days=number + 1) for number in range(len(path))]
        cases.take_path(tenant, referral, path, actor=SYSTEM, reason="", session_at=NINE, venue="Hub", times=times)
        steps = steps_of(referral.id)
        assert [s.occurred_at for s in steps] == [NINE, *times]
        assert [s.to_state for s in steps] == [State.OFFERED, *path]
        sessions = db.session.scalars(select(BookedSession).where(BookedSession.referral_id == referral.id)
                                      .order_by(BookedSession.starts_at)).all()
        assert len(sessions) == referral.sessions_required
        for session in sessions:
            # Booked at one step, held and recorded at the next.
            assert session.booked_at + timedelta(days=1) == session.starts_at == session.attendance_recorded_at
        assert referral.state is State.COMPLETED


def test_a_step_dated_before_the_last_one_or_ahead_is_refused(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        _, decision = cases.record_encounter(tenant, _intake(offence_on=DAY), actor=SYSTEM, today=DAY)
        referral = cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=DAY, at=NINE)
        with pytest.raises(cases.CaseError, match="before the referral's previous step") as early:
            cases.transition(tenant, referral, State.ACCEPTED, actor=SYSTEM, at=NINE - timedelta(minutes=1))
        assert early.value.field == "at"
        with pytest.raises(cases.CaseError, match="in the future"):
            cases.transition(tenant, referral, State.ACCEPTED, actor=SYSTEM,
                             at=datetime.now(UTC) + timedelta(hours=1))
        assert referral.state is State.OFFERED
        with pytest.raises(cases.CaseError, match="one time per step"):
            cases.take_path(tenant, referral, (State.ACCEPTED,), actor=SYSTEM, reason="", session_at=NINE,
                            venue="Hub", times=[])
        step = cases.transition(tenant, referral, State.ACCEPTED, actor=SYSTEM, at=NINE)  # the same moment will do
        assert step.occurred_at == NINE


def _completed(tenant: Tenant, offence_on: date, at: datetime) -> None:
    _, decision = cases.record_encounter(tenant, _intake(offence_on=offence_on), actor=SYSTEM, today=offence_on)
    referral = cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=offence_on, at=at)
    path = rules.path_to(State.COMPLETED, sessions=referral.sessions_required)
    cases.take_path(tenant, referral, path, actor=SYSTEM, reason="", session_at=at, venue="Hub",
                    times=[at + timedelta(hours=number + 1) for number in range(len(path))])


def test_the_home_page_counts_the_courses_completed_this_month_from_their_own_index(app: Flask, world: World) -> None:
    sent: list[tuple[str, Any]] = []

    def note(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        _completed(tenant, date(2026, 9, 28), datetime(2026, 9, 28, 9, tzinfo=UTC))  # September's
        _completed(tenant, DAY, NINE)  # October's
        event.listen(db.engine, "before_cursor_execute", note)
        try:
            board = cases.dashboard(date(2026, 10, 20))
        finally:
            event.remove(db.engine, "before_cursor_execute", note)
        assert board.completed_this_month == 1
        statement, parameters = next((s, p) for s, p in sent if "completed_at" in s)
        if db.engine.dialect.name == "postgresql":  # the partial index's predicate is the query's own
            connection = db.session.connection()
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()
            assert any("ix_referrals_completed_tenant_id_completed_at" in line for line in plan), plan


def test_the_reason_is_the_last_steps_alone(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        _, decision = cases.record_encounter(tenant, _intake(offence_on=DAY), actor=SYSTEM, today=DAY)
        referral = cases.refer(tenant, decision, _offering(), actor=SYSTEM, today=DAY, at=NINE)
        path = rules.path_to(State.WITHDRAWN, sessions=referral.sessions_required, via=State.ACCEPTED)
        assert path[0] is State.ACCEPTED
        cases.take_path(tenant, referral, path, actor=SYSTEM, reason="Charged for another matter",
                        session_at=NINE, venue="Hub")
        steps = steps_of(referral.id)
        said = {step.to_state: step.reason for step in steps}
        assert said[State.ACCEPTED] == ""  # the acceptance is not explained by the withdrawal's reason
        assert said[State.WITHDRAWN] == "Charged for another matter"
