"""Catalogue services: providers and courses (platform admins), offerings (force admins),
and bringing both in line with the files.

Files and console live together by one rule: ``diversion tenants sync``
creates what is missing and updates rows from the file, except rows changed
in the console (``edited_in_console``), which it leaves alone and counts as
kept. A sync never deletes, never retires a course and never withdraws or
reopens an offering.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from flask_babel import gettext as _
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from diversion.accounts.access import Action, require
from diversion.audit.services import record
from diversion.catalogue.files import CatalogueFile, CourseEntry, OfferingEntry, ProviderEntry, misfit
from diversion.catalogue.models import Course, Offering, Provider
from diversion.catalogue.vocabulary import PathwayKind
from diversion.db import utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.tenancy.models import Tenant

if TYPE_CHECKING:
    from diversion.accounts.access import Actor

COURSE_FIELDS = ("provider", "title", "kinds", "format", "sessions", "session_minutes", "delivery", "min_age",
                 "max_age", "languages", "areas", "description", "title_cy", "description_cy")
PROVIDER_FIELDS = ("name", "website", "contact_email")


M = TypeVar("M", bound=BaseModel)
Edited = TypeVar("Edited", Provider, Course)  # a row of the shared catalogue


class CatalogueError(FieldError):
    """A refused change to providers, courses or offerings."""


@dataclass
class CatalogueSync:
    changed: int = 0
    kept: int = 0  # rows changed in the console, left as they are


def _validated(model: type[M], data: dict[str, Any]) -> M:
    """``data`` checked by the same schema as the file; the first problem, by field, if not."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        item = error.errors()[0]
        field = str(item["loc"][0]) if item["loc"] else "(form)"
        raise CatalogueError(field, item["msg"].removeprefix("Value error, ")) from None


# ---------------------------------------------------------------- the file

def _course_values(entry: CourseEntry, provider_id: int) -> dict[str, Any]:
    values = entry.model_dump(mode="json", include=set(COURSE_FIELDS) - {"provider"})
    return {**values, "provider_id": provider_id}


def _bring_in_line(row: Provider | Course, values: dict[str, Any]) -> bool:
    if not any(getattr(row, k) != v for k, v in values.items()):
        return False
    for key, value in values.items():
        setattr(row, key, value)
    return True


def _synced(report: CatalogueSync, model: type[Edited], row: Edited | None, slug: str,
            values: dict[str, Any]) -> Edited:
    """The row with ``slug`` in line with its file entry: added when missing, kept
    as it is when changed in the console (counted in ``report``)."""
    if row is None:
        row = model(slug=slug, **values)
        db.session.add(row)
        report.changed += 1
    elif row.edited_in_console:
        report.kept += 1
    elif _bring_in_line(row, values):
        report.changed += 1
    return row


def sync_catalogue(catalogue: CatalogueFile, *, actor: Actor) -> CatalogueSync:
    """Create or update providers and courses from the file (by slug).

    Rows changed in the console are kept as they are. Never deletes.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.EDIT_CATALOGUE)
    report = CatalogueSync()
    providers = {p.slug: p for p in db.session.scalars(select(Provider))}
    for entry in catalogue.providers:
        providers[entry.slug] = _synced(report, Provider, providers.get(entry.slug), entry.slug,
                                        entry.model_dump(include=set(PROVIDER_FIELDS)))
    db.session.flush()
    courses = {c.slug: c for c in db.session.scalars(select(Course))}
    for item in catalogue.courses:
        _synced(report, Course, courses.get(item.slug), item.slug, _course_values(item, providers[item.provider].id))
    db.session.flush()
    if report.changed:
        record("catalogue.synced", actor=actor, tenant_id=None,
               details={"changed": report.changed, "kept": report.kept})
    return report


def _offering_details(entry: OfferingEntry) -> dict[str, str]:
    return {"venues": "\n".join(entry.venues), "booking_contact": entry.booking_contact, "notes": entry.notes}


def sync_offerings(tenant: Tenant, entries: list[OfferingEntry], *, actor: Actor) -> int:
    """Add the force file's offerings that the force in scope lacks and bring the
    local details of the others in line, unless changed in the console; returns
    how many were added. Never withdraws or reopens one.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.MANAGE_OFFERINGS, tenant_id=tenant.id)
    courses = {c.slug: c.id for c in db.session.scalars(select(Course))}
    existing = {(o.course_id, o.pathway): o for o in db.session.scalars(select(Offering))}
    added = 0
    for entry in entries:
        key = (courses[entry.course], entry.pathway)
        offering = existing.get(key)
        details = _offering_details(entry)
        if offering is None:
            db.session.add(Offering(tenant_id=tenant.id, course_id=key[0], pathway=entry.pathway, **details))
            added += 1
        elif not offering.edited_in_console:
            for name, value in details.items():
                setattr(offering, name, value)
    db.session.flush()
    if added:
        record("offerings.synced", actor=actor, tenant_id=tenant.id, details={"added": added})
    return added


# ---------------------------------------------------------------- providers

def providers() -> Sequence[Provider]:
    return db.session.scalars(select(Provider).order_by(Provider.name)).all()


def courses() -> Sequence[Course]:
    return db.session.scalars(select(Course).order_by(Course.title)).all()


def _provider_values(data: dict[str, Any]) -> dict[str, Any]:
    return _validated(ProviderEntry, data).model_dump(include=set(PROVIDER_FIELDS))


def _address_free(model: type[Provider] | type[Course], slug: str, which: str) -> None:
    """Refuse (on ``slug``) an address a row of ``model`` already has; ``which`` says so, the address
    its ``%(slug)r``."""
    if db.session.scalar(select(model).where(model.slug == slug)) is not None:
        raise CatalogueError("slug", which % {"slug": slug})


def _added_in_console(row: Edited, *, actor: Actor, kind: str) -> Edited:
    """Add a provider or course written in the console, and record ``<kind>.created``."""
    db.session.add(row)
    db.session.flush()
    record(f"{kind}.created", actor=actor, tenant_id=None, object_type=kind, object_id=row.id,
           details={"slug": row.slug})
    return row


def _changed(row: Provider | Course | Offering, values: dict[str, Any], *, actor: Actor, kind: str,
             tenant_id: int | None = None) -> list[str]:
    """Set on ``row`` the ``values`` that differ, marking it edited in the console (its file
    no longer updates it), and record ``<kind>.updated`` naming them; returns their names."""
    changed = [k for k, v in values.items() if getattr(row, k) != v]
    for key in changed:
        setattr(row, key, values[key])
    if changed:
        row.edited_in_console = True
        db.session.flush()
        record(f"{kind}.updated", actor=actor, tenant_id=tenant_id, object_type=kind, object_id=row.id,
               details={"fields": changed})
    return changed


def create_provider(data: dict[str, Any], *, actor: Actor) -> Provider:
    """Add a provider. Refuses a bad field (named) and an address already in use.
    An actor the access table does not allow is refused first (``AccessRefused``)."""
    require(actor, Action.EDIT_CATALOGUE)
    entry = _validated(ProviderEntry, data)
    _address_free(Provider, entry.slug, _("A provider already has the address %(slug)r."))
    return _added_in_console(Provider(slug=entry.slug, edited_in_console=True,
                                      **entry.model_dump(include=set(PROVIDER_FIELDS))), actor=actor, kind="provider")


def update_provider(provider: Provider, data: dict[str, Any], *, actor: Actor) -> list[str]:
    """Change a provider's name and contacts (not its address); returns the fields
    changed. Refuses a bad field, naming it. The file no longer updates it.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.EDIT_CATALOGUE)
    return _changed(provider, _provider_values({**data, "slug": provider.slug}), actor=actor, kind="provider")


# ---------------------------------------------------------------- courses

def _course_entry(data: dict[str, Any]) -> tuple[CourseEntry, Provider]:
    entry = _validated(CourseEntry, data)
    provider = db.session.scalar(select(Provider).where(Provider.slug == entry.provider))
    if provider is None:
        raise CatalogueError("provider", _("Choose a provider on the platform."))
    return entry, provider


def create_course(data: dict[str, Any], *, actor: Actor) -> Course:
    """Add a course. Refuses a bad field (named), an unknown provider and an address in use.
    An actor the access table does not allow is refused first (``AccessRefused``)."""
    require(actor, Action.EDIT_CATALOGUE)
    entry, provider = _course_entry(data)
    _address_free(Course, entry.slug, _("A course already has the address %(slug)r."))
    return _added_in_console(Course(slug=entry.slug, edited_in_console=True, **_course_values(entry, provider.id)),
                             actor=actor, kind="course")


def update_course(course: Course, data: dict[str, Any], *, actor: Actor) -> list[str]:
    """Change a course (not its address); returns the fields changed.

    Refuses a bad field (named) and an unknown provider. Offerings already
    made stay, even if the course no longer fits them: the force admin sees
    it on the offerings page and decides. The file no longer updates it.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.EDIT_CATALOGUE)
    entry, provider = _course_entry({**data, "slug": course.slug})
    return _changed(course, _course_values(entry, provider.id), actor=actor, kind="course")


def retire_course(course: Course, *, actor: Actor) -> None:
    """Retire a course: no new offerings, and its offerings take no new referrals;
    referrals already made go on. Refuses a course already retired.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.EDIT_CATALOGUE)
    if course.is_retired:
        raise CatalogueError("course", _("The course is already retired."))
    course.retired_at = utcnow()
    db.session.flush()
    record("course.retired", actor=actor, tenant_id=None, object_type="course", object_id=course.id)


def reinstate_course(course: Course, *, actor: Actor) -> None:
    """Bring a retired course back. Refuses a course that is not retired.
    An actor the access table does not allow is refused first (``AccessRefused``)."""
    require(actor, Action.EDIT_CATALOGUE)
    if not course.is_retired:
        raise CatalogueError("course", _("The course is not retired."))
    course.retired_at = None
    db.session.flush()
    record("course.reinstated", actor=actor, tenant_id=None, object_type="course", object_id=course.id)


# ---------------------------------------------------------------- offerings (the force in scope)

class Pathway(Protocol):
    """What offerings need of a pathway of a force's policy (eligibility owns pathways)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> PathwayKind | None: ...
    def name_in(self, language: str) -> str: ...


PathwayReader = Callable[[date], Sequence[Pathway]]
_pathway_reader: list[PathwayReader] = []


def read_pathways_with(reader: PathwayReader) -> None:
    """Hand the catalogue the function that lists the force in scope's pathways in
    force on a day. Eligibility owns policies and sits above the catalogue, so it
    registers this at start-up rather than the catalogue importing it."""
    _pathway_reader[:] = [reader]


def pathways_in_force(today: date) -> list[Pathway]:
    """The pathways of the force in scope's policy in force (none without one).

    Refuses (RuntimeError) to answer before a reader is registered: an app that
    forgot it must fail loudly, not offer no pathways.
    """
    if not _pathway_reader:
        raise RuntimeError("No pathway reader is registered: call read_pathways_with() at start-up")
    return list(_pathway_reader[0](today))


def offerings() -> Sequence[Offering]:
    """The force in scope's offerings, withdrawn ones too, by pathway."""
    return db.session.scalars(select(Offering).order_by(Offering.pathway, Offering.created_at)).all()


def live_offerings_for(pathway: str) -> Sequence[Offering]:
    """The offerings that take new referrals for ``pathway``: not withdrawn, course not retired."""
    return db.session.scalars(
        select(Offering).join(Course)
        .where(Offering.pathway == pathway, Offering.withdrawn_at.is_(None), Course.retired_at.is_(None))
        .order_by(Offering.created_at)
    ).all()


def fitting_courses(tenant: Tenant, pathway: Pathway) -> list[Course]:
    """The courses a force admin may offer for ``pathway``: live and fitting (``misfit``)."""
    return [c for c in courses()
            if not c.is_retired and misfit(c, area=tenant.area, kind=pathway.kind) is None]


@dataclass(frozen=True)
class LocalDetails:
    venues: list[str]
    booking_contact: str
    notes: str


def _details(details: LocalDetails) -> dict[str, str]:
    venues = [v.strip() for v in details.venues if v.strip()]
    values = {"venues": "\n".join(venues), "booking_contact": details.booking_contact.strip(),
              "notes": details.notes.strip()}
    for name, limit in (("venues", 1000), ("booking_contact", 300), ("notes", 1000)):
        if len(values[name]) > limit:
            raise CatalogueError(name, _("Must be %(count)s characters or fewer.", count=limit))
    if any(len(v) > 200 for v in venues):
        raise CatalogueError("venues", _("Each venue must be 200 characters or fewer."))
    return values


def add_offering(tenant: Tenant, course: Course, pathway_id: str, details: LocalDetails, *, actor: Actor,
                 today: date) -> Offering:
    """Offer ``course`` for one of the force's pathways, with local details.

    Refuses a pathway the policy in force does not have, a retired course, a
    course that does not fit the pathway (``misfit``), and a course already
    offered for that pathway. A withdrawn offering of the same pair is
    reopened with the new details instead of being duplicated.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.MANAGE_OFFERINGS, tenant_id=tenant.id)
    pathway = next((p for p in pathways_in_force(today) if p.id == pathway_id), None)
    if pathway is None:
        raise CatalogueError("pathway", _("Choose a pathway of the force's policy in force."))
    if course.is_retired:
        raise CatalogueError("course", _("The course is retired: choose another."))
    why = misfit(course, area=tenant.area, kind=pathway.kind)
    if why is not None:
        raise CatalogueError("course", _("%(why)s Choose a course that fits %(pathway)s.", why=why,
                                         pathway=pathway.name))
    values = _details(details)
    offering = db.session.scalar(select(Offering).where(Offering.course_id == course.id,
                                                        Offering.pathway == pathway.id))
    if offering is not None and offering.withdrawn_at is None:
        raise CatalogueError("course", _("%(course)s is already offered for %(pathway)s.", course=course.title,
                                                  pathway=pathway.name))
    reopened = offering is not None
    if offering is None:
        offering = Offering(tenant_id=tenant.id, course_id=course.id, pathway=pathway.id)
        db.session.add(offering)
    for name, value in values.items():
        setattr(offering, name, value)
    offering.withdrawn_at = None
    offering.edited_in_console = True
    db.session.flush()
    record("offering.reopened" if reopened else "offering.added", actor=actor, tenant_id=tenant.id,
           object_type="offering", object_id=offering.id, details={"course": course.slug, "pathway": pathway.id})
    return offering


def update_offering(tenant: Tenant, offering: Offering, details: LocalDetails, *, actor: Actor) -> list[str]:
    """Change an offering's local details; returns the fields changed.
    Refuses a detail that is too long, naming it, and a withdrawn offering.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.MANAGE_OFFERINGS, tenant_id=tenant.id)
    if offering.withdrawn_at is not None:
        raise CatalogueError("offering", _("The offering is withdrawn: add it again to change it."))
    return _changed(offering, _details(details), actor=actor, kind="offering", tenant_id=tenant.id)


def withdraw_offering(tenant: Tenant, offering: Offering, *, actor: Actor) -> None:
    """Withdraw an offering: it takes no new referrals; referrals already made go on.
    Refuses one already withdrawn.
    An actor the access table does not allow is refused first (``AccessRefused``).
    """
    require(actor, Action.MANAGE_OFFERINGS, tenant_id=tenant.id)
    if offering.withdrawn_at is not None:
        raise CatalogueError("offering", _("The offering is already withdrawn."))
    offering.withdrawn_at = utcnow()
    offering.edited_in_console = True
    db.session.flush()
    record("offering.withdrawn", actor=actor, tenant_id=tenant.id, object_type="offering", object_id=offering.id,
           details={"course": offering.course.slug, "pathway": offering.pathway})
