"""Lists at scale: the force's cases list, its referrals list, the review queue, the provider's referrals
list and the force's home page, with 1,000,000 encounters in one force, against the same pages at 1,000.

One PostgreSQL database (``bench.postgres``: migrated, the application connecting as the role that
row-level security binds). West Midlands gets 1,000 encounters written with SQL (``INSERT ... SELECT
generate_series``, never through the import): people (a pool of sealed identities, search keys random
hex), encounters with their standing decision (70% eligible, 25% not eligible, 5% waiting for review),
one decision each, and referrals to Cranstoun for 40% (mixed states; open ones due around today, some past
it), each with a transition. Every page of ``PAGES`` is timed warm through the Flask test client, signed
in (a supervisor of the force; a member of Cranstoun's staff; Cranstoun's case system, with a token, for
its feed): the median of ``RUNS`` requests and the
statements one request makes. Then the force grows to 1,000,000 encounters and every page is timed again.
Printed: milliseconds at each size, the ratio, and whether the large one is under 200 ms.

A page whose address answers 404 on this branch (a list not built yet) is shown as "not here".
"""

# ruff: noqa: S608 - the seeding SQL is built from this module's constants, its values are bound parameters
from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from bench.postgres import app_config, fresh_database, server_url
from diversion.eligibility.packed import pack_facts

FORCE = "west-midlands"
SMALL, LARGE = 1_000, 1_000_000
RUNS = 7
BUDGET_MS = 200
POOL = 1_000  # distinct sealed identities and contacts, shared out among the people
CHUNK = 250_000  # rows per INSERT statement while seeding
HOST = "https://localhost"  # production's cookies are secure: the test client speaks "https"

# (label, who reads it, address): the address is formatted with {force}, {reference}, {course}, {officer},
# {surname}, {day}, {month}, {year} of a seeded case. One table, so the lists still to come are timed too.
PAGES: list[tuple[str, str, str]] = [
    ("home page", "force", "/{force}/"),
    ("cases", "force", "/{force}/cases/"),
    ("cases: eligible", "force", "/{force}/cases/?decision=eligible"),
    ("cases: not eligible", "force", "/{force}/cases/?decision=not_eligible"),
    ("cases: needs review", "force", "/{force}/cases/?decision=needs_review"),
    ("cases: pathway", "force", "/{force}/cases/?pathway=divert"),
    ("cases: state offered", "force", "/{force}/cases/?state=offered"),
    ("cases: state completed", "force", "/{force}/cases/?state=completed"),
    ("cases: overdue", "force", "/{force}/cases/?overdue=yes"),
    ("cases: course", "force", "/{force}/cases/?course={course}"),
    ("cases: officer", "force", "/{force}/cases/?officer={officer}"),
    ("cases: from", "force", "/{force}/cases/?from=2026-06-01"),
    ("cases: to", "force", "/{force}/cases/?to=2024-03-01"),
    ("cases: reference", "force", "/{force}/cases/?q={reference}"),
    ("cases: surname and born", "force",
     "/{force}/cases/?surname={surname}&born-day={day}&born-month={month}&born-year={year}"),
    ("cases: sort by offence", "force", "/{force}/cases/?sort=-offence"),
    ("cases: sort by due", "force", "/{force}/cases/?sort=due"),
    ("referrals", "force", "/{force}/referrals"),
    *((f"referrals: {state}", "force", f"/{{force}}/referrals?state={state}")
      for state in ("offered", "accepted", "booked", "attended", "completed", "not_completed", "declined",
                    "withdrawn")),
    ("referrals: overdue", "force", "/{force}/referrals?overdue=yes"),
    ("referrals: page 40", "force", "/{force}/referrals?page=40"),
    ("review queue", "force", "/{force}/review"),
    ("provider: open (the default)", "provider", "/provider/"),
    ("provider: all", "provider", "/provider/?state=all"),
    *((f"provider: {state}", "provider", f"/provider/?state={state}")
      for state in ("offered", "accepted", "booked", "completed")),
    ("provider: overdue", "provider", "/provider/?overdue=yes"),
    ("provider: force", "provider", "/provider/?force={force}"),
    ("provider: course", "provider", "/provider/?course={course}"),
    ("provider: reference", "provider", "/provider/?q={referred}"),
    ("provider: due window", "provider", "/provider/?due_from=2026-12-01&due_to=2026-12-31"),
    ("provider: by state", "provider", "/provider/?sort=state"),
    ("provider: page 40 of all", "provider", "/provider/?state=all&page=40"),
    ("provider API: feed of 100", "feed", "/api/v1/provider/referrals?limit=100"),
]


@dataclass(frozen=True)
class Timed:
    ms: float | None  # None: the page is not here
    statements: int
    status: int


# ---------------------------------------------------------------- seeding with SQL

def _seed(admin_url: str, force_id: int, start: int, stop: int, setup: dict[str, Any]) -> None:
    """Encounters ``start`` .. ``stop - 1`` of the force, with their people, decisions and referrals (a
    step each), written by the superuser (row-level security does not bind it) in chunks."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(_VARINT)
        for low in range(start, stop, CHUNK):
            high = min(stop, low + CHUNK)
            arguments = {**setup, "force": force_id, "low": low, "high": high - 1}
            for statement in SEED:
                connection.execute(statement, arguments)
        # As autovacuum leaves a table after a million inserts: statistics, and the visibility map that
        # lets a count read an index alone.
        connection.execute("VACUUM ANALYZE people, encounters, decisions, referrals, provider_feed_entries")


# The case number ``i``: its year (2024 .. 2026), its place in a 100-bucket "hash" (h) that picks its
# outcome and referral state, and a day in its year. Ids are md5s of the number, so rows find each other.
_NUMBERS = """
    SELECT i, (2024 + i %% 3) AS year, i / 3 + 1 AS number, (i * 37 + i / 100) %% 100 AS h,
           make_date((2024 + i %% 3)::int, 1, 1) + ((i * 7919) %% 330)::int AS offence_on
    FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS i
"""
SEED: list[Any] = [
    f"""INSERT INTO people (id, tenant_id, name_key, pnc_key, search_key, birth_key, identity_sealed,
                            contact_sealed, ethnicity, created_at)
        SELECT md5('person-' || n.i)::uuid, %(force)s, decode(md5('name-' || n.i), 'hex'),
               decode(md5('pnc-' || n.i), 'hex'), decode(md5('search-' || n.i), 'hex'),
               decode(md5('born-' || n.i), 'hex'), s.identity_sealed, s.contact_sealed, 'W1', now()
        FROM ({_NUMBERS}) AS n JOIN bench_sealed s ON s.slot = n.i %% {POOL}""",
    f"""INSERT INTO encounters (id, tenant_id, reference, person_id, offence_on, recorded_at, recorded_by_id,
                                facts, source, outcome, pathway)
        SELECT md5('encounter-' || n.i)::uuid, %(force)s,
               %(prefix)s || '-' || n.year || '-' || lpad(n.number::text, 6, '0'), md5('person-' || n.i)::uuid,
               n.offence_on, n.offence_on + time '10:00', (%(officers)s::int[])[1 + n.i %% 3], %(no_facts)s, 'intake',
               CASE WHEN n.h < 70 THEN 'eligible' WHEN n.h < 95 THEN 'not_eligible' ELSE 'needs_review' END,
               CASE WHEN n.h < 70 THEN %(pathway)s END
        FROM ({_NUMBERS}) AS n""",
    f"""INSERT INTO decisions (id, tenant_id, policy_version_id, encounter_id, decided_on,
                               decided_at, facts, outcome, pathway, unmet, missing, age_band, ethnicity,
                               source, decided_by_id)
        SELECT md5('decision-' || n.i)::uuid, %(force)s, %(policy)s, md5('encounter-' || n.i)::uuid,
               n.offence_on, n.offence_on + time '10:00', %(no_facts)s,
               CASE WHEN n.h < 70 THEN 'eligible' WHEN n.h < 95 THEN 'not_eligible' ELSE 'needs_review' END,
               CASE WHEN n.h < 70 THEN %(pathway)s END, '[]',
               (CASE WHEN n.h >= 95 THEN '["admission"]' ELSE '[]' END)::json, '25-34', 'W1', 'intake',
               (%(officers)s::int[])[1 + n.i %% 3]
        FROM ({_NUMBERS}) AS n""",
    # 40% referred: states by h; open ones due from 20 days ago to 100 days ahead, closed ones 12 weeks on.
    f"""INSERT INTO referrals (id, tenant_id, encounter_id, person_id, offering_id, provider_id, pathway, state,
                               deadline, sessions_required, sessions_attended, created_at, updated_at, steps)
        SELECT md5('referral-' || n.i)::uuid, %(force)s, md5('encounter-' || n.i)::uuid,
               md5('person-' || n.i)::uuid, %(offering)s, %(provider)s, %(pathway)s, s.state,
               CASE WHEN s.state IN ('offered', 'accepted', 'booked', 'attended')
                    THEN current_date - 20 + (n.i %% 120)::int ELSE n.offence_on + 84 END,
               2, 0, n.offence_on + time '11:00', n.offence_on + time '11:00', ''::bytea
        FROM ({_NUMBERS}) AS n
        CROSS JOIN LATERAL (SELECT CASE
            WHEN n.h < 2 THEN 'offered' WHEN n.h < 4 THEN 'accepted' WHEN n.h < 7 THEN 'booked'
            WHEN n.h < 8 THEN 'attended' WHEN n.h < 32 THEN 'completed' WHEN n.h < 36 THEN 'not_completed'
            WHEN n.h < 38 THEN 'declined' ELSE 'withdrawn' END AS state) AS s
        WHERE n.h < 40""",
    f"""INSERT INTO provider_feed_entries (id, tenant_id, referral_id, provider_id, position, changed_at)
        SELECT md5('feed-' || n.i)::uuid, %(force)s, r.id, r.provider_id, n.i + 1, r.updated_at
        FROM ({_NUMBERS}) AS n JOIN referrals r ON r.tenant_id = %(force)s
             AND r.id = md5('referral-' || n.i)::uuid""",
    """INSERT INTO provider_feed_counters (provider_id, last_position)
        SELECT %(provider)s, max(position) FROM provider_feed_entries WHERE provider_id = %(provider)s
        ON CONFLICT (provider_id) DO UPDATE SET last_position = excluded.last_position""",
    # One step each, to its state, packed as ``cases.steps`` packs it: the form's version, the state's code,
    # no flags, and the moment in whole seconds after 1970 (zigzagged, doubled, plus one: seconds).
    f"""UPDATE referrals r SET steps = '\\x01'::bytea || set_byte('\\x00'::bytea, 0, array_position(
               ARRAY['offered', 'accepted', 'declined', 'booked', 'attended', 'missed', 'completed',
                     'not_completed', 'withdrawn'], r.state::text) << 4) || '\\x00'::bytea
               || pg_temp.varint(4 * extract(epoch FROM r.created_at + k.later)::bigint + 1),
               completed_at = CASE WHEN r.state = 'completed' THEN r.created_at + k.later END
        FROM (SELECT md5('referral-' || n.i)::uuid AS id, make_interval(days => (n.i %% 80)::int) AS later
              FROM ({_NUMBERS}) AS n) AS k
        WHERE r.tenant_id = %(force)s AND r.id = k.id""",
]
# A number as ``cases.steps`` writes it: seven bits a byte, the lowest first, the last byte's top bit clear.
_VARINT = """
    CREATE OR REPLACE FUNCTION pg_temp.varint(v bigint) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
    DECLARE written bytea := ''::bytea;
    BEGIN
        WHILE v > 127 LOOP
            written := written || set_byte('\\x00'::bytea, 0, ((v & 127) | 128)::int);
            v := v >> 7;
        END LOOP;
        RETURN written || set_byte('\\x00'::bytea, 0, v::int);
    END $$
"""


def _sealed_pool(admin_url: str) -> list[tuple[str, str, str, date]]:
    """``POOL`` sealed identities and contacts in ``bench_sealed``; returns (surname, given, born) of each."""
    from diversion.cases.identity import Contact, Identity, seal

    surnames = ("Okafor", "Smith", "Nowak", "Patel", "Jones", "O'Neill", "Khan", "Evans", "Silva", "Brown")
    made: list[tuple[str, str, str, date]] = []
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE bench_sealed (slot int PRIMARY KEY, identity_sealed bytea, "
                           "contact_sealed bytea)")
        copying = "COPY bench_sealed (slot, identity_sealed, contact_sealed) FROM STDIN"
        with connection.cursor().copy(copying) as copy:
            for slot in range(POOL):
                born = date(1970, 1, 1) + timedelta(days=slot * 11)
                surname = f"{surnames[slot % len(surnames)]}{slot}"
                identity = Identity(surname, "Sam", born)
                copy.write_row((slot, seal(identity), seal(Contact(phone="07700 900000"))))
                made.append((surname, "Sam", "", born))
    return made


# ---------------------------------------------------------------- timing pages

def _sign_in(client: Any, email: str, password: str) -> None:
    page = client.get("/sign-in", base_url=HOST)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    if token is None:
        raise SystemExit("no CSRF token on the sign-in page")
    answer = client.post("/sign-in", base_url=HOST, headers={"Referer": f"{HOST}/sign-in"},
                         data={"email": email, "password": password, "csrf_token": token.group(1)})
    if answer.status_code not in (302, 303):
        raise SystemExit(f"sign-in of {email} answered {answer.status_code}")


class _Bearer:
    """A test client that calls the provider API with a token of the provider."""

    def __init__(self, app: Any, token: str) -> None:
        self.client, self.token = app.test_client(), token

    def get(self, url: str, **options: Any) -> Any:
        return self.client.get(url, headers={"Authorization": f"Bearer {self.token}"}, **options)


def _time(client: Any, engine: Any, url: str) -> Timed:
    statements: list[str] = []

    def note(*args: Any) -> None:
        statements.append(args[2])

    first = client.get(url, base_url=HOST)  # warm: the plan, the caches
    if first.status_code == 404:
        return Timed(None, 0, 404)
    times: list[float] = []
    for _ in range(RUNS):
        statements.clear()
        event.listen(engine, "before_cursor_execute", note)
        started = time.perf_counter()
        answer = client.get(url, base_url=HOST)
        times.append((time.perf_counter() - started) * 1000)
        event.remove(engine, "before_cursor_execute", note)
    return Timed(statistics.median(times), len(statements), answer.status_code)


def _time_all(clients: dict[str, Any], engine: Any, values: dict[str, Any]) -> dict[str, Timed]:
    return {label: _time(clients[who], engine, address.format(**values)) for label, who, address in PAGES}


def _report(small: dict[str, Timed], large: dict[str, Timed], encounters: int) -> None:
    sizes = f"{SMALL:,}", f"{encounters:,}"
    print(f"{'page':<28} {sizes[0]:>9} {sizes[1]:>11} {'ratio':>7} {'<200ms':>7} {'stmts':>6}  status")
    for label, *_ in PAGES:
        one, many = small[label], large[label]
        if one.ms is None or many.ms is None:
            print(f"{label:<28} {'not here':>9}")
            continue
        ratio = many.ms / one.ms if one.ms else float("inf")
        under = "yes" if many.ms < BUDGET_MS else "NO"
        print(f"{label:<28} {one.ms:>7.1f}ms {many.ms:>9.1f}ms {ratio:>6.1f}x {under:>7} "
              f"{one.statements:>3}/{many.statements:<3} {many.status}")


def bench_lists(encounters: int = LARGE) -> None:
    from diversion import create_app
    from diversion.accounts.access import SYSTEM
    from diversion.catalogue.models import Course, Offering
    from diversion.eligibility.models import PolicyVersion
    from diversion.extensions import db
    from diversion.jsonapi.tokens import make_provider_token
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant
    from tests.conftest import PASSWORD, build_world

    print(f"lists: {SMALL:,} then {encounters:,} encounters in one force (West Midlands), PostgreSQL, "
          f"warm, median of {RUNS}")
    with fresh_database("lists") as database:
        admin_url = make_url(str(server_url())).set(drivername="postgresql", database=database.name) \
            .render_as_string(hide_password=False)
        app = create_app(app_config(database))
        with app.app_context():
            world = build_world()
            tenant = db.session.scalar(select(Tenant).where(Tenant.slug == FORCE))
            if tenant is None:
                raise SystemExit(f"no force {FORCE}")
            with scoped(tenant.id):
                offering, course_id = db.session.execute(
                    select(Offering, Course.id).join(Course, Course.id == Offering.course_id)
                    .where(Course.slug == "cranstoun-divert")).one()
                newest = PolicyVersion.effective_from.desc().nulls_last()
                policy = db.session.scalars(select(PolicyVersion).order_by(newest)).first()
                if policy is None:
                    raise SystemExit(f"{FORCE} has no policy")
                setup = {"prefix": tenant.reference_prefix, "offering": offering.id,
                         "provider": world.providers["cranstoun"].id, "pathway": offering.pathway,
                         "policy": policy.id, "no_facts": pack_facts({}),
                         "officers": [world.users[key].id for key in ("a_officer", "a_supervisor", "a_force_admin")]}
            _, token = make_provider_token(world.providers["cranstoun"], name="Lists bench", actor=SYSTEM)
            db.session.commit()
            engine = db.engine
            force_id = tenant.id
            pool = _sealed_pool(admin_url)
        surname, _given, _, born = pool[7]  # the person of case 7 (and of 1,007, 2,007, ...)
        values = {"force": FORCE, "course": course_id, "officer": world.users["a_officer"].id,
                  "reference": f"{setup['prefix']}-2025-000003", "referred": f"{setup['prefix']}-2024-000001",
                  "surname": surname, "day": born.day, "month": born.month, "year": born.year}
        started = time.perf_counter()
        _seed(admin_url, force_id, 0, SMALL, setup)
        clients = {"force": app.test_client(), "provider": app.test_client(), "feed": _Bearer(app, token)}
        _sign_in(clients["force"], world.email("a_supervisor"), PASSWORD)
        _sign_in(clients["provider"], world.email("provider_staff"), PASSWORD)
        small = _time_all(clients, engine, values)
        _seed(admin_url, force_id, SMALL, encounters, setup)
        print(f"seeded {encounters:,} encounters in {time.perf_counter() - started:.0f} s")
        large = _time_all(clients, engine, values)
        engine.dispose()
        _report(small, large, encounters)

