"""Contracts, referrals and their moves for the ledger and statement tests.

Contracts are written row by row here (a contract and its prices, in the
force's scope), as the contract services would leave them. West Midlands
(force A of the world) refers to Cranstoun's course on the ``divert``
pathway; the contract prices each billable kind there.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from diversion.billing.models import Contract, EventKind, LedgerEntry, Price, VatTreatment
from diversion.cases.events import Moved, announce
from diversion.cases.models import State
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import Ref, World
from tests.providers.conftest import offering_of, provider_ref, refer

PRICES = {EventKind.REFERRAL_ACCEPTED: 7000, EventKind.SESSION_ATTENDED: 1500, EventKind.COURSE_COMPLETED: 2500}


def make_contract(app: Flask, force: Ref, provider: Ref, *, starts_on: date, ends_on: date | None = None,
                  prices: Mapping[EventKind, int] | None = None, pathway: str = "divert", fee: int = 0,
                  vat: VatTreatment = VatTreatment.EXEMPT, basis_points: int = 0) -> uuid.UUID:
    with app.app_context(), scoped(force.id):
        contract = Contract(id=uuid.uuid4(), tenant_id=force.id, provider_id=provider.id, starts_on=starts_on,
                            ends_on=ends_on, monthly_fee_pence=fee, vat=vat, platform_fee_basis_points=basis_points,
                            notes="Figures assumed for the tests")
        db.session.add(contract)
        db.session.flush()
        for kind, unit in (PRICES if prices is None else prices).items():
            db.session.add(Price(tenant_id=force.id, contract_id=contract.id, kind=kind, pathway=pathway,
                                 unit_pence=unit))
        db.session.commit()
        return contract.id


@dataclass(frozen=True)
class Billing:
    force: Ref
    provider: Ref
    referral: uuid.UUID
    offering: uuid.UUID


@pytest.fixture
def billing(app: Flask, world: World) -> Billing:
    """West Midlands, Cranstoun, and one referral of West Midlands to Cranstoun (offered)."""
    with app.app_context():
        cranstoun = provider_ref("cranstoun")
        offering = offering_of(world.a, cranstoun, "divert")
    referral = refer(app, world.a, offering, surname="Ledgerton")
    return Billing(world.a, cranstoun, referral, offering)


def moved(app: Flask, billing: Billing, to: State, at: datetime, *, history: bool = False,
          transition_id: uuid.UUID | None = None, referral_id: uuid.UUID | None = None,
          pathway: str = "divert") -> uuid.UUID:
    """Announce one move of the referral (as the case services do), dated ``at``; commits."""
    step = transition_id or uuid.uuid4()
    with app.app_context(), scoped(billing.force.id):
        tenant = db.session.get(Tenant, billing.force.id)
        assert tenant is not None
        announce(tenant, [Moved(referral_id or billing.referral, billing.provider.id, pathway, State.OFFERED, to,
                                step, at)], history=history)
        db.session.commit()
    return step


def rows(app: Flask, force: Ref) -> list[dict[str, Any]]:
    """The force's ledger rows, oldest first, as plain values."""
    with app.app_context(), scoped(force.id):
        found = db.session.scalars(select(LedgerEntry).order_by(LedgerEntry.created_at, LedgerEntry.key))
        return [{"key": r.key, "kind": r.kind, "month": r.month, "unit": r.unit_pence, "amount": r.amount_pence,
                 "id": r.id, "reverses": r.reverses_id, "reason": r.reason, "contract": r.contract_id}
                for r in found]


def force_ref(app: Flask, slug: str) -> Ref:
    with app.app_context():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
        assert tenant is not None
        return Ref(tenant.id, slug=tenant.slug, name=tenant.name)


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)
