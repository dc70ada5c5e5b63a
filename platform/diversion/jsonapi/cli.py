"""``diversion api forget-keys``: remove the Idempotency-Key records whose 24 hours are over."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext


@click.group("api")
def api_group() -> None:
    """The JSON API's housekeeping."""


@api_group.command("forget-keys")
@with_appcontext
def forget_keys() -> None:
    """Remove the requests kept under an Idempotency-Key for over 24 hours, in every force and provider.

    Each token also removes a few of its own as it takes new keys; this
    clears the rest, e.g. once a day.
    """
    from sqlalchemy import select

    from diversion.catalogue.models import Provider
    from diversion.db import utcnow
    from diversion.extensions import db
    from diversion.jsonapi.idempotency import IdempotencyKey, ProviderIdempotencyKey, forget_expired
    from diversion.tenancy.context import provider_scoped, scoped
    from diversion.tenancy.models import Tenant

    now = utcnow()
    removed = 0
    # Each owner's rows in its own scope: row-level security shows no other.
    for tenant_id in db.session.scalars(select(Tenant.id).order_by(Tenant.id)).all():
        with scoped(tenant_id):
            removed += forget_expired(IdempotencyKey, now=now)
    for provider_id in db.session.scalars(select(Provider.id).order_by(Provider.id)).all():
        with provider_scoped(provider_id):
            removed += forget_expired(ProviderIdempotencyKey, now=now, provider_id=provider_id)
    db.session.commit()
    click.echo(f"{removed} expired idempotency keys removed.")


def register(app: Flask) -> None:
    app.cli.add_command(api_group)
