"""Platform admin console: the forces on the platform, every user account, and
adding people to forces."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from diversion.accounts import services
from diversion.accounts.access import Action, requires_platform_action
from diversion.accounts.forms import AddMemberForm, ConfirmForm
from diversion.accounts.models import Role
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.web import change_on_form
from diversion.words import current_language

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/")
@requires_platform_action(Action.MANAGE_USERS)
def index() -> str:
    forces = db.session.scalars(select(Tenant).order_by(Tenant.name)).all()
    return render_template("admin/index.html", forces=forces, confirm=ConfirmForm(),
                           drafts=[force for force in forces if force.status is ForceStatus.DRAFT])


@bp.route("/members/new", methods=["GET", "POST"])
@requires_platform_action(Action.MANAGE_USERS)
def add_member() -> str | Response | tuple[str, int]:
    """Give a person a role in a force: an existing account, or a new one."""
    forces = db.session.scalars(select(Tenant).order_by(Tenant.name)).all()
    form = AddMemberForm()
    form.force.choices = [("", _("Choose a force")),
                          *((force.slug, force.name_in(current_language())) for force in forces)]
    if form.validate_on_submit():
        force = next((f for f in forces if f.slug == form.force.data), None)
        if force is None:
            form.force.errors = [_("Choose one of the forces")]
        else:
            role = Role(form.role.data)
            with scoped(force.id):
                added = change_on_form(form, lambda: services.add_member(
                    force, email=form.email.data or "", name=form.name.data or "",
                    password=form.password.data or "", role=role, actor=current_user))
            if added is not None:
                user = added[0]
                flash(_("%(name)s is now %(role)s in %(force)s.", name=user.name, role=role.with_article,
                        force=force.name_in(current_language())), "success")
                return redirect(url_for(".index"))
    html = render_template("admin/add_member.html", form=form)
    return (html, 400) if form.errors else html
