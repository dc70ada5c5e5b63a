"""The console's work on one force (its configuration downloaded, suspended
and reopened) and the platform's audit log."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from diversion.accounts.access import Action, requires_platform_action
from diversion.accounts.forms import ConfirmForm
from diversion.extensions import db
from diversion.forces.audit_pages import audit_csv, audit_page
from diversion.forces.services import change_status, export_force
from diversion.forces.views import toml_download
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.web import change_or_flash
from diversion.words import current_language

bp = Blueprint("console", __name__, url_prefix="/admin")


def _force(slug: str) -> Tenant:
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        abort(404)
    return tenant


@bp.route("/forces/<slug>/export")
@requires_platform_action(Action.EXPORT_FORCE)
def export(slug: str) -> Response:
    """The force's configuration as its ``tenants/<slug>.toml`` file."""
    tenant = _force(slug)
    with scoped(tenant.id, current_user.id):
        text = export_force(tenant, actor=current_user)
    return toml_download(text, tenant.slug)


@bp.route("/forces/<slug>/suspend", methods=["GET", "POST"])
@requires_platform_action(Action.CHANGE_FORCE_STATUS)
def suspend(slug: str) -> str | Response:
    """Ask first (what suspending does), then suspend."""
    tenant = _force(slug)
    form = ConfirmForm()
    if form.validate_on_submit():
        change_or_flash(lambda: change_status(tenant, ForceStatus.SUSPENDED, actor=current_user),
                        _("%(force)s is suspended: its people's sessions have ended and its pages and "
                          "API tokens are closed until it is reactivated.", force=tenant.name_in(current_language())))
        return redirect(url_for("admin.index"))
    return render_template("admin/suspend.html", force=tenant, confirm=form)


@bp.route("/forces/<slug>/reactivate", methods=["POST"])
@requires_platform_action(Action.CHANGE_FORCE_STATUS)
def reactivate(slug: str) -> Response:
    tenant = _force(slug)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: change_status(tenant, ForceStatus.ACTIVE, actor=current_user),
                    _("%(force)s is open again: its people can sign in and its API tokens work.",
                      force=tenant.name_in(current_language())))
    return redirect(url_for("admin.index"))


@bp.route("/audit/")
@requires_platform_action(Action.READ_PLATFORM_AUDIT)
def audit() -> str | tuple[str, int]:
    return audit_page(tenant_id=None, reader=current_user, title=_("Audit log of the platform"),
                      endpoint="console.audit", csv_endpoint="console.audit_download", base="base.html")


@bp.route("/audit/events.csv")
@requires_platform_action(Action.READ_PLATFORM_AUDIT)
def audit_download() -> Response | tuple[str, int]:
    return audit_csv(tenant_id=None, reader=current_user, filename="platform-audit.csv",
                     title=_("Audit log of the platform"), endpoint="console.audit",
                     csv_endpoint="console.audit_download", base="base.html")
