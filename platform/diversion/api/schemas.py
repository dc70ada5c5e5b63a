"""What the force API reads and writes: pydantic models, and the OpenAPI document's schemas.

Requests are strict (no coercion, no unknown keys), so the JSON Schema in
the OpenAPI document says exactly what is accepted; text follows the
case-work rulebook (``jsonapi.schemas.text``). The facts an encounter may carry are
made from the national field catalogue, less the facts the platform works
out itself, so the API follows the catalogue without being edited.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from diversion.cases.models import State
from diversion.cases.rules import DERIVED_FACTS
from diversion.eligibility.fields import FIELDS, Kind
from diversion.eligibility.fields import Field as CatalogueField
from diversion.eligibility.models import Outcome
from diversion.jsonapi.schemas import (
    Answer,
    Moment,
    Reason,
    Request,
    SessionIn,
    SessionOut,
    TransitionOut,
    one_of,
    text,
)
from diversion.monitoring import ETHNICITIES

MAX_PAGE = 500
Name = Annotated[str, text("surname", min_length=1)]
PncId = Annotated[str, text("pnc_id")]
Phone = Annotated[str, text("phone")]
Email = Annotated[str, text("email")]
Address = Annotated[str, text("address")]


Ethnicity = one_of(tuple(ETHNICITIES))


# ---------------------------------------------------------------- requests

class PersonIn(Request):
    """Who the person is. Used only to find them again in this force (a keyed
    hash) and sealed at rest; never returned by the API."""

    surname: Name
    given_name: Name
    date_of_birth: date
    pnc_id: PncId | None = Field(default=None, description="Police National Computer ID, when the person has one.")


class ContactIn(Request):
    """How a provider can reach the person; shared with a referral only."""

    phone: Phone = ""
    email: Email = ""
    address: Address = ""


def _fact_type(field: CatalogueField) -> Any:
    if field.kind is Kind.INT:
        return Annotated[int, Field(ge=field.minimum)] if field.minimum is not None else int
    if field.kind is Kind.BOOL:
        return bool
    choice = one_of(field.values)
    if field.kind is Kind.CHOICE:
        return choice
    return Annotated[list[choice], Field(max_length=len(field.values))]  # type: ignore[valid-type]


# Null or left out: the fact is not known (the decision may then need review).
FactsIn: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "FactsIn",
    __config__=ConfigDict(strict=True, extra="forbid"),
    __doc__="The case facts the officer knows, from the national field catalogue. A fact left out "
            "or null is unknown; for a list (substances, aggravating factors) an empty list means none, "
            "and null or left out means not known yet. Age, earlier diversions and the offence's age are "
            "worked out by the platform and refused here.",
    **{
        name: (_fact_type(field) | None, Field(default=None, description=field.meaning))
        for name, field in FIELDS.items() if name not in DERIVED_FACTS
    },
)


class EncounterIn(Request):
    """An encounter to record and decide with the policy in force today."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "person": {"surname": "Example", "given_name": "Alex", "date_of_birth": "1996-03-14"},
        "contact": {"phone": "07700 900123", "email": "", "address": ""},
        "ethnicity": "NS",
        "offence_on": "2026-11-01",
        "facts": {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
                  "user_dealer": False, "admission": "admitted", "aggravating_factors": [],
                  "resident_in_force_area": True, "stage": "street"},
    }]})

    person: PersonIn
    contact: ContactIn = Field(default_factory=ContactIn)
    ethnicity: Ethnicity = Field(  # type: ignore[valid-type]
        description="Self-defined ethnicity (16+1 categories), or NS: not stated. "
                    "For equality monitoring only, never an input to the decision.")
    offence_on: date = Field(description="The date of the offence; not in the future.")
    facts: FactsIn  # type: ignore[valid-type]


class ReferralIn(Request):
    """A referral of the decision's person to a course the force offers for its pathway."""

    offering_id: uuid.UUID
    reason: Reason = ""


class TransitionIn(Request):
    """Move a referral on. Ending it (not completed, withdrawn) needs a reason. Booked
    is reached by booking a session (``session``); attended, or missed, by recording
    that the person came, or did not, to a booked session (``session_id``, else the
    earliest that has started). Missed waits for another session to be booked; a
    miss beyond the force's missed sessions allowed, or at the deadline, ends the
    referral as not completed instead (the answer's state says which)."""

    to: State
    reason: Reason = ""
    session: SessionIn | None = Field(default=None, description="With `to: booked`: the session to book.")
    session_id: uuid.UUID | None = Field(
        default=None, description="With `to: attended` or `to: missed`: the booked session attended, or missed "
                                  "(default: the earliest that has started and awaits its attendance).")


class ReferralQuery(BaseModel):
    """The query string of the referral list (strings, so not strict; nothing unknown)."""

    model_config = ConfigDict(extra="forbid")

    state: State | None = None
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=1_000_000)


# ---------------------------------------------------------------- responses

class Unmet(Answer):
    pathway: str | None = Field(description="The pathway, or null for an exclusion.")
    criterion: str
    reason: str


class Override(Answer):
    outcome: Outcome
    pathway: str | None
    reason: str
    at: Moment | None


class DecisionOut(Answer):
    """An eligibility decision with its reasons, as stored: re-running it gives the same answer."""

    id: uuid.UUID
    encounter_id: uuid.UUID | None
    reference: str | None = Field(description="The case's reference in the force (e.g. WM-2026-004217); null "
                                              "for a historic decision with no case.")
    decided_on: date
    outcome: Outcome = Field(description="What the policy decided.")
    pathway: str | None
    unmet: list[Unmet] = Field(description="Every criterion or exclusion that was not met.")
    missing: list[str] = Field(description="Facts the decision needs and did not have (needs review).")
    policy_version: int
    policy_hash: str
    override: Override | None = Field(description="A supervisor's override, which then stands.")
    final_outcome: Outcome = Field(description="The outcome that stands: the override's, else the policy's.")
    final_pathway: str | None
    superseded_by_id: uuid.UUID | None = Field(
        description="The decision made again in this one's place once the facts it waited for were given; "
                    "null while this one stands.")


class EncounterOut(Answer):
    id: uuid.UUID
    reference: str = Field(description="The case's reference in the force (e.g. WM-2026-004217): short, for "
                                       "people; the URL takes it in place of the id.")
    person_id: uuid.UUID = Field(description="The person's pseudonymous key in this force.")
    offence_on: date
    recorded_at: Moment
    source: str
    facts: dict[str, Any] = Field(description="The facts as they were given.")


class EncounterRecord(Answer):
    encounter: EncounterOut
    decision: DecisionOut | None = Field(description="The decision that stands (the latest, if the case was "
                                                     "decided again).")


class CaseOutcome(Answer):
    code: str | None
    label: str | None


class ReferralOut(Answer):
    id: uuid.UUID
    encounter_id: uuid.UUID
    reference: str = Field(description="The case's reference in the force (e.g. WM-2026-004217).")
    offering_id: uuid.UUID
    pathway: str
    state: State
    deadline: date
    sessions_required: int
    sessions_attended: int
    outcome: CaseOutcome | None = Field(description="The case outcome once the referral has ended.")
    created_at: Moment
    updated_at: Moment
    transitions: list[TransitionOut]
    sessions: list[SessionOut] = Field(description="The sessions booked, earliest first, with their attendance.")


class ReferralPage(Answer):
    referrals: list[ReferralOut]
    limit: int
    offset: int
    next_offset: int | None = Field(description="The offset of the next page, or null on the last.")


class TransitionRecord(Answer):
    transition: TransitionOut
    referral: ReferralOut


class CourseOut(Answer):
    id: int
    slug: str
    title: str
    sessions: int
    provider: str


class OfferingOut(Answer):
    id: uuid.UUID
    pathway: str
    course: CourseOut


class OfferingList(Answer):
    offerings: list[OfferingOut]
