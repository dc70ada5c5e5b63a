"""``diversion billing``: the monthly close and reconciliation from the command line."""

from __future__ import annotations

import click
from flask import Flask


@click.group("billing")
def billing_group() -> None:
    """Contracts, the ledger, the monthly close on Stripe and reconciliation."""


def register(app: Flask) -> None:
    app.cli.add_command(billing_group)
