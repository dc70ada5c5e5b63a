"""The platform's one way to Stripe: the official SDK, set up from the settings.

Without ``STRIPE_SECRET_KEY`` there is no client (``None``) and billing runs
without Stripe: months close, statements are written, invoices are marked as
not sent. ``STRIPE_API_BASE`` sends the SDK to another server (the local
Stripe server of the tests and of ``make run``): it is read in development
and test only. Anywhere else an address given there must pass the outward
call rules (``diversion.outbound``: https, a public address), so a setting
can never point the platform's secret key at its own network.

The SDK makes its own idempotency keys at random per call; callers pass their
own, derived from our rows (``options(key)``), so that a retried request is the
same request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import stripe
from flask import Flask, current_app

from diversion import outbound
from diversion.config import ConfigError

RELAXED_PROFILES = ("development", "test")
CONNECT_ORIGIN = "https://connect.stripe.com"


def api_base(app: Flask) -> str | None:
    """Where the SDK is sent instead of Stripe, or None for Stripe itself. Refuses (``ConfigError``)
    outside development and test an address the outward call rules do not allow."""
    base = str(app.config.get("STRIPE_API_BASE") or "").rstrip("/")
    if not base:
        return None
    if app.config.get("ENV_NAME") not in RELAXED_PROFILES:
        try:
            outbound.check(base, outbound.policy(app.config))
        except outbound.Refused as refusal:
            raise ConfigError(f"STRIPE_API_BASE={base!r} is refused: {refusal.message}") from None
    return base


def onboarding_origin(app: Flask) -> str:
    """Where Stripe's Account Link pages live: Stripe Connect's own site, or the server of ``STRIPE_API_BASE``."""
    base = api_base(app)
    if base is None:
        return CONNECT_ORIGIN
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}"


def client(app: Flask | None = None) -> stripe.StripeClient | None:
    """A Stripe client for ``app`` (the current app without one), or None when no key is set.

    Its HTTP session stays open until closed: prefer ``opened``."""
    app = app or current_app
    key = str(app.config.get("STRIPE_SECRET_KEY") or "")
    if not key:
        return None
    base = api_base(app)
    addresses: Any = {"api": base, "connect": base} if base else {}
    http = stripe.RequestsClient(timeout=float(app.config.get("STRIPE_TIMEOUT_SECONDS", 30)))
    return stripe.StripeClient(key, base_addresses=addresses, http_client=http,
                               max_network_retries=int(app.config.get("STRIPE_NETWORK_RETRIES", 2)))


def is_on(app: Flask | None = None) -> bool:
    """Whether the platform is connected to Stripe (a key is set): what needs Stripe can be offered."""
    return bool((app or current_app).config.get("STRIPE_SECRET_KEY"))


@contextmanager
def opened(app: Flask | None = None) -> Iterator[stripe.StripeClient | None]:
    """``client`` for the length of a block, its connections closed after it."""
    sdk = client(app)
    try:
        yield sdk
    finally:
        http = sdk._requestor._client if sdk is not None else None  # the SDK offers no public close
        if http is not None:
            http.close()  # type: ignore[no-untyped-call]


def options(key: str) -> Any:
    """Request options carrying our own idempotency key."""
    return {"idempotency_key": key}
