"""A mixed load held for a while: does the product stay as fast as the lists grow?

Not part of ``make bench`` (twenty minutes by default): ``python -m bench load [--minutes M] [--clients N]``.

gunicorn (``infra/gunicorn.conf.py``, production settings) serves the app on 127.0.0.1 from a fresh
PostgreSQL database, the app bound by row-level security, with the test world's forces, people and
providers. N clients each repeat one round of a day's work, as the people and systems using the product
would: West Midlands' case system posts an intake (and a referral when eligible) to the force API; an
officer reads the force's referrals list; Cranstoun's staff read their workspace list; Cranstoun's case
system reads a page of 100 from its feed. Every intake adds to the lists the others read. As production's
autovacuum would, the tables are analysed as they grow (``bench.postgres.autovacuum_stand_in``, where the
server has autovacuum off, as this machine's has).

Printed: rounds completed in each minute, the mean of the first five minutes against the last five (the
target: within 10%), and the gunicorn workers' memory at the start and the end. A failed request stops
nothing: failures are counted and the first is shown.
"""

from __future__ import annotations

import http.client
import re
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.intake import (
    FORCE,
    HOST,
    REQUEST_TIMEOUT,
    _bodies,
    _free_port,
    _intake,
    _request,
    _start,
    _stop,
    _wait_ready,
)
from bench.postgres import autovacuum_stand_in, fresh_database, make_app

WINDOW = 5  # minutes compared at each end of the run
TARGET = 0.10  # the last window's throughput within this share of the first's


class _Browser:
    """A person's session over plain HTTP: the cookies the app sets, sent back by hand (the production
    cookies are Secure, which a cookie jar would keep from an http:// address)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def call(self, method: str, path: str, form: str | None = None) -> tuple[int, str]:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        try:
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
            if form is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            connection.request(method, path, body=form, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name] = rest.split(";", 1)[0]
            return response.status, text
        finally:
            connection.close()

    def sign_in(self, email: str, password: str) -> None:
        from urllib.parse import urlencode

        _, page = self.call("GET", "/sign-in")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        if token is None:
            raise SystemExit("no CSRF token on the sign-in page")
        status, _ = self.call("POST", "/sign-in", urlencode(
            {"email": email, "password": password, "csrf_token": token.group(1)}))
        if status not in (302, 303):
            raise SystemExit(f"sign-in of {email} answered {status}")

    def read(self, path: str) -> None:
        status, _ = self.call("GET", path)
        if status != 200:
            raise RuntimeError(f"{path}: {status}")


def _setup(database: Any) -> dict[str, Any]:
    """The world (forces, people, providers), a force token and a provider token, and the offerings."""
    from sqlalchemy import select

    from diversion.accounts.access import SYSTEM
    from diversion.catalogue.models import Offering
    from diversion.extensions import db
    from diversion.jsonapi.tokens import make_force_token, make_provider_token
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant
    from tests.conftest import PASSWORD, build_world

    app = make_app(database)
    with app.app_context():
        world = build_world()
        force = db.session.scalar(select(Tenant).where(Tenant.slug == FORCE))
        if force is None:
            raise SystemExit(f"no force {FORCE!r}")
        with scoped(force.id):
            _, force_token = make_force_token(force, name="load: case system", actor=SYSTEM)
            offerings = {o.pathway: str(o.id) for o in db.session.scalars(select(Offering))}
        _, provider_token = make_provider_token(world.providers["cranstoun"], name="load: case system", actor=SYSTEM)
        db.session.commit()
        setup = {"force_token": force_token, "provider_token": provider_token, "offerings": offerings,
                 "officer": world.email("a_officer"), "provider": world.email("provider_staff"),
                 "password": PASSWORD}
        db.session.remove()
        db.engine.dispose()
    return setup


def _workers_rss(server_pid: int) -> int:
    """The resident memory of gunicorn's workers (the children of its arbiter), in MiB."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(server_pid):
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total // 1024


def bench_load(minutes: int = 20, clients: int = 8) -> None:
    print(f"load: {clients} clients for {minutes} min, each round an intake (and referral), the force's "
          f"referrals list, the provider's list and a feed page of 100; gunicorn, PostgreSQL with row-level security")
    with tempfile.TemporaryDirectory(prefix="diversion-load-") as folder, fresh_database("load") as database:
        setup = _setup(database)
        port = _free_port()
        log = Path(folder) / "gunicorn.log"
        server = _start(database, port, log)
        try:
            _wait_ready(server, port, log)
            with autovacuum_stand_in(database) as vacuumed:
                rounds, failures = _run(port, setup, minutes, clients, rss=lambda: _workers_rss(server.pid))
            print(f"  {vacuumed()}")
        finally:
            _stop(server)
        _report(rounds, failures, minutes)
        if failures:
            kept = Path(tempfile.gettempdir()) / "diversion-load-gunicorn.log"
            kept.write_bytes(log.read_bytes())
            errors = [line for line in log.read_text().splitlines() if " 500 " in line or "Error" in line]
            print(f"  the server's log is kept at {kept}; its first error lines:")
            for line in errors[:10]:
                print(f"    {line}")


def _run(port: int, setup: dict[str, Any], minutes: int, clients: int, rss: Any) -> tuple[Counter[int], list[str]]:
    today = datetime.now(UTC).date()
    bodies = iter(_bodies(minutes * 60 * 40 * clients, today))  # more than the run can post
    lock = threading.Lock()
    rounds: Counter[int] = Counter()
    steps: defaultdict[tuple[int, str], list[float]] = defaultdict(list)  # (minute, step) -> seconds each
    failures: list[str] = []
    start = time.monotonic()
    stop = start + minutes * 60

    def client() -> None:
        officer, staff = _Browser(port), _Browser(port)
        officer.sign_in(setup["officer"], setup["password"])
        staff.sign_in(setup["provider"], setup["password"])
        while time.monotonic() < stop:
            with lock:
                body = next(bodies)
            def intake(body: dict[str, Any] = body) -> None:
                _intake(port, setup["force_token"], body, setup["offerings"])

            def feed() -> None:
                status, _ = _request(port, "GET", "/api/v1/provider/referrals?limit=100",
                                     token=setup["provider_token"])
                if status != 200:
                    raise RuntimeError(f"feed: {status}")

            try:
                for step, call in (("intake", intake),
                                   ("officer's referrals", lambda: officer.read(f"/{FORCE}/referrals")),
                                   ("provider's list", lambda: staff.read("/provider/")),
                                   ("feed page of 100", feed)):
                    began = time.monotonic()
                    call()
                    took = time.monotonic() - began
                    with lock:
                        steps[int((began - start) // 60), step].append(took)
            except Exception as error:  # counted and shown; the run goes on
                with lock:
                    failures.append(repr(error))
                continue
            with lock:
                rounds[int((time.monotonic() - start) // 60)] += 1

    print(f"  workers' memory at the start: {rss():,} MiB")
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"  workers' memory at the end:   {rss():,} MiB")
    window = min(WINDOW, max(1, minutes // 2))
    for step in dict.fromkeys(name for _, name in steps):
        first = [t for m in range(window) for t in steps[m, step]]
        last = [t for m in range(minutes - window, minutes) for t in steps[m, step]]
        if first and last:
            print(f"  {step:<20} mean {statistics.mean(first) * 1000:7.1f} ms in the first {window} min, "
                  f"{statistics.mean(last) * 1000:7.1f} ms in the last {window}")
    return rounds, failures


def _report(rounds: Counter[int], failures: list[str], minutes: int) -> None:
    for minute in range(minutes):
        print(f"  minute {minute + 1:>3}: {rounds[minute]:>6,} rounds")
    window = min(WINDOW, max(1, minutes // 2))
    first = sum(rounds[m] for m in range(window)) / window
    last = sum(rounds[m] for m in range(minutes - window, minutes)) / window
    change = (last - first) / first if first else 0.0
    verdict = "met" if abs(change) <= TARGET else "MISSED"
    print(f"  rounds a minute: first {window} min {first:,.0f}, last {window} min {last:,.0f} "
          f"({change:+.0%}; target within {TARGET:.0%}: {verdict})")
    if failures:
        print(f"  {len(failures):,} rounds failed, e.g. {failures[0]}")
