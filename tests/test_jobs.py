"""The job queue as each database gets it, the commands around it, and what a run records."""

from __future__ import annotations

from datetime import timedelta

import procrastinate
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from procrastinate.testing import InMemoryConnector
from sqlalchemy import select, text

from diversion import jobs
from diversion.cli import main
from diversion.config import ConfigError, load_config
from diversion.db import utcnow
from diversion.extensions import db
from diversion.jobs.cli import run_with_worker
from diversion.jobs.models import JobRun, RunState
from tests import databases


def _run(app: Flask, *args: str):
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def test_the_queue_follows_the_database(app: Flask, database: databases.TestDatabase) -> None:
    connector = jobs.queue_of(app).connector
    if database.is_postgresql:
        assert isinstance(connector, procrastinate.PsycopgConnector)
    else:
        assert isinstance(connector, InMemoryConnector)
    assert {"webhooks.deliver", "webhooks.sweep"} <= set(jobs.queue_of(app).tasks)


def test_diversion_run_is_the_server_with_a_worker_beside_it(app: Flask) -> None:
    with app.app_context():
        context = main.make_context("diversion", ["run", "--help"], obj=ScriptInfo(create_app=lambda: app),
                                    resilient_parsing=True)
        assert main.get_command(context, "run") is run_with_worker
    help_text = _run(app, "run", "--help").output
    assert "worker" in help_text
    assert "--port" in help_text


def test_a_job_nobody_declared_is_refused(app: Flask) -> None:
    with app.app_context(), pytest.raises(KeyError, match="no job is declared"):
        jobs.defer("nothing.here")


def test_the_runs_command_shows_each_run_and_how_far_it_got(app: Flask) -> None:
    with app.app_context():
        assert jobs.defer("webhooks.sweep", timestamp=0) is not None
        assert jobs.defer("webhooks.sweep", timestamp=1) is None  # one waits at a time
    jobs.work_now(app)
    with app.app_context():
        runs = db.session.scalars(select(JobRun)).all()
        assert [(run.task, run.state) for run in runs if run.task == "webhooks.sweep"][:1] == [
            ("webhooks.sweep", RunState.SUCCEEDED)]
        assert runs[0].finished_at is not None
    result = _run(app, "jobs", "runs")
    assert result.exit_code == 0, result.output
    assert "webhooks.sweep" in result.output
    assert "succeeded" in result.output


def test_the_nightly_job_forgets_runs_finished_long_ago_and_keeps_the_rest(app: Flask) -> None:
    now = utcnow()
    days_ago = [now - timedelta(days=app.config["JOBS_KEEP_DAYS"] + extra) for extra in (-1, 1, 2, 5)]
    with app.app_context():
        for task, started, finished in (("old", days_ago[2], days_ago[1]), ("recent", days_ago[0], days_ago[0]),
                                        ("stuck", days_ago[3], None)):
            db.session.add(JobRun(task=task, state=RunState.SUCCEEDED if finished else RunState.RUNNING,
                                  started_at=started, finished_at=finished))
        db.session.commit()
        assert jobs.defer(jobs.FORGET, timestamp=0) is not None
    jobs.work_now(app)
    with app.app_context():
        left = set(db.session.scalars(select(JobRun.task)))
        assert {"recent", "stuck", jobs.FORGET} <= left
        assert "old" not in left


def test_a_job_that_succeeded_leaves_the_queue(app: Flask, database: databases.TestDatabase) -> None:
    """Its run is in job_runs; the queue's own table keeps only what is to do or failed."""
    if not database.is_postgresql:
        pytest.skip("PostgreSQL only: the queue is in memory on SQLite")
    with app.app_context():
        job_id = jobs.defer(jobs.FORGET, timestamp=0)
        db.session.commit()
    jobs.work_now(app)
    with app.app_context():
        assert db.session.scalar(select(JobRun.state).where(JobRun.job_id == job_id)) is RunState.SUCCEEDED
        left = db.session.execute(text(f"SELECT count(*) FROM {jobs.SCHEMA}.procrastinate_jobs WHERE id = :id"),
                                  {"id": job_id}).scalar_one()
        assert left == 0


def test_the_test_trust_for_webhook_jobs_is_refused_outside_the_tests() -> None:
    import ssl

    with pytest.raises(ConfigError, match="WEBHOOK_TEST_TRUST"):
        load_config({"ENV_NAME": "development", "WEBHOOK_TEST_TRUST": ssl.create_default_context()})
