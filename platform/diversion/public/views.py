"""The start page and the health check."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_login import current_user
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from diversion import outage
from diversion.accounts.services import workspaces
from diversion.extensions import db
from diversion.providers.services import providers_of
from diversion.tenancy.context import set_scope
from diversion.tenancy.models import Tenant

bp = Blueprint("public", __name__)


@bp.route("/")
def start() -> str:
    mine = []
    providers = []
    if current_user.is_authenticated:
        set_scope(None, current_user.id)
        mine = workspaces(current_user)
        providers = providers_of(current_user)
    forces = db.session.scalars(select(Tenant).order_by(Tenant.name)).all()
    return render_template("public/start.html", workspaces=mine, providers=providers, forces=forces)


@bp.route("/healthz")
def health() -> tuple[dict[str, str], int] | tuple[dict[str, str], int, dict[str, str]]:
    """Whether this instance can serve: JSON for load balancers, open to all, one ``SELECT 1``.

    A connection of its own, outside the request's session: no scope to
    write, no transaction left open, and nothing for the error page to undo.
    """
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        current_app.logger.warning("Health check: the database does not answer: %s", error)
        return ({"status": "unhealthy", "database": "not answering"}, 503,
                {"Retry-After": outage.retry_after()})
    return {"status": "ok"}, 200
