"""The force home page."""

from __future__ import annotations

from flask import g, render_template

from diversion.tenancy.web import force_blueprint

bp = force_blueprint("force", __name__)


@bp.route("/")
def home() -> str:
    return render_template("tenancy/home.html", tenant=g.tenant, roles=g.force_roles)
