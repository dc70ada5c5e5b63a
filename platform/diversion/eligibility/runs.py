"""Simulations too large to run while a page waits: each a job, its progress on the page.

A simulation over more past decisions than ``SIMULATION_JOB_THRESHOLD`` is
asked for on the page (``start``): the run is kept (``SimulationRun``) with
the policy as it is then, and a job (``SIMULATE``) replays the force's
decisions under it once the request has committed. The job works in the
run's force's scope, so the ORM guard and row-level security keep it to that
force's decisions, as they keep each force's pages to its own runs. How far
it has got is written on the run, and on the job's own record
(``jobs.report``), in short transactions of their own, readable while it
goes on; the report is kept on the run when it ends, with the job's unit of
work.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import select, update

from diversion import jobs
from diversion.accounts.access import Action, require, user_id_of
from diversion.db import utcnow
from diversion.eligibility import services
from diversion.eligibility.compiler import CompiledPolicy, compile_cached
from diversion.eligibility.models import SimulationRun, SimulationState
from diversion.eligibility.simulation import Report
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant

if TYPE_CHECKING:
    from diversion.accounts.access import Actor

SIMULATE = "policy.simulate"
log = logging.getLogger(__name__)
RECENT = 5  # runs listed on the simulation page
NOTES = 40  # how many times at most a run notes how far it has got


def in_background(decisions: int) -> bool:
    """Whether a simulation over ``decisions`` past decisions runs as a job."""
    return decisions > int(current_app.config["SIMULATION_JOB_THRESHOLD"])


def start(tenant: Tenant, policy: CompiledPolicy, *, force: str | None, number: int, since: date | None,
          decisions: int, actor: Actor) -> SimulationRun:
    """Keep a run of ``policy`` (version ``number`` of the force's draft, or of the
    force named ``force``'s published policy) over the force's decisions from ``since`` on
    (``decisions`` of them, as counted now), for a job to make once the unit of
    work commits.

    Refuses (``AccessRefused``) an actor who may not simulate the force's policy.
    """
    require(actor, Action.SIMULATE_POLICY, tenant_id=tenant.id)
    run = SimulationRun(tenant_id=tenant.id, policy_force=force, policy_number=number, policy_hash=policy.content_hash,
                        policy_document=policy.document.model_dump(mode="json", by_alias=True), since=since,
                        total=decisions, requested_by_id=user_id_of(actor))
    db.session.add(run)
    db.session.flush()
    jobs.defer_after_commit(SIMULATE, lock=f"{SIMULATE}:{run.id}", run_id=str(run.id), tenant_id=tenant.id)
    return run


def find(run_id: uuid.UUID) -> SimulationRun | None:
    """One of the force in scope's runs (None for another force's)."""
    return db.session.scalar(select(SimulationRun).where(SimulationRun.id == run_id))


def recent(limit: int = RECENT) -> Sequence[SimulationRun]:
    """The force in scope's latest runs, newest first."""
    return db.session.scalars(select(SimulationRun).order_by(SimulationRun.requested_at.desc()).limit(limit)).all()


def report_of(run: SimulationRun) -> Report | None:
    return Report.from_json(run.report) if run.report is not None else None


def _note(run_id: uuid.UUID, **values: Any) -> None:
    """Write on the run at once, in a transaction of its own (the job's own unit is
    still open), in the scope in force: the page reads it while the job goes on."""
    with current_app.app_context(), jobs.unit_of_work():
        db.session.execute(update(SimulationRun).where(SimulationRun.id == run_id)
                           .values(updated_at=utcnow(), **values))


def replay(run: SimulationRun) -> Report:
    """Make the run: replay the force in scope's decisions under the run's policy,
    noting how far it has got after each chunk. A run that stops on an error is
    noted as failed."""
    done = total = noted = 0

    def progress(count: int) -> None:
        nonlocal done, noted
        done += count
        if done - noted >= max(total // NOTES, 1) or done >= total:  # a few dozen writes, however many decisions
            noted = done
            _note(run.id, done=done)
            jobs.report(done, total, f"{done:,} of {total:,} past decisions replayed")

    try:
        policy = compile_cached(run.policy_document)
        total = services.count_past_decisions(run.since)
        _note(run.id, state=SimulationState.RUNNING, done=0, total=total)
        jobs.report(0, total, f"0 of {total:,} past decisions replayed")
        report = services.simulate(policy, run.since, progress=progress)
    except Exception:
        try:
            _note(run.id, state=SimulationState.FAILED)
        except Exception:  # the job's own failure is the one to report
            log.warning("could not note simulation run %s as failed", run.id, exc_info=True)
        raise
    run.report = report.as_json()
    run.state = SimulationState.FINISHED
    run.done = run.total = report.cases
    run.finished_at = run.updated_at = utcnow()
    db.session.flush()
    return report


@jobs.task(SIMULATE)
def simulate_job(run_id: str, tenant_id: int) -> None:
    """The job: make the run ``run_id`` in its force's scope, once (nothing for a run
    already made, or one that is not that force's)."""
    with scoped(tenant_id):
        run = find(uuid.UUID(run_id))
        if run is None or run.state is not SimulationState.WAITING:
            return
        replay(run)
