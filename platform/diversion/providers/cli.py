"""``diversion webhooks deliver``: send providers' webhooks that are due now, outside the job worker
(which sends them as they come: ``diversion jobs worker``, or ``diversion run``)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext


@click.group("webhooks")
def webhooks_group() -> None:
    """Outbound webhooks to providers."""


@webhooks_group.command("deliver")
@click.option("--loop", is_flag=True, help="Keep going: deliver what is due every --interval seconds.")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=5.0, show_default=True,
              help="Seconds between rounds with --loop.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=100, show_default=True,
              help="At most this many deliveries per force per round.")
@with_appcontext
def deliver(loop: bool, interval: float, batch: int) -> None:
    """Send the webhook deliveries that are due now (once, or with --loop until stopped),
    outside the job worker, which sends them as they come."""
    from diversion.providers import webhooks

    if loop:
        click.echo(f"Delivering webhooks every {interval:g} seconds; stop with Ctrl-C.")
        try:
            webhooks.run_forever(interval=interval, batch=batch, echo=click.echo)
        except KeyboardInterrupt:
            click.echo("Stopped.")
        return
    done = webhooks.deliver_due(batch=batch)
    click.echo(f"{done.delivered} delivered, {done.retrying} to retry later, {done.failed} failed.")


def register(app: Flask) -> None:
    app.cli.add_command(webhooks_group)
