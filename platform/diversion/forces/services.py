"""Force services: bringing the platform in line with the force files, a
force's lifecycle (draft, active, suspended), and a force written back out
as its file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from diversion.accounts.access import Action, require
from diversion.audit.services import record
from diversion.catalogue.files import OfferingEntry
from diversion.catalogue.models import Offering
from diversion.catalogue.services import sync_catalogue, sync_offerings
from diversion.eligibility.document import PolicyDocument, split_policy
from diversion.eligibility.models import PolicyStatus, PolicyVersion
from diversion.eligibility.services import sync_from_file
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.forces.files import ForceFile, NonCompletionCode, OutcomeCode, OutcomeCodes, read_force_files
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant

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


def force_columns(force: ForceFile) -> dict[str, Any]:
    """The force row's values from its file (the policy and the offerings have tables of their own)."""
    completed, not_completed = force.outcomes.completed, force.outcomes.not_completed
    return {
        "name": force.name,
        "scheme_name": force.scheme_name,
        "languages": force.languages,
        "brand_colour": force.brand_colour,
        "area": force.area or force.slug,
        "completed_code": completed.code,
        "completed_label": completed.label,
        "not_completed_code": not_completed.code,
        "not_completed_label": not_completed.label,
        "not_completed_action": not_completed.action,
        "settings": force.model_dump(mode="json", include={"billing"}, exclude_none=True),
    }


def _apply(tenant: Tenant, force: ForceFile) -> bool:
    values = force_columns(force)
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


class ForceError(FieldError):
    """A refused change to a force; ``field`` names the input at fault."""


def change_status(tenant: Tenant, status: ForceStatus, *, actor: Actor) -> None:
    """Move a force to ``status`` (draft, active or suspended), recorded in the audit log.

    Refuses an actor who may not change a force's status (``AccessRefused``),
    a move to the status the force already has, and a move back to draft once
    the force has been active (suspend it instead).
    """
    require(actor, Action.CHANGE_FORCE_STATUS)
    if tenant.status is status:
        raise ForceError("status", f"{tenant.name} is already {status.value}.")
    if status is ForceStatus.DRAFT:
        raise ForceError("status", f"{tenant.name} has been opened; suspend it instead of making it a draft again.")
    before = tenant.status
    tenant.status = status
    db.session.flush()
    record("tenant.status_changed", actor=actor, object_type="tenant", object_id=tenant.id,
           details={"from": before.value, "to": status.value})


def force_file_of(tenant: Tenant) -> ForceFile:
    """The force as its file would say it today: its columns, the newest
    published policy (with the day it took effect) and its offerings that
    are not withdrawn. Reads the force's own rows: ``tenant`` must be in scope."""
    newest = db.session.scalar(
        select(PolicyVersion).where(PolicyVersion.status == PolicyStatus.PUBLISHED)
        .order_by(PolicyVersion.number.desc()).limit(1))
    policy = None if newest is None else {
        "effective_from": newest.effective_from,
        **PolicyDocument.model_validate(newest.document).model_dump(mode="python", by_alias=True, exclude_none=True),
    }
    offerings = [
        OfferingEntry(course=o.course.slug, pathway=o.pathway, venues=o.venues.splitlines(),
                      booking_contact=o.booking_contact, notes=o.notes)
        for o in db.session.scalars(select(Offering).where(Offering.withdrawn_at.is_(None))
                                    .order_by(Offering.created_at, Offering.pathway))
    ]
    return ForceFile(
        slug=tenant.slug, name=tenant.name, scheme_name=tenant.scheme_name, languages=list(tenant.languages),
        brand_colour=tenant.brand_colour,
        area=None if tenant.area == tenant.slug else tenant.area,
        outcomes=OutcomeCodes(
            completed=OutcomeCode(code=tenant.completed_code, label=tenant.completed_label),
            not_completed=NonCompletionCode(code=tenant.not_completed_code, label=tenant.not_completed_label,
                                            action=tenant.not_completed_action)),
        policy=policy, offerings=offerings, billing=tenant.settings.get("billing"),
    )
