"""Statements: what a force owes one provider for one month, read from the ledger.

A *draft* is live: the ledger rows of (force, provider, month) added up in
the database (GROUP BY) into *groups*, one per contract, event kind,
pathway and unit price, with their count and amount. A reversal carries a
negated unit price, so it makes a group of its own. Each group's VAT is its
contract's treatment on its amount; the platform's fee is each contract's
basis points of that contract's net amount; the provider receives the net
amount and VAT less the platform's fee.

Once a month is closed (``ClosedMonth``) its ledger takes no new rows, and
``settle_month`` fixes each provider's draft as a ``Statement`` with its
``StatementLine`` groups: those are what the Stripe invoice bills, line for
line. A statement lists every ledger row behind it (``statement_csv``, the
statement pages), each with the case reference of its referral, where it has one.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import request
from flask_babel import gettext as _
from flask_sqlalchemy.pagination import SelectPagination
from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.exc import IntegrityError

from diversion.accounts.access import Action, Actor, require
from diversion.billing import contracts
from diversion.billing.ledger import is_closed, london_date
from diversion.billing.models import (
    ClosedMonth,
    Contract,
    EventKind,
    InvoiceStatus,
    LedgerEntry,
    Statement,
    StatementLine,
    VatTreatment,
)
from diversion.billing.months import month_key, month_label, share_of
from diversion.cases.models import Encounter, Referral
from diversion.catalogue.models import Provider
from diversion.db import new_id
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.forms import lazy_gettext as _l
from diversion.listing import PER_PAGE, matching
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from diversion.words import in_language

_KIND_ORDER = {kind: number for number, kind in enumerate(EventKind)}


@dataclass(frozen=True)
class Group:
    """The ledger rows of one contract, event kind, pathway and unit price: one line of a statement."""

    contract_id: uuid.UUID
    kind: EventKind
    pathway: str
    unit_pence: int
    quantity: int
    amount_pence: int
    vat_pence: int

    def label(self, names: Mapping[str, str]) -> str:
        """What the line is for, its pathway named from ``names`` (``pathway_names``)."""
        return describe(self.kind, self.pathway, names, reversal=self.unit_pence < 0)


@dataclass(frozen=True)
class Draft:
    """A statement's groups and totals, from the ledger as it stands."""

    groups: tuple[Group, ...]
    net_pence: int
    vat_pence: int
    platform_fee_pence: int
    to_provider_pence: int

    @property
    def gross_pence(self) -> int:
        return self.net_pence + self.vat_pence

    @property
    def rows(self) -> int:
        return sum(abs(group.quantity) for group in self.groups)


def _of(tenant_id: int, provider_id: int, month: date) -> ColumnElement[bool]:
    return and_(LedgerEntry.tenant_id == tenant_id, LedgerEntry.provider_id == provider_id,
                LedgerEntry.month == month)


def totals(groups: Sequence[Group], fee_basis_points: dict[uuid.UUID, int]) -> Draft:
    """The totals of ``groups``: the platform's fee is taken per contract, on its net amount."""
    net_by_contract: dict[uuid.UUID, int] = {}
    for group in groups:
        net_by_contract[group.contract_id] = net_by_contract.get(group.contract_id, 0) + group.amount_pence
    net = sum(group.amount_pence for group in groups)
    vat = sum(group.vat_pence for group in groups)
    fee = sum(share_of(amount, fee_basis_points.get(contract_id, 0))
              for contract_id, amount in net_by_contract.items())
    return Draft(tuple(groups), net, vat, fee, net + vat - fee)


def _contract_terms(contract_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[VatTreatment, int]]:
    ids = list(set(contract_ids))
    if not ids:
        return {}
    return {contract_id: (vat, fee) for contract_id, vat, fee in db.session.execute(
        select(Contract.id, Contract.vat, Contract.platform_fee_basis_points).where(Contract.id.in_(ids)))}


def draft(tenant_id: int, provider_id: int, month: date) -> Draft:
    """The live statement of the force ``tenant_id`` and the provider for ``month``, from its ledger rows
    (summed in the database, whatever their number)."""
    found = db.session.execute(
        select(LedgerEntry.contract_id, LedgerEntry.kind, LedgerEntry.pathway, LedgerEntry.unit_pence,
               func.sum(LedgerEntry.quantity), func.sum(LedgerEntry.amount_pence))
        .where(_of(tenant_id, provider_id, month))
        .group_by(LedgerEntry.contract_id, LedgerEntry.kind, LedgerEntry.pathway, LedgerEntry.unit_pence)).all()
    terms = _contract_terms(row[0] for row in found)
    groups = sorted(
        (Group(contract_id, EventKind(kind), pathway, unit, int(quantity), int(amount),
               share_of(int(amount), terms[contract_id][0].basis_points))
         for contract_id, kind, pathway, unit, quantity, amount in found),
        key=lambda g: (_KIND_ORDER[g.kind], g.pathway, g.unit_pence < 0, -abs(g.unit_pence), str(g.contract_id)))
    return totals(groups, {contract_id: fee for contract_id, (_vat, fee) in terms.items()})


def of_statement(statement: Statement) -> Draft:
    """A settled statement's groups and totals, as fixed when it was written."""
    lines = db.session.scalars(select(StatementLine).where(StatementLine.statement_id == statement.id)).all()
    groups = sorted((Group(line.contract_id, line.kind, line.pathway, line.unit_pence, line.quantity,
                           line.amount_pence, line.vat_pence) for line in lines),
                    key=lambda g: (_KIND_ORDER[g.kind], g.pathway, g.unit_pence < 0, -abs(g.unit_pence),
                                   str(g.contract_id)))
    return Draft(tuple(groups), statement.net_pence, statement.vat_pence, statement.platform_fee_pence,
                 statement.to_provider_pence)


def statement_of(tenant_id: int, provider_id: int, month: date) -> Statement | None:
    return db.session.scalar(select(Statement).where(
        Statement.tenant_id == tenant_id, Statement.provider_id == provider_id, Statement.month == month))


def settle_month(tenant: Tenant, month: date, *, actor: Actor) -> list[Statement]:
    """Write the statement (and its lines) of each provider with ledger rows in ``month``, a month the
    force has closed; returns every statement of that month, by provider.

    Idempotent: a statement already written is returned as it is (a closed month's ledger
    takes no new rows, so it could not differ). Refuses (``FieldError`` on ``month``) a month
    that is not closed, and an actor who may not close a month (``CLOSE_MONTH``).
    """
    require(actor, Action.CLOSE_MONTH, tenant_id=tenant.id)
    if not is_closed(tenant.id, month):
        raise FieldError("month", _("%(month)s is not closed yet: close it before its statements are written.",
                                    month=month_label(month)))
    providers = db.session.scalars(select(LedgerEntry.provider_id).where(
        LedgerEntry.tenant_id == tenant.id, LedgerEntry.month == month).distinct()).all()
    for provider_id in sorted(providers):
        if statement_of(tenant.id, provider_id, month) is not None:
            continue
        _write_statement(tenant.id, provider_id, month)
    db.session.flush()
    return list(db.session.scalars(select(Statement).where(
        Statement.tenant_id == tenant.id, Statement.month == month).order_by(Statement.provider_id)))


def _write_statement(tenant_id: int, provider_id: int, month: date) -> None:
    """One statement and its lines; one written at the same moment by another settle wins."""
    fixed = draft(tenant_id, provider_id, month)
    try:
        with db.session.begin_nested():
            statement = Statement(id=new_id(), tenant_id=tenant_id, provider_id=provider_id, month=month,
                                  net_pence=fixed.net_pence, vat_pence=fixed.vat_pence,
                                  platform_fee_pence=fixed.platform_fee_pence,
                                  to_provider_pence=fixed.to_provider_pence, invoice_status=InvoiceStatus.NOT_SENT)
            db.session.add(statement)
            db.session.flush()
            db.session.add_all(StatementLine(
                tenant_id=tenant_id, statement_id=statement.id, contract_id=group.contract_id, kind=group.kind,
                pathway=group.pathway, unit_pence=group.unit_pence, quantity=group.quantity,
                amount_pence=group.amount_pence, vat_pence=group.vat_pence) for group in fixed.groups)
    except IntegrityError:
        return


# ---------------------------------------------------------------- reading, for pages and files

def ledger_rows(tenant_id: int, provider_id: int, month: date) -> Select[tuple[LedgerEntry]]:
    """The ledger rows behind a statement, in the order they happened."""
    return (select(LedgerEntry).where(_of(tenant_id, provider_id, month))
            .order_by(LedgerEntry.occurred_at, LedgerEntry.key))


def _with_case(rows: Select[Any]) -> Select[Any]:
    """``rows`` (of ledger rows) with the case reference of each row's referral (its encounter's), or None
    for a row about no referral (a monthly fee) or one the reader may not see: outer joins on the keys
    the row holds, in the same force, so the guard's criteria of the scope in force apply to them."""
    return (rows.add_columns(Encounter.reference)
            .outerjoin(Referral, and_(Referral.tenant_id == LedgerEntry.tenant_id,
                                      Referral.id == LedgerEntry.referral_id))
            .outerjoin(Encounter, and_(Encounter.tenant_id == Referral.tenant_id,
                                       Encounter.id == Referral.encounter_id)))


def case_references(tenant_id: int, referral_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """The case reference of each referral of ``referral_ids`` in the force (its encounter's ``reference``,
    e.g. WM-2026-000042), in one query whatever their number (a page of ledger rows); a referral the reader
    may not see (the guard's criteria of the scope in force) is left out."""
    ids = {found for found in referral_ids if found is not None}
    if not ids:
        return {}
    return dict(db.session.execute(
        select(Referral.id, Encounter.reference)
        .join(Encounter, and_(Encounter.tenant_id == Referral.tenant_id, Encounter.id == Referral.encounter_id))
        .where(Referral.tenant_id == tenant_id, Referral.id.in_(ids))).tuples().all())


def describe(kind: EventKind, pathway: str, names: Mapping[str, str], *, reversal: bool = False) -> str:
    """What a line or a row is for, in words (the reader's language): its event and its pathway's name
    (``names``, by id)."""
    words = kind.label + (f", {names.get(pathway, pathway)}" if pathway else "")
    return str(_("%(line)s (reversed)", line=words)) if reversal else words


def row_label(entry: LedgerEntry, names: Mapping[str, str]) -> str:
    """What a ledger row is for, in words; a reversal says so."""
    words = describe(entry.kind, entry.pathway, names)
    return str(_("Reversal of: %(row)s", row=words)) if entry.reverses_id is not None else words


def pathway_names(tenant_id: int) -> dict[str, str]:
    """The names of the force's pathways by id, whoever reads (a provider's scope included): published
    policies are the force's public scheme."""
    with scoped(None):
        return contracts.pathway_names(tenant_id)


# The CSV's headings, in the reader's language (English on the command line).
CSV_ROWS_HEADER = (_l("Date"), _l("Case reference"), _l("Event"), _l("Pathway"), _l("Unit price"), _l("Quantity"),
                   _l("Amount"), _l("Reversal reason"))


def statement_csv(tenant_id: int, provider_id: int, month: date) -> str:
    """The statement as CSV: every ledger row behind it, then its groups and its totals
    (pounds with pence, dates in London)."""
    statement = statement_of(tenant_id, provider_id, month)
    summary = of_statement(statement) if statement is not None else draft(tenant_id, provider_id, month)
    names = pathway_names(tenant_id)
    out = io.StringIO()
    write = csv.writer(out, lineterminator="\n").writerow
    write((_("Ledger rows"),))
    write(tuple(str(heading) for heading in CSV_ROWS_HEADER))
    for entry, reference in db.session.execute(_with_case(ledger_rows(tenant_id, provider_id, month))
                                               .execution_options(yield_per=1000)).tuples():
        write((london_date(entry.occurred_at).isoformat(), reference or "", row_label(entry, names), entry.pathway,
               _pounds(entry.unit_pence), entry.quantity, _pounds(entry.amount_pence), _safe(entry.reason)))
    write(())
    write((_("Lines"),))
    write((_("Event"), _("Pathway"), _("Unit price"), _("Quantity"), _("Amount"), _("VAT")))
    for group in summary.groups:
        write((group.label(names), group.pathway, _pounds(group.unit_pence), group.quantity,
               _pounds(group.amount_pence), _pounds(group.vat_pence)))
    write(())
    write((_("Totals"),))
    for name, pence in ((_("Net (before VAT)"), summary.net_pence), (_("VAT"), summary.vat_pence),
                        (_("Total to pay"), summary.gross_pence), (_("Platform fee"), summary.platform_fee_pence),
                        (_("Paid to the provider after the platform fee"), summary.to_provider_pence)):
        write((name, _pounds(pence)))
    return out.getvalue()


def _pounds(pence: int) -> str:
    sign = "-" if pence < 0 else ""
    return f"{sign}{abs(pence) // 100}.{abs(pence) % 100:02d}"


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_filename(force_slug: str, provider_slug: str, month: date) -> str:
    return f"statement-{force_slug}-{provider_slug}-{month_key(month)}.csv"


# ---------------------------------------------------------------- lists of statements

class _RowsPagination(SelectPagination):
    """A page of a select of several columns (rows, not scalars)."""

    def _query_items(self) -> list[Any]:
        statement = self._query_args["select"].limit(self.per_page).offset(self._query_offset)
        return list(self._query_args["session"].execute(statement).all())


def page_of_rows(statement: Select[Any], *, per_page: int = PER_PAGE) -> SelectPagination:
    """As ``listing.page_of``, for a select of several columns."""
    raw = request.args.get("page", "1")
    number = int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1

    def at(page: int) -> SelectPagination:
        return _RowsPagination(select=statement, session=db.session, page=page, per_page=per_page,
                               error_out=False, count=True)

    page = at(max(number, 1))
    if page.pages and number > page.pages:
        page = at(page.pages)
    return page


@dataclass(frozen=True)
class Account:
    """One (force, provider, month) with ledger rows, for the lists of statements."""

    month: date
    tenant_id: int
    force_slug: str
    force_name: str
    provider_id: int
    provider_slug: str
    provider_name: str
    rows: int
    net_pence: int
    closed: bool
    statement: Statement | None
    force_name_cy: str | None = None  # the force's name in Welsh, where it gives one

    def force_name_in(self, language: str) -> str:
        """The force's name in ``language`` ("Heddlu Gogledd Cymru" in Welsh), where it gives one; else
        its English name."""
        return in_language(self.force_name, self.force_name_cy, language)

    @property
    def status(self) -> str:
        if self.statement is not None:
            return self.statement.invoice_status.label
        return str(_("Month closed: statement being written") if self.closed else _("Draft: month open"))


def accounts(*, tenant_id: int | None = None, provider_id: int | None = None, search: str = "",
             month: date | None = None) -> Select[Any]:
    """Every (month, force, provider) with ledger rows, newest month first, in the scope in force: a
    force's (its providers), or a provider's (the forces it serves). Platform admins read one force
    at a time, in its scope, as row-level security has it."""
    closed = exists().where(ClosedMonth.tenant_id == LedgerEntry.tenant_id, ClosedMonth.month == LedgerEntry.month)
    found = (select(LedgerEntry.month, LedgerEntry.tenant_id, Tenant.slug, Tenant.name, LedgerEntry.provider_id,
                    Provider.slug, Provider.name, func.count(), func.sum(LedgerEntry.amount_pence),
                    closed.correlate(LedgerEntry).label("closed"), Tenant.name_cy)
             .join(Tenant, Tenant.id == LedgerEntry.tenant_id).join(Provider, Provider.id == LedgerEntry.provider_id)
             .group_by(LedgerEntry.month, LedgerEntry.tenant_id, Tenant.slug, Tenant.name, LedgerEntry.provider_id,
                       Provider.slug, Provider.name, Tenant.name_cy)
             .order_by(LedgerEntry.month.desc(), Tenant.name, Provider.name))
    if tenant_id is not None:
        found = found.where(LedgerEntry.tenant_id == tenant_id)
    if provider_id is not None:
        found = found.where(LedgerEntry.provider_id == provider_id)
    if search:
        found = found.where(matching(search, Tenant.name.expression, Tenant.name_cy.expression,
                                     Provider.name.expression))
    if month is not None:
        found = found.where(LedgerEntry.month == month)
    return found


def accounts_of(rows: Sequence[Any]) -> list[Account]:
    """The page's rows as ``Account``s, with their statements (one query)."""
    keys = {(row[1], row[4], row[0]) for row in rows}
    statements: dict[tuple[int, int, date], Statement] = {}
    if keys:
        query = select(Statement).where(Statement.month.in_({key[2] for key in keys}),
                                        Statement.provider_id.in_({key[1] for key in keys}),
                                        Statement.tenant_id.in_({key[0] for key in keys}))
        statements = {(s.tenant_id, s.provider_id, s.month): s for s in db.session.scalars(query)}
    return [Account(row[0], row[1], row[2], row[3], row[4], row[5], row[6], int(row[7]), int(row[8] or 0),
                    bool(row[9]), statements.get((row[1], row[4], row[0])), row[10]) for row in rows]
