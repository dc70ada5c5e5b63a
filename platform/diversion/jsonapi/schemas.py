"""The shapes both APIs read and write: text types, a referral's steps, the error body.

Requests are strict (no coercion, no unknown keys), so the JSON Schema in
the OpenAPI document says exactly what is accepted. Text refuses control
characters (``diversion.inputs``) and is no longer than the case-work
rulebook allows (``cases.rules.LIMITS``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from diversion.cases.models import BookedSession, State, Transition, Why
from diversion.cases.rules import LIMITS, MULTILINE
from diversion.inputs import LINE_PATTERN, LINES_PATTERN


def text(field: str, *, min_length: int = 0) -> StringConstraints:
    """The text ``field`` of the rulebook: its length limit, without control
    characters (tab and line breaks only where it runs over lines)."""
    return StringConstraints(min_length=min_length, max_length=LIMITS[field],
                             pattern=LINES_PATTERN if field in MULTILINE else LINE_PATTERN)


Reason = Annotated[str, text("reason")]


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _in_utc(moment: datetime) -> datetime:
    # SQLite gives back times without their zone; every stored time is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


Moment = Annotated[datetime, AfterValidator(_in_utc)]


def one_of(values: tuple[str, ...]) -> Any:
    """The type of a string that must be one of ``values`` (made from data, hence not written out)."""
    return Literal.__getitem__(values)


class TransitionOut(Answer):
    """One step of a referral's lifecycle: who moved it is kept in the force's audit log."""

    id: uuid.UUID
    referral_id: uuid.UUID
    from_state: State | None = Field(serialization_alias="from")
    to_state: State = Field(serialization_alias="to")
    occurred_at: Moment
    reason: str = Field(description="What the step says: the words a person gave, after the platform's own "
                                    "sentence where it wrote one, in the language asked for (Accept-Language: "
                                    "English or Welsh; English by default)")
    why: Why | None = Field(description="The code of the platform's own sentence, when it wrote one: offered, "
                                        "accepted, booked, attended, did_not_attend, all_attended, "
                                        "deadline_passed or imported")


def transition_out(step: Transition) -> TransitionOut:
    """A step as read from its referral (``Referral.transitions``), which gives it its referral's key."""
    if step.referral_id is None:
        raise ValueError("a step is answered as read from its referral")
    return TransitionOut(id=step.id, referral_id=step.referral_id, from_state=step.from_state,
                         to_state=step.to_state, occurred_at=step.occurred_at, reason=step.account, why=step.why)


class SessionIn(Request):
    """A session to book: when it starts (with its time zone) and where."""

    starts_at: datetime = Field(description="When the session starts, with its offset, e.g. 2027-03-01T10:00:00Z.")
    venue: Annotated[str, text("venue", min_length=1)]


class SessionOut(Answer):
    """A booked session of a referral, and whether the person came."""

    id: uuid.UUID
    starts_at: Moment
    venue: str
    attendance: Literal["attended", "did_not_attend"] | None = Field(description="Null until recorded.")


def session_out(session: BookedSession) -> SessionOut:
    return SessionOut(id=session.id, starts_at=session.starts_at, venue=session.venue,
                      attendance=session.attendance.value if session.attendance else None)


class ErrorItem(Answer):
    field: str | None = Field(description="Where the problem is (dotted, as in the request), or null.")
    message: str


class ErrorBody(Answer):
    errors: list[ErrorItem] = Field(min_length=1)
