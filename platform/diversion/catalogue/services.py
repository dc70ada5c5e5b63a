"""Catalogue services: bring providers, courses and offerings in line with the files."""

from __future__ import annotations

from sqlalchemy import select

from diversion.accounts.models import User
from diversion.audit.services import record
from diversion.catalogue.files import CatalogueFile
from diversion.catalogue.models import Course, Offering, Provider
from diversion.extensions import db
from diversion.tenancy.files import OfferingEntry
from diversion.tenancy.models import Tenant


def sync_catalogue(catalogue: CatalogueFile, *, actor: User | None) -> int:
    """Create or update providers and courses; returns how many rows changed. Never deletes."""
    changed = 0
    providers = {p.slug: p for p in db.session.scalars(select(Provider))}
    for entry in catalogue.providers:
        provider = providers.get(entry.slug)
        if provider is None:
            provider = providers[entry.slug] = Provider(slug=entry.slug, name=entry.name)
            db.session.add(provider)
            changed += 1
        elif provider.name != entry.name:
            provider.name = entry.name
            changed += 1
    db.session.flush()
    courses = {c.slug: c for c in db.session.scalars(select(Course))}
    for item in catalogue.courses:
        values = {"provider_id": providers[item.provider].id, "title": item.title, "sessions": item.sessions,
                  "description": item.description}
        course = courses.get(item.slug)
        if course is None:
            db.session.add(Course(slug=item.slug, **values))
            changed += 1
        elif any(getattr(course, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(course, key, value)
            changed += 1
    db.session.flush()
    if changed:
        record("catalogue.synced", actor=actor, tenant_id=None, details={"changed": changed})
    return changed


def sync_offerings(tenant: Tenant, entries: list[OfferingEntry], *, actor: User | None) -> int:
    """Add the force file's offerings that the force in scope lacks; returns how many."""
    courses = {c.slug: c.id for c in db.session.scalars(select(Course))}
    existing = {(o.course_id, o.pathway): o for o in db.session.scalars(select(Offering))}
    added = 0
    for entry in entries:
        key = (courses[entry.course], entry.pathway)
        offering = existing.get(key)
        if offering is None:
            db.session.add(Offering(tenant_id=tenant.id, course_id=key[0], pathway=entry.pathway, notes=entry.notes))
            added += 1
        elif offering.notes != entry.notes:
            offering.notes = entry.notes
    db.session.flush()
    if added:
        record("offerings.synced", actor=actor, tenant_id=tenant.id, details={"added": added})
    return added
