"""The audit log's pages, one for a force's admins and one for the platform
admins: the same filters, the same table in plain words, the same CSV.

Who may read is checked by the views that call these; which rows they
read is the caller's ``tenant_id`` (a force's, or None for the whole
platform) and, on PostgreSQL, the database's read policies on the log.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import render_template, request, stream_with_context
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from diversion.accounts.models import User
from diversion.audit.models import AuditEvent
from diversion.audit.reading import (
    ACTION_GROUPS,
    ACTIONS,
    OBJECTS,
    FilterInvalid,
    Known,
    action_words,
    csv_lines,
    details_words,
    events,
    moment_words,
    object_words,
    person_words,
    read_filter,
    short_id,
)
from diversion.cases.models import BookedSession, Encounter, Referral
from diversion.catalogue.models import Course, Provider
from diversion.eligibility.models import Decision, PolicyStatus, PolicyVersion
from diversion.eligibility.naming import Names
from diversion.eligibility.services import compiled
from diversion.extensions import db
from diversion.listing import page_of
from diversion.tenancy.context import scoped
from diversion.tenancy.guard import ALL_TENANTS
from diversion.tenancy.models import Tenant
from diversion.words import current_language

FIELDS = ("person", "action", "object_type", "object_id", "since", "until")


@dataclass(frozen=True)
class Row:
    """One event as the table shows it."""

    when: str
    person: str
    email: str
    action: str
    object_kind: str
    object_label: str
    object_filter: dict[str, str]
    force: str
    details: str


def _force_names(ids: Iterable[int], slugs: Iterable[str]) -> dict[int | str, str]:
    """Each force's name in the reader's language ("Heddlu Gogledd Cymru" in Welsh), by id and by slug."""
    wanted, named = set(ids), set(slugs)
    if not (wanted or named):
        return {}
    language = current_language()
    found = db.session.scalars(select(Tenant).where(Tenant.id.in_(wanted) | Tenant.slug.in_(named)))
    return {key: force.name_in(language) for force in found for key in (force.id, force.slug)}


def _course_titles(ids: set[int], slugs: set[str]) -> dict[int | str, str]:
    """Each course's title in the reader's language, by id and by slug."""
    if not (ids or slugs):
        return {}
    language = current_language()
    found = db.session.scalars(select(Course).where(Course.id.in_(ids) | Course.slug.in_(slugs)))
    return {key: course.title_in(language) for course in found for key in (course.id, course.slug)}


def _provider_names(ids: set[int], slugs: set[str]) -> dict[int | str, str]:
    """Each provider's name, by id and by slug."""
    if not (ids or slugs):
        return {}
    found = db.session.execute(select(Provider.id, Provider.slug, Provider.name)
                               .where(Provider.id.in_(ids) | Provider.slug.in_(slugs))).tuples()
    return {key: name for row_id, slug, name in found for key in (row_id, slug)}


def _pathway_names(forces: set[int]) -> dict[int, Mapping[str, str]]:
    """How each force's published policies name its pathways (the newest version's name first),
    by force: published versions are read across forces, as the forces' public schemes."""
    if not forces:
        return {}
    versions = db.session.scalars(
        select(PolicyVersion).where(PolicyVersion.tenant_id.in_(forces), PolicyVersion.status == PolicyStatus.PUBLISHED)
        .order_by(PolicyVersion.number.desc()).execution_options(**{ALL_TENANTS: True})).all()
    return {force: Names.of(*(compiled(v) for v in versions if v.tenant_id == force)).pathways for force in forces}


def _detail_values(found: Sequence[AuditEvent], *keys: str) -> list[Any]:
    return [value for e in found for key in keys if (value := (e.details or {}).get(key)) is not None]


def _known(found: Sequence[AuditEvent], *, in_force: bool) -> Known:
    """What ``found`` name by id or code (people, forces, courses, providers, pathways and, read in
    one force's scope, its booked sessions), read in a fixed number of statements whatever their number."""
    people = {e.actor_id for e in found if e.actor_id is not None} | {
        v for v in _detail_values(found, "user_id") if isinstance(v, int)}
    names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(people))).tuples().all()) \
        if people else {}
    copied = [e.details["from"] for e in found if e.action == "tenant.policy_copied" and (e.details or {}).get("from")]
    forces = _force_names({e.tenant_id for e in found if e.tenant_id is not None} | _object_ids(found, "tenant"),
                          {str(v) for v in copied + [f for fs in _detail_values(found, "forces") if isinstance(fs, list)
                                                     for f in fs]})
    dropped = [str(d).split(" for ", 1)[0] for ds in _detail_values(found, "dropped") if isinstance(ds, list)
               for d in ds]
    created = {kind: {str(e.details["slug"]) for e in found if e.action == f"{kind}.created"
                      and (e.details or {}).get("slug")} for kind in ("course", "provider")}
    courses = _detail_values(found, "course")
    providers = _detail_values(found, "provider", "provider_id")
    with_pathways = {e.tenant_id for e in found if e.tenant_id is not None and (e.details or {}).keys()
                     & {"pathway", "dropped", "prices"}}
    sessions = {u for v in _detail_values(found, "session") if (u := _as_uuid(str(v))) is not None} \
        if in_force else set()
    return Known(
        people=names, forces=forces,
        courses=_course_titles({v for v in courses if isinstance(v, int)} | _object_ids(found, "course"),
                                 {v for v in courses if isinstance(v, str)} | set(dropped) | created["course"]),
        providers=_provider_names(
            {v for v in providers if isinstance(v, int)} | _object_ids(found, "provider"),
            {v for v in providers if isinstance(v, str)} | created["provider"]),
        pathways=_pathway_names(with_pathways),
        sessions={str(i): starts for i, starts in db.session.execute(
            select(BookedSession.id, BookedSession.starts_at).where(BookedSession.id.in_(sessions))).tuples()}
        if sessions else {})


def _object_label(event: AuditEvent, emails: dict[int, str], known: Known, references: dict[str, str]) -> str:
    """The object in words: the person's address, the force's, course's or provider's name, a
    case's reference, what the event's details name it by (``_label_in_details``), or a short
    reference to its id (``short_id``)."""
    if not event.object_id:
        return ""
    by_number: dict[str, Mapping[Any, str]] = {
        "user": emails, "tenant": known.forces, "course": known.courses, "provider": known.providers}
    if event.object_type in by_number and event.object_id.isdigit():
        return by_number[event.object_type].get(int(event.object_id), "")
    return _label_in_details(event.object_type or "", event.details or {}, known) \
        or _contract_label(event, known) \
        or references.get(event.object_id) or short_id(event.object_id)


def _label_in_details(kind: str, details: Mapping[str, Any], known: Known) -> str | None:
    """An object named by its event's details: a member by name, an invitation by the address
    it went to, a course offered by its course's title, a token by its name, an import by its file."""
    user, email, course, name = (details.get(k) for k in ("user_id", "email", "course", "name"))
    if kind in ("membership", "provider_membership") and isinstance(user, int):
        return known.people.get(user)
    if kind in ("invitation", "provider_invitation") and isinstance(email, str):
        return email
    if kind == "offering" and isinstance(course, int | str):
        return known.courses.get(course)
    if kind in ("api_token", "provider_token") and isinstance(name, str):
        return name
    if kind == "import" and isinstance(details.get("file"), str):
        return str(details["file"])
    return None


def _contract_label(event: AuditEvent, known: Known) -> str | None:
    """A contract named by its parties, as its event records them: "West Midlands Police and Cranstoun"."""
    provider = (event.details or {}).get("provider")
    if event.object_type != "contract" or event.tenant_id is None or not isinstance(provider, int):
        return None
    force, named = known.forces.get(event.tenant_id), known.providers.get(provider)
    return str(_("%(force)s and %(provider)s", force=force, provider=named)) if force and named else None


def _as_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _case_references(found: list[AuditEvent]) -> dict[str, str]:
    """The case reference of each case, decision and referral the events are about (one read
    for each kind on the page), by the object id the events hold. Read in the force in scope."""
    def about(kind: str) -> set[uuid.UUID]:
        return {object_id for event in found if event.object_type == kind
                and (object_id := _as_uuid(event.object_id)) is not None}

    statements = []
    if cases := about("encounter"):
        statements.append(select(Encounter.id, Encounter.reference).where(Encounter.id.in_(cases)))
    for kind, model in (("decision", Decision), ("referral", Referral)):
        if ids := about(kind):
            statements.append(select(model.id, Encounter.reference).where(model.id.in_(ids))
                              .join(Encounter, (Encounter.tenant_id == model.tenant_id)
                                    & (Encounter.id == model.encounter_id)))
    return {str(object_id): reference for statement in statements
            for object_id, reference in db.session.execute(statement).tuples()}


def _object_ids(found: Sequence[AuditEvent], object_type: str) -> set[int]:
    return {int(e.object_id) for e in found if e.object_type == object_type and e.object_id and e.object_id.isdigit()}


def _rows(found: list[AuditEvent], *, in_force: bool) -> list[Row]:
    """The events as the table shows them; ``in_force``: read in one force's scope, whose
    cases can then be named by their references and sessions by when they start."""
    known = _known(found, in_force=in_force)
    user_objects = _object_ids(found, "user")
    emails = dict(db.session.execute(select(User.id, User.email).where(User.id.in_(user_objects))).tuples().all()) \
        if user_objects else {}
    references = _case_references(found) if in_force else {}
    return [Row(
        when=moment_words(event.occurred_at),
        person=person_words(event, known.people.get), email=event.actor_email or "",
        action=action_words(event.action, event.details),
        object_kind="" if event.object_type == "tenant" and label else object_words(event.object_type),
        object_label=label,
        object_filter={"object_type": event.object_type or "", "object_id": event.object_id or ""}
        if event.object_id else {},
        force=known.forces.get(event.tenant_id, "") if event.tenant_id is not None else "",
        details=details_words(event.details, known=known, action=event.action, force=event.tenant_id))
        for event, label in ((event, _object_label(event, emails, known, references)) for event in found)]


def audit_page(*, tenant_id: int | None, reader: User, title: str, endpoint: str, csv_endpoint: str,
               base: str) -> str | tuple[str, int]:
    """The page of the audit asked for by the query string; a filter that
    cannot be read is shown with its errors (400) and nothing else.

    Read in the force's scope, or (``tenant_id`` None: the whole platform)
    in no force's, with ``reader`` as the user in scope: on PostgreSQL the
    database itself lets the whole log be read only by a platform admin."""
    common = {"title": title, "endpoint": endpoint, "csv_endpoint": csv_endpoint, "base": base,
              "platform": tenant_id is None, "groups": list(ACTION_GROUPS.items()),
              "actions": sorted(ACTIONS.items(), key=lambda a: a[1]),
              "objects": sorted(OBJECTS.items(), key=lambda o: o[1])}
    try:
        wanted = read_filter(request.args)
    except FilterInvalid as error:
        html = render_template("audit/events.html", problems=error.problems, shown=error.shown, page=None, rows=[],
                               filter_args={}, **common)
        return html, 400
    with scoped(tenant_id, reader.id):
        page = page_of(events(wanted, tenant_id=tenant_id))
        rows = _rows(list(page.items), in_force=tenant_id is not None)
    shown = {name: request.args.get(name, "").strip() for name in FIELDS}
    return render_template("audit/events.html", problems={}, shown=shown, page=page, rows=rows,
                           filter_args=wanted.as_args(), filtered=wanted.any, **common)


def audit_csv(*, tenant_id: int | None, reader: User, filename: str, title: str, endpoint: str,
              csv_endpoint: str, base: str) -> Response | tuple[str, int]:
    """The events the filters ask for as a CSV download, streamed a batch at a
    time; a filter that cannot be read gets the page with its errors (400)."""
    try:
        wanted = read_filter(request.args)
    except FilterInvalid:
        page = audit_page(tenant_id=tenant_id, reader=reader, title=title, endpoint=endpoint,
                          csv_endpoint=csv_endpoint, base=base)
        return page if isinstance(page, tuple) else (page, 400)
    statement = events(wanted, tenant_id=tenant_id)
    reader_id = reader.id

    def lines() -> Iterator[str]:
        with scoped(tenant_id, reader_id):
            yield from csv_lines(statement, known_of=lambda batch: _known(batch, in_force=tenant_id is not None))

    response = Response(stream_with_context(lines()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
