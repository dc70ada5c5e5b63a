"""Finding a force's cases: the search and filters of the cases list, and its rows.

What can be searched, given that names are sealed (``cases.identity``):

- a case reference (``WM-2026-004217``, any case, zeros optional), exactly;
- a PNC ID, exactly (normalised as intake does), through its keyed hash;
- a surname together with a date of birth, through a keyed blind index of
  the normalised surname and date (no name is stored in clear);
- a date of birth alone, through a keyed blind index of the date.

What cannot: part of a name, a given name, a surname without a date of
birth, or sorting by name or date of birth (the database holds only keyed
hashes of them). Everything else (decision, pathway, referral state, overdue,
course, officer, offence dates) filters indexed columns; the list sorts by
reference, offence date, due date or referral state.

A list sorted by reference or offence date is a list of encounters; one
sorted by due date or state is a list of referrals (each with its
encounter), since only a referral has a due date and a state. A list
filtered on referrals (state, overdue, course) is one of referrals unless
another order is asked for: it then follows the referrals' indexes
(``(tenant_id, state, deadline)``, the open referrals by due date,
``(tenant_id, offering_id, deadline)``) and stays quick in a force of a
million cases; sorted by reference or offence date instead, it walks the
encounters and looks up their referrals, which costs more as it grows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import ColumnElement, Select, false, null, select
from sqlalchemy.orm import selectinload

from diversion.accounts.models import User
from diversion.cases.identity import Identity, normalise_pnc, open_identity, person_keys, search_keys
from diversion.cases.models import Encounter, Person, Referral, State, recorded_by
from diversion.cases.references import looks_like_reference, normalise_reference
from diversion.catalogue.models import Offering
from diversion.eligibility.models import Outcome
from diversion.extensions import db
from diversion.inputs import EARLIEST_CASE_DATE
from diversion.listing import page_of
from diversion.tenancy.models import Tenant
from diversion.words import day

# Each order the list offers, named in the reader's language when shown (lazily: made once, at import).
SORTS: Mapping[str, LazyString] = {
    "-reference": _l("Newest reference first"), "reference": _l("Oldest reference first"),
    "-offence": _l("Latest offence first"), "offence": _l("Earliest offence first"),
    "due": _l("Due soonest first"), "-due": _l("Due latest first"), "state": _l("Referral state"),
}
BY_REFERRAL = frozenset({"due", "-due", "state"})
_WITH_COURSE = selectinload(Referral.offering).joinedload(Offering.course)  # shown in every row


@dataclass
class CaseSearch:
    """The search and filters of one request, as typed, with a problem per field it could not read."""

    text: str = ""
    surname: str = ""
    born: date | None = None
    born_parts: tuple[str, str, str] = ("", "", "")
    outcome: str = ""
    pathway: str = ""
    state: str = ""
    overdue: bool = False
    course: int | None = None
    officer: int | None = None
    offence_from: date | None = None
    offence_to: date | None = None
    sort: str = "-reference"
    sort_asked: str = ""  # the order the address asked for; "" for the one that suits the filters
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def searching(self) -> bool:
        return bool(self.text or self.surname or self.born)

    @property
    def filtered(self) -> bool:
        return bool(self.outcome or self.pathway or self.state or self.overdue or self.course or self.officer
                    or self.offence_from or self.offence_to)


def _whole(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 10 else None


# What a wrong offence date in the search is told, by field: (not a date, before the earliest date taken).
_DAY_SAID = {
    "from": (_l("The earliest offence date must be a real date"),
             _l("The earliest offence date must be on or after %(date)s")),
    "to": (_l("The latest offence date must be a real date"),
           _l("The latest offence date must be on or after %(date)s")),
}


def _day(args: Mapping[str, str], name: str, problems: dict[str, str]) -> date | None:
    raw = args.get(name, "").strip()
    if not raw:
        return None
    not_a_date, too_early = _DAY_SAID[name]
    try:
        found = date.fromisoformat(raw)
    except ValueError:
        problems[name] = str(not_a_date)
        return None
    if found < EARLIEST_CASE_DATE:
        problems[name] = too_early % {"date": day(EARLIEST_CASE_DATE)}
        return None
    return found


def read_search(args: Mapping[str, str]) -> CaseSearch:
    """The search of a request's query arguments. A value that is not one of
    the choices is ignored; a date that is not a date, or a surname without
    a date of birth, is a problem named on its field (and the page lists nothing)."""
    problems: dict[str, str] = {}
    parts = (args.get("born-day", "").strip(), args.get("born-month", "").strip(), args.get("born-year", "").strip())
    born = None
    if any(parts):
        try:
            born = date(int(parts[2]), int(parts[1]), int(parts[0]))
        except ValueError:
            problems["born"] = _("Date of birth must be a real date, with a day, a month and a year")
    surname = args.get("surname", "").strip()[:100]
    if surname and born is None and "born" not in problems:
        problems["born"] = _("Enter the date of birth too: a surname is searched together with a date of birth")
    state = args.get("state", "") if args.get("state") in set(State) else ""
    overdue, course = args.get("overdue") == "yes", _whole(args.get("course", ""))
    offence_from = _day(args, "from", problems)
    offence_to = _day(args, "to", problems)
    # Unless another order is asked for, a list filtered on its referrals is one of referrals, due soonest
    # first, and one filtered on offence dates is in offence date order, latest first (each the order of
    # the index its filter reads).
    sort = args.get("sort") or ("due" if state or overdue or course else
                                "-offence" if offence_from or offence_to else "-reference")
    return CaseSearch(
        text=args.get("q", "").strip()[:40], surname=surname, born=born, born_parts=parts,
        outcome=args.get("decision", "") if args.get("decision") in set(Outcome) else "",
        pathway=args.get("pathway", "").strip()[:63],
        state=state, overdue=overdue, course=course,
        officer=_whole(args.get("officer", "")),
        offence_from=offence_from, offence_to=offence_to,
        sort=sort if sort in SORTS else "-reference", sort_asked=sort if sort in SORTS and args.get("sort") else "",
        problems=problems)


def _people(tenant: Tenant, search: CaseSearch) -> Select[Any] | None:
    """The people the search names (by PNC ID, by surname and birth, by birth), or None for anyone."""
    if search.surname and search.born:
        return select(Person.id).where(Person.search_key == search_keys(tenant.slug, search.surname, search.born)[0])
    if search.born and not search.surname:
        return select(Person.id).where(Person.birth_key == search_keys(tenant.slug, "", search.born)[1])
    return None


def _searched(tenant: Tenant, search: CaseSearch, query: Select[Any]) -> Select[Any]:
    """``query`` narrowed to what was searched for: a reference, a PNC ID, a surname and birth, a birth."""
    text = search.text
    if text and looks_like_reference(text):
        query = query.where(Encounter.reference == normalise_reference(text))
    elif text:
        pnc_key = person_keys(tenant.slug, Identity("", "", date.min, text))[1] if normalise_pnc(text) else None
        query = query.where(Encounter.person_id.in_(select(Person.id).where(Person.pnc_key == pnc_key))
                            if pnc_key else false())
    if (people := _people(tenant, search)) is not None:
        query = query.where(Encounter.person_id.in_(people))
    return query


def statement(tenant: Tenant, search: CaseSearch, *, today: date) -> Select[Any]:
    """The SELECT of the cases the search finds, in its order: rows of
    (Encounter, Referral or None). Reads the offerings of a course filtered on."""
    return _statement(tenant, search, _referral_filters(search, today))


def page(tenant: Tenant, search: CaseSearch, *, today: date) -> Pagination:
    """The page asked for (``?page=``) of the cases the search finds, counted up to the cap. A list of
    referrals filtered on nothing of their cases is counted from the referrals alone (every referral
    has its case), so that the count reads the referrals' index instead of joining each to its case."""
    referral_filters = _referral_filters(search, today)
    case_filtered = any((search.text, search.surname, search.born, search.outcome, search.pathway, search.officer,
                         search.offence_from, search.offence_to))
    count = select(Referral.id).where(*referral_filters) \
        if search.sort in BY_REFERRAL and not case_filtered else None
    return page_of(_statement(tenant, search, referral_filters), capped=True, count=count)


def _referral_filters(search: CaseSearch, today: date) -> list[ColumnElement[bool]]:
    """The conditions on referrals the search asks for. Reads the offerings of a course filtered on."""
    filters: list[ColumnElement[bool]] = []
    if search.state:
        filters.append(Referral.state == State(search.state))
    if search.overdue:
        filters += [Referral.still_open(), Referral.deadline < today]
    if search.course:
        # Its offerings read first, so that the planner sees their ids (``providers.lists`` says why).
        filters.append(Referral.offering_id.in_(
            db.session.scalars(select(Offering.id).where(Offering.course_id == search.course)).all()))
    return filters


def _statement(tenant: Tenant, search: CaseSearch, referral_filters: list[ColumnElement[bool]]) -> Select[Any]:
    by_referral = search.sort in BY_REFERRAL
    if by_referral:
        query = select(Encounter, Referral).join(Referral, Referral.encounter_id == Encounter.id) \
            .options(_WITH_COURSE)
    else:
        query = select(Encounter, null().label("referral"))
    query = _searched(tenant, search, query)
    if search.outcome:
        query = query.where(Encounter.outcome == search.outcome)
    if search.pathway:
        query = query.where(Encounter.pathway == search.pathway)
    if search.officer:
        query = query.where(Encounter.recorded_by_id == search.officer)
    if search.offence_from:
        query = query.where(Encounter.offence_on >= search.offence_from)
    if search.offence_to:
        query = query.where(Encounter.offence_on <= search.offence_to)
    if referral_filters and by_referral:
        query = query.where(*referral_filters)
    elif referral_filters:
        query = query.where(Encounter.id.in_(select(Referral.encounter_id).where(*referral_filters)))
    order = {
        "-reference": (Encounter.reference.desc(),), "reference": (Encounter.reference,),
        "-offence": (Encounter.offence_on.desc(), Encounter.reference.desc()),
        "offence": (Encounter.offence_on, Encounter.reference),
        "due": (Referral.deadline, Referral.id), "-due": (Referral.deadline.desc(), Referral.id.desc()),
        "state": (Referral.state, Referral.deadline, Referral.id),
    }[search.sort]
    return query.order_by(*order)


@dataclass(frozen=True)
class CaseRow:
    """One row of the cases list, as a person reads it."""

    encounter: Encounter
    identity: Identity | None
    referral: Referral | None
    officer: str


def rows(found: Sequence[Any], *, force: str) -> list[CaseRow]:
    """The rows of one page: each case's person (opened), its referral (the row's own when the list
    is of referrals, else the encounter's latest) and who recorded it (``models.recorded_by``; ``force``
    names the force's case system), in three queries at most."""
    pairs = [(row[0], row[1]) for row in found]
    people = {p.id: p for p in db.session.scalars(
        select(Person).where(Person.id.in_({e.person_id for e, _ in pairs})))} if pairs else {}
    latest: dict[uuid.UUID, Referral] = {}
    missing = [e.id for e, r in pairs if r is None]
    if missing:
        for referral in db.session.scalars(select(Referral).where(Referral.encounter_id.in_(missing))
                                           .options(_WITH_COURSE).order_by(Referral.created_at)):
            latest[referral.encounter_id] = referral
    officers = {e.recorded_by_id for e, _ in pairs} - {None}
    names = {u.id: u.name for u in db.session.scalars(select(User).where(User.id.in_(officers)))} if officers else {}
    return [CaseRow(encounter, open_identity(people[encounter.person_id].identity_sealed)
                    if encounter.person_id in people else None,
                    referral or latest.get(encounter.id), recorded_by(encounter, names, force=force))
            for encounter, referral in pairs]
