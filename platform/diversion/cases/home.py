"""The force home page: who you are in the force, the dashboard of its
referrals and the scheme's details."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import g, render_template

from diversion.cases.services import dashboard
from diversion.tenancy.web import force_blueprint

bp = force_blueprint("force", __name__)


@bp.route("/")
def home() -> str:
    """The force's home: who you are here, and the dashboard of its referrals."""
    return render_template("cases/home.html", tenant=g.tenant, roles=g.force_roles,
                           dashboard=dashboard(datetime.now(UTC).date()))
