"""Intake benchmark: encounters over HTTP against a bare endpoint on the same stack.

gunicorn (``infra/gunicorn.conf.py``, production settings) serves the app on
127.0.0.1 from a fresh PostgreSQL database, connecting as the app role so
that row-level security binds every query. N concurrent clients post
intakes to the JSON API as a force's system would: ``POST
/api/v1/encounters`` (recorded and decided with the policy in force), then,
when the decision is eligible, ``POST /api/v1/decisions/<id>/referrals``.
The baseline, in the same run and the same server, is a bare endpoint of the
same app returning a constant: what gunicorn, Flask and the app's own
request handling cost before any case work.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response

from bench.postgres import SECRETS, fresh_database, make_app
from diversion.accounts.access import SYSTEM
from diversion.cases.rules import DERIVED_FACTS
from diversion.config import REPO_ROOT
from diversion.eligibility.synthetic import cases

FORCE = "west-midlands"
HOST = "127.0.0.1"
BARE_PATH = "/bench/bare"
WARM_UP = 40  # requests per worker before measuring: compiled policies, pools, imports
READY_SECONDS = 60
REQUEST_TIMEOUT = 30


def serve() -> Flask:
    """The app gunicorn runs here: the production app, plus a bare endpoint."""
    from diversion import create_app

    app = create_app()

    @app.get(BARE_PATH)
    def bare() -> Response:
        return Response("ok", mimetype="text/plain")

    return app


@dataclass
class Run:
    """What one kind of work measured: seconds of each unit, failures, wall time."""

    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def _request(port: int, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    # One connection per request: gunicorn's sync workers close it after each answer.
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, json.loads(data) if is_json else data
    finally:
        connection.close()


def _drive(clients: int, units: list[Callable[[], int]]) -> Run:
    """Run ``units`` on ``clients`` threads; each unit returns how many requests it made."""
    run = Run()
    lock = threading.Lock()
    queue = iter(units)

    def client() -> None:
        while True:
            with lock:
                unit = next(queue, None)
            if unit is None:
                return
            start = time.perf_counter()
            try:
                made = unit()
            except Exception as error:  # counted and shown; the run goes on
                with lock:
                    run.failures.append(repr(error))
                continue
            elapsed = time.perf_counter() - start
            with lock:
                run.latencies.append(elapsed)
                run.requests += made

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - start
    return run


def _bodies(count: int, today: date) -> list[dict[str, Any]]:
    """Intakes of believable West Midlands cases met today, each a new person."""
    bodies = []
    for number, case in enumerate(cases(FORCE, count, start=today, days=1, seed="bench-intake")):
        facts = {k: v for k, v in case.facts.items() if k not in DERIVED_FACTS and v is not None}
        age = case.facts["age"]
        born = date(today.year - age - 1, 1, 1) if (today.month, today.day) == (1, 1) else date(today.year - age, 1, 1)
        bodies.append({
            "person": {"surname": f"Bench-{number}", "given_name": "Alex", "date_of_birth": born.isoformat()},
            "ethnicity": case.ethnicity, "offence_on": today.isoformat(), "facts": facts,
        })
    return bodies


def _intake(port: int, token: str, body: dict[str, Any], offerings: dict[str, str]) -> int:
    status, answer = _request(port, "POST", "/api/v1/encounters", body, token)
    if status != 201:
        raise RuntimeError(f"encounter: {status} {answer}")
    decision = answer["decision"]
    if decision["outcome"] != "eligible" or decision["pathway"] not in offerings:
        return 1
    status, answer = _request(port, "POST", f"/api/v1/decisions/{decision['id']}/referrals",
                              {"offering_id": offerings[decision["pathway"]]}, token)
    if status != 201:
        raise RuntimeError(f"referral: {status} {answer}")
    return 2


def _bare(port: int) -> int:
    status, answer = _request(port, "GET", BARE_PATH)
    if status != 200 or answer != b"ok":
        raise RuntimeError(f"bare: {status} {answer!r}")
    return 1


def _token_and_offerings(database: Any) -> tuple[str, dict[str, str]]:
    from sqlalchemy import select

    from diversion.catalogue.models import Offering
    from diversion.extensions import db
    from diversion.jsonapi.tokens import make_force_token as create_token
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant

    app = make_app(database)
    with app.app_context():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == FORCE))
        if tenant is None:
            raise SystemExit(f"no force {FORCE!r} after tenants sync")
        with scoped(tenant.id):
            _, token = create_token(tenant, name="intake benchmark", actor=SYSTEM)
            offerings = {o.pathway: str(o.id) for o in db.session.scalars(select(Offering))}
            db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return token, offerings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _start(database: Any, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ, **SECRETS,
        "DIVERSION_ENV": "production",
        "DATABASE_URL": database.app_url,
        "BIND": f"{HOST}:{port}",
        "GUNICORN_MAX_REQUESTS": "0",  # no worker restarts in the middle of a measurement
        "GUNICORN_LOG_LEVEL": "warning",
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), "-c", str(REPO_ROOT / "infra" / "gunicorn.conf.py"),
               "--chdir", str(REPO_ROOT), "--access-logfile", "-", "bench.intake:serve()"]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True)


def _wait_ready(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn stopped:\n{log.read_text()[-3000:]}")
        try:
            if _request(port, "GET", BARE_PATH)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"gunicorn did not answer within {READY_SECONDS} s:\n{log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _report(label: str, unit: str, run: Run) -> float:
    if run.failures:
        raise SystemExit(f"{label}: {len(run.failures)} failed, e.g. {run.failures[0]}")
    rate = len(run.latencies) / run.seconds
    print(f"  {label:<40} {len(run.latencies):>6,} {unit} in {run.seconds:6.1f} s = {rate:>8,.0f} {unit}/s "
          f"({run.requests / run.seconds:,.0f} requests/s); p50 {run.percentile(0.5):6.1f} ms, "
          f"p99 {run.percentile(0.99):6.1f} ms")
    return rate


def bench_intake(intakes: int = 2_000, clients: int = 8) -> None:
    from bench.postgres import server_url

    workers = os.environ.get("WEB_CONCURRENCY", "2 x cores + 1")
    print(f"intake: {intakes:,} intakes over HTTP by {clients} clients; gunicorn ({workers} workers), "
          f"PostgreSQL on {server_url().host} with row-level security")
    today = datetime.now(UTC).date()
    with tempfile.TemporaryDirectory(prefix="diversion-bench-") as folder, fresh_database("intake") as database:
        token, offerings = _token_and_offerings(database)
        port = _free_port()
        log = Path(folder) / "gunicorn.log"
        server = _start(database, port, log)
        try:
            _wait_ready(server, port, log)
            bodies = _bodies(intakes + WARM_UP * clients, today)
            warm = [lambda body=body: _intake(port, token, body, offerings) for body in bodies[:WARM_UP * clients]]
            _report("warm-up (not counted)", "intakes", _drive(clients, warm))
            bare = _drive(clients, [lambda: _bare(port)] * (intakes * 2))
            measured = [lambda body=body: _intake(port, token, body, offerings) for body in bodies[WARM_UP * clients:]]
            intake = _drive(clients, measured)
        finally:
            _stop(server)
        base = _report("bare endpoint, same stack (baseline)", "requests", bare)
        done = _report("intake: encounter + decision + referral", "intakes", intake)
        referred = intake.requests - len(intake.latencies)
        print(f"  {referred:,} of {len(intake.latencies):,} intakes were eligible and referred; "
              f"intake runs at 1/{base / done:.1f} of the bare endpoint's rate\n")
