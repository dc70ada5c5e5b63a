"""What a provider's own systems use: the referral feed and webhooks (its API tokens are
``jsonapi.tokens``').

Providers are global (one provider serves many forces), so their webhook
endpoint and feed counter are global rows of that provider; the endpoint
(a secret) is reached only with its provider in scope (``ProviderOwned``).
What is about a referral stays with the referral's force: the feed entry that
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

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from diversion.db import Base, ProviderOwned, TenantScoped, UTCDateTime, tenant_foreign_key, utcnow


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
    """The last feed position handed out for a provider, and whether it wants webhooks.

    Taking a position updates this row, and the row lock is held until the
    transaction ends, so a provider's positions commit in their own order:
    see ``providers.feed``. ``webhooks`` says whether the provider has a
    webhook endpoint (kept by ``providers.webhooks`` as the endpoint is set
    and removed), so that a move learns it with its position, in the same
    statement, without reading the provider's own rows.
    """

    __tablename__ = "provider_feed_counters"

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    last_position: Mapped[int] = mapped_column(BigInteger, default=0)
    webhooks: Mapped[bool] = mapped_column(default=False, server_default=false())


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
    __tenant_leaf__ = True  # no row points at one
    __tenant_from_parent__ = True  # its referral holds the force
    __tenant_table_args__ = (
        tenant_foreign_key("referrals", "referral_id", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "referral_id"),
        # The feed is read by its provider in order of position (``providers.services``): this
        # serves every read, across the provider's forces. No index leads with the force: no
        # query asks for one force's entries.
        UniqueConstraint("provider_id", "position"),
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
        return str({DeliveryStatus.PENDING: _l("Pending"), DeliveryStatus.DELIVERED: _l("Delivered"),
                    DeliveryStatus.FAILED: _l("Failed")}[self])


class WebhookDelivery(_OfItsProvider, TenantScoped, Base):
    """One event to send to a provider's endpoint (the outbox), until it is answered 2xx or given up.

    ``id`` is the delivery id the provider de-duplicates on: the same on
    every retry. ``body`` is the exact JSON sent, so every retry sends the
    same bytes.
    """

    __tablename__ = "webhook_deliveries"
    __tenant_from_parent__ = True  # its referral holds the force
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
            return str(_l("Delivered"))
        if self is AttemptResult.REFUSED:
            return str(_l("Refused by your endpoint (status %(status)s)", status=status_code))
        if self is AttemptResult.TIMED_OUT:
            return str(_l("Timed out"))
        return str(_l("Could not connect"))  # not allowed reads the same: it tells nothing of what is there


class WebhookAttempt(TenantScoped, Base):
    """One try at a delivery: when, how it ended, and the answer's status code."""

    __tablename__ = "webhook_attempts"
    __tenant_from_parent__ = True  # its delivery holds the force
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
