"""Providers, their courses, and the offerings each force makes of them.

Providers and courses are global on purpose: one provider serves many forces
from one login, and one catalogue serves every force. Offerings are owned by
the force that makes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from diversion.db import Base, TenantScoped, UTCDateTime, utcnow


class Provider(Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Course(Base):
    """A course a provider delivers; shared by every force that offers it."""

    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"), index=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    sessions: Mapped[int]
    description: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    provider: Mapped[Provider] = relationship()


class Offering(TenantScoped, Base):
    """A force offers a course for one of its pathways."""

    __tablename__ = "offerings"
    __tenant_table_args__ = (UniqueConstraint("tenant_id", "course_id", "pathway"),)

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"))
    pathway: Mapped[str] = mapped_column(String(63))
    notes: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    course: Mapped[Course] = relationship()

    @classmethod
    def provider_criteria(cls, provider_id: int) -> ColumnElement[bool]:
        """A provider sees every force's offerings of its own courses (which forces it serves)."""
        return cls.course_id.in_(select(Course.id).where(Course.provider_id == provider_id))
