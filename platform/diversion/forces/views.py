"""A force's own settings and audit, for its force admins and the platform
admins: its names and outcome codes, data retention, brand colour and
languages; the force's configuration downloaded as its file; who saw or
changed what."""

from __future__ import annotations

from dataclasses import asdict

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from diversion.accounts.access import Action, requires_force_or_platform_action
from diversion.accounts.sso import sign_on_of
from diversion.audit.reading import detail_name
from diversion.cases.rules import missed_sessions_allowed
from diversion.forces import onboarding
from diversion.forces.audit_pages import audit_csv, audit_page
from diversion.forces.forms import ACTION_LABELS, NamesForm, SettingsForm, names_entered
from diversion.forces.services import change_settings, export_force
from diversion.tenancy.web import force_blueprint
from diversion.web import change_on_form
from diversion.words import current_language

settings_bp = force_blueprint("settings", __name__, "/settings", platform_admins=True)
audit_bp = force_blueprint("force_audit", __name__, "/audit", platform_admins=True)

FIELD_NAMES = {"retention_months": _l("how long to keep case records"), "brand_colour": _l("brand colour"),
               "languages": _l("languages"), "missed_sessions_allowed": _l("missed sessions allowed")}


def sign_on_settings_url() -> str | None:
    """The force's single sign-on settings page, once that feature is on the platform."""
    if "sso.settings" not in current_app.view_functions:
        return None
    return url_for("sso.settings")


@settings_bp.route("/", methods=["GET", "POST"], endpoint="index")
@requires_force_or_platform_action(Action.CHANGE_FORCE_SETTINGS)
def settings_page() -> str | Response | tuple[str, int]:
    tenant = g.tenant
    form = SettingsForm(data={"retention_months": tenant.retention_months, "brand_colour": tenant.brand_colour,
                              "languages": list(tenant.languages),
                              "missed_sessions_allowed": missed_sessions_allowed(tenant)})
    if form.validate_on_submit():
        changed = change_on_form(form, lambda: change_settings(
            tenant, retention_months=form.retention_months.data, brand_colour=form.brand_colour.data or "",
            languages=list(form.languages.data or []), missed_sessions_allowed=form.missed_sessions_allowed.data,
            actor=current_user))
        if changed is not None:
            if changed:
                saved = ", ".join(str(FIELD_NAMES[name]) for name in changed)
                flash(_("Saved: %(settings)s.", settings=saved), "success")
            else:
                flash(_("Nothing was changed."), "success")
            return redirect(url_for(".index"))
    html = render_template("forces/settings.html", form=form, sign_on_url=sign_on_settings_url(),
                           sign_on=sign_on_of(tenant), action_labels=ACTION_LABELS)
    return (html, 400) if request.method == "POST" else html


@settings_bp.route("/names", methods=["GET", "POST"], endpoint="names")
@requires_force_or_platform_action(Action.CHANGE_FORCE_SETTINGS)
def names_page() -> str | Response | tuple[str, int]:
    """The force's names and outcome codes, which change at any stage (``onboarding.change_names``)."""
    tenant = g.tenant
    form = NamesForm(data=asdict(onboarding.details_of(tenant)) if request.method == "GET" else None)
    if onboarding.welsh_labels_required(tenant):  # not optional then
        form.completed_label_cy.label.text = _("What the code on completion means, in Welsh")
        form.not_completed_label_cy.label.text = _("What the code on non-completion means, in Welsh")
    if form.validate_on_submit():
        changed = change_on_form(form, lambda: onboarding.change_names(tenant, names_entered(form),
                                                                       actor=current_user))
        if changed is not None:
            if changed:
                flash(_("Saved: %(settings)s.", settings=", ".join(detail_name(name) for name in changed)),
                      "success")
            else:
                flash(_("Nothing was changed."), "success")
            return redirect(url_for(".index"))
    html = render_template("forces/names.html", form=form)
    return (html, 400) if request.method == "POST" else html


@settings_bp.route("/export")
@requires_force_or_platform_action(Action.EXPORT_FORCE)
def export() -> Response:
    """The force's configuration as its ``tenants/<slug>.toml`` file."""
    return toml_download(export_force(g.tenant, actor=current_user), g.tenant.slug)


def toml_download(text: str, slug: str) -> Response:
    response = Response(text, mimetype="application/toml")
    response.headers["Content-Disposition"] = f'attachment; filename="{slug}.toml"'
    return response


@audit_bp.route("/", endpoint="index")
@requires_force_or_platform_action(Action.READ_FORCE_AUDIT)
def audit_index() -> str | tuple[str, int]:
    return audit_page(tenant_id=g.tenant.id, reader=current_user,
                      title=_("Audit log of %(force)s", force=g.tenant.name_in(current_language())),
                      endpoint="force_audit.index", csv_endpoint="force_audit.download", base="force_base.html")


@audit_bp.route("/events.csv")
@requires_force_or_platform_action(Action.READ_FORCE_AUDIT)
def download() -> Response | tuple[str, int]:
    return audit_csv(tenant_id=g.tenant.id, reader=current_user, filename=f"{g.tenant.slug}-audit.csv",
                     title=_("Audit log of %(force)s",
                             force=g.tenant.name_in(current_language())), endpoint="force_audit.index",
                     csv_endpoint="force_audit.download", base="force_base.html")
