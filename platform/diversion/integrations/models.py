"""What a provider's own systems use: API tokens, the referral feed, webhooks.

Providers are global (one provider serves many forces), so their tokens,
webhook endpoint and feed counter are global rows of that provider; the
tokens and the endpoint (secrets) are reached only with their provider in
scope (``ProviderOwned``). What
is about a referral stays with the referral's force: the feed entry that
places a referral in its provider's feed, and each webhook delivery and
attempt, are force-owned rows under every isolation layer, written in the
same transaction as the change they announce. In provider scope, the
provider reaches its own feed entries and deliveries (its staff's moves
write them), never the attempts (the worker's).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from diversion.accounts.models import User
from diversion.api.bearer import BearerToken
from diversion.api.models import KeptAnswer
from diversion.catalogue.models import Provider
from diversion.db import Base, ProviderOwned, TenantScoped, UTCDateTime, tenant_foreign_key, utcnow


class ProviderToken(ProviderOwned, BearerToken, Base):
    """A provider system's bearer token; only a SHA-256 hash of it is kept."""

    __tablename__ = "provider_tokens"
    # (provider_id, id): what a provider's idempotency keys point at, so that
    # the database refuses a key of one provider under another's token.
    __table_args__ = (UniqueConstraint("provider_id", "prefix"), UniqueConstraint("provider_id", "id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))

    provider: Mapped[Provider] = relationship()
    created_by: Mapped[User | None] = relationship()


class ProviderIdempotencyKey(ProviderOwned, KeptAnswer, Base):
    """A provider token's request kept under its key, for 24 hours: the provider's row.

    Not a force's: one token works across every force the provider serves,
    so its keys are one set per token, whatever force each request touched
    (a key used for a referral in one force cannot be used again for one
    in another). Filing them under the referral's force would either split
    that set per force or put a unique index across forces whose rows the
    request's scope could neither see nor remove. So they are kept like
    the provider's tokens and webhook endpoint, as the provider's own rows;
    the database ties each to its provider's token (a composite foreign
    key), and the ORM guard and PostgreSQL row-level security show them only
    with that provider in scope (``app.provider_id``): never to a force,
    another provider or a page.
    """

    __tablename__ = "provider_idempotency_keys"
    __table_args__ = (
        ForeignKeyConstraint(["provider_id", "token_id"], ["provider_tokens.provider_id", "provider_tokens.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("token_id", "key"),
        Index(None, "provider_id", "expires_at"),
    )
    key_columns = ("token_id", "key")

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))


class WebhookEndpoint(ProviderOwned, Base):
    """Where a provider wants to hear of its referrals, and the secret that signs each delivery.

    The secret is kept encrypted with the platform's data keys (it must be
    readable to sign), never hashed, and shown to the provider once.
    """

    __tablename__ = "provider_webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    secret_sealed: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    secret_made_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FeedCounter(Base):
    """The last feed position handed out for a provider.

    Taking a position updates this row, and the row lock is held until the
    transaction ends, so a provider's positions commit in their own order:
    see ``integrations.feed``.
    """

    __tablename__ = "provider_feed_counters"

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    last_position: Mapped[int] = mapped_column(BigInteger, default=0)


class _OfItsProvider:
    """Force-owned rows about one provider, which its staff reach (and write, as
    their moves announce themselves) in provider scope."""

    provider_id: Mapped[int]

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool]:
        return cls.provider_id == provider_id

    def provider_may_write(self, provider_id: int) -> bool:
        return self.provider_id == provider_id


class FeedEntry(_OfItsProvider, TenantScoped, Base):
    """A referral's place in its provider's feed: the position of its latest change."""

    __tablename__ = "provider_feed_entries"
    __tenant_table_args__ = (
        tenant_foreign_key("referrals", "referral_id", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "referral_id"),
        UniqueConstraint("provider_id", "position"),
        Index(None, "tenant_id", "provider_id", "position"),
    )

    referral_id: Mapped[uuid.UUID]
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"))
    position: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class WebhookDelivery(_OfItsProvider, TenantScoped, Base):
    """One event to send to a provider's endpoint (the outbox), until it is answered 2xx or given up.

    ``id`` is the delivery id the provider de-duplicates on: the same on
    every retry. ``body`` is the exact JSON sent, so every retry sends the
    same bytes.
    """

    __tablename__ = "webhook_deliveries"
    __tenant_table_args__ = (
        tenant_foreign_key("referrals", "referral_id", ondelete="CASCADE"),
        Index(None, "tenant_id", "status", "next_attempt_at"),
        Index(None, "tenant_id", "provider_id", "created_at"),
    )

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    referral_id: Mapped[uuid.UUID]
    event: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=20, values_callable=lambda kinds: [k.value for k in kinds]),
        default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AttemptResult(enum.StrEnum):
    """How one try at a delivery ended, as the provider is told it.

    Never the low-level reason (the worker logs that for operators): what a
    provider reads must not tell it anything about the network the platform
    runs in, such as which ports answer.
    """

    DELIVERED = "delivered"  # answered 2xx
    REFUSED = "refused"  # answered another status (redirects included)
    COULD_NOT_CONNECT = "could_not_connect"
    TIMED_OUT = "timed_out"
    NOT_ALLOWED = "not_allowed"  # the address failed the outbound rules at sending: nothing was sent

    def label(self, status_code: int | None) -> str:
        if self is AttemptResult.DELIVERED:
            return "Delivered"
        if self is AttemptResult.REFUSED:
            return f"Refused by your endpoint (status {status_code})"
        if self is AttemptResult.TIMED_OUT:
            return "Timed out"
        return "Could not connect"  # not allowed reads the same: it tells nothing of what is there


class WebhookAttempt(TenantScoped, Base):
    """One try at a delivery: when, how it ended, and the answer's status code."""

    __tablename__ = "webhook_attempts"
    __tenant_table_args__ = (
        tenant_foreign_key("webhook_deliveries", "delivery_id", ondelete="CASCADE"),
        Index(None, "tenant_id", "delivery_id", "attempted_at"),
    )

    delivery_id: Mapped[uuid.UUID]
    number: Mapped[int]
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    url: Mapped[str] = mapped_column(String(500))
    status_code: Mapped[int | None]
    result: Mapped[AttemptResult] = mapped_column(
        Enum(AttemptResult, native_enum=False, length=20, values_callable=lambda kinds: [k.value for k in kinds]))

    @property
    def answer(self) -> str:
        """What the provider is shown for this attempt."""
        return self.result.label(self.status_code)
