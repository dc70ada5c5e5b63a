"""Simulation at scale: a force's past decisions replayed under another policy, end to end through the page
and its job, on PostgreSQL with row-level security.

One database (``bench.postgres``: migrated, the application connecting as the role that row-level security
binds). West Midlands gets past decisions written with SQL (``INSERT ... SELECT generate_series``): each a
copy of one of a pool of 10,000 synthetic cases decided under West Midlands' policy (their facts as JSON,
as the decisions table keeps them), on days spread over a year. Its force admin asks the simulation page
what Durham's published policy would have done.

Three processes, as production has them: this one (seeding, and watching the run), a web worker (the app
behind the Flask test client, signed in) and a job worker (``jobs.work``, the same as ``diversion jobs
worker``). At the baseline size (a tenth) the page simulates while it waits (at or under the job
threshold); then the same simulation runs through the job. At the full size (1,000,000) the page offers
the job, its button starts it, and the run's page shows the report. Printed, for each size: seconds end to
end (from pressing the button to the report kept: ``finished_at`` of the run), the job worker's peak RSS
(``VmHWM``), the web worker's RSS before and after serving each page, and, as the floor, how long
PostgreSQL takes to hand the decisions' facts to a client that throws them away. Targets (issue 14):
1,000,000 decisions in under 15 s, the job worker under 500 MiB, the web worker up by under 50 MiB.

Also, in memory (no database): the column evaluation against ``decide()`` one by one, on the same cases.
"""

# ruff: noqa: S608 - the seeding SQL is built from this module's constants, its values are bound parameters
from __future__ import annotations

import json
import multiprocessing
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from multiprocessing.connection import Connection
from typing import Any

import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bench.postgres import app_config, fresh_database, server_url

FORCE, POLICY_OF = "west-midlands", "durham"
POOL = 10_000  # distinct synthetic cases the decisions are copies of
CHUNK = 250_000  # rows per INSERT statement while seeding
START = date(2025, 6, 1)  # the decisions fall in the year from here
HOST = "https://localhost"  # production's cookies are secure: the test client speaks "https"
TARGET_SECONDS, TARGET_WORKER_MIB, TARGET_WEB_MIB = 15, 500, 50
SPAWN = multiprocessing.get_context("spawn")


def _mib(field: str, pid: int | str = "self") -> float:
    """A memory figure of a process, from /proc (VmRSS now, VmHWM its peak), in MiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} in /proc/{pid}/status")


# ---------------------------------------------------------------- seeding with SQL

SEED = f"""
    INSERT INTO decisions (id, tenant_id, policy_version_id, encounter_id, decided_on, decided_at,
                           facts, outcome, pathway, unmet, missing, age_band, ethnicity, source)
    SELECT md5('decision-' || i)::uuid, %(force)s, %(policy)s, NULL, d.day,
           d.day + time '10:00', p.facts, p.outcome, p.pathway, p.unmet, '[]', p.age_band, p.ethnicity, 'demo'
    FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS i
    JOIN bench_pool p ON p.slot = i %% {POOL}
    CROSS JOIN LATERAL (SELECT %(start)s::date + ((i * 7919) %% 365)::int AS day) AS d
"""


def _pool(admin_url: str) -> None:
    """``POOL`` synthetic West Midlands cases decided under its policy, in ``bench_pool``."""
    from bench.eligibility import _policy
    from diversion.eligibility.engine import decide
    from diversion.eligibility.packed import pack_facts
    from diversion.eligibility.synthetic import cases
    from diversion.monitoring import age_band

    policy = _policy(FORCE)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE bench_pool (slot int PRIMARY KEY, facts bytea, outcome text, pathway text, "
                           "unmet json, age_band text, ethnicity text)")
        with connection.cursor().copy("COPY bench_pool FROM STDIN") as copy:
            for slot, case in enumerate(cases(FORCE, POOL, start=START, days=365, seed="bench")):
                decision = decide(policy, case.facts, case.decided_on)
                copy.write_row((slot, pack_facts(decision.facts), decision.outcome, decision.pathway,
                                json.dumps(decision.unmet_ids()), age_band(case.facts.get("age")), case.ethnicity))


def _seed(admin_url: str, start: int, stop: int, setup: dict[str, Any]) -> float:
    """Decisions ``start`` .. ``stop - 1`` of the force, written by the superuser; seconds taken."""
    began = time.perf_counter()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        for low in range(start, stop, CHUNK):
            connection.execute(SEED, {**setup, "low": low, "high": min(stop, low + CHUNK) - 1})
        connection.execute("VACUUM ANALYZE decisions")  # as autovacuum leaves a table after many inserts
    return time.perf_counter() - began


def _floor(admin_url: str, force_id: int) -> float:
    """Seconds for PostgreSQL to hand every decision's facts of the force to a client that throws them away."""
    began = time.perf_counter()
    with psycopg.connect(admin_url) as connection, connection.cursor().copy(
            f"COPY (SELECT facts FROM decisions WHERE tenant_id = {int(force_id)}) TO STDOUT") as copy:
        for _ in copy:
            pass
    return time.perf_counter() - began


# ---------------------------------------------------------------- the two other processes

def _job_worker(config: dict[str, Any], ready: Any) -> None:
    """A job worker, as ``diversion jobs worker`` runs it: until SIGTERM, which finishes the job in hand."""
    import asyncio

    from diversion import create_app, jobs

    app = create_app(config)
    ready.set()
    asyncio.run(jobs.work(app, signals=True))


def _web_worker(config: dict[str, Any], email: str, password: str, orders: Connection) -> None:
    """A web worker: the app behind a test client, signed in as ``email``. Each order is ("get", url) or
    ("post", url, data); the answer says its status, where it leads, its text, the seconds it took and the
    worker's RSS before and after."""
    from bench.lists import _sign_in
    from diversion import create_app

    app = create_app(config)
    client = app.test_client()
    _sign_in(client, email, password)
    while True:
        order = orders.recv()
        if order is None:
            return
        before = _mib("VmRSS")
        began = time.perf_counter()
        if order[0] == "get":
            answer = client.get(order[1], base_url=HOST)
        else:
            answer = client.post(order[1], base_url=HOST, data=order[2], headers={"Referer": f"{HOST}{order[1]}"})
        seconds = time.perf_counter() - began
        orders.send({"status": answer.status_code, "location": answer.headers.get("Location"), "text": answer.text,
                     "seconds": seconds, "before": before, "after": _mib("VmRSS")})


@dataclass
class Web:
    """The web worker, from this side."""

    process: Any
    orders: Connection

    def ask(self, *order: Any) -> dict[str, Any]:
        self.orders.send(order)
        answer: dict[str, Any] = self.orders.recv()
        if answer["status"] >= 400:
            raise SystemExit(f"{order[:2]} answered {answer['status']}")
        return answer

    def stop(self) -> None:
        self.orders.send(None)
        self.process.join(30)


def _start_web(config: dict[str, Any], email: str, password: str) -> Web:
    ours, theirs = SPAWN.Pipe()
    process = SPAWN.Process(target=_web_worker, args=(config, email, password, theirs), daemon=True)
    process.start()
    return Web(process, ours)


# ---------------------------------------------------------------- one size

@dataclass
class Measured:
    decisions: int
    page_seconds: float  # the simulation page asked for the policy
    page_growth: float  # the web worker's RSS after the page less before, MiB
    inline: bool  # the page simulated while it waited
    job_seconds: float  # pressing the button to the report kept
    worker_peak: float  # the job worker's VmHWM, MiB
    report_seconds: float  # the run's page with the report
    web_before: float  # the web worker's RSS before the first page, MiB
    web_after: float  # and after the run's page
    floor_seconds: float


def _form_fields(page: str) -> dict[str, list[str]]:
    form = re.search(r'<form method="post" action="[^"]+/simulate/runs".*?</form>', page, re.S)
    if form is None:
        raise SystemExit("the page offers no button to start the simulation")
    data: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(0)):
        data.setdefault(name, []).append(value)
    return data


def _run_finished(app: Any, force_id: int, run_id: str) -> float | None:
    """Seconds from asking to the report kept, once the run has finished (None before)."""
    import uuid

    from diversion.eligibility.models import SimulationRun, SimulationState
    from diversion.extensions import db
    from diversion.tenancy.context import scoped

    with app.app_context(), scoped(force_id):
        run = db.session.scalar(select(SimulationRun).where(SimulationRun.id == uuid.UUID(run_id)))
        db.session.remove()
    if run is None or run.state is SimulationState.WAITING or run.state is SimulationState.RUNNING:
        return None
    if run.state is SimulationState.FAILED:
        raise SystemExit("the simulation run failed: see the job worker's log")
    return float((run.finished_at - run.requested_at).total_seconds())


@dataclass(frozen=True)
class Place:
    """Where the benchmark runs: the app (this process's, to watch the run), its configuration, the force."""

    app: Any
    config: dict[str, Any]
    force_id: int
    admin_url: str


def _measure(place: Place, web: Web, decisions: int) -> Measured:
    app, config, force_id, admin_url = place.app, place.config, place.force_id, place.admin_url
    simulate = f"/{FORCE}/policy/simulate"
    web.ask("get", simulate)  # warm: templates, mappers, the policy compiled
    before = _mib("VmRSS", int(web.process.pid or 0))
    page = web.ask("get", f"{simulate}?source=force:{POLICY_OF}")
    inline = "decisions would change" in page["text"]
    worker_ready = SPAWN.Event()
    worker = SPAWN.Process(target=_job_worker, args=(config, worker_ready), daemon=True)
    worker.start()
    worker_ready.wait(60)
    time.sleep(1)  # listening for jobs
    fields = _form_fields(page["text"]) if not inline else {
        "csrf_token": [re.search(r'name="csrf_token" value="([^"]+)"', page["text"]).group(1)],  # type: ignore[union-attr]
        "source": [f"force:{POLICY_OF}"], "since": ["", "", ""]}
    started = web.ask("post", f"{simulate}/runs", fields)
    run_page = started["location"]
    run_id = run_page.rsplit("/", 1)[1]
    took = None
    while took is None:
        time.sleep(0.25)
        took = _run_finished(app, force_id, run_id)
    peak = _mib("VmHWM", int(worker.pid or 0))
    worker.terminate()
    worker.join(60)
    shown = web.ask("get", run_page)
    if "decisions would change" not in shown["text"]:
        raise SystemExit("the run's page shows no report")
    return Measured(decisions, page["seconds"], page["after"] - page["before"], inline, took, peak,
                    shown["seconds"], before, shown["after"], _floor(admin_url, force_id))


def _print(m: Measured, check: bool) -> None:
    def verdict(met: bool) -> str:
        return ("met" if met else "MISSED") if check else "baseline"

    where = "simulated while it waited" if m.inline else "offered the job"
    print(f"  {m.decisions:>9,} decisions: the page {where} in {m.page_seconds:6.2f} s "
          f"(web worker {m.page_growth:+.1f} MiB)")
    print(f"  {'':>9}            through the job, end to end {m.job_seconds:6.2f} s "
          f"(under {TARGET_SECONDS} s: {verdict(m.job_seconds < TARGET_SECONDS)}); "
          f"{m.decisions / m.job_seconds:,.0f} decisions/s; "
          f"{m.job_seconds / m.floor_seconds:.1f}x the {m.floor_seconds:.2f} s PostgreSQL takes to hand their "
          "facts over")
    print(f"  {'':>9}            job worker's peak RSS {m.worker_peak:6.0f} MiB "
          f"(under {TARGET_WORKER_MIB}: {verdict(m.worker_peak < TARGET_WORKER_MIB)})")
    growth = m.web_after - m.web_before
    print(f"  {'':>9}            web worker {m.web_before:.0f} -> {m.web_after:.0f} MiB after both pages "
          f"({growth:+.1f} MiB, under +{TARGET_WEB_MIB}: {verdict(growth < TARGET_WEB_MIB)}); "
          f"the run's page with its report in {m.report_seconds:.2f} s")


# ---------------------------------------------------------------- in memory

def _in_memory(count: int) -> None:
    """Columns against ``decide()`` one by one, on the same synthetic cases, no database."""
    from bench.eligibility import _policy
    from diversion.eligibility.engine import decide
    from diversion.eligibility.simulation import PastCase, chunks_of, evaluate, facts_needed, simulate
    from diversion.eligibility.synthetic import cases
    from diversion.monitoring import age_band

    policy = _policy(POLICY_OF)
    past = [PastCase(c.facts, c.decided_on, "eligible", "divert", age_band(c.facts.get("age")), c.ethnicity)
            for c in cases(FORCE, count, start=START, days=365, seed="bench")]
    chunks = list(chunks_of(past, facts_needed(policy)))

    def timed(run: Callable[[], object]) -> float:
        began = time.perf_counter()
        run()
        return time.perf_counter() - began

    def decide_each() -> None:
        for case in past:
            decide(policy, case.facts, case.decided_on)

    evaluated = min(timed(lambda: [evaluate(policy, chunk.columns) for chunk in chunks]) for _ in range(3))
    whole = min(timed(lambda: simulate(policy, past)) for _ in range(3))
    decided = min(timed(decide_each) for _ in range(3))
    print(f"  in memory, {count:,} cases, best of 3: the columns evaluated at {count / evaluated:,.0f}/s, the "
          f"whole report from objects at {count / whole:,.0f}/s; decide() one by one at {count / decided:,.0f}/s "
          f"(the outcome alone, not the criteria that block, which the report counts)")


def _parsed(place: Place, decisions: int) -> None:
    """The same simulation with the facts parsed in Python (the way SQLite and case-by-case criteria take),
    in this process, for comparison."""
    from bench.eligibility import _policy
    from diversion.eligibility import past
    from diversion.eligibility.simulation import replay
    from diversion.extensions import db
    from diversion.tenancy.context import scoped

    policy = _policy(POLICY_OF)
    with place.app.app_context(), scoped(place.force_id):
        for typed in (True, False):
            began = time.perf_counter()
            replay(policy, past.chunks(policy, None, typed=typed))
            seconds = time.perf_counter() - began
            how = "taken out by PostgreSQL (typed)" if typed else "parsed in Python"
            print(f"  {'':>9}            for comparison, in one process: the facts {how} {seconds:6.2f} s "
                  f"({decisions / seconds:,.0f}/s)")
        db.session.remove()


# ---------------------------------------------------------------- the benchmark

def bench_simulate(decisions: int = 1_000_000) -> None:
    from diversion import create_app
    from diversion.eligibility.models import PolicyStatus, PolicyVersion
    from diversion.extensions import db
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant
    from tests.conftest import PASSWORD, build_world

    baseline = decisions // 10
    print(f"simulate: {FORCE}'s past decisions under {POLICY_OF}'s policy, PostgreSQL (row-level security), "
          f"through the page and its job; {baseline:,} (baseline) then {decisions:,}")
    _in_memory(min(decisions, 200_000))
    with fresh_database("simulate") as database:
        admin_url = make_url(str(server_url())).set(drivername="postgresql", database=database.name) \
            .render_as_string(hide_password=False)
        config = app_config(database)
        config["SIMULATION_JOB_THRESHOLD"] = baseline  # the baseline simulates while the page waits
        app = create_app(config)
        with app.app_context():
            world = build_world()
            tenant = db.session.scalar(select(Tenant).where(Tenant.slug == FORCE))
            if tenant is None:
                raise SystemExit(f"no force {FORCE}")
            force_id = tenant.id
            with scoped(force_id):
                version = db.session.scalars(select(PolicyVersion).where(
                    PolicyVersion.status == PolicyStatus.PUBLISHED).order_by(PolicyVersion.number.desc())).first()
                if version is None:
                    raise SystemExit(f"{FORCE} has no published policy")
                setup = {"force": force_id, "policy": version.id,
                         "start": START}
            email = world.email("a_force_admin")
            db.session.remove()
        _pool(admin_url)
        seconds = _seed(admin_url, 0, baseline, setup)
        print(f"  seeded {baseline:,} decisions in {seconds:.0f} s")
        web = _start_web(config, email, PASSWORD)
        try:
            place = Place(app, config, force_id, admin_url)
            small = _measure(place, web, baseline)
            _print(small, check=False)
            seconds = _seed(admin_url, baseline, decisions, setup)
            print(f"  seeded up to {decisions:,} decisions in {seconds:.0f} s")
            large = _measure(place, web, decisions)
            _print(large, check=True)
            _parsed(place, decisions)
        finally:
            web.stop()
            with app.app_context():
                db.engine.dispose()
        print(f"  {decisions // baseline}x the decisions: {large.job_seconds / small.job_seconds:.1f}x the time "
              f"through the job, {large.floor_seconds / small.floor_seconds:.1f}x the floor\n")
