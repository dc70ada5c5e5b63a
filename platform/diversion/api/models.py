"""API tokens: how a force's own systems call the API (force-owned).

Only a SHA-256 hash of each token is kept; the token itself is shown once,
when it is made. ``prefix`` is the public part of the token, to tell tokens
apart on the page and to find the row without knowing the secret.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from diversion.accounts.models import User
from diversion.db import Base, TenantScoped, UTCDateTime, utcnow


class ApiToken(TenantScoped, Base):
    __tablename__ = "api_tokens"
    __tenant_table_args__ = (UniqueConstraint("tenant_id", "prefix"),)

    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    created_by: Mapped[User | None] = relationship()

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
