"""Signing in and out, and a force admin's management of the force's members:
the list (paginated, searchable), invitations (made, shown once, withdrawn),
roles changed and memberships removed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from diversion.accounts import invitations, people, services, sso, sso_views
from diversion.accounts.access import Action, force_may, requires_force_action
from diversion.accounts.forms import ChangeRoleForm, ConfirmForm, InviteForm, SignInForm
from diversion.accounts.models import ForceMembership, ProviderMembership, Role, User
from diversion.extensions import db, limiter, login
from diversion.listing import page_of, search_terms
from diversion.tenancy.context import set_scope
from diversion.tenancy.web import force_blueprint, hand_membership_check
from diversion.web import change_on_form, change_or_flash
from diversion.words import current_language

bp = Blueprint("accounts", __name__)
members_bp = force_blueprint("members", __name__, "/members")
bp.add_app_template_global(force_may)  # force pages show what the access table lets the member do


def register_membership_check(app: Flask) -> None:
    """Tell the force pages (``tenancy.web``) how a user's roles in a force are
    found and who sees a force that is not active; called when the app is set up."""
    hand_membership_check(app, services.force_roles, sees_closed_forces=services.sees_closed_forces)


@login.user_loader
def load_user(token: str) -> User | None:
    """The user of a session cookie, if the session is still current.

    Deactivation, sign-out and removal of a membership bump the user's
    session version, so any older cookie (a copied one too) stops here.
    """
    user_id, _, version = token.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: refuses absolute and scheme-relative URLs."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _sign_in_limit() -> str:
    return str(current_app.config["SIGN_IN_RATE_LIMIT"])


def _account_limit() -> str:
    return str(current_app.config["SIGN_IN_ACCOUNT_RATE_LIMIT"])


def _account_key() -> str:
    """The account a sign-in is for (the email typed, as accounts are found by it)."""
    return "sign-in-account:" + (request.form.get("email") or "").strip().lower()[:254]


def _failed(response: Response) -> bool:
    """Whether a sign-in failed: only failures count towards the limits (a success redirects),
    so a trainer signing in a room of officers from one address is never held up."""
    return not 300 <= response.status_code < 400


def landing(user: User) -> str:
    """Where a person lands after signing in: their own workspace. The console for a
    platform admin; the national comparison for a national lead with no other workspace;
    their force's home, or their provider's workspace, when they have exactly one; else
    the start page, which lists them all.
    """
    if Role.PLATFORM_ADMIN in user.platform_roles:
        return url_for("admin.index")
    set_scope(None, user.id)  # the user's own memberships, across forces (``workspaces``)
    forces = services.workspaces(user)
    provider_count = db.session.scalar(select(func.count()).select_from(ProviderMembership)
                                       .where(ProviderMembership.user_id == user.id)) or 0
    if len(forces) == 1 and not provider_count and not user.platform_roles:
        return url_for("force.home", tenant=forces[0][0].slug)
    if provider_count and not forces and not user.platform_roles:
        return url_for("provider.referrals")
    if user.platform_roles == {Role.NATIONAL_LEAD} and not forces and not provider_count:
        return url_for("national.index")
    return url_for("public.start")


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"], deduct_when=_failed)  # per address
@limiter.limit(_account_limit, methods=["POST"], key_func=_account_key, deduct_when=_failed)
def sign_in() -> Response | tuple[str, int]:
    """Sign in with an email and password; lands on the person's own workspace
    (``landing``) unless a ``next`` path on this site was asked for.

    Refuses a wrong email or password, a force that asks for its own sign-in,
    and (429) more failed attempts than the limits allow, per address
    (``SIGN_IN_RATE_LIMIT``) and per account (``SIGN_IN_ACCOUNT_RATE_LIMIT``).
    """
    form = SignInForm()
    next_url = _safe_next(request.args.get("next"))
    if form.validate_on_submit():
        user = services.authenticate(form.email.data or "", form.password.data or "")
        if user is None:  # the failed sign-in's audit row lasts (a lasting record)
            form.email.errors = [_("Enter a correct email address and password")]
        elif forced := sso.compulsory_forces(user):
            # The password was right: remembered for a while, so that a first
            # sign-in through the force's provider joins that account to this one.
            services.record_password_refused(user, [tenant.slug for tenant in forced])
            session[sso_views.PROVEN] = {"user": user.id, "version": user.session_version, "at": int(time.time())}
            names = _(" and ").join(tenant.name_in(current_language()) for tenant in forced)
            form.email.errors = [ngettext("%(names)s asks its members to sign in with the force's own account, "
                                          "not a password: choose the force below",
                                          "%(names)s ask its members to sign in with the force's own account, "
                                          "not a password: choose the force below", len(forced), names=names)]
            return render_template("accounts/sign_in.html", form=form, forces=forced), 400
        else:
            # A fresh session at sign-in: nothing planted before it survives.
            session.clear()
            login_user(user)
            services.record_sign_in(user)
            return redirect(next_url or landing(user))
    elif form.is_submitted() and form.email.errors and form.email.data:
        services.record_malformed_sign_in(form.email.data)  # lasts: see there
    return render_template("accounts/sign_in.html", form=form, forces=sso.forces_signing_on()), (
        400 if form.errors and request.method == "POST" else 200
    )


@bp.route("/sign-out", methods=["POST"])
@login_required
def sign_out() -> Response:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.sign_out(current_user._get_current_object())
    logout_user()
    session.clear()
    flash(_("You have signed out."), "success")
    return redirect(url_for("accounts.sign_in"))


def _membership(membership_id: uuid.UUID) -> ForceMembership:
    """A membership of the force in the URL (the ORM guard adds the force); 404 for any other."""
    return db.get_or_404(ForceMembership, membership_id)


@members_bp.route("/")
@requires_force_action(Action.MANAGE_MEMBERS)
def index() -> str:
    search = search_terms()
    return render_template("accounts/members.html", page=page_of(people.force_members(search)), search=search,
                           invitations=invitations.pending_force_invitations(g.tenant))


def invitation_sent(invitation: invitations.Invitation, token: str, *, joining: str, back: str,
                    layout: str = "base.html", replaced: bool = False, held: Sequence[Role] = ()) -> Response:
    """The page showing an invitation's link, once: never stored (``web.forbid_storing``), never flashed.
    ``replaced``: the address had an earlier unused invitation, whose link this one stopped. ``held``: the
    roles the person holds already in the force they are invited to another role in.

    The request's change is committed at its end, after rendering: should the
    commit fail, this page is replaced, and a link that was not kept is never shown.
    """
    page = render_template("accounts/invitation_sent.html", invitation=invitation, joining=joining, back=back,
                           link=invitations.invitation_link(invitation, token),
                           mailed=invitations.mail_configured(), layout=layout, replaced=replaced,
                           held=held, shown_once=True)  # no language switch: it would lose the link
    return Response(page, status=200, mimetype="text/html")


@members_bp.route("/invite", methods=["GET", "POST"])
@requires_force_action(Action.MANAGE_MEMBERS)
def invite() -> str | Response | tuple[str, int]:
    """Invite a person to the force with a role; the link is shown once."""
    form = InviteForm()
    if form.validate_on_submit():
        def make() -> tuple[invitations.ForceInvitation, str, bool, list[Role]]:
            earlier = invitations.earlier_force_invitation(form.email.data or "")
            held = invitations.roles_held(form.email.data or "")
            invitation, token = invitations.invite_to_force(
                g.tenant, email=form.email.data or "", name=form.name.data or "", role=Role(form.role.data),
                actor=current_user._get_current_object())
            return invitation, token, earlier is not None, held

        made = change_on_form(form, make)
        if made is not None:
            invitation, token, replaced, held = made
            return invitation_sent(invitation, token, joining=g.tenant.name_in(current_language()),
                                   back=url_for(".index"), layout="force_base.html", replaced=replaced, held=held)
    html = render_template("accounts/invite.html", form=form)
    return (html, 400) if form.errors else html


@members_bp.route("/invitations/<uuid:invitation_id>/withdraw", methods=["GET", "POST"])
@requires_force_action(Action.MANAGE_MEMBERS)
def withdraw_invitation(invitation_id: uuid.UUID) -> Response | str:
    """Asks first (GET), then withdraws (POST); refuses what ``invitations.withdraw_force_invitation`` refuses."""
    invitation = db.get_or_404(invitations.ForceInvitation, invitation_id)  # the force's own only (ORM guard)
    if request.method == "GET":
        if invitation.used_at is not None:
            abort(404)
        return render_template("accounts/invitation_withdraw.html", base="force_base.html", invitation=invitation,
                               joining=g.tenant.name_in(current_language()), confirm=ConfirmForm(),
                               action=url_for(".withdraw_invitation", invitation_id=invitation.id),
                               back=url_for(".index"))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: invitations.withdraw_force_invitation(g.tenant, invitation, actor=current_user),
                    _("The invitation to %(name)s is withdrawn: its link no longer works.", name=invitation.name))
    return redirect(url_for(".index"))


@members_bp.route("/<uuid:membership_id>/role", methods=["GET", "POST"])
@requires_force_action(Action.MANAGE_MEMBERS)
def change_role(membership_id: uuid.UUID) -> str | Response | tuple[str, int]:
    membership = _membership(membership_id)
    form = ChangeRoleForm(data={"role": membership.role.value})
    if form.validate_on_submit():
        role, before, person = Role(form.role.data), membership.role, membership.user.name
        if change_on_form(form, lambda: services.change_role(g.tenant, membership, role, actor=current_user)):
            if role is not before:
                flash(_("%(name)s is now %(role)s.", name=person, role=role.with_article), "success")
            return redirect(url_for(".index"))
    html = render_template("accounts/member_role.html", membership=membership, form=form)
    return (html, 400) if form.errors else html


@members_bp.route("/<uuid:membership_id>/remove", methods=["GET", "POST"])
@requires_force_action(Action.MANAGE_MEMBERS)
def remove(membership_id: uuid.UUID) -> Response | str:
    """Asks first (GET), then takes the role away (POST); refuses what ``services.remove_membership`` refuses."""
    membership = _membership(membership_id)
    if request.method == "GET":
        return render_template("accounts/member_remove.html", membership=membership,
                               staying=services.other_roles(membership), confirm=ConfirmForm())
    if not ConfirmForm().validate_on_submit():
        abort(400)
    person, role = membership.user.name, membership.role.with_article
    change_or_flash(lambda: services.remove_membership(g.tenant, membership, actor=current_user),
                    _("%(name)s is no longer %(role)s in %(force)s.", name=person, role=role,
                      force=g.tenant.name_in(current_language())))
    return redirect(url_for(".index"))
