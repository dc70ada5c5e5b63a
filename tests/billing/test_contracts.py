"""Contracts: made, changed, found in force on a date, priced; every refusal names its field and writes nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from flask import Flask
from sqlalchemy import func, select

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import User
from diversion.audit.models import AuditEvent
from diversion.billing import contracts
from diversion.billing.contracts import ContractError, Terms
from diversion.billing.models import Contract, EventKind, LedgerEntry, Price, VatTreatment
from diversion.errors import AccessRefused
from diversion.extensions import db
from diversion.tenancy.context import provider_scoped, scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World

ACCEPTED, ATTENDED, COMPLETED = EventKind.REFERRAL_ACCEPTED, EventKind.SESSION_ATTENDED, EventKind.COURSE_COMPLETED


def _terms(world: World, **changes: object) -> Terms:
    base = Terms(provider_id=world.providers["cranstoun"].id, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31),
                 monthly_fee_pence=150_000, vat=VatTreatment.EXEMPT, platform_fee_basis_points=250,
                 prices={(ACCEPTED, "divert"): 7000, (ATTENDED, "divert"): 2500, (COMPLETED, "divert-youth"): 1500},
                 notes="Figures are assumptions for the demo.")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def force_a(app: Flask, world: World) -> Iterator[Tenant]:
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        yield tenant


def _counts() -> tuple[int, int, int]:
    return tuple(int(db.session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[return-value]
                 for model in (Contract, Price, AuditEvent))


def test_a_contract_is_made_with_its_prices_and_found_in_force(force_a: Tenant, world: World) -> None:
    contract = contracts.create_contract(force_a, _terms(world), actor=SYSTEM)
    db.session.commit()
    cranstoun = world.providers["cranstoun"].id
    assert contracts.prices_of(contract) == {(ACCEPTED, "divert"): 7000, (ATTENDED, "divert"): 2500,
                                             (COMPLETED, "divert-youth"): 1500}
    assert contracts.contract_in_force(cranstoun, date(2026, 1, 1)) == contract
    assert contracts.contract_in_force(cranstoun, date(2026, 12, 31)) == contract
    assert contracts.contract_in_force(cranstoun, date(2025, 12, 31)) is None
    assert contracts.contract_in_force(cranstoun, date(2027, 1, 1)) is None
    assert contracts.unit_price(contract.id, ACCEPTED, "divert") == 7000
    assert contracts.unit_price(contract.id, ACCEPTED, "divert-youth") is None  # not priced: not billed
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "contract.created"))
    assert event is not None
    assert event.object_id == str(contract.id)
    assert contracts.terms_of(contract) == _terms(world)


def test_contracts_may_follow_each_other_without_a_gap(force_a: Tenant, world: World) -> None:
    first = contracts.create_contract(force_a, _terms(world), actor=SYSTEM)
    second = contracts.create_contract(force_a, _terms(world, starts_on=date(2027, 1, 1), ends_on=None,
                                                       prices={(ACCEPTED, "divert"): 7500}), actor=SYSTEM)
    cranstoun = world.providers["cranstoun"].id
    assert contracts.contract_in_force(cranstoun, date(2026, 12, 31)) == first
    assert contracts.contract_in_force(cranstoun, date(2031, 6, 1)) == second
    assert contracts.unit_price(second.id, ACCEPTED, "divert") == 7500


REFUSALS = [
    pytest.param({"provider_id": "druglink"}, "provider", "delivers a course this force offers",
                 id="provider-not-serving"),
    pytest.param({"provider_id": 999_999}, "provider", "delivers a course", id="no-such-provider"),
    pytest.param({"ends_on": date(2025, 12, 31)}, "ends_on", "on or after the start date", id="ends-before-start"),
    pytest.param({"starts_on": date(1999, 12, 31)}, "starts_on", "on or after 1 January 2000", id="too-early"),
    pytest.param({"ends_on": date(2040, 1, 1)}, "ends_on", "at most 5 years ahead", id="too-far-ahead"),
    pytest.param({"monthly_fee_pence": -1}, "monthly_fee", "cannot be negative", id="negative-fee"),
    pytest.param({"monthly_fee_pence": 100_000_001}, "monthly_fee", "at most £1,000,000", id="huge-fee"),
    pytest.param({"platform_fee_basis_points": -1}, "platform_fee", "between 0% and 100%", id="platform-fee-below"),
    pytest.param({"platform_fee_basis_points": 10_001}, "platform_fee", "between 0% and 100%",
                 id="platform-fee-above"),
    pytest.param({"prices": {(ACCEPTED, "divert"): -7000}}, "price_referral_accepted_divert", "cannot be negative",
                 id="negative-price"),
    pytest.param({"prices": {(ACCEPTED, "conditional-caution"): 7000}}, "price_referral_accepted_conditional-caution",
                 "no pathway “conditional-caution”", id="pathway-the-force-lacks"),
    pytest.param({"prices": {(EventKind.MONTHLY_FEE, "divert"): 7000}}, "prices", "monthly fee",
                 id="monthly-fee-as-a-price"),
    pytest.param({"notes": "two\x00parts"}, "notes", "", id="control-characters"),
    pytest.param({"notes": "x" * 1001}, "notes", "1000 characters", id="notes-too-long"),
]


@pytest.mark.parametrize(("changes", "field", "says"), REFUSALS)
def test_bad_terms_are_refused_naming_the_field_and_nothing_is_written(
        force_a: Tenant, world: World, changes: dict[str, object], field: str, says: str) -> None:
    if changes.get("provider_id") == "druglink":
        changes = {**changes, "provider_id": world.providers["druglink"].id}
    before = _counts()
    with pytest.raises(ContractError) as refused:
        contracts.create_contract(force_a, _terms(world, **changes), actor=SYSTEM)
    assert refused.value.field == field
    assert says in refused.value.message
    assert not db.session.new
    assert _counts() == before


OVERLAPS = [
    pytest.param(date(2026, 12, 31), None, id="starts-on-its-last-day"),
    pytest.param(date(2025, 6, 1), date(2026, 1, 1), id="ends-on-its-first-day"),
    pytest.param(date(2026, 3, 1), date(2026, 4, 30), id="inside-it"),
    pytest.param(date(2025, 1, 1), None, id="open-ended-around-it"),
]


@pytest.mark.parametrize(("starts_on", "ends_on"), OVERLAPS)
def test_overlapping_dates_with_the_same_provider_are_refused(
        force_a: Tenant, world: World, starts_on: date, ends_on: date | None) -> None:
    contracts.create_contract(force_a, _terms(world), actor=SYSTEM)
    db.session.commit()
    before = _counts()
    with pytest.raises(ContractError) as refused:
        contracts.create_contract(force_a, _terms(world, starts_on=starts_on, ends_on=ends_on), actor=SYSTEM)
    assert refused.value.field == "starts_on"
    assert "overlap the contract with this provider from 1 January 2026 until 31 December 2026" \
        in refused.value.message
    assert _counts() == before


def test_an_open_ended_contract_overlaps_whatever_starts_after_it(force_a: Tenant, world: World) -> None:
    contracts.create_contract(force_a, _terms(world, ends_on=None), actor=SYSTEM)
    with pytest.raises(ContractError, match="until further notice"):
        contracts.create_contract(force_a, _terms(world, starts_on=date(2030, 1, 1), ends_on=None), actor=SYSTEM)


def test_another_force_may_have_the_same_dates_with_the_same_provider(app: Flask, world: World) -> None:
    """Overlap is per force and provider: Cranstoun's contract with West Midlands leaves Durham free."""
    with app.app_context():
        with scoped(world.a.id):
            a = db.session.get(Tenant, world.a.id)
            assert a is not None
            contracts.create_contract(a, _terms(world), actor=SYSTEM)
        with scoped(world.b.id):
            b = db.session.get(Tenant, world.b.id)
            assert b is not None
            # Durham offers no Cranstoun course: refused for that reason, never for an overlap.
            with pytest.raises(ContractError) as refused:
                contracts.create_contract(b, _terms(world), actor=SYSTEM)
            assert refused.value.field == "provider"
            assert contracts.contract_in_force(world.providers["cranstoun"].id, date(2026, 6, 1)) is None


def test_a_change_rewrites_the_terms_and_the_prices(force_a: Tenant, world: World) -> None:
    contract = contracts.create_contract(force_a, _terms(world), actor=SYSTEM)
    changed = _terms(world, ends_on=date(2026, 6, 30), monthly_fee_pence=0, vat=VatTreatment.STANDARD,
                     prices={(ACCEPTED, "divert"): 7200, (ACCEPTED, "divert-youth"): 6800}, notes="Renegotiated")
    contracts.change_contract(force_a, contract, changed, actor=SYSTEM)
    db.session.commit()
    assert contracts.terms_of(contract) == changed
    assert db.session.scalar(select(func.count()).select_from(Price)) == 2
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "contract.changed")) is not None
    # Its own dates are no overlap; once it ends earlier, the months after are free for another.
    contracts.create_contract(force_a, _terms(world, starts_on=date(2026, 7, 1), ends_on=None), actor=SYSTEM)


def test_a_change_is_refused_for_another_provider_an_overlap_or_bad_prices(force_a: Tenant, world: World) -> None:
    first = contracts.create_contract(force_a, _terms(world), actor=SYSTEM)
    later = contracts.create_contract(force_a, _terms(world, starts_on=date(2027, 1, 1), ends_on=None), actor=SYSTEM)
    db.session.commit()
    kept = contracts.terms_of(later)
    cases = [
        (_terms(world, provider_id=world.providers["druglink"].id, starts_on=date(2027, 1, 1), ends_on=None),
         "provider"),
        (_terms(world, starts_on=date(2026, 12, 1), ends_on=None), "starts_on"),
        (_terms(world, starts_on=date(2027, 1, 1), ends_on=None, prices={(ATTENDED, "divert"): -1}),
         "price_session_attended_divert"),
    ]
    for terms, field in cases:
        with pytest.raises(ContractError) as refused:
            contracts.change_contract(force_a, later, terms, actor=SYSTEM)
        assert refused.value.field == field
        db.session.rollback()
    assert contracts.terms_of(later) == kept
    assert contracts.contract_in_force(world.providers["cranstoun"].id, date(2026, 12, 31)) == first


@pytest.mark.parametrize("who", ["a_force_admin", "provider_staff", "no_role", "b_force_admin"])
def test_only_platform_admins_and_the_platform_make_or_change_contracts(
        force_a: Tenant, world: World, who: str) -> None:
    actor = db.session.get(User, world.users[who].id)
    with pytest.raises(AccessRefused):
        contracts.create_contract(force_a, _terms(world), actor=actor)
    admin = db.session.get(User, world.users["platform_admin"].id)
    contract = contracts.create_contract(force_a, _terms(world), actor=admin)
    assert contract.created_by_id == world.users["platform_admin"].id
    with pytest.raises(AccessRefused):
        contracts.change_contract(force_a, contract, _terms(world, monthly_fee_pence=0), actor=actor)


def test_each_reads_only_its_own_contracts(app: Flask, world: World, database: object) -> None:
    """A force reads its own; a provider its own in every force; another provider, none; the console, all."""
    with app.app_context():
        with scoped(world.a.id):
            a = db.session.get(Tenant, world.a.id)
            assert a is not None
            made = contracts.create_contract(a, _terms(world), actor=SYSTEM).id
            db.session.commit()
        with scoped(world.b.id):
            assert db.session.scalars(contracts.contracts_of_force()).all() == []
            assert contracts.find_contract(made) is None
        with scoped(world.a.id):
            assert [c.id for c in db.session.scalars(contracts.contracts_of_force("cranst"))] == [made]
            assert db.session.scalars(contracts.contracts_of_force("druglink")).all() == []
        db.session.expunge_all()  # what follows is read afresh, as another request would
        cranstoun, druglink = world.providers["cranstoun"].id, world.providers["druglink"].id
        with provider_scoped(cranstoun):
            assert [c.id for c in db.session.scalars(contracts.contracts_of_provider(cranstoun, "midlands"))] == [made]
            assert contracts.find_contract(made) is not None
        db.session.expunge_all()
        with provider_scoped(druglink):
            assert db.session.scalars(contracts.contracts_of_provider(druglink)).all() == []
            assert contracts.find_contract(made) is None
        db.session.expunge_all()
        with scoped(None, world.users["platform_admin"].id):
            assert [c.id for c in db.session.scalars(contracts.every_contract("west"))] == [made]
            assert db.session.scalars(contracts.every_contract("durham")).all() == []
            assert db.session.scalars(select(Price).execution_options(all_tenants=True)).all()
        db.session.expunge_all()
        if getattr(database, "is_postgresql", False):
            # Row-level security: the all-forces query shows nothing to anyone but a platform admin.
            with scoped(None, world.users["b_force_admin"].id):
                assert db.session.scalars(contracts.every_contract()).all() == []


def test_the_force_pathways_and_serving_providers_come_from_its_policy_and_offerings(force_a: Tenant) -> None:
    assert dict(contracts.pathways_of_force()).keys() == {"divert", "divert-youth"}
    assert [p.slug for p in contracts.providers_serving_force()] == ["cranstoun"]


def test_a_change_may_not_leave_ledger_rows_outside_the_dates(force_a: Tenant, world: World) -> None:
    contract = contracts.create_contract(force_a, _terms(world), actor=SYSTEM)
    # 23:30 on 31 March in UTC is 1 April in London: the row's day is London's.
    db.session.add(LedgerEntry(tenant_id=force_a.id, key="matrix:1", provider_id=contract.provider_id,
                               contract_id=contract.id, month=date(2026, 4, 1), kind=ACCEPTED, pathway="divert",
                               occurred_at=datetime(2026, 3, 31, 23, 30, tzinfo=UTC), unit_pence=7000, quantity=1,
                               amount_pence=7000))
    db.session.commit()
    with pytest.raises(ContractError, match="from 1 April 2026") as late_start:
        contracts.change_contract(force_a, contract, _terms(world, starts_on=date(2026, 4, 2)), actor=SYSTEM)
    assert late_start.value.field == "starts_on"
    with pytest.raises(ContractError, match="up to 1 April 2026") as early_end:
        contracts.change_contract(force_a, contract, _terms(world, ends_on=date(2026, 3, 31)), actor=SYSTEM)
    assert early_end.value.field == "ends_on"
    db.session.rollback()
    changed = contracts.change_contract(force_a, contract, _terms(world, starts_on=date(2026, 4, 1),
                                                                  ends_on=date(2026, 4, 1)), actor=SYSTEM)
    assert (changed.starts_on, changed.ends_on) == (date(2026, 4, 1), date(2026, 4, 1))
