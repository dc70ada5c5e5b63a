"""Force services: bringing the platform in line with the force files, a
force's lifecycle (draft, active, suspended), and a force written back out
as its file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from diversion.accounts.access import Action, require
from diversion.accounts.models import ForceMembership, PlatformGrant, Role, User
from diversion.accounts.sso import ForceSignOn, check_issuer, configure_sign_on, sign_on_of
from diversion.audit.services import record
from diversion.cases import rules
from diversion.catalogue.files import OfferingEntry
from diversion.catalogue.models import Offering
from diversion.catalogue.services import sync_catalogue, sync_offerings
from diversion.eligibility.compiler import welsh_missing
from diversion.eligibility.document import PolicyDocument, split_policy
from diversion.eligibility.models import PolicyStatus, PolicyVersion
from diversion.eligibility.services import compiled, published_policy_of, sync_from_file
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.forces.files import (
    ForceFile,
    NonCompletionCode,
    OutcomeCode,
    OutcomeCodes,
    SignOnEntry,
    dump_force_file,
    read_force_files,
)
from diversion.sealing import seal_text
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.words import LANGUAGES, WELSH

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
    # Forces whose single sign-on was made from their file: its client secret
    # (never in a file) is still to be entered at the force's sign-on settings.
    sign_on_without_secret: list[str] = field(default_factory=list)


def force_columns(force: ForceFile) -> dict[str, Any]:
    """The force row's values from its file (the policy and the offerings have tables of their own)."""
    completed, not_completed = force.outcomes.completed, force.outcomes.not_completed
    return {
        "name": force.name,
        "name_cy": force.name_cy,
        "scheme_name": force.scheme_name,
        "languages": force.languages,
        "brand_colour": force.brand_colour,
        "area": force.area or force.slug,
        "completed_code": completed.code,
        "completed_label": completed.label,
        "completed_label_cy": completed.label_cy,
        "not_completed_code": not_completed.code,
        "not_completed_label": not_completed.label,
        "not_completed_label_cy": not_completed.label_cy,
        "not_completed_action": not_completed.action,
        "retention_months": force.retention_months,
        "settings": force.model_dump(mode="json", include={"billing"}, exclude_none=True),
    }


# A force's assumptions for the police time a referral saves, shown beside its figures in the national
# comparison (``insights``): tenths of an hour per referral, and pence per hour. Until the force sets
# them, these defaults: a charge file and the custody time around it, and an hour of a constable's
# time with its on-costs.
HOURS_SAVED_SETTING = "police_hours_saved_per_referral"
COST_PER_HOUR_SETTING = "police_cost_per_hour_pence"
DEFAULT_HOURS_SAVED = 60
DEFAULT_COST_PER_HOUR = 3_800
HOURS_SAVED_BOUNDS = (0, 1_000)  # tenths: up to 100 hours
COST_PER_HOUR_BOUNDS = (0, 100_000)  # pence: up to £1,000

# Settings a force changes on its pages, not in its file: a sync keeps them.
PAGE_SETTINGS = (rules.MISSED_SESSIONS_SETTING, HOURS_SAVED_SETTING, COST_PER_HOUR_SETTING)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _setting(tenant: Tenant, name: str, default: int) -> int:
    value = (tenant.settings or {}).get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def police_time(tenant: Tenant) -> tuple[int, int]:
    """The force's (tenths of an hour saved per referral, pence per hour): its own, or the defaults."""
    return (_setting(tenant, HOURS_SAVED_SETTING, DEFAULT_HOURS_SAVED),
            _setting(tenant, COST_PER_HOUR_SETTING, DEFAULT_COST_PER_HOUR))


def change_police_time(tenant: Tenant, *, hours_saved: int, cost_per_hour: int,
                       actor: Actor) -> dict[str, tuple[Any, Any]]:
    """Change the force's assumptions for police time saved (tenths of an hour per referral,
    pence per hour), each change recorded with its value before and after; returns them.

    Refuses an actor who may not change this force's settings (``AccessRefused``), and
    hours or a cost outside their bounds (``ForceError`` naming the field).
    """
    require(actor, Action.CHANGE_FORCE_SETTINGS, tenant_id=tenant.id)
    for field_name, value, (low, high), scale, said in (
            ("hours", hours_saved, HOURS_SAVED_BOUNDS, 10, _l("Enter hours from %(low)s to %(high)s")),
            ("cost", cost_per_hour, COST_PER_HOUR_BOUNDS, 100, _l("Enter pounds from %(low)s to %(high)s"))):
        if not _whole(value) or not low <= value <= high:
            raise ForceError(field_name, said % {"low": f"{low // scale:,}", "high": f"{high // scale:,}"})
    now = dict(zip((HOURS_SAVED_SETTING, COST_PER_HOUR_SETTING), police_time(tenant), strict=True))
    wanted = {HOURS_SAVED_SETTING: hours_saved, COST_PER_HOUR_SETTING: cost_per_hour}
    changes = {name: (now[name], value) for name, value in wanted.items() if now[name] != value}
    if changes:
        tenant.settings = {**(tenant.settings or {}), **{name: pair[1] for name, pair in changes.items()}}
        db.session.flush()
        record("tenant.settings_changed", actor=actor, tenant_id=tenant.id, object_type="tenant",
               object_id=tenant.id, details={"before": {name: pair[0] for name, pair in changes.items()},
                                             "after": {name: pair[1] for name, pair in changes.items()}})
    return changes


def _apply(tenant: Tenant, force: ForceFile) -> bool:
    values = force_columns(force)
    kept = {name: (tenant.settings or {})[name] for name in PAGE_SETTINGS if name in (tenant.settings or {})}
    values["settings"] = {**values["settings"], **kept}
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
            if force.sign_on is not None and _sync_sign_on(tenant, force.sign_on, actor=actor):
                report.sign_on_without_secret.append(force.slug)
    report.without_file = sorted(existing)
    return report


def _sync_sign_on(tenant: Tenant, entry: SignOnEntry, *, actor: Actor) -> bool:
    """Bring the force's sign-on (in scope) in line with its file's ``[sign_on]``,
    keeping the sealed client secret; True when the sign-on is made anew and so
    has no secret yet. Refuses what ``accounts.sso.check_issuer`` refuses."""
    sign_on = sign_on_of(tenant)
    if sign_on is None:
        issuer = check_issuer(entry.issuer)
        sign_on = ForceSignOn(tenant_id=tenant.id, issuer=issuer, client_id=entry.client_id,
                              client_secret_sealed=seal_text(""), compulsory=entry.compulsory,
                              new_people=entry.new_people)
        db.session.add(sign_on)
        db.session.flush()
        record("sign_on.configured", actor=actor, tenant_id=tenant.id, object_type="sign_on", object_id=sign_on.id,
               details={"issuer": issuer, "client_id": entry.client_id, "compulsory": entry.compulsory,
                        "new_people": entry.new_people, "created": True, "new_secret": False})
        return True
    if (sign_on.issuer, sign_on.client_id, sign_on.compulsory, sign_on.new_people) != (
            entry.issuer, entry.client_id, entry.compulsory, entry.new_people):
        configure_sign_on(tenant, issuer=entry.issuer, client_id=entry.client_id, client_secret=None,
                          compulsory=entry.compulsory, new_people=entry.new_people, actor=actor)
    return False


class ForceError(FieldError):
    """A refused change to a force; ``field`` names the input at fault."""


def change_status(tenant: Tenant, status: ForceStatus, *, actor: Actor) -> None:
    """Move a force to ``status`` (draft, active or suspended), recorded in the audit log.

    Suspending ends the sessions of the force's members (they sign in again
    for their other forces; the platform admins among them, who still see a
    closed force, keep theirs), and while suspended the force's pages refuse
    its members (``tenancy.web``) and its API tokens are refused
    (``jsonapi.tokens.authenticate_force``). Nothing is deleted: reactivating
    opens everything again as it was.

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
    ended = _end_members_sessions(tenant) if status is ForceStatus.SUSPENDED else 0
    db.session.flush()
    details: dict[str, Any] = {"from": before.value, "to": status.value}
    if status is ForceStatus.SUSPENDED:
        details["sessions_ended"] = ended
    with scoped(tenant.id):  # filed under the force: its admins see it in their audit
        record("tenant.status_changed", actor=actor, object_type="tenant", object_id=tenant.id, details=details)


def _end_members_sessions(tenant: Tenant) -> int:
    """Bump the session version of every member of ``tenant`` who is not a
    platform admin; returns how many people that signs out."""
    with scoped(tenant.id):
        member_ids = set(db.session.scalars(select(ForceMembership.user_id)))
    admins = set(db.session.scalars(select(PlatformGrant.user_id).where(PlatformGrant.role == Role.PLATFORM_ADMIN)))
    people = sorted(member_ids - admins)
    if people:
        db.session.execute(update(User).where(User.id.in_(people))
                           .values(session_version=User.session_version + 1)
                           .execution_options(synchronize_session="fetch"))
    return len(people)


def change_settings(tenant: Tenant, *, retention_months: int | None, brand_colour: str, languages: list[str],
                    actor: Actor, missed_sessions_allowed: int | None = None) -> dict[str, tuple[Any, Any]]:
    """Change a force's own settings: how long it keeps its records (months,
    1 to 1200, or None for not set), its brand colour, its languages, and
    how many sessions a person may miss before a referral ends as not
    completed (kept in ``Tenant.settings``; None leaves it as it is).
    Records each change with its value before and after; returns them
    (nothing changed: nothing recorded, an empty answer).

    Refuses an actor who may not change this force's settings
    (``AccessRefused``), a retention outside 1 to 1200 months, a colour not
    written like #1d70b8, missed sessions allowed other than a whole number
    from 0 to 10, no language or one the platform does not speak, and Welsh
    for a force whose outcome labels or policy in force have no Welsh
    (its Welsh pages would be in English) (``ForceError`` naming the field).
    """
    require(actor, Action.CHANGE_FORCE_SETTINGS, tenant_id=tenant.id)
    low, high = Tenant.RETENTION_BOUNDS
    if retention_months is not None and not low <= retention_months <= high:
        raise ForceError("retention_months", _("Enter a number of months from %(low)s to %(high)s", low=low,
                                               high=high))
    colour = brand_colour.strip().lower()
    if not re.fullmatch(r"#[0-9a-f]{6}", colour):
        raise ForceError("brand_colour", _("Enter the colour as a # and six hexadecimal digits, like #1d70b8."))
    if not languages:
        raise ForceError("languages", _("Choose at least one language."))
    unknown = [code for code in languages if code not in LANGUAGES]
    if unknown:
        raise ForceError("languages", _("Choose from the languages offered, not %(codes)s.", codes=", ".join(unknown)))
    if WELSH in languages and WELSH not in tenant.languages and (wanting := _welsh_wanting(tenant)):
        raise ForceError("languages", _("%(force)s cannot work in Welsh yet: %(wanting)s have no Welsh. Give "
                                        "them their Welsh, then choose Welsh here.", force=tenant.name,
                                        wanting=_(" and ").join(wanting)))
    if missed_sessions_allowed is not None and (
            broken := rules.missed_sessions_broken(missed_sessions_allowed)) is not None:
        raise ForceError(broken.field, broken.sentence)
    wanted = {"retention_months": retention_months, "brand_colour": colour,
              "languages": [code for code in LANGUAGES if code in languages]}
    changes = {name: (getattr(tenant, name), value) for name, value in wanted.items() if getattr(tenant, name) != value}
    missed_now = rules.missed_sessions_allowed(tenant)
    if missed_sessions_allowed is not None and missed_sessions_allowed != missed_now:
        changes[rules.MISSED_SESSIONS_SETTING] = (missed_now, missed_sessions_allowed)
    if not changes:
        return {}
    for name, (_before, value) in changes.items():
        if name == rules.MISSED_SESSIONS_SETTING:
            tenant.settings = {**(tenant.settings or {}), name: value}
        else:
            setattr(tenant, name, value)
    db.session.flush()
    record("tenant.settings_changed", actor=actor, tenant_id=tenant.id, object_type="tenant", object_id=tenant.id,
           details={"before": {name: pair[0] for name, pair in changes.items()},
                    "after": {name: pair[1] for name, pair in changes.items()}})
    return changes


def _welsh_wanting(tenant: Tenant) -> list[str]:
    """What a force would show in English on its Welsh pages: its outcome labels, and its policy in
    force today (its summary, pathway names and reasons), where either has no Welsh."""
    wanting = []
    if not (tenant.completed_label_cy and tenant.not_completed_label_cy):
        wanting.append(str(_("its outcome labels")))
    version = published_policy_of(tenant, datetime.now(UTC).date())
    if version is not None and welsh_missing(compiled(version).document):
        wanting.append(str(_("its policy in force (its summary, pathway names and reasons)")))
    return wanting


def export_force(tenant: Tenant, *, actor: Actor) -> str:
    """The force's file (``tenants/<slug>.toml``) as text, its export recorded.

    Reads the force's own rows, so ``tenant`` must be in scope. Refuses an
    actor who may not export this force (``AccessRefused``).
    """
    require(actor, Action.EXPORT_FORCE, tenant_id=tenant.id)
    text = dump_force_file(force_file_of(tenant))
    record("tenant.exported", actor=actor, tenant_id=tenant.id, object_type="tenant", object_id=tenant.id)
    return text


def force_file_of(tenant: Tenant) -> ForceFile:
    """The force as its file would say it today: its columns (retention
    included), the newest published policy (with the day it took effect), its
    offerings that are not withdrawn and its single sign-on without the client
    secret. Reads the force's own rows: ``tenant`` must be in scope."""
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
    sign_on = sign_on_of(tenant)
    return ForceFile(
        sign_on=None if sign_on is None else SignOnEntry(
            issuer=sign_on.issuer, client_id=sign_on.client_id, compulsory=sign_on.compulsory,
            new_people=sign_on.new_people),
        slug=tenant.slug, name=tenant.name, name_cy=tenant.name_cy, scheme_name=tenant.scheme_name,
        languages=list(tenant.languages),
        brand_colour=tenant.brand_colour, retention_months=tenant.retention_months,
        area=None if tenant.area == tenant.slug else tenant.area,
        outcomes=OutcomeCodes(
            completed=OutcomeCode(code=tenant.completed_code, label=tenant.completed_label,
                                  label_cy=tenant.completed_label_cy),
            not_completed=NonCompletionCode(code=tenant.not_completed_code, label=tenant.not_completed_label,
                                            label_cy=tenant.not_completed_label_cy,
                                            action=tenant.not_completed_action)),
        policy=policy, offerings=offerings, billing=tenant.settings.get("billing"),
    )
