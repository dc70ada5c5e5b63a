"""``diversion import`` (historic cases, for onboarding), ``diversion referrals expire``
and ``diversion cases index-people``.

The same services as the pages and the API; one transaction per command
(per force for ``expire``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from diversion.accounts.access import SYSTEM
from diversion.cases import importer
from diversion.cases.services import expire_overdue, index_people
from diversion.commands import force, forces, today
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.words import counted


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{label.replace('_', ' ')} {count:,}" for label, count in sorted(counts.items())) or "none"


@click.command("import")
@click.option("--tenant", "slug", required=True, help="The force whose historic cases these are.")
@click.option("--check", "check_only", is_flag=True, help="Only check the file: report its problems, import nothing.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_command(slug: str, file: Path, check_only: bool) -> None:
    """Import historic encounters and their referrals from a CSV FILE.

    The columns are described in the README ("Importing historic cases").
    The whole file is checked first: if any row is wrong, every problem is
    listed with its row and column and nothing is imported. Then every row is
    recorded, decided and referred in one transaction.
    """
    tenant = force(slug)
    with scoped(tenant.id):
        try:
            with click.progressbar(length=file.stat().st_size, label=f"Checking {file.name}") as bar:
                checked = importer.check_file(tenant, file, today=today(), progress=bar.update)
            if check_only:
                db.session.rollback()
                click.echo(f"{file.name}: {checked.rows:,} rows, no problems found; nothing was imported (--check).")
                return
            with click.progressbar(length=checked.rows, label=f"Importing into {tenant.name}") as bar:
                report = importer.import_checked(tenant, checked, actor=SYSTEM, progress=bar.update)
        except importer.ImportInvalid as error:
            db.session.rollback()
            click.echo(f"Nothing was imported. {counted(len(error.problems), 'problem')} in {file.name}:", err=True)
            for problem in error.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(1)
        except BaseException:
            db.session.rollback()
            raise
        db.session.commit()
    click.echo(f"Imported {report.rows:,} encounters into {tenant.name} ({report.new_people:,} new people).")
    click.echo(f"  decisions: {_counts(dict(report.decisions))}")
    click.echo(f"  referrals: {_counts({state.value: count for state, count in report.referrals.items()})}")


@click.group("referrals")
def referrals_group() -> None:
    """Referrals: move on the ones past their deadline."""


@referrals_group.command("expire")
@click.option("--tenant", "slug", help="One force (default: every force).")
@with_appcontext
def expire_command(slug: str | None) -> None:
    """Move every open referral past its deadline to not completed."""
    tenants = forces(slug)
    on = today()
    total = 0
    for tenant in tenants:
        with scoped(tenant.id):
            try:
                moved = expire_overdue(tenant, today=on, actor=SYSTEM)
            except BaseException:
                db.session.rollback()
                raise
            db.session.commit()
        total += moved
        click.echo(f"{tenant.slug}: {moved:,} moved to not completed")
    if len(tenants) > 1:
        click.echo(f"{total:,} in all")


@click.group("cases")
def cases_group() -> None:
    """Case records: index people for search."""


@cases_group.command("index-people")
@click.option("--tenant", "slug", help="One force (default: every force).")
@with_appcontext
def index_people_command(slug: str | None) -> None:
    """Give every person recorded before search existed their search keys
    (surname with date of birth, and date of birth), so that staff can find them."""
    for tenant in forces(slug):
        with scoped(tenant.id):
            try:
                indexed = index_people(tenant)
            except BaseException:
                db.session.rollback()
                raise
            db.session.commit()
        click.echo(f"{tenant.slug}: {indexed:,} people indexed")


def register(app: Flask) -> None:
    app.cli.add_command(import_command)
    app.cli.add_command(referrals_group)
    app.cli.add_command(cases_group)
