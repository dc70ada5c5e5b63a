"""The monthly close: lock a month, settle its statements, and bill each on Stripe.

For each force (one, or every force): the contracts' monthly fees are
charged, the month is locked (``ClosedMonth``: the ledger takes no new rows
in it, late ones go to the next open month) and its statements are settled,
one per provider with rows in the month. Then, when Stripe is on, each
statement becomes one invoice on the platform's account with the force as
customer, paid out to the provider's connected account
(``transfer_data[destination]``) less the platform fee
(``application_fee_amount``), collected by bank transfer
(``collection_method=send_invoice``), with one invoice item per statement
line (a group of ledger rows, never one per row: Stripe takes at most 250
items on an invoice), standard VAT as a Stripe tax rate; then finalised
and sent.

Every request carries an idempotency key derived from our own rows, and
what Stripe answers is recorded at once, one short unit of work per step,
so a run that dies half way picks up where it stopped. Stripe forgets keys
after about a day, so before creating an invoice or a line whose id we never
recorded, the close looks for one made for it (by its metadata) and takes
that one. Running the close again changes nothing: a statement already sent
is not touched, and no request is made for it.

A provider whose connected account cannot receive transfers yet has its
statements left out (``SKIPPED``) and named in the report; the next run
tries again. Without Stripe, months close and statements are written, and
invoices stay ``NOT_SENT``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import stripe
from flask import current_app
from sqlalchemy import select

from diversion import jobs
from diversion.accounts.access import SYSTEM, Action, Actor, require, user_id_of
from diversion.billing import ledger, statements, stripe_api
from diversion.billing.models import (
    ClosedMonth,
    ConnectedAccount,
    Contract,
    InvoiceStatus,
    Statement,
    StatementLine,
    StripeCustomer,
    VatTreatment,
)
from diversion.billing.months import month_key, month_label, month_of
from diversion.catalogue.models import Provider
from diversion.db import LONDON, utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.words import counted

Progress = Callable[[int, int | None, str], None]
CLOSE_TASK = "billing.close"
VAT_TAX_RATE = "vat-standard-2000"  # our name for the standard-rate tax rate, in its metadata and key


@dataclass(frozen=True)
class Outcome:
    """What the close did with one statement."""

    force: str
    provider: str
    status: InvoiceStatus
    note: str = ""


@dataclass
class CloseReport:
    """A close's account: the forces whose month is locked and each statement's invoice."""

    month: date
    stripe_on: bool
    forces: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def skipped(self) -> list[Outcome]:
        return [each for each in self.outcomes if each.status is InvoiceStatus.SKIPPED]

    def summary(self) -> str:
        """The report in one sentence, e.g. for the console's progress."""
        statuses = [each.status for each in self.outcomes]
        said = f"{month_label(self.month)} is closed for {counted(len(self.forces), 'force')}, " \
               f"with {counted(len(statuses), 'statement')}"
        by_status = "; ".join(f"{status.label} ({statuses.count(status)})" for status in InvoiceStatus
                              if status in statuses)
        return f"{said}: {by_status}." if by_status else f"{said}."

    def lines(self) -> list[str]:
        """The report in plain words, one line each."""
        said = [f"{month_label(self.month)} is closed for {counted(len(self.forces), 'force')}."]
        if not self.stripe_on:
            said.append("Stripe is not set up: statements are written, no invoice was sent.")
        said += [f"{each.force}, {each.provider}: {each.status.label}{f' ({each.note})' if each.note else ''}."
                 for each in self.outcomes]
        return said


# ------------------------------------------------------------------ the close

def close_month(month: date, *, tenant: Tenant | None = None, actor: Actor,
                progress: Progress | None = None) -> CloseReport:
    """Close ``month`` for ``tenant`` (every force without one) and bill it on Stripe; the report.

    Commits as it goes (one unit of work per step: a job's way, see ``diversion.jobs``).
    Refuses (``AccessRefused``) an actor who may not close a month, and (``FieldError``
    on ``month``) a month that has not ended yet.
    """
    require(actor, Action.CLOSE_MONTH)
    if month >= month_of(utcnow()):
        raise FieldError("month", f"{month_label(month)} has not ended yet: only a past month can be closed.")
    say = progress or (lambda _done, _total, _note: None)
    forces = [tenant] if tenant is not None else list(db.session.scalars(
        select(Tenant).where(Tenant.status != ForceStatus.DRAFT).order_by(Tenant.name)))  # a draft bills nothing
    report = CloseReport(month=month, stripe_on=bool(current_app.config.get("STRIPE_SECRET_KEY")))
    settled: list[tuple[Tenant, list[Statement]]] = []
    for done, force in enumerate(forces):
        say(done, len(forces), f"Locking {month_label(month)} for {force.name}")
        with scoped(force.id), jobs.unit_of_work():
            ledger.charge_monthly_fees(force, month, actor=actor)
            _lock(force, month, actor)
            settled.append((force, statements.settle_month(force, month, actor=actor)))
        report.forces.append(force.name)
    providers = {p.id: p.name for p in db.session.scalars(select(Provider))}
    total = sum(len(made) for _force, made in settled)
    done = 0
    with stripe_api.opened() as sdk:
        run = _Run(sdk, report, providers)
        for force, made in settled:
            with scoped(force.id):
                for statement in made:
                    say(done, total, f"Billing {force.name} for {providers.get(statement.provider_id, '')}")
                    report.outcomes.append(run.bill(force, statement))
                    done += 1
    say(total, total, report.summary())
    return report


def _lock(force: Tenant, month: date, actor: Actor) -> None:
    ledger.lock_months(force.id)  # writers under way finish first; new ones wait for the lock
    if db.session.scalar(select(ClosedMonth.id).where(ClosedMonth.month == month)) is None:
        db.session.add(ClosedMonth(tenant_id=force.id, month=month, closed_by_id=user_id_of(actor)))
        db.session.flush()


class _Run:
    """One close's talk with Stripe: what it has found out once (the tax rate, the accounts) it keeps."""

    def __init__(self, sdk: stripe.StripeClient | None, report: CloseReport, providers: dict[int, str]) -> None:
        self.sdk, self.report, self.providers = sdk, report, providers
        self._vat_rate: str | None = None
        self._ready: dict[int, tuple[str | None, str]] = {}

    def bill(self, force: Tenant, statement: Statement) -> Outcome:
        provider = self.providers.get(statement.provider_id, "")
        if statement.invoice_status.rank >= InvoiceStatus.OPEN.rank:
            return Outcome(force.name, provider, statement.invoice_status)
        if self.sdk is None:
            return Outcome(force.name, provider, statement.invoice_status, "Stripe is not set up")
        lines = list(db.session.scalars(select(StatementLine).where(StatementLine.statement_id == statement.id)
                                        .order_by(StatementLine.kind, StatementLine.pathway, StatementLine.unit_pence)))
        if statement.gross_pence <= 0 or not lines:
            return Outcome(force.name, provider, statement.invoice_status, "nothing to bill")
        account, why_not = self._account(statement.provider_id)
        if account is None:
            with jobs.unit_of_work():
                statement.invoice_status = InvoiceStatus.SKIPPED
                statement.invoice_updated_at = utcnow()
            return Outcome(force.name, provider, InvoiceStatus.SKIPPED, why_not)
        customer = self._customer(force)
        self._invoice(force, statement, lines, customer, account)
        return Outcome(force.name, provider, statement.invoice_status)

    # -------------------------------------------------------------- who pays, who is paid

    def _account(self, provider_id: int) -> tuple[str | None, str]:
        """The provider's connected account when it can receive transfers; else None and why not."""
        if provider_id in self._ready:
            return self._ready[provider_id]
        assert self.sdk is not None  # noqa: S101 - only called with Stripe on
        account = db.session.scalar(select(ConnectedAccount).where(ConnectedAccount.provider_id == provider_id))
        answer: tuple[str | None, str]
        if account is None:
            answer = (None, "the provider has not set up payouts")
        else:
            if not account.transfers_active:
                found = self.sdk.v1.accounts.retrieve(account.stripe_account_id)
                capabilities = found.capabilities
                with jobs.unit_of_work():
                    account.transfers_active = capabilities is not None and capabilities.transfers == "active"
                    account.details_submitted = bool(found.details_submitted)
            answer = ((account.stripe_account_id, "") if account.transfers_active
                      else (None, "the provider's account cannot receive payouts yet"))
        self._ready[provider_id] = answer
        return answer

    def _customer(self, force: Tenant) -> str:
        """The force's Stripe customer, made once (found again by its metadata if we lost its id)."""
        assert self.sdk is not None  # noqa: S101
        known = db.session.scalar(select(StripeCustomer))
        if known is not None:
            return known.stripe_customer_id
        found = self.sdk.v1.customers.search({"query": f"metadata['diversion_force']:'{force.slug}'"}).data
        customer = found[0] if found else self.sdk.v1.customers.create(
            {"name": force.name, "description": f"{force.name}: diversion scheme",
             "metadata": {"diversion_force": force.slug}}, stripe_api.options(f"customer:{force.slug}"))
        with jobs.unit_of_work():
            db.session.add(StripeCustomer(tenant_id=force.id, stripe_customer_id=customer.id))
        return customer.id

    def _vat(self) -> str:
        """The standard-rate VAT tax rate, made once on the account."""
        assert self.sdk is not None  # noqa: S101
        if self._vat_rate is None:
            for rate in self.sdk.v1.tax_rates.list({"active": True, "limit": 100}).auto_paging_iter():
                if _metadata(rate, "diversion_tax") == VAT_TAX_RATE:
                    self._vat_rate = rate.id
                    break
            else:
                self._vat_rate = self.sdk.v1.tax_rates.create(
                    {"display_name": "VAT", "description": "UK VAT at the standard rate", "percentage": 20,
                     "inclusive": False, "country": "GB", "tax_type": "vat",
                     "metadata": {"diversion_tax": VAT_TAX_RATE}}, stripe_api.options(f"tax-rate:{VAT_TAX_RATE}")).id
        return self._vat_rate

    # -------------------------------------------------------------- the invoice

    def _invoice(self, force: Tenant, statement: Statement, lines: list[StatementLine], customer: str,
                 account: str) -> None:
        assert self.sdk is not None  # noqa: S101
        sdk, key = self.sdk, str(statement.id)
        fresh = False
        if statement.stripe_invoice_id is None:
            invoice = self._find_invoice(customer, key)
            if invoice is None:
                fields: Any = self._invoice_fields(force, statement, customer, account)
                invoice = sdk.v1.invoices.create(fields, stripe_api.options(f"invoice:{key}"))
                fresh = True
            with jobs.unit_of_work():
                statement.stripe_invoice_id = invoice.id
                statement.invoice_status = InvoiceStatus.DRAFT
                statement.invoice_updated_at = utcnow()
        else:
            invoice = sdk.v1.invoices.retrieve(statement.stripe_invoice_id)
        if invoice.status == "draft":
            self._add_lines(invoice.id, statement, lines, customer, known_empty=fresh)
            invoice = sdk.v1.invoices.finalize_invoice(invoice.id, {"auto_advance": False},
                                                       stripe_api.options(f"finalize:{key}"))
        if invoice.status == "open":
            sdk.v1.invoices.send_invoice(invoice.id, None, stripe_api.options(f"send:{key}"))
        with jobs.unit_of_work():
            status = _STATUS_OF.get(str(invoice.status), InvoiceStatus.DRAFT)
            if status.rank > statement.invoice_status.rank:
                statement.invoice_status = status
            if invoice.due_date:
                statement.invoice_due_on = datetime.fromtimestamp(invoice.due_date, UTC).astimezone(LONDON).date()
            statement.invoice_updated_at = utcnow()

    def _find_invoice(self, customer: str, statement_key: str) -> stripe.Invoice | None:
        """The invoice an earlier run made for this statement, if its answer was lost."""
        assert self.sdk is not None  # noqa: S101
        for invoice in self.sdk.v1.invoices.list({"customer": customer, "limit": 100}).auto_paging_iter():
            if _metadata(invoice, "diversion_statement") == statement_key:
                return invoice
        return None

    def _invoice_fields(self, force: Tenant, statement: Statement, customer: str, account: str) -> dict[str, Any]:
        provider = self.providers.get(statement.provider_id, "")
        return {
            "customer": customer,
            "currency": "gbp",
            "collection_method": "send_invoice",
            "days_until_due": int(current_app.config.get("BILLING_DAYS_UNTIL_DUE", 30)),
            "auto_advance": False,
            "pending_invoice_items_behavior": "exclude",
            "payment_settings": {"payment_method_types": ["customer_balance"], "payment_method_options": {
                "customer_balance": {"funding_type": "bank_transfer", "bank_transfer": {"type": "gb_bank_transfer"}}}},
            "transfer_data": {"destination": account},
            "application_fee_amount": max(statement.platform_fee_pence, 0),
            "description": f"{provider}: courses delivered for {force.name} in {month_label(statement.month)}",
            "metadata": {"diversion_statement": str(statement.id), "diversion_force": force.slug,
                         "diversion_provider": str(statement.provider_id), "month": month_key(statement.month)},
        }

    def _add_lines(self, invoice_id: str, statement: Statement, lines: list[StatementLine], customer: str, *,
                   known_empty: bool) -> None:
        """One invoice item per statement line not on the invoice yet."""
        assert self.sdk is not None  # noqa: S101
        missing = [line for line in lines if line.stripe_item_id is None]
        if missing and not known_empty:
            made = {_metadata(item, "diversion_line"): item.id
                    for item in self.sdk.v1.invoice_items.list({"invoice": invoice_id, "limit": 100})
                    .auto_paging_iter()}
            with jobs.unit_of_work():
                for line in missing:
                    line.stripe_item_id = made.get(str(line.id))
            missing = [line for line in missing if line.stripe_item_id is None]
        names = statements.pathway_names(statement.tenant_id) if missing else {}
        for line in missing:
            fields: Any = {
                "customer": customer, "invoice": invoice_id, "currency": "gbp", "quantity": line.quantity,
                "unit_amount_decimal": str(line.unit_pence),
                "description": statements.describe(line.kind, line.pathway, names, reversal=line.unit_pence < 0),
                "metadata": {"diversion_statement": str(statement.id), "diversion_line": str(line.id),
                             "group": f"{line.kind.value}/{line.pathway}/{line.unit_pence}"}}
            if line.vat_pence and _vat_of(line) is VatTreatment.STANDARD:
                fields["tax_rates"] = [self._vat()]
            item = self.sdk.v1.invoice_items.create(fields, stripe_api.options(f"invoice-line:{line.id}"))
            with jobs.unit_of_work():
                line.stripe_item_id = item.id


_STATUS_OF = {"draft": InvoiceStatus.DRAFT, "open": InvoiceStatus.OPEN, "paid": InvoiceStatus.PAID,
              "void": InvoiceStatus.VOID}


def _metadata(found: Any, name: str) -> str | None:
    """A metadata value of a Stripe object (its metadata is not a plain dict)."""
    metadata = getattr(found, "metadata", None)
    value = metadata.to_dict().get(name) if metadata else None
    return str(value) if value is not None else None


def _vat_of(line: StatementLine) -> VatTreatment:
    contract = db.session.get(Contract, line.contract_id)
    return contract.vat if contract is not None else VatTreatment.EXEMPT




# ------------------------------------------------------------------ as a job

@jobs.task(CLOSE_TASK, queueing_lock=CLOSE_TASK)
def close_month_job(month: str, tenant_id: int | None = None, user_id: int | None = None) -> None:
    """The close as a background job (the console's action): progress goes to the job's run."""
    from diversion.accounts.models import User
    from diversion.billing.months import parse_month

    actor: Actor = SYSTEM
    if user_id is not None:
        user = db.session.get(User, user_id)
        if user is None:
            return
        actor = user
    force = db.session.get(Tenant, tenant_id) if tenant_id is not None else None
    close_month(parse_month(month), tenant=force, actor=actor,
                progress=jobs.report)


def closed_months(forces: Iterable[Tenant]) -> dict[int, list[date]]:
    """The months each force has closed, newest first."""
    found: dict[int, list[date]] = {}
    for force in forces:
        with scoped(force.id):
            found[force.id] = list(db.session.scalars(select(ClosedMonth.month).order_by(ClosedMonth.month.desc())))
    return found
