"""Intake benchmark: encounters over HTTP against a bare endpoint on the same stack.

gunicorn (``infra/gunicorn.conf.py``, production settings) serves the app on
127.0.0.1 from a fresh PostgreSQL database, connecting as the app role so
that row-level security binds every query. N concurrent clients post
intakes to the JSON API as a force's system would: ``POST
/api/v1/encounters`` (recorded and decided with the policy in force), then,
when the decision is eligible, ``POST /api/v1/decisions/<id>/referrals``.
Two baselines, in the same run and the same server:

- the floor the issue measures intake against: an endpoint of the same app,
  behind the same gunicorn and connection pool, that sets the same scope and
  performs the same INSERTs (and the feed's counter UPDATE) as raw SQL on the
  driver, in one transaction per request, with the rows of an intake made
  in the warm-up as its template (two requests for an intake that was
  referred, as the API takes);
- a bare endpoint returning a constant: what gunicorn, Flask and the app's
  own request handling cost before any case work.

Each intake request's statements are counted on the wire (``tests.wire``),
as every statement the server is sent but those beginning and ending a
transaction. The CPU time of gunicorn's workers and of PostgreSQL's processes
is read from ``/proc`` around each turn, and printed per intake: a steadier
figure than the rates when the machine's speed drifts.
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
RAW_PATHS = {"encounter": "/bench/raw/encounter", "referral": "/bench/raw/referral"}
WARM_UP = 40  # requests per worker before measuring: compiled policies, pools, imports
READY_SECONDS = 60
REQUEST_TIMEOUT = 30
ROUNDS = 4  # turns of intake and of its floor


def serve() -> Flask:
    """The app gunicorn runs here: the production app, plus the bare and raw-SQL endpoints."""
    from flask import jsonify, request

    from diversion import create_app
    from diversion.extensions import csrf

    app = create_app()

    @app.get(BARE_PATH)
    def bare() -> Response:
        return Response("ok", mimetype="text/plain")

    @app.post(RAW_PATHS["encounter"])
    def raw_encounter() -> Response:
        request.get_json()  # the same body as an intake, read the same way
        return jsonify(_raw_write("encounter", {}))

    @app.post(RAW_PATHS["referral"])
    def raw_referral() -> Response:
        return jsonify(_raw_write("referral", request.get_json()))

    for view in (raw_encounter, raw_referral):  # called as the API is, with no form to carry a CSRF token
        csrf.exempt(view)
    return app


# ---------------------------------------------------------------- the raw-SQL floor

_TEMPLATES: dict[str, list[tuple[str, dict[str, Any]]]] = {}


def _templates(cursor: Any) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The rows of the newest referred intake made in the warm-up, table by table, in the
    order an intake writes them (read once per worker, in the force's scope)."""
    if _TEMPLATES:
        return _TEMPLATES

    def one(sql: str, *values: Any) -> dict[str, Any]:
        cursor.execute(sql, values)
        names = [column.name for column in cursor.description]
        found = cursor.fetchone()
        if found is None:
            raise RuntimeError(f"no template row: {sql}")
        return dict(zip(names, found, strict=True))

    referral = one("SELECT * FROM referrals ORDER BY created_at DESC LIMIT 1")
    encounter = one("SELECT * FROM encounters WHERE id = %s", referral["encounter_id"])
    _TEMPLATES["encounter"] = [
        ("people", one("SELECT * FROM people WHERE id = %s", encounter["person_id"])),
        ("encounters", encounter),
        ("decisions", one("SELECT * FROM decisions WHERE encounter_id = %s", encounter["id"])),
        ("audit_events", one("SELECT * FROM audit_events WHERE object_id = %s", str(encounter["id"]))),
    ]
    _TEMPLATES["referral"] = [
        ("referrals", referral),
        ("provider_feed_entries", one("SELECT * FROM provider_feed_entries WHERE referral_id = %s", referral["id"])),
        ("audit_events", one("SELECT * FROM audit_events WHERE object_id = %s", str(referral["id"]))),
    ]
    return _TEMPLATES


def _raw_write(kind: str, given: dict[str, Any]) -> dict[str, str]:
    """One intake's (or its referral's) rows written as raw SQL: the scope, then the INSERTs."""
    import secrets
    import uuid

    from psycopg.types.json import Json

    from diversion.extensions import db

    connection = db.engine.raw_connection()  # the app's own pool
    try:
        cursor = connection.cursor()
        tenant_id = int(os.environ["BENCH_FORCE_ID"])
        cursor.execute("SELECT set_config('app.tenant_id', %s, true), set_config('app.user_id', '', true), "
                       "set_config('app.provider_id', '', true)", (str(tenant_id),))
        made = {"person": str(uuid.uuid4()), "encounter": str(uuid.uuid4()), "referral": str(uuid.uuid4()),
                **given}
        for table, template in _templates(cursor)[kind]:
            row = {**template, "id": uuid.uuid4()}
            if table == "people":
                row.update(id=made["person"], name_key=secrets.token_bytes(16))
            elif table == "encounters":
                row.update(id=made["encounter"], person_id=made["person"], reference=secrets.token_hex(10))
            elif table == "decisions":
                row["encounter_id"] = made["encounter"]
            elif table == "referrals":
                row.update(id=made["referral"], encounter_id=made["encounter"], person_id=made["person"])
            elif table == "provider_feed_entries":
                cursor.execute("UPDATE provider_feed_counters SET last_position = last_position + 1 "
                               "WHERE provider_id = %s RETURNING last_position", (row["provider_id"],))
                row.update(referral_id=made["referral"], position=cursor.fetchone()[0])
            elif table == "audit_events":
                row["object_id"] = made[kind]
            columns = list(row)
            cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - the bench's own names
                           f"VALUES ({', '.join(['%s'] * len(columns))})",
                           [Json(value) if isinstance(value, dict | list) else value for value in row.values()])
        connection.commit()
        return made
    finally:
        connection.close()


def _cpu_seconds(server_session: int) -> dict[str, float]:
    """CPU seconds (user and system) used so far by gunicorn's processes (those of the session its
    master leads, ``server_session``) and by PostgreSQL's, from ``/proc``."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {"app": 0.0, "postgres": 0.0}
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            stat = (folder / "stat").read_text()
            command = (folder / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rpartition(")")[2].split()  # after the command's name, which may hold spaces
        kind = "app" if int(fields[3]) == server_session else "postgres" if command.startswith(b"postgres") else None
        if kind is not None:
            used[kind] += (int(fields[11]) + int(fields[12])) / tick
    return used


@dataclass
class Run:
    """What one kind of work measured: seconds of each unit, failures, wall time, and the CPU
    seconds the app's workers and PostgreSQL spent on it."""

    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=lambda: {"app": 0.0, "postgres": 0.0})

    def add(self, other: Run) -> None:
        """Count another run's work as part of this one."""
        self.latencies += other.latencies
        self.requests += other.requests
        self.failures += other.failures
        self.seconds += other.seconds
        for kind, seconds in other.cpu.items():
            self.cpu[kind] += seconds

    def cpu_per_unit(self) -> str:
        units = len(self.latencies) or 1
        return (f"{self.cpu['app'] / units * 1000:.2f} ms of the app's workers and "
                f"{self.cpu['postgres'] / units * 1000:.2f} ms of PostgreSQL")

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


def _drive(clients: int, units: list[Callable[[], int]], server_session: int | None = None) -> Run:
    """Run ``units`` on ``clients`` threads; each unit returns how many requests it made (with
    ``server_session``, the CPU the server and PostgreSQL spent meanwhile is measured too)."""
    run = Run()
    before = _cpu_seconds(server_session) if server_session is not None else None
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
    if before is not None and server_session is not None:
        after = _cpu_seconds(server_session)
        run.cpu = {kind: after[kind] - before[kind] for kind in before}
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


def _intake(port: int, token: str, body: dict[str, Any], offerings: dict[str, str],
            referred: list[dict[str, Any]] | None = None) -> int:
    """One intake as a force's system makes it: the encounter, then its referral when eligible
    (``referred`` collects the bodies that were)."""
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
    if referred is not None:
        referred.append(body)
    return 2


def _raw(port: int, body: dict[str, Any], refer: bool) -> int:
    """The same intake's rows written as raw SQL (the floor), in as many requests."""
    status, made = _request(port, "POST", RAW_PATHS["encounter"], body)
    if status != 200:
        raise RuntimeError(f"raw encounter: {status} {made}")
    if not refer:
        return 1
    status, answer = _request(port, "POST", RAW_PATHS["referral"], made)
    if status != 200:
        raise RuntimeError(f"raw referral: {status} {answer}")
    return 2


def _statements(database: Any, token: str, offerings: dict[str, str], bodies: list[dict[str, Any]]) -> None:
    """Every statement the server is sent for intakes (and their referrals), counted on the wire."""
    from bench.postgres import app_config
    from diversion import create_app
    from tests.wire import wire_to

    counts: dict[str, list[int]] = {"encounter": [], "referral": []}
    with wire_to(database.app_url) as wire:
        app = create_app({**app_config(database), "SQLALCHEMY_DATABASE_URI": wire.url})
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        for number, body in enumerate(bodies):
            wire.clear()
            answer = client.post("/api/v1/encounters", json=body, headers=headers)
            if answer.status_code != 201:
                raise SystemExit(f"encounter: {answer.status_code} {answer.text}")
            if number:  # the first warms the worker's caches, as the warm-up does for gunicorn's
                counts["encounter"].append(len(wire.work()))
            decision = answer.get_json()["decision"]
            if decision["outcome"] == "eligible" and decision["pathway"] in offerings:
                wire.clear()
                answer = client.post(f"/api/v1/decisions/{decision['id']}/referrals",
                                     json={"offering_id": offerings[decision["pathway"]]}, headers=headers)
                if answer.status_code != 201:
                    raise SystemExit(f"referral: {answer.status_code} {answer.text}")
                if number:
                    counts["referral"].append(len(wire.work()))
        with app.app_context():
            from diversion.extensions import db

            db.engine.dispose()
    for kind, seen in counts.items():
        if seen:
            print(f"  statements per {kind} request (on the wire, but BEGIN and COMMIT): "
                  f"{min(seen)} to {max(seen)} (target for an intake: at most 12)")


def _bare(port: int) -> int:
    status, answer = _request(port, "GET", BARE_PATH)
    if status != 200 or answer != b"ok":
        raise RuntimeError(f"bare: {status} {answer!r}")
    return 1


def _token_and_offerings(database: Any) -> tuple[str, dict[str, str], int]:
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
        force_id = tenant.id
        db.session.remove()
        db.engine.dispose()
    return token, offerings, force_id


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _start(database: Any, port: int, log: Path, force_id: int | None = None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ, **SECRETS,
        "BENCH_FORCE_ID": str(force_id or ""),  # the force of the raw-SQL floor
        "DIVERSION_ENV": "production",
        "DATABASE_URL": database.app_url,
        "INSIGHTS_DATABASE_URL": database.insights_url,
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
        token, offerings, force_id = _token_and_offerings(database)
        port = _free_port()
        log = Path(folder) / "gunicorn.log"
        server = _start(database, port, log, force_id)
        bodies = _bodies(intakes + WARM_UP * clients + 20, today)
        warm_up, measured_bodies, counted = (bodies[:WARM_UP * clients], bodies[WARM_UP * clients:-20],
                                             bodies[-20:])
        try:
            _wait_ready(server, port, log)
            _report("warm-up (not counted)", "intakes", _drive(clients, [
                lambda body=body: _intake(port, token, body, offerings) for body in warm_up]))
            bare = _drive(clients, [lambda: _bare(port)] * (intakes * 2))
            # Intake and its floor in turns, a round of each at a time, so that whatever else the
            # machine is doing weighs on both alike.
            referred: list[dict[str, Any]] = []
            intake, raw = Run(), Run()
            for start in range(0, len(measured_bodies), len(measured_bodies) // ROUNDS or 1):
                chunk = measured_bodies[start:start + (len(measured_bodies) // ROUNDS or 1)]
                intake.add(_drive(clients, [lambda body=body: _intake(port, token, body, offerings, referred)
                                            for body in chunk], server.pid))
                eligible = {id(body) for body in referred}
                refers = [(body, id(body) in eligible) for body in chunk]
                raw.add(_drive(clients, [lambda body=body, refer=refer: _raw(port, body, refer)
                                         for body, refer in refers], server.pid))
        finally:
            _stop(server)
        base = _report("bare endpoint, same stack", "requests", bare)
        floor = _report("raw SQL: the same scope and INSERTs", "intakes", raw)
        done = _report("intake: encounter + decision + referral", "intakes", intake)
        print(f"  {len(referred):,} of {len(intake.latencies):,} intakes were eligible and referred")
        print(f"  intake runs at {done / floor:.0%} of the raw-SQL floor's rate (target 50%), p99 "
              f"{intake.percentile(0.99):.0f} ms (target under 100 ms), and at 1/{base / done:.1f} of the "
              f"bare endpoint's rate")
        print(f"  CPU per intake: {intake.cpu_per_unit()}; the floor's {raw.cpu_per_unit()}")
        _statements(database, token, offerings, counted)
        print()
