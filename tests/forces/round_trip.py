"""A force's configuration as the platform holds it, and a force file synced
back onto an empty database: what the round-trip tests compare."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from diversion.accounts import sso
from diversion.accounts.access import SYSTEM
from diversion.catalogue.models import Offering
from diversion.eligibility.models import PolicyStatus, PolicyVersion
from diversion.extensions import db
from diversion.forces.services import SyncReport, sync_tenants
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import TENANTS_DIR, empty_database
from tests.databases import TestDatabase

COLUMNS_NOT_COMPARED = {"id", "created_at", "updated_at"}


def tenant_of(slug: str) -> Tenant:
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    assert tenant is not None
    return tenant


def force_as_stored(slug: str) -> dict[str, Any]:
    """Everything the platform holds of a force's configuration: its row, its
    newest published policy, its offerings (not withdrawn) and its sign-on."""
    tenant = tenant_of(slug)
    row = {c.key: getattr(tenant, c.key) for c in Tenant.__mapper__.column_attrs if c.key not in COLUMNS_NOT_COMPARED}
    with scoped(tenant.id):
        policy = db.session.scalar(select(PolicyVersion).where(PolicyVersion.status == PolicyStatus.PUBLISHED)
                                   .order_by(PolicyVersion.number.desc()).limit(1))
        assert policy is not None
        offerings = sorted(
            (o.course.slug, o.pathway, o.venues, o.booking_contact, o.notes)
            for o in db.session.scalars(select(Offering).where(Offering.withdrawn_at.is_(None))))
        sign_on = sso.sign_on_of(tenant)
        return {"row": row, "policy": (policy.document, policy.content_hash, policy.effective_from),
                "offerings": offerings,
                "sign_on": sign_on and (sign_on.issuer, sign_on.client_id, sign_on.compulsory, sign_on.new_people)}


def sync_onto_empty_database(app: Flask, database: TestDatabase, folder: Path, slug: str, text: str) -> SyncReport:
    """Empty the database, then sync the force file ``text`` (with the shared catalogue) as the command does."""
    empty_database(database)
    folder.mkdir()
    shutil.copy(TENANTS_DIR / "catalogue.toml", folder / "catalogue.toml")
    (folder / f"{slug}.toml").write_text(text, encoding="utf-8")
    with app.app_context():
        report = sync_tenants(folder, actor=SYSTEM)
        db.session.commit()
    return report
