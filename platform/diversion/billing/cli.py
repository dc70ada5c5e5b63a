"""``diversion billing``: the monthly close and reconciliation from the command line."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from diversion.errors import FieldError


@click.group("billing")
def billing_group() -> None:
    """Contracts, the ledger, the monthly close on Stripe and reconciliation."""


@billing_group.command("reconcile")
@click.option("--month", "month_text", required=True, metavar="YYYY-MM", help="The month to reconcile.")
@click.option("--tenant", "slug", default=None, metavar="SLUG", help="One force only (default: every force).")
@with_appcontext
def reconcile_command(month_text: str, slug: str | None) -> None:
    """Compare a month's ledger, statements, invoices on Stripe and payments; list every mismatch.

    Exits with status 1 when there is a mismatch, 0 when everything agrees.
    """
    from diversion.billing.months import parse_month
    from diversion.billing.reconcile import describe, reconcile, stripe_client
    from diversion.commands import force

    try:
        month = parse_month(month_text, field="--month")
    except FieldError as error:
        raise click.BadParameter(error.message, param_hint="--month") from error
    tenant = force(slug) if slug is not None else None
    with stripe_client() as client:
        found = reconcile(month, tenant=tenant, stripe_client=client)
    for line in describe(found):
        click.echo(line)
    if not found.clean:
        raise SystemExit(1)


def register(app: Flask) -> None:
    app.cli.add_command(billing_group)
