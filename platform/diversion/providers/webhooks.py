"""A provider's webhook endpoint, and sending the outbox: signed deliveries, retried with backoff.

A provider admin sets the endpoint's address (checked by
``diversion.outbound``: it must lead to the public internet only) and gets
its signing secret once; the secret is kept sealed with the platform's data
keys, since it must be readable to sign.

Each delivery is POSTed to the provider's endpoint with these headers:

- ``Diversion-Delivery``: the delivery id, the same on every retry (de-duplicate on it);
- ``Diversion-Event``: ``referral.created``, ``referral.changed``, or ``webhook.test`` (asked for
  on the integrations page: ``feed.queue_test_event``);
- ``Diversion-Timestamp``: when this attempt was signed, in Unix seconds;
- ``Diversion-Signature``: ``v1=`` and the hex HMAC-SHA256, keyed with the
  provider's webhook secret, of ``<timestamp>.<raw body>``.

Any 2xx answer delivers it. Anything else (another status, a redirect, a
refused connection, a timeout) is a failed attempt: the next one waits
``backoff`` (doubling from ``WEBHOOK_BACKOFF_SECONDS`` up to
``WEBHOOK_BACKOFF_CAP_SECONDS``, with jitter), and after
``WEBHOOK_MAX_ATTEMPTS`` attempts the delivery is marked failed. Every
attempt is recorded with how it ended (``AttemptResult``) and the status
code, never the low-level reason, which is logged for operators.

Every POST goes through ``diversion.outbound``: the endpoint's address is
checked again at each attempt, its name resolved afresh, and the connection
pinned to the address just checked; an address that no longer passes is not
called (the provider reads "could not connect").

The endpoint and its secret are the provider's own rows: the worker reads
them in the provider's scope, and writes the attempt in the force's.

Sending runs as jobs (``diversion.jobs``): a change that writes a delivery
queues a round for its provider once it commits (``wake``), and a sweep
every 15 seconds queues a round for every provider with something due
(retries, and any round lost). The outbox is the truth; a job only wakes
it, so a lost job loses nothing. A delivery is claimed before it is sent
(its row locked until its attempt is committed, rows locked by another
worker skipped), so several workers can run; one that dies mid-send
leaves the delivery due, to be sent again. Delivery is at least once:
hence the id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.fernet import InvalidToken
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from diversion import jobs, outage, outbound
from diversion.accounts.access import Action, require, user_id_of
from diversion.audit.services import record
from diversion.cases.identity import Unreadable
from diversion.catalogue.models import Provider
from diversion.db import utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.providers.models import (
    AttemptResult,
    DeliveryStatus,
    FeedCounter,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from diversion.sealing import data_cipher
from diversion.tenancy.context import for_provider, scoped
from diversion.tenancy.models import Tenant

if TYPE_CHECKING:
    from diversion.accounts.access import Actor

DELIVERY_HEADER = "Diversion-Delivery"
EVENT_HEADER = "Diversion-Event"
TIMESTAMP_HEADER = "Diversion-Timestamp"
SIGNATURE_HEADER = "Diversion-Signature"
SIGNATURE_VERSION = "v1"
USER_AGENT = "diversion-webhooks/1"
log = logging.getLogger(__name__)
DEFAULTS = {
    "WEBHOOK_MAX_ATTEMPTS": 8,
    "WEBHOOK_BACKOFF_SECONDS": 30.0,
    "WEBHOOK_BACKOFF_CAP_SECONDS": 6 * 3600.0,
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
}
MAX_URL_LENGTH = 500


class WebhookError(FieldError):
    """A refused change to a provider's webhook endpoint."""


# ---------------------------------------------------------------- the provider's endpoint

def webhook_secret(endpoint: WebhookEndpoint) -> str:
    try:
        return data_cipher().decrypt(endpoint.secret_sealed.encode()).decode()
    except InvalidToken as error:
        raise Unreadable("the webhook secret cannot be decrypted with the configured keys") from error


def endpoint_of(provider: Provider) -> WebhookEndpoint | None:
    with for_provider(provider.id):
        return db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.provider_id == provider.id))


@dataclass(frozen=True)
class Hook:
    """Where one provider's deliveries go, and the secret that signs them."""

    url: str
    secret: str


def hook_of(provider_id: int) -> Hook | None:
    """The provider's endpoint address and signing secret (for the worker), or None.

    Reads in the provider's scope, whatever else is in scope, without
    flushing the caller's pending changes under that scope.
    """
    with db.session.no_autoflush, for_provider(provider_id):
        endpoint = db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.provider_id == provider_id))
        return None if endpoint is None else Hook(endpoint.url, webhook_secret(endpoint))


def webhook_rules() -> outbound.Policy:
    """The outbound rules for webhook endpoints: plain http only where ``WEBHOOK_ALLOW_HTTP`` allows it."""
    return outbound.policy(current_app.config, allow_http=bool(current_app.config.get("WEBHOOK_ALLOW_HTTP")))


def check_url(url: str) -> str:
    """A webhook URL as it will be called. Refuses a blank or over-long one, and
    any address the outbound rules refuse (``diversion.outbound``): not a full
    https:// address (plain http only where the settings allow it, never in
    production), malformed, carrying a user name, password or fragment, on
    another port than 443 (or those allowed), or leading, after resolving its
    name now, anywhere but the public internet."""
    url = url.strip()
    if not url:
        raise WebhookError("url", _("Enter the address of your endpoint, starting https://."))
    if len(url) > MAX_URL_LENGTH:
        raise WebhookError("url", _("The address must be %(count)s characters or fewer.", count=MAX_URL_LENGTH))
    try:
        outbound.check(url, webhook_rules())
    except outbound.Refused as refusal:
        raise WebhookError("url", refusal.message) from None
    return url


def _new_secret() -> tuple[str, str]:
    secret = f"dvwh_{secrets.token_urlsafe(32)}"
    return secret, data_cipher().encrypt(secret.encode()).decode()


def set_endpoint(provider: Provider, *, url: str, actor: Actor) -> tuple[WebhookEndpoint, str | None]:
    """Set where the provider's webhooks go. A new endpoint gets a secret, returned
    here once (None when only the address changed). Refuses a bad address (``check_url``).
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.MANAGE_WEBHOOK, provider_id=provider.id)
    url = check_url(url)
    with for_provider(provider.id):
        endpoint = endpoint_of(provider)
        secret: str | None = None
        if endpoint is None:
            secret, sealed = _new_secret()
            endpoint = WebhookEndpoint(provider_id=provider.id, url=url, secret_sealed=sealed,
                                       created_by_id=user_id_of(actor))
            db.session.add(endpoint)
        else:
            endpoint.url = url
        db.session.flush()
    _wants_webhooks(provider.id, True)
    record("provider_webhook.set", actor=actor, tenant_id=None, object_type="provider_webhook",
           object_id=endpoint.id, details={"provider": provider.slug, "url": url, "new_secret": secret is not None})
    return endpoint, secret


def rotate_secret(provider: Provider, *, actor: Actor) -> str:
    """A new signing secret for the provider's endpoint, returned once; the old one
    stops at once. Refuses when the provider has no endpoint.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.MANAGE_WEBHOOK, provider_id=provider.id)
    with for_provider(provider.id):
        endpoint = endpoint_of(provider)
        if endpoint is None:
            raise WebhookError("url", _("Set your endpoint's address first."))
        secret, endpoint.secret_sealed = _new_secret()
        endpoint.secret_made_at = utcnow()
        db.session.flush()
    record("provider_webhook.secret_rotated", actor=actor, tenant_id=None, object_type="provider_webhook",
           object_id=endpoint.id, details={"provider": provider.slug})
    return secret


def remove_endpoint(provider: Provider, *, actor: Actor) -> None:
    """Stop webhooks to the provider: deliveries not yet made are given up. Refuses when there is none.
    An actor the access table does not allow is refused first (``AccessRefused``)."""
    require(actor, Action.MANAGE_WEBHOOK, provider_id=provider.id)
    with for_provider(provider.id):
        endpoint = endpoint_of(provider)
        if endpoint is None:
            raise WebhookError("url", _("There is no endpoint to remove."))
        record("provider_webhook.removed", actor=actor, tenant_id=None, object_type="provider_webhook",
               object_id=endpoint.id, details={"provider": provider.slug, "url": endpoint.url})
        db.session.delete(endpoint)
        db.session.flush()
    _wants_webhooks(provider.id, False)


def _wants_webhooks(provider_id: int, wanted: bool) -> None:
    """Note on the provider's feed counter whether its moves queue deliveries (``FeedCounter.webhooks``),
    making the counter if the provider has none yet."""
    note = (update(FeedCounter).where(FeedCounter.provider_id == provider_id).values(webhooks=wanted)
            .returning(FeedCounter.provider_id).execution_options(synchronize_session=False))
    if db.session.execute(note).first() is not None:
        return
    try:
        with db.session.begin_nested():
            db.session.execute(insert(FeedCounter).values(provider_id=provider_id, last_position=0,
                                                          webhooks=wanted))
    except IntegrityError:  # a move made the counter meanwhile
        db.session.execute(note)


# ---------------------------------------------------------------- delivering

def setting(name: str) -> float:
    return float(current_app.config.get(name, DEFAULTS[name]))


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Diversion-Signature`` value for a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def backoff(failures: int, *, base: float, cap: float, jitter: float) -> timedelta:
    """How long to wait after the ``failures``-th failed attempt.

    Doubles from ``base`` up to ``cap``; the wait is between half of that and
    all of it (``jitter`` in [0, 1) picks where), so that deliveries that
    failed together do not all come back together.
    """
    ceiling = min(cap, base * 2 ** max(failures - 1, 0))
    return timedelta(seconds=ceiling / 2 + ceiling / 2 * jitter)


def _jitter() -> float:
    return secrets.randbelow(1_000_000) / 1_000_000


@dataclass
class DeliveryRound:
    """What one run of the worker did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    attempts: list[uuid.UUID] = field(default_factory=list)


def _due(now: datetime, batch: int, provider_id: int | None) -> list[tuple[int, uuid.UUID]]:
    """The deliveries due at ``now`` (of one provider, or all), force by force, each force's oldest first."""
    due: list[tuple[int, uuid.UUID]] = []
    for force_id in db.session.scalars(select(Tenant.id).order_by(Tenant.id)).all():
        with scoped(force_id):
            query = (select(WebhookDelivery.id).where(WebhookDelivery.status == DeliveryStatus.PENDING,
                                                      WebhookDelivery.next_attempt_at <= now)
                     .order_by(WebhookDelivery.next_attempt_at).limit(batch))
            if provider_id is not None:
                query = query.where(WebhookDelivery.provider_id == provider_id)
            due.extend((force_id, delivery_id) for delivery_id in db.session.scalars(query))
    return due


def _claim(delivery_id: uuid.UUID, now: datetime) -> WebhookDelivery | None:
    """The delivery, if it is still due, its row locked until the attempt is
    committed; None when another worker holds it or has settled it."""
    return db.session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                      WebhookDelivery.status == DeliveryStatus.PENDING,
                                      WebhookDelivery.next_attempt_at <= now)
        .with_for_update(skip_locked=True))


def providers_due(now: datetime | None = None) -> list[int]:
    """The providers with a delivery due, in every force."""
    due_at, found = now or utcnow(), set[int]()
    for force_id in db.session.scalars(select(Tenant.id).order_by(Tenant.id)).all():
        with scoped(force_id):
            found.update(db.session.scalars(select(WebhookDelivery.provider_id).distinct().where(
                WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= due_at)))
    return sorted(found)


def _post(url: str, headers: dict[str, str], body: bytes, *, timeout: float,
          ssl_context: ssl.SSLContext | None) -> tuple[AttemptResult, int | None]:
    if ssl_context is None and current_app.config["ENV_NAME"] == "test":
        ssl_context = current_app.config.get("WEBHOOK_TEST_TRUST")
    answer = outbound.request("POST", url, rules=webhook_rules(), timeout=timeout, body=body, headers=headers,
                              ssl_context=ssl_context)
    if answer.result is outbound.Result.ANSWERED:
        ok = answer.status is not None and 200 <= answer.status < 300
        return (AttemptResult.DELIVERED if ok else AttemptResult.REFUSED), answer.status
    return {
        outbound.Result.TIMED_OUT: AttemptResult.TIMED_OUT,
        outbound.Result.NOT_ALLOWED: AttemptResult.NOT_ALLOWED,
    }.get(answer.result, AttemptResult.COULD_NOT_CONNECT), None
def attempt(delivery: WebhookDelivery, *, now: datetime | None = None,
            ssl_context: ssl.SSLContext | None = None) -> WebhookAttempt | None:
    """Send a delivery once, record the attempt, and settle what happens next
    (delivered, another attempt later, or failed for good). Flushes, never commits.

    A provider without an endpoint any more gets nothing: the delivery is
    given up, and no attempt recorded (None), since nothing was tried.
    ``now`` is the time of the attempt (signed into it, and the base of the
    backoff): the clock at the moment of sending unless given.
    ``ssl_context`` replaces the system's trust (tests).
    """
    now = now or utcnow()
    hook = hook_of(delivery.provider_id)  # first: nothing of ours is pending under the provider's scope
    if hook is None:
        delivery.status, delivery.finished_at = DeliveryStatus.FAILED, now
        db.session.flush()
        return None
    delivery.attempts += 1
    body = delivery.body.encode()
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: str(delivery.id),
        EVENT_HEADER: delivery.event,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(hook.secret, timestamp, body),
    }
    result, status = _post(hook.url, headers, body, timeout=setting("WEBHOOK_TIMEOUT_SECONDS"),
                           ssl_context=ssl_context)
    if result is not AttemptResult.DELIVERED:
        log.info("webhook delivery %s (provider %s) attempt %s: %s %s", delivery.id, delivery.provider_id,
                 delivery.attempts, result.value, status or "")
    tried = WebhookAttempt(tenant_id=delivery.tenant_id, delivery_id=delivery.id, number=delivery.attempts,
                           attempted_at=now, url=hook.url, status_code=status, result=result)
    db.session.add(tried)
    if result is AttemptResult.DELIVERED:
        delivery.status, delivery.finished_at = DeliveryStatus.DELIVERED, now
    elif delivery.attempts >= setting("WEBHOOK_MAX_ATTEMPTS"):
        delivery.status, delivery.finished_at = DeliveryStatus.FAILED, now
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts, base=setting("WEBHOOK_BACKOFF_SECONDS"),
                                                 cap=setting("WEBHOOK_BACKOFF_CAP_SECONDS"), jitter=_jitter())
    db.session.flush()
    return tried


def deliver_due(*, now: datetime | None = None, batch: int = 100, provider_id: int | None = None,
                ssl_context: ssl.SSLContext | None = None) -> DeliveryRound:
    """Send every delivery due at ``now`` (of one provider, or every one), force by force.

    Each delivery is one unit of work (``jobs.unit_of_work``): claimed (its
    row locked, so that another worker skips it), sent, and its attempt
    committed, so that what was sent is recorded even if a later one fails;
    a worker that dies mid-send leaves it due, to be sent again.
    Progress is reported after each (``jobs.report``).
    Without ``now``, each attempt is signed with the clock as it is sent (a
    long round must not send stale timestamps). ``ssl_context`` replaces
    the system's trust (tests).
    """
    due_at = now or utcnow()
    with jobs.unit_of_work():  # the reads end here, before any endpoint is called
        due = _due(due_at, batch, provider_id)
    done = DeliveryRound()
    jobs.report(0, len(due))
    for number, (force_id, delivery_id) in enumerate(due, start=1):
        status: DeliveryStatus | None = None
        with scoped(force_id), jobs.unit_of_work():
            delivery = _claim(delivery_id, due_at)
            if delivery is not None:
                attempt(delivery, now=now, ssl_context=ssl_context)
                status = delivery.status
        if status is not None:  # else taken, or settled, by another worker meanwhile
            done.attempts.append(delivery_id)
            if status is DeliveryStatus.DELIVERED:
                done.delivered += 1
            elif status is DeliveryStatus.FAILED:
                done.failed += 1
            else:
                done.retrying += 1
        jobs.report(number, len(due), f"{done.delivered} delivered, {done.retrying} to retry, {done.failed} failed")
    return done


# ---------------------------------------------------------------- as jobs

ROUND = "webhooks.deliver"
SWEEP = "webhooks.sweep"


def round_lock(provider_id: int) -> str:
    """One round per provider waits, and runs, at a time."""
    return f"{ROUND}:{provider_id}"


def wake(provider_id: int) -> None:
    """Queue a round for the provider once the caller's transaction commits (its new deliveries are due)."""
    jobs.defer_after_commit(ROUND, lock=round_lock(provider_id), provider_id=provider_id)


@jobs.task(ROUND)
def delivery_round(provider_id: int) -> None:
    """The job: send what is due to one provider."""
    deliver_due(provider_id=provider_id)


@jobs.task(SWEEP, cron="* * * * * */15", queueing_lock=SWEEP)
def sweep(timestamp: int) -> None:
    """Every 15 seconds: a round for each provider with something due (retries
    come due, and a round that was never queued, or lost, is made up)."""
    for provider_id in providers_due():
        jobs.defer(ROUND, lock=round_lock(provider_id), provider_id=provider_id)


def run_forever(*, interval: float, batch: int, echo: Callable[[str], None],
                should_stop: Callable[[], bool] = lambda: False) -> None:
    """Deliver what is due, then wait ``interval`` seconds, until stopped. A
    database that does not answer is waited for, round after round: what was
    due is sent once it answers again (deliveries are claimed, never lost)."""
    while not should_stop():
        try:
            done = deliver_due(batch=batch)
        except Exception as error:
            if not outage.is_outage(error):
                raise
            log.warning("The database does not answer; trying again in %g seconds: %s", interval, error)
            outage.safe_rollback()
        else:
            if done.attempts:
                echo(f"{done.delivered} delivered, {done.retrying} to retry, {done.failed} failed")
        db.session.remove()
        time.sleep(interval)


def recent_deliveries(provider: Provider, *, limit: int = 20) -> list[tuple[Tenant, WebhookDelivery,
                                                                             list[WebhookAttempt]]]:
    """The provider's latest deliveries from every force, newest first, with their attempts."""
    found: list[tuple[Tenant, WebhookDelivery, list[WebhookAttempt]]] = []
    for force in db.session.scalars(select(Tenant).order_by(Tenant.id)).all():
        with scoped(force.id):
            deliveries = db.session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.provider_id == provider.id)
                .order_by(WebhookDelivery.created_at.desc()).limit(limit)).all()
            for delivery in deliveries:
                tries = db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)
                                           .order_by(WebhookAttempt.number)).all()
                found.append((force, delivery, list(tries)))
    found.sort(key=lambda item: item[1].created_at, reverse=True)
    return found[:limit]
