"""The case-work rulebook: the same answer wherever a case comes in.

An officer's intake page, the force API, the CSV import and the demo all
record cases by these rules, and the provider's doors move referrals by
them: what an intake must be, how long each text may be, the facts the
platform works out, the values of a decision's and a referral's row, and
the path a referral takes through its lifecycle to a given state.

Plain functions of their arguments: no database, no request. The services
(``cases.services``) apply them to one case at a time, the importer to a
file of thousands, the forms and the API schemas take their limits from
here, so that one rule is written once.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from diversion.cases.identity import Contact, Identity, normalise_pnc
from diversion.cases.models import TRANSITIONS, Ending, State
from diversion.db import new_id
from diversion.eligibility.engine import Assessment
from diversion.eligibility.fields import FIELDS
from diversion.eligibility.models import PolicyVersion
from diversion.inputs import EARLIEST_BIRTH, EARLIEST_CASE_DATE, case_date_problem, date_of_birth_problem, text_problem
from diversion.monitoring import ETHNICITIES, age_band
from diversion.tenancy.models import Tenant
from diversion.words import WELSH
from diversion.words import day as words_day

# Facts the platform works out itself; an officer never types them.
DERIVED_FACTS = ("age", "previous_diversions", "previous_non_engagement", "offence_age_days")
# A referral that got this far counts as an earlier diversion.
DIVERTED_STATES = frozenset({State.ACCEPTED, State.BOOKED, State.ATTENDED, State.MISSED, State.COMPLETED,
                             State.NOT_COMPLETED})
# ...and one that ended so counts as not engaging.
NOT_ENGAGED_STATES = frozenset({State.NOT_COMPLETED, State.DECLINED})
REOFFENDING_DAYS = 365
# The longest text each input may hold, wherever it is typed or sent.
LIMITS: Mapping[str, int] = {
    "surname": 100, "given_name": 100, "pnc_id": 20, "phone": 40, "email": 254, "address": 500,
    "reason": 1000, "venue": 300,
}
MULTILINE = frozenset({"address", "reason"})  # the texts that may run over several lines
NAMES = {"surname": "surname", "given_name": "given name", "pnc_id": "PNC ID", "phone": "phone number",
         "email": "email address", "address": "address", "reason": "reason", "venue": "venue",
         "date_of_birth": "date of birth", "offence_on": "offence date", "decided_on": "decision date"}
REASON_REQUIRED = frozenset({State.NOT_COMPLETED, State.WITHDRAWN})
# How many sessions a person may miss (each then rebooked) before the referral ends as not
# completed: a force setting (``Tenant.settings``), this unless the force chose otherwise.
MISSED_SESSIONS_SETTING = "missed_sessions_allowed"
MISSED_SESSIONS_ALLOWED = 1
MISSED_SESSIONS_BOUNDS = (0, 10)


@dataclass(frozen=True)
class Broken:
    """One rule an input breaks: the field at fault and the problem, as a phrase
    for a list of problems ("offence_on: cannot be in the future").

    ``predicate``: the phrase says something of the field, and a sentence
    names it ("The offence date cannot be in the future."); otherwise the
    phrase is a sentence of its own ("Enter the person's surname.").
    """

    field: str
    problem: str
    predicate: bool = True
    said: str = ""  # the whole sentence, where the rule words it itself (translated)

    @property
    def sentence(self) -> str:
        """The problem as a sentence, for a form or the API."""
        if self.said:
            return self.said
        if self.predicate:
            return f"The {NAMES.get(self.field, self.field.replace('_', ' '))} {self.problem}."
        return f"{self.problem[:1].upper()}{self.problem[1:]}."


# A date of an intake out of its range, in the reader's language: (before its earliest, in the future).
_DATE_SAID = {
    "offence_on": (_l("The offence date must be on or after %(date)s."),
                   _l("The offence date cannot be in the future.")),
    "decided_on": (_l("The decision date must be on or after %(date)s."),
                   _l("The decision date cannot be in the future.")),
    "date_of_birth": (_l("The date of birth must be on or after %(date)s."),
                      _l("The date of birth cannot be in the future.")),
}


def date_broken(field: str, day: date, today: date) -> Broken | None:
    """The rule a date of an intake breaks (``offence_on``, ``decided_on`` or ``date_of_birth``): before
    the earliest date taken, or in the future; None when it breaks none."""
    problem = (date_of_birth_problem if field == "date_of_birth" else case_date_problem)(day, today)
    if problem is None:
        return None
    early, future = _DATE_SAID[field]
    earliest = EARLIEST_BIRTH if field == "date_of_birth" else EARLIEST_CASE_DATE
    return Broken(field, problem, said=str(future) if day > today else early % {"date": words_day(earliest)})


@dataclass(frozen=True)
class Intake:
    """What an officer (or a file, or a force's system) records about one encounter."""

    identity: Identity
    contact: Contact
    ethnicity: str
    offence_on: date
    facts: dict[str, Any]
    language: str | None = None  # the language the person prefers, where the force asks (``en``, ``cy``)


# ---------------------------------------------------------------- text

def text_broken(field: str, value: str) -> Broken | None:
    """Whether ``value`` breaks the rules for the text ``field``: control
    characters (line breaks too where one line is expected) or its length."""
    problem = text_problem(value, multiline=field in MULTILINE)
    if problem is not None:
        return Broken(field, problem)
    if len(value) > LIMITS[field]:
        return Broken(field, f"must be {LIMITS[field]} characters or fewer, not {len(value)}")
    return None


# ---------------------------------------------------------------- intake

def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def texts_broken(surname: str, given_name: str, pnc_id: str, contact: Contact) -> list[Broken]:
    """Every rule the texts of an intake break: names missing, texts too long or
    with control characters, a PNC ID with no letters or digits."""
    broken = [found for field, value in (("surname", surname), ("given_name", given_name), ("pnc_id", pnc_id),
                                         ("phone", contact.phone), ("email", contact.email),
                                         ("address", contact.address))
              if (found := text_broken(field, value)) is not None]
    for field, value in (("surname", surname), ("given_name", given_name)):
        if not value.strip():
            broken.append(Broken(field, _("enter the person's surname") if field == "surname"
                                 else _("enter the person's given name"), predicate=False))
    if pnc_id and not normalise_pnc(pnc_id):
        broken.append(Broken("pnc_id", _("this is not a PNC ID: leave it empty when not known"), predicate=False))
    return broken


def intake_broken(intake: Intake, *, decided_on: date, today: date) -> list[Broken]:
    """Every rule ``intake`` breaks when decided on ``decided_on``: those of its
    texts (``texts_broken``), a date of birth before 1900, in the future, not before
    the offence or making the person under 10 then, an offence date before
    2000, in the future or after the decision, a decision date before 2000 or
    in the future, an ethnicity outside the 16+1 categories, and derived
    facts given by hand."""
    identity = intake.identity
    broken = texts_broken(identity.surname, identity.given_name, identity.pnc_id or "", intake.contact)
    for field, day in (("offence_on", intake.offence_on), ("decided_on", decided_on),
                       ("date_of_birth", identity.date_of_birth)):
        if (wrong := date_broken(field, day, today)) is not None:
            broken.append(wrong)
    if decided_on < intake.offence_on <= today:
        broken.append(Broken("offence_on", f"is after the decision date ({decided_on.isoformat()})",
                             said=_("The offence date is after the decision date (%(date)s).",
                                    date=decided_on.isoformat())))
    if identity.date_of_birth >= intake.offence_on:
        broken.append(Broken("date_of_birth", "must be before the offence date",
                             said=_("The date of birth must be before the offence date.")))
    elif age_on(identity.date_of_birth, intake.offence_on) < FIELDS["age"].minimum:  # type: ignore[operator]
        broken.append(Broken("date_of_birth", _("under 10 on the offence date: below the age of criminal "
                                                "responsibility"), predicate=False))
    if intake.ethnicity not in ETHNICITIES:
        broken.append(Broken("ethnicity", _("choose one of the 16+1 ethnicity categories, or 'Not stated'"),
                             predicate=False))
    given_derived = sorted(set(intake.facts) & set(DERIVED_FACTS))
    if given_derived:
        broken.append(Broken(given_derived[0], _("this fact is worked out by the platform; leave it out"),
                             predicate=False))
    return broken


def history_facts(earlier: Iterable[State]) -> dict[str, Any]:
    """Earlier diversions in the force, from the states of the person's earlier referrals."""
    states = list(earlier)
    return {
        "previous_diversions": sum(state in DIVERTED_STATES for state in states),
        "previous_non_engagement": any(state in NOT_ENGAGED_STATES for state in states),
    }


def derived_facts(intake: Intake, *, decided_on: date, earlier: Iterable[State]) -> dict[str, Any]:
    """The facts the platform knows: age on the offence date, the offence's age
    on the decision date, and earlier diversions (``earlier``: the states of the
    person's referrals for offences up to this one)."""
    return {
        "age": age_on(intake.identity.date_of_birth, intake.offence_on),
        "offence_age_days": (decided_on - intake.offence_on).days,
        **history_facts(earlier),
    }


def decision_values(tenant: Tenant, assessment: Assessment, version: PolicyVersion, *, ethnicity: str,
                    actor_id: int | None, source: str, encounter_id: uuid.UUID | None,
                    unmet: list[str] | None = None) -> dict[str, Any]:
    """The columns of the stored decision of an assessment: its facts (packed by the
    column, ``eligibility.packed``), policy version, outcome and pathway, the ids of
    its unmet criteria (``unmet`` when worked out already, for many at once, on
    columns) and its missing facts; every criterion's result is worked out again
    from these (``Decision.results``), so re-running it gives the same answer."""
    return {
        "id": new_id(), "tenant_id": tenant.id, "policy_version_id": version.id,
        "decided_on": assessment.decided_on, "facts": assessment.facts,
        "outcome": assessment.outcome, "pathway": assessment.pathway,
        "unmet": assessment.unmet_ids() if unmet is None else unmet,
        "missing": list(assessment.missing), "age_band": age_band(assessment.facts.get("age")),
        "ethnicity": ethnicity, "source": source, "decided_by_id": actor_id, "encounter_id": encounter_id,
    }


# ---------------------------------------------------------------- referrals

def referral_values(*, tenant: Tenant, encounter_id: uuid.UUID, person_id: uuid.UUID, offering_id: uuid.UUID,
                    provider_id: int, pathway: str, deadline_days: int, sessions: int,
                    offered_on: date) -> dict[str, Any]:
    """The columns of a new referral, offered on ``offered_on``: the pathway sets
    its deadline (``deadline_days`` from the day it is offered, whenever it is
    recorded), the course it is made to how many sessions it needs
    (``sessions``: ``Course.sessions``, never the pathway's count)."""
    return {
        "id": new_id(), "tenant_id": tenant.id, "encounter_id": encounter_id, "person_id": person_id,
        "offering_id": offering_id, "provider_id": provider_id, "pathway": pathway, "state": State.OFFERED,
        "deadline": offered_on + timedelta(days=deadline_days), "sessions_required": sessions,
        "sessions_attended": 0,
    }


def outcome_of(tenant: Tenant, to: State) -> tuple[str | None, str | None]:
    """The case outcome (the force's code and its meaning) when a referral ends in ``to``;
    none for a withdrawn referral."""
    if to is State.COMPLETED:
        return tenant.completed_code, tenant.completed_label
    if to in (State.NOT_COMPLETED, State.DECLINED):
        return tenant.not_completed_code, tenant.not_completed_label
    return None, None


def outcome_named(label: str | None, code: str | None, tenant: Tenant, language: str) -> str:
    """An outcome as a page names it in ``language``: for a reader of Welsh, the force's Welsh
    for the outcome's ``code`` where it gives one; else the ``label`` kept with it ("" for none)."""
    if language == WELSH and code is not None:
        welsh = {tenant.completed_code: tenant.completed_label_cy,
                 tenant.not_completed_code: tenant.not_completed_label_cy}.get(code)
        if welsh:
            return welsh
    return label or ""


def missed_sessions_allowed(tenant: Tenant) -> int:
    """How many sessions the force lets a person miss and still rebook (its setting, else 1)."""
    value = (tenant.settings or {}).get(MISSED_SESSIONS_SETTING)
    low, high = MISSED_SESSIONS_BOUNDS
    return value if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high \
        else MISSED_SESSIONS_ALLOWED


def missed_sessions_broken(value: object) -> Broken | None:
    """Why ``value`` cannot be the force's number of missed sessions allowed, or None."""
    low, high = MISSED_SESSIONS_BOUNDS
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        return Broken(MISSED_SESSIONS_SETTING, _("enter the number of missed sessions allowed as a whole number "
                                                 "from %(low)s to %(high)s", low=low, high=high), predicate=False)
    return None


def after_missing(missed: int, *, allowed: int, deadline: date, on: date) -> tuple[State, dict[str, Any]]:
    """Where a referral goes when a session is missed (``missed``: how many sessions the
    person has now missed, this one included, ``on`` the day it is recorded): back to
    waiting for a booking (missed), or, past the force's ``allowed`` missed sessions or
    once the referral's ``deadline`` has passed, not completed, with why (the ``ending``
    details of the step, ``models.ending_sentence``)."""
    if missed > allowed:
        if allowed == 0:
            return State.NOT_COMPLETED, {"ending": Ending.NONE_ALLOWED.value}
        return State.NOT_COMPLETED, {"ending": Ending.TOO_MANY_MISSED.value, "missed": missed, "allowed": allowed}
    if on > deadline:
        return State.NOT_COMPLETED, {"ending": Ending.DEADLINE.value, "deadline": deadline.isoformat()}
    return State.MISSED, {}


@cache  # the moves never change; an import asks for every referral
def _shortest(start: State, goal: State) -> tuple[State, ...]:
    """The shortest chain of legal moves from ``start`` to ``goal`` (breadth first over ``TRANSITIONS``)."""
    came_from: dict[State, State] = {}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state is goal:
            chain: list[State] = []
            while state is not start:
                chain.append(state)
                state = came_from[state]
            return tuple(reversed(chain))
        for following in sorted(TRANSITIONS.get(state, ())):
            if following not in came_from and following is not start:
                came_from[following] = state
                queue.append(following)
    raise ValueError(f"a referral cannot go from {start.value} to {goal.value}")


ENDED_UNFINISHED = frozenset({State.NOT_COMPLETED, State.WITHDRAWN})  # may end after sessions attended


def path_to(goal: State, *, sessions: int, via: State | None = None, attended: int = 0) -> tuple[State, ...]:
    """The moves that take a new (offered) referral to ``goal``, the shortest
    legal way, through ``via`` when given.

    A referral that ends unfinished had been taken up (one the person
    refused is declined): not completed goes through accepted. Reaching
    completed, each of the course's ``sessions`` is booked and attended.
    Missed (a session missed, waiting for another) goes through booked.
    A referral that ended unfinished (``ENDED_UNFINISHED``) after ``attended``
    sessions had each of them booked and attended first. Refuses
    (``ValueError``) sessions attended by any other ending, or as many as the
    course has (that referral completed).
    """
    if attended:
        if goal not in ENDED_UNFINISHED or not 0 < attended < sessions:
            raise ValueError(f"a {goal.value} referral of {sessions} sessions cannot have attended {attended}")
        return (*_shortest(State.OFFERED, State.ACCEPTED), *(State.BOOKED, State.ATTENDED) * attended, goal)
    if via is None and goal is State.NOT_COMPLETED:
        via = State.ACCEPTED
    legs = _shortest(State.OFFERED, via) + _shortest(via, goal) if via is not None else _shortest(State.OFFERED,
                                                                                               goal)
    if goal is not State.COMPLETED:
        return legs
    before = legs[:legs.index(State.BOOKED)]
    return (*before, *(State.BOOKED, State.ATTENDED) * sessions, State.COMPLETED)


def move_broken(state: State, to: State, *, reason: str, sessions_attended: int,
                sessions_required: int, explained: bool = False) -> Broken | None:
    """Why a referral in ``state`` cannot move to ``to`` now, or None.

    Refuses a move the lifecycle does not allow (naming the moves it does),
    completion before every session is attended, attendance beyond the
    sessions required, and ending a referral without a reason (unless the
    platform gives it: ``explained``).
    """
    allowed = TRANSITIONS.get(state, frozenset())
    if to not in allowed:
        options = ", ".join(sorted(s.label.lower() for s in allowed))
        if not options:
            return Broken("state", _("a referral that is %(state)s cannot become %(to)s; it can become nothing: "
                                     "it has ended", state=state.label.lower(), to=to.label.lower()), predicate=False)
        return Broken("state", _("a referral that is %(state)s cannot become %(to)s; it can become %(options)s",
                                 state=state.label.lower(), to=to.label.lower(), options=options), predicate=False)
    if to is State.ATTENDED and sessions_attended >= sessions_required:
        return Broken("state", _("all %(num)s sessions are already attended: record completion", num=sessions_required),
                      predicate=False)
    if to is State.COMPLETED and sessions_attended < sessions_required:
        return Broken("state", _("%(attended)s of %(required)s sessions are attended so far: book and record "
                                 "attendance at the rest first", attended=sessions_attended,
                                 required=sessions_required), predicate=False)
    if to in REASON_REQUIRED and not reason.strip() and not explained:
        return Broken("reason", _("give the reason (did not attend, deadline passed, condition breached...)"),
                      predicate=False)
    return None


def session_details(starts_at: datetime, venue: str) -> dict[str, Any]:
    """The details of a step about a session (booked, attended, missed: ``models.Why``)."""
    return {"starts_at": starts_at.astimezone(UTC).isoformat(), "venue": venue}

