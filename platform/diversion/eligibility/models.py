"""Policy versions and the decisions made with them (both force-owned)."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Date, Enum, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from diversion.db import Base, TenantScoped, UTCDateTime, tenant_foreign_key, utcnow
from diversion.eligibility.compiler import CompiledPolicy, compile_stored
from diversion.eligibility.engine import CriterionResult, criterion_results, results_json, unmet_named
from diversion.eligibility.packed import PackedFacts


class PolicyStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class PublishedPolicyImmutable(RuntimeError):  # noqa: N818 - reads as the condition it reports
    """Raised on any attempt to change or delete a published policy version."""


class Origin(enum.StrEnum):
    """Where the platform made a policy version from, when no person wrote a note for it
    (``PolicyVersion.origin``; a copy's ``origin_details`` name the ``force`` and ``number``)."""

    FORCE_FILE = "force_file"  # the force's file in tenants/, synced
    COPIED = "copied"  # another force's policy, copied when the force was set up
    BLANK = "blank"  # the blank policy a new force starts from


def origin_sentence(origin: Origin | None, details: dict[str, Any] | None) -> str:
    """Where the platform made a policy version from, in the reader's language ("" for None)."""
    if origin is Origin.FORCE_FILE:
        return str(_("From the force file"))
    if origin is Origin.BLANK:
        return str(_("The blank policy"))
    if origin is Origin.COPIED:
        details = details or {}
        return str(_("Copied from %(force)s, version %(number)s", force=details.get("force", ""),
                     number=details.get("number", "")))
    return ""


class PolicyVersion(TenantScoped, Base):
    """One version of a force's eligibility policy.

    A draft may change; a published version never does (refused by the ORM
    here and, on PostgreSQL, by a trigger). ``number`` counts a force's
    versions from 1.
    """

    __tablename__ = "policy_versions"
    __tenant_table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        Index(None, "tenant_id", "status", "effective_from"),
    )

    number: Mapped[int]
    status: Mapped[PolicyStatus] = mapped_column(
        Enum(PolicyStatus, native_enum=False, length=16,
             values_callable=lambda statuses: [s.value for s in statuses]),
        default=PolicyStatus.DRAFT,
    )
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(80))
    effective_from: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(500), default="")  # a person's words
    origin: Mapped[Origin | None] = mapped_column(
        Enum(Origin, native_enum=False, length=16, values_callable=lambda origins: [o.value for o in origins]))
    origin_details: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def described(self) -> str:
        """The version's note, in the reader's language: what a person wrote, else where the
        platform made it from ("" when neither)."""
        return self.note or origin_sentence(self.origin, self.origin_details)

    @property
    def is_published(self) -> bool:
        return self.status is PolicyStatus.PUBLISHED


@event.listens_for(PolicyVersion, "before_update")
@event.listens_for(PolicyVersion, "before_delete")
def _refuse_changing_published(_mapper: Any, _connection: Any, target: PolicyVersion) -> None:
    from sqlalchemy import inspect

    history = inspect(target).attrs.status.history
    was = history.deleted[0] if history.deleted else target.status
    if was == PolicyStatus.PUBLISHED:
        raise PublishedPolicyImmutable(f"Policy version {target.number} is published and cannot change.")


class Outcome(enum.StrEnum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    NEEDS_REVIEW = "needs_review"

    @property
    def label(self) -> str:
        return str({"eligible": _l("Eligible"), "not_eligible": _l("Not eligible"),
                    "needs_review": _l("Needs review")}[self.value])


class Decision(TenantScoped, Base):
    """An eligibility decision, kept so that re-running it gives the same answer: the
    fact snapshot (packed, ``eligibility.packed``), the policy version (whose content
    hash, fixed once published, is the decision's), the outcome and pathway, the
    ids of the criteria that were not met and the facts that were missing.

    Every criterion's result and reason (``results``) is worked out again from the
    facts and the policy version when a page asks for it: a decision is deterministic.
    An unmet criterion's id is the exclusion's id, or ``pathway/criterion``."""

    __tablename__ = "decisions"
    __tenant_from_parent__ = True  # its policy version holds the force
    __tenant_table_args__ = (
        tenant_foreign_key("policy_versions", "policy_version_id"),
        tenant_foreign_key("encounters", "encounter_id"),
        tenant_foreign_key("decisions", "superseded_by_id"),
        Index(None, "tenant_id", "decided_on"),
        Index(None, "tenant_id", "encounter_id"),
        # The decisions waiting for review (counted on the home page, listed oldest first by
        # decision date): few in each force, found by outcome; the key repeats, so PostgreSQL
        # keeps each outcome once with the list of its rows (a few bytes a decision).
        Index(None, "tenant_id", "outcome"),
    )

    policy_version_id: Mapped[uuid.UUID]
    # None for synthetic history (demo, simulation data) with no encounter behind it.
    encounter_id: Mapped[uuid.UUID | None]
    decided_on: Mapped[date] = mapped_column(Date)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    facts: Mapped[dict[str, Any]] = mapped_column(PackedFacts())
    outcome: Mapped[str] = mapped_column(String(16))
    pathway: Mapped[str | None] = mapped_column(String(63))
    unmet: Mapped[list[str]] = mapped_column(JSON, default=list)
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Monitoring only: never an input to the decision.
    age_band: Mapped[str] = mapped_column(String(16))
    ethnicity: Mapped[str] = mapped_column(String(2))
    source: Mapped[str] = mapped_column(String(16), default="intake")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # A supervisor's override: the outcome that stands, and why.
    override_outcome: Mapped[str | None] = mapped_column(String(16))
    override_pathway: Mapped[str | None] = mapped_column(String(63))
    override_reason: Mapped[str | None] = mapped_column(String(1000))
    overridden_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    overridden_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The decision made again in its place once the facts it waited for were
    # given (``cases.services.decide_again``); this one is kept as it was.
    superseded_by_id: Mapped[uuid.UUID | None]

    @property
    def final_outcome(self) -> str:
        return self.override_outcome or self.outcome

    @property
    def final_pathway(self) -> str | None:
        return self.override_pathway if self.override_outcome else self.pathway

    policy_version: Mapped[PolicyVersion] = relationship(viewonly=True)

    @property
    def policy_hash(self) -> str:
        """The content hash of the policy the decision was made with (a published version's never changes)."""
        return self.policy_version.content_hash

    @property
    def results(self) -> list[dict[str, Any]]:
        """Every criterion's result and reason, exclusions first, worked out again from the
        decision's facts with its policy version (``engine.criterion_results``)."""
        return results_json(criterion_results(self._policy(), self.facts, self.decided_on))

    def unmet_criteria(self) -> list[CriterionResult]:
        """The criteria that were not met, with their reasons, in the order of ``results``."""
        return unmet_named(self._policy(), self.unmet)

    def _policy(self) -> CompiledPolicy:
        version = self.policy_version
        return compile_stored(version.content_hash, lambda: version.document)


class SimulationState(enum.StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return str({"waiting": _l("Waiting to start"), "running": _l("Running"), "finished": _l("Finished"),
                    "failed": _l("Stopped before the end")}[self.value])


def policy_named(force: str | None, number: int) -> str:
    """A policy tried in a simulation, named for the reader: "draft version 3", or another
    force's "Durham Constabulary version 2"."""
    if force is None:
        return str(_("draft version %(number)s", number=number))
    return str(_("%(force)s version %(number)s", force=force, number=number))


class SimulationRun(TenantScoped, Base):
    """A simulation too large to run while a page waits: run by a job, its progress
    and then its report kept here for the page (``eligibility.runs``).

    The policy tried is kept as it was when the run was asked for (a draft may
    change since). ``done`` of ``total`` decisions replayed so far."""

    __tablename__ = "simulation_runs"
    __tenant_table_args__ = (Index(None, "tenant_id", "requested_at"),)

    # The policy tried: another force's published one (that force's name) or, None, this force's
    # draft; and its version. Named in the reader's language by ``policy_label``.
    policy_force: Mapped[str | None] = mapped_column(String(200))
    policy_number: Mapped[int]
    policy_hash: Mapped[str] = mapped_column(String(80))
    policy_document: Mapped[dict[str, Any]] = mapped_column(JSON)
    since: Mapped[date | None] = mapped_column(Date)
    state: Mapped[SimulationState] = mapped_column(
        Enum(SimulationState, native_enum=False, length=16,
             values_callable=lambda states: [s.value for s in states]),
        default=SimulationState.WAITING,
    )
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def policy_label(self) -> str:
        return policy_named(self.policy_force, self.policy_number)
