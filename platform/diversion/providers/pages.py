"""A provider admin's pages: the provider's API tokens and its webhook endpoint, under /provider/integrations."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from diversion.accounts.access import Action, may
from diversion.accounts.forms import ConfirmForm
from diversion.extensions import db
from diversion.jsonapi import tokens
from diversion.providers import feed, webhooks
from diversion.providers.acting import WORKSPACE_BASE, provider_in_address, requires_provider_action
from diversion.providers.forms import ProviderTokenForm, TestEventForm, WebhookForm
from diversion.tenancy.context import set_scope
from diversion.unit import refuse
from diversion.web import change_on_form, change_or_flash

bp = Blueprint("provider_integrations", __name__, url_prefix="/provider/integrations")


@bp.app_template_global()
def manages_provider_integrations() -> bool:
    """For the workspace's navigation: whether the signed-in user may open the integrations of the provider in hand."""
    provider = g.get("provider")
    return provider is not None and any(may(current_user, action, provider_id=provider.id)
                                        for action in (Action.MANAGE_PROVIDER_TOKENS, Action.MANAGE_WEBHOOK))


@bp.before_request
def _no_force() -> None:
    set_scope(None)  # provider pages cross forces only through the provider's own queries


def _back() -> Response:
    return redirect(url_for(".index", provider=request.args.get("provider")))


# What to do with a secret shown once: the same words as a force's token page (``api/created.html``).
TOKEN_ADVICE = _l("Copy the token now and keep it in the system’s secret store. It will not be shown again: "
                  "if it is lost, revoke it and make another.")
SECRET_ADVICE = _l("Copy it now and keep it in your system’s secret store. It will not be shown again: "
                   "if it is lost, make another.")


def _secret_page(title: str, what: str, secret: str, *, named: str | None = None,
                 advice: str | LazyString = SECRET_ADVICE) -> Response:
    """A page showing a secret once: never cached, never flashed (the session cookie is signed, not secret).
    ``named``: what the panel names (a token's name), if anything; ``advice``: what to do with the secret.
    The language switch is not offered on it: following it would load another page, and the secret is gone.

    The request's change is committed at its end, after rendering: should
    the commit fail, this page is replaced, and a secret that was not kept
    is never shown.
    """
    page = render_template("integrations/secret.html", title=title, what=what, secret=secret, named=named,
                           advice=advice, provider=g.provider, shown_once=True)
    response = Response(page, status=200, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _index(token_form: ProviderTokenForm, webhook_form: WebhookForm) -> str:
    endpoint = webhooks.endpoint_of(g.provider)
    if endpoint is not None and not webhook_form.url.data:
        webhook_form.url.data = endpoint.url
    return render_template(
        "integrations/index.html", provider=g.provider, tokens=tokens.provider_tokens(g.provider),
        token_form=token_form, webhook_form=webhook_form, endpoint=endpoint, confirm=ConfirmForm(),
        test_event=TestEventForm(formdata=None),
        deliveries=webhooks.recent_deliveries(g.provider) if endpoint is not None else [],
        prefix=lambda token: tokens.display_prefix(g.provider.slug, token),
        provider_arg=request.args.get("provider"))


@bp.route("/")
@requires_provider_action(Action.MANAGE_PROVIDER_TOKENS)
def index() -> str:
    return _index(ProviderTokenForm(prefix="token"), WebhookForm(prefix="webhook"))


@bp.route("/tokens", methods=["POST"])
@requires_provider_action(Action.MANAGE_PROVIDER_TOKENS)
def create_token() -> Response | tuple[str, int]:
    form = ProviderTokenForm(prefix="token")
    if form.validate_on_submit():
        made = change_on_form(form, lambda: tokens.make_provider_token(g.provider, name=form.name.data or "",
                                                                        actor=current_user))
        if made is not None:
            token, secret = made
            return _secret_page(_("API token made"), _("The token"), secret, named=token.name, advice=TOKEN_ADVICE)
    return _index(form, WebhookForm(prefix="webhook")), 400


@bp.route("/tokens/<uuid:token_id>/revoke", methods=["GET", "POST"])
@requires_provider_action(Action.MANAGE_PROVIDER_TOKENS)
def revoke_token(token_id: uuid.UUID) -> Response | str:
    """Asks first (GET), then revokes (POST)."""
    token = db.session.get(tokens.ProviderToken, token_id)
    if token is None or token.provider_id != g.provider.id or (token.is_revoked and request.method == "GET"):
        abort(404)
    if request.method == "GET":
        return render_template("tokens_revoke.html", base=WORKSPACE_BASE, token=token, confirm=ConfirmForm(),
                               action=url_for(".revoke_token", token_id=token.id, **provider_in_address()),
                               back=url_for(".index", **provider_in_address()))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: tokens.revoke_provider_token(g.provider, token, actor=current_user),
                    _("The token “%(name)s” is revoked: calls with it are refused from now on.", name=token.name))
    return _back()


@bp.route("/webhook", methods=["POST"])
@requires_provider_action(Action.MANAGE_WEBHOOK)
def set_webhook() -> Response | tuple[str, int]:
    form = WebhookForm(prefix="webhook")
    if form.validate_on_submit():
        made = change_on_form(form, lambda: webhooks.set_endpoint(g.provider, url=form.url.data or "",
                                                                   actor=current_user))
        if made is not None:
            _endpoint, secret = made
            if secret is not None:
                return _secret_page(_("Webhook endpoint saved"), _("The signing secret of your endpoint"), secret)
            return _back()
    return _index(ProviderTokenForm(prefix="token"), form), 400


@bp.route("/webhook/secret", methods=["POST"])
@requires_provider_action(Action.MANAGE_WEBHOOK)
def rotate_secret() -> Response:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        secret = webhooks.rotate_secret(g.provider, actor=current_user)
    except webhooks.WebhookError:
        refuse()
        abort(404)
    return _secret_page(_("New signing secret"), _("The new signing secret of your endpoint"), secret)


@bp.route("/webhook/test", methods=["POST"])
@requires_provider_action(Action.MANAGE_WEBHOOK)
def test_event() -> Response:
    if not TestEventForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: feed.queue_test_event(g.provider, actor=current_user),
                    _("A test event is queued for your endpoint: see how it ended under the latest deliveries."))
    return _back()


@bp.route("/webhook/remove", methods=["POST"])
@requires_provider_action(Action.MANAGE_WEBHOOK)
def remove_webhook() -> Response:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    change_or_flash(lambda: webhooks.remove_endpoint(g.provider, actor=current_user),
                    _("The endpoint is removed: no more webhooks are sent."))
    return _back()
