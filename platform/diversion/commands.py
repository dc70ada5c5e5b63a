"""What every command that works on forces shares: a force by its slug, or all of them; today."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import click
from sqlalchemy import select

from diversion.extensions import db
from diversion.tenancy.models import Tenant


def today() -> date:
    return datetime.now(UTC).date()


def force(slug: str) -> Tenant:
    """The force with this slug; refuses (naming the known ones) an unknown slug."""
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        known = ", ".join(db.session.scalars(select(Tenant.slug).order_by(Tenant.slug)))
        raise click.BadParameter(f"no force {slug!r}; known forces: {known}", param_hint="--tenant")
    return tenant


def forces(slug: str | None) -> Sequence[Tenant]:
    """One force when a slug is given, otherwise every force."""
    return [force(slug)] if slug else db.session.scalars(select(Tenant).order_by(Tenant.slug)).all()
