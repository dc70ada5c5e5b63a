"""The ledger: one row per billable move, priced on its date, never changed, reversed once."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import User
from diversion.billing import ledger
from diversion.billing.models import ClosedMonth, EventKind, LedgerEntry
from diversion.cases.models import Referral, State
from diversion.errors import AccessRefused, FieldError
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.billing.conftest import Billing, at, make_contract, moved, rows
from tests.conftest import World
from tests.providers.conftest import move


def test_each_billable_move_writes_one_row_at_its_price(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    move(app, billing.force, billing.referral, State.ACCEPTED)  # through the case services
    moved(app, billing, State.ATTENDED, at(2026, 10, 3))
    moved(app, billing, State.COMPLETED, at(2026, 10, 4))
    moved(app, billing, State.BOOKED, at(2026, 10, 2))  # not billable
    moved(app, billing, State.DECLINED, at(2026, 10, 2))  # not billable
    found = rows(app, billing.force)
    assert [(r["kind"], r["unit"], r["amount"]) for r in found] == [
        (EventKind.REFERRAL_ACCEPTED, 7000, 7000), (EventKind.SESSION_ATTENDED, 1500, 1500),
        (EventKind.COURSE_COMPLETED, 2500, 2500)]
    assert [r["month"] for r in found[1:]] == [date(2026, 10, 1)] * 2
    assert all(r["key"].startswith("referral-event:") for r in found)


def test_the_same_move_announced_twice_writes_one_row(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    step = moved(app, billing, State.ACCEPTED, at(2026, 10, 3))
    moved(app, billing, State.ACCEPTED, at(2026, 10, 3), transition_id=step)
    assert len(rows(app, billing.force)) == 1
    with app.app_context(), scoped(billing.force.id):  # the database refuses the key as well
        db.session.add(LedgerEntry(tenant_id=billing.force.id, key=ledger.event_key(step),
                                   provider_id=billing.provider.id, contract_id=rows(app, billing.force)[0]["contract"],
                                   month=date(2026, 10, 1), kind=EventKind.REFERRAL_ACCEPTED, pathway="divert",
                                   occurred_at=at(2026, 10, 3), unit_pence=1, amount_pence=1))
        with pytest.raises(Exception, match=r"(?i)unique"):
            db.session.flush()
        db.session.rollback()


def test_the_price_is_the_one_in_force_on_the_events_date(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1), ends_on=date(2026, 9, 30),
                  prices={EventKind.SESSION_ATTENDED: 1000})
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 10, 1),
                  prices={EventKind.SESSION_ATTENDED: 1200})
    moved(app, billing, State.ATTENDED, at(2026, 9, 30, 22))  # 23:00 in London: still September
    moved(app, billing, State.ATTENDED, at(2026, 9, 30, 23, ))  # midnight in London: October
    moved(app, billing, State.ATTENDED, at(2025, 12, 31))  # before any contract: nothing owed
    moved(app, billing, State.COMPLETED, at(2026, 10, 5))  # no price for completion: nothing owed
    found = rows(app, billing.force)
    assert sorted((r["month"], r["unit"]) for r in found) == [(date(2026, 9, 1), 1000), (date(2026, 10, 1), 1200)]


def test_history_writes_nothing(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    moved(app, billing, State.ACCEPTED, at(2026, 10, 3), history=True)
    moved(app, billing, State.COMPLETED, at(2026, 10, 9), history=True)
    assert rows(app, billing.force) == []


def test_no_contract_no_row_and_another_force_is_not_billed(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, world.b, billing.provider, starts_on=date(2026, 1, 1), pathway="checkpoint")
    moved(app, billing, State.ACCEPTED, at(2026, 10, 3))
    assert rows(app, billing.force) == []
    assert rows(app, world.b) == []


def close(app: Flask, billing: Billing, month: date) -> None:
    with app.app_context(), scoped(billing.force.id):
        db.session.add(ClosedMonth(tenant_id=billing.force.id, month=month))
        db.session.commit()


def test_a_closed_month_sends_late_events_to_the_next_open_month(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    close(app, billing, date(2026, 9, 1))
    close(app, billing, date(2026, 10, 1))
    moved(app, billing, State.ACCEPTED, at(2026, 9, 20))
    moved(app, billing, State.ATTENDED, at(2026, 8, 20))
    assert sorted(r["month"] for r in rows(app, billing.force)) == [date(2026, 8, 1), date(2026, 11, 1)]
    with app.app_context(), scoped(billing.force.id):
        assert ledger.open_month(billing.force.id, date(2026, 9, 1)) == date(2026, 11, 1)
        assert ledger.open_month(billing.force.id, date(2026, 12, 1)) == date(2026, 12, 1)


def tenant_of(billing: Billing) -> Tenant:
    tenant = db.session.get(Tenant, billing.force.id)
    assert tenant is not None
    return tenant


def test_a_monthly_fee_is_charged_once_per_month_per_contract(app: Flask, world: World, billing: Billing) -> None:
    first = make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1),
                          ends_on=date(2026, 10, 15), fee=50000)
    second = make_contract(app, billing.force, billing.provider, starts_on=date(2026, 10, 16), fee=60000)
    make_contract(app, world.b, billing.provider, starts_on=date(2026, 1, 1), fee=1, pathway="checkpoint")
    with app.app_context(), scoped(billing.force.id):
        assert ledger.charge_monthly_fees(tenant_of(billing), date(2026, 10, 1), actor=SYSTEM) == 2
        assert ledger.charge_monthly_fees(tenant_of(billing), date(2026, 10, 1), actor=SYSTEM) == 0
        assert ledger.charge_monthly_fees(tenant_of(billing), date(2026, 11, 1), actor=SYSTEM) == 1
        db.session.commit()
    found = rows(app, billing.force)
    assert sorted((r["key"], r["amount"], r["month"]) for r in found) == sorted([
        (f"monthly-fee:{first}:2026-10", 50000, date(2026, 10, 1)),
        (f"monthly-fee:{second}:2026-10", 60000, date(2026, 10, 1)),
        (f"monthly-fee:{second}:2026-11", 60000, date(2026, 11, 1))])
    assert all(r["kind"] is EventKind.MONTHLY_FEE for r in found)
    assert rows(app, world.b) == []


def test_only_the_close_charges_fees(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1), fee=50000)
    with app.app_context(), scoped(billing.force.id):
        admin = db.session.get(User, world.users["a_force_admin"].id)
        with pytest.raises(AccessRefused):
            ledger.charge_monthly_fees(tenant_of(billing), date(2026, 10, 1), actor=admin)
    assert rows(app, billing.force) == []


def test_a_row_is_reversed_once_with_a_reason(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    moved(app, billing, State.ACCEPTED, at(2026, 10, 3))
    close(app, billing, date(2026, 10, 1))
    original = rows(app, billing.force)[0]
    with app.app_context(), scoped(billing.force.id):
        admin = db.session.get(User, world.users["platform_admin"].id)
        force_admin = db.session.get(User, world.users["a_force_admin"].id)
        entry = db.session.get(LedgerEntry, original["id"])
        assert entry is not None
        with pytest.raises(FieldError) as blank:
            ledger.reverse(tenant_of(billing), entry, reason="   ", actor=admin)
        assert blank.value.field == "reason"
        with pytest.raises(AccessRefused):
            ledger.reverse(tenant_of(billing), entry, reason="Accepted by mistake", actor=force_admin)
        reversal = ledger.reverse(tenant_of(billing), entry, reason="  Accepted   by mistake ", actor=admin)
        assert (reversal.unit_pence, reversal.amount_pence, reversal.reason) == (-7000, -7000, "Accepted by mistake")
        assert reversal.month > date(2026, 10, 1)  # October is closed
        with pytest.raises(FieldError, match="already been reversed"):
            ledger.reverse(tenant_of(billing), entry, reason="Again", actor=admin)
        with pytest.raises(FieldError, match="itself a reversal"):
            ledger.reverse(tenant_of(billing), reversal, reason="Undo", actor=admin)
        assert ledger.reversed_ids([entry.id, reversal.id]) == {entry.id}
        db.session.commit()
    assert [r["reverses"] for r in rows(app, billing.force)] == [None, original["id"]]


def test_ledger_rows_are_never_changed_or_deleted(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    moved(app, billing, State.ACCEPTED, at(2026, 10, 3))
    with app.app_context(), scoped(billing.force.id):
        entry = db.session.scalars(select(LedgerEntry)).one()
        entry.unit_pence = 1
        with pytest.raises(ledger.LedgerChanged):
            db.session.flush()
        db.session.rollback()
        entry = db.session.scalars(select(LedgerEntry)).one()
        db.session.delete(entry)
        with pytest.raises(ledger.LedgerChanged):
            db.session.flush()
        db.session.rollback()
        with pytest.raises(ledger.LedgerChanged):
            db.session.execute(update(LedgerEntry).values(reason="changed"))
        db.session.rollback()
    assert [r["unit"] for r in rows(app, billing.force)] == [7000]


def test_a_batch_of_moves_writes_a_row_each(app: Flask, world: World, billing: Billing) -> None:
    from diversion.cases.events import Moved, announce

    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    import uuid

    start = at(2026, 9, 1)
    batch = [Moved(billing.referral, billing.provider.id, "divert", State.BOOKED, State.ATTENDED, uuid.uuid4(),
                   start + timedelta(days=day)) for day in range(60)]
    with app.app_context(), scoped(billing.force.id):
        announce(tenant_of(billing), batch)
        announce(tenant_of(billing), batch[:10])  # replayed: nothing new
        db.session.commit()
    found = rows(app, billing.force)
    assert len(found) == 60
    assert {r["month"] for r in found} == {date(2026, 9, 1), date(2026, 10, 1)}


def test_a_missed_session_and_the_end_it_may_bring_bill_nothing(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    move(app, billing.force, billing.referral, State.ACCEPTED)  # through the case services
    move(app, billing.force, billing.referral, State.BOOKED)
    move(app, billing.force, billing.referral, State.MISSED)  # waiting for a rebooking
    move(app, billing.force, billing.referral, State.BOOKED)
    move(app, billing.force, billing.referral, State.MISSED)  # a second miss: more than the force allows
    with app.app_context(), scoped(billing.force.id):
        referral = db.session.get(Referral, billing.referral)
        assert referral is not None
        assert referral.state is State.NOT_COMPLETED
    assert [r["kind"] for r in rows(app, billing.force)] == [EventKind.REFERRAL_ACCEPTED]
