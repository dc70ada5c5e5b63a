"""The demo's contracts: one for every force and provider that work together, with believable prices.

The figures are assumptions, and each contract's notes say so: about £70
for a referral accepted (the public figure for a drug-education referral
is of that order), a smaller sum per session attended and per course
completed, and, for some pairs, a fixed monthly fee (a block grant, as many
forces pay). Each pair gets its own prices, varied a little around those
figures, so that statements differ from one another.
"""

from __future__ import annotations

import hashlib
from datetime import date

from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.billing import contracts
from diversion.billing.contracts import Terms
from diversion.billing.models import Contract, EventKind, VatTreatment
from diversion.catalogue.models import Course, Offering, Provider
from diversion.extensions import db
from diversion.tenancy.models import Tenant

NOTES = ("Demo figures, all assumptions: about £70 per referral accepted (the order of the public figure for a "
         "drug-education referral); the session, completion and monthly fees are made up for the demo, not agreed "
         "prices.")
PLATFORM_FEE_BASIS_POINTS = 250  # 2.5% of the net amount


def _spread(*parts: object) -> int:
    """A number from 0 to 99 fixed by ``parts``: the same pair always gets the same prices."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return digest[0] % 100


def demo_terms(tenant: Tenant, provider_id: int, provider_slug: str, pathways: list[str], *,
               starts_on: date) -> Terms:
    """The demo's terms for one force and provider, over ``pathways`` (those the provider serves there)."""
    prices: dict[tuple[EventKind, str], int] = {}
    for pathway in pathways:
        vary = _spread(tenant.slug, provider_slug, pathway)
        prices[(EventKind.REFERRAL_ACCEPTED, pathway)] = 6500 + (vary % 5) * 250  # £65 to £75
        prices[(EventKind.SESSION_ATTENDED, pathway)] = 2000 + (vary % 3) * 500  # £20 to £30
        prices[(EventKind.COURSE_COMPLETED, pathway)] = 1500 + (vary % 4) * 500  # £15 to £30
    pair = _spread(tenant.slug, provider_slug)
    return Terms(provider_id=provider_id, starts_on=starts_on, ends_on=None,
                 monthly_fee_pence=150_000 if pair % 3 == 0 else 0,  # a block grant of £1,500 for some
                 vat=VatTreatment.STANDARD if pair % 4 == 0 else VatTreatment.EXEMPT,
                 platform_fee_basis_points=PLATFORM_FEE_BASIS_POINTS, prices=prices, notes=NOTES)


def seed_contracts(tenant: Tenant, *, starts_on: date) -> int:
    """A contract from ``starts_on``, until further notice, between the force in scope and each provider
    whose courses it offers, priced on the pathways they serve; a pair that has a contract already is
    left as it is. Returns how many were made."""
    served: dict[int, tuple[str, set[str]]] = {}
    for provider_id, slug, pathway in db.session.execute(
            select(Course.provider_id, Provider.slug, Offering.pathway).join(Offering, Offering.course_id == Course.id)
            .join(Provider, Provider.id == Course.provider_id)):
        served.setdefault(provider_id, (slug, set()))[1].add(pathway)
    known = dict(contracts.pathways_of_force())
    made = 0
    for provider_id, (provider_slug, pathways) in sorted(served.items()):
        if db.session.scalar(select(Contract.id).where(Contract.provider_id == provider_id).limit(1)) is not None:
            continue
        priced = sorted(p for p in pathways if p in known)
        contracts.create_contract(tenant, demo_terms(tenant, provider_id, provider_slug, priced, starts_on=starts_on),
                                  actor=SYSTEM)
        made += 1
    return made
