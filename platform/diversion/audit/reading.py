"""Reading the audit log: its filters, its pages and its CSV, in plain words.

Two readers use it: a force's admins (their force's events: who saw or
changed which case, as the Data Protection Act 2018 s.62 logging duty
expects) and the platform admins (every event: console changes, sign-ins,
every force's). Who may read is checked by the pages; what can be read is
held by the database too: on PostgreSQL a force's events are readable with
that force in scope, and the whole log only while the user in scope is a
platform admin (the ``audit_read_platform`` policy).

Filters come from the page's query string: a person (part of an email
address), an action (its code, or the start of one such as ``referral``),
an object (its kind and/or its id) and a date range (days in Europe/London,
both ends included). A filter that cannot be read is refused with the
field it came from and a message; nothing is read then.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select

from diversion.audit.models import AuditEvent
from diversion.extensions import db
from diversion.listing import matching

LONDON = ZoneInfo("Europe/London")
MAX_FILTER = 100
CSV_BATCH = 500
# A name by id (a person's, a force's), or None when there is none.
NameOf = Callable[[int], "str | None"]

# What each recorded action says, in words; an action not named here is
# put into words from its code ("referral.not_completed": "Referral: not completed").
ACTIONS: Mapping[str, str] = {
    "auth.signed_in": "Signed in",
    "auth.signed_out": "Signed out",
    "auth.sign_in_failed": "Sign-in refused",
    "user.created": "Account created",
    "user.password_set": "Password set",
    "user.deactivated": "Account deactivated",
    "user.reactivated": "Account reactivated",
    "user.platform_role_granted": "Platform role given",
    "membership.added": "Member added",
    "membership.role_changed": "Member's role changed",
    "membership.removed": "Member removed",
    "tenant.created": "Force created",
    "tenant.updated": "Force updated from its file",
    "tenant.status_changed": "Force opened, suspended or reopened",
    "tenant.settings_changed": "Force settings changed",
    "tenant.exported": "Force configuration downloaded",
    "encounter.recorded": "Encounter recorded",
    "decision.recorded": "Decision made",
    "decision.overridden": "Decision overridden",
    "decision.viewed": "Decision viewed",
    "case.viewed": "Case viewed (name and contact details shown)",
    "referrals.listed": "Referrals list viewed",
    "referral.offered": "Referral offered",
    "sign_on.configured": "Single sign-on set up or changed",
    "catalogue.synced": "Catalogue updated from its file",
    "session.booked": "Session booked",
    "session.attendance_recorded": "Attendance recorded",
    "provider.referral_viewed": "Provider viewed a referral (contact details shown)",
    "provider.referrals_listed": "Provider listed its referrals",
    "api_token.created": "API token made",
    "api_token.revoked": "API token revoked",
}
# Families of actions a reader may ask for at once (the filter takes the start of a code).
ACTION_GROUPS: Mapping[str, str] = {
    "auth": "Every sign-in and sign-out", "user": "Every change to an account",
    "membership": "Every change to a force's members", "tenant": "Every change to a force",
    "referral": "Every move of a referral", "decision": "Every decision made, viewed or overridden",
    "api_token": "Every change to an API token",
}
OBJECTS: Mapping[str, str] = {
    "tenant": "Force", "user": "Person", "membership": "Membership", "encounter": "Case", "decision": "Decision",
    "referral": "Referral", "api_token": "API token", "provider_token": "Provider API token",
    "provider": "Provider", "policy_version": "Policy version", "sign_on": "Single sign-on",
    "offering": "Course offered", "course": "Course",
}
_CODE = re.compile(r"[a-z0-9_.]*")


STATUS_WORDS: Mapping[str, str] = {"suspended": "Force suspended", "active": "Force opened or reactivated"}


def action_words(action: str, details: Mapping[str, Any] | None = None) -> str:
    """An action in words (a force's status change by where it went, given its ``details``)."""
    if action == "tenant.status_changed" and details and details.get("to") in STATUS_WORDS:
        return STATUS_WORDS[details["to"]]
    if action in ACTIONS:
        return ACTIONS[action]
    thing, _, what = action.partition(".")
    return f"{thing.replace('_', ' ').capitalize()} {what.replace('_', ' ')}" if what else thing.replace("_", " ")


def object_words(object_type: str | None) -> str:
    """An object's kind in words ("" for none)."""
    if not object_type:
        return ""
    return OBJECTS.get(object_type, object_type.replace("_", " ").capitalize())


_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Details not worth a reader's eye: fingerprints of content.
_HIDDEN = frozenset({"hash", "content_hash", "secret_hash"})


def _text_value(value: str) -> str:
    """A short reference for an id (as the object column shows it), a time in
    Europe/London, a code in words, other text as it is."""
    if _UUID.fullmatch(value):
        return value[:8]
    if _MOMENT.fullmatch(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(LONDON).strftime("%d %b %Y %H:%M")
    return value.replace("_", " ") if _CODE.fullmatch(value) else value


def _value(value: Any) -> str:
    if isinstance(value, str) and value:
        return _text_value(value)
    if value is None or value == "":
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) if len(value) <= 3 else f"{len(value)} items"
    if isinstance(value, dict):
        return "; ".join(f"{_key(k)} {_value(v)}" for k, v in value.items())
    return str(value)


def _key(key: str) -> str:
    return key.replace("_", " ")


def details_words(details: Mapping[str, Any] | None, *, limit: int = 240, name_of: NameOf | None = None) -> str:
    """An event's details as a short sentence: before and after side by side,
    from and to as a move, a person by name (``name_of``), lists counted
    when long, content fingerprints left out; never the raw JSON."""
    if not details:
        return ""
    details = {k: v for k, v in details.items() if k not in _HIDDEN}
    if isinstance(details.get("user_id"), int) and name_of is not None:
        details = {("person" if k == "user_id" else k): (name_of(v) or "a person" if k == "user_id" else v)
                   for k, v in details.items()}
    parts: list[str] = []
    before, after = details.get("before"), details.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        parts += [f"{_key(k)}: {_value(before.get(k))} → {_value(after.get(k))}" for k in after]
    if "from" in details and "to" in details:
        parts.append(f"from {_value(details['from'])} to {_value(details['to'])}")
    parts += [f"{_key(k)}: {_value(v)}" for k, v in details.items() if k not in ("before", "after", "from", "to")]
    text = "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True)
class AuditFilter:
    """What the reader asked for; empty strings and None ask for nothing."""

    person: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    since: date | None = None
    until: date | None = None

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def as_args(self) -> dict[str, str]:
        """The filter as query arguments (for the CSV link and the pages)."""
        args = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value.isoformat() if isinstance(value, date) else value for name, value in args.items() if value}


class FilterInvalid(ValueError):  # noqa: N818 - reads as the condition it reports
    """Raised with each field that could not be read, and why: ``problems`` maps field to message."""

    def __init__(self, problems: dict[str, str], shown: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = problems
        self.shown = shown  # what was typed, to put back in the form


def _day(text: str, label: str) -> date:
    """A day written 2026-12-01 or 1/12/2026 (or 1 12 2026); refuses anything else."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", text):
            year, month, day = (int(p) for p in text.split("-"))
        elif m := re.fullmatch(r"(\d{1,2})[/ .](\d{1,2})[/ .](\d{4})", text):
            day, month, year = (int(p) for p in m.groups())
        else:
            raise ValueError(text)
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"Enter the {label} date as a real date, like 2026-12-01 or 1/12/2026") from None


def read_filter(args: Mapping[str, str]) -> AuditFilter:
    """The filter of a query string (``person``, ``action``, ``object_type``,
    ``object_id``, ``since``, ``until``). Refuses (``FilterInvalid``, by
    field) a date that is not a real date, a range that ends before it
    starts, an action or object kind that is not a code of letters, digits,
    dots and underscores, and any value over 100 characters."""
    shown = {name: str(args.get(name, "")).strip() for name in
             ("person", "action", "object_type", "object_id", "since", "until")}
    problems: dict[str, str] = {}
    for name, value in shown.items():
        if len(value) > MAX_FILTER:
            problems[name] = f"Enter {MAX_FILTER} characters or fewer"
    for name, label in (("action", "action"), ("object_type", "object kind")):
        if name not in problems and not _CODE.fullmatch(shown[name].lower()):
            problems[name] = f"Enter the {label} as its code, such as referral.offered or referral"
    days: dict[str, date | None] = {}
    for name, label in (("since", "from"), ("until", "to")):
        days[name] = None
        if shown[name] and name not in problems:
            try:
                days[name] = _day(shown[name], label)
            except ValueError as error:
                problems[name] = str(error)
    since, until = days["since"], days["until"]
    if since and until and until < since:
        problems["until"] = "The to date must be the same as or after the from date"
    if problems:
        raise FilterInvalid(problems, shown)
    return AuditFilter(person=shown["person"], action=shown["action"].lower(),
                       object_type=shown["object_type"].lower(), object_id=shown["object_id"], since=since,
                       until=until)


def _london_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=LONDON).astimezone(UTC)


def events(wanted: AuditFilter, *, tenant_id: int | None) -> Select[tuple[AuditEvent]]:
    """The events ``wanted``, newest first: of the force ``tenant_id`` alone,
    or (None) of the whole platform. Run it with the reader's scope set."""
    statement = select(AuditEvent)
    if tenant_id is not None:
        statement = statement.where(AuditEvent.tenant_id == tenant_id)
    if wanted.person:
        statement = statement.where(matching(wanted.person, AuditEvent.actor_email))  # type: ignore[arg-type]
    if wanted.action:
        statement = statement.where((AuditEvent.action == wanted.action)
                                    | AuditEvent.action.startswith(wanted.action.rstrip(".") + ".", autoescape=True))
    if wanted.object_type:
        statement = statement.where(AuditEvent.object_type == wanted.object_type)
    if wanted.object_id:
        statement = statement.where(AuditEvent.object_id == wanted.object_id)
    if wanted.since:
        statement = statement.where(AuditEvent.occurred_at >= _london_midnight(wanted.since))
    if wanted.until:
        statement = statement.where(AuditEvent.occurred_at < _london_midnight(wanted.until + timedelta(days=1)))
    return statement.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id)


CSV_HEADER = ("When (Europe/London)", "Person", "Email address", "What happened", "Action code", "Object",
              "Object id", "Force", "Details", "IP address")


def _cell(value: str) -> str:
    """A cell a spreadsheet will show as text, never run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_lines(statement: Select[tuple[AuditEvent]], *, name_of: NameOf, force_of: NameOf) -> Iterator[str]:
    """The CSV of ``statement``'s events, a header then a line at a time,
    read from the database in batches (never the whole log in memory).
    ``name_of`` gives a person's name by user id, ``force_of`` a force's by id."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(c) for c in cells])
        return buffer.getvalue()

    yield line(CSV_HEADER)
    result = db.session.execute(statement.execution_options(yield_per=CSV_BATCH))
    for event in result.scalars():
        yield line((
            event.occurred_at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M:%S"),
            person_words(event, name_of), event.actor_email or "", action_words(event.action, event.details),
            event.action,
            object_words(event.object_type), event.object_id or "",
            (force_of(event.tenant_id) or "") if event.tenant_id is not None else "",
            details_words(event.details, limit=2000, name_of=name_of), event.ip_address or "",
        ))


def person_words(event: AuditEvent, name_of: NameOf) -> str:
    """Who acted, in words: the person's name, the address typed at a refused
    sign-in, or the platform itself (a command, a job, an API token)."""
    if event.actor_id is not None:
        return name_of(event.actor_id) or event.actor_email or "A person"
    if event.actor_email:
        return f"{event.actor_email} (not signed in)"
    return "The platform or a system's token"
