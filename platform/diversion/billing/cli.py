"""``diversion billing``: the monthly close and reconciliation from the command line."""

from __future__ import annotations

import click
import stripe
from flask import Flask
from flask.cli import with_appcontext

from diversion.errors import FieldError


@click.group("billing")
def billing_group() -> None:
    """Contracts, the ledger, the monthly close on Stripe and reconciliation."""


@billing_group.command("close")
@click.option("--month", required=True, help="The month to close, as YYYY-MM (it must have ended).")
@click.option("--tenant", "tenant_slug", default=None, help="Close it for this force only (its slug).")
@with_appcontext
def close_command(month: str, tenant_slug: str | None) -> None:
    """Lock a month, write its statements and bill each force for each provider on Stripe."""
    from diversion.accounts.access import SYSTEM
    from diversion.billing.close import close_month
    from diversion.billing.months import parse_month
    from diversion.commands import force

    try:
        parsed = parse_month(month)
    except FieldError as error:
        raise click.BadParameter(error.message, param_hint="--month") from None
    tenant = force(tenant_slug) if tenant_slug is not None else None

    def progress(done: int, total: int | None, note: str) -> None:
        click.echo(f"[{done}/{total}] {note}" if total else note, err=True)

    try:
        report = close_month(parsed, tenant=tenant, actor=SYSTEM, progress=progress)
    except FieldError as error:
        raise click.BadParameter(error.message, param_hint="--month") from None
    except stripe.StripeError as error:  # what was done is kept: the next run carries on from there
        raise click.ClickException(f"Stripe refused or did not answer ({type(error).__name__}: "
                                   f"{error.user_message or error}). What was done is kept: run the command "
                                   "again to carry on; nothing is billed twice.") from None
    for line in report.lines():
        click.echo(line)
@billing_group.command("reconcile")
@click.option("--month", "month_text", required=True, metavar="YYYY-MM", help="The month to reconcile.")
@click.option("--tenant", "slug", default=None, metavar="SLUG", help="One force only (default: every force).")
@with_appcontext
def reconcile_command(month_text: str, slug: str | None) -> None:
    """Compare a month's ledger, statements, invoices on Stripe and payments; list every mismatch.

    Exits with status 1 when there is a mismatch, 0 when everything agrees.
    """
    from diversion.billing.months import parse_month
    from diversion.billing.reconcile import describe, reconcile
    from diversion.billing.stripe_api import opened
    from diversion.commands import force

    try:
        month = parse_month(month_text, field="--month")
    except FieldError as error:
        raise click.BadParameter(error.message, param_hint="--month") from error
    tenant = force(slug) if slug is not None else None
    with opened() as client:
        found = reconcile(month, tenant=tenant, stripe_client=client)
    for line in describe(found):
        click.echo(line)
    if not found.clean:
        raise SystemExit(1)


def register(app: Flask) -> None:
    app.cli.add_command(billing_group)
