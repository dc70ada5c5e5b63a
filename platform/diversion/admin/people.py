"""The platform admin's people pages, under /admin/people: every account on the
platform (paginated, searchable), deactivated (after a page that asks first)
and reactivated; and the invitation of a force's or a provider's admin (its
first one, usually).

A deactivated person's sessions end at once (their session version is
bumped): their next request finds them signed out, and they cannot sign in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from diversion.accounts import invitations, people, services
from diversion.accounts.access import Action, requires_platform_action
from diversion.accounts.forms import ConfirmForm, FirstAdminForm
from diversion.accounts.models import ForceMembership, ProviderMembership, ProviderRole, Role, User
from diversion.accounts.views import invitation_sent
from diversion.catalogue.models import Provider
from diversion.extensions import db
from diversion.listing import page_of, search_terms
from diversion.tenancy.context import scoped, set_scope
from diversion.tenancy.guard import ALL_TENANTS
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.web import change_on_form, change_or_flash
from diversion.words import current_language

bp = Blueprint("admin_people", __name__, url_prefix="/admin/people")
FORCE, PROVIDER = "force:", "provider:"


def memberships_of(users: Iterable[User]) -> dict[int, list[tuple[str, str]]]:
    """Where each of ``users`` works, by user id: (force or provider name, role) pairs, by name.

    Two queries for the lot, whatever their number: their roles in every force, then in every
    provider. Crosses forces on purpose (``all_tenants``): on PostgreSQL, row-level security lets
    them through only while a platform admin is in scope."""
    ids = {user.id for user in users}
    found: dict[int, list[tuple[str, str]]] = {user_id: [] for user_id in ids}
    if not ids:
        return found
    language = current_language()
    for user_id, force, role in db.session.execute(
            select(ForceMembership.user_id, Tenant, ForceMembership.role)
            .join(Tenant, Tenant.id == ForceMembership.tenant_id)
            .where(ForceMembership.user_id.in_(ids))
            .execution_options(**{ALL_TENANTS: True})):
        found[user_id].append((force.name_in(language), role.label))
    for user_id, name, provider_role in db.session.execute(
            select(ProviderMembership.user_id, Provider.name, ProviderMembership.role)
            .join(Provider, Provider.id == ProviderMembership.provider_id)
            .where(ProviderMembership.user_id.in_(ids))):
        found[user_id].append((name, provider_role.label))
    for places in found.values():
        places.sort(key=lambda place: (place[0].casefold(), place[1].casefold()))
    return found


@bp.route("/")
@requires_platform_action(Action.MANAGE_USERS)
def index() -> str:
    search = search_terms()
    set_scope(None, current_user.id)  # row-level security lets a platform admin read every force's memberships
    page = page_of(people.every_user(search))
    return render_template("admin/people.html", page=page, search=search, confirm=ConfirmForm(),
                           memberships=memberships_of(page.items))


def _back() -> Response:
    """To the list, on the page and search it was changed from."""
    return redirect(url_for(".index", **_kept()))


def _change_user(user_id: int, change: Callable[..., None], done: Callable[[str], str]) -> Response:
    """``done`` says, in a sentence naming the person, what the change did."""
    user = db.get_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: change(user, actor=current_user._get_current_object()), done(user.name))
    return _back()


def _kept() -> dict[str, Any]:
    """The list's page and search, carried to a change and back."""
    return {key: value for key, value in request.args.items() if key in ("q", "page") and value}


@bp.route("/<int:user_id>/deactivate", methods=["GET", "POST"])
@requires_platform_action(Action.MANAGE_USERS)
def deactivate(user_id: int) -> str | Response:
    """Asks first (GET), naming the person and what it does; then deactivates (POST), refusing
    what ``services.deactivate_user`` refuses."""
    if request.method == "GET":
        user = db.get_or_404(User, user_id)
        set_scope(None, current_user.id)  # as ``index``: their memberships in every force
        return render_template("admin/people_deactivate.html", user=user, confirm=ConfirmForm(),
                               memberships=memberships_of([user])[user.id],
                               action=url_for(".deactivate", user_id=user.id, **_kept()),
                               back=url_for(".index", **_kept()))
    return _change_user(user_id, services.deactivate_user, lambda name: _(
        "%(name)s is deactivated: their sessions have ended.", name=name))


@bp.route("/<int:user_id>/reactivate", methods=["POST"])
@requires_platform_action(Action.MANAGE_USERS)
def reactivate(user_id: int) -> Response:
    return _change_user(user_id, services.reactivate_user, lambda name: _("%(name)s can sign in again.", name=name))


def _choices() -> tuple[list[SelectChoice], dict[str, Tenant | Provider]]:
    forces = db.session.scalars(select(Tenant).order_by(Tenant.name)).all()
    providers = db.session.scalars(select(Provider).order_by(Provider.name)).all()
    found: dict[str, Tenant | Provider] = {}
    choices = [SelectChoice("", _("Choose a force or provider"))]
    for force in forces:
        found[FORCE + force.slug] = force
        named = force.name_in(current_language())
        label = (_("%(name)s (being set up): force", name=named) if force.status is ForceStatus.DRAFT
                 else _("%(name)s: force", name=named))
        choices.append(SelectChoice(FORCE + force.slug, label))
    for provider in providers:
        found[PROVIDER + provider.slug] = provider
        choices.append(SelectChoice(PROVIDER + provider.slug, _("%(name)s: provider", name=provider.name)))
    return choices, found


@bp.route("/invite", methods=["GET", "POST"])
@requires_platform_action(Action.MANAGE_USERS)
def invite() -> str | Response | tuple[str, int]:
    """Invite the admin of a force or a provider; the link is shown once."""
    choices, found = _choices()
    form = FirstAdminForm(data={"organisation": request.args.get("to", "")} if request.method == "GET" else None)
    form.organisation.choices = choices
    if form.validate_on_submit():
        chosen = found.get(form.organisation.data or "")
        actor = current_user._get_current_object()
        email, name = form.email.data or "", form.name.data or ""
        if isinstance(chosen, Tenant):
            with scoped(chosen.id):
                made = change_on_form(form, lambda: invitations.invite_to_force(
                    chosen, email=email, name=name, role=Role.FORCE_ADMIN, actor=actor))
                if made is not None:
                    return invitation_sent(*made, joining=chosen.name, back=url_for(".index"))
        elif isinstance(chosen, Provider):
            made_for_provider = change_on_form(form, lambda: invitations.invite_to_provider(
                chosen, email=email, name=name, role=ProviderRole.ADMIN, actor=actor))
            if made_for_provider is not None:
                return invitation_sent(*made_for_provider, joining=chosen.name, back=url_for(".index"))
        else:
            form.organisation.errors = [_("Choose one of the forces or providers")]
    html = render_template("admin/people_invite.html", form=form)
    return (html, 400) if form.errors else html
