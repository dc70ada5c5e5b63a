"""Webhooks sent through the job queue: a committed change queues its provider's
round, the worker sends it, a sweep makes up for what no round was queued for.

The queue is the app's own (procrastinate: its tables on PostgreSQL when
TEST_DATABASE_URL is set, in memory otherwise), and the worker the one
``diversion jobs worker`` and ``diversion run`` use, run here until nothing is
due (``jobs.work_now``) or in a thread of the test (``InProcessWorker``). The
endpoints are real listeners on 127.0.0.1, over plain HTTP and over TLS.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import trustme
from flask import Flask
from sqlalchemy import create_engine, select, text, update

from diversion import jobs
from diversion.accounts.access import SYSTEM
from diversion.cases import services as cases
from diversion.cases.identity import derived_key
from diversion.cases.models import Referral, State
from diversion.db import utcnow
from diversion.extensions import db
from diversion.jobs.models import JobRun, RunState
from diversion.providers import webhooks
from diversion.providers.models import AttemptResult, DeliveryStatus, WebhookDelivery
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests import databases
from tests.conftest import World
from tests.network import FakeDNS
from tests.providers.conftest import Providers, move, refer
from tests.providers.test_webhook_addresses import hooked_over_tls
from tests.providers.test_webhooks import Receiver, deliveries, expected_signature, hooked, receiver
from tests.test_outbound import HOOKS, names, test_ca, tls_server

__all__ = ["hooked", "names", "receiver", "test_ca"]  # fixtures used here, defined beside their tests

ROUND = "webhooks.deliver"


@pytest.fixture(autouse=True)
def empty_queue(database: databases.TestDatabase) -> None:
    """No job left by another test (the in-memory queue is the app's own, new for each test)."""
    if not database.is_postgresql:
        return
    engine = create_engine(database.owner_url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE procrastinate.procrastinate_jobs, procrastinate.procrastinate_events, "
                                "procrastinate.procrastinate_periodic_defers, procrastinate.procrastinate_workers "
                                "CASCADE"))
    engine.dispose()


def queued(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    """The jobs waiting in the app's queue: task and arguments."""
    if jobs.in_memory(app):
        waiting = jobs.queue_of(app).connector.jobs.values()  # type: ignore[attr-defined]
        return [(job["task_name"], job["args"]) for job in waiting if job["status"] == "todo"]
    with app.app_context():
        rows = db.session.execute(text("SELECT task_name, args FROM procrastinate.procrastinate_jobs "
                                       "WHERE status = 'todo' ORDER BY id")).all()
        return [(row.task_name, row.args) for row in rows]


def rounds(app: Flask) -> list[tuple[RunState, int, int | None, str]]:
    """The delivery rounds run so far, as ``job_runs`` records them (sweeps left out)."""
    with app.app_context():
        found = db.session.scalars(select(JobRun).where(JobRun.task == "webhooks.deliver").order_by(JobRun.id))
        return [(run.state, run.done, run.total, run.note) for run in found]


def test_a_committed_change_queues_its_providers_round_and_the_worker_sends_it(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    assert queued(app) == []
    referral = refer(app, world.a, providers.offerings["a1"], surname="Quinn")
    move(app, world.a, referral, State.ACCEPTED)
    # One round waits for the provider, however many of its changes committed meanwhile.
    assert queued(app) == [(ROUND, {"provider_id": providers.p1.id})]

    jobs.work_now(app)

    assert [request.headers["Diversion-Event"] for request in receiver.received] == [
        "referral.created", "referral.changed"]
    for request in receiver.received:
        assert request.headers["Diversion-Signature"] == expected_signature(
            hooked, request.headers["Diversion-Timestamp"], request.body)
    for delivery, attempts in deliveries(app, world.a):
        assert delivery.status is DeliveryStatus.DELIVERED
        assert [(a.number, a.result) for a in attempts] == [(1, AttemptResult.DELIVERED)]
    assert rounds(app) == [(RunState.SUCCEEDED, 2, 2, "2 delivered, 0 to retry, 0 failed")]
    assert queued(app) == []


def test_a_change_rolled_back_queues_nothing(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    with app.app_context(), scoped(world.b.id):
        referral = db.session.get(Referral, providers.referrals["b1"])
        tenant = db.session.get(Tenant, world.b.id)
        assert referral is not None
        assert tenant is not None
        cases.move_to(tenant, referral, State.ACCEPTED, actor=SYSTEM)
        db.session.rollback()
    assert queued(app) == []
    jobs.work_now(app)
    assert receiver.received == []
    assert rounds(app) == []


def test_the_sweep_queues_a_round_for_what_is_due_without_one(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    """A retry comes due with no round queued for it (as after a lost job): the sweep finds it."""
    receiver.script = ["500"]
    refer(app, world.a, providers.offerings["a1"], surname="Reid")
    jobs.work_now(app)
    ((delivery, _attempts),) = deliveries(app, world.a)
    assert delivery.status is DeliveryStatus.PENDING  # to be tried again after the backoff
    assert rounds(app) == [(RunState.SUCCEEDED, 1, 1, "0 delivered, 1 to retry, 0 failed")]
    with app.app_context(), scoped(world.a.id):
        db.session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert queued(app) == []

    with app.app_context():
        assert jobs.defer("webhooks.sweep", timestamp=0) is not None
    jobs.work_now(app)  # the sweep, then the round it queued

    ((delivery, attempts),) = deliveries(app, world.a)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 200)]
    assert rounds(app)[-1] == (RunState.SUCCEEDED, 1, 1, "1 delivered, 0 to retry, 0 failed")


def test_a_round_over_tls_reaches_the_checked_address_only(
    app: Flask, world: World, providers: Providers, names: FakeDNS, test_ca: trustme.CA,
) -> None:
    app.config["OUTBOUND_TEST_ALLOW_HOSTS"] = (HOOKS,)
    with tls_server(test_ca, HOOKS) as server:
        app.config["WEBHOOK_TEST_TRUST"] = server.client_context
        secret = hooked_over_tls(app, providers.p1.id, server.port)
        refer(app, world.a, providers.offerings["a1"], surname="Shore")
        jobs.work_now(app)
    (sent,) = server.requests
    assert sent["Diversion-Signature"] == expected_signature(secret, sent["Diversion-Timestamp"], server.bodies[0])
    assert server.server_names == [HOOKS]
    ((_delivery, attempts),) = deliveries(app, world.a)
    assert [(a.result, a.status_code) for a in attempts] == [(AttemptResult.DELIVERED, 200)]


def test_a_worker_in_the_process_sends_a_change_once_it_commits(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    """What ``diversion run`` does: the worker is a thread beside the server, woken by the queue."""
    worker = jobs.InProcessWorker(app).start()
    try:
        refer(app, world.a, providers.offerings["a1"], surname="Tully")
        assert receiver.heard.wait(10), "the worker did not send the delivery"
    finally:
        worker.stop()
    assert not worker.thread.is_alive()
    ((delivery, _attempts),) = deliveries(app, world.a)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert rounds(app) == [(RunState.SUCCEEDED, 1, 1, "1 delivered, 0 to retry, 0 failed")]


def test_a_round_that_fails_is_recorded_as_failed_and_leaves_its_delivery_due(
    app: Flask, world: World, providers: Providers, receiver: Receiver, hooked: str,
) -> None:
    """The signing secret cannot be read (the data keys were changed without it): nothing is sent,
    nothing of the failed delivery's unit of work stays, and the next round tries again."""
    refer(app, world.a, providers.offerings["a1"], surname="Vance")
    keys = app.config["PERSONAL_DATA_KEYS"]
    app.config["PERSONAL_DATA_KEYS"] = derived_key("other keys")
    jobs.work_now(app)
    assert receiver.received == []
    assert set(rounds(app)) == {(RunState.FAILED, 0, 1, "")}  # (a sweep may have queued another meanwhile)
    ((delivery, attempts),) = deliveries(app, world.a)
    assert (delivery.status, delivery.attempts, attempts) == (DeliveryStatus.PENDING, 0, [])

    app.config["PERSONAL_DATA_KEYS"] = keys
    with app.app_context():
        jobs.defer("webhooks.deliver", lock=webhooks.round_lock(providers.p1.id), provider_id=providers.p1.id)
    jobs.work_now(app)
    ((delivery, _attempts),) = deliveries(app, world.a)
    assert delivery.status is DeliveryStatus.DELIVERED
