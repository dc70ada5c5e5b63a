"""The provider admin's payouts page, /provider/billing/payouts: set up (or finish setting
up) the provider's Stripe account for payouts, and see whether it can receive them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from diversion.accounts.access import Action
from diversion.accounts.forms import ConfirmForm
from diversion.billing import payouts
from diversion.errors import FieldError
from diversion.providers.acting import requires_provider_action
from diversion.unit import refuse

bp = Blueprint("billing_payouts", __name__, url_prefix="/provider/billing/payouts")


def _here() -> dict[str, Any]:
    chosen = request.args.get("provider")
    return {"provider": chosen} if chosen else {}


@bp.route("/")
@requires_provider_action(Action.MANAGE_PAYOUTS)
def index() -> str:
    account = payouts.account_of(g.provider.id)
    if request.args.get("returned") and account is not None and not account.transfers_active:
        account = payouts.refresh(g.provider, actor=current_user._get_current_object())  # back from Stripe
    return render_template("billing/payouts.html", provider=g.provider, account=account, confirm=ConfirmForm(),
                           here=_here())


@bp.route("/", methods=["POST"])
@requires_provider_action(Action.MANAGE_PAYOUTS)
def start() -> Response:
    """Send the admin to Stripe to give the provider's details."""
    back = url_for(".index", _external=True, returned=1, **_here())
    again = url_for(".index", _external=True, **_here())
    if not ConfirmForm().validate_on_submit():
        flash("Something went wrong with that form: try again.", "error")
        return redirect(url_for(".index", **_here()))
    try:
        link = payouts.onboarding_link(g.provider, return_url=back, refresh_url=again,
                                       actor=current_user._get_current_object())
    except FieldError as error:
        refuse()
        flash(error.message, "error")
        return redirect(url_for(".index", **_here()))
    return redirect(link)
