"""The audit log's pages, one for a force's admins and one for the platform
admins: the same filters, the same table in plain words, the same CSV.

Who may read is checked by the views that call these; which rows they
read is the caller's ``tenant_id`` (a force's, or None for the whole
platform) and, on PostgreSQL, the database's read policies on the log.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

from flask import render_template, request, stream_with_context
from sqlalchemy import select
from werkzeug.wrappers import Response

from diversion.accounts.models import User
from diversion.audit.models import AuditEvent
from diversion.audit.reading import (
    ACTION_GROUPS,
    ACTIONS,
    OBJECTS,
    FilterInvalid,
    NameOf,
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
from diversion.cases.models import Encounter, Referral
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.listing import page_of
from diversion.tenancy.context import scoped
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


def _names(ids: Iterable[int]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(wanted))).tuples().all())


def _force_names(ids: Iterable[int]) -> dict[int, str]:
    """Each force's name in the reader's language ("Heddlu Gogledd Cymru" in Welsh), by id."""
    if not (wanted := set(ids)):
        return {}
    language = current_language()
    found = db.session.scalars(select(Tenant).where(Tenant.id.in_(wanted)))
    return {force.id: force.name_in(language) for force in found}


def _object_label(event: AuditEvent, emails: dict[int, str], forces: dict[int, str],
                  references: dict[str, str]) -> str:
    """The object in words: the person's address, the force's name, a case's reference, or a
    short reference to its id (``short_id``)."""
    if not event.object_id:
        return ""
    if event.object_type == "user" and event.object_id.isdigit():
        return emails.get(int(event.object_id), "")
    if event.object_type == "tenant" and event.object_id.isdigit():
        return forces.get(int(event.object_id), "")
    return references.get(event.object_id) or short_id(event.object_id)


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


def _object_ids(found: list[AuditEvent], object_type: str) -> set[int]:
    return {int(e.object_id) for e in found if e.object_type == object_type and e.object_id and e.object_id.isdigit()}


def _rows(found: list[AuditEvent], *, in_force: bool) -> list[Row]:
    """The events as the table shows them; ``in_force``: read in one force's scope, whose
    cases can then be named by their references."""
    names = _names([e.actor_id for e in found if e.actor_id is not None]
                   + [e.details["user_id"] for e in found if isinstance((e.details or {}).get("user_id"), int)])
    user_objects = _object_ids(found, "user")
    emails = dict(db.session.execute(select(User.id, User.email).where(User.id.in_(user_objects))).tuples().all()) \
        if user_objects else {}
    forces = _force_names({e.tenant_id for e in found if e.tenant_id is not None} | _object_ids(found, "tenant"))
    references = _case_references(found) if in_force else {}
    return [Row(
        when=moment_words(event.occurred_at),
        person=person_words(event, names.get), email=event.actor_email or "",
        action=action_words(event.action, event.details), object_kind=object_words(event.object_type),
        object_label=_object_label(event, emails, forces, references),
        object_filter={"object_type": event.object_type or "", "object_id": event.object_id or ""}
        if event.object_id else {},
        force=forces.get(event.tenant_id, "") if event.tenant_id is not None else "",
        details=details_words(event.details, name_of=names.get)) for event in found]


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
            yield from csv_lines(statement, name_of=_lazy(User), force_of=_lazy(Tenant))

    response = Response(stream_with_context(lines()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _lazy(model: type[User] | type[Tenant]) -> NameOf:
    """A name by id, read when first asked for and kept for the rest of the download."""

    @cache
    def name_of(row_id: int) -> str | None:
        return db.session.scalar(select(model.name).where(model.id == row_id))

    return name_of
