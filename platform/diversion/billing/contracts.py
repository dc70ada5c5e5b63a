"""Contracts between a force and the providers that deliver its courses: made, changed and read.

A contract says what the force pays one provider from one date to another:
a price in pence per billable event kind (referral accepted, session
attended, course completed) on each of the force's pathways, an optional
fixed monthly fee, its VAT treatment and the platform's fee. Platform
admins make and change them (``MANAGE_CONTRACTS``); the force's admins and
the provider's admins read them (their pages check ``READ_BILLING``).

Two contracts of the same force and provider never overlap, so on any day
at most one is in force (``contract_in_force``); the ledger prices each
event with the contract in force on its date (``unit_price``). A price
changes by ending a contract and starting another: rows already in the
ledger keep the price they were written with whatever happens later.

Services take the force (in scope) and the actor, validate, flush and never
commit. Every refusal is a ``ContractError`` naming the field at fault.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from sqlalchemy import Select, func, or_, select

from diversion.accounts.access import Action, require, user_id_of
from diversion.audit.services import record
from diversion.billing.models import PRICED_KINDS, Contract, EventKind, LedgerEntry, Price, VatTreatment
from diversion.catalogue.models import Course, Offering, Provider
from diversion.db import LONDON, new_id, utcnow
from diversion.eligibility import services as eligibility
from diversion.eligibility.models import PolicyStatus, PolicyVersion
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.inputs import EARLIEST_CASE_DATE, YEARS_AHEAD, text_problem
from diversion.listing import matching
from diversion.tenancy.guard import ALL_TENANTS
from diversion.tenancy.models import Tenant
from diversion.words import day

if TYPE_CHECKING:
    from diversion.accounts.access import Actor

# No single price or fee above £1,000,000: a figure that large is a typing mistake, and it keeps
# every sum of a month well inside the database's integers.
MOST_PENCE = 100_000_000
MOST_BASIS_POINTS = 10_000
NOTES_LENGTH = 1000


class ContractError(FieldError):
    """A refused contract."""


@dataclass(frozen=True)
class Terms:
    """What a contract says: the provider, its dates (``ends_on`` inclusive, None: until further
    notice), the monthly fee, VAT, the platform's fee (basis points of the net amount) and a price
    in pence per (event kind, pathway). A pair left out has no price: such events are not billed."""

    provider_id: int
    starts_on: date
    ends_on: date | None
    monthly_fee_pence: int
    vat: VatTreatment
    platform_fee_basis_points: int
    prices: Mapping[tuple[EventKind, str], int] = field(default_factory=dict)
    notes: str = ""


def price_field(kind: EventKind, pathway: str) -> str:
    """The name of the field that holds the price of ``kind`` on ``pathway`` (forms and refusals)."""
    return f"price_{kind.value}_{pathway}"


# ---------------------------------------------------------------- what the force has

def pathways_of_force() -> list[tuple[str, str]]:
    """The pathways, ``(id, name)``, of the force in scope's published policies (every version,
    newest name first), in the order the newest version gives them."""
    found: dict[str, str] = {}
    versions = db.session.scalars(select(PolicyVersion).where(PolicyVersion.status == PolicyStatus.PUBLISHED)
                                  .order_by(PolicyVersion.number.desc())).all()
    for version in versions:
        for pathway in eligibility.compiled(version).document.pathways:
            found.setdefault(pathway.id, pathway.name)
    return list(found.items())


def pathway_names(tenant_id: int) -> dict[str, str]:
    """The names of a force's pathways by id, from its published policies (newest name first).

    Crosses forces on purpose (``all_tenants``), for the pages of a contract
    read by a provider or a platform admin: published policies are the forces'
    public schemes, and row-level security lets exactly those be read across
    forces (never with a provider in scope: call it with none)."""
    found: dict[str, str] = {}
    for document in db.session.scalars(
            select(PolicyVersion.document)
            .where(PolicyVersion.tenant_id == tenant_id, PolicyVersion.status == PolicyStatus.PUBLISHED)
            .order_by(PolicyVersion.number.desc()).execution_options(**{ALL_TENANTS: True})):
        for pathway in document.get("pathways", []):
            if isinstance(pathway, dict) and isinstance(pathway.get("id"), str):
                found.setdefault(pathway["id"], str(pathway.get("name") or pathway["id"]))
    return found


def providers_serving_force() -> list[Provider]:
    """The providers with a course offered in the force in scope (withdrawn offerings too: a contract
    outlives an offering), by name."""
    offered = select(Course.provider_id).join(Offering, Offering.course_id == Course.id)
    return list(db.session.scalars(select(Provider).where(Provider.id.in_(offered)).order_by(Provider.name)))


def _serves_force(provider_id: int) -> bool:
    return db.session.scalar(
        select(Offering.id).join(Course, Course.id == Offering.course_id)
        .where(Course.provider_id == provider_id).limit(1)) is not None


# ---------------------------------------------------------------- making and changing

def _overlapping(provider_id: int, starts_on: date, ends_on: date | None,
                 *, besides: uuid.UUID | None) -> Contract | None:
    """Another contract of the force in scope with the same provider whose dates meet these."""
    wanted = select(Contract).where(
        Contract.provider_id == provider_id,
        or_(Contract.ends_on.is_(None), Contract.ends_on >= starts_on),
        *([Contract.starts_on <= ends_on] if ends_on is not None else []),
    )
    if besides is not None:
        wanted = wanted.where(Contract.id != besides)
    return db.session.scalar(wanted.order_by(Contract.starts_on).limit(1))


def _monthly_fee(value: int) -> None:
    if value < 0:
        raise ContractError("monthly_fee", _("The monthly fee cannot be negative"))
    if value > MOST_PENCE:
        raise ContractError("monthly_fee", _("The monthly fee must be at most £1,000,000"))


def _price(value: int, kind: EventKind, pathway: str, pathway_name: str) -> None:
    if value < 0:
        raise ContractError(price_field(kind, pathway), _("The price of %(kind)s on %(pathway)s cannot be negative",
                                                          kind=kind.label.lower(), pathway=pathway_name))
    if value > MOST_PENCE:
        raise ContractError(price_field(kind, pathway), _("The price of %(kind)s on %(pathway)s must be at most "
                                                          "£1,000,000", kind=kind.label.lower(), pathway=pathway_name))


def _check(terms: Terms, *, besides: uuid.UUID | None) -> None:
    """Refuse terms that cannot stand: see ``create_contract``."""
    if db.session.get(Provider, terms.provider_id) is None or not _serves_force(terms.provider_id):
        raise ContractError("provider", _("Choose a provider that delivers a course this force offers."))
    if terms.starts_on < EARLIEST_CASE_DATE:
        raise ContractError("starts_on", _("The start date must be on or after %(earliest)s.",
                                           earliest=day(EARLIEST_CASE_DATE)))
    if terms.ends_on is not None and terms.ends_on < terms.starts_on:
        raise ContractError("ends_on", _("The end date must be on or after the start date."))
    latest = utcnow().date().replace(day=1, month=1)
    latest = latest.replace(year=latest.year + YEARS_AHEAD + 1)
    for name, when in (("starts_on", terms.starts_on), ("ends_on", terms.ends_on)):
        if when is not None and when >= latest:
            raise ContractError(name, _("Date a contract at most %(years)s years ahead.", years=YEARS_AHEAD))
    _check_money(terms)
    clash = _overlapping(terms.provider_id, terms.starts_on, terms.ends_on, besides=besides)
    if clash is not None:
        if clash.ends_on is None:
            raise ContractError("starts_on", _("These dates overlap the contract with this provider from %(start)s "
                                               "until further notice: end that one first.",
                                               start=day(clash.starts_on)))
        raise ContractError("starts_on", _("These dates overlap the contract with this provider from %(start)s "
                                           "until %(end)s: end that one first.",
                                           start=day(clash.starts_on),
                                           end=day(clash.ends_on)))


def _check_money(terms: Terms) -> None:
    """Refuse fees, prices and notes that cannot stand: see ``create_contract``."""
    _monthly_fee(terms.monthly_fee_pence)
    if not 0 <= terms.platform_fee_basis_points <= MOST_BASIS_POINTS:
        raise ContractError("platform_fee", _("The platform fee must be between 0% and 100%."))
    if not isinstance(terms.vat, VatTreatment):
        raise ContractError("vat", _("Choose the VAT treatment"))
    if len(terms.notes) > NOTES_LENGTH:
        raise ContractError("notes", _("The notes must be %(max)s characters or fewer", max=NOTES_LENGTH))
    if text_problem(terms.notes, multiline=True):
        raise ContractError("notes", _("The notes cannot contain control characters (such as a NUL byte)"))
    pathways = dict(pathways_of_force())
    for (kind, pathway), pence in terms.prices.items():
        if kind not in PRICED_KINDS:
            raise ContractError("prices", _("%(kind)s is not priced per referral: it is the monthly fee.",
                                            kind=kind.label))
        if pathway not in pathways:
            raise ContractError(price_field(kind, pathway),
                                _("This force's policy has no pathway “%(pathway)s”: price its own pathways only.",
                                  pathway=pathway))
        _price(pence, kind, pathway, pathways[pathway])


def _write_prices(tenant: Tenant, contract: Contract, prices: Mapping[tuple[EventKind, str], int]) -> None:
    """Make the contract's prices those given: changed in place, added, or removed."""
    existing = {(p.kind, p.pathway): p for p in db.session.scalars(
        select(Price).where(Price.contract_id == contract.id))}
    for key, price in existing.items():
        if key not in prices:
            db.session.delete(price)
        elif price.unit_pence != prices[key]:
            price.unit_pence = prices[key]
    for (kind, pathway), pence in prices.items():
        if (kind, pathway) not in existing:
            db.session.add(Price(tenant_id=tenant.id, contract_id=contract.id, kind=kind, pathway=pathway,
                                 unit_pence=pence))


def _details(terms: Terms) -> dict[str, Any]:
    return {"provider": terms.provider_id, "starts_on": terms.starts_on.isoformat(),
            "ends_on": terms.ends_on.isoformat() if terms.ends_on else None,
            "monthly_fee_pence": terms.monthly_fee_pence, "vat": terms.vat.value,
            "platform_fee_basis_points": terms.platform_fee_basis_points,
            "prices": {f"{kind.value}:{pathway}": pence for (kind, pathway), pence in sorted(terms.prices.items())}}


def create_contract(tenant: Tenant, terms: Terms, *, actor: Actor) -> Contract:
    """Make a contract between the force in scope and ``terms.provider_id``.

    Refuses an actor who may not manage contracts; a provider that does not
    deliver any course the force offers; a start before 2000 or an end before
    the start; a negative (or absurdly large) price or monthly fee; a platform
    fee outside 0 to 10,000 basis points; a date more than five years ahead; a price for the monthly fee's kind
    or for a pathway the force's published policies do not have; notes that
    are too long or hold control characters; and dates that overlap another
    contract of the same force and provider.
    """
    require(actor, Action.MANAGE_CONTRACTS, tenant_id=tenant.id)
    _check(terms, besides=None)
    contract = Contract(id=new_id(), tenant_id=tenant.id, provider_id=terms.provider_id,
                        starts_on=terms.starts_on, ends_on=terms.ends_on, monthly_fee_pence=terms.monthly_fee_pence,
                        vat=terms.vat, platform_fee_basis_points=terms.platform_fee_basis_points,
                        notes=terms.notes.strip(), created_by_id=user_id_of(actor))
    db.session.add(contract)
    db.session.flush()
    _write_prices(tenant, contract, terms.prices)
    db.session.flush()
    record("contract.created", actor=actor, tenant_id=tenant.id, object_type="contract", object_id=contract.id,
           details=_details(terms))
    return contract


def _keeps_its_ledger(contract: Contract, terms: Terms) -> None:
    """Refuse new dates that would leave some of the contract's ledger rows outside them: each row was
    priced with the contract in force on its day (London), and stays so."""
    first, last = db.session.execute(
        select(func.min(LedgerEntry.occurred_at), func.max(LedgerEntry.occurred_at))
        .where(LedgerEntry.contract_id == contract.id)).one()
    if first is None or last is None:
        return
    first_day, last_day = first.astimezone(LONDON).date(), last.astimezone(LONDON).date()
    if terms.starts_on > first_day:
        raise ContractError("starts_on", _("The ledger has rows of this contract from %(day)s: the contract must "
                                           "start on or before that day.", day=day(first_day)))
    if terms.ends_on is not None and terms.ends_on < last_day:
        raise ContractError("ends_on", _("The ledger has rows of this contract up to %(day)s: the contract must "
                                         "end on or after that day.", day=day(last_day)))


def change_contract(tenant: Tenant, contract: Contract, terms: Terms, *, actor: Actor) -> Contract:
    """Change a contract of the force in scope: its dates, fees, VAT, prices and notes.

    Refuses what ``create_contract`` refuses (the contract's own dates do not
    count as an overlap); another provider: a contract stays with its
    provider (end it and make another); and dates that would leave some of its
    ledger rows outside them. Ledger rows already written keep their prices.
    """
    require(actor, Action.MANAGE_CONTRACTS, tenant_id=tenant.id)
    if contract.tenant_id != tenant.id:
        raise ContractError("contract", _("This contract is not this force's."))
    if terms.provider_id != contract.provider_id:
        raise ContractError("provider", _("A contract stays with its provider: end it and make another."))
    _check(terms, besides=contract.id)
    _keeps_its_ledger(contract, terms)
    contract.starts_on, contract.ends_on = terms.starts_on, terms.ends_on
    contract.monthly_fee_pence = terms.monthly_fee_pence
    contract.vat = terms.vat
    contract.platform_fee_basis_points = terms.platform_fee_basis_points
    contract.notes = terms.notes.strip()
    _write_prices(tenant, contract, terms.prices)
    db.session.flush()
    record("contract.changed", actor=actor, tenant_id=tenant.id, object_type="contract", object_id=contract.id,
           details=_details(terms))
    return contract


# ---------------------------------------------------------------- reading

def contract_in_force(provider_id: int, on: date) -> Contract | None:
    """The force in scope's contract with the provider in force on ``on``, or None."""
    return db.session.scalar(select(Contract).where(
        Contract.provider_id == provider_id, Contract.starts_on <= on,
        or_(Contract.ends_on.is_(None), Contract.ends_on >= on)).order_by(Contract.starts_on.desc()).limit(1))


def offered_without_contract(on: date) -> list[Provider]:
    """The providers, by name, whose courses the force in scope offers (offerings not withdrawn, courses
    not retired: they take referrals) with no contract of the force in force on ``on``: referrals to
    them earn nothing. One query."""
    offered = (select(Course.provider_id).join(Offering, Offering.course_id == Course.id)
               .where(Offering.withdrawn_at.is_(None), Course.retired_at.is_(None)))
    in_force = select(Contract.id).where(Contract.provider_id == Provider.id, Contract.starts_on <= on,
                                         or_(Contract.ends_on.is_(None), Contract.ends_on >= on))
    return list(db.session.scalars(select(Provider).where(Provider.id.in_(offered), ~in_force.exists())
                                   .order_by(Provider.name)))


def unit_price(contract_id: uuid.UUID, kind: EventKind, pathway: str) -> int | None:
    """The contract's price in pence for ``kind`` on ``pathway`` (force in scope), or None: not billed."""
    return db.session.scalar(select(Price.unit_pence).where(
        Price.contract_id == contract_id, Price.kind == kind, Price.pathway == pathway))


def prices_of(contract: Contract) -> dict[tuple[EventKind, str], int]:
    """The contract's prices by (event kind, pathway)."""
    return {(price.kind, price.pathway): price.unit_pence
            for price in db.session.scalars(select(Price).where(Price.contract_id == contract.id))}


def terms_of(contract: Contract) -> Terms:
    """What the contract says now, as ``Terms`` (to change some of it)."""
    return Terms(provider_id=contract.provider_id, starts_on=contract.starts_on, ends_on=contract.ends_on,
                 monthly_fee_pence=contract.monthly_fee_pence, vat=contract.vat,
                 platform_fee_basis_points=contract.platform_fee_basis_points, prices=prices_of(contract),
                 notes=contract.notes)


def find_contract(contract_id: uuid.UUID) -> Contract | None:
    """A contract the scope reaches (the force's, or the provider's in every force), or None."""
    return db.session.scalar(select(Contract).where(Contract.id == contract_id))


_NEWEST_FIRST = (Contract.starts_on.desc(), Contract.created_at.desc())


def every_contract(search: str = "") -> Select[tuple[Contract]]:
    """Every force's contracts (platform admins), by force, provider and newest first; ``search``
    matches the force's or the provider's name.

    Crosses forces on purpose (``all_tenants``): on PostgreSQL, row-level
    security lets them through only while a platform admin is in scope."""
    wanted = (select(Contract).join(Tenant, Tenant.id == Contract.tenant_id)
              .join(Provider, Provider.id == Contract.provider_id)
              .order_by(Tenant.name, Provider.name, *_NEWEST_FIRST)
              .execution_options(**{ALL_TENANTS: True}))
    return wanted.where(matching(search, Tenant.name, Provider.name)) if search else wanted  # type: ignore[arg-type]


def contracts_of_force(search: str = "") -> Select[tuple[Contract]]:
    """The force in scope's contracts, by provider and newest first; ``search`` matches the provider."""
    wanted = (select(Contract).join(Provider, Provider.id == Contract.provider_id)
              .order_by(Provider.name, *_NEWEST_FIRST))
    return wanted.where(matching(search, Provider.name)) if search else wanted  # type: ignore[arg-type]


def contracts_of_provider(provider_id: int, search: str = "") -> Select[tuple[Contract]]:
    """The provider's contracts with every force (provider in scope), by force and newest first;
    ``search`` matches the force."""
    wanted = (select(Contract).join(Tenant, Tenant.id == Contract.tenant_id)
              .where(Contract.provider_id == provider_id).order_by(Tenant.name, *_NEWEST_FIRST))
    return wanted.where(matching(search, Tenant.name)) if search else wanted  # type: ignore[arg-type]


@dataclass(frozen=True)
class Parties:
    """The names a list of contracts shows: forces by id, providers by id."""

    forces: Mapping[int, Tenant]
    providers: Mapping[int, Provider]


def parties_of(contracts: Sequence[Contract]) -> Parties:
    """The forces and providers of ``contracts`` (one query each)."""
    force_ids = {c.tenant_id for c in contracts}
    provider_ids = {c.provider_id for c in contracts}
    forces = {t.id: t for t in db.session.scalars(select(Tenant).where(Tenant.id.in_(force_ids)))} \
        if force_ids else {}
    providers = {p.id: p for p in db.session.scalars(select(Provider).where(Provider.id.in_(provider_ids)))} \
        if provider_ids else {}
    return Parties(forces, providers)


def status_of(contract: Contract, today: date) -> str:
    """Where the contract stands on ``today``, in words: in force, starts later or ended."""
    if contract.starts_on > today:
        return str(_("Starts later"))
    if contract.ends_on is not None and contract.ends_on < today:
        return str(_("Ended"))
    return str(_("In force"))

