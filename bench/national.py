"""National-scale demo benchmark: ``diversion demo --scale national`` on PostgreSQL, against its target.

Every police force area of England and Wales gets a force, and the encounters
(5,000,000 by default) are made up and recorded on the import's bulk path in
two processes, as the command does; then the national comparison counts every
force. The figure is the time to record the history, against the 15 minutes
the national comparison's issue asks for, and the rate against the import's
own on this machine (``python -m bench import``); the count is timed apart.
"""

from __future__ import annotations

import time
import traceback

from bench.postgres import fresh_database, make_app
from bench.storage import connect, table_sizes

TARGET_MINUTES = 15


def bench_national(encounters: int = 5_000_000, workers: int = 2) -> None:
    from diversion.cli import demo

    print(f"national: diversion demo --scale national, {encounters:,} encounters, {workers} processes, PostgreSQL")
    with fresh_database("national") as database:
        app = make_app(database)
        started = time.perf_counter()
        result = app.test_cli_runner().invoke(demo, ["--scale", "national", "--encounters", str(encounters),
                                                     "--workers", str(workers)])
        seconds = time.perf_counter() - started
        if result.exit_code != 0:
            why = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
            raise SystemExit(f"the demo failed: {result.output[-2000:]}\n{why}")
        lines = [line for line in result.output.splitlines() if "recorded in" in line or "Counted in" in line]
        for line in lines:
            print(f"  {line}")
        with connect(database.inspector_url) as connection:
            rows = connection.execute("SELECT count(*) FROM encounters").fetchone()[0]  # type: ignore[index]
        sizes = table_sizes(database)
        print(f"  {rows:,} encounters in the database; the whole command took {seconds / 60:.1f} minutes "
              f"(the history's share above; target {TARGET_MINUTES} minutes for 5,000,000)")
        largest = sorted(sizes.items(), key=lambda item: -item[1].total)[:5]
        print("  largest tables: " + ", ".join(f"{name} {size.total / 1e6:,.0f} MB" for name, size in largest))
        print()
