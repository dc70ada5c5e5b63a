"""Forces (tenants). The table is global on purpose: it is the root of scope."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from diversion.db import Base, UTCDateTime, utcnow


class Tenant(Base):
    """A police force running its diversion scheme on the platform."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    scheme_name: Mapped[str] = mapped_column(String(200))
    brand_colour: Mapped[str] = mapped_column(String(7))
    languages: Mapped[list[str]] = mapped_column(JSON)
    # Outcome codes, the policy, offerings and billing live in the force's
    # settings document until their own tables exist.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<Tenant {self.slug}>"
