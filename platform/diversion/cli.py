"""The ``diversion`` command: a Flask CLI group over ``create_app``.

``diversion run`` (Flask's, with an in-process jobs worker), ``diversion db upgrade``
(Flask-Migrate) and ``diversion demo``; each feature adds its own group
(``diversion tenants`` from ``forces.cli``, ``diversion policy``...).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from diversion.extensions import db
from diversion.jobs.cli import run_with_worker

if TYPE_CHECKING:
    from diversion.tenancy.models import Tenant


def _create_app() -> Flask:
    from diversion import create_app
    from diversion.config import ConfigError

    try:
        return create_app()
    except ConfigError as error:
        raise click.ClickException(str(error)) from error


class _Group(FlaskGroup):
    """The command group: a database that does not answer is said in plain words, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as error:
            from diversion.outage import is_outage

            if is_outage(error):
                raise click.ClickException(f"The database does not answer ({type(error).__name__}): nothing more "
                                           "was done. Try again once it is back.") from error
            raise


@click.group(cls=_Group, create_app=_create_app, load_dotenv=False)
def main() -> None:
    """Run and manage the diversion platform."""


main.add_command(run_with_worker)  # `diversion run`: Flask's, with the jobs worked beside the server


@click.command("demo")
@click.option("--password", default="demo-password-1", show_default=True,
              help="Password for every demo account.")
@click.option("--past-decisions", "past_decisions", default=1500, show_default=True,
              type=click.IntRange(0, 1_000_000), help="Synthetic past decisions per force, over a year.")
@click.option("--scale", type=click.Choice(["demo", "national"]), default="demo", show_default=True,
              help="national: a force for every police force area of England and Wales and five years of "
                   "made-up case work among them, in place of the demo's case work.")
@click.option("--encounters", default=5_000_000, show_default=True, type=click.IntRange(43, 50_000_000),
              help="With --scale national: the encounters shared among the forces.")
@click.option("--seed", default="diversion", show_default=True, help="With --scale national: the same seed "
              "and size make the same history.")
@click.option("--workers", default=None, type=click.IntRange(1, 16),
              help="With --scale national: processes recording forces side by side (default: 2 on "
                   "PostgreSQL, 1 on SQLite).")
@with_appcontext
def demo(*, password: str, past_decisions: int, scale: str, encounters: int, seed: str,
         workers: int | None) -> None:
    """Seed demo accounts for every open force (idempotent) and print them, with case work to show.
    A force being set up in the console, suspended, or with no policy in force over the demo's case
    work is passed over and left as it is (``demo.demo_forces``)."""
    from datetime import UTC, datetime

    from diversion.demo import demo_forces

    today = datetime.now(UTC).date()
    if scale == "national":
        _national_forces(taken={tenant.slug for tenant, _ in demo_forces(today=today).passed_over})
    forces = demo_forces(today=today)
    accounts = _accounts(password, forces.filled)
    if scale == "national":
        _national_history(encounters=encounters, seed=seed, workers=workers,
                          filled={tenant.slug for tenant in forces.filled})
    else:
        _demo_case_work(past_decisions, forces.filled)
    for tenant, why in forces.passed_over:
        click.echo(f"Passed over {tenant.name} (/{tenant.slug}/), left as it is: {why}.")
    click.echo(f"Demo sign-ins (password: {password}):")
    width = max(len(email) for email, _ in accounts)
    for email, what in accounts:
        click.echo(f"  {email.ljust(width)}  {what}")


def _accounts(password: str, forces: list[Tenant]) -> list[tuple[str, str]]:
    from diversion.accounts.services import AccountError
    from diversion.demo import seed_demo

    try:
        accounts = seed_demo(password=password, forces=forces)
    except AccountError as error:
        db.session.rollback()
        raise click.ClickException(f"--{error.field}: {error.message}") from error
    db.session.commit()
    return accounts


def _national_forces(*, taken: set[str]) -> None:
    """A force for every area with none (``national_demo.national_folder``), synced as ``tenants sync`` does;
    none at an address in ``taken`` (the forces the demo passes over)."""
    import tempfile
    from pathlib import Path

    from flask import current_app

    from diversion.accounts.access import SYSTEM
    from diversion.forces.services import sync_tenants
    from diversion.national_demo import national_folder

    with tempfile.TemporaryDirectory(prefix="diversion-national-") as folder:
        made = national_folder(Path(current_app.config["TENANTS_DIR"]), Path(folder), taken=taken)
        report = sync_tenants(Path(folder), actor=SYSTEM)
    db.session.commit()
    click.echo(f"{len(made)} made-up forces beside the real ones; {len(report.created)} created now.")


def _national_history(*, encounters: int, seed: str, workers: int | None, filled: set[str]) -> None:
    """Each area's share of ``encounters`` recorded in its force, where that force is one the demo
    fills (``filled``, by address), then every force counted for the national comparison."""
    import time
    from datetime import UTC, datetime

    from diversion.insights.services import refresh_all
    from diversion.national_demo import shares

    today = datetime.now(UTC).date()
    counts = {slug: count for slug, count in shares(encounters).items() if slug in filled}
    if workers is None:
        workers = 2 if db.engine.dialect.name == "postgresql" else 1
    started = time.perf_counter()
    with click.progressbar(length=sum(counts.values()), label=f"Five years of case work in {len(counts)} forces",
                           show_pos=True) as bar:
        rows, counted = _record_forces(counts, today=today, seed=seed, workers=workers, progress=bar.update)
    seconds = time.perf_counter() - started
    click.echo(f"{rows:,} encounters recorded and counted in {seconds / 60:.1f} minutes ({rows / seconds:,.0f} a "
               "second; forces that already held imported cases were left as they were).")
    started = time.perf_counter()
    click.echo("Counting the rest for the national comparison...")
    refresh_all(db.session(), today=today, now=datetime.now(UTC), counted=counted)
    db.session.commit()
    click.echo(f"Counted in {time.perf_counter() - started:.0f} s.")


_WORKER: dict[str, Any] = {}  # a worker process's end of the progress queue


def _start_worker(config: dict[str, Any], progress: Any) -> None:
    from diversion import create_app

    create_app(config).app_context().push()
    _WORKER.update(progress=progress)


def _record_force(slug: str, count: int, today: date, seed: str) -> tuple[int, int | None]:
    """One force's made-up history (``national_demo.seed_force``), then its counts for the
    national comparison (``insights.services.refresh_force``, its own tables alone), committed: a
    unit of the command. (rows recorded, the force's key if it was counted)"""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from diversion.insights.services import refresh_force
    from diversion.national_demo import seed_force
    from diversion.tenancy.context import scoped
    from diversion.tenancy.models import Tenant

    progress = _WORKER.get("progress")
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise click.ClickException(f"no force {slug!r}")
    with scoped(tenant.id):
        rows = seed_force(tenant, count=count, today=today, seed=seed,
                          progress=progress.put if progress is not None else None)
        if rows:
            refresh_force(db.session(), tenant, today=today, now=datetime.now(UTC), national=False)
    db.session.commit()
    return rows, tenant.id if rows else None


def _plain_config() -> dict[str, Any]:
    """The running app's configuration as a new process can take it (plain values)."""
    from flask import current_app

    plain = (str, int, float, bool, type(None), dict, list, tuple)
    return {key: value for key, value in current_app.config.items() if isinstance(value, plain) and key.isupper()}


def _record_forces(counts: dict[str, int], *, today: date, seed: str, workers: int,
                   progress: Callable[[int], None]) -> tuple[int, set[int]]:
    """Each force's history (``counts`` by force address), the largest first, each committed
    whole with its counts (``_record_force``), in ``workers`` processes (here, with one); returns
    the rows recorded and the forces counted."""
    import multiprocessing
    import queue
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    order = sorted(counts, key=lambda slug: -counts[slug])
    results: list[tuple[int, int | None]] = []

    def summed() -> tuple[int, set[int]]:
        return sum(rows for rows, _ in results), {force for _, force in results if force is not None}

    if workers <= 1:
        _WORKER.clear()
        for slug in order:
            results.append(_record_force(slug, counts[slug], today, seed))
            progress(counts[slug])
        return summed()
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        told = manager.Queue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                                 initargs=(_plain_config(), told)) as pool:
            pending: set[Future[tuple[int, int | None]]] = {
                pool.submit(_record_force, slug, counts[slug], today, seed) for slug in order}
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                results += [future.result() for future in finished]
                while True:
                    try:
                        progress(told.get_nowait())
                    except queue.Empty:
                        break
            return summed()


def _demo_case_work(past_decisions: int, tenants: list[Tenant]) -> None:
    """A year of past decisions, an imported history, contracts and recent case work in each of
    ``tenants`` (the forces the demo fills), then every force counted for the national comparison."""
    import tempfile
    from datetime import UTC, datetime
    from pathlib import Path

    from diversion.billing.demo import seed_contracts
    from diversion.demo import case_work_window, seed_case_work, seed_history, seed_past_decisions
    from diversion.insights.services import refresh_all
    from diversion.tenancy.context import scoped

    today = datetime.now(UTC).date()
    with click.progressbar(length=len(tenants) * past_decisions,
                           label="A year of past decisions per force") as bar:
        for tenant in tenants:
            with scoped(tenant.id):
                seed_past_decisions(tenant, today=today, count=past_decisions, progress=bar.update)
                # The force's history first, imported (three pages of every list), so that
                # case references count in time: the history's, then the recent case work's.
                with tempfile.TemporaryDirectory() as directory:
                    seed_history(tenant, today=today, directory=Path(directory))
                # Contracts before the case work: its moves are billed as they are announced.
                seed_contracts(tenant, starts_on=case_work_window(today)[0])
                seed_case_work(tenant, today=today)
    click.echo("Counting every force for the national comparison...")
    refresh_all(db.session(), today=today, now=datetime.now(UTC))
    db.session.commit()


def register(app: Flask) -> None:
    from diversion.billing.cli import register as register_billing
    from diversion.cases.cli import register as register_cases
    from diversion.eligibility.cli import policy_group
    from diversion.forces.cli import tenants_group
    from diversion.insights.cli import register as register_insights
    from diversion.jobs.cli import register as register_jobs
    from diversion.jsonapi.cli import register as register_api
    from diversion.providers.cli import register as register_providers

    app.cli.add_command(policy_group)
    app.cli.add_command(tenants_group)
    app.cli.add_command(demo)
    register_api(app)
    register_jobs(app)
    register_cases(app)
    register_insights(app)
    register_providers(app)
    register_billing(app)
