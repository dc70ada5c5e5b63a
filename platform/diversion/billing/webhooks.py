"""Stripe's events about our invoices and the providers' connected accounts, at one endpoint.

``POST /billing/stripe/webhook`` is open to the world (Stripe calls it, with
no session and no CSRF token), so the only thing that admits an event is
its signature: HMAC-SHA256 of ``timestamp.body`` with the endpoint's
secret, checked by the SDK (``stripe.Webhook.construct_event``) on the body
exactly as it arrived. The SDK refuses a timestamp too far in the past but
accepts any in the future, so the future side is checked here: a signed
timestamp more than ``STRIPE_WEBHOOK_TOLERANCE_SECONDS`` away from now, in
either direction, is refused.

Stripe delivers at least once and in any order. Each event acted on is
recorded (``StripeEvent``, unique ``event_id``) in the same transaction as
its effect, so a second delivery finds it and changes nothing; and an
invoice's status only ever moves up (``InvoiceStatus.rank``), so an
``invoice.paid`` that arrives before its ``invoice.finalized`` still ends
paid. An account's state is taken from an event only when the event is
not older than what we already know of the account.

Answers: 400 with a plain sentence for a bad signature or body (Stripe
shows it in its dashboard and tries again later), 200 for everything
else, a repeated event included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import stripe
from flask import Blueprint, current_app, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from diversion.billing.models import ConnectedAccount, InvoiceStatus, Statement, StripeEvent
from diversion.db import LONDON, utcnow
from diversion.extensions import csrf, db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant

bp = Blueprint("billing_webhooks", __name__)
csrf.exempt(bp)  # Stripe signs its calls; it has no session to carry a token

# What each invoice event says of the invoice.
INVOICE_EVENTS: Mapping[str, InvoiceStatus] = {
    "invoice.finalized": InvoiceStatus.OPEN,
    "invoice.payment_failed": InvoiceStatus.PAYMENT_FAILED,
    "invoice.paid": InvoiceStatus.PAID,
    "invoice.voided": InvoiceStatus.VOID,
}
ACCOUNT_UPDATED = "account.updated"
HANDLED = frozenset({*INVOICE_EVENTS, ACCOUNT_UPDATED})
# Stripe's events are a few kilobytes; anything near this is not one, and is not read whole.
LARGEST_BODY = 1024 * 1024


class DeliveryRefused(ValueError):  # noqa: N818 - reads as the condition it reports
    """A delivery that is not a genuine, current Stripe event: refused with this sentence."""


@dataclass(frozen=True)
class Received:
    """What became of one delivery: ``recorded`` False for an event already acted on."""

    event_id: str
    type: str
    recorded: bool
    matched: bool = True


def verify(payload: bytes, header: str, *, secret: str, tolerance: int,
           now: float | None = None) -> dict[str, Any]:
    """The event in ``payload``, once its ``Stripe-Signature`` header proves it comes from Stripe, now.

    Refuses (``DeliveryRefused``) a missing or wrong signature, a signed time more
    than ``tolerance`` seconds from ``now`` in either direction, and a body that
    is not an event.
    """
    if not secret:
        raise DeliveryRefused("Stripe events are not taken here: no signing secret is set.")
    if not header:
        raise DeliveryRefused("The Stripe-Signature header is missing.")
    try:
        event: dict[str, Any] = stripe.Webhook.construct_event(
            payload.decode("utf-8"), header, secret, tolerance).to_dict()
    except stripe.SignatureVerificationError as error:
        raise DeliveryRefused(f"The signature is refused: {error.user_message or 'it does not match'}.") from error
    except (ValueError, TypeError, AttributeError, KeyError) as error:  # not JSON, or JSON but no event
        raise DeliveryRefused("The body is not a Stripe event in JSON.") from error
    # The SDK has checked the past side only; a signature from the future is refused too, since a
    # clock that far ahead (or a forged time) would make the signature valid for longer than meant.
    signed_at = _signed_timestamp(header)
    moment = now if now is not None else utcnow().timestamp()
    if signed_at > moment + tolerance:
        raise DeliveryRefused("The signature's time is too far in the future.")
    if not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise DeliveryRefused("The body is not a Stripe event: it has no id or type.")
    return event


def _signed_timestamp(header: str) -> int:
    """The ``t=`` of a header the SDK has just accepted (so it is there and a number)."""
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            return int(value)
    raise DeliveryRefused("The Stripe-Signature header has no time.")  # pragma: no cover - the SDK refuses first


def receive(event: Mapping[str, Any]) -> Received:
    """Act on one verified event, and record it in the same unit of work, at most once.

    An event already recorded changes nothing. Invoice events move the
    statement whose invoice they are about up to the status they report
    (never down); ``invoice.paid`` also records what was paid. An event about
    an invoice or account that is not ours is recorded as unmatched (an
    unmatched payment is what reconciliation calls a payment without an
    invoice). Other types are recorded and otherwise left alone. Flushes,
    never commits.
    """
    event_id, kind = str(event["id"]), str(event["type"])
    if db.session.scalar(select(StripeEvent.id).where(StripeEvent.event_id == event_id)) is not None:
        return Received(event_id, kind, recorded=False)
    subject = _data_object(event)
    record = StripeEvent(event_id=event_id, type=kind, created=_moment(event.get("created")))
    if kind in INVOICE_EVENTS:
        record.stripe_invoice_id = str(subject.get("id") or "") or None
        if kind == "invoice.paid":
            record.amount_paid_pence = _pence(subject.get("amount_paid"))
    # The record first, in a savepoint: a concurrent delivery of the same event waits on the
    # unique key and then fails here, and its transaction goes on to answer 200 with no effect.
    try:
        with db.session.begin_nested():
            db.session.add(record)
            db.session.flush()
    except IntegrityError:
        return Received(event_id, kind, recorded=False)
    if kind in INVOICE_EVENTS:
        record.matched = _apply_to_invoice(INVOICE_EVENTS[kind], subject, record.created)
    elif kind == ACCOUNT_UPDATED:
        record.matched = _apply_to_account(subject, record.created)
    db.session.flush()
    return Received(event_id, kind, recorded=True, matched=record.matched)


def _data_object(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("data")
    found = data.get("object") if isinstance(data, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def _moment(seconds: object) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, int) else utcnow()


def _pence(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _due_on(invoice: Mapping[str, Any]) -> date | None:
    due = invoice.get("due_date")
    return datetime.fromtimestamp(due, UTC).astimezone(LONDON).date() if isinstance(due, int) else None


def _apply_to_invoice(status: InvoiceStatus, invoice: Mapping[str, Any], created: datetime) -> bool:
    """Move our statement of ``invoice`` up to ``status``; False when no statement has that invoice."""
    invoice_id = invoice.get("id")
    if not isinstance(invoice_id, str) or not invoice_id:
        return False
    for tenant_id in _forces_to_look_in(invoice):
        # Each force in its own scope: statements are the force's, under every isolation layer.
        with scoped(tenant_id):
            statement = db.session.scalar(select(Statement).where(Statement.stripe_invoice_id == invoice_id))
            if statement is None:
                continue
            if status.rank > statement.invoice_status.rank:
                statement.invoice_status = status
                statement.invoice_updated_at = created
            if status is InvoiceStatus.PAID:
                paid = _pence(invoice.get("amount_paid"))
                if paid is not None:
                    statement.amount_paid_pence = paid
            if statement.invoice_due_on is None:
                statement.invoice_due_on = _due_on(invoice)
            db.session.flush()  # in the force's scope, which row-level security checks the write against
            return True
    return False


def _forces_to_look_in(invoice: Mapping[str, Any]) -> list[int]:
    """Every force's id, the one the invoice's metadata names (``diversion_force``: its slug) first.

    The metadata only orders the search: it is Stripe's copy of what we sent,
    and the statement is found by its invoice id whatever the metadata says.
    """
    forces = db.session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.id)).all()
    metadata = invoice.get("metadata")
    named = metadata.get("diversion_force") if isinstance(metadata, Mapping) else None
    return [tenant_id for tenant_id, slug in sorted(forces, key=lambda force: force.slug != named)]


def _apply_to_account(account: Mapping[str, Any], created: datetime) -> bool:
    """Take the connected account's state from the event; False when the account is not ours.

    An event older than what we know of the account (``updated_at``: the time of
    the state we hold, to the second, as Stripe's times are) is out of order and
    changes nothing.
    """
    account_id = account.get("id")
    if not isinstance(account_id, str):
        return False
    found = db.session.scalar(select(ConnectedAccount).where(ConnectedAccount.stripe_account_id == account_id))
    if found is None:
        return False
    if created < found.updated_at.replace(microsecond=0):
        return True
    capabilities = account.get("capabilities")
    transfers = capabilities.get("transfers") if isinstance(capabilities, Mapping) else None
    found.transfers_active = transfers == "active"
    found.details_submitted = account.get("details_submitted") is True
    found.updated_at = created
    return True


def _plain(message: str, status: int) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


@bp.route("/billing/stripe/webhook", methods=["POST"])
def stripe_webhook() -> Response:
    """Stripe's deliveries: verified on the raw body, then acted on once (see the module)."""
    config = current_app.config
    request.max_content_length = LARGEST_BODY
    try:
        payload = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _plain("The body is too large for a Stripe event.", 413)
    try:
        event = verify(payload, request.headers.get("Stripe-Signature", ""),
                       secret=config["STRIPE_WEBHOOK_SECRET"],
                       tolerance=int(config["STRIPE_WEBHOOK_TOLERANCE_SECONDS"]))
    except DeliveryRefused as refused:
        return _plain(str(refused), 400)
    received = receive(event)
    if not received.recorded:
        return _plain("Already received.", 200)
    return _plain("Received." if received.type in HANDLED else "Received; nothing to do for this type.", 200)
