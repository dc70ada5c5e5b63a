"""Providers, their courses, and the offerings each force makes of them.

Providers and courses are global on purpose: one provider serves many forces
from one login, and one catalogue serves every force. Offerings are owned by
the force that makes them.

Rows seeded from ``tenants/catalogue.toml`` (and a force's ``[[offerings]]``)
are kept in line with the file by ``diversion tenants sync`` until someone
changes them in the console: from then on ``edited_in_console`` is set and
the sync leaves the row alone (and says so). Nothing is ever deleted by a
sync; a course is retired and an offering withdrawn instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, ForeignKey, String, UniqueConstraint, false, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from diversion.catalogue.vocabulary import CourseFormat, Delivery
from diversion.db import Base, TenantScoped, UTCDateTime, utcnow
from diversion.words import WELSH, in_language


class Provider(Base):
    """An organisation that delivers courses (a charity, an NHS trust, a team)."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    website: Mapped[str] = mapped_column(String(300), default="", server_default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="", server_default="")
    edited_in_console: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def _list(*values: str) -> Any:
    return lambda: list(values)


class Course(Base):
    """A course a provider delivers; shared by every force that offers it.

    ``kinds`` are national pathway kinds, ``delivery`` and ``languages``
    validated lists, ``areas`` police force area addresses (see
    ``catalogue.vocabulary``). ``max_age`` None means no upper limit. A
    retired course takes no new offerings or referrals; its referrals go on.
    """

    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"), index=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    format: Mapped[str] = mapped_column(String(30), default=CourseFormat.GROUP.value,
                                        server_default=CourseFormat.GROUP.value)
    sessions: Mapped[int]
    session_minutes: Mapped[int] = mapped_column(default=60, server_default="60")
    delivery: Mapped[list[str]] = mapped_column(JSON, default=_list(Delivery.IN_PERSON.value))
    min_age: Mapped[int] = mapped_column(default=18, server_default="18")
    max_age: Mapped[int | None]
    languages: Mapped[list[str]] = mapped_column(JSON, default=_list("en"))
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(String(2000), default="")
    # The same in Welsh, for a course offered in Welsh (required then: ``files.CourseEntry``).
    title_cy: Mapped[str | None] = mapped_column(String(200))
    description_cy: Mapped[str | None] = mapped_column(String(2000))
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    edited_in_console: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    provider: Mapped[Provider] = relationship()

    @property
    def offered_in_welsh(self) -> bool:
        return WELSH in self.languages

    def title_in(self, language: str) -> str:
        """The title in ``language``, where the course has it; else the English."""
        return in_language(self.title, self.title_cy, language)

    def description_in(self, language: str) -> str:
        return in_language(self.description, self.description_cy, language)

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None


class Offering(TenantScoped, Base):
    """A force offers a course for one of its pathways, with its local details.

    A withdrawn offering (or one whose course is retired) takes no new
    referrals; referrals already made go on.
    """

    __tablename__ = "offerings"
    __tenant_table_args__ = (UniqueConstraint("tenant_id", "course_id", "pathway"),)

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"))
    pathway: Mapped[str] = mapped_column(String(63))
    venues: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    booking_contact: Mapped[str] = mapped_column(String(300), default="", server_default="")
    notes: Mapped[str] = mapped_column(String(1000), default="")
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    edited_in_console: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    course: Mapped[Course] = relationship()

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool]:
        """A provider sees every force's offerings of its own courses (which forces it serves)."""
        return cls.course_id.in_(select(Course.id).where(Course.provider_id == provider_id))

    @property
    def takes_referrals(self) -> bool:
        return self.withdrawn_at is None and not self.course.is_retired
