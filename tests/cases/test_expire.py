"""`diversion referrals expire`: open referrals past their deadline become not completed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.cases import services
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import Referral, State, Why
from diversion.catalogue.models import Course, Offering
from diversion.cli import main
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World

FACTS = {
    "offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
    "user_dealer": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
    "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
    "resident_in_force_area": True, "suitable_for_out_of_court_disposal": True,
}
STAGE = {"durham": "custody", "west-midlands": "street"}


def _run(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def _referral(tenant: Tenant, surname: str, *, decided_on: date, moves: tuple[State, ...] = ()) -> Referral:
    """An eligible encounter decided on ``decided_on``, referred to the force's first offering, moved on."""
    intake = services.Intake(Identity(surname, "Alex", date(1990, 1, 1)), Contact(), "W1", decided_on,
                             {**FACTS, "stage": STAGE[tenant.slug]})
    _, decision = services.record_encounter(tenant, intake, actor=SYSTEM, today=decided_on)
    assert decision.outcome == "eligible", decision.results
    offering = db.session.scalars(select(Offering).join(Course).where(Offering.pathway == decision.pathway)
                                  .order_by(Course.slug)).first()
    assert offering is not None
    referral = services.refer(tenant, decision, offering, actor=SYSTEM, today=decided_on)
    for state in moves:
        session = services.SessionDetails(datetime.combine(decided_on, time(12), tzinfo=UTC), "Test venue") \
            if state is State.BOOKED else None
        services.move_to(tenant, referral, state, actor=SYSTEM, reason="test", session=session)
    return referral


def _states(app: Flask, tenant_id: int) -> dict[str, State]:
    from diversion.cases.identity import open_identity
    from diversion.cases.models import Person

    with app.app_context(), scoped(tenant_id):
        return {open_identity(person.identity_sealed).surname: state
                for state, person in db.session.execute(select(Referral.state, Person).join(Person))}


def _seed(app: Flask, world: World) -> None:
    today = datetime.now(UTC).date()
    long_ago = today - timedelta(days=400)
    with app.app_context():
        for tenant_id in (world.a.id, world.b.id):
            tenant = db.session.get(Tenant, tenant_id)
            assert tenant is not None
            with scoped(tenant.id):
                _referral(tenant, "Overdue", decided_on=long_ago)
                _referral(tenant, "Booked", decided_on=long_ago, moves=(State.ACCEPTED, State.BOOKED))
                _referral(tenant, "Declined", decided_on=long_ago, moves=(State.DECLINED,))
                _referral(tenant, "Current", decided_on=today)
                db.session.commit()


def test_expire_moves_only_overdue_open_referrals_of_the_force(app: Flask, world: World) -> None:
    _seed(app, world)
    result = _run(app, "referrals", "expire", "--tenant", "durham")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "durham: 2 moved to not completed"
    assert _states(app, world.b.id) == {"Overdue": State.NOT_COMPLETED, "Booked": State.NOT_COMPLETED,
                                        "Declined": State.DECLINED, "Current": State.OFFERED}
    # The other force is untouched.
    assert _states(app, world.a.id)["Overdue"] == State.OFFERED
    with app.app_context(), scoped(world.b.id):
        moved = db.session.scalars(select(Referral).where(Referral.state == State.NOT_COMPLETED)).all()
        for referral in moved:
            assert referral.outcome_code == "prosecution"
            last = referral.transitions[-1]
            assert last.to_state == State.NOT_COMPLETED
            assert (last.why, last.reason) == (Why.DEADLINE_PASSED, "")
            assert last.account == f"Deadline passed on {referral.deadline.day} {referral.deadline:%B %Y}"
    again = _run(app, "referrals", "expire", "--tenant", "durham")
    assert again.output.strip() == "durham: 0 moved to not completed"


def test_expire_without_a_force_runs_for_every_force(app: Flask, world: World) -> None:
    _seed(app, world)
    result = _run(app, "referrals", "expire")
    assert result.exit_code == 0, result.output
    assert "durham: 2 moved to not completed" in result.output
    assert "west-midlands: 2 moved to not completed" in result.output
    assert "thames-valley: 0 moved to not completed" in result.output
    assert "4 in all" in result.output
    assert _states(app, world.a.id)["Overdue"] == State.NOT_COMPLETED
    assert _states(app, world.a.id)["Current"] == State.OFFERED
    assert "no force 'gotham'" in _run(app, "referrals", "expire", "--tenant", "gotham").output
