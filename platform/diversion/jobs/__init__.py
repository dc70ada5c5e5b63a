"""Background jobs, on procrastinate: the queue lives in the platform's own database.

Long work (webhook delivery today; month close, large simulations and
exports next) runs as jobs. A feature declares its tasks with ``task`` (a
plain function stays callable as it is) and queues them with ``defer`` or,
for work that a change makes due, ``defer_after_commit``. ``init_app``
gives each Flask app its own queue, with every declared task, chosen from
its database:

- PostgreSQL: procrastinate's tables, in their own schema ``procrastinate``
  (made by a migration, like every other table), so jobs are backed up,
  restored and inspected with the data they are about. ``diversion jobs
  worker`` runs them (production: one service, or several).
- SQLite (``make run``, the tests): an in-memory queue, and ``diversion run``
  runs a worker in a thread of the same process. Jobs queued there are lost
  when the process ends, which is why a job only ever *wakes* work whose
  truth is a table (the webhook outbox): what was due is found again by the
  periodic sweep.

Every job runs inside the Flask app, one unit of work at a time: a job is
committed when it ends and rolled back when it fails (``unit_of_work``, the
one place jobs commit; a job made of independent steps, such as a webhook
round, commits each step with it). Each run is recorded in ``job_runs``
(``JobRun``) with its progress (``report``), written in short transactions
of its own so that it can be read while the job goes on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import procrastinate
from flask import Flask, current_app
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.manager import JobManager
from procrastinate.tasks import configure_task
from procrastinate.testing import InMemoryConnector
from sqlalchemy import delete, event, insert, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from diversion.db import utcnow
from diversion.extensions import db
from diversion.jobs.models import JobRun, RunState

SCHEMA = "procrastinate"  # the PostgreSQL schema of the job tables
log = logging.getLogger(__name__)
_current_run: ContextVar[int | None] = ContextVar("diversion_job_run", default=None)
_WAKE = "diversion.jobs.wake"  # Session.info key: jobs to queue once the transaction commits
Function = TypeVar("Function", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Declared:
    function: Callable[..., Any]
    name: str
    cron: str | None
    options: dict[str, Any]


_declared: list[_Declared] = []
# What of a task's options applies when it is queued (the rest, when it runs).
_DEFER_OPTIONS = ("lock", "queueing_lock", "queue", "priority")
# Queues jobs on a connection it is given (the app's own pool), never one of its own.
_ON_A_GIVEN_CONNECTION = JobManager(procrastinate.SyncPsycopgConnector())


def task(name: str, *, cron: str | None = None, **options: Any) -> Callable[[Function], Function]:
    """Declare ``function`` as the job ``name`` of every app's queue, with
    procrastinate's task ``options`` (e.g. ``queueing_lock``); ``cron`` also
    queues it on that schedule (a sixth field counts seconds), and it is then
    given the ``timestamp`` of each time it was due."""

    def declare(function: Function) -> Function:
        _declared.append(_Declared(function, name, cron, options))
        return function

    return declare


def init_app(app: Flask) -> None:
    """Give ``app`` its queue (``queue_of``): procrastinate's tables on PostgreSQL, in memory otherwise."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    connector: Any
    if url.get_backend_name() == "postgresql":
        connector = procrastinate.PsycopgConnector(
            conninfo=url.set(drivername="postgresql").render_as_string(hide_password=False),
            kwargs={"options": f"-c search_path={SCHEMA}"}, min_size=1, max_size=4)
    else:
        connector = InMemoryConnector()
    queue = procrastinate.App(connector=connector, worker_defaults={
        "fetch_job_polling_interval": float(app.config["JOBS_POLL_SECONDS"]),
        "abort_job_polling_interval": float(app.config["JOBS_POLL_SECONDS"]),
        "install_signal_handlers": False,
        "delete_jobs": "successful",  # job_runs keeps the account of each run; failed jobs stay to be looked into
        "task_middleware": [_in_the_app(app)],
    })
    for declared in _declared:
        job = queue.task(name=declared.name, **declared.options)(declared.function)  # type: ignore[no-untyped-call]
        if declared.cron is not None:
            queue.periodic(cron=declared.cron)(job)  # type: ignore[no-untyped-call]
    app.extensions["jobs"] = queue
    if not event.contains(Session, "after_commit", _wake_after_commit):
        event.listen(Session, "after_commit", _wake_after_commit)
        event.listen(Session, "after_rollback", _forget_after_rollback)


def queue_of(app: Flask | None = None) -> procrastinate.App:
    """The app's job queue (the current app's without one)."""
    queue: procrastinate.App = (app or current_app).extensions["jobs"]
    return queue


def in_memory(app: Flask | None = None) -> bool:
    return isinstance(queue_of(app).connector, InMemoryConnector)


# ---------------------------------------------------------------- queueing

def defer(task: str, *, lock: str | None = None, schedule_at: datetime | None = None,
          **arguments: Any) -> int | None:
    """Queue the job ``task`` with ``arguments``; its job id.

    ``lock`` lets one job of that name wait at a time, and run one at a
    time: None is returned when one is already waiting (it will do the
    work). Without ``lock``, the task's own locks apply. On PostgreSQL the
    job is written on a connection of its own and committed at once,
    whatever the caller's transaction does. Refuses (``KeyError``) a task
    nobody declared.
    """
    declared = next((each for each in _declared if each.name == task), None)
    if declared is None:
        raise KeyError(f"no job is declared as {task!r}")
    options = {key: value for key, value in declared.options.items() if key in _DEFER_OPTIONS}
    if lock is not None:
        options.update(lock=lock, queueing_lock=lock)
    if schedule_at is not None:
        options["schedule_at"] = schedule_at
    try:
        if in_memory():
            return queue_of().configure_task(task, **options).defer(**arguments)
        with db.engine.connect() as connection:
            connection.exec_driver_sql(f"SET LOCAL search_path TO {SCHEMA}")
            job_id = configure_task(name=task, job_manager=_ON_A_GIVEN_CONNECTION,
                                    connection=connection.connection.driver_connection, **options).defer(**arguments)
            connection.commit()
            return job_id
    except AlreadyEnqueued:
        return None


def defer_after_commit(task: str, *, lock: str, **arguments: Any) -> None:
    """Queue ``task`` once the current transaction commits (nothing if it rolls back).

    For work a change makes due: the job must not run before the change is
    visible, and must not run at all for a change abandoned. The same
    ``lock`` asked twice in one transaction queues one job. A job that cannot
    be queued is logged, not raised: the change is committed already, and
    the work it made due is found again by its task's periodic sweep.
    """
    db.session.info.setdefault(_WAKE, {})[lock] = (task, arguments)


def _wake_after_commit(session: Session) -> None:
    waiting: dict[str, tuple[str, dict[str, Any]]] = session.info.pop(_WAKE, {})
    for lock, (task, arguments) in waiting.items():
        try:
            defer(task, lock=lock, **arguments)
        except Exception:  # the committed change stands; the sweep finds the work
            log.warning("could not queue %s (%s); its sweep will find the work", task, lock, exc_info=True)


def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_WAKE, None)


# ---------------------------------------------------------------- running

@contextmanager
def unit_of_work() -> Iterator[None]:
    """One unit of a job's work: committed when the block ends, rolled back
    if it raises. The one place where jobs commit."""
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()


def report(done: int, total: int | None = None, note: str = "") -> None:
    """Record how far the running job has got, readable at once (its own
    transaction). Outside a job, nothing. Call it between units of work:
    SQLite allows one writer at a time."""
    run_id = _current_run.get()
    if run_id is None:
        return
    with db.engine.begin() as connection:
        connection.execute(update(JobRun).where(JobRun.id == run_id)
                           .values(done=done, total=total, note=note[:200]))


def _in_the_app(app: Flask) -> Callable[..., Any]:
    """The middleware around every job: the app's context, a ``JobRun``, and the job as one unit of work."""

    def run(call_next: Callable[[], Any], context: procrastinate.JobContext, _worker: Any) -> Any:
        with app.app_context():
            with db.engine.begin() as connection:
                run_id = connection.execute(insert(JobRun).values(
                    task=context.job.task_name, job_id=context.job.id,
                    state=RunState.RUNNING, done=0, note="", started_at=utcnow()).returning(JobRun.id)).scalar_one()
            token = _current_run.set(run_id)
            state = RunState.FAILED
            try:
                with unit_of_work():
                    result = call_next()
                state = RunState.SUCCEEDED
                return result
            finally:
                _current_run.reset(token)
                db.session.remove()
                with db.engine.begin() as connection:
                    connection.execute(update(JobRun).where(JobRun.id == run_id)
                                       .values(state=state, finished_at=utcnow()))

    return run


async def work(app: Flask, *, wait: bool = True, signals: bool = False) -> None:
    """Run the app's jobs: until stopped with ``wait`` (on SIGINT or SIGTERM
    with ``signals``), else until none is due."""
    queue = queue_of(app)
    try:
        async with queue.open_async():
            await queue.run_worker_async(wait=wait, install_signal_handlers=signals)
    finally:
        if isinstance(queue.connector, InMemoryConnector):  # no worker listens any more
            queue.connector.on_notification = None


def work_now(app: Flask) -> None:
    """Run every job that is due, then return (tests, one-off commands)."""
    asyncio.run(work(app, wait=False))


class InProcessWorker:
    """A worker in a thread of this process (``diversion run``, tests): it runs
    until ``stop``, or for as long as the process when nobody stops it."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="diversion-jobs",
                                       daemon=True)
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def _serve(self) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self._started.set()
        with suppress(asyncio.CancelledError):  # stopped: the job in hand was finished first
            await work(self.app)

    def start(self) -> InProcessWorker:
        self.thread.start()
        self._started.wait(10)
        return self

    def stop(self, timeout: float = 30) -> None:
        """Finish the job in hand, then stop."""
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self.thread.join(timeout)


FORGET = "jobs.forget"


@task(FORGET, cron="17 3 * * *", queueing_lock=FORGET)
def forget_finished_runs(timestamp: int) -> None:
    """Every night: forget the runs that finished more than ``JOBS_KEEP_DAYS``
    days ago (a sweep every 15 seconds would otherwise keep thousands a day).
    Runs still going, however old, are kept."""
    before = utcnow() - timedelta(days=current_app.config["JOBS_KEEP_DAYS"])
    db.session.execute(delete(JobRun).where(JobRun.finished_at < before))
