"""Bearer tokens, one module for both kinds: a force's systems' (``ApiToken``) and a provider's (``ProviderToken``).

A token reads ``<scheme>.<owner slug>.<prefix>.<secret>``: the scheme tells
a force token (``dvt``) from a provider token (``dvp``), the slug finds the
force or provider (no row can be read before the owner is in scope: row-level
security), the public prefix finds the row, and only a SHA-256 hash of the
whole token is kept, compared in constant time. The token itself is shown
once, when it is made; afterwards nobody, the platform included, can show it
again.

A force's tokens are force-owned rows (every isolation layer); a provider's
are the provider's own rows, reached only with that provider in scope (the
services below put it in scope themselves, ``tenancy.context.for_provider``).

Services take explicit arguments, validate, ``flush()`` and never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, UniqueConstraint, bindparam, select, update
from sqlalchemy.orm import Mapped, mapped_column, relationship

from diversion.accounts.access import Action, require, user_id_of
from diversion.accounts.models import User
from diversion.audit.services import record
from diversion.catalogue.models import Provider
from diversion.db import Base, ProviderOwned, TenantScoped, UTCDateTime, new_id, utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.tenancy.context import for_provider, set_scope
from diversion.tenancy.models import Tenant
from diversion.unit import lasting

if TYPE_CHECKING:
    from diversion.accounts.access import Actor

FORCE_SCHEME = "dvt"
PROVIDER_SCHEME = "dvp"
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

    @property
    def person(self) -> None:
        """A token acts for a system, not a person (see ``accounts.access``)."""
        return None


class ApiToken(BearerToken, TenantScoped, Base):
    """A force system's token (force-owned)."""

    __tablename__ = "api_tokens"
    __tenant_table_args__ = (UniqueConstraint("tenant_id", "prefix"),)

    created_by: Mapped[User | None] = relationship()


class ProviderToken(ProviderOwned, BearerToken, Base):
    """A provider system's token (the provider's own row)."""

    __tablename__ = "provider_tokens"
    # (provider_id, id): what a provider's idempotency keys point at, so that
    # the database refuses a key of one provider under another's token.
    __table_args__ = (UniqueConstraint("provider_id", "prefix"), UniqueConstraint("provider_id", "id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))

    provider: Mapped[Provider] = relationship()
    created_by: Mapped[User | None] = relationship()


class TokenError(FieldError):
    """A refused change to a token."""


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


def accepts(token: ApiToken | ProviderToken | None, presented: str) -> bool:
    """Whether ``presented`` is this live token (hashes compared in constant
    time, even when there is no token); notes when it was last used, a note
    that lasts even when the call is then refused (``unit.lasting``)."""
    matches = hmac.compare_digest(token.secret_hash if token else _NO_SUCH_TOKEN, hash_token(presented))
    if token is None or not matches or token.revoked_at is not None:
        return False
    now, last = utcnow(), token.last_used_at
    # SQLite gives back times without their zone; every stored time is UTC.
    if last is None or now - (last if last.tzinfo else last.replace(tzinfo=UTC)) >= LAST_USED_RESOLUTION:
        lasting(partial(_note_used, type(token), token.id, now))
    return True


def _note_used(model: type[ApiToken | ProviderToken], token_id: uuid.UUID, now: datetime) -> None:
    db.session.execute(update(model).where(model.id == token_id).values(last_used_at=now))


def display_prefix(owner_slug: str, token: ApiToken | ProviderToken) -> str:
    """The public start of a token, as shown on the page and in the audit log."""
    scheme = FORCE_SCHEME if isinstance(token, ApiToken) else PROVIDER_SCHEME
    return f"{scheme}.{owner_slug}.{token.prefix}"


# ---------------------------------------------------------------- a force's tokens

def force_tokens() -> Sequence[ApiToken]:
    """The force in scope's tokens, newest first, revoked ones too."""
    return db.session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.prefix)).all()


def make_force_token(tenant: Tenant, *, name: str, actor: Actor) -> tuple[ApiToken, str]:
    """Make a token for one of the force's systems (the force in scope); returns the row and the token.

    Refuses a blank or over-long name, and a name already used by another
    token of the force that is not revoked.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.MANAGE_API_TOKENS, tenant_id=tenant.id)
    name = checked_name(name, TokenError)
    taken = db.session.scalar(select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None)))
    if taken is not None:
        raise TokenError("name", "A token that is in use already has this name: choose another.")
    prefix, secret = new_token(FORCE_SCHEME, tenant.slug, prefix_taken=lambda prefix: db.session.scalar(
        select(ApiToken.id).where(ApiToken.prefix == prefix)) is not None)
    token = ApiToken(tenant_id=tenant.id, name=name, prefix=prefix, secret_hash=hash_token(secret),
                     created_by_id=user_id_of(actor))
    db.session.add(token)
    db.session.flush()
    record("api_token.created", actor=actor, tenant_id=tenant.id, object_type="api_token", object_id=token.id,
           details={"name": name, "prefix": display_prefix(tenant.slug, token)})
    return token, secret


def revoke_force_token(tenant: Tenant, token: ApiToken, *, actor: Actor) -> None:
    """Stop a force's token working, at once and for good. Refuses one already revoked.
    An actor the access table does not allow is refused first (``AccessRefused``)."""
    require(actor, Action.MANAGE_API_TOKENS, tenant_id=tenant.id)
    if token.revoked_at is not None:
        raise TokenError("token", "This token was already revoked.")
    token.revoked_at = utcnow()
    db.session.flush()
    record("api_token.revoked", actor=actor, tenant_id=tenant.id, object_type="api_token", object_id=token.id,
           details={"name": token.name, "prefix": display_prefix(tenant.slug, token)})


# The id of each force by its slug, as tokens name them: a force's id never changes, so a call
# puts its force in scope before its transaction begins and reads force and token in one statement.
_FORCE_IDS: dict[str, int] = {}
_FORCE_ID = select(Tenant.id).where(Tenant.slug == bindparam("slug"))
_FORCE_AND_TOKEN = (select(Tenant, ApiToken).join(ApiToken, ApiToken.tenant_id == Tenant.id)
                    .where(Tenant.id == bindparam("tenant_id"), Tenant.slug == bindparam("slug"),
                           ApiToken.prefix == bindparam("prefix")))


def authenticate_force(presented: str) -> tuple[Tenant, ApiToken] | None:
    """The force and token a presented token belongs to, or None; on success the
    force is in scope (``set_scope``) for the rest of the request.

    Refuses (None, and no force in scope) a malformed token, a provider token,
    an unknown force or prefix, a hash that does not match (compared in
    constant time), a revoked token, and every token of a force that is not
    active (suspended, or a draft): its tokens work again once it is
    reopened. Notes when the token was last used, to the minute.
    """
    found = split_token(presented, FORCE_SCHEME)
    if found is None:
        return None
    slug, prefix = found
    for remembered in (True, False):
        tenant_id = _FORCE_IDS.get(slug) if remembered else db.session.scalar(_FORCE_ID, {"slug": slug})
        if tenant_id is None:
            continue
        # Inside the force only: its rows are all that row-level security shows.
        set_scope(tenant_id)
        row = db.session.execute(_FORCE_AND_TOKEN, {"tenant_id": tenant_id, "slug": slug, "prefix": prefix}).first()
        if row is not None:
            _FORCE_IDS[slug] = tenant_id
            tenant, token = row
            if tenant.is_active and accepts(token, presented):
                return tenant, token
            break
        _FORCE_IDS.pop(slug, None)
    else:
        accepts(None, presented)  # the same work as for a token that does not match
    set_scope(None)
    return None


# ---------------------------------------------------------------- a provider's tokens

def provider_tokens(provider: Provider) -> Sequence[ProviderToken]:
    """The provider's tokens, newest first, revoked ones too."""
    with for_provider(provider.id):
        return db.session.scalars(select(ProviderToken).where(ProviderToken.provider_id == provider.id)
                                  .order_by(ProviderToken.created_at.desc(), ProviderToken.prefix)).all()


def make_provider_token(provider: Provider, *, name: str, actor: Actor) -> tuple[ProviderToken, str]:
    """Make a token for one of the provider's systems; returns the row and the token (shown once).

    Refuses a blank or over-long name, and the name of another of the
    provider's tokens that is not revoked.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.MANAGE_PROVIDER_TOKENS, provider_id=provider.id)
    name = checked_name(name, TokenError)
    with for_provider(provider.id):
        taken = db.session.scalar(select(ProviderToken.id).where(
            ProviderToken.provider_id == provider.id, ProviderToken.name == name,
            ProviderToken.revoked_at.is_(None)))
        if taken is not None:
            raise TokenError("name", "A token that is in use already has this name: choose another.")
        prefix, secret = new_token(PROVIDER_SCHEME, provider.slug, prefix_taken=lambda prefix: db.session.scalar(
            select(ProviderToken.id).where(ProviderToken.provider_id == provider.id,
                                           ProviderToken.prefix == prefix)) is not None)
        token = ProviderToken(provider_id=provider.id, name=name, prefix=prefix, secret_hash=hash_token(secret),
                              created_by_id=user_id_of(actor))
        db.session.add(token)
        db.session.flush()
    record("provider_token.created", actor=actor, tenant_id=None, object_type="provider_token",
           object_id=token.id, details={"provider": provider.slug, "name": name,
                                        "prefix": display_prefix(provider.slug, token)})
    return token, secret


def revoke_provider_token(provider: Provider, token: ProviderToken, *, actor: Actor) -> None:
    """Stop a provider's token working, at once and for good. Refuses another
    provider's token and one already revoked.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.MANAGE_PROVIDER_TOKENS, provider_id=provider.id)
    with for_provider(provider.id):
        if token.provider_id != provider.id:
            raise TokenError("token", "This token is not one of this provider's.")
        if token.revoked_at is not None:
            raise TokenError("token", "This token was already revoked.")
        token.revoked_at = utcnow()
        db.session.flush()
    record("provider_token.revoked", actor=actor, tenant_id=None, object_type="provider_token",
           object_id=token.id, details={"provider": provider.slug, "name": token.name,
                                        "prefix": display_prefix(provider.slug, token)})


def authenticate_provider(presented: str) -> tuple[Provider, ProviderToken] | None:
    """The provider and token a presented token belongs to, or None.

    Refuses (None) a malformed token, a force token, an unknown provider or
    prefix, a hash that does not match (compared in constant time) and a
    revoked token. Notes when the token was last used, to the minute.

    The token is looked up in the named provider's scope only, so a token
    row of any other provider is out of reach whatever the token says.
    """
    found = split_token(presented, PROVIDER_SCHEME)
    provider = db.session.scalar(select(Provider).where(Provider.slug == found[0])) if found else None
    if provider is None or found is None:
        return None
    with for_provider(provider.id):
        token = db.session.scalar(select(ProviderToken).where(ProviderToken.provider_id == provider.id,
                                                              ProviderToken.prefix == found[1]))
        if token is None or not accepts(token, presented):
            return None
        db.session.flush()
    return provider, token

