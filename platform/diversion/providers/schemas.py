"""What the provider API reads and writes, and what its webhooks send (pydantic).

A provider gets what it needs to deliver the course: the referral, the
force, the course, pathway, deadline, sessions, state and history, and the
person's name and contact details, and the case's reference (to speak of
the case with the force); never the case facts, the decision, the date of
birth or any other identifier the force keeps.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from diversion.cases.models import State
from diversion.jsonapi.schemas import Answer, Moment, Reason, SessionIn, SessionOut, TransitionOut
from diversion.providers.services import PROVIDER_MOVES

MAX_FEED_PAGE = 200
ProviderMove = Literal.__getitem__(tuple(s.value for s in PROVIDER_MOVES))  # type: ignore[attr-defined]


Language = Literal["en", "cy"]  # the platform's languages (``diversion.language``)


class ForceOut(Answer):
    slug: str
    name: str


class ProviderCourseOut(Answer):
    id: int
    slug: str
    title: str
    sessions: int
    title_cy: str | None = Field(description="The course's title in Welsh, for a course offered in Welsh; "
                                             "else null.")


class PersonContactOut(Answer):
    """Whom to contact to deliver the course: shared with this referral only."""

    given_name: str
    surname: str
    phone: str
    email: str
    address: str


class ProviderReferralOut(Answer):
    id: uuid.UUID
    reference: str = Field(description="The case's reference in its force (e.g. WM-2026-004217): quote it to "
                                       "the force.")
    force: ForceOut
    course: ProviderCourseOut
    pathway: str
    state: State
    deadline: date
    sessions_required: int
    sessions_attended: int
    person: PersonContactOut | None = Field(
        description="The person's name and contact details; null only if they cannot be read.")
    language: Language | None = Field(
        description="The language the person prefers to be spoken to in: `en` (English) or `cy` (Welsh), "
                    "asked by a force that works in Welsh; null where the force did not ask.")
    created_at: Moment
    updated_at: Moment
    transitions: list[TransitionOut]
    sessions: list[SessionOut] = Field(description="The sessions booked, earliest first, with their attendance.")


class ProviderReferralPage(Answer):
    referrals: list[ProviderReferralOut] = Field(
        description="Referrals new or changed since the cursor, oldest change first; each once, as it is now.")
    next_cursor: str = Field(description="Send this as `cursor` next time: it never skips a change.")
    has_more: bool = Field(description="True when more changes are ready now: ask again at once.")


class FeedQuery(BaseModel):
    """The feed's query string (strings, so not strict; nothing unknown)."""

    model_config = ConfigDict(extra="forbid")

    cursor: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=50, ge=1, le=MAX_FEED_PAGE)


class ProviderMoveIn(BaseModel):
    """Move one of the provider's referrals on. Not completed needs a reason (deadline
    passed, condition breached...); withdrawal is the force's. Missed records that the
    person did not attend a booked session (``session_id``, else the earliest that has
    started): the referral waits for another session to be booked, or, beyond the
    force's missed sessions allowed or at the deadline, ends as not completed (the
    answer's state says which)."""

    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra={"examples": [
        {"to": "booked", "expected_state": "accepted",
     "session": {"starts_at": "2027-03-01T10:00:00Z", "venue": "Digbeth community hub"}}]})

    to: ProviderMove  # type: ignore[valid-type]
    reason: Reason = ""
    expected_state: State | None = Field(
        default=None, description="Refuse (409) unless the referral is still in this state.")
    session: SessionIn | None = Field(default=None, description="With `to: booked`: the session to book.")
    session_id: uuid.UUID | None = Field(
        default=None, description="With `to: attended` or `to: missed`: the booked session attended, or missed "
                                  "(default: the earliest that has started and awaits its attendance).")


class ProviderMoveRecord(Answer):
    transition: TransitionOut
    referral: ProviderReferralOut


# ---------------------------------------------------------------- webhooks

class WebhookData(Answer):
    referral_id: uuid.UUID
    reference: str = Field(description="The case's reference in its force (e.g. WM-2026-004217).")
    force: str = Field(description="The force's slug.")
    state: State
    previous_state: State | None = Field(description="Null for a new referral.")
    transition_id: uuid.UUID
    occurred_at: Moment
    cursor: str = Field(description="A feed cursor at this change (reading the feed from an earlier cursor "
                                    "includes it).")


class WebhookEvent(Answer):
    """The body of a webhook delivery. It names the referral (and its case's reference)
    and its new state, and carries nothing about the person: fetch the referral with a
    provider token."""

    id: uuid.UUID = Field(description="The delivery id, also in the Diversion-Delivery header: the same on "
                                      "every retry, so de-duplicate on it.")
    type: Literal["referral.created", "referral.changed", "webhook.test"] = Field(
        description="`webhook.test`: sent when you ask for a test event on your integrations page; it names "
                    "the referral your feed changed last, as it is now, and moves nothing.")
    created_at: Moment
    data: WebhookData
