"""Import benchmark: ``diversion import`` of a 1,000,000-row file against the database's own speed.

A believable West Midlands history (synthetic facts, some people met more
than once, referrals in every state) is written to a CSV file. The import
(the check pass, then every row decided and written with its person,
decision, referral and referral steps, in batches, in one transaction, as
the app role under row-level security) is timed against its physical
limit, measured in the same run on the same database: the tables' owner
COPYing the very rows the import wrote into empty copies of the same
indexed tables. A small file is imported first on the same connection, so
that plans cached while the tables were small would show as a slower
import; the import's rate in each tenth of the file shows whether it stays
flat as the tables grow.
"""

from __future__ import annotations

import csv
import itertools
import random
import resource
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.postgres import fresh_database, make_app
from bench.storage import connect, grown, print_storage, table_sizes
from diversion.accounts.access import SYSTEM
from diversion.cases import importer, rules
from diversion.cases.models import FINAL_STATES, State
from diversion.config import REPO_ROOT
from diversion.eligibility.compiler import CompiledPolicy, compile_cached
from diversion.eligibility.document import split_policy
from diversion.eligibility.engine import decide
from diversion.eligibility.synthetic import cases

FORCE = "west-midlands"
COURSES = {"divert": "cranstoun-divert", "divert-youth": "cranstoun-divert-youth"}
SEED_ROWS = 2_000  # imported first, on the same connection, while the tables are small
START = date(2021, 1, 1)  # after West Midlands' policy took effect
# Where referrals end up, roughly as the schemes report.
STATES = ((State.COMPLETED, 55), (State.NOT_COMPLETED, 15), (State.DECLINED, 5), (State.WITHDRAWN, 3),
          (State.OFFERED, 5), (State.ACCEPTED, 5), (State.BOOKED, 6), (State.ATTENDED, 6))
REPEAT_SHARE = 0.15  # rows that are a person met before
SURNAMES = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson",
            "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Khan", "Ahmed")
GIVEN = ("Jack", "Oliver", "Harry", "Mohammed", "Charlie", "Amelia", "Olivia", "Isla", "Emily", "Ava",
         "Leo", "Noah", "Aisha", "Kai", "Ruby", "Zara", "Tyler", "Liam", "Grace", "Ellie")


def _policy() -> CompiledPolicy:
    import tomllib

    raw = tomllib.loads((REPO_ROOT / "tenants" / f"{FORCE}.toml").read_text())["policy"]
    return compile_cached(split_policy(raw)[1])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(value) if value else importer.NO_VALUES
    return str(value)


def write_history(path: Path, rows: int, *, today: date, seed: str = "bench-import",
                  number_from: int = 0) -> dict[str, int]:
    """A CSV file of ``rows`` encounters the importer accepts; returns what it holds.

    Each row is decided here with the force's policy, so that only eligible
    rows carry a referral. People met again are chosen among those with no
    referral that ended in non-engagement, whose earlier diversions this
    policy does not count against them: their decisions stay as decided here.
    """
    rng = random.Random(seed)
    policy = _policy()
    days = (today - START).days - 60
    returning: list[list[Any]] = []  # [surname, given name, born, PNC ID, last offence] of people met again
    barred: set[str] = set()  # people whose referral ended in non-engagement: DIVERT is not offered again
    held = {"rows": 0, "referrals": 0, "repeats": 0}
    states, weights = zip(*STATES, strict=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(importer.COLUMNS)
        for number, case in enumerate(cases(FORCE, rows, start=START, days=days, seed=seed), start=number_from):
            facts = dict(case.facts)
            age = facts.pop("age")
            for derived in ("previous_diversions", "previous_non_engagement", "offence_age_days"):
                facts.pop(derived)
            decided_on = case.decided_on
            offence_on = decided_on - timedelta(days=case.facts["offence_age_days"] or 0)
            person = rng.choice(returning) if returning and rng.random() < REPEAT_SHARE else None
            if person is not None and person[4] <= offence_on and person[0] not in barred:
                held["repeats"] += 1  # (a person's rows stay in date order)
            else:
                born = date(offence_on.year - age, rng.randint(1, 12), rng.randint(1, 28))
                pnc = f"{offence_on.year % 100:02d}/{number:07d}{chr(65 + number % 26)}" if rng.random() < 0.6 else ""
                person = [f"{rng.choice(SURNAMES)}-{number}", rng.choice(GIVEN), born, pnc, offence_on]
                if len(returning) < 10_000:
                    returning.append(person)
            person[4] = offence_on
            age = rules.age_on(person[2], offence_on)  # as the import works it out
            decision = decide(policy, {**facts, "age": age, "previous_diversions": 0,
                                       "previous_non_engagement": False,
                                       "offence_age_days": (decided_on - offence_on).days}, decided_on)
            course = state = outcome_on = ""
            ended_badly = False
            if decision.outcome == "eligible" and decision.pathway in COURSES:
                picked = rng.choices(states, weights)[0]
                course, state = COURSES[decision.pathway], picked.value
                if picked in FINAL_STATES:
                    outcome_on = min(decided_on + timedelta(days=rng.randint(7, 50)), today).isoformat()
                ended_badly = picked in (State.NOT_COMPLETED, State.DECLINED)
                held["referrals"] += 1
            if ended_badly:
                barred.add(person[0])
            values = {"surname": person[0], "given_name": person[1], "date_of_birth": person[2].isoformat(),
                      "pnc_id": person[3], "ethnicity": case.ethnicity, "phone": "", "email": "", "address": "",
                      "offence_on": offence_on.isoformat(), "decided_on": decided_on.isoformat(),
                      "course": course, "referral_state": state, "referral_outcome_on": outcome_on,
                      "sessions_attended": "",
                      **{name: _cell(facts.get(name)) for name in importer.FACT_COLUMNS}}
            writer.writerow([values[name] for name in importer.COLUMNS])
            held["rows"] += 1
    return held


def _rate(label: str, count: int, seconds: float) -> float:
    rate = count / seconds
    print(f"  {label:<52} {count:>9,} rows in {seconds:8.1f} s = {rate:>10,.0f} rows/s")
    return rate


def recopy_seconds(database: Any, tables: Iterable[str], folder: Path) -> float:
    """Seconds for the tables' owner to COPY every row of ``tables`` into empty copies of them
    (``LIKE ... INCLUDING ALL``: the same columns, defaults, constraints and indexes), one
    table after another: the database's own speed at writing what the import wrote. Each
    table is read out to a file first, so that only the writing is timed."""
    seconds = 0.0
    dump = folder / "recopy.bin"
    with connect(database.inspector_url) as source, connect(database.owner_url) as owner:
        for name in tables:
            with dump.open("wb") as out, source.cursor().copy(f'COPY "{name}" TO STDOUT (FORMAT binary)') as data:
                for block in data:
                    out.write(block)
            owner.execute(f'CREATE TABLE "recopy_{name}" (LIKE "{name}" INCLUDING ALL)')
            start = time.perf_counter()
            with owner.transaction(), owner.cursor().copy(f'COPY "recopy_{name}" FROM STDIN (FORMAT binary)') as into, \
                    dump.open("rb") as data_in:
                while block := data_in.read(1 << 20):
                    into.write(block)
            seconds += time.perf_counter() - start
            owner.execute(f'DROP TABLE "recopy_{name}"')
    dump.unlink(missing_ok=True)
    return seconds


class _Segments:
    """The import's rate in each tenth of the file (is it flat as the tables grow?)."""

    def __init__(self, rows: int) -> None:
        self.every = max(1, rows // 10)
        self.done = 0
        self.times: list[float] = []

    def start(self) -> None:
        self.times = [time.perf_counter()]

    def __call__(self, rows: int) -> None:
        before, self.done = self.done, self.done + rows
        if before // self.every != self.done // self.every:
            self.times.append(time.perf_counter())

    def rates(self) -> list[float]:
        return [self.every / (later - earlier) for earlier, later in itertools.pairwise(self.times)]


def _import(tenant: Any, path: Path, today: date,
            segments: _Segments | None = None) -> tuple[importer.ImportReport, float, float]:
    """Check and import the file in one transaction: (report, seconds checking, seconds in all)."""
    from diversion.extensions import db

    start = time.perf_counter()
    checked = importer.check_file(tenant, path, today=today)
    checking = time.perf_counter() - start
    if segments is not None:
        segments.start()
    report = importer.import_checked(tenant, checked, actor=SYSTEM, progress=segments)
    db.session.commit()
    return report, checking, time.perf_counter() - start


def bench_import(rows: int = 1_000_000) -> None:
    from diversion.extensions import db
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant

    print(f"import: {rows:,} historic West Midlands encounters, against the table owner re-COPYing the rows "
          "the import wrote")
    today = datetime.now(UTC).date()
    with tempfile.TemporaryDirectory(prefix="diversion-bench-") as folder, fresh_database("import") as database:
        path, seed = Path(folder) / "history.csv", Path(folder) / "seed.csv"
        start = time.perf_counter()
        held = write_history(path, rows, today=today)
        write_history(seed, SEED_ROWS, today=today, seed="bench-import-seed", number_from=rows)
        print(f"  wrote {path.stat().st_size / 1e6:,.0f} MB in {time.perf_counter() - start:.0f} s: "
              f"{held['referrals']:,} referrals, {held['repeats']:,} rows of people met before")
        app = make_app(database)
        with app.app_context():
            tenant = db.session.scalar(db.select(Tenant).where(Tenant.slug == FORCE))
            if tenant is None:
                raise SystemExit(f"no force {FORCE!r} after tenants sync")
            with scoped(tenant.id):
                # Seeded first on the same connection, while the tables are small: plans
                # cached then must not slow the import that follows.
                _import(tenant, seed, today)
                sizes = table_sizes(database)
                segments = _Segments(rows)
                report, checking, total = _import(tenant, path, today, segments)
            db.session.remove()
            db.engine.dispose()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        tables = grown(database, sizes)
        baseline = _rate("owner re-COPYs the rows the import wrote (baseline)", rows,
                         recopy_seconds(database, tables, Path(folder)))
        _rate("check pass (every row, decisions replayed)", rows, checking)
        _rate("import pass (decided, written in batches, one transaction)", rows, total - checking)
        whole = _rate("diversion import, both passes", rows, total)
        print(f"  {report.new_people:,} people, decisions {dict(report.decisions)}, "
              f"{sum(report.referrals.values()):,} referrals; {SEED_ROWS:,} rows imported first on the same "
              "connection")
        rates = segments.rates()
        if rates:
            drift = rates[-1] / rates[0] - 1
            print(f"  import pass by tenths of the file: {', '.join(f'{rate:,.0f}' for rate in rates)} rows/s; "
                  f"last against first {drift:+.0%} (target within 20%)")
        print(f"  the import runs at {whole / baseline:.0%} of the owner's re-COPY (target 35% at 1,000,000 rows); "
              f"peak memory {peak:,.0f} MiB (target under 1,024)")
        print_storage(tables, encounters=rows)
        print()
