"""Platform admin console: the forces on the platform, every user account, and
adding people to forces."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from diversion.accounts import services
from diversion.accounts.access import Action, requires_platform_action
from diversion.accounts.forms import AddMemberForm, ConfirmForm
from diversion.accounts.models import Role, User
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.web import change_on_form, change_or_flash

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/")
@requires_platform_action(Action.MANAGE_USERS)
def index() -> str:
    forces = db.session.scalars(select(Tenant).order_by(Tenant.name)).all()
    users = db.session.scalars(select(User).order_by(User.email)).all()
    return render_template("admin/index.html", forces=forces, users=users, confirm=ConfirmForm(),
                           drafts=[force for force in forces if force.status is ForceStatus.DRAFT])


def _change_user(user_id: int, change: Callable[..., None], done: str) -> Response:
    user = db.get_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: change(user, actor=current_user), f"{user.email} {done}.")
    return redirect(url_for(".index"))


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
@requires_platform_action(Action.MANAGE_USERS)
def deactivate(user_id: int) -> Response:
    return _change_user(user_id, services.deactivate_user, "is deactivated; their sessions have ended")


@bp.route("/users/<int:user_id>/reactivate", methods=["POST"])
@requires_platform_action(Action.MANAGE_USERS)
def reactivate(user_id: int) -> Response:
    return _change_user(user_id, services.reactivate_user, "can sign in again")


@bp.route("/members/new", methods=["GET", "POST"])
@requires_platform_action(Action.MANAGE_USERS)
def add_member() -> str | Response | tuple[str, int]:
    """Give a person a role in a force: an existing account, or a new one."""
    forces = db.session.scalars(select(Tenant).order_by(Tenant.name)).all()
    form = AddMemberForm()
    form.force.choices = [("", "Choose a force"), *((force.slug, force.name) for force in forces)]
    if form.validate_on_submit():
        force = next((f for f in forces if f.slug == form.force.data), None)
        if force is None:
            form.force.errors = ["Choose one of the forces"]
        else:
            role = Role(form.role.data)
            with scoped(force.id):
                added = change_on_form(form, lambda: services.add_member(
                    force, email=form.email.data or "", name=form.name.data or "",
                    password=form.password.data or "", role=role, actor=current_user))
            if added is not None:
                user, _ = added
                flash(f"{user.name} is now {role.with_article} in {force.name}.", "success")
                return redirect(url_for(".index"))
    html = render_template("admin/add_member.html", form=form)
    return (html, 400) if form.errors else html
