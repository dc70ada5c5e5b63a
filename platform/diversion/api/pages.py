"""A force admin's pages for the force's API tokens: make one, see them, revoke one."""

from __future__ import annotations

import uuid

from flask import abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from diversion.accounts.access import Action, requires_force_action
from diversion.accounts.forms import ConfirmForm
from diversion.api.forms import CreateTokenForm
from diversion.extensions import db
from diversion.jsonapi import tokens
from diversion.jsonapi.tokens import ApiToken
from diversion.tenancy.web import force_blueprint
from diversion.web import change_on_form, change_or_flash

bp = force_blueprint("api_tokens", __name__, "/api-tokens")


def _index(form: CreateTokenForm) -> str:
    return render_template("api/tokens.html", tokens=tokens.force_tokens(), form=form, confirm=ConfirmForm(),
                           prefix=lambda token: tokens.display_prefix(g.tenant.slug, token))


@bp.route("/")
@requires_force_action(Action.MANAGE_API_TOKENS)
def index() -> str:
    return _index(CreateTokenForm())


@bp.route("/", methods=["POST"])
@requires_force_action(Action.MANAGE_API_TOKENS)
def create() -> Response | tuple[str, int]:
    form = CreateTokenForm()
    if form.validate_on_submit():
        made = change_on_form(form, lambda: tokens.make_force_token(g.tenant, name=form.name.data or "",
                                                                     actor=current_user))
        if made is not None:
            token, secret = made
            # Shown in this answer only: not flashed, since the session cookie is signed, not secret.
            # Committed at the end of the request, after rendering: should the commit fail,
            # this page is replaced, and a token that does not exist is never shown.
            page = render_template("api/created.html", token=token, secret=secret, shown_once=True)  # no switch
            response = Response(page, status=200, mimetype="text/html")
            response.headers["Cache-Control"] = "no-store"
            return response
    return _index(form), 400


@bp.route("/<uuid:token_id>/revoke", methods=["GET", "POST"])
@requires_force_action(Action.MANAGE_API_TOKENS)
def revoke(token_id: uuid.UUID) -> Response | str:
    """Asks first (GET), then revokes (POST)."""
    token = db.session.get(ApiToken, token_id)
    if token is None or (token.is_revoked and request.method == "GET"):
        abort(404)
    if request.method == "GET":
        return render_template("tokens_revoke.html", base="force_base.html", token=token, confirm=ConfirmForm(),
                               action=url_for(".revoke", token_id=token.id), back=url_for(".index"))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: tokens.revoke_force_token(g.tenant, token, actor=current_user),
                    _("The token “%(name)s” is revoked: calls with it are refused from now on.", name=token.name))
    return redirect(url_for(".index"))
