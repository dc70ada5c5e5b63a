"""National-scale demo benchmark: ``diversion demo --scale national`` on PostgreSQL, against its target.

Every police force area of England and Wales gets a force, and the encounters
(5,000,000 by default) are made up and recorded on the import's bulk path in
two processes, as the command does; then the national comparison counts every
force. The figure is the time to record the history, against the 15 minutes
the national comparison's issue asks for; the count is timed apart.

Then, on the same data, in the same run:

- each national page, warm (the median of several requests after a first, signed in as the
  national lead), against the plain ``SELECT``s of the released figures it reads, sent again
  through the insights login as they were sent: the page's overhead;
- the aggregates' counting (every force's case work counted again by month and category)
  against one raw SQL ``GROUP BY`` of the same rows (each force's current decisions and their
  referrals, by month, outcome and state), read as a superuser: the counting's overhead.
"""

from __future__ import annotations

import re
import statistics
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import event

from bench.postgres import fresh_database, make_app
from bench.storage import connect, table_sizes
from tests.databases import TestDatabase

TARGET_MINUTES = 15
PAGE_TARGET_MS = 300  # the overview, warm, at national size
WARM_RUNS = 7
LEAD = "national@diversion.example"
PASSWORD = "bench-national-password"  # noqa: S105 - made up for a benchmark database, dropped with it
HTTPS = "https://localhost"  # production's cookies are Secure
# The rows the counting reads, grouped as plainly as SQL can: the floor of the counting.
RAW_GROUP_BY = """
    SELECT d.tenant_id, date_trunc('month', d.decided_on) AS month, d.outcome, r.state, count(*)
    FROM decisions d
    LEFT JOIN referrals r ON r.tenant_id = d.tenant_id AND r.encounter_id = d.encounter_id
    WHERE d.superseded_by_id IS NULL
    GROUP BY 1, 2, 3, 4
"""


def _median_ms(run: Callable[[], Any], runs: int = WARM_RUNS) -> float:
    run()  # warm
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _signed_in(app: Flask) -> Any:
    client = app.test_client()
    page = client.get("/sign-in", base_url=HTTPS).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    if token is None:
        raise SystemExit("no CSRF token on the sign-in page")
    answer = client.post("/sign-in", base_url=HTTPS, headers={"Referer": f"{HTTPS}/sign-in"},  # as a browser sends
                         data={"email": LEAD, "password": PASSWORD, "csrf_token": token.group(1)})
    if answer.status_code not in (302, 303):
        raise SystemExit(f"the national lead's sign-in answered {answer.status_code}")
    return client


def bench_pages(app: Flask, database: TestDatabase) -> None:
    """Each national page, warm, against the plain SELECTs of the figures it reads."""
    from diversion.extensions import db
    from diversion.insights import reading

    with app.app_context():
        everyone = reading.forces()
        engine = db.engines["insights"]
    first, second = everyone[0].id, everyone[1].id
    pages = {"overview": "/national/", "completion": "/national/completion",
             "12-month reoffending": "/national/reoffending_12", "funnel plot": "/national/completion/funnel.svg",
             "two forces compared": f"/national/compare?first={first}&second={second}",
             "disproportionality": "/national/equality"}
    client = _signed_in(app)
    sent: list[tuple[str, Any]] = []

    def keep(_connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    print(f"  national pages, warm (median of {WARM_RUNS}), against the plain SELECTs of the figures each reads:")
    with connect(database.insights_url) as plain:
        for label, path in pages.items():
            sent.clear()
            event.listen(engine, "before_cursor_execute", keep)
            try:
                answer = client.get(path, base_url=HTTPS)
            finally:
                event.remove(engine, "before_cursor_execute", keep)
            if answer.status_code != 200:
                raise SystemExit(f"{path} answered {answer.status_code}")
            statements = list(sent)

            def read_plainly(statements: list[tuple[str, Any]] = statements) -> None:
                for statement, parameters in statements:
                    plain.execute(statement, parameters).fetchall()

            page_ms = _median_ms(lambda path=path: client.get(path, base_url=HTTPS))
            select_ms = _median_ms(read_plainly)
            target = f" (target under {PAGE_TARGET_MS} ms)" if label == "overview" else ""
            print(f"    {label:<22} {page_ms:7.1f} ms{target}; its {len(statements)} SELECTs {select_ms:6.1f} ms; "
                  f"the page's overhead {page_ms / select_ms:5.1f}x")


def bench_counting(app: Flask, database: TestDatabase) -> None:
    """Every force's case work counted again, against a raw GROUP BY of the same rows."""
    from diversion.extensions import db
    from diversion.insights.metrics import count_force
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant

    today = datetime.now(UTC).date()
    # As a superuser, whom row-level security does not bind (it binds even the tables' owner: FORCE).
    with connect(database.inspector_url) as superuser:
        superuser.execute(RAW_GROUP_BY).fetchall()  # warm, as the counting finds the tables warm after it
        start = time.perf_counter()
        groups = len(superuser.execute(RAW_GROUP_BY).fetchall())
        raw = time.perf_counter() - start
    with app.app_context():
        forces = list(db.session.scalars(db.select(Tenant.id)))
        start = time.perf_counter()
        rows = 0
        for force in forces:
            with scoped(force):
                rows += len(count_force(db.session, force, today))
        counting = time.perf_counter() - start
        db.session.remove()
    print(f"  the aggregates' counting, {len(forces)} forces: {counting:.1f} s ({rows:,} rows of counts); a raw "
          f"GROUP BY of the same rows {raw:.1f} s ({groups:,} groups); the counting's overhead {counting / raw:.1f}x")


def bench_national(encounters: int = 5_000_000, workers: int = 2) -> None:
    from diversion.cli import demo

    print(f"national: diversion demo --scale national, {encounters:,} encounters, {workers} processes, PostgreSQL")
    with fresh_database("national") as database:
        app = make_app(database)
        started = time.perf_counter()
        result = app.test_cli_runner().invoke(demo, ["--scale", "national", "--encounters", str(encounters),
                                                     "--workers", str(workers), "--password", PASSWORD])
        seconds = time.perf_counter() - started
        if result.exit_code != 0:
            why = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
            raise SystemExit(f"the demo failed: {result.output[-2000:]}\n{why}")
        lines = [line for line in result.output.splitlines() if "counted in" in line.lower()]
        for line in lines:
            print(f"  {line}")
        with connect(database.inspector_url) as connection:
            rows = connection.execute("SELECT count(*) FROM encounters").fetchone()[0]  # type: ignore[index]
        sizes = table_sizes(database)
        print(f"  {rows:,} encounters in the database; the whole command took {seconds / 60:.1f} minutes "
              f"(target {TARGET_MINUTES} minutes for 5,000,000)")
        largest = sorted(sizes.items(), key=lambda item: -item[1].total)[:5]
        print("  largest tables: " + ", ".join(f"{name} {size.total / 1e6:,.0f} MB" for name, size in largest))
        bench_pages(app, database)
        bench_counting(app, database)
        with app.app_context():
            from diversion.extensions import db

            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
        print()
