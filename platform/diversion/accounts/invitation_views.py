"""Accepting an invitation through its link: ``/<tenant>/invitation/<token>`` for
a force, ``/provider/invitation/<token>`` for a provider.

The link is the authority, and it works once. Whoever opens it:

- with no account for the invited address: gives their name and a password,
  and is signed in with the role;
- with an account for it, not signed in: signs in first (the sign-in page
  brings them back), then accepts;
- signed in as the invited address: accepts with one button;
- signed in as someone else: is told to sign out first. Nothing is taken
  up by another account, and nobody is matched on an address alone.

A link that is unknown (mistyped, withdrawn, replaced by a newer one), used
or expired gets a plain page saying which, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user
from werkzeug.wrappers import Response

from diversion.accounts import invitations, services
from diversion.accounts.forms import ConfirmForm, NewAccountForm
from diversion.accounts.invitations import Invitation, ProviderInvitation
from diversion.accounts.models import User
from diversion.tenancy.web import force_blueprint
from diversion.web import change_on_form
from diversion.words import current_language

bp = force_blueprint("invitations", __name__, "/invitation", members_only=False)
provider_bp = Blueprint("provider_invitations", __name__, url_prefix="/provider/invitation")


def _closed(title: str, message: str, status: int) -> tuple[str, int]:
    return render_template("errors/error.html", title=title, message=message), status


def _unusable(invitation: Invitation | None) -> tuple[str, int] | Response | None:
    """The page for a link that cannot be taken up (None: it can)."""
    if invitation is None:
        return _closed(_("This invitation link does not work"),
                       _("Check that you copied the whole link from the email or message. An invitation that has "
                         "been withdrawn, or replaced by a newer one, no longer works: ask whoever invited you."), 404)
    if invitation.used_at is not None:
        if current_user.is_authenticated and current_user.id == invitation.used_by_id:
            return None  # they accepted already: send them on
        return _closed(_("This invitation has already been used"),
                       _("Each invitation link works once. If it was you who accepted it, sign in with your "
                         "account. If not, tell whoever invited you at once."), 410)
    if invitation.expired:
        return _closed(_("This invitation has expired"),
                       _("Invitation links work for %(num)s days. Ask whoever invited you to send a new one.",
                         num=invitations.INVITATION_DAYS), 410)
    return None


def _accept(invitation: Invitation | None, *, organisation: Callable[[Invitation], str],
            take_up: Callable[[Any, User], object], destination: Callable[[], str]) -> Any:
    closed = _unusable(invitation)
    if closed is not None:
        return closed
    assert invitation is not None  # noqa: S101 - _unusable answered for None
    if invitation.used_at is not None:  # accepted by this very user: nothing more to do
        return redirect(destination())
    context = {"invitation": invitation, "organisation": organisation(invitation)}
    if current_user.is_authenticated:
        return _as_signed_in(invitation, context, take_up, destination)
    if services.find_user(invitation.email) is not None:
        return render_template("accounts/invitation.html", state="sign_in_first",
                               sign_in=url_for("accounts.sign_in", next=request.path), **context)
    return _with_new_account(invitation, context, take_up, destination)


def _as_signed_in(invitation: Invitation, context: dict[str, Any], take_up: Callable[[Any, User], object],
                  destination: Callable[[], str]) -> Any:
    """Signed in: the invited address's account accepts with one button; anyone else is told to sign out."""
    if current_user.email != invitation.email:
        page = render_template("accounts/invitation.html", state="someone_else", **context)
        return page, (403 if request.method == "POST" else 200)
    form = ConfirmForm()
    me = current_user._get_current_object()
    if form.validate_on_submit() and change_on_form(form, lambda: take_up(invitation, me) or True):
        flash(_("You have joined %(organisation)s.", organisation=context["organisation"]), "success")
        return redirect(destination())
    return render_template("accounts/invitation.html", state="confirm", form=form, **context)


def _with_new_account(invitation: Invitation, context: dict[str, Any], take_up: Callable[[Any, User], object],
                      destination: Callable[[], str]) -> Any:
    """No account for the address: the person gives their name and a password, and is signed in."""
    form = NewAccountForm(data={"name": invitation.name} if request.method == "GET" else None)
    if form.validate_on_submit():
        user = change_on_form(form, lambda: _new_account(invitation, form, take_up))
        if user is not None:
            session.clear()  # a fresh session for the new account: nothing planted before it survives
            login_user(user)
            services.record_sign_in(user)
            flash(_("Your account is ready and you have joined %(organisation)s.",
                    organisation=context["organisation"]), "success")
            return redirect(destination())
    page = render_template("accounts/invitation.html", state="new_account", form=form, **context)
    return (page, 400) if form.errors else page


def _new_account(invitation: Invitation, form: NewAccountForm, take_up: Callable[[Any, User], object]) -> User:
    user = invitations.account_from_invitation(invitation, name=form.name.data or "",
                                               password=form.password.data or "")
    take_up(invitation, user)
    return user


def _provider_name(invitation: Invitation) -> str:
    return invitation.provider.name if isinstance(invitation, ProviderInvitation) else ""


@bp.route("/<token>", methods=["GET", "POST"])
def accept(token: str) -> Any:
    """A force's invitation (the force in the URL is in scope: another force's link is not found)."""
    return _accept(invitations.find_force_invitation(token),
                   organisation=lambda _i: g.tenant.name_in(current_language()),
                   take_up=invitations.take_up_force_invitation, destination=lambda: url_for("force.home"))


@provider_bp.route("/<token>", methods=["GET", "POST"], endpoint="accept")
def accept_provider(token: str) -> Any:
    """A provider's invitation."""
    return _accept(invitations.find_provider_invitation(token), organisation=_provider_name,
                   take_up=invitations.take_up_provider_invitation,
                   destination=lambda: url_for("provider.referrals"))
