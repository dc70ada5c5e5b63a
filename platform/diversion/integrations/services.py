"""Provider integrations: tokens, the webhook endpoint, and the provider's referrals.

A provider token reads ``dvp.<provider slug>.<prefix>.<secret>`` (force
tokens start ``dvt.``): the slug finds the provider, the prefix the row,
and the SHA-256 hash of the whole token must match the stored one. The
token and the webhook secret are each returned once, by the service that
makes them.

Every query for a provider's referrals is ``provider_referrals``: it filters
by the provider explicitly and is the one place that crosses forces.

A provider's tokens and webhook endpoint are reached only in that provider's
scope (the ORM guard and row-level security refuse them otherwise): the
services below put it in scope themselves (``_own``), so the row a caller
gets back may be read again while the same provider is in scope.

A webhook address is checked by ``diversion.outbound``, which also makes
every call to it: the address must lead to the public internet only.

Services take explicit arguments, validate, ``flush()`` and never commit.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.fernet import InvalidToken
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from diversion import outbound
from diversion.accounts.models import User
from diversion.api.bearer import accepts, checked_name, hash_token, new_token, split_token
from diversion.audit.services import record
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity, Unreadable, data_cipher, open_contact, open_identity
from diversion.cases.models import Person, Referral, State, Transition
from diversion.catalogue.models import Course, Offering, Provider
from diversion.db import utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.integrations.models import FeedEntry, ProviderToken, WebhookEndpoint
from diversion.tenancy.context import acting_for_provider, current_scope, provider_scoped
from diversion.tenancy.models import Tenant

SCHEME = "dvp"
MAX_URL_LENGTH = 500
# What a provider may do to a referral; withdrawing it is the force's decision.
PROVIDER_MOVES = (State.ACCEPTED, State.DECLINED, State.BOOKED, State.ATTENDED, State.COMPLETED,
                  State.NOT_COMPLETED)


class IntegrationError(FieldError):
    """A refused change to a provider's tokens or webhook endpoint."""


class MoveError(FieldError):
    """A referral move the lifecycle does not allow from where the referral is now."""


@contextmanager
def _own(provider_id: int) -> Iterator[None]:
    """A block that reaches the provider's own rows: its scope, unless it is in scope already
    (then whatever force is in scope stays, as when its staff act on a referral)."""
    scope = current_scope()
    if scope.provider_id == provider_id:
        yield
        return
    with provider_scoped(provider_id, scope.user_id):
        yield


# ---------------------------------------------------------------- tokens

def display_prefix(provider: Provider, token: ProviderToken) -> str:
    return f"{SCHEME}.{provider.slug}.{token.prefix}"


def tokens(provider: Provider) -> Sequence[ProviderToken]:
    """The provider's tokens, newest first, revoked ones too."""
    with _own(provider.id):
        return db.session.scalars(select(ProviderToken).where(ProviderToken.provider_id == provider.id)
                                  .order_by(ProviderToken.created_at.desc(), ProviderToken.prefix)).all()


def create_token(provider: Provider, *, name: str, actor: User | None) -> tuple[ProviderToken, str]:
    """Make a token for one of the provider's systems; returns the row and the token (shown once).

    Refuses a blank or over-long name, and the name of another of the
    provider's tokens that is not revoked.
    """
    name = checked_name(name, IntegrationError)
    with _own(provider.id):
        taken = db.session.scalar(select(ProviderToken.id).where(
            ProviderToken.provider_id == provider.id, ProviderToken.name == name,
            ProviderToken.revoked_at.is_(None)))
        if taken is not None:
            raise IntegrationError("name", "A token that is in use already has this name: choose another.")
        prefix, secret = new_token(SCHEME, provider.slug, prefix_taken=lambda prefix: db.session.scalar(
            select(ProviderToken.id).where(ProviderToken.provider_id == provider.id,
                                           ProviderToken.prefix == prefix)) is not None)
        token = ProviderToken(provider_id=provider.id, name=name, prefix=prefix, secret_hash=hash_token(secret),
                              created_by_id=actor.id if actor else None)
        db.session.add(token)
        db.session.flush()
    record("provider_token.created", actor=actor, tenant_id=None, object_type="provider_token",
           object_id=token.id, details={"provider": provider.slug, "name": name,
                                        "prefix": display_prefix(provider, token)})
    return token, secret


def revoke_token(provider: Provider, token: ProviderToken, *, actor: User | None) -> None:
    """Stop a token working, at once and for good. Refuses another provider's token and one already revoked."""
    with _own(provider.id):
        if token.provider_id != provider.id:
            raise IntegrationError("token", "This token is not one of this provider's.")
        if token.revoked_at is not None:
            raise IntegrationError("token", "This token was already revoked.")
        token.revoked_at = utcnow()
        db.session.flush()
    record("provider_token.revoked", actor=actor, tenant_id=None, object_type="provider_token",
           object_id=token.id, details={"provider": provider.slug, "name": token.name,
                                        "prefix": display_prefix(provider, token)})


def authenticate(presented: str) -> tuple[Provider, ProviderToken] | None:
    """The provider and token a presented token belongs to, or None.

    Refuses (None) a malformed token, a force token, an unknown provider or
    prefix, a hash that does not match (compared in constant time) and a
    revoked token. Notes when the token was last used, to the minute.

    The token is looked up in the named provider's scope only, so a token
    row of any other provider is out of reach whatever the token says.
    """
    found = split_token(presented, SCHEME)
    provider = db.session.scalar(select(Provider).where(Provider.slug == found[0])) if found else None
    if provider is None or found is None:
        return None
    with _own(provider.id):
        token = db.session.scalar(select(ProviderToken).where(ProviderToken.provider_id == provider.id,
                                                              ProviderToken.prefix == found[1]))
        if token is None or not accepts(token, presented):
            return None
        db.session.flush()
    return provider, token


# ---------------------------------------------------------------- webhook endpoint

def webhook_secret(endpoint: WebhookEndpoint) -> str:
    try:
        return data_cipher().decrypt(endpoint.secret_sealed.encode()).decode()
    except InvalidToken as error:
        raise Unreadable("the webhook secret cannot be decrypted with the configured keys") from error


def endpoint_of(provider: Provider) -> WebhookEndpoint | None:
    with _own(provider.id):
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
    with db.session.no_autoflush, _own(provider_id):
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
        raise IntegrationError("url", "Enter the address of your endpoint, starting https://.")
    if len(url) > MAX_URL_LENGTH:
        raise IntegrationError("url", f"The address must be {MAX_URL_LENGTH} characters or fewer.")
    try:
        outbound.check(url, webhook_rules())
    except outbound.Refused as refusal:
        raise IntegrationError("url", refusal.message) from None
    return url


def _new_secret() -> tuple[str, str]:
    secret = f"dvwh_{secrets.token_urlsafe(32)}"
    return secret, data_cipher().encrypt(secret.encode()).decode()


def set_endpoint(provider: Provider, *, url: str, actor: User | None) -> tuple[WebhookEndpoint, str | None]:
    """Set where the provider's webhooks go. A new endpoint gets a secret, returned
    here once (None when only the address changed). Refuses a bad address (``check_url``)."""
    url = check_url(url)
    with _own(provider.id):
        endpoint = endpoint_of(provider)
        secret: str | None = None
        if endpoint is None:
            secret, sealed = _new_secret()
            endpoint = WebhookEndpoint(provider_id=provider.id, url=url, secret_sealed=sealed,
                                       created_by_id=actor.id if actor else None)
            db.session.add(endpoint)
        else:
            endpoint.url = url
        db.session.flush()
    record("provider_webhook.set", actor=actor, tenant_id=None, object_type="provider_webhook",
           object_id=endpoint.id, details={"provider": provider.slug, "url": url, "new_secret": secret is not None})
    return endpoint, secret


def rotate_secret(provider: Provider, *, actor: User | None) -> str:
    """A new signing secret for the provider's endpoint, returned once; the old one
    stops at once. Refuses when the provider has no endpoint."""
    with _own(provider.id):
        endpoint = endpoint_of(provider)
        if endpoint is None:
            raise IntegrationError("url", "Set your endpoint's address first.")
        secret, endpoint.secret_sealed = _new_secret()
        endpoint.secret_made_at = utcnow()
        db.session.flush()
    record("provider_webhook.secret_rotated", actor=actor, tenant_id=None, object_type="provider_webhook",
           object_id=endpoint.id, details={"provider": provider.slug})
    return secret


def remove_endpoint(provider: Provider, *, actor: User | None) -> None:
    """Stop webhooks to the provider: deliveries not yet made are given up. Refuses when there is none."""
    with _own(provider.id):
        endpoint = endpoint_of(provider)
        if endpoint is None:
            raise IntegrationError("url", "There is no endpoint to remove.")
        record("provider_webhook.removed", actor=actor, tenant_id=None, object_type="provider_webhook",
               object_id=endpoint.id, details={"provider": provider.slug, "url": endpoint.url})
        db.session.delete(endpoint)
        db.session.flush()


# ---------------------------------------------------------------- the provider's referrals

@dataclass(frozen=True)
class ProviderReferral:
    """A referral as its provider sees it, loaded inside its force's scope."""

    force: Tenant
    referral: Referral
    course: Course
    position: int
    identity: Identity | None
    contact: Contact | None
    transitions: tuple[Transition, ...]


def provider_referrals(provider_id: int, *, after: int = 0, upto: int | None = None, limit: int | None = None,
                       referral_id: uuid.UUID | None = None) -> list[ProviderReferral]:
    """The referrals sent to one provider, from every force, in feed order.

    Runs in the provider's scope (``provider_scoped``): the ORM guard and
    row-level security show the provider's referrals, their people and its
    feed entries, from every force it serves, and nothing else. The filter
    on the provider below only picks its feed.

    ``after``/``upto`` bound the feed positions (exclusive/inclusive),
    ``limit`` caps the result, ``referral_id`` picks one referral.
    """
    statement = (
        select(Referral, FeedEntry.position, Course, Person)
        .join(FeedEntry, (FeedEntry.tenant_id == Referral.tenant_id) & (FeedEntry.referral_id == Referral.id))
        .join(Offering, (Offering.tenant_id == Referral.tenant_id) & (Offering.id == Referral.offering_id))
        .join(Course, Course.id == Offering.course_id)
        .join(Person, (Person.tenant_id == Referral.tenant_id) & (Person.id == Referral.person_id))
        .where(FeedEntry.provider_id == provider_id, FeedEntry.position > after)
        .options(selectinload(Referral.transitions))
        .order_by(FeedEntry.position)
    )
    if upto is not None:
        statement = statement.where(FeedEntry.position <= upto)
    if referral_id is not None:
        statement = statement.where(Referral.id == referral_id)
    if limit is not None:
        statement = statement.limit(limit)
    with provider_scoped(provider_id, current_scope().user_id):
        rows = db.session.execute(statement).all()
        forces = {force.id: force for force in db.session.scalars(
            select(Tenant).where(Tenant.id.in_({referral.tenant_id for referral, *_ in rows})))}
        return [ProviderReferral(forces[referral.tenant_id], referral, course, int(position), *_personal(person),
                                 tuple(sorted(referral.transitions, key=lambda t: t.occurred_at)))
                for referral, position, course, person in rows]


def _personal(person: Person) -> tuple[Identity | None, Contact | None]:
    try:
        return open_identity(person.identity_sealed), open_contact(person.contact_sealed)
    except Unreadable:
        return None, None


@dataclass(frozen=True)
class FeedPage:
    items: list[ProviderReferral]
    next_position: int
    more: bool


def feed_page(provider_id: int, *, after: int, limit: int) -> FeedPage:
    """The referrals changed after position ``after``, oldest change first.
    Refuses (``CursorError``) a position the provider's feed has not reached.

    Reads the high-water mark first and stops there, so nothing later can
    appear below the page's last position (see ``integrations.feed``).
    """
    from diversion.integrations.feed import CursorError, high_water

    mark = high_water(provider_id)
    if after > mark:
        raise CursorError("cursor", "This cursor is ahead of the feed: it was not given out for this provider.")
    items = provider_referrals(provider_id, after=after, upto=mark, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    # Past the last item shown; or, with nothing after the cursor, the mark
    # itself, so that gaps (rolled-back changes) are not read again.
    next_position = items[-1].position if more else max(after, mark)
    return FeedPage(items, next_position, more)


def move(provider_id: int, referral_id: uuid.UUID, to: State, *, reason: str, expected: State | None,
         token: ProviderToken) -> ProviderReferral | None:
    """Move one of the provider's referrals on, through the case services, with
    the referral's force in scope. None when the provider has no such referral.

    Refuses (``MoveError``) a move the provider may not make (withdrawal
    is the force's), a referral no longer in the ``expected`` state, and a
    move the lifecycle does not allow from its state; ``CaseError`` for a
    missing reason. The audit log names the token.
    """
    found = provider_referrals(provider_id, referral_id=referral_id)
    if not found:
        return None
    force = found[0].force
    if to not in PROVIDER_MOVES:
        raise MoveError("to", "Only the force can withdraw a referral.")
    with acting_for_provider(provider_id, force.id):
        referral = db.session.scalar(select(Referral).where(Referral.id == referral_id).with_for_update()
                                     .execution_options(populate_existing=True))
        if referral is None:  # found a moment ago, in this transaction
            return None
        if expected is not None and referral.state is not expected:
            raise MoveError("expected_state", f"The referral is {referral.state.label.lower()} now, not "
                                                f"{expected.label.lower()}: fetch it again before moving it.")
        try:
            cases.transition(force, referral, to, actor=None, reason=reason)
        except cases.CaseError as error:
            if error.field == "state":
                raise MoveError("to", error.message) from error
            raise
        record(f"provider_api.referral_{to.value}", actor=None, tenant_id=force.id, object_type="referral",
               object_id=referral.id, details={"provider": token.provider.slug, "token": str(token.id),
                                               "prefix": display_prefix(token.provider, token)})
    return found[0]
