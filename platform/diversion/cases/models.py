"""People, encounters, referrals (their steps packed in them) and booked sessions (all force-owned).

Provider staff reach these rows only through their provider's referrals:
each model's ``provider_criteria`` says which rows (the ORM guard applies
it in provider scope; the PostgreSQL policies in the migration say the
same), and ``provider_may_write`` which rows they may create or change.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    ColumnElement,
    Date,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    exists,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from diversion.accounts.access import CaseSystem
from diversion.cases.steps import pack, step_key, unpack
from diversion.db import Base, TenantScoped, UTCDateTime, tenant_foreign_key, utcnow
from diversion.eligibility.packed import PackedFacts
from diversion.words import day, moment


def _enum(kind: type[enum.StrEnum]) -> Enum:
    return Enum(kind, native_enum=False, length=20, values_callable=lambda members: [m.value for m in members])


class State(enum.StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    BOOKED = "booked"
    ATTENDED = "attended"
    MISSED = "missed"  # a session missed: waiting for another to be booked
    COMPLETED = "completed"
    NOT_COMPLETED = "not_completed"
    WITHDRAWN = "withdrawn"

    @property
    def label(self) -> str:
        return str(_STATE_LABELS[self])

    @property
    def is_open(self) -> bool:
        return self not in FINAL_STATES


_STATE_LABELS = {
    State.OFFERED: _l("Offered"), State.ACCEPTED: _l("Accepted"), State.DECLINED: _l("Declined"),
    State.BOOKED: _l("Booked"), State.ATTENDED: _l("Attended"), State.MISSED: _l("Missed a session"),
    State.COMPLETED: _l("Completed"), State.NOT_COMPLETED: _l("Not completed"), State.WITHDRAWN: _l("Withdrawn"),
}
FINAL_STATES = frozenset({State.DECLINED, State.COMPLETED, State.NOT_COMPLETED, State.WITHDRAWN})
OPEN_STATES: tuple[State, ...] = tuple(state for state in State if state not in FINAL_STATES)
# The open referrals as SQL, with the states written into the statement: the predicate of the partial
# indexes of open referrals by due date, which PostgreSQL uses only for a query that says the same.
_OPEN_SQL = text("state IN ({})".format(", ".join(f"'{state.value}'" for state in OPEN_STATES)))
_COMPLETED_SQL = text("completed_at IS NOT NULL")  # the partial index of the referrals completed
_BY_OFFICER_SQL = text("recorded_by_id IS NOT NULL")  # the partial index of the cases officers recorded
# Where each state may go next. Booking and attendance repeat while sessions remain: each
# booked session is a step (to booked), and so is each attended one (to attended), and each
# one missed (to missed, waiting for another session to be booked, while the force allows).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.OFFERED: frozenset({State.ACCEPTED, State.DECLINED, State.NOT_COMPLETED, State.WITHDRAWN}),
    State.ACCEPTED: frozenset({State.BOOKED, State.NOT_COMPLETED, State.WITHDRAWN}),
    State.BOOKED: frozenset({State.BOOKED, State.ATTENDED, State.MISSED, State.NOT_COMPLETED, State.WITHDRAWN}),
    State.ATTENDED: frozenset({State.ATTENDED, State.BOOKED, State.MISSED, State.COMPLETED, State.NOT_COMPLETED,
                               State.WITHDRAWN}),
    State.MISSED: frozenset({State.BOOKED, State.ATTENDED, State.MISSED, State.NOT_COMPLETED, State.WITHDRAWN}),
}


@dataclass(frozen=True)
class Transition:
    """One step of a referral's life: the state it left and reached, who moved it (a person,
    ``actor_id``, or a case system through the API, ``by_system``; neither: the platform itself),
    when, and why (the words a person gave, ``reason``, and what the platform said of it, ``why``
    with its ``why_details``: read both as ``account``).

    Kept packed in its referral (``Referral.steps``, ``cases.steps``), never as a row of its own;
    read from its referral (``Referral.transitions``), it knows the referral and its place among
    the referral's steps, which make its ``id`` (``steps.step_key``; ``key``: the key a step kept
    from before steps were packed).
    """

    from_state: State | None
    to_state: State
    occurred_at: datetime
    actor_id: int | None = None
    by_system: CaseSystem | None = None
    reason: str = ""
    why: Why | None = None
    why_details: dict[str, Any] | None = None
    key: uuid.UUID | None = None
    referral_id: uuid.UUID | None = field(default=None, compare=False)
    position: int = field(default=0, compare=False)

    @property
    def id(self) -> uuid.UUID:
        if self.referral_id is None:
            raise ValueError("a step has its key once it is one of its referral's steps")
        return step_key(self.referral_id, self.position, self.key)

    @property
    def account(self) -> str:
        """What the step says, in the reader's language (``told``)."""
        return told(self.why, self.why_details, self.reason)


class PackedSteps(TypeDecorator[tuple[Transition, ...]]):
    """A referral's steps, packed (``steps.pack``) on the way in and unpacked on the way out."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Sequence[Transition] | None, dialect: Dialect) -> bytes | None:
        return None if value is None else pack(value)

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> tuple[Transition, ...] | None:
        if value is None:
            return None
        return tuple(Transition(State(came_from) if came_from else None, State(to), at, actor,
                                CaseSystem(system) if system else None, reason, Why(why) if why else None,
                                details, key)
                     for came_from, to, at, actor, system, reason, why, details, key in unpack(bytes(value)))


class Person(TenantScoped, Base):
    """A person as one force knows them: a pseudonymous key, identity sealed."""

    __tablename__ = "people"
    __tenant_table_args__ = (
        UniqueConstraint("tenant_id", "name_key"),
        Index(None, "tenant_id", "pnc_key"),
        Index(None, "tenant_id", "search_key"),
        Index(None, "tenant_id", "birth_key"),
    )

    # Keyed hashes, 16 bytes each (``cases.identity.person_keys``).
    name_key: Mapped[bytes] = mapped_column(LargeBinary(16))
    pnc_key: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    # Blind indexes for search (``cases.identity.search_keys``): surname with
    # date of birth, and date of birth alone. None until indexed (people
    # recorded before search existed: ``diversion cases index-people``).
    search_key: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    birth_key: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    identity_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    contact_sealed: Mapped[bytes] = mapped_column(LargeBinary)  # empty: no contact details
    ethnicity: Mapped[str] = mapped_column(String(2))
    # The language the person prefers to be spoken to in ("en" or "cy"), asked at intake by a
    # force that works in Welsh; None where it was not asked. Their provider reads it too.
    language: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool]:
        """A provider sees the people referred to it (their contact details are for it)."""
        return _held_by_provider(provider_id, "person_id", cls.tenant_id, cls.id)


# Where an encounter came from (``Encounter.source``; its decision says the same): an officer's page, a
# force's case system through the API, the import of a record of the past, or the demo.
INTAKE, API, IMPORTED, DEMO = "intake", "api", "import", "demo"


class Encounter(TenantScoped, Base):
    """One time the force dealt with a person for a drug offence: a case.

    ``reference`` is the case's short name in the force (``cases.references``).
    The case's standing decision is copied on the row (``outcome``,
    ``pathway``) by the services that decide and override, so that the
    force's cases list filters and counts from this table and its indexes
    (filters on referrals start from the referrals' own indexes).
    """

    __tablename__ = "encounters"
    __tenant_from_parent__ = True  # its person holds the force
    __tenant_table_args__ = (
        tenant_foreign_key("people", "person_id"),
        Index(None, "tenant_id", "reference", unique=True),
        Index(None, "tenant_id", "person_id", "offence_on"),
        Index(None, "tenant_id", "offence_on"),
        # The decision and pathway filters' indexes hold their column alone: entries of one value
        # share one key (deduplicated), a few bytes each; a page of them walks the reference index
        # and skips the rest. An officer's cases are few among many: their index keeps the
        # reference, so that a page of them is read in order (found and sorted, it took 7x longer).
        # It holds the cases an officer recorded alone: those a case system sent or an import brought
        # have no officer to be filtered on.
        Index(None, "tenant_id", "outcome"),
        Index(None, "tenant_id", "pathway"),
        Index("ix_encounters_officer_tenant_id_recorded_by_id_reference", "tenant_id", "recorded_by_id", "reference",
              postgresql_where=_BY_OFFICER_SQL, sqlite_where=_BY_OFFICER_SQL),
    )

    reference: Mapped[str] = mapped_column(String(24))
    person_id: Mapped[uuid.UUID]
    offence_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    facts: Mapped[dict[str, Any]] = mapped_column(PackedFacts())  # as the officer entered them, packed
    source: Mapped[str] = mapped_column(String(16), default=INTAKE)
    # The standing decision: its outcome and pathway (an override's, when there is one).
    outcome: Mapped[str | None] = mapped_column(String(16))
    pathway: Mapped[str | None] = mapped_column(String(63))

    person: Mapped[Person] = relationship()  # not view-only: a flush writes the person before the encounter

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool]:
        """A provider sees the encounters its referrals came from (not their facts on any page)."""
        return _held_by_provider(provider_id, "encounter_id", cls.tenant_id, cls.id)


class Referral(TenantScoped, Base):
    """A referral of a person to a course after an eligible (or overridden) decision."""

    __tablename__ = "referrals"
    __tenant_from_parent__ = True  # its encounter holds the force
    __tenant_table_args__ = (
        tenant_foreign_key("encounters", "encounter_id"),
        tenant_foreign_key("people", "person_id"),
        tenant_foreign_key("offerings", "offering_id"),
        Index(None, "tenant_id", "state", "deadline"),
        Index(None, "tenant_id", "person_id"),
        Index(None, "tenant_id", "encounter_id"),
        Index(None, "provider_id", "state", "deadline"),
        Index(None, "provider_id", "deadline", "id"),
        Index(None, "tenant_id", "offering_id", "deadline"),
        # Every referral of the force by due date, then id (the referrals list's order, whole): a page
        # is read in order however many share a due date, where found by date and sorted it grew with them.
        Index(None, "tenant_id", "deadline", "id"),
        # Open referrals by due date (the overdue lists and counts), of the force and of the provider.
        Index("ix_referrals_open_tenant_id_deadline", "tenant_id", "deadline", "id",
              postgresql_where=_OPEN_SQL, sqlite_where=_OPEN_SQL),
        Index("ix_referrals_open_provider_id_deadline", "provider_id", "deadline", "id",
              postgresql_where=_OPEN_SQL, sqlite_where=_OPEN_SQL),
        # The referrals completed, by when (the home page's "completed this month"): those alone.
        Index("ix_referrals_completed_tenant_id_completed_at", "tenant_id", "completed_at",
              postgresql_where=_COMPLETED_SQL, sqlite_where=_COMPLETED_SQL),
    )

    encounter_id: Mapped[uuid.UUID]
    person_id: Mapped[uuid.UUID]
    offering_id: Mapped[uuid.UUID]
    # The provider of the offering's course, copied when referring: the key of
    # the provider scope (guard and row-level security), and of its list.
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"))
    pathway: Mapped[str] = mapped_column(String(63))
    state: Mapped[State] = mapped_column(_enum(State), default=State.OFFERED)
    deadline: Mapped[date] = mapped_column(Date)
    sessions_required: Mapped[int]
    sessions_attended: Mapped[int] = mapped_column(default=0)
    # The case outcome once the referral ends: the force's code and what it means.
    outcome_code: Mapped[str | None] = mapped_column(String(40))
    outcome_label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Its steps, in the order they happened, packed (``Transition``); and when it was completed, for
    # the home page's "completed this month".
    steps: Mapped[tuple[Transition, ...]] = mapped_column(PackedSteps(), default=lambda: ())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    encounter: Mapped[Encounter] = relationship(viewonly=True)
    offering: Mapped[Any] = relationship("Offering", viewonly=True)
    sessions: Mapped[list[BookedSession]] = relationship(
        viewonly=True, order_by="BookedSession.starts_at")

    @property
    def transitions(self) -> list[Transition]:
        """Its steps in order, each knowing its referral and place (and so its ``id``)."""
        return [replace(step, referral_id=self.id, position=number) for number, step in enumerate(self.steps or ())]

    def take(self, step: Transition) -> Transition:
        """Add ``step`` after the referral's steps (its state is the caller's to change); returns it as
        ``transitions`` will read it."""
        self.steps = (*(self.steps or ()), step)
        if step.to_state is State.COMPLETED:
            self.completed_at = step.occurred_at
        return replace(step, referral_id=self.id, position=len(self.steps) - 1)

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool]:
        return cls.provider_id == provider_id

    @classmethod
    def still_open(cls) -> ColumnElement[bool]:
        """The referral is open (not declined, completed, not completed or withdrawn), said as the partial
        indexes of open referrals say it (the states as literals), so that PostgreSQL can use them."""
        return cls.state.in_(bindparam("open_states", [s.value for s in OPEN_STATES], expanding=True,
                                       literal_execute=True))

    def provider_may_write(self, provider_id: int) -> bool:
        """Only the provider's own referral, never a new one, never moved to another provider."""
        if inspect(self).pending:
            return False
        history = inspect(self).attrs.provider_id.history
        original = history.deleted[0] if history.deleted else self.provider_id
        return original == provider_id and self.provider_id == provider_id


def _held_by_provider(provider_id: int, column: str, tenant_id: Any, value: Any) -> ColumnElement[bool]:
    """``EXISTS`` a referral of the provider whose ``column`` is ``value`` in the same force.

    Correlated on the force and the row (Core on an alias of ``referrals``, so unguarded twice and never
    correlated to a ``referrals`` in the outer query), so that PostgreSQL looks up the few rows a page
    shows in the referrals' (force, column) indexes instead of gathering every referral of the provider.
    The subquery's ``OFFSET 0`` keeps PostgreSQL from turning the ``EXISTS`` into a join that may start
    from the referrals whenever it thinks the provider holds few: a page of 100 rows then read all the
    provider's referrals (27 ms at 4,000 referrals, growing with them, against 1 ms looked up row by row).
    """
    held = Referral.__table__.alias("held")
    return exists(select(held.c.id).where(held.c.tenant_id == tenant_id, held.c[column] == value,
                                          held.c.provider_id == provider_id).offset(0))


def _referral_of_provider(row: Any, provider_id: int) -> bool:
    """Whether a child row's referral is one of the provider's."""
    session = object_session(row)
    if session is None:
        return False
    with session.no_autoflush:
        referral = session.get(Referral, row.referral_id)
    return referral is not None and referral.provider_id == provider_id


class Why(enum.StrEnum):
    """What the platform itself says of a step it writes. The step keeps this code and its
    details (``Transition.why_details``), never the sentence: ``told`` draws the sentence
    in the reader's language.

    Details: booked, attended and did not attend have the session's ``starts_at`` (ISO,
    UTC) and ``venue``; did not attend, when it ends the referral, has ``ending`` (an
    ``Ending``) with the ``missed`` and ``allowed`` sessions or the ``deadline`` (ISO);
    all attended has ``sessions``; deadline passed has ``deadline``; imported has the
    ``file`` and the ``row`` the step came from.
    """

    OFFERED = "offered"  # a referral made without a reason typed
    ACCEPTED = "accepted"  # by the provider, without a reason typed
    BOOKED = "booked"
    ATTENDED = "attended"
    DID_NOT_ATTEND = "did_not_attend"
    ALL_ATTENDED = "all_attended"  # completed by the provider without a note
    DEADLINE_PASSED = "deadline_passed"  # ended by the nightly job
    IMPORTED = "imported"  # written by an import of historic records


class Ending(enum.StrEnum):
    """Why a missed session ends a referral (``rules.after_missing``)."""

    NONE_ALLOWED = "none_allowed"
    TOO_MANY_MISSED = "too_many_missed"
    DEADLINE = "deadline"


def ending_sentence(details: dict[str, Any]) -> str:
    """Why a missed session ends the referral, in the reader's language ("" when it does not)."""
    match details.get("ending"):
        case Ending.NONE_ALLOWED:
            return str(_("the force allows no missed session"))
        case Ending.TOO_MANY_MISSED:
            return str(_("%(missed)s sessions missed, more than the %(allowed)s the force allows",
                         missed=details["missed"], allowed=details["allowed"]))
        case Ending.DEADLINE:
            return str(_("the deadline, %(date)s, has passed", date=day(date.fromisoformat(details["deadline"]))))
    return ""


def told(why: Why | None, details: dict[str, Any] | None, words: str = "") -> str:
    """A step's account in the reader's language: the platform's sentence for ``why`` drawn from
    its ``details``, with the ``words`` a person gave (a note on attendance) after it; only the
    words when the platform said nothing."""
    details = details or {}
    note = f": {words}" if words else ""
    said: str
    match why:
        case None:
            return words
        case Why.OFFERED:
            said = _("Offered after the decision")
        case Why.ACCEPTED:
            said = _("Accepted by the provider")
        case Why.ALL_ATTENDED:
            said = _("All %(num)s sessions attended", num=details["sessions"])
        case Why.DEADLINE_PASSED:
            said = _("Deadline passed on %(date)s", date=day(date.fromisoformat(details["deadline"])))
        case Why.IMPORTED:
            said = _("Imported from historic records (%(file)s, row %(row)s)", file=details["file"],
                     row=details["row"])
        case _:
            when = moment(datetime.fromisoformat(details["starts_at"]))
            venue = details["venue"] or _("a place not recorded")
            if why is Why.BOOKED:
                said = _("Session booked for %(when)s at %(venue)s", when=when, venue=venue)
            elif why is Why.ATTENDED:
                said = _("Attended the session of %(when)s at %(venue)s", when=when, venue=venue)
            else:
                said = _("Did not attend the session of %(when)s at %(venue)s", when=when, venue=venue)
            if ending := ending_sentence(details):
                return said + note + str(_(". The referral ends: %(why)s", why=ending))
    return said + note


def made_by(step: Transition, people: Mapping[int, str], *, force: str, provider: Callable[[], str],
            otherwise: str) -> str:
    """Who made a step, in the reader's language: the person (by ``people``, names by user id), else
    the ``force``'s or the ``provider``'s case system (its name asked for only then), else ``otherwise``
    (the platform itself: a nightly job, an import)."""
    if step.actor_id is not None and step.actor_id in people:
        return people[step.actor_id]
    if step.by_system is CaseSystem.PROVIDER:
        return str(_("%(provider)s’s case system", provider=provider()))
    if step.by_system is CaseSystem.FORCE:
        return str(_("%(force)s’s case system", force=force))
    return otherwise


def recorded_by(encounter: Encounter, people: Mapping[int, str], *, force: str) -> str:
    """Who recorded an encounter, in the reader's language: the officer (by ``people``, names by user
    id), else the ``force``'s case system (through the API), else the import of a record of the past,
    else the platform itself (the demo)."""
    if encounter.recorded_by_id is not None and encounter.recorded_by_id in people:
        return people[encounter.recorded_by_id]
    if encounter.source == API:
        return str(_("%(force)s’s case system", force=force))
    if encounter.source == IMPORTED:
        return str(_("Import"))
    return str(_("the platform"))


class Attendance(enum.StrEnum):
    ATTENDED = "attended"
    DID_NOT_ATTEND = "did_not_attend"

    @property
    def label(self) -> str:
        return str(_l("Attended") if self is Attendance.ATTENDED else _l("Did not attend"))


class BookedSession(TenantScoped, Base):
    """A session of the course booked for a referral: when, where, and whether the person came.

    Owned by the referral's force; the provider of the referral books it and
    records the attendance (``providers.services``).
    """

    __tablename__ = "referral_sessions"
    __tenant_leaf__ = True  # no row points at one
    __tenant_from_parent__ = True  # its referral holds the force
    __tenant_table_args__ = (
        tenant_foreign_key("referrals", "referral_id"),
        Index(None, "tenant_id", "referral_id"),  # a referral's sessions (equal keys share one entry)
    )

    referral_id: Mapped[uuid.UUID]
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    venue: Mapped[str] = mapped_column(String(300))
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    booked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    attendance: Mapped[Attendance | None] = mapped_column(_enum(Attendance))
    attendance_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attendance_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool]:
        return _held_by_provider(provider_id, "id", cls.tenant_id, cls.referral_id)

    def provider_may_write(self, provider_id: int) -> bool:
        return _referral_of_provider(self, provider_id)
