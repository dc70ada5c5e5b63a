"""Force services: bringing the platform in line with the force files."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from diversion.accounts.access import Action, require
from diversion.audit.services import record
from diversion.catalogue.services import sync_catalogue, sync_offerings
from diversion.eligibility.services import sync_from_file
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.files import ForceFile, read_force_files, split_policy
from diversion.tenancy.models import Tenant

if TYPE_CHECKING:
    from diversion.accounts.access import Actor


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    policies_published: list[str] = field(default_factory=list)
    catalogue_changes: int = 0
    catalogue_kept: int = 0  # providers and courses changed in the console, left as they are
    offerings_added: int = 0
    # Forces in the database with no file: left as they are, never deleted here.
    without_file: list[str] = field(default_factory=list)


def _apply(tenant: Tenant, force: ForceFile) -> bool:
    values = {
        "name": force.name,
        "scheme_name": force.scheme_name,
        "languages": force.languages,
        "brand_colour": force.brand_colour,
        "settings": force.settings(),
    }
    changed = False
    for attribute, value in values.items():
        if getattr(tenant, attribute) != value:
            setattr(tenant, attribute, value)
            changed = True
    return changed


def sync_tenants(folder: Path, *, actor: Actor) -> SyncReport:
    """Create or update every force from its file; idempotent.

    Refuses an actor other than the platform itself (``AccessRefused``), and
    (``ForceFilesInvalid``, listing every problem) before changing anything
    if any file is invalid. Never deletes a force.
    """
    require(actor, Action.SYNC_FORCES)
    report = SyncReport()
    catalogue, forces = read_force_files(folder)
    synced = sync_catalogue(catalogue, actor=actor)
    report.catalogue_changes, report.catalogue_kept = synced.changed, synced.kept
    existing = {tenant.slug: tenant for tenant in db.session.scalars(select(Tenant))}
    for force in forces:
        tenant = existing.pop(force.slug, None)
        if tenant is None:
            tenant = Tenant(slug=force.slug)
            _apply(tenant, force)
            db.session.add(tenant)
            db.session.flush()
            report.created.append(force.slug)
            record("tenant.created", actor=actor, object_type="tenant", object_id=tenant.id)
        elif _apply(tenant, force):
            db.session.flush()
            report.updated.append(force.slug)
            record("tenant.updated", actor=actor, object_type="tenant", object_id=tenant.id)
        else:
            report.unchanged.append(force.slug)
        if force.policy is not None:
            effective_from, document = split_policy(force.policy)
            with scoped(tenant.id):
                published = sync_from_file(tenant, document, effective_from=effective_from or date.min,
                                           today=datetime.now(UTC).date(), actor=actor)
            if published is not None:
                report.policies_published.append(f"{force.slug} v{published.number}")
        with scoped(tenant.id):
            report.offerings_added += sync_offerings(tenant, force.offerings, actor=actor)
    report.without_file = sorted(existing)
    return report
