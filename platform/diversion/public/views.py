"""The start page and the health check."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user
from sqlalchemy import select, text

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
def health() -> tuple[dict[str, str], int]:
    db.session.execute(text("SELECT 1"))
    return {"status": "ok"}, 200
