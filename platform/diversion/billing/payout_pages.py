"""The provider admin's payouts page, /provider/billing/payouts: set up (or finish setting
up) the provider's Stripe account for payouts, and see whether it can receive them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from diversion.accounts.access import Action
from diversion.accounts.forms import ConfirmForm
from diversion.billing import payouts, stripe_api
from diversion.errors import FieldError
from diversion.extensions import talisman
from diversion.providers.acting import provider_in_address, requires_provider_action
from diversion.unit import refuse

bp = Blueprint("billing_payouts", __name__, url_prefix="/provider/billing/payouts")


class _PolicyWithStripeOnboarding(Mapping[str, str]):
    """The app's content security policy, read per request, whose ``form-action`` also allows Stripe's
    Account Link pages: the payouts form redirects there, and browsers hold a form's redirects to
    ``form-action`` too (with ``'self'`` alone the button would do nothing)."""

    def _policy(self) -> dict[str, str]:
        policy = dict(talisman.content_security_policy)
        allowed = policy.get("form-action", "'self'")
        policy["form-action"] = f"{allowed} {stripe_api.onboarding_origin(current_app)}"
        return policy

    def __getitem__(self, name: str) -> str:
        return self._policy()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._policy())

    def __len__(self) -> int:
        return len(self._policy())


@bp.route("/")
@talisman(content_security_policy=_PolicyWithStripeOnboarding())
@requires_provider_action(Action.MANAGE_PAYOUTS)
def index() -> str:
    account = payouts.account_of(g.provider.id)
    if request.args.get("returned") and account is not None and not account.transfers_active:
        account = payouts.refresh(g.provider, actor=current_user._get_current_object())  # back from Stripe
    return render_template("billing/payouts.html", provider=g.provider, account=account, confirm=ConfirmForm(),
                           here=provider_in_address(), stripe_on=stripe_api.is_on(), stripe_off=payouts.STRIPE_OFF)


@bp.route("/", methods=["POST"])
@requires_provider_action(Action.MANAGE_PAYOUTS)
def start() -> Response:
    """Send the admin to Stripe to give the provider's details."""
    back = url_for(".index", _external=True, returned=1, **provider_in_address())
    again = url_for(".index", _external=True, **provider_in_address())
    if not ConfirmForm().validate_on_submit():
        flash(_("Something went wrong with that form: try again."), "error")
        return redirect(url_for(".index", **provider_in_address()))
    try:
        link = payouts.onboarding_link(g.provider, return_url=back, refresh_url=again,
                                       actor=current_user._get_current_object())
    except FieldError as error:
        refuse()
        flash(error.message, "error")
        return redirect(url_for(".index", **provider_in_address()))
    return redirect(link)
