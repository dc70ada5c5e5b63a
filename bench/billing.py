"""Monthly close benchmark: a month of 1,000,000 ledger rows, 45 forces and 10 providers, billed on the
local Stripe server (``tests/stripe_server.py``) through the official SDK.

The ledger rows are written straight into PostgreSQL (``COPY``), one contract per (force, provider), each
provider ready for payouts. Two months are closed in the same run: a baseline month with a tenth of the
rows, then the full month (then the full month again: no request at all). What is printed: seconds, the
process's peak memory (resident set) after each close, and the number of Stripe requests, which must follow
the invoices and their lines (the statement groups), not the ledger rows: ten times the rows, the same
requests.
"""

from __future__ import annotations

import itertools
import resource
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.postgres import app_config, fresh_database, server_url
from tests.stripe_server import StripeServer

FORCES, PROVIDERS = 45, 10
# Each (force, provider) prices three kinds of event on two pathways: six statement groups.
PRICES = {("referral_accepted", "adult"): 7000, ("referral_accepted", "youth"): 6500,
          ("session_attended", "adult"): 1500, ("session_attended", "youth"): 1400,
          ("course_completed", "adult"): 2500, ("course_completed", "youth"): 2500}


@dataclass(frozen=True)
class Measured:
    rows: int
    seconds: float
    peak_mb: float
    requests: int
    invoices: int
    lines: int


def _months() -> tuple[date, date]:
    today = datetime.now(UTC).date()
    last = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
    before = date(last.year - (last.month == 1), (last.month - 2) % 12 + 1, 1)
    return before, last


def _world(forces: int, providers: int) -> tuple[list[int], list[int]]:
    """Forces and providers enough for the run (copies of the synced ones), each provider ready for payouts."""
    from diversion.catalogue.models import Provider
    from diversion.extensions import db
    from diversion.tenancy.models import Tenant

    tenants = list(db.session.scalars(select(Tenant).order_by(Tenant.id)))
    model = tenants[0]
    copied = {column.key: getattr(model, column.key) for column in Tenant.__table__.columns
              if column.key not in ("id", "slug", "name")}
    for number in range(len(tenants), forces):
        db.session.add(Tenant(**copied, slug=f"bench-force-{number}", name=f"Bench Force {number:02d}"))
    made = list(db.session.scalars(select(Provider).order_by(Provider.id)))
    for number in range(len(made), providers):
        db.session.add(Provider(slug=f"bench-provider-{number}", name=f"Bench Provider {number:02d}"))
    db.session.commit()
    force_ids = list(db.session.scalars(select(Tenant.id).order_by(Tenant.id)))[:forces]
    provider_ids = list(db.session.scalars(select(Provider.id).order_by(Provider.id)))[:providers]
    return force_ids, provider_ids


def _contracts(force_ids: list[int], provider_ids: list[int]) -> dict[tuple[int, int], uuid.UUID]:
    from diversion.billing.models import Contract, VatTreatment
    from diversion.extensions import db
    from diversion.tenancy.context import scoped

    found: dict[tuple[int, int], uuid.UUID] = {}
    for force_id in force_ids:
        with scoped(force_id):
            for number, provider_id in enumerate(provider_ids):
                contract = Contract(tenant_id=force_id, provider_id=provider_id, starts_on=date(2020, 1, 1),
                                    vat=VatTreatment.STANDARD if number % 2 else VatTreatment.EXEMPT,
                                    platform_fee_basis_points=500, notes="benchmark")
                db.session.add(contract)
                db.session.flush()
                found[(force_id, provider_id)] = contract.id
            db.session.commit()
    return found


def _ready_for_payouts(server: StripeServer, provider_ids: list[int], key: str) -> None:
    from diversion.billing.models import ConnectedAccount
    from diversion.extensions import db

    for provider_id in provider_ids:
        answer = server.handle("POST", "/v1/accounts", b"type=express&country=GB", {"Authorization": f"Bearer {key}"})
        if answer is None:
            raise SystemExit("the local Stripe server did not make an account")
        server.set_account(answer[1]["id"], transfers=True)
        db.session.add(ConnectedAccount(provider_id=provider_id, stripe_account_id=answer[1]["id"],
                                        transfers_active=True, details_submitted=True))
    db.session.commit()


def _write_ledger(owner_url: str, month: date, rows: int, contracts: dict[tuple[int, int], uuid.UUID]) -> float:
    """``rows`` ledger rows in ``month``, spread over every (force, provider); seconds taken. Written as the
    server's superuser: COPY is refused where row-level security applies (the owner's too: it is forced)."""
    url, superuser = make_url(owner_url), server_url()
    conninfo = (f"host={superuser.host} port={superuser.port or 5432} user={superuser.username} "
                f"dbname={url.database}" + (f" password={superuser.password}" if superuser.password else ""))
    pairs = list(contracts.items())
    kinds = list(PRICES.items())
    moment = datetime(month.year, month.month, 3, 12, tzinfo=UTC)
    start = time.perf_counter()
    with psycopg.connect(conninfo) as connection, connection.cursor() as cursor:
        columns = ("id, tenant_id, key, provider_id, contract_id, month, kind, pathway, occurred_at, unit_pence, "
                   "quantity, amount_pence, reason, created_at")
        with cursor.copy(f"COPY ledger_entries ({columns}) FROM STDIN") as copy:
            for number, ((force_id, provider_id), contract_id) in zip(range(rows), itertools.cycle(pairs),
                                                                     strict=False):
                (kind, pathway), unit = kinds[(number // len(pairs)) % len(kinds)]  # every pair gets every kind
                at = moment + timedelta(minutes=number % 30000)
                copy.write_row((uuid.uuid4(), force_id, f"bench:{month:%Y-%m}:{number}", provider_id, contract_id,
                                month, kind, pathway, at, unit, 1, unit, "", at))
        connection.commit()
    return time.perf_counter() - start


def _close(server: StripeServer, month: date, rows: int) -> Measured:
    from diversion.accounts.access import SYSTEM
    from diversion.billing.close import close_month
    from diversion.billing.models import Statement, StatementLine
    from diversion.extensions import db

    before = len(server.requests)
    start = time.perf_counter()
    report = close_month(month, actor=SYSTEM)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the process's peak so far (kB on Linux)
    invoices = sum(1 for each in report.outcomes if each.status.value == "open")
    lines = 0
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant

    for force_id in db.session.scalars(select(Tenant.id)):
        with scoped(force_id):
            lines += int(db.session.scalar(select(func.count(StatementLine.id)).join(
                Statement, Statement.id == StatementLine.statement_id).where(Statement.month == month)) or 0)
    return Measured(rows, seconds, peak / 1e6, len(server.requests) - before, invoices, lines)


def _show(label: str, measured: Measured) -> None:
    print(f"  {label:<28} {measured.rows:>9,} rows  {measured.seconds:7.1f} s  peak RSS {measured.peak_mb:7.1f} MB  "
          f"{measured.requests:>6,} Stripe requests for {measured.invoices:,} invoices and {measured.lines:,} lines")


def bench_billing(rows: int = 1_000_000, forces: int = FORCES, providers: int = PROVIDERS) -> None:
    from diversion import create_app
    from diversion.extensions import db

    print(f"billing: closing a month of {rows:,} ledger rows, {forces} forces x {providers} providers, "
          "on the local Stripe server; baseline: a month of a tenth of the rows")
    baseline_month, month = _months()
    key = "sk_bench_local"
    with StripeServer() as server, fresh_database("billing") as database:
        config: dict[str, Any] = {**app_config(database), "ENV_NAME": "development", "STRIPE_SECRET_KEY": key,
                                  "STRIPE_API_BASE": server.url, "STRIPE_NETWORK_RETRIES": 0}
        app = create_app(config)
        with app.app_context():
            force_ids, provider_ids = _world(forces, providers)
            contracts = _contracts(force_ids, provider_ids)
            _ready_for_payouts(server, provider_ids, key)
            small = max(rows // 10, len(contracts) * len(PRICES))
            written = _write_ledger(database.owner_url, baseline_month, small, contracts)
            written += _write_ledger(database.owner_url, month, rows, contracts)
            print(f"  wrote {small + rows:,} ledger rows with COPY in {written:.0f} s")
            base = _close(server, baseline_month, small)
            full = _close(server, month, rows)
            again = _close(server, month, rows)
            db.session.remove()
            db.engine.dispose()
    _show("baseline month", base)
    _show("full month", full)
    _show("full month, closed again", again)
    per_invoice = full.requests / max(full.invoices, 1)
    print(f"  rows x{full.rows / base.rows:.1f}: seconds x{full.seconds / base.seconds:.2f}, "
          f"peak memory x{full.peak_mb / max(base.peak_mb, 0.001):.2f}, "
          f"Stripe requests x{full.requests / base.requests:.2f} "
          f"({per_invoice:.1f} per invoice, {full.requests / max(full.invoices + full.lines, 1):.2f} per invoice "
          "or line); closing again made "
          f"{again.requests} requests\n")
