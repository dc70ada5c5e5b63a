"""The force home page: who you are in the force, the dashboard of its
referrals and the scheme's details."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import g, render_template, url_for

from diversion.cases.services import dashboard
from diversion.tenancy.web import force_blueprint

bp = force_blueprint("force", __name__)


@bp.route("/")
def home() -> str:
    """The force's home: who you are here, and the dashboard of its referrals (each count a link to its list)."""
    return render_template("cases/home.html", tenant=g.tenant, roles=g.force_roles,
                           dashboard=dashboard(datetime.now(UTC).date()),
                           overdue_list=url_for("cases.referrals", overdue="yes"))
