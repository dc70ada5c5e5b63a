"""``diversion tenants``: bring the forces in line with their files, move a
force through its lifecycle, write a force out as its file."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from diversion.accounts.access import SYSTEM
from diversion.commands import force
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.forces.files import ForceFilesInvalid, write_force_file
from diversion.forces.services import change_status, force_file_of, sync_tenants
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus


@click.group("tenants")
def tenants_group() -> None:
    """Forces defined in tenants/*.toml."""


@tenants_group.command("sync")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of force files (default: the TENANTS_DIR setting).")
@with_appcontext
def tenants_sync(folder: Path | None) -> None:
    """Validate every force file, then create or update the forces."""
    folder = folder or Path(current_app.config["TENANTS_DIR"])
    try:
        report = sync_tenants(folder, actor=SYSTEM)
    except ForceFilesInvalid as error:
        db.session.rollback()
        click.echo("Nothing was changed. Fix these problems first:", err=True)
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    except FieldError as error:  # e.g. a policy that cannot be published over a draft
        db.session.rollback()
        click.echo(f"Nothing was changed. {error.field}: {error.message}", err=True)
        sys.exit(1)
    db.session.commit()
    for label, slugs in (("created", report.created), ("updated", report.updated),
                         ("unchanged", report.unchanged), ("policies published", report.policies_published)):
        if slugs:
            click.echo(f"{label}: {', '.join(slugs)}")
    if report.catalogue_changes or report.offerings_added:
        click.echo(f"catalogue: {report.catalogue_changes} providers and courses changed, "
                   f"{report.offerings_added} offerings added")
    if report.catalogue_kept:
        click.echo(f"catalogue: {report.catalogue_kept} providers and courses changed in the console, "
                   "left as they are")
    if report.without_file:
        click.echo(f"left as they are (no file): {', '.join(report.without_file)}")
    for slug in report.sign_on_without_secret:
        click.echo(f"{slug}: single sign-on set up from the file; enter its client secret at "
                   f"/{slug}/settings/sign-on before anyone can sign in with it")


@tenants_group.command("status")
@click.argument("slug")
@click.argument("status", type=click.Choice([s.value for s in ForceStatus if s is not ForceStatus.DRAFT]))
@with_appcontext
def tenants_status(slug: str, status: str) -> None:
    """Open (active) or close (suspended) a force's pages to its members."""
    tenant = force(slug)
    try:
        change_status(tenant, ForceStatus(status), actor=SYSTEM)
    except FieldError as error:
        db.session.rollback()
        raise click.ClickException(f"Nothing was changed. {error.message}") from error
    db.session.commit()
    click.echo(f"{tenant.slug}: {status}")


@tenants_group.command("export")
@click.argument("slug")
@click.option("--folder", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder to write <slug>.toml into (an existing file of that name is replaced).")
@with_appcontext
def tenants_export(slug: str, folder: Path) -> None:
    """Write a force out as its file: its details, newest published policy and offerings."""
    tenant = force(slug)
    with scoped(tenant.id):
        path = write_force_file(force_file_of(tenant), folder)
    click.echo(f"wrote {path}")
