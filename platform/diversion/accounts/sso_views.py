"""The pages of a force's single sign-on: starting it, the provider's answer
(the callback), and the force admin's settings.

``/<tenant>/sign-in/sso`` keeps a new ``state``, ``nonce`` and PKCE verifier
in the browser's session (one sign-in at a time, for that force only) and
sends the browser to the force's provider. ``/<tenant>/sign-in/sso/callback``
takes them out of the session, whatever happens next (so a ``state`` is good
once), checks the answer (``accounts.oidc``), finds the account
(``accounts.sso.user_signing_in``) and signs it in with a fresh session. Any
refusal shows a plain page saying what to do, records why in the audit log
(a lasting record), and signs no one in.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from diversion.accounts import oidc
from diversion.accounts import services as accounts
from diversion.accounts.access import Action, force_may
from diversion.accounts.invitations import open_force_invitation
from diversion.accounts.models import User
from diversion.accounts.sso import (
    ForceSignOn,
    SignInRefused,
    SignOnForm,
    client_secret,
    configure_sign_on,
    linked_identities,
    sign_on_of,
    sign_on_rules,
    signed_from_claims,
    user_signing_in,
)
from diversion.audit.services import record
from diversion.extensions import db
from diversion.sealing import Unopenable
from diversion.tenancy.context import set_scope
from diversion.tenancy.models import ForceStatus
from diversion.tenancy.web import force_blueprint, require_membership
from diversion.unit import refuse
from diversion.web import change_on_form
from diversion.words import current_language

bp = force_blueprint("sso", __name__, members_only=False)


@bp.app_template_global()
def force_signs_on() -> bool:
    """For a force's pages (an invitation's, say): whether its people may sign in with its own account."""
    tenant = g.get("tenant")
    sign_on = sign_on_of(tenant) if tenant is not None and tenant.status is ForceStatus.ACTIVE else None
    return sign_on is not None and sign_on.has_secret

PENDING = "sso_pending"  # the sign-in under way: force, state, nonce, PKCE verifier
PROVEN = "sso_proven"  # a password just checked in this browser, to link a first sign-in to
PENDING_SECONDS = 15 * 60
PROVEN_SECONDS = 15 * 60


def _refused(refusal: SignInRefused) -> tuple[str, int]:
    """The page for a refused sign-on; the audit row lasts though the unit is given up."""
    refuse()
    record("auth.sign_in_failed", actor=None, tenant_id=g.tenant.id, lasting=True,
           details={"method": "sso", "reason": refusal.reason})
    return render_template("errors/error.html", title=_("You could not be signed in"), message=refusal.message,
                           again=url_for("accounts.sign_in")), refusal.status


def _closed() -> SignInRefused | None:
    """A suspended force's refusal; a draft force is not there at all (404, nothing of it shown)."""
    if g.tenant.status is ForceStatus.ACTIVE:
        return None
    if g.tenant.status is ForceStatus.SUSPENDED:
        return SignInRefused("force_suspended", _("%(force)s's pages are closed for now, so no one can sign "
                                                  "in to it. Ask the platform team when they will open again.",
                                                  force=g.tenant.name_in(current_language())))
    g.pop("tenant", None)
    set_scope(None)
    raise NotFound


def _callback_url() -> str:
    return callback_url(g.tenant.slug)


def callback_url(slug: str) -> str:
    """The redirect address a force's identity provider sends its people back to, to register there."""
    return url_for("sso.callback", tenant=slug, _external=True)


@bp.route("/sign-in/sso")
def start() -> Response | tuple[str, int]:
    """Send the browser to the force's provider (``?invitation=<token>`` kept for the callback)."""
    if (closed := _closed()) is not None:
        return _refused(closed)
    sign_on = sign_on_of(g.tenant)
    if sign_on is None or not sign_on.has_secret:
        return _refused(SignInRefused("no_sign_on", _("%(force)s does not sign its people in with an "
                                                      "account of its own: use your email address and password.",
                                                      force=g.tenant.name_in(current_language())),
                                       status=404))
    try:
        metadata = oidc.discover(sign_on.issuer, sign_on_rules())
    except SignInRefused as refusal:
        return _refused(refusal)
    invitation = request.args.get("invitation") or None
    if invitation is not None and open_force_invitation(invitation) is None:
        return _refused(_unusable_invitation())
    pending = oidc.Pending.new()
    session[PENDING] = {"force": g.tenant.slug, "state": pending.state, "nonce": pending.nonce,
                        "verifier": pending.code_verifier, "at": int(time.time()), "invitation": invitation}
    return redirect(oidc.authorization_url(metadata, client_id=sign_on.client_id, redirect_uri=_callback_url(),
                                           pending=pending))


def _unusable_invitation() -> SignInRefused:
    return SignInRefused("invitation_unusable", _("This invitation has been used, has expired or was withdrawn. "
                                                  "Ask your force's admin for a new one."))


def _pending_here() -> tuple[oidc.Pending, str | None]:
    """The sign-in this browser started at this force, taken out of the session
    (good once); refuses none, another force's, an old one, and a ``state`` that differs."""
    kept = session.pop(PENDING, None)
    given = request.args.get("state", "")
    if not isinstance(kept, dict) or not given:
        raise SignInRefused("state_missing", _("This sign-in was not started here, or has already been used. "
                                               "Start again from the sign-in page."), status=400)
    if kept.get("force") != g.tenant.slug:
        raise SignInRefused("state_other_force", _("This sign-in was started for another force. Start again from "
                                                   "the sign-in page."), status=400)
    if not hmac.compare_digest(str(kept.get("state", "")), given):
        raise SignInRefused("state_mismatch", _("This sign-in was not started here, or has already been used. "
                                                "Start again from the sign-in page."), status=400)
    if int(kept.get("at", 0)) + PENDING_SECONDS < time.time():
        raise SignInRefused("state_expired", _("This sign-in took too long. Start again from the sign-in page."))
    invitation = kept.get("invitation")
    return (oidc.Pending(state=given, nonce=str(kept["nonce"]), code_verifier=str(kept["verifier"])),
            invitation if isinstance(invitation, str) else None)


def _proven_user() -> User | None:
    """Whom this browser has just proven to be, by password: the signed-in user,
    or one whose password was right but who must sign in with their force's account."""
    if current_user.is_authenticated:
        user: User = current_user._get_current_object()
        return user
    proven = session.get(PROVEN)
    if not isinstance(proven, dict) or int(proven.get("at", 0)) + PROVEN_SECONDS < time.time():
        return None
    user_or_none = db.session.get(User, int(proven.get("user", 0)))
    if user_or_none is None or user_or_none.session_version != proven.get("version"):
        return None
    return user_or_none


def _signing_in() -> tuple[User, ForceSignOn]:
    """The account a callback signs in, once every check has passed; refuses (``SignInRefused``) otherwise."""
    pending, token = _pending_here()
    invitation = None
    if token is not None and (invitation := open_force_invitation(token)) is None:
        raise _unusable_invitation()
    if (closed := _closed()) is not None:
        raise closed
    if request.args.get("error"):
        raise SignInRefused("provider_error", _("Your force's identity provider did not sign you in. Start again "
                                                "from the sign-in page."))
    code = request.args.get("code", "")
    sign_on = sign_on_of(g.tenant)
    if not code or sign_on is None:
        raise SignInRefused("no_code", _("Your force's identity provider did not finish signing you in. Start "
                                         "again from the sign-in page."), status=400)
    rules = sign_on_rules()
    metadata = oidc.discover(sign_on.issuer, rules)
    try:
        secret = client_secret(sign_on)
    except Unopenable:
        current_app.logger.error("the client secret of %s cannot be opened with the data keys", g.tenant.slug)
        raise SignInRefused("secret_unreadable", oidc.UNREACHABLE) from None
    id_token = oidc.exchange_code(metadata, client_id=sign_on.client_id, client_secret=secret, code=code,
                                  redirect_uri=_callback_url(), pending=pending, rules=rules)
    claims = oidc.checked_claims(id_token, metadata, client_id=sign_on.client_id, nonce=pending.nonce, rules=rules)
    signed = signed_from_claims(claims)
    return user_signing_in(g.tenant, sign_on, signed, proven_user=_proven_user(), invitation=invitation), sign_on


@bp.route("/sign-in/sso/callback")
def callback() -> Response | tuple[str, int]:
    """The provider's answer: check it, find or make the account, sign it in."""
    try:
        user, sign_on = _signing_in()
    except SignInRefused as refusal:
        return _refused(refusal)
    # A fresh session at sign-in: nothing planted before it survives.
    session.clear()
    login_user(user)
    accounts.record_sign_in(user, method="sso", tenant_id=g.tenant.id, details={"issuer": sign_on.issuer})
    return redirect(url_for("force.home"))


@bp.route("/settings/sign-on", methods=["GET", "POST"])
def settings() -> Any:
    """The force admin's single sign-on settings."""
    if (answer := require_membership()) is not None:
        return answer
    if not force_may(Action.MANAGE_SIGN_ON.value):
        abort(403)
    sign_on = sign_on_of(g.tenant)
    form = SignOnForm.for_page(sign_on, submitted=request.method != "GET")
    if form.validate_on_submit():
        saved = change_on_form(form, lambda: configure_sign_on(g.tenant, actor=current_user, **form.settings()))
        if saved is not None:
            flash(_("The sign-on settings are saved. The client secret is kept encrypted and will not be shown "
                    "again."), "success")
            return redirect(url_for(".settings"))
    html = render_template("accounts/sign_on_settings.html", form=form, sign_on=sign_on,
                           callback=_callback_url(), linked=linked_identities(g.tenant) if sign_on else [])
    return (html, 400) if form.errors else html
