"""What billing keeps: contracts and their prices, the ledger, statements, and Stripe's side of each.

Our ledger is the truth; Stripe is how the money moves. Everything about
one force's money is the force's (``TenantScoped``, under every isolation
layer): its contracts with each provider, each contract's prices, the
ledger rows, the months it has closed, the statement of each (force,
provider, month) with its lines, and the Stripe customer that stands for
the force. A provider's staff read the rows of their own provider in every
force (``provider_criteria``); a provider's Stripe connected account and
the Stripe events received are global rows, like the providers themselves.

Money is integer pence everywhere. A month is the date of its first day.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    Date,
    Enum,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    select,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from diversion.db import Base, TenantScoped, UTCDateTime, tenant_foreign_key, utcnow

STANDARD_VAT_BASIS_POINTS = 2000  # the UK standard rate, 20%


def _enum(kind: type[enum.StrEnum], length: int = 24) -> Enum:
    return Enum(kind, native_enum=False, length=length, values_callable=lambda kinds: [k.value for k in kinds])


class EventKind(enum.StrEnum):
    """What a price is for: a referral event a provider is paid for, or a contract's month."""

    REFERRAL_ACCEPTED = "referral_accepted"
    SESSION_ATTENDED = "session_attended"
    COURSE_COMPLETED = "course_completed"
    MONTHLY_FEE = "monthly_fee"  # a contract's fixed fee (a block grant), one row per month

    @property
    def label(self) -> str:
        return str(_KIND_LABELS[self])


_KIND_LABELS = {
    EventKind.REFERRAL_ACCEPTED: _l("Referral accepted"),
    EventKind.SESSION_ATTENDED: _l("Session attended"),
    EventKind.COURSE_COMPLETED: _l("Course completed"),
    EventKind.MONTHLY_FEE: _l("Monthly fee"),
}
# The kinds priced per referral event (the monthly fee is the contract's own).
PRICED_KINDS = (EventKind.REFERRAL_ACCEPTED, EventKind.SESSION_ATTENDED, EventKind.COURSE_COMPLETED)


class VatTreatment(enum.StrEnum):
    EXEMPT = "exempt"
    STANDARD = "standard"  # STANDARD_VAT_BASIS_POINTS on the net amount

    @property
    def label(self) -> str:
        return str(_l("Exempt from VAT") if self is VatTreatment.EXEMPT else _l("VAT at the standard rate (20%)"))

    @property
    def basis_points(self) -> int:
        return STANDARD_VAT_BASIS_POINTS if self is VatTreatment.STANDARD else 0


class _OfItsProvider:
    """Force-owned billing rows about one provider, which its staff may read in every force."""

    provider_id: Mapped[int]

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool]:
        return cls.provider_id == provider_id


class Contract(_OfItsProvider, TenantScoped, Base):
    """What a force pays one provider from ``starts_on`` to ``ends_on`` (inclusive; None: until
    further notice): a price per event kind and pathway (``Price``), an optional fixed monthly
    fee, its VAT treatment and the platform's fee in basis points of the net amount.

    Two contracts of the same force and provider never overlap (the services refuse it), so
    one date has at most one contract in force. ``notes`` says where the figures come from
    (e.g. that they are assumptions).
    """

    __tablename__ = "billing_contracts"
    __tenant_table_args__ = (
        Index(None, "tenant_id", "provider_id", "starts_on"),
        CheckConstraint("monthly_fee_pence >= 0", name="monthly_fee_not_negative"),
        CheckConstraint("platform_fee_basis_points BETWEEN 0 AND 10000", name="platform_fee_in_range"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="ends_after_it_starts"),
    )

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    monthly_fee_pence: Mapped[int] = mapped_column(default=0)
    vat: Mapped[VatTreatment] = mapped_column(_enum(VatTreatment), default=VatTreatment.EXEMPT)
    platform_fee_basis_points: Mapped[int] = mapped_column(default=0)
    notes: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Price(TenantScoped, Base):
    """A contract's price, in pence, for one event kind on one pathway of the force."""

    __tablename__ = "billing_prices"
    __tenant_from_parent__ = True  # its contract holds the force
    __tenant_table_args__ = (
        tenant_foreign_key("billing_contracts", "contract_id", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "contract_id", "kind", "pathway"),
        CheckConstraint("unit_pence >= 0", name="unit_pence_not_negative"),
    )

    contract_id: Mapped[uuid.UUID]
    kind: Mapped[EventKind] = mapped_column(_enum(EventKind))
    pathway: Mapped[str] = mapped_column(String(63))
    unit_pence: Mapped[int]

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool]:
        return cls.contract_id.in_(select(Contract.id).where(Contract.provider_id == provider_id))


class LedgerEntry(_OfItsProvider, TenantScoped, Base):
    """One billable fact, written once and never changed: an event of a referral priced on its
    date, a contract's fee for a month, or the reversal of an earlier row.

    ``key`` is derived from what the row is about (``referral-event:<transition id>``,
    ``monthly-fee:<contract id>:<YYYY-MM>``, ``reversal:<entry id>``) and unique in the
    force, so the same fact can never be written twice, whoever writes it and however often.
    ``month`` is the statement month the row belongs to: the month of ``occurred_at`` (in
    London), or the next month still open when that one is closed. A reversal carries the
    negated unit price of the row it reverses (``reverses_id``, at most once) and its reason.
    ``amount_pence`` is ``unit_pence * quantity``.
    """

    __tablename__ = "ledger_entries"
    __tenant_from_parent__ = True  # its contract holds the force
    __tenant_table_args__ = (
        tenant_foreign_key("billing_contracts", "contract_id", ondelete="RESTRICT"),
        tenant_foreign_key("referrals", "referral_id", ondelete="RESTRICT"),
        tenant_foreign_key("ledger_entries", "reverses_id", ondelete="RESTRICT"),
        UniqueConstraint("tenant_id", "key"),
        UniqueConstraint("tenant_id", "reverses_id"),
        Index(None, "tenant_id", "month", "provider_id"),
        Index(None, "provider_id", "month"),
        CheckConstraint("amount_pence = unit_pence * quantity", name="amount_is_unit_times_quantity"),
    )

    key: Mapped[str] = mapped_column(String(120))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"))
    contract_id: Mapped[uuid.UUID]
    month: Mapped[date] = mapped_column(Date)
    kind: Mapped[EventKind] = mapped_column(_enum(EventKind))
    pathway: Mapped[str] = mapped_column(String(63), default="")  # "" for a monthly fee
    referral_id: Mapped[uuid.UUID | None]
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    unit_pence: Mapped[int]
    quantity: Mapped[int] = mapped_column(default=1)
    amount_pence: Mapped[int]
    reverses_id: Mapped[uuid.UUID | None]
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))

    def provider_may_write(self, provider_id: int) -> bool:
        """A provider's staff write ledger rows as their own moves of a referral announce themselves."""
        return self.provider_id == provider_id


class ClosedMonth(TenantScoped, Base):
    """A month of a force that is locked: its ledger takes no new rows (late ones go to the next
    open month) and its statements are final."""

    __tablename__ = "billing_closed_months"
    __tenant_table_args__ = (UniqueConstraint("tenant_id", "month"),)

    month: Mapped[date] = mapped_column(Date)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool]:
        return true()  # which months are closed is no secret from a provider


class InvoiceStatus(enum.StrEnum):
    """Where a statement's invoice stands on Stripe, as far as we know. ``rank`` orders them so that
    events arriving out of order never move an invoice backwards (a ``paid`` before its
    ``finalized`` ends paid)."""

    NOT_SENT = "not_sent"  # no invoice on Stripe (Stripe is off, or the close has not reached it)
    SKIPPED = "skipped"  # the provider cannot receive transfers yet: the close left it, and says so
    DRAFT = "draft"
    OPEN = "open"  # finalised and sent for payment
    PAYMENT_FAILED = "payment_failed"
    PAID = "paid"
    VOID = "void"

    @property
    def label(self) -> str:
        return str(_STATUS_LABELS[self])

    @property
    def rank(self) -> int:
        return _STATUS_RANKS[self]


_STATUS_LABELS = {
    InvoiceStatus.NOT_SENT: _l("Not sent"),
    InvoiceStatus.SKIPPED: _l("Not sent: the provider cannot receive payouts yet"),
    InvoiceStatus.DRAFT: _l("Draft"),
    InvoiceStatus.OPEN: _l("Sent, awaiting payment"),
    InvoiceStatus.PAYMENT_FAILED: _l("Payment failed"),
    InvoiceStatus.PAID: _l("Paid"),
    InvoiceStatus.VOID: _l("Void"),
}
_STATUS_RANKS = {
    InvoiceStatus.NOT_SENT: 0, InvoiceStatus.SKIPPED: 0, InvoiceStatus.DRAFT: 1, InvoiceStatus.OPEN: 2,
    InvoiceStatus.PAYMENT_FAILED: 3, InvoiceStatus.PAID: 4, InvoiceStatus.VOID: 4,
}


class Statement(_OfItsProvider, TenantScoped, Base):
    """What a force owes one provider for one closed month, fixed when the month closes, and
    the Stripe invoice that bills it.

    The totals are the sums of its lines: ``net_pence`` (before VAT), ``vat_pence``,
    ``platform_fee_pence`` (kept by the platform) and ``to_provider_pence`` (net + VAT -
    platform fee). ``stripe_invoice_id`` is set once the invoice exists on Stripe;
    ``invoice_status`` follows Stripe's events (never backwards, see ``InvoiceStatus.rank``).
    """

    __tablename__ = "billing_statements"
    __tenant_table_args__ = (
        UniqueConstraint("tenant_id", "provider_id", "month"),
        UniqueConstraint("stripe_invoice_id"),
        Index(None, "provider_id", "month"),
    )

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"))
    month: Mapped[date] = mapped_column(Date)
    net_pence: Mapped[int] = mapped_column(default=0)
    vat_pence: Mapped[int] = mapped_column(default=0)
    platform_fee_pence: Mapped[int] = mapped_column(default=0)
    to_provider_pence: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255))
    invoice_status: Mapped[InvoiceStatus] = mapped_column(_enum(InvoiceStatus), default=InvoiceStatus.NOT_SENT)
    invoice_due_on: Mapped[date | None] = mapped_column(Date)
    amount_paid_pence: Mapped[int] = mapped_column(default=0)
    invoice_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def gross_pence(self) -> int:
        return self.net_pence + self.vat_pence


class StatementLine(TenantScoped, Base):
    """One group of a statement, and one line of its invoice: the ledger rows of one contract, event
    kind, pathway and unit price, with their count (``quantity``) and amount.

    Reversals carry a negated unit price, so they make a group of their own. ``vat_pence`` is
    this line's VAT (its contract's treatment on ``amount_pence``, rounded half up).
    ``stripe_item_id`` is the invoice item made for it on Stripe.
    """

    __tablename__ = "billing_statement_lines"
    __tenant_from_parent__ = True  # its statement holds the force
    __tenant_table_args__ = (
        tenant_foreign_key("billing_statements", "statement_id", ondelete="CASCADE"),
        tenant_foreign_key("billing_contracts", "contract_id", ondelete="RESTRICT"),
        UniqueConstraint("tenant_id", "statement_id", "contract_id", "kind", "pathway", "unit_pence"),
        UniqueConstraint("stripe_item_id"),
    )

    statement_id: Mapped[uuid.UUID]
    contract_id: Mapped[uuid.UUID]
    kind: Mapped[EventKind] = mapped_column(_enum(EventKind))
    pathway: Mapped[str] = mapped_column(String(63), default="")
    unit_pence: Mapped[int]
    quantity: Mapped[int]
    amount_pence: Mapped[int]
    vat_pence: Mapped[int] = mapped_column(default=0)
    stripe_item_id: Mapped[str | None] = mapped_column(String(255))

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool]:
        return cls.statement_id.in_(select(Statement.id).where(Statement.provider_id == provider_id))


class StripeCustomer(TenantScoped, Base):
    """The Stripe customer that stands for a force (it pays the invoices)."""

    __tablename__ = "billing_customers"
    __tenant_table_args__ = (UniqueConstraint("tenant_id"), UniqueConstraint("stripe_customer_id"))

    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConnectedAccount(Base):
    """A provider's Stripe connected account, where its invoices are paid out, and whether it can
    receive transfers yet (from Stripe's ``account.updated`` events and the close's own check).

    Global, like the provider: one account serves every force the provider works for.
    """

    __tablename__ = "billing_connected_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), unique=True)
    stripe_account_id: Mapped[str] = mapped_column(String(255), unique=True)
    details_submitted: Mapped[bool] = mapped_column(default=False)
    transfers_active: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class StripeEvent(Base):
    """A Stripe event we have acted on, recorded in the same transaction as its effect, so a
    second delivery of it (Stripe delivers at least once) changes nothing."""

    __tablename__ = "billing_stripe_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[datetime] = mapped_column(UTCDateTime())  # Stripe's time of the event
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255), index=True)
    amount_paid_pence: Mapped[int | None]  # for invoice.paid: what Stripe says was paid
    matched: Mapped[bool] = mapped_column(default=True)  # False: about no invoice or account of ours
