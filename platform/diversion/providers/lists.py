"""The provider's referrals list: one page at a time, searched by case reference, filtered, with names.

What can be searched: a case reference (``WM-2026-000042``, exact, as the
force gave it; its prefix names the force). Names are sealed, so the list
shows them (the provider holds the referral and may read its person) but
neither searches nor sorts by them.

Unless a state or a case reference is asked for, the list holds the open
referrals alone: the work still to do. The statement follows the
referrals' indexes: ``(provider_id, deadline, id)`` of the open ones, and of
all, by due date, ``(provider_id, state, deadline)`` for one state and for
the open ones past their deadline; a page costs an
indexed scan of the rows before it, and the total is counted up to
``listing.COUNT_CAP``. The people of a page are read in one query.

Runs in the provider's scope (``set_provider_scope``): the ORM guard and
row-level security let through the provider's referrals and their people
only. Refuses nothing itself; ``ProviderListFilter`` is built from checked
input by the view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, select

from diversion.cases.identity import Unreadable, open_identity
from diversion.cases.models import Encounter, Person, Referral, State
from diversion.cases.references import looks_like_reference, normalise_reference
from diversion.catalogue.models import Course, Offering, Provider
from diversion.extensions import db
from diversion.tenancy.models import Tenant
from diversion.words import WELSH, current_language

SORTS = ("due", "state")
ALL_STATES = "all"  # the state filter's choice of every referral, ended ones too


@dataclass(frozen=True)
class ProviderListFilter:
    """What the provider's list shows: a reference, one force, one state, the overdue, one course, a due-date
    window; the order."""

    reference: str | None = None  # as stored (``normalise_reference``)
    force: Tenant | None = None
    state: State | None = None
    open_only: bool = True  # no state asked for: the open referrals (a reference is found in any state)
    overdue: bool = False
    course: Course | None = None
    due_from: date | None = None
    due_to: date | None = None
    sort: str = "due"
    descending: bool = False

    @property
    def filtered(self) -> bool:
        return bool(self.reference or self.force or self.state or self.overdue or self.course or self.due_from
                    or self.due_to)


@dataclass(frozen=True)
class Row:
    """One line of the list: the referral, its force, course and case reference, and the person's name."""

    referral: Referral
    force: Tenant
    course_title: str
    reference: str
    name: str | None  # None: the sealed name could not be opened

    @property
    def state(self) -> State:
        return self.referral.state


def shows_open_alone(wanted: ProviderListFilter) -> bool:
    """Whether the list holds the open referrals alone: no state asked for, nor a case reference."""
    return wanted.open_only and wanted.state is None and not wanted.reference


def reference_of(text: str) -> str | None:
    """A typed search as a stored case reference, or None when it is not shaped as one."""
    return normalise_reference(text) if looks_like_reference(text) else None


def courses_of(provider: Provider) -> list[Course]:
    """The provider's courses, by title (the course filter's choices)."""
    return list(db.session.scalars(select(Course).where(Course.provider_id == provider.id).order_by(Course.title)))


def statement(provider: Provider, wanted: ProviderListFilter, today: date) -> Select[Any]:
    """The provider's referrals matching ``wanted``, in the order asked for (a SELECT of referrals alone,
    so that its page and its count follow the referrals' indexes). Reads the offerings of a course filtered
    on."""
    query = select(Referral).where(Referral.provider_id == provider.id)  # the guard adds it; here it leads the index
    if wanted.reference:
        prefix = wanted.reference.split("-", 1)[0]
        query = query.where(Referral.encounter_id.in_(
            select(Encounter.id).where(
                Encounter.tenant_id.in_(select(Tenant.id).where(Tenant.reference_prefix == prefix)),
                Encounter.reference == wanted.reference)))
    if wanted.force is not None:
        query = query.where(Referral.tenant_id == wanted.force.id)
    if wanted.state is not None:
        query = query.where(Referral.state == wanted.state)
    elif shows_open_alone(wanted):
        query = query.where(Referral.still_open())
    if wanted.overdue:
        query = query.where(Referral.still_open(), Referral.deadline < today)
    if wanted.course is not None:
        # The course's offerings read first, so that the planner sees their ids (a subquery here hides
        # how many referrals match, and PostgreSQL sorts them all rather than walk the due-date index).
        offerings = db.session.scalars(select(Offering.id).where(Offering.course_id == wanted.course.id)).all()
        query = query.where(Referral.offering_id.in_(offerings))
    if wanted.due_from is not None:
        query = query.where(Referral.deadline >= wanted.due_from)
    if wanted.due_to is not None:
        query = query.where(Referral.deadline <= wanted.due_to)
    order = [Referral.state, Referral.deadline, Referral.id] if wanted.sort == "state" else \
        [Referral.deadline, Referral.id]
    return query.order_by(*(column.desc() if wanted.descending else column for column in order))


def rows(referrals: list[Referral], forces: list[Tenant]) -> list[Row]:
    """A page of referrals as rows: their case references, courses and people each read in one query
    (three statements for the page, whatever its length)."""
    if not referrals:
        return []
    tenant_ids = {referral.tenant_id for referral in referrals}
    references = dict(db.session.execute(
        select(Encounter.id, Encounter.reference).where(
            Encounter.tenant_id.in_(tenant_ids), Encounter.id.in_({r.encounter_id for r in referrals}))).tuples().all())
    welsh = current_language() == WELSH
    titles = {offering: (welsh and title_cy) or title for offering, title, title_cy in db.session.execute(
        select(Offering.id, Course.title, Course.title_cy).join(Course, Course.id == Offering.course_id).where(
            Offering.tenant_id.in_(tenant_ids), Offering.id.in_({r.offering_id for r in referrals}))).tuples()}
    people = {person.id: person for person in db.session.scalars(
        select(Person).where(Person.tenant_id.in_(tenant_ids), Person.id.in_({r.person_id for r in referrals})))}
    by_id = {force.id: force for force in forces}
    return [Row(referral, by_id[referral.tenant_id], titles.get(referral.offering_id, ""),
                references.get(referral.encounter_id, ""), _name(people.get(referral.person_id)))
            for referral in referrals]


def _name(person: Person | None) -> str | None:
    if person is None:
        return None
    try:
        identity = open_identity(person.identity_sealed)
    except Unreadable:
        return None
    return f"{identity.given_name} {identity.surname}"
