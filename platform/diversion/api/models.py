"""API tokens: how a force's own systems call the API (force-owned).

Only a SHA-256 hash of each token is kept; the token itself is shown once,
when it is made. ``prefix`` is the public part of the token, to tell tokens
apart on the page and to find the row without knowing the secret.
"""

from __future__ import annotations

from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped, relationship

from diversion.accounts.models import User
from diversion.api.bearer import BearerToken
from diversion.db import Base, TenantScoped


class ApiToken(BearerToken, TenantScoped, Base):
    __tablename__ = "api_tokens"
    __tenant_table_args__ = (UniqueConstraint("tenant_id", "prefix"),)

    created_by: Mapped[User | None] = relationship()
