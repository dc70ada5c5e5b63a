"""People, encounters, referrals and their transitions (all force-owned)."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from diversion.db import Base, TenantScoped, UTCDateTime, tenant_foreign_key, utcnow


def _enum(kind: type[enum.StrEnum]) -> Enum:
    return Enum(kind, native_enum=False, length=20, values_callable=lambda members: [m.value for m in members])


class Person(TenantScoped, Base):
    """A person as one force knows them: a pseudonymous key, identity sealed."""

    __tablename__ = "people"
    __tenant_table_args__ = (UniqueConstraint("tenant_id", "name_key"), Index(None, "tenant_id", "pnc_key"))

    name_key: Mapped[str] = mapped_column(String(64))
    pnc_key: Mapped[str | None] = mapped_column(String(64))
    identity_sealed: Mapped[str] = mapped_column(Text)
    contact_sealed: Mapped[str] = mapped_column(Text)
    ethnicity: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Encounter(TenantScoped, Base):
    """One time the force dealt with a person for a drug offence."""

    __tablename__ = "encounters"
    __tenant_table_args__ = (
        tenant_foreign_key("people", "person_id"),
        Index(None, "tenant_id", "person_id", "offence_on"),
    )

    person_id: Mapped[uuid.UUID]
    offence_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)  # as the officer entered them
    source: Mapped[str] = mapped_column(String(16), default="intake")

    person: Mapped[Person] = relationship(viewonly=True)


class State(enum.StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    BOOKED = "booked"
    ATTENDED = "attended"
    COMPLETED = "completed"
    NOT_COMPLETED = "not_completed"
    WITHDRAWN = "withdrawn"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()

    @property
    def is_open(self) -> bool:
        return self not in FINAL_STATES


FINAL_STATES = frozenset({State.DECLINED, State.COMPLETED, State.NOT_COMPLETED, State.WITHDRAWN})
# Where each state may go next. Attendance repeats while sessions remain.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.OFFERED: frozenset({State.ACCEPTED, State.DECLINED, State.NOT_COMPLETED, State.WITHDRAWN}),
    State.ACCEPTED: frozenset({State.BOOKED, State.NOT_COMPLETED, State.WITHDRAWN}),
    State.BOOKED: frozenset({State.ATTENDED, State.NOT_COMPLETED, State.WITHDRAWN}),
    State.ATTENDED: frozenset({State.ATTENDED, State.BOOKED, State.COMPLETED, State.NOT_COMPLETED,
                               State.WITHDRAWN}),
}


class Referral(TenantScoped, Base):
    """A referral of a person to a course after an eligible (or overridden) decision."""

    __tablename__ = "referrals"
    __tenant_table_args__ = (
        tenant_foreign_key("encounters", "encounter_id"),
        tenant_foreign_key("people", "person_id"),
        tenant_foreign_key("offerings", "offering_id"),
        Index(None, "tenant_id", "state", "deadline"),
        Index(None, "tenant_id", "person_id"),
        Index(None, "tenant_id", "encounter_id"),
    )

    encounter_id: Mapped[uuid.UUID]
    person_id: Mapped[uuid.UUID]
    offering_id: Mapped[uuid.UUID]
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

    encounter: Mapped[Encounter] = relationship(viewonly=True)
    offering: Mapped[Any] = relationship("Offering", viewonly=True)
    transitions: Mapped[list[Transition]] = relationship(
        viewonly=True, order_by="Transition.occurred_at")


class Transition(TenantScoped, Base):
    """One step of a referral's life: who moved it, when, and why."""

    __tablename__ = "referral_transitions"
    __tenant_table_args__ = (
        tenant_foreign_key("referrals", "referral_id"),
        Index(None, "tenant_id", "referral_id", "occurred_at"),
    )

    referral_id: Mapped[uuid.UUID]
    from_state: Mapped[State | None] = mapped_column(_enum(State))
    to_state: Mapped[State] = mapped_column(_enum(State))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    reason: Mapped[str] = mapped_column(String(1000), default="")
