"""Reconciliation of a month: the ledger against the statements, the statements against their
invoices' lines on Stripe, and the invoices against what was paid.

Three sources must agree, and every disagreement is listed in plain words:

- **ledger and statement**: each group of the month's ledger rows (contract,
  event kind, pathway, unit price) is one line of the statement with the same
  quantity and amount; a closed month's rows all belong to a statement; a
  statement's totals are the sums of its lines (*missing line*, *wrong
  amount*);
- **statement and invoice**: each line of the statement is one line of its
  invoice on Stripe, found by the invoice item made for it, with the same
  quantity and amount, and the invoice has no other (*missing line*, *wrong
  amount*, *line not on the statement*); read through the Stripe client only
  when Stripe is set up;
- **invoice and payment**: a paid invoice was paid its total, an invoice
  past its due date is paid, a payment Stripe reported is about one of our
  invoices, what Stripe says was paid is what we recorded, and no event from
  Stripe was missed (*paid amount differs*, *unpaid past due*, *payment
  without invoice*, *status differs*).

Reading only: nothing is written, so the command and the page can run at any
time and as often as wanted.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import stripe
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from diversion.billing import statements
from diversion.billing.models import (
    ClosedMonth,
    EventKind,
    InvoiceStatus,
    LedgerEntry,
    Statement,
    StatementLine,
    StripeEvent,
)
from diversion.billing.months import money, month_label, month_of
from diversion.catalogue.models import Provider
from diversion.db import LONDON, utcnow
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from diversion.words import counted, current_language


class Problem(enum.StrEnum):
    """What kind of disagreement a mismatch is."""

    MISSING_LINE = "missing_line"
    WRONG_AMOUNT = "wrong_amount"
    UNEXPECTED_LINE = "unexpected_line"
    PAID_AMOUNT_DIFFERS = "paid_amount_differs"
    UNPAID_PAST_DUE = "unpaid_past_due"
    PAYMENT_WITHOUT_INVOICE = "payment_without_invoice"
    STATUS_DIFFERS = "status_differs"
    NOT_CHECKED = "not_checked"  # Stripe could not be read: the invoice is unreconciled, not wrong

    @property
    def label(self) -> str:
        return str(_PROBLEM_LABELS[self])


_PROBLEM_LABELS = {
    Problem.MISSING_LINE: _l("Missing line"),
    Problem.WRONG_AMOUNT: _l("Wrong amount"),
    Problem.UNEXPECTED_LINE: _l("Line not on the statement"),
    Problem.PAID_AMOUNT_DIFFERS: _l("Paid amount differs"),
    Problem.UNPAID_PAST_DUE: _l("Unpaid past due"),
    Problem.PAYMENT_WITHOUT_INVOICE: _l("Payment without invoice"),
    Problem.STATUS_DIFFERS: _l("Status differs"),
    Problem.NOT_CHECKED: _l("Invoice not checked"),
}
# Stripe's statuses of an invoice, as ours (an uncollectible invoice is still unpaid, as far as we know).
_STRIPE_STATUSES = {"draft": InvoiceStatus.DRAFT, "open": InvoiceStatus.OPEN, "uncollectible": InvoiceStatus.OPEN,
                    "paid": InvoiceStatus.PAID, "void": InvoiceStatus.VOID}


@dataclass(frozen=True)
class Mismatch:
    """One disagreement, said for people: ``force`` and ``provider`` are names ("" when a
    payment cannot be placed), ``detail`` a sentence. ``reference`` is Stripe's id of what
    it is about, for the command line's readers (pages do not show ids)."""

    problem: Problem
    force: str
    provider: str
    detail: str
    reference: str = ""


@dataclass(frozen=True)
class Reconciliation:
    """The month's reconciliation: how much was compared, and every mismatch found."""

    month: date
    statements: int
    invoices_read: int
    stripe_on: bool
    mismatches: tuple[Mismatch, ...]

    @property
    def clean(self) -> bool:
        return not self.mismatches


@dataclass(frozen=True)
class InvoiceLine:
    """A line of an invoice on Stripe, as reconciliation compares it."""

    item_id: str | None  # the invoice item behind the line, which our statement line records
    quantity: int
    amount_pence: int
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Invoice:
    """An invoice on Stripe: its status, total, what was paid and its lines."""

    status: str
    total_pence: int
    amount_paid_pence: int
    lines: tuple[InvoiceLine, ...]


# (contract, kind, pathway, unit price): a group of ledger rows, and a line of a statement.
GroupKey = tuple[uuid.UUID, EventKind, str, int]


def reconcile(month: date, *, tenant: Tenant | None = None, stripe_client: stripe.StripeClient | None = None,
              today: date | None = None) -> Reconciliation:
    """Compare the month's ledger, statements, invoices and payments, for one force or all.

    ``stripe_client`` (None: Stripe is not set up) is used to read each invoice
    and its lines; an invoice that cannot be read is listed as not checked.
    Payments Stripe reported for no invoice of ours cannot be placed in a force,
    so they are listed only when every force is reconciled. Writes nothing.
    """
    today = today or utcnow().astimezone(LONDON).date()
    forces = [tenant] if tenant is not None else list(db.session.scalars(select(Tenant).order_by(Tenant.name)))
    providers = dict(db.session.execute(select(Provider.id, Provider.name)).tuples().all())
    mismatches: list[Mismatch] = []
    statements = invoices_read = 0
    for force in forces:
        with scoped(force.id):
            found = _force_month(force, month, providers, stripe_client, today)
        mismatches += found.mismatches
        statements += found.statements
        invoices_read += found.invoices_read
    if tenant is None:
        mismatches += _payments_without_invoice(month)
    return Reconciliation(month, statements, invoices_read, stripe_client is not None, tuple(mismatches))


@dataclass
class _Found:
    statements: int = 0
    invoices_read: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)


def _force_month(force: Tenant, month: date, providers: Mapping[int, str],
                 stripe_client: stripe.StripeClient | None, today: date) -> _Found:
    """The force in scope's month: every statement, and ledger rows no statement bills."""
    found = _Found()
    ledger = _ledger_groups(month)
    names = statements.pathway_names(force.id)
    closed = db.session.scalar(select(ClosedMonth.id).where(ClosedMonth.month == month)) is not None
    billed: set[int] = set()
    for statement in db.session.scalars(select(Statement).where(Statement.month == month)
                                        .order_by(Statement.provider_id)):
        found.statements += 1
        billed.add(statement.provider_id)
        provider = providers.get(statement.provider_id, "")

        def said(problem: Problem, detail: str, reference: str = "", provider: str = provider) -> None:
            found.mismatches.append(Mismatch(problem, force.name_in(current_language()), provider, detail,
                                             reference))

        lines = list(db.session.scalars(select(StatementLine).where(StatementLine.statement_id == statement.id)))
        for problem, detail in _ledger_against_lines(ledger.get(statement.provider_id, {}), lines, names):
            said(problem, detail)
        for problem, detail in _totals(statement, lines):
            said(problem, detail)
        invoice: Invoice | None = None
        if stripe_client is not None and statement.stripe_invoice_id:
            try:
                invoice = read_invoice(stripe_client, statement.stripe_invoice_id)
                found.invoices_read += 1
            except stripe.StripeError as error:
                said(Problem.NOT_CHECKED, f"Stripe could not be asked for the invoice: {_reason(error)}",
                     statement.stripe_invoice_id)
        elif stripe_client is not None and statement.invoice_status is InvoiceStatus.NOT_SENT and lines:
            # With Stripe on, a statement of a closed month is invoiced by the close; one that is not (and
            # was not skipped for its provider's account, which the close reports) is billed nowhere.
            amount = sum(line.amount_pence for line in lines)
            said(Problem.MISSING_LINE, f"No invoice on Stripe bills this statement's "
                                       f"{counted(len(lines), 'line')} ({money(amount)}).")
        if invoice is not None:
            for problem, detail in _lines_against_invoice(lines, invoice, names):
                said(problem, detail, statement.stripe_invoice_id or "")
        for problem, detail in _payment(statement, invoice, today):
            said(problem, detail, statement.stripe_invoice_id or "")
    if closed:  # an open month's rows are not billed yet; a closed month's must all be
        for provider_id, groups in sorted(ledger.items()):
            if provider_id not in billed:
                rows = sum(quantity for quantity, _amount in groups.values())
                amount = sum(amount for _quantity, amount in groups.values())
                found.mismatches.append(Mismatch(
                    Problem.MISSING_LINE, force.name_in(current_language()), providers.get(provider_id, ""),
                    f"The month is closed but nothing bills its {counted(rows, 'ledger row')} ({money(amount)}): "
                    "there is no statement."))
    return found


def _ledger_groups(month: date) -> dict[int, dict[GroupKey, tuple[int, int]]]:
    """The month's ledger rows of the force in scope, by provider and group: (quantity, amount)."""
    rows = db.session.execute(
        select(LedgerEntry.provider_id, LedgerEntry.contract_id, LedgerEntry.kind, LedgerEntry.pathway,
               LedgerEntry.unit_pence, func.sum(LedgerEntry.quantity), func.sum(LedgerEntry.amount_pence))
        .where(LedgerEntry.month == month)
        .group_by(LedgerEntry.provider_id, LedgerEntry.contract_id, LedgerEntry.kind, LedgerEntry.pathway,
                  LedgerEntry.unit_pence)
    ).tuples()
    groups: dict[int, dict[GroupKey, tuple[int, int]]] = {}
    for provider_id, contract_id, kind, pathway, unit, quantity, amount in rows:
        groups.setdefault(provider_id, {})[(contract_id, kind, pathway, unit)] = (int(quantity), int(amount))
    return groups


def _ledger_against_lines(ledger: Mapping[GroupKey, tuple[int, int]], lines: Sequence[StatementLine],
                          names: Mapping[str, str]) -> Iterator[tuple[Problem, str]]:
    by_group = {_group_of(line): line for line in lines}
    for key, (quantity, amount) in sorted(ledger.items(), key=lambda item: _order(item[0])):
        line = by_group.get(key)
        if line is None:
            yield Problem.MISSING_LINE, (f"The statement has no line for {_what(key, quantity, amount, names)} "
                                         "in the ledger.")
        elif (line.quantity, line.amount_pence) != (quantity, amount):
            billed = _what(key, line.quantity, line.amount_pence, names)
            yield Problem.WRONG_AMOUNT, (f"The statement bills {billed}; "
                                         f"the ledger has {_what(key, quantity, amount, names)}.")
    for key, line in sorted(by_group.items(), key=lambda item: _order(item[0])):
        if key not in ledger:
            billed = _what(key, line.quantity, line.amount_pence, names)
            yield Problem.WRONG_AMOUNT, f"The statement bills {billed}, which the ledger does not have."


def _totals(statement: Statement, lines: Sequence[StatementLine]) -> Iterator[tuple[Problem, str]]:
    net = sum(line.amount_pence for line in lines)
    vat = sum(line.vat_pence for line in lines)
    if statement.net_pence != net:
        yield Problem.WRONG_AMOUNT, (f"The statement's net total is {money(statement.net_pence)}; "
                                     f"its lines add up to {money(net)}.")
    if statement.vat_pence != vat:
        yield Problem.WRONG_AMOUNT, (f"The statement's VAT is {money(statement.vat_pence)}; "
                                     f"its lines' VAT adds up to {money(vat)}.")


def _lines_against_invoice(lines: Sequence[StatementLine], invoice: Invoice,
                           names: Mapping[str, str]) -> Iterator[tuple[Problem, str]]:
    """Each statement line against the invoice line of its invoice item (or of its metadata)."""
    on_stripe = list(invoice.lines)
    for line in sorted(lines, key=lambda each: _order(_group_of(each))):
        key = _group_of(line)
        match = _invoice_line_of(line, on_stripe)
        if match is None:
            yield Problem.MISSING_LINE, (f"The invoice on Stripe has no line for "
                                         f"{_what(key, line.quantity, line.amount_pence, names)}.")
            continue
        on_stripe.remove(match)
        if (match.quantity, match.amount_pence) != (line.quantity, line.amount_pence):
            on_invoice = _what(key, match.quantity, match.amount_pence, names)
            yield Problem.WRONG_AMOUNT, (f"The invoice on Stripe bills {on_invoice}; "
                                         f"the statement has {line.quantity} ({money(line.amount_pence)}).")
    for extra in on_stripe:
        named = f" ({extra.description})" if extra.description else ""
        yield Problem.UNEXPECTED_LINE, (f"The invoice on Stripe has a line{named} of {extra.quantity} for "
                                        f"{money(extra.amount_pence)} that the statement does not have.")


def _invoice_line_of(line: StatementLine, on_stripe: Sequence[InvoiceLine]) -> InvoiceLine | None:
    for candidate in on_stripe:
        if line.stripe_item_id and candidate.item_id == line.stripe_item_id:
            return candidate
    for candidate in on_stripe:  # the item's id not recorded (a close that died before it could)
        if candidate.metadata.get("diversion_line") == str(line.id):
            return candidate
    return None


def _payment(statement: Statement, invoice: Invoice | None, today: date) -> Iterator[tuple[Problem, str]]:
    gross = statement.gross_pence
    status = statement.invoice_status
    if status is InvoiceStatus.PAID and statement.amount_paid_pence != gross:
        yield Problem.PAID_AMOUNT_DIFFERS, (f"{money(statement.amount_paid_pence)} was paid for an invoice of "
                                            f"{money(gross)}.")
    if invoice is not None:
        if invoice.total_pence != gross:
            yield Problem.WRONG_AMOUNT, (f"The invoice on Stripe totals {money(invoice.total_pence)}; "
                                         f"the statement totals {money(gross)} with VAT.")
        if invoice.status == "paid" and status is not InvoiceStatus.PAID:
            paid = money(invoice.amount_paid_pence)
            yield Problem.PAID_AMOUNT_DIFFERS, (f"Stripe says the invoice is paid ({paid}); "
                                                f"here it is “{status.label}”: a payment was not recorded.")
        elif status is InvoiceStatus.PAID and invoice.amount_paid_pence != statement.amount_paid_pence:
            yield Problem.PAID_AMOUNT_DIFFERS, (f"Stripe says {money(invoice.amount_paid_pence)} was paid; "
                                                f"{money(statement.amount_paid_pence)} was recorded here.")
        elif (on_stripe := _STRIPE_STATUSES.get(invoice.status)) is not None and on_stripe.rank > status.rank:
            yield Problem.STATUS_DIFFERS, (f"Stripe says the invoice is “{on_stripe.label}”; here it is "
                                           f"“{status.label}”: an event from Stripe was missed.")
    unpaid = status in (InvoiceStatus.DRAFT, InvoiceStatus.OPEN, InvoiceStatus.PAYMENT_FAILED)
    if unpaid and statement.invoice_due_on is not None and statement.invoice_due_on < today:
        owed = gross - statement.amount_paid_pence
        yield Problem.UNPAID_PAST_DUE, (f"Due on {_day(statement.invoice_due_on)} and not paid: "
                                        f"{money(owed)} outstanding (“{status.label}”).")


def _payments_without_invoice(month: date) -> list[Mismatch]:
    """Payments Stripe reported in the month (London) about an invoice no statement of ours has."""
    found = []
    stray = db.session.scalars(select(StripeEvent).where(StripeEvent.type == "invoice.paid",
                                                         StripeEvent.matched.is_(False))
                               .order_by(StripeEvent.created))
    for event in stray:
        if month_of(event.created) != month:
            continue
        amount = money(event.amount_paid_pence or 0)
        found.append(Mismatch(
            Problem.PAYMENT_WITHOUT_INVOICE, "", "",
            f"Stripe reported a payment of {amount} on {_day(event.created.astimezone(LONDON).date())} "
            "for an invoice that no statement bills.", event.stripe_invoice_id or ""))
    return found


def read_invoice(client: stripe.StripeClient, invoice_id: str) -> Invoice:
    """The invoice ``invoice_id`` on Stripe, with every one of its lines (page after page)."""
    found = client.v1.invoices.retrieve(invoice_id)
    listed = client.v1.invoices.line_items.list(invoice_id, {"limit": 100})
    lines = tuple(_invoice_line(line.to_dict()) for line in listed.auto_paging_iter())
    return Invoice(status=str(found.status or ""), total_pence=int(found.total or 0),
                   amount_paid_pence=int(found.amount_paid or 0), lines=lines)


def _invoice_line(line: Mapping[str, Any]) -> InvoiceLine:
    parent = line.get("parent") or {}
    details = parent.get("invoice_item_details") or {} if isinstance(parent, Mapping) else {}
    item = details.get("invoice_item") if isinstance(details, Mapping) else None
    if not isinstance(item, str):  # Stripe's older line shape names the item on the line itself
        item = line.get("invoice_item") if isinstance(line.get("invoice_item"), str) else None
    metadata = line.get("metadata") or {}
    return InvoiceLine(item_id=item, quantity=int(line.get("quantity") or 0), amount_pence=int(line.get("amount") or 0),
                       description=str(line.get("description") or ""),
                       metadata={str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, Mapping) else {})


def _group_of(line: StatementLine) -> GroupKey:
    return (line.contract_id, line.kind, line.pathway, line.unit_pence)


def _order(key: GroupKey) -> tuple[str, str, str, int]:
    contract_id, kind, pathway, unit = key
    return (str(contract_id), kind.value, pathway, unit)


def _what(key: GroupKey, quantity: int, amount: int, names: Mapping[str, str]) -> str:
    """``3 × Referral accepted, DIVERT (adults), at £70.00 (£210.00)``."""
    _contract, kind, pathway, unit = key
    return f"{quantity} × {statements.describe(kind, pathway, names)}, at {money(unit)} ({money(amount)})"


def _day(day: date) -> str:
    return f"{day.day} {day.strftime('%B %Y')}"


def _reason(error: stripe.StripeError) -> str:
    """Why Stripe could not be asked, for people (the SDK's own messages carry ids and advice meant for developers)."""
    if isinstance(error, stripe.APIConnectionError):
        return "Stripe did not answer."
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return "Stripe refused the platform's key."
    if error.code == "resource_missing":
        return "Stripe has no such invoice."
    return f"Stripe answered with an error (HTTP status {error.http_status or 'unknown'})."


def describe(found: Reconciliation) -> Iterable[str]:
    """The reconciliation as lines of text, for the command line."""
    scope = f"{counted(found.statements, 'statement')}, {counted(found.invoices_read, 'invoice')} read from Stripe"
    if not found.stripe_on:
        scope += " (Stripe is not set up: invoices were not compared)"
    yield f"Reconciliation of {month_label(found.month)}: {scope}."
    if found.clean:
        yield "No mismatches."
        return
    yield f"{counted(len(found.mismatches), 'mismatch', 'mismatches')}:"
    for mismatch in found.mismatches:
        where = " / ".join(part for part in (mismatch.force, mismatch.provider) if part) or "Unplaced"
        reference = f" [{mismatch.reference}]" if mismatch.reference else ""
        yield f"- {mismatch.problem.label}: {where}: {mismatch.detail}{reference}"
