"""The database stopped under load: a PostgreSQL cluster of the test's own, stopped mid-load and started again.

Several clients post intakes, each with its own Idempotency-Key, to the app
served by a real threaded server on 127.0.0.1. Halfway through, the cluster
is stopped at once (``-m immediate``, as a crash or a failover would).
Every answer must be a 201 or a 503 in the API's JSON shape, never a 500 or
an HTML page; every intake answered 201 must be in the database. Then the
cluster starts again and every intake not answered 201 is sent again with
its key: each intake is recorded exactly once, and the app recovers without
a restart.

It runs in the PostgreSQL pass only (once per CI run), on a free port, and
drops its cluster whatever happens. Connection and pool timeouts are short
in its configuration, so nothing is waited out.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from diversion.accounts.access import SYSTEM
from diversion.extensions import db
from tests import databases
from tests.api.conftest import make_token, user_dealer
from tests.conftest import TENANTS_DIR, Ref, make_app
from tests.databases import create_postgres_database, postgres_admin_url

CLIENTS = 4
INTAKES_PER_CLIENT = 25
STOP_AFTER = 20  # intakes answered 201 before the cluster is stopped
RETRIES = 50  # a bound on sending one intake again after the restart
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.outage,
    pytest.mark.skipif(postgres_admin_url() is None, reason="PostgreSQL only: set TEST_DATABASE_URL to run"),
    pytest.mark.skipif(shutil.which("pg_createcluster") is None,
                       reason="needs Debian's postgresql-common (pg_createcluster)"),
]


def _version() -> str:
    """The newest PostgreSQL installed (Debian keeps each under /usr/lib/postgresql/<version>)."""
    return max((p.name for p in Path("/usr/lib/postgresql").iterdir() if p.name.isdigit()), key=int)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ctl(version: str, name: str, *action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, *action],  # noqa: S607
                   check=True, capture_output=True, timeout=60)


@dataclass
class Cluster:
    version: str
    name: str
    port: int

    @property
    def admin(self) -> URL:
        return make_url(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres")

    def stop(self) -> None:
        _ctl(self.version, self.name, "stop", "-m", "immediate")

    def start(self) -> None:
        _ctl(self.version, self.name, "start")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    found = Cluster(_version(), f"diversion_outage_{os.getpid()}", _free_port())
    try:
        subprocess.run(
            ["pg_createcluster", found.version, found.name, "--port", str(found.port), "--user", "postgres",  # noqa: S607
             "-o", "fsync=off", "--", "--auth-host=trust", "--auth-local=trust", "--no-sync"],
            check=True, capture_output=True, timeout=120)
        found.start()
        yield found
    finally:
        subprocess.run(["pg_dropcluster", "--stop", found.version, found.name],  # noqa: S607
                       check=False, capture_output=True, timeout=120)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *_args: Any, **_kwargs: Any) -> None:
        """Hundreds of requests: no line each."""


@pytest.fixture
def served(cluster: Cluster) -> Iterator[tuple[Flask, databases.TestDatabase, str, int]]:
    """The app on the cluster, migrated, with force B's token, served on 127.0.0.1."""
    database = create_postgres_database(cluster.admin, "diversion")
    app = make_app(database, RETRY_AFTER_SECONDS=1, SQLALCHEMY_ENGINE_OPTIONS={
        "pool_pre_ping": True, "pool_size": CLIENTS, "max_overflow": 2, "pool_timeout": 2,
        "connect_args": {"connect_timeout": 2}})
    with app.app_context():
        upgrade()
        from diversion.forces.services import sync_tenants
        from diversion.tenancy.models import Tenant

        sync_tenants(TENANTS_DIR, actor=SYSTEM)
        durham = db.session.scalar(db.select(Tenant).where(Tenant.slug == "durham"))
        assert durham is not None
        force = Ref(durham.id, slug=durham.slug)
        db.session.commit()
    token = make_token(app, force, "Load")
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, database, token, server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@dataclass
class Answer:
    status: int
    content_type: str
    retry_after: str | None
    body: Any


def _post(port: int, token: str, key: str, body: dict[str, Any]) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/api/v1/encounters", body=json.dumps(body), headers={
            "Authorization": f"Bearer {token}", "Idempotency-Key": key, "Content-Type": "application/json",
            "Connection": "close"})
        response = connection.getresponse()
        raw = response.read()
        content_type = response.getheader("Content-Type", "")
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Answer(response.status, content_type, response.getheader("Retry-After"), parsed)
    finally:
        connection.close()


def _intake(surname: str) -> dict[str, Any]:
    # A person of their own per intake: the intakes do not wait on each other's person.
    body = user_dealer()
    body["person"] = {**body["person"], "surname": surname, "pnc_id": None}
    return body


@dataclass
class Load:
    answers: dict[str, list[Answer]] = field(default_factory=dict)  # key -> every answer to it
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    successes: int = 0
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    enough: threading.Event = field(default_factory=threading.Event)

    def note(self, key: str, answer: Answer) -> None:
        with self.lock:
            self.answers.setdefault(key, []).append(answer)
            if answer.status == 201:
                self.successes += 1
                if self.successes >= STOP_AFTER:
                    self.enough.set()


def _client(port: int, token: str, load: Load, number: int) -> None:
    try:
        for index in range(INTAKES_PER_CLIENT):
            key = f"load-{number}-{index}-{uuid.uuid4()}"
            body = _intake(f"Loadtest{number}x{index}")
            with load.lock:
                load.bodies[key] = body
            load.note(key, _post(port, token, key, body))
    except Exception as error:
        load.problems.append(repr(error))
        load.enough.set()


def _checked(answer: Answer) -> None:
    assert answer.status in (201, 503), answer
    assert answer.content_type.startswith("application/json"), answer
    if answer.status == 503:
        assert answer.retry_after == "1", answer
        assert answer.body["errors"][0]["field"] is None, answer
        assert "busy or down for a moment" in answer.body["errors"][0]["message"], answer


def test_stopping_the_database_under_load_loses_and_doubles_nothing(
    cluster: Cluster, served: tuple[Flask, databases.TestDatabase, str, int],
) -> None:
    _app, database, token, port = served
    load = Load()
    clients = [threading.Thread(target=_client, args=(port, token, load, n)) for n in range(CLIENTS)]
    for client in clients:
        client.start()
    load.enough.wait(timeout=120)
    cluster.stop()  # mid-load: requests are in flight
    for client in clients:
        client.join(timeout=120)
    assert not load.problems
    assert all(not client.is_alive() for client in clients)
    firsts = [answers[0] for answers in load.answers.values()]
    for answer in firsts:
        _checked(answer)
    statuses = [answer.status for answer in firsts]
    assert statuses.count(201) >= STOP_AFTER
    assert 503 in statuses, "the cluster stopped before any request failed"
    assert len(firsts) == CLIENTS * INTAKES_PER_CLIENT

    cluster.start()
    inspector = create_engine(database.inspector_url)
    try:
        # Every intake answered 201 while the cluster ran is in the database.
        answered = {answers[0].body["encounter"]["id"] for answers in load.answers.values()
                    if answers[0].status == 201}
        with inspector.connect() as connection:
            stored = set(connection.scalars(text("SELECT id::text FROM encounters")).all())
        assert answered <= stored

        # Every other intake sent again with its key: now each gets its 201, replayed or done now.
        for key, answers in load.answers.items():
            if answers[0].status == 201:
                continue
            for _ in range(RETRIES):
                again = _post(port, token, key, load.bodies[key])
                _checked(again)
                answers.append(again)
                if again.status == 201:
                    break
            assert answers[-1].status == 201, key

        # Each intake exactly once: one encounter per person, every person there.
        with inspector.connect() as connection:
            per_person = connection.execute(text(
                "SELECT p.id::text, count(e.id) FROM people p LEFT JOIN encounters e ON e.person_id = p.id "
                "GROUP BY p.id")).all()
            encounters = connection.scalar(text("SELECT count(*) FROM encounters"))
        assert len(per_person) == len(load.answers)
        assert all(count == 1 for _person, count in per_person)
        assert encounters == len(load.answers)
        final = {answers[-1].body["encounter"]["id"] for answers in load.answers.values()}
        with inspector.connect() as connection:
            assert set(connection.scalars(text("SELECT id::text FROM encounters")).all()) == final
    finally:
        inspector.dispose()

    # The app recovered on its own: no restart.
    health = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        health.request("GET", "/healthz")
        reply = health.getresponse()
        assert (reply.status, json.loads(reply.read())) == (200, {"status": "ok"})
    finally:
        health.close()
