"""Policy services: drafts, tests, publication, the policy in force, decisions.

Services take explicit arguments, validate, ``flush()`` and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import defer, make_transient_to_detached

from diversion.accounts.access import Action, require, user_id_of
from diversion.audit.services import record
from diversion.db import utcnow
from diversion.eligibility import past
from diversion.eligibility.compiler import (
    CompiledPolicy,
    PolicyInvalid,
    PolicyProblem,
    compile_cached,
    compile_policy,
    compile_stored,
    welsh_missing,
    welsh_missing_said,
)
from diversion.eligibility.document import Pathway, PolicyDocument
from diversion.eligibility.engine import Assessment, TestOutcome, decide, run_tests
from diversion.eligibility.models import Decision, Origin, PolicyStatus, PolicyVersion
from diversion.eligibility.naming import Names
from diversion.eligibility.simulation import CHUNK as SIMULATION_CHUNK
from diversion.eligibility.simulation import Report, replay
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.inputs import EARLIEST_CASE_DATE, latest_future_date, planned_date_problem
from diversion.tenancy.guard import ALL_TENANTS
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.words import WELSH, current_language, day

if TYPE_CHECKING:
    from diversion.accounts.access import Actor


class PolicyError(FieldError):
    """A refused policy change."""


class NoPolicyInForce(LookupError):  # noqa: N818 - reads as the condition it reports
    """The force has no published policy in force on the date asked."""


# Published versions' content hashes by id: a published version never changes, and a decision
# names its version by id alone.
_PUBLISHED_HASHES: dict[uuid.UUID, str] = {}
_PUBLISHED_LIMIT = 256


def compiled(version: PolicyVersion) -> CompiledPolicy:
    """The version's compiled policy, cached by content (``compile_stored``): the version's
    document is read only the first time."""
    if version.status == PolicyStatus.PUBLISHED:
        if len(_PUBLISHED_HASHES) >= _PUBLISHED_LIMIT:
            _PUBLISHED_HASHES.clear()
        _PUBLISHED_HASHES[version.id] = version.content_hash
    return compile_stored(version.content_hash, lambda: version.document)


def compiled_of(decision: Decision) -> CompiledPolicy:
    """The compiled policy a decision was made with: its version read only when this worker has not
    compiled that policy yet."""
    known = _PUBLISHED_HASHES.get(decision.policy_version_id)
    if known is not None:
        return compile_stored(known, lambda: decision.policy_version.document)
    return compiled(decision.policy_version)


_IN_FORCE = (select(PolicyVersion).options(defer(PolicyVersion.document))
             .where(PolicyVersion.status == PolicyStatus.PUBLISHED, PolicyVersion.effective_from <= bindparam("on"))
             .order_by(PolicyVersion.effective_from.desc(), PolicyVersion.number.desc())
             .limit(1))


# The versions in force a worker keeps (``policy_in_force``), by force, the force's row as read and day.
_KEPT = "policies_in_force"  # in the app's extensions: a worker's, for its own database
_KEPT_AT_MOST = 256


def policy_in_force(on: date, *, force: Tenant | None = None) -> PolicyVersion | None:
    """The force in scope's published version in force on ``on`` (its document read when first used).

    Given ``force``, the force's row as this transaction read it, the version is kept by the worker
    for that row and day, and not read again: publishing a version changes the force's row
    (``publish``), and a published version never changes."""
    if force is None:
        return db.session.scalar(_IN_FORCE, {"on": on})
    kept: dict[tuple[int, Any, date], PolicyVersion | None] = current_app.extensions.setdefault(_KEPT, {})
    key = (force.id, force.updated_at, on)
    if key in kept:
        version = kept[key]
        return db.session.merge(version, load=False) if version is not None else None
    version = db.session.scalar(_IN_FORCE, {"on": on})
    if len(kept) >= _KEPT_AT_MOST:
        kept.clear()
    kept[key] = _detached_copy(version) if version is not None else None
    return version


def _detached_copy(version: PolicyVersion) -> PolicyVersion:
    """A copy of a version's columns as read (its document left to be read when used), in no session."""
    copy = PolicyVersion(**{attribute.key: getattr(version, attribute.key)
                            for attribute in PolicyVersion.__mapper__.column_attrs if attribute.key != "document"})
    make_transient_to_detached(copy)
    return copy


InForce = tuple[PolicyVersion, CompiledPolicy]  # a published version and its compiled policy


class PoliciesInForce:
    """The force in scope's published policies, read once, for work that decides many cases of one
    force (an import, a demo): the one in force on a day (``on``), compiled once. A policy
    published after it was made is not seen."""

    def __init__(self) -> None:
        versions = db.session.scalars(
            select(PolicyVersion).options(defer(PolicyVersion.document))
            .where(PolicyVersion.status == PolicyStatus.PUBLISHED, PolicyVersion.effective_from.is_not(None))).all()
        # The order policy_in_force picks in: the latest effective date, then the latest number.
        self.versions = sorted(versions, key=lambda v: (v.effective_from or date.min, v.number), reverse=True)
        self._on: dict[date, InForce | None] = {}
        self._compiled: dict[uuid.UUID, CompiledPolicy] = {}

    def on(self, day: date) -> InForce | None:
        """The version in force on ``day`` and its compiled policy; None before the first."""
        if day not in self._on:
            version = next((v for v in self.versions if v.effective_from and v.effective_from <= day), None)
            self._on[day] = (version, self._compiled_of(version)) if version is not None else None
        return self._on[day]

    def _compiled_of(self, version: PolicyVersion) -> CompiledPolicy:
        # compiled() keys its cache by the document's content, which costs a serialisation
        # per call; a version never changes, so key it by id here.
        if version.id not in self._compiled:
            self._compiled[version.id] = compiled(version)
        return self._compiled[version.id]


def pathways_in_force(on: date) -> list[Pathway]:
    """The pathways of the force in scope's policy in force on ``on`` (none without one)."""
    version = policy_in_force(on)
    return list(compiled(version).document.pathways) if version is not None else []



def past_names() -> Names:
    """How the force in scope's past decisions name their pathways: by the names its
    published versions give them, the newest version's name first."""
    published = db.session.scalars(
        select(PolicyVersion).options(defer(PolicyVersion.document))
        .where(PolicyVersion.status == PolicyStatus.PUBLISHED).order_by(PolicyVersion.number.desc())).all()
    return Names.of(*map(compiled, published))


def published_policy_of(tenant: Tenant, on: date) -> PolicyVersion | None:
    """Another force's published policy in force on ``on``.

    Crosses forces on purpose (``all_tenants``): published policies are the
    forces' public schemes, and row-level security lets exactly published
    versions be read across forces.
    """
    return db.session.scalar(
        select(PolicyVersion)
        .where(PolicyVersion.tenant_id == tenant.id, PolicyVersion.status == PolicyStatus.PUBLISHED,
               PolicyVersion.effective_from <= on)
        .order_by(PolicyVersion.effective_from.desc(), PolicyVersion.number.desc())
        .limit(1)
        .execution_options(**{ALL_TENANTS: True})
    )


def forces_with_policy_in_force(on: date, *, but: int) -> list[Tenant]:
    """Every force but the one with id ``but`` that has a published policy in force on ``on``, by
    name: those whose policy another force may try (``published_policy_of``); a force being set
    up, whose policy is not yet published, is not one. Crosses forces as ``published_policy_of`` does."""
    in_force = (select(PolicyVersion.id)
                .where(PolicyVersion.tenant_id == Tenant.id, PolicyVersion.status == PolicyStatus.PUBLISHED,
                       PolicyVersion.effective_from <= on)
                .exists())
    return list(db.session.scalars(select(Tenant).where(Tenant.id != but, in_force).order_by(Tenant.name)
                                   .execution_options(**{ALL_TENANTS: True})))


def versions() -> Sequence[PolicyVersion]:
    """The force in scope's versions, newest first."""
    return db.session.scalars(select(PolicyVersion).order_by(PolicyVersion.number.desc())).all()


def version(number: int) -> PolicyVersion | None:
    return db.session.scalar(select(PolicyVersion).where(PolicyVersion.number == number))


def current_draft() -> PolicyVersion | None:
    return db.session.scalar(select(PolicyVersion).where(PolicyVersion.status == PolicyStatus.DRAFT))


def _next_number() -> int:
    return int(db.session.scalar(select(func.coalesce(func.max(PolicyVersion.number), 0))) or 0) + 1


def save_draft(tenant: Tenant, raw: dict[str, Any], *, actor: Actor, note: str = "", origin: Origin | None = None,
               origin_details: dict[str, Any] | None = None) -> PolicyVersion:
    """Create or replace the force's draft, with a person's ``note``, or where the platform
    made it from (``origin`` and its details).

    Refuses an actor who may not edit the force's policy (``AccessRefused``),
    and (``PolicyInvalid``, every problem with its place) a document whose
    shape or expressions are wrong, or that lacks the Welsh of a sentence where
    the force works in Welsh (``welsh_missing``); nothing is saved then. A
    force being set up may save a draft without its Welsh (a copy of an
    English force's policy, the blank one): ``welsh_missing_said`` tells
    what is missing, and ``publish`` refuses it until it is there.
    """
    require(actor, Action.EDIT_POLICY, tenant_id=tenant.id)
    policy = compile_policy(raw)
    if tenant.status is not ForceStatus.DRAFT and (problems := _welsh_missing(tenant, policy.document)):
        raise PolicyInvalid(problems)
    draft = current_draft()
    if draft is None:
        draft = PolicyVersion(tenant_id=tenant.id, number=_next_number(), created_by_id=user_id_of(actor))
        db.session.add(draft)
    draft.document = policy.document.model_dump(mode="json", by_alias=True)
    draft.content_hash = policy.content_hash
    draft.note = note.strip()[:500]
    draft.origin, draft.origin_details = origin, origin_details
    db.session.flush()
    record("policy.draft_saved", actor=actor, tenant_id=tenant.id, object_type="policy_version",
           object_id=draft.number, details={"hash": draft.content_hash, **({"note": draft.note} if draft.note else {})})
    return draft


def _welsh_missing(tenant: Tenant, document: PolicyDocument) -> list[PolicyProblem]:
    """What the policy lacks in Welsh, where the force works in Welsh; nothing for an English-only force."""
    return welsh_missing(document) if WELSH in tenant.languages else []


def welsh_gaps(tenant: Tenant, document: PolicyDocument) -> str:
    """What the policy lacks in Welsh where the force works in Welsh, in a sentence
    (``welsh_missing_said``); "" when nothing is missing or the force works in English only."""
    return welsh_missing_said(document) if WELSH in tenant.languages else ""


def discard_draft(tenant: Tenant, draft: PolicyVersion, *, actor: Actor) -> None:
    """Throw the draft away; refuses an actor who may not edit the policy, and a published version."""
    require(actor, Action.EDIT_POLICY, tenant_id=tenant.id)
    if draft.is_published:
        raise PolicyError("version", _("A published version cannot be discarded."))
    db.session.delete(draft)
    db.session.flush()
    record("policy.draft_discarded", actor=actor, tenant_id=tenant.id, object_type="policy_version",
           object_id=draft.number)


def test_version(version: PolicyVersion, *, on: date) -> list[TestOutcome]:
    """Run the version's test cases, their problems naming outcomes and pathways in the
    reader's words (``naming.Names``)."""
    policy = compiled(version)
    return run_tests(policy, default_on=on, wording=Names.of(policy))


def publish(tenant: Tenant, draft: PolicyVersion, *, effective_from: date, actor: Actor,
            today: date, opening: bool = False) -> PolicyVersion:
    """Publish a draft from ``effective_from`` on; it can never change again.

    Refuses an actor who may not publish the force's policy
    (``AccessRefused``), a force that is still a draft (being set up), unless
    it is being opened (``opening``: ``forces.onboarding.finish`` publishes
    its first policy and opens it in the same unit of work, so that a draft
    discarded before then leaves no published version behind), a version
    that is already published, a date before 2000 or more
    than five years ahead, a draft with no test cases or with a failing one,
    and a date before the version now in force took effect (history is not
    rewritten).
    """
    require(actor, Action.PUBLISH_POLICY, tenant_id=tenant.id)
    if tenant.status is ForceStatus.DRAFT and not opening:
        raise PolicyError("force", _("%(force)s is being set up: its policy is published when the force opens.",
                                     force=tenant.name_in(current_language())))
    if draft.is_published:
        raise PolicyError("version", _("Version %(number)s is already published.", number=draft.number))
    if planned_date_problem(effective_from, today):
        raise PolicyError("effective_from", _("The date must be from %(earliest)s to %(latest)s.",
                                              earliest=day(EARLIEST_CASE_DATE), latest=day(latest_future_date(today))))
    policy = compiled(draft)
    if missing := welsh_gaps(tenant, policy.document):
        raise PolicyError("policy", _("%(force)s works in Welsh, so its policy needs its Welsh beside the "
                                      "English: %(missing)s Add it in the policy console.",
                                      force=tenant.name_in(current_language()), missing=missing))
    if not policy.document.tests:
        raise PolicyError("tests", _("Add test cases before publishing: a policy must show it works."))
    failing = [t for t in run_tests(policy, default_on=today, wording=Names.of(policy)) if not t.passed]
    if failing:
        raise PolicyError("tests", ngettext("%(num)s test case fails: %(name)s: %(problems)s.",
                                            "%(num)s test cases fail, for example %(name)s: %(problems)s.",
                                            len(failing), name=failing[0].name,
                                            problems="; ".join(failing[0].problems)))
    latest = db.session.scalar(
        select(func.max(PolicyVersion.effective_from)).where(PolicyVersion.status == PolicyStatus.PUBLISHED)
    )
    if latest is not None and effective_from < latest:
        raise PolicyError("effective_from", _("The date must be on or after %(date)s, when the current version "
                                              "took effect.", date=day(latest)))
    draft.status = PolicyStatus.PUBLISHED
    draft.effective_from = effective_from
    draft.published_at = utcnow()
    draft.published_by_id = user_id_of(actor)
    # The force's row changes with its policies: the workers that keep the version in force by
    # the force's row as read (``policy_in_force``) read it again.
    tenant.updated_at = draft.published_at
    db.session.flush()
    record("policy.published", actor=actor, tenant_id=tenant.id, object_type="policy_version",
           object_id=draft.number, details={"hash": draft.content_hash, "effective_from": effective_from.isoformat()})
    return draft


def sync_from_file(tenant: Tenant, raw: dict[str, Any], *, effective_from: date, today: date,
                   actor: Actor) -> PolicyVersion | None:
    """Publish the force file's policy when it differs from the newest published version.

    Returns the new version, or None when the file already matches. Refuses
    as ``publish`` does.
    """
    policy = compile_cached(raw)
    newest = db.session.scalar(
        select(PolicyVersion).where(PolicyVersion.status == PolicyStatus.PUBLISHED)
        .order_by(PolicyVersion.number.desc()).limit(1)
    )
    if newest is not None and newest.content_hash == policy.content_hash:
        return None
    draft = current_draft()
    if draft is not None:
        raise PolicyError("policy", _("A draft is being edited in the console; publish or discard it first."))
    draft = save_draft(tenant, raw, actor=actor, origin=Origin.FORCE_FILE)
    if newest is not None and newest.effective_from and effective_from < newest.effective_from:
        effective_from = today
    return publish(tenant, draft, effective_from=effective_from, actor=actor, today=today)


def decide_case(facts: dict[str, Any], on: date, *, force: Tenant | None = None) -> tuple[Assessment, PolicyVersion]:
    """Decide with the force in scope's policy in force on ``on`` (nothing stored); ``force``: the
    force's row as read in this transaction, by which the worker keeps its policy (``policy_in_force``).

    Refuses ``NoPolicyInForce`` and, for bad facts, ``FactsInvalid``.
    """
    in_force = policy_in_force(on, force=force)
    if in_force is None:
        raise NoPolicyInForce(_("No published policy is in force on %(day)s.", day=day(on)))
    return decide(compiled(in_force), facts, on, version=in_force.number), in_force


@dataclass(frozen=True)
class Change:
    kind: str  # added, removed, changed
    what: str  # "pathway", "criterion", "exclusion", "parameter", "summary"
    name: str
    detail: str = ""


def diff(old: PolicyVersion, new: PolicyVersion) -> list[Change]:
    """What changed from ``old`` to ``new``: pathways, criteria, exclusions, parameters."""
    a = PolicyDocument.model_validate(old.document)
    b = PolicyDocument.model_validate(new.document)
    changes: list[Change] = []

    def compare(what: str, before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> None:
        for key in before.keys() - after.keys():
            changes.append(Change("removed", what, prefix + key))
        for key in after.keys() - before.keys():
            changes.append(Change("added", what, prefix + key))
        for key in sorted(before.keys() & after.keys()):
            if before[key] != after[key]:
                changes.append(Change("changed", what, prefix + key, _describe(before[key], after[key])))

    if a.summary != b.summary:
        changes.append(Change("changed", "summary", "summary"))
    compare("parameter", {k: [v.model_dump(mode="json", by_alias=True) for v in vs] for k, vs in a.parameters.items()},
            {k: [v.model_dump(mode="json", by_alias=True) for v in vs] for k, vs in b.parameters.items()})
    compare("exclusion", {e.id: e.model_dump() for e in a.exclusions}, {e.id: e.model_dump() for e in b.exclusions})
    pa = {p.id: p for p in a.pathways}
    pb = {p.id: p for p in b.pathways}
    compare("pathway", dict.fromkeys(pa), dict.fromkeys(pb))
    for key in sorted(pa.keys() & pb.keys()):
        old_p, new_p = pa[key].model_dump(exclude={"criteria"}), pb[key].model_dump(exclude={"criteria"})
        if old_p != new_p:
            changes.append(Change("changed", "pathway", key, _describe(old_p, new_p)))
        compare("criterion", {c.id: c.model_dump() for c in pa[key].criteria},
                {c.id: c.model_dump() for c in pb[key].criteria}, prefix=f"{key} / ")
    order = {"removed": 0, "added": 1, "changed": 2}
    return sorted(changes, key=lambda c: (c.what, order[c.kind], c.name))


def _describe(before: Any, after: Any) -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        parts = [f"{k}: {before.get(k)!r} → {after.get(k)!r}" for k in sorted(before.keys() | after.keys())
                 if before.get(k) != after.get(k)]
        return "; ".join(parts)
    return f"{before!r} → {after!r}"


def problems_by_place(error: PolicyInvalid) -> dict[tuple[str | None, str | None], list[PolicyProblem]]:
    """Problems keyed by (pathway, criterion), to show each next to its criterion."""
    found: dict[tuple[str | None, str | None], list[PolicyProblem]] = {}
    for problem in error.problems:
        found.setdefault((problem.pathway, problem.criterion), []).append(problem)
    return found


def _past_decisions(since: date | None) -> Select[Any]:
    query = select(Decision.id)
    return query.where(Decision.decided_on >= since) if since is not None else query


def count_past_decisions(since: date | None) -> int:
    """How many decisions of the force in scope a simulation from ``since`` replays."""
    query = _past_decisions(since).with_only_columns(func.count()).select_from(Decision)
    return int(db.session.scalar(query) or 0)


def simulate(policy: CompiledPolicy, since: date | None, *, progress: Callable[[int], None] | None = None,
             size: int = SIMULATION_CHUNK) -> Report:
    """Replay the force in scope's decisions from ``since`` on under ``policy``
    (a draft, or another force's policy), ``size`` at a time (``past.chunks``).
    ``progress`` is told how many more decisions have been replayed, after each chunk."""
    told = 0

    def tell(count: int) -> None:
        nonlocal told
        told += count
        if progress is not None:
            progress(count)

    try:
        return replay(policy, past.chunks(policy, since, size=size), progress=tell)
    except past.Unlisted:
        pass
    again = 0

    def tell_again(count: int) -> None:  # only what goes beyond what was told the first time
        nonlocal again
        before, again = again, again + count
        if progress is not None and again > told:
            progress(again - max(before, told))

    return replay(policy, past.chunks(policy, since, size=size, typed=False), progress=tell_again)
