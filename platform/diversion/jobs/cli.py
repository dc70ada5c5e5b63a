"""``diversion jobs worker`` and ``diversion jobs runs``, and ``diversion run`` with a worker beside the server."""

from __future__ import annotations

import asyncio
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo, run_command, with_appcontext
from flask.helpers import get_debug_flag
from sqlalchemy import select
from werkzeug.serving import is_running_from_reloader

from diversion.extensions import db


@click.group("jobs")
def jobs_group() -> None:
    """Background jobs (webhook delivery, and long work to come)."""


@jobs_group.command("worker")
@with_appcontext
def worker() -> None:
    """Run jobs as they come, until stopped (SIGINT or SIGTERM finishes the job in hand first)."""
    from diversion import jobs

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    where = "in memory: only jobs queued by this process" if jobs.in_memory(app) else "PostgreSQL"
    click.echo(f"Running jobs ({where}); stop with Ctrl-C.")
    asyncio.run(jobs.work(app, signals=True))
    click.echo("Stopped.")


@jobs_group.command("runs")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@with_appcontext
def runs(limit: int) -> None:
    """The latest runs of jobs, newest first, with how far each has got."""
    from diversion.jobs.models import JobRun

    for run in db.session.scalars(select(JobRun).order_by(JobRun.id.desc()).limit(limit)):
        progress = f"{run.done}/{run.total}" if run.total is not None else str(run.done)
        click.echo(f"{run.started_at:%Y-%m-%d %H:%M:%S}  {run.task:<20} {run.state.value:<9} {progress:>9}  {run.note}")


def _run_with_worker(**options: Any) -> Any:
    """``flask run``, with the app's jobs worked in a thread of the serving process."""
    from diversion import jobs

    context = click.get_current_context()
    reload = options.get("reload")
    if reload is None:
        reload = get_debug_flag()
    if is_running_from_reloader() or not reload:  # the process that serves, not the reloader's watcher
        jobs.InProcessWorker(context.ensure_object(ScriptInfo).load_app()).start()
    return context.invoke(run_command, **options)


run_with_worker = click.Command(
    "run", params=run_command.params, callback=_run_with_worker,
    help="Run the development server, with a worker for the app's jobs in the same process.")


def register(app: Flask) -> None:
    app.cli.add_command(jobs_group)

