"""A provider admin's people pages, under /provider/people: who works for the
provider (paginated, searchable), invitations (made, shown once, withdrawn),
roles changed and people removed. The provider acted for is chosen as on the
integration pages (``acting``); no force is in scope."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from diversion.accounts import invitations, people
from diversion.accounts.access import Action, may
from diversion.accounts.forms import ConfirmForm, ProviderInviteForm, ProviderRoleForm
from diversion.accounts.invitations import ProviderInvitation
from diversion.accounts.models import ProviderMembership, ProviderRole
from diversion.accounts.views import invitation_sent
from diversion.extensions import db
from diversion.listing import page_of, search_terms
from diversion.providers.acting import WORKSPACE_BASE, provider_in_address, requires_provider_action
from diversion.tenancy.context import set_scope
from diversion.web import change_on_form, change_or_flash

bp = Blueprint("provider_people", __name__, url_prefix="/provider/people")


@bp.app_template_global()
def manages_provider_people() -> bool:
    """For the workspace's templates: whether the signed-in user may manage the people of the provider in hand."""
    provider = g.get("provider")
    return provider is not None and may(current_user, Action.MANAGE_PROVIDER_PEOPLE, provider_id=provider.id)


@bp.before_request
def _no_force() -> None:
    set_scope(None)  # a provider's people belong to no force


def _membership(membership_id: uuid.UUID) -> ProviderMembership:
    """One of this provider's memberships; 404 for any other."""
    membership = db.session.get(ProviderMembership, membership_id)
    if membership is None or membership.provider_id != g.provider.id:
        abort(404)
    return membership


@bp.route("/")
@requires_provider_action(Action.MANAGE_PROVIDER_PEOPLE)
def index() -> str:
    search = search_terms()
    page = page_of(people.provider_people(g.provider.id, search))
    return render_template(
        "providers/people.html", provider=g.provider, page=page, search=search, here=provider_in_address(),
        users=people.users_by_id(membership.user_id for membership in page.items),
        invitations=invitations.pending_provider_invitations(g.provider))


@bp.route("/invite", methods=["GET", "POST"])
@requires_provider_action(Action.MANAGE_PROVIDER_PEOPLE)
def invite() -> str | Response | tuple[str, int]:
    """Invite a person to work for the provider; the link is shown once."""
    form = ProviderInviteForm()
    if form.validate_on_submit():
        def make() -> tuple[ProviderInvitation, str, bool]:
            earlier = invitations.earlier_provider_invitation(g.provider, form.email.data or "")
            invitation, token = invitations.invite_to_provider(
                g.provider, email=form.email.data or "", name=form.name.data or "",
                role=ProviderRole(form.role.data), actor=current_user._get_current_object())
            return invitation, token, earlier is not None

        made = change_on_form(form, make)
        if made is not None:
            invitation, token, replaced = made
            return invitation_sent(invitation, token, joining=g.provider.name, replaced=replaced,
                                   back=url_for(".index", **provider_in_address()))
    html = render_template("providers/people_invite.html", provider=g.provider, form=form, here=provider_in_address())
    return (html, 400) if form.errors else html


@bp.route("/invitations/<uuid:invitation_id>/withdraw", methods=["GET", "POST"])
@requires_provider_action(Action.MANAGE_PROVIDER_PEOPLE)
def withdraw_invitation(invitation_id: uuid.UUID) -> Response | str:
    """Asks first (GET), then withdraws (POST); refuses what ``invitations.withdraw_provider_invitation`` refuses."""
    invitation = db.session.get(ProviderInvitation, invitation_id)
    if invitation is None or invitation.provider_id != g.provider.id:
        abort(404)
    if request.method == "GET":
        if invitation.used_at is not None:
            abort(404)
        return render_template("accounts/invitation_withdraw.html", base=WORKSPACE_BASE, invitation=invitation,
                               joining=g.provider.name, provider=g.provider, confirm=ConfirmForm(),
                               action=url_for(".withdraw_invitation", invitation_id=invitation.id,
                                              **provider_in_address()),
                               back=url_for(".index", **provider_in_address()))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: invitations.withdraw_provider_invitation(g.provider, invitation, actor=current_user),
                    _("The invitation to %(name)s is withdrawn: its link no longer works.", name=invitation.name))
    return redirect(url_for(".index", **provider_in_address()))


@bp.route("/<uuid:membership_id>/role", methods=["GET", "POST"])
@requires_provider_action(Action.MANAGE_PROVIDER_PEOPLE)
def change_role(membership_id: uuid.UUID) -> str | Response | tuple[str, int]:
    membership = _membership(membership_id)
    person = people.users_by_id([membership.user_id])[membership.user_id]
    form = ProviderRoleForm(data={"role": membership.role.value})
    if form.validate_on_submit():
        role, before = ProviderRole(form.role.data), membership.role
        if change_on_form(form, lambda: people.change_provider_role(g.provider, membership, role,
                                                                    actor=current_user)):
            if role is not before:
                done = (_("%(name)s is now an admin of %(provider)s.", name=person.name, provider=g.provider.name)
                        if role is ProviderRole.ADMIN else
                        _("%(name)s is now staff of %(provider)s.", name=person.name, provider=g.provider.name))
                flash(done, "success")
            return redirect(url_for(".index", **provider_in_address()))
    html = render_template("providers/people_role.html", provider=g.provider, membership=membership,
                           person=person, form=form, here=provider_in_address())
    return (html, 400) if form.errors else html


@bp.route("/<uuid:membership_id>/remove", methods=["GET", "POST"])
@requires_provider_action(Action.MANAGE_PROVIDER_PEOPLE)
def remove(membership_id: uuid.UUID) -> Response | str:
    """Asks first (GET), then removes the person (POST); refuses what ``people.remove_provider_membership``
    refuses."""
    membership = _membership(membership_id)
    person = people.users_by_id([membership.user_id])[membership.user_id]
    if request.method == "GET":
        return render_template("providers/people_remove.html", provider=g.provider, membership=membership,
                               person=person, confirm=ConfirmForm(), here=provider_in_address())
    if not ConfirmForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: people.remove_provider_membership(g.provider, membership, actor=current_user),
                    _("%(name)s no longer works for %(provider)s.", name=person.name, provider=g.provider.name))
    return redirect(url_for(".index", **provider_in_address()))
