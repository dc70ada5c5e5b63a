"""Stripe events for the tests, shaped like Stripe's own fixture objects and signed as Stripe
documents it: ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the
endpoint's signing secret>``."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from functools import cache
from typing import Any

from diversion.config import REPO_ROOT

FIXTURES = REPO_ROOT.parent / "shared" / "stripe" / "fixtures3.json"
SECRET = "whsec_test_endpoint_secret_of_the_tests"


@cache
def _resources() -> dict[str, Any]:
    return json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of Stripe's example object ``name`` (``event``, ``invoice``, ``account``...)."""
    return copy.deepcopy(_resources()[name])


def invoice(invoice_id: str, *, status: str, amount_due: int = 10000, amount_paid: int = 0,
            due_date: int | None = None, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """Stripe's example invoice as ours look: in pounds, sent for payment by bank transfer."""
    found = fixture("invoice")
    found.update(id=invoice_id, status=status, currency="gbp", collection_method="send_invoice",
                 amount_due=amount_due, amount_paid=amount_paid, amount_remaining=amount_due - amount_paid,
                 total=amount_due, due_date=due_date, metadata=metadata or {})
    return found


def account(account_id: str, *, transfers: str, details_submitted: bool) -> dict[str, Any]:
    found = fixture("account")
    found.update(id=account_id, details_submitted=details_submitted)
    found["capabilities"] = {**found["capabilities"], "transfers": transfers}
    return found


def event(event_id: str, kind: str, subject: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    """Stripe's example event, of ``kind``, about ``subject``."""
    found = fixture("event")
    found.update(id=event_id, type=kind, created=created if created is not None else int(time.time()),
                 data={"object": subject})
    return found


def signature(body: bytes, *, secret: str = SECRET, at: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe sends with ``body``, signed at ``at`` (now)."""
    timestamp = int(time.time()) if at is None else at
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def body_of(found: dict[str, Any]) -> bytes:
    return json.dumps(found, indent=2).encode()
