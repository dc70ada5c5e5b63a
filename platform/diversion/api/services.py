"""API tokens: made and revoked by a force admin, checked on every API call.

A token reads ``dvt.<force slug>.<prefix>.<secret>``. The force slug says
which force's rows to look in (row-level security lets nothing be read
before the force is known), the prefix finds the row, and the SHA-256 hash
of the whole token must match the stored one. The token itself is never
stored: it is returned once, by ``create_token``.

Services take explicit arguments, validate, ``flush()`` and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from diversion.accounts.models import User
from diversion.api.bearer import accepts, checked_name, hash_token, new_token, split_token
from diversion.api.models import ApiToken
from diversion.audit.services import record
from diversion.db import utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant

SCHEME = "dvt"


class ApiTokenError(FieldError):
    """A refused token change."""


def display_prefix(tenant: Tenant, token: ApiToken) -> str:
    """The public start of a token, as shown on the page and in the audit log."""
    return f"{SCHEME}.{tenant.slug}.{token.prefix}"


def tokens() -> Sequence[ApiToken]:
    """The force in scope's tokens, newest first, revoked ones too."""
    return db.session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.prefix)).all()


def create_token(tenant: Tenant, *, name: str, actor: User | None) -> tuple[ApiToken, str]:
    """Make a token for one of the force's systems; returns the row and the token.

    The token is in the return value only: afterwards nobody, the platform
    included, can show it again. Refuses a blank or over-long name, and a
    name already used by another token of the force that is not revoked.
    """
    name = checked_name(name, ApiTokenError)
    taken = db.session.scalar(select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None)))
    if taken is not None:
        raise ApiTokenError("name", "A token that is in use already has this name: choose another.")
    prefix, secret = new_token(SCHEME, tenant.slug, prefix_taken=lambda prefix: db.session.scalar(
        select(ApiToken.id).where(ApiToken.prefix == prefix)) is not None)
    token = ApiToken(tenant_id=tenant.id, name=name, prefix=prefix, secret_hash=hash_token(secret),
                     created_by_id=actor.id if actor else None)
    db.session.add(token)
    db.session.flush()
    record("api_token.created", actor=actor, tenant_id=tenant.id, object_type="api_token", object_id=token.id,
           details={"name": name, "prefix": display_prefix(tenant, token)})
    return token, secret


def revoke_token(tenant: Tenant, token: ApiToken, *, actor: User | None) -> None:
    """Stop a token working, at once and for good. Refuses one already revoked."""
    if token.revoked_at is not None:
        raise ApiTokenError("token", "This token was already revoked.")
    token.revoked_at = utcnow()
    db.session.flush()
    record("api_token.revoked", actor=actor, tenant_id=tenant.id, object_type="api_token", object_id=token.id,
           details={"name": token.name, "prefix": display_prefix(tenant, token)})


def authenticate(presented: str) -> tuple[Tenant, ApiToken] | None:
    """The force and token a presented token belongs to, or None.

    Refuses (None) a malformed token, an unknown force or prefix, a hash that
    does not match (compared in constant time) and a revoked token. Notes
    when the token was last used, to the minute.
    """
    found = split_token(presented, SCHEME)
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == found[0])) if found else None
    if found is None or tenant is None:
        return None
    # Inside the force only: its rows are all that row-level security shows.
    with scoped(tenant.id):
        token = db.session.scalar(select(ApiToken).where(ApiToken.prefix == found[1]))
        if token is None or not accepts(token, presented):
            return None
        db.session.flush()
    return tenant, token
