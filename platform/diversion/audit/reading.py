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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import ngettext
from flask_babel.speaklater import LazyString
from sqlalchemy import Select, select

from diversion import words
from diversion.audit.models import AuditEvent
from diversion.extensions import db
from diversion.forms import label_of
from diversion.forms import lazy_gettext as _l
from diversion.listing import matching
from diversion.tenancy.models import NonCompletionAction

LONDON = ZoneInfo("Europe/London")
MAX_FILTER = 100
CSV_BATCH = 500
# A name by id (a person's, a force's), or None when there is none.
NameOf = Callable[[int], "str | None"]
# What some events name, read for them at once (``Known``).
KnownOf = Callable[[Sequence[AuditEvent]], "Known"]

class _Words(Mapping[str, str]):
    """A table of codes and their words, each a message translated when read: in the
    reader's language in a request, in English outside one (the command line)."""

    def __init__(self, messages: Mapping[str, LazyString]) -> None:
        self._messages = dict(messages)

    def __getitem__(self, code: str) -> str:
        return str(self._messages[code])

    def __iter__(self) -> Iterator[str]:
        return iter(self._messages)

    def __len__(self) -> int:
        return len(self._messages)


class _Lowered(_Words):
    """Words of a form's choices as a value in a sentence: "the case goes to court"."""

    def __getitem__(self, code: str) -> str:
        said = super().__getitem__(code)
        return said[:1].lower() + said[1:]


# What each recorded action says, in words. Every action the platform records has its line
# (a test checks); a code not named here is shown as itself (``action_words``).
ACTIONS: Mapping[str, str] = _Words({
    "auth.signed_in": _l("Signed in"),
    "auth.signed_out": _l("Signed out"),
    "auth.sign_in_failed": _l("Sign-in refused"),
    "user.created": _l("Account created"),
    "user.password_set": _l("Password set"),
    "user.deactivated": _l("Account deactivated"),
    "user.reactivated": _l("Account reactivated"),
    "user.platform_role_granted": _l("Platform role given"),
    "membership.added": _l("Member added"),
    "membership.role_changed": _l("Member's role changed"),
    "membership.removed": _l("Member removed"),
    "invitation.created": _l("Invitation sent"),
    "invitation.mailed": _l("Invitation email sent"),
    "invitation.taken_up": _l("Invitation taken up"),
    "invitation.withdrawn": _l("Invitation withdrawn"),
    "tenant.created": _l("Force created"),
    "tenant.draft_started": _l("Draft force started"),
    "tenant.updated": _l("Force updated from its file"),
    "tenant.status_changed": _l("Force opened, suspended or reopened"),
    "tenant.settings_changed": _l("Force settings changed"),
    "tenant.exported": _l("Force configuration downloaded"),
    "tenant.policy_copied": _l("Policy copied from another force"),
    "tenant.onboarded": _l("Force set up and opened"),
    "tenant.discarded": _l("Draft force discarded"),
    "policy.draft_saved": _l("Draft policy saved"),
    "policy.draft_discarded": _l("Draft policy discarded"),
    "policy.published": _l("Policy published"),
    "encounter.recorded": _l("Encounter recorded"),
    "cases.imported": _l("Historic cases imported"),
    "cases.listed": _l("Cases list viewed"),
    "case.viewed": _l("Case viewed (name and contact details shown)"),
    "decision.recorded": _l("Decision made"),
    "decision.decided_again": _l("Decision made again"),
    "decision.overridden": _l("Decision overridden"),
    "decision.viewed": _l("Decision viewed"),
    "review.listed": _l("Decisions to review viewed"),
    "referrals.listed": _l("Referrals list viewed"),
    "referral.offered": _l("Referral offered"),
    "referral.accepted": _l("Referral accepted"),
    "referral.declined": _l("Referral declined"),
    "referral.booked": _l("Referral booked"),
    "referral.attended": _l("Session attended"),
    "referral.missed": _l("Session missed"),
    "referral.completed": _l("Referral completed"),
    "referral.not_completed": _l("Referral not completed"),
    "referral.withdrawn": _l("Referral withdrawn"),
    "session.booked": _l("Session booked"),
    "session.attendance_recorded": _l("Attendance recorded"),
    "sign_on.configured": _l("Single sign-on set up or changed"),
    "sign_on.identity_linked": _l("Single sign-on identity linked to an account"),
    "sign_on.person_provisioned": _l("Account made at a first single sign-on"),
    "catalogue.synced": _l("Catalogue updated from its file"),
    "provider.created": _l("Provider added"),
    "provider.updated": _l("Provider changed"),
    "course.created": _l("Course added"),
    "course.updated": _l("Course changed"),
    "course.retired": _l("Course retired"),
    "course.reinstated": _l("Course reinstated"),
    "offering.added": _l("Course added to those offered"),
    "offering.reopened": _l("Course offered again"),
    "offering.updated": _l("Details of a course offered changed"),
    "offering.withdrawn": _l("Course no longer offered"),
    "offerings.synced": _l("Courses offered updated from the catalogue"),
    "offerings.dropped": _l("Courses offered dropped"),
    "provider.referral_viewed": _l("Provider viewed a referral (contact details shown)"),
    "provider.referrals_listed": _l("Provider listed its referrals"),
    "provider_invitation.created": _l("Provider invitation sent"),
    "provider_invitation.mailed": _l("Provider invitation email sent"),
    "provider_invitation.taken_up": _l("Provider invitation taken up"),
    "provider_invitation.withdrawn": _l("Provider invitation withdrawn"),
    "provider_membership.added": _l("Provider staff member added"),
    "provider_membership.role_changed": _l("Provider staff member's role changed"),
    "provider_membership.removed": _l("Provider staff member removed"),
    "provider_webhook.set": _l("Provider webhook set"),
    "provider_webhook.secret_rotated": _l("Provider webhook signing secret replaced"),
    "provider_webhook.removed": _l("Provider webhook removed"),
    "provider_webhook.test_queued": _l("Provider webhook test event sent"),
    "api_token.created": _l("API token made"),
    "api_token.revoked": _l("API token revoked"),
    "provider_token.created": _l("Provider API token made"),
    "provider_token.revoked": _l("Provider API token revoked"),
    "contract.created": _l("Contract made"),
    "contract.changed": _l("Contract changed"),
})
# Families of actions a reader may ask for at once (the filter takes the start of a code).
ACTION_GROUPS: Mapping[str, str] = _Words({
    "auth": _l("Every sign-in and sign-out"), "user": _l("Every change to an account"),
    "membership": _l("Every change to a force's members"), "tenant": _l("Every change to a force"),
    "referral": _l("Every move of a referral"), "decision": _l("Every decision made, viewed or overridden"),
    "api_token": _l("Every change to an API token"),
})
OBJECTS: Mapping[str, str] = _Words({
    "tenant": _l("Force"), "user": _l("Person"), "membership": _l("Membership"), "encounter": _l("Case"),
    "decision": _l("Decision"), "referral": _l("Referral"), "api_token": _l("API token"),
    "provider_token": _l("Provider API token"), "provider": _l("Provider"), "policy_version": _l("Policy version"),
    "sign_on": _l("Single sign-on"), "offering": _l("Course offered"), "course": _l("Course"),
    "invitation": _l("Invitation"), "provider_invitation": _l("Provider invitation"),
    "provider_membership": _l("Provider staff membership"), "provider_webhook": _l("Provider webhook"),
    "contract": _l("Contract"), "import": _l("Import"),
})
_CODE = re.compile(r"[a-z0-9_.]*")


# A force's status change by where it came from and went: opened from a draft, reopened once suspended.
STATUS_WORDS: Mapping[tuple[str, str], LazyString] = {
    ("draft", "active"): _l("Force opened"), ("suspended", "active"): _l("Force reopened"),
    ("active", "suspended"): _l("Force suspended"), ("draft", "suspended"): _l("Force suspended"),
}


def action_words(action: str, details: Mapping[str, Any] | None = None) -> str:
    """An action in words (a force's status change by where it came from and went, given its
    ``details``); an action with no words of its own is named by its code."""
    if action == "tenant.status_changed" and details:
        words = STATUS_WORDS.get((str(details.get("from")), str(details.get("to"))))
        if words is not None:
            return str(words)
    if action in ACTIONS:
        return ACTIONS[action]
    return str(_("Action recorded as %(code)s", code=action))


def object_words(object_type: str | None) -> str:
    """An object's kind in words ("" for none; a kind with no words, its code)."""
    if not object_type:
        return ""
    return OBJECTS.get(object_type, object_type.replace("_", " "))


_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Details not worth a reader's eye: fingerprints of content (a file's among them).
_HIDDEN = frozenset({"hash", "content_hash", "secret_hash", "sha256"})

# The names of the details the platform records, in words; a detail not named here is
# shown by its code.
_KEYS: Mapping[str, str] = _Words({
    "person": _l("person"), "case": _l("case"), "role": _l("role"), "reason": _l("reason"), "why": _l("why"),
    "method": _l("how"), "how": _l("how"), "outcome": _l("outcome"), "pathway": _l("pathway"),
    "source": _l("source"), "decision": _l("decision"), "was": _l("outcome before"),
    "waited_for": _l("waited for"), "given": _l("answers given"), "policy_version": _l("policy version"),
    "version": _l("policy version"), "effective_from": _l("in force from"), "course": _l("course"),
    "session": _l("session"), "starts_at": _l("starts at"), "venue": _l("venue"),
    "attendance": _l("attendance"), "file": _l("file"), "sha256": _l("file fingerprint"), "rows": _l("rows"),
    "new_people": _l("new people"), "decisions": _l("decisions"), "referrals": _l("referrals"),
    "cases": _l("cases"), "searched": _l("searched"), "filtered": _l("filtered"), "state": _l("state"),
    "overdue": _l("overdue"), "page": _l("page"), "contact_details_shown": _l("contact details shown"),
    "provider": _l("provider"), "provider_id": _l("provider"), "delivery": _l("delivery"),
    "url": _l("address"), "new_secret": _l("new signing secret"), "token": _l("token"),
    "prefix": _l("token prefix"), "slug": _l("web address name"), "name": _l("name"), "fields": _l("fields changed"),
    "dropped": _l("dropped"), "offerings": _l("courses offered"), "sessions_ended": _l("sessions ended"),
    "issuer": _l("issuer"), "client_id": _l("client ID"), "compulsory": _l("compulsory"),
    "created": _l("newly set up"), "invitation": _l("invitation"), "provider_invitation": _l("invitation"),
    "email": _l("email address"), "replaced": _l("invitations replaced"), "forces": _l("forces"),
    "changed": _l("changed"), "kept": _l("kept"), "added": _l("added"), "starts_on": _l("starts on"),
    "ends_on": _l("ends on"), "monthly_fee_pence": _l("monthly fee"), "vat": _l("VAT"),
    "platform_fee_basis_points": _l("platform fee"), "prices": _l("prices"),
    "generated": _l("generated"), "seed": _l("seed"), "retention_months": _l("retention months"),
    "languages": _l("languages"), "note": _l("what changed"), "name_cy": _l("name in Welsh"),
    "scheme_name": _l("scheme name"), "completed_code": _l("code on completion"),
    "completed_label": _l("what the code on completion means"),
    "completed_label_cy": _l("what the code on completion means, in Welsh"),
    "not_completed_code": _l("code on non-completion"),
    "not_completed_label": _l("what the code on non-completion means"),
    "not_completed_label_cy": _l("what the code on non-completion means, in Welsh"),
    "not_completed_action": _l("what happens when a person does not complete"),
})
# Stored codes with words of their own, by the detail that holds them; any other value is
# shown as it was stored.
_ROLES: Mapping[str, LazyString] = {
    "platform_admin": _l("platform admin"), "force_admin": _l("force admin"), "officer": _l("officer"),
    "supervisor": _l("supervisor"), "provider_staff": _l("provider staff"), "national_lead": _l("national lead"),
}
_OUTCOMES: Mapping[str, LazyString] = {
    "eligible": _l("eligible"), "not_eligible": _l("not eligible"), "needs_review": _l("needs review"),
}
_STATUSES: Mapping[str, LazyString] = {"draft": _l("draft"), "active": _l("active"), "suspended": _l("suspended")}
_STATES: Mapping[str, LazyString] = {
    "offered": _l("offered"), "accepted": _l("accepted"), "declined": _l("declined"), "booked": _l("booked"),
    "attended": _l("attended"), "missed": _l("missed a session"), "completed": _l("completed"),
    "not_completed": _l("not completed"), "withdrawn": _l("withdrawn"), "any": _l("any"),
}
_VALUES: Mapping[str, Mapping[str, str]] = {
    "role": _Words(_ROLES),
    "from": _Words({**_ROLES, **_OUTCOMES, **_STATUSES}),
    "to": _Words({**_ROLES, **_OUTCOMES, **_STATUSES}),
    "outcome": _Words(_OUTCOMES), "was": _Words(_OUTCOMES),
    "state": _Words(_STATES), "referrals": _Words(_STATES), "decisions": _Words(_OUTCOMES),
    "attendance": _Words({"attended": _l("attended"), "did_not_attend": _l("did not attend")}),
    "why": _Words({
        "offered": _l("offered without a reason typed"), "accepted": _l("accepted without a reason typed"),
        "booked": _l("session booked"), "attended": _l("session attended"),
        "did_not_attend": _l("session not attended"), "all_attended": _l("every session attended"),
        "deadline_passed": _l("deadline passed"), "imported": _l("imported from historic records"),
    }),
    "reason": _Words({
        "credentials": _l("wrong email address or password"), "inactive": _l("account deactivated"),
        "sso_compulsory": _l("the force signs in with single sign-on only"),
        "malformed": _l("not an email address"),
    }),
    "method": _Words({"password": _l("password"), "sso": _l("single sign-on")}),
    "how": _Words({"password": _l("password"), "invitation": _l("invitation"),
                   "first_sign_in": _l("first sign-in")}),
    "source": _Words({"intake": _l("encounter recorded"), "api": _l("recorded through the API"),
                      "import": _l("imported"), "demo": _l("demo")}),
    "languages": _Words({"en": _l("English"), "cy": _l("Welsh")}),
    "not_completed_action": _Lowered({action.value: label_of(action) for action in NonCompletionAction}),
}


# Details that hold an amount in pence.
_MONEY = frozenset({"monthly_fee_pence", "price_pence"})


def moment_words(moment: datetime) -> str:
    """A moment in Europe/London's time and the reader's language: "25 September 2026 10:00"."""
    return words.moment(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def short_id(value: str) -> str:
    """A short reference for a row's id: its last eight digits. Keys are made in time order
    (``db.new_id``): their first digits are the moment they were made, which the rows made in
    the same minute share; their last are random."""
    return value[-8:]


def _text_value(value: str) -> str:
    """A short reference for an id (as the object column shows it), a time in
    Europe/London, a code in words, other text as it is."""
    if _UUID.fullmatch(value):
        return short_id(value)
    if _DAY.fullmatch(value):
        try:
            return words.day(date.fromisoformat(value))
        except ValueError:
            return value
    if _MOMENT.fullmatch(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return moment_words(moment)
    return value.replace("_", " ") if _CODE.fullmatch(value) else value


def _value(value: Any, key: str = "") -> str:
    if isinstance(value, str) and value:
        known = _VALUES.get(key, {})
        return known[value] if value in known else _text_value(value)
    if value is None or value == "":
        return str(_("not set"))
    if (said := _measured(value, key)) is not None:
        return said
    if isinstance(value, list):
        return _list(value, key)
    if isinstance(value, dict):  # counts by code (decisions by outcome, referrals by state) and the like
        known = _VALUES.get(key, {})
        return "; ".join(f"{known[k] if k in known else _key(k)} {_value(v)}" for k, v in value.items())
    return str(value)


def _measured(value: Any, key: str) -> str | None:
    """Yes or no, money and shares in their units ("£1,500.00", "2.5%") and the referrals a
    list showed counted ("24 referrals", never their ids); None for any other detail."""
    if isinstance(value, bool):
        return str(_("yes")) if value else str(_("no"))
    if isinstance(value, int) and not isinstance(value, bool) and key in _MONEY:
        return words.money(value)
    if isinstance(value, int) and not isinstance(value, bool) and key == "platform_fee_basis_points":
        return f"{words.percent(value)}%"
    if isinstance(value, list) and key == "referrals":
        return words.counted(len(value), "referral")
    return None


def _list(value: list[Any], key: str) -> str:
    """A short list in full, a longer one counted."""
    if len(value) <= 3:
        return ", ".join(_value(v, key) for v in value)
    return str(ngettext("%(count)s item", "%(count)s items", len(value), count=len(value)))


def detail_name(key: str) -> str:
    """A detail's name in words, as the audit log says it (a setting's, in a "Saved:" message too)."""
    return _key(key)


def _key(key: str) -> str:
    return _KEYS.get(key, key.replace("_", " "))


def _detail(key: str, value: Any) -> str:
    return f"{_key(key)}: {_value(value, key)}"


@dataclass(frozen=True)
class Known:
    """What the events of a page (or of a batch of the CSV) name by id or code, read for
    all of them at once: people by user id; forces, courses and providers by id and by
    slug; each force's pathways by id (as its published policies name them); booked
    sessions by id (when they start). What is not known is said without its id."""

    people: Mapping[int, str] = field(default_factory=dict)
    forces: Mapping[int | str, str] = field(default_factory=dict)
    courses: Mapping[int | str, str] = field(default_factory=dict)
    providers: Mapping[int | str, str] = field(default_factory=dict)
    pathways: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    sessions: Mapping[str, datetime] = field(default_factory=dict)

    def pathway(self, force: int | None, pathway: str) -> str:
        """A pathway's name as the force's policy names it; else its id in words."""
        names = self.pathways.get(force, {}) if force is not None else {}
        return names.get(pathway) or _text_value(pathway)


NOTHING_KNOWN = Known()
# Details that hold the id of another row the event's other words already say (the decision
# of a case recorded, a webhook test's delivery): left out of the words, kept in the log.
_ROW_IDS = frozenset({"decision", "delivery"})
_DROPPED = re.compile(r"(?P<course>[a-z0-9-]+) for (?P<pathway>.+)")


def _named(key: str, value: Any, known: Known, force: int | None, action: str) -> str | None:
    """A detail that names a row by its id or code, in words (None: not such a detail, or a row
    not known)."""
    if key == "dropped" and isinstance(value, list) and len(value) <= 3:
        return ", ".join(_dropped_words(str(each), known, force) for each in value)
    if key == "prices" and isinstance(value, dict):
        return "; ".join(f"{_price_words(str(k), known, force)}: {_value(v, 'price_pence')}" for k, v in value.items())
    if key == "forces" and isinstance(value, list):
        return ", ".join(known.forces.get(v, _value(v)) for v in value)
    if key == "pathway" and isinstance(value, str):
        return known.pathway(force, value)
    sessions = {k: moment_words(v) for k, v in known.sessions.items()} if key == "session" else {}
    created: dict[str, Mapping[Any, str]] = {"course.created": known.courses, "provider.created": known.providers}
    by_key: dict[str, Mapping[Any, str]] = {
        "course": known.courses, "provider": known.providers, "provider_id": known.providers, "session": sessions,
        "slug": created.get(action, {})}
    names = by_key.get(key, {})
    return names.get(value) if isinstance(value, int | str) else None


def _dropped_words(dropped: str, known: Known, force: int | None) -> str:
    """A course offered that was dropped, stored as ``<course slug> for <pathway id>``, in words."""
    m = _DROPPED.fullmatch(dropped)
    if m is None:
        return _value(dropped)
    return str(_("%(course)s for %(pathway)s", course=known.courses.get(m["course"], m["course"]),
                 pathway=known.pathway(force, m["pathway"])))


def _price_words(code: str, known: Known, force: int | None) -> str:
    """A contract's price by its code, ``course_completed:divert``: "course completed for DIVERT (adults)"."""
    kind, _sep, pathway = code.partition(":")
    said = _value(kind)
    return str(_("%(course)s for %(pathway)s", course=said, pathway=known.pathway(force, pathway))) if pathway else said


def _left_out(key: str, value: Any, known: Known) -> bool:
    """Whether a detail is not worth showing: an id the event's other words already say, no
    invitation replaced, a session not known."""
    an_id = isinstance(value, str) and _UUID.fullmatch(value) is not None
    return (key in _ROW_IDS and an_id) or (key == "replaced" and value == []) or \
        (key == "session" and an_id and value not in known.sessions)


def _detail_part(key: str, value: Any, known: Known, force: int | None, action: str) -> str | None:
    """One detail in words; None for one not worth showing (``_left_out``)."""
    if _left_out(key, value, known):
        return None
    if key == "replaced" and isinstance(value, list):
        return str(ngettext("replaces %(count)s earlier invitation to the same address",
                            "replaces %(count)s earlier invitations to the same address", len(value),
                            count=len(value)))
    if key in ("invitation", "provider_invitation") and isinstance(value, str) and _UUID.fullmatch(value):
        return str(_("through an invitation"))
    if key == "ends_on" and value is None and action.startswith("contract."):
        open_ended = _("until further notice")
        return f"{_key(key)}: {open_ended}"
    named = _named(key, value, known, force, action)
    if named is None:
        return _detail(key, value)
    return f"{_key('name' if key == 'slug' else key)}: {named}"


def details_words(details: Mapping[str, Any] | None, *, limit: int = 240, known: Known = NOTHING_KNOWN,
                  action: str = "", force: int | None = None) -> str:
    """An event's details as a short sentence: before and after side by side,
    from and to as a move, a person, a course, a provider, a pathway (as the
    force ``force``'s policy names it) and a force by name (``known``), lists
    counted when long, content fingerprints and ids the rest already says
    left out; never the raw JSON. ``action`` is the event's: a policy copied
    names the force it came from, a decision made again the outcome it replaced."""
    if not details:
        return ""
    details = {k: v for k, v in details.items() if k not in _HIDDEN
               and not (k == "session" and "starts_at" in details)}  # a session booked: when it starts says it
    if isinstance(details.get("user_id"), int):
        details = {("person" if k == "user_id" else k):
                   (known.people.get(v) or str(_("a person")) if k == "user_id" else v) for k, v in details.items()}
    parts: list[str] = []
    before, after = details.get("before"), details.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        parts += [f"{_key(k)}: {_value(before.get(k), k)} → {_value(after.get(k), k)}" for k in after]
    if "from" in details and "to" in details:
        parts.append(str(_("from %(before)s to %(after)s", before=_value(details["from"], "from"),
                           after=_value(details["to"], "to"))))
    elif action == "tenant.policy_copied" and isinstance(details.get("from"), str):
        parts.append(str(_("copied from %(force)s", force=known.forces.get(details["from"], details["from"]))))
    elif isinstance(details.get("from"), str) and _UUID.fullmatch(details["from"]):
        details = {k: v for k, v in details.items() if k != "from"}  # the decision made again: "was" says it
    parts += [part for k, v in details.items() if k not in ("before", "after", "from", "to")
              and (part := _detail_part(k, v, known, force, action)) is not None]
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


def _day(text: str, which: str) -> date:
    """A day written 2026-12-01 or 1/12/2026 (or 1 12 2026); refuses anything else.
    ``which`` is the end of the range it is: ``since`` or ``until``."""
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
        if which == "since":
            raise ValueError(_("Enter the from date as a real date, like 2026-12-01 or 1/12/2026")) from None
        raise ValueError(_("Enter the to date as a real date, like 2026-12-01 or 1/12/2026")) from None


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
            problems[name] = str(_("Enter %(count)s characters or fewer", count=MAX_FILTER))
    if "action" not in problems and not _CODE.fullmatch(shown["action"].lower()):
        problems["action"] = str(_("Enter the action as its code, such as referral.offered or referral"))
    if "object_type" not in problems and not _CODE.fullmatch(shown["object_type"].lower()):
        problems["object_type"] = str(_("Enter the object kind as its code, such as referral or encounter"))
    days: dict[str, date | None] = {}
    for name in ("since", "until"):
        days[name] = None
        if shown[name] and name not in problems:
            try:
                days[name] = _day(shown[name], name)
            except ValueError as error:
                problems[name] = str(error)
    since, until = days["since"], days["until"]
    if since and until and until < since:
        problems["until"] = str(_("The to date must be the same as or after the from date"))
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


# The CSV's columns, in the reader's language (English outside a request).
CSV_HEADER: tuple[LazyString, ...] = (
    _l("When (Europe/London)"), _l("Person"), _l("Email address"), _l("What happened"), _l("Action code"),
    _l("Object"), _l("Object id"), _l("Force"), _l("Details"), _l("IP address"))


def _cell(value: str) -> str:
    """A cell a spreadsheet will show as text, never run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_lines(statement: Select[tuple[AuditEvent]], *, known_of: KnownOf) -> Iterator[str]:
    """The CSV of ``statement``'s events, a header then a line at a time,
    read from the database in batches (never the whole log in memory).
    ``known_of`` reads what a batch's events name (people, forces, courses...)
    at once for the batch."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(c) for c in cells])
        return buffer.getvalue()

    yield line(str(heading) for heading in CSV_HEADER)
    result = db.session.execute(statement.execution_options(yield_per=CSV_BATCH))
    for batch in result.scalars().partitions():
        known = known_of(batch)
        for event in batch:
            yield line((
                event.occurred_at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M:%S"),
                person_words(event, known.people.get), event.actor_email or "",
                action_words(event.action, event.details), event.action,
                object_words(event.object_type), event.object_id or "",
                known.forces.get(event.tenant_id, "") if event.tenant_id is not None else "",
                details_words(event.details, limit=2000, known=known, action=event.action, force=event.tenant_id),
                event.ip_address or "",
            ))


def person_words(event: AuditEvent, name_of: NameOf) -> str:
    """Who acted, in words: the person's name, the address typed at a refused
    sign-in, or the platform itself (a command, a job, an API token)."""
    if event.actor_id is not None:
        return name_of(event.actor_id) or event.actor_email or str(_("A person"))
    if event.actor_email:
        return str(_("%(email)s (not signed in)", email=event.actor_email))
    return str(_("The platform or a system's token"))
