"""The aggregates of the national comparison: no row here is about a person.

Global tables on purpose. The app writes them from each force's case work
(``insights.services``): first the counts (``insight_counts``, which only the
app reads), then the figures released from them, protected
(``insight_tables`` and ``insight_figures``, ``insights.release``). National
leads' pages read the released figures and the forces' names, and nothing
else, through a database login of their own (``INSIGHTS_DATABASE_URL``;
``insights.reading``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, ForeignKey, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from diversion.db import Base, UTCDateTime
from diversion.insights.metrics import MEASURES

# A force's counts of one month, in one category of one breakdown (``metrics.count_force``):
# one column per measure. Quarters and years are sums of months.
insight_counts = Table(
    "insight_counts",
    Base.metadata,
    Column("force_id", ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("month", Date, primary_key=True),
    Column("breakdown", String(16), primary_key=True),
    Column("category", String(32), primary_key=True),
    *(Column(name, Integer, nullable=False, default=0) for name in MEASURES),
)


class InsightForce(Base):
    """A force as the national comparison shows it: its name (in Welsh too, where it gives one), when its
    figures were computed, and its assumptions for police time saved (copied from the force's settings at
    each refresh)."""

    __tablename__ = "insight_forces"

    force_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_cy: Mapped[str | None] = mapped_column(String(200))  # its name in Welsh, where it gives one
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hours_saved: Mapped[int] = mapped_column()  # tenths of an hour of police time saved per referral
    cost_per_hour: Mapped[int] = mapped_column()  # pence


class InsightStale(Base):
    """A month of a force whose counts a referral change has made out of date, waiting for the
    next sweep (``services.refresh_stale``)."""

    __tablename__ = "insight_stale"

    force_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)


class InsightTable(Base):
    """One released table: a measure of one force (or of all forces, ``force_id`` None) by one
    breakdown over one calendar year (``months`` of it counted), and the fingerprint of what it was
    released from, so that an unchanged table is not protected again."""

    __tablename__ = "insight_tables"
    __table_args__ = (UniqueConstraint("force_id", "measure", "breakdown", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    force_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    measure: Mapped[str] = mapped_column(String(32))
    breakdown: Mapped[str] = mapped_column(String(16))
    year: Mapped[int] = mapped_column()
    months: Mapped[int] = mapped_column()
    fingerprint: Mapped[str] = mapped_column(String(64))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InsightFigure(Base):
    """A released figure: a category's count in a period, rounded, or None where suppressed."""

    __tablename__ = "insight_figures"

    table_id: Mapped[int] = mapped_column(ForeignKey("insight_tables.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    value: Mapped[int | None] = mapped_column()
