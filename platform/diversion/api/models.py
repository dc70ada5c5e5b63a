"""API tokens: how a force's own systems call the API (force-owned); and the
answers kept for requests sent with an ``Idempotency-Key``.

Only a SHA-256 hash of each token is kept; the token itself is shown once,
when it is made. ``prefix`` is the public part of the token, to tell tokens
apart on the page and to find the row without knowing the secret.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from diversion.accounts.models import User
from diversion.api.bearer import BearerToken
from diversion.db import Base, TenantScoped, UTCDateTime, tenant_foreign_key, utcnow

MAX_KEY_LENGTH = 255


class ApiToken(BearerToken, TenantScoped, Base):
    __tablename__ = "api_tokens"
    __tenant_table_args__ = (UniqueConstraint("tenant_id", "prefix"),)

    created_by: Mapped[User | None] = relationship()


class KeptAnswer:
    """The columns of a request kept under its ``Idempotency-Key`` (``api.idempotency``).

    ``fingerprint`` is a hash of what was asked (method, path, body), to
    tell a retry from another request under the same key. The answer
    (``status``, ``body``, ``location``) is written in the transaction of
    the request's effect, so a committed key always has its answer. The
    body is sealed with the platform's data keys, as an answer can carry a
    person's name and contact details.
    """

    # The unique key: which token's key it is.
    key_columns: ClassVar[tuple[str, ...]]

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    body_sealed: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyKey(KeptAnswer, TenantScoped, Base):
    """A force token's request kept under its key, for 24 hours: the force's row, under every isolation layer."""

    __tablename__ = "idempotency_keys"
    __tenant_table_args__ = (
        tenant_foreign_key("api_tokens", "token_id", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "token_id", "key"),
        Index(None, "tenant_id", "expires_at"),
    )
    key_columns = ("tenant_id", "token_id", "key")
