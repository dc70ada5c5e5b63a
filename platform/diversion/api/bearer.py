"""Bearer tokens, the same for a force's systems and a provider's.

A token reads ``<scheme>.<owner slug>.<prefix>.<secret>``: the scheme tells
a force token (``dvt``) from a provider token (``dvp``), the slug and the
public prefix find the row, and only a SHA-256 hash of the whole token is
kept. The token itself is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from diversion.db import UTCDateTime, utcnow
from diversion.errors import FieldError

MAX_NAME_LENGTH = 100
MAX_TOKEN_LENGTH = 256
# Four dot-separated parts of letters, digits, '-' and '_': nothing else reaches a query.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+){3}")
LAST_USED_RESOLUTION = timedelta(minutes=1)  # "last used" is kept to the minute: no write per call
_NO_SUCH_TOKEN = hashlib.sha256(b"no-such-token").hexdigest()


class BearerToken:
    """The columns every kind of token has."""

    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def checked_name(name: str, error: type[FieldError]) -> str:
    """A token's name, stripped; refuses (``error``) a blank or over-long one."""
    name = name.strip()
    if not name:
        raise error("name", "Enter a name for the token, such as the system that will use it.")
    if len(name) > MAX_NAME_LENGTH:
        raise error("name", f"The name must be {MAX_NAME_LENGTH} characters or fewer.")
    return name


def new_token(scheme: str, owner: str, *, prefix_taken: Callable[[str], bool]) -> tuple[str, str]:
    """(prefix, token) of a new token of ``owner``, with a prefix it does not use yet."""
    prefix = secrets.token_hex(4)
    while prefix_taken(prefix):
        prefix = secrets.token_hex(4)
    return prefix, f"{scheme}.{owner}.{prefix}.{secrets.token_urlsafe(32)}"


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or " " in value:
        return None
    return value


def split_token(presented: str, scheme: str) -> tuple[str, str] | None:
    """(owner slug, prefix) of a well-formed token of ``scheme``, or None."""
    if len(presented) > MAX_TOKEN_LENGTH or not TOKEN_SHAPE.fullmatch(presented):
        return None
    parts = presented.split(".")
    if parts[0] != scheme:
        return None
    return parts[1], parts[2]


def accepts(token: BearerToken | None, presented: str) -> bool:
    """Whether ``presented`` is this live token (hashes compared in constant
    time, even when there is no token); notes when it was last used."""
    matches = hmac.compare_digest(token.secret_hash if token else _NO_SUCH_TOKEN, hash_token(presented))
    if token is None or not matches or token.revoked_at is not None:
        return False
    now, last = utcnow(), token.last_used_at
    # SQLite gives back times without their zone; every stored time is UTC.
    if last is None or now - (last if last.tzinfo else last.replace(tzinfo=UTC)) >= LAST_USED_RESOLUTION:
        token.last_used_at = now
    return True
