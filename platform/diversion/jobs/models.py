"""A job's run as the platform records it: what it is, how far it has got, how it ended.

The job library keeps its own queue (``diversion.jobs``); this row is the
platform's own account of each run, on every database, for operators and
pages to read while the job is still going. Platform rows: no force's data.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from diversion.db import Base, UTCDateTime, utcnow


class RunState(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobRun(Base):
    """One run of a job: ``done`` of ``total`` steps so far (``total`` unknown
    until the job has counted its work), and a short ``note`` of where it is: a
    line for operators at the command line (``diversion jobs list``), in English
    as the logs are. Pages say a run's progress from ``done`` and ``total``."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(100))
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[RunState] = mapped_column(
        Enum(RunState, native_enum=False, length=20, values_callable=lambda kinds: [k.value for k in kinds]),
        default=RunState.RUNNING)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None]
    note: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
