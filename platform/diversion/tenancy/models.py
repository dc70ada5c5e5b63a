"""Forces (tenants). The table is global on purpose: it is the root of scope."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from diversion.db import Base, UTCDateTime, utcnow
from diversion.forms import lazy_gettext as _l
from diversion.words import in_language


def _enum(kind: type[enum.StrEnum]) -> Enum:
    return Enum(kind, native_enum=False, length=40, values_callable=lambda members: [m.value for m in members])


class ForceStatus(enum.StrEnum):
    """Where a force is in its life on the platform: its pages serve its
    members only while it is active."""

    DRAFT = "draft"  # being set up, not yet open to its members
    ACTIVE = "active"
    SUSPENDED = "suspended"  # closed to its members for now; nothing is deleted


class NonCompletionAction(enum.StrEnum):
    """What a force does when a diverted person does not complete."""

    NO_FURTHER_ACTION = "no_further_action"
    PROSECUTION = "prosecution"
    CHARGE_BY_POSTAL_REQUISITION = "charge_by_postal_requisition"
    COURT = "court"

    @property
    def label(self) -> str:
        """What the force does, in words (as the force's forms and the audit log say it)."""
        return str(_ACTION_LABELS[self])


_ACTION_LABELS = {
    NonCompletionAction.PROSECUTION: _l("Prosecution resumes"),
    NonCompletionAction.CHARGE_BY_POSTAL_REQUISITION: _l("Charge by postal requisition"),
    NonCompletionAction.COURT: _l("The case goes to court"),
    NonCompletionAction.NO_FURTHER_ACTION: _l("No further action"),
}

SMALL_WORDS = frozenset({"and", "of", "the"})


def reference_prefix_for(slug: str) -> str:
    """A force's reference prefix from its slug: the initials of its words
    (``west-midlands`` → ``WM``), or the first three letters of a one-word
    name (``durham`` → ``DUR``)."""
    words = [word for word in slug.split("-") if word and word not in SMALL_WORDS] or [slug]
    prefix = words[0][:3] if len(words) == 1 else "".join(word[0] for word in words)
    return prefix.upper()[:8]


class Tenant(Base):
    """A police force running its diversion scheme on the platform.

    ``area`` is the police force area it covers, by address (the areas a
    course serves are named the same way). The outcome codes are what a
    referral's case records when it ends: the force's code and its meaning
    on completion, and on non-completion (with the action the force takes).
    """

    # The bounds of ``retention_months``: a month at least, a century at most.
    RETENTION_BOUNDS = (1, 1200)

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_cy: Mapped[str | None] = mapped_column(String(200))  # its name in Welsh, where it gives one
    scheme_name: Mapped[str] = mapped_column(String(200))
    brand_colour: Mapped[str] = mapped_column(String(7))
    languages: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[ForceStatus] = mapped_column(_enum(ForceStatus), default=ForceStatus.ACTIVE)
    area: Mapped[str] = mapped_column(String(63))
    completed_code: Mapped[str] = mapped_column(String(40))
    completed_label: Mapped[str] = mapped_column(String(200))
    not_completed_code: Mapped[str] = mapped_column(String(40))
    not_completed_label: Mapped[str] = mapped_column(String(200))
    # The two labels in Welsh, for a force that works in Welsh (None: not given).
    completed_label_cy: Mapped[str | None] = mapped_column(String(200))
    not_completed_label_cy: Mapped[str | None] = mapped_column(String(200))
    not_completed_action: Mapped[NonCompletionAction] = mapped_column(_enum(NonCompletionAction))
    # How long the force keeps its case records, in months (None: not set yet).
    # Recorded and shown only: enforcing it is a later piece of work.
    retention_months: Mapped[int | None] = mapped_column()
    # Sections of the force file whose features do not exist yet (billing),
    # kept as the file wrote them until they have tables of their own.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the force's case references start with (``WM`` in ``WM-2026-004217``).
    reference_prefix: Mapped[str] = mapped_column(
        String(8), default=lambda context: reference_prefix_for(context.get_current_parameters()["slug"]))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def name_in(self, language: str) -> str:
        """The force's name in ``language`` ("Heddlu Gogledd Cymru" in Welsh), where it gives one; else
        its English name."""
        return in_language(self.name, self.name_cy, language)

    @property
    def is_active(self) -> bool:
        return self.status is ForceStatus.ACTIVE

    def __repr__(self) -> str:
        return f"<Tenant {self.slug}>"
