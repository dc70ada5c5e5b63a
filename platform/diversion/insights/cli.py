"""``diversion insights refresh`` (count every force again, release its tables) and ``diversion insights
export`` (print a table of the national comparison, as its page's CSV download gives it)."""

from __future__ import annotations

import json
import re

import click
from flask import Flask
from flask.cli import with_appcontext

from diversion.commands import today
from diversion.db import utcnow
from diversion.extensions import db
from diversion.insights import reading, services, tables
from diversion.insights.metrics import RATES
from diversion.insights.shown import Table


@click.group("insights")
def insights_group() -> None:
    """The national comparison: its aggregates and its tables."""


@insights_group.command("refresh")
@with_appcontext
def refresh_command() -> None:
    """Count every force's case work again and release its tables, protected."""
    try:
        written = services.refresh_all(db.session(), today=today(), now=utcnow())
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    click.echo(f"Counted every force again: {written:,} rows of counts; the tables are released.")


@insights_group.command("export")
@click.option("--format", "form", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--period", default="", help="A year (2025) or a quarter (2025-Q3); the latest full year if left out.")
@click.option("--rate", type=click.Choice(sorted(RATES)), help="One rate, force by force (default: the overview).")
@with_appcontext
def export_command(form: str, period: str, rate: str | None) -> None:
    """Print the overview (or one rate's table of forces) for a period, as the page's CSV gives it: plain
    numbers (in JSON, numbers where there is one, the marks and words as text, null where nothing applies)."""
    chosen = tables.choose(period, today=today())
    if chosen.problems:
        raise click.BadParameter(f"{period!r} is not a period with figures; choose from "
                                 f"{', '.join(found.key for found in chosen.periods) or 'none yet'}",
                                 param_hint="--period")
    table: Table = tables.metric(RATES[rate], chosen, None).forces if rate else \
        tables.overview(chosen, reading.forces())
    if form == "csv":
        click.echo(table.csv(), nl=False)
    else:
        head, rows = table.fields()
        click.echo(json.dumps({"caption": table.caption,
                               "rows": [{name: _value(field) for name, field in zip(head, row, strict=True)}
                                        for row in rows]}, indent=2, ensure_ascii=False))


_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _value(field: str) -> int | float | str | None:
    """A CSV field as JSON gives it: a number where it is one ("1235": 1235, "40.0": 40.0), null where
    empty, else the mark or words as they are ("[c]")."""
    if not field:
        return None
    if _NUMBER.fullmatch(field):
        return float(field) if "." in field else int(field)
    return field


def register(app: Flask) -> None:
    app.cli.add_command(insights_group)
