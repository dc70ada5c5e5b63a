"""A provider's payouts: its Stripe connected account, set up through Stripe's Account Links.

A provider admin starts it from the provider's billing page: the platform makes
the provider's connected account once (``ConnectedAccount``) and sends the admin
to a link on Stripe where the provider gives its details; Stripe sends them back
to the page, which asks Stripe whether the account can now receive transfers.
The close pays out only to accounts that can (``billing.close``); Stripe's
``account.updated`` events keep the answer current.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from diversion.accounts.access import Action, Actor, require
from diversion.billing import stripe_api
from diversion.billing.models import ConnectedAccount
from diversion.catalogue.models import Provider
from diversion.errors import FieldError
from diversion.extensions import db

STRIPE_OFF = _l("Payouts cannot be set up yet: the platform is not connected to Stripe. Ask the platform’s team.")


def account_of(provider_id: int) -> ConnectedAccount | None:
    """The provider's connected account, if it has one."""
    return db.session.scalar(select(ConnectedAccount).where(ConnectedAccount.provider_id == provider_id))


def onboarding_link(provider: Provider, *, return_url: str, refresh_url: str, actor: Actor) -> str:
    """The address on Stripe where the provider gives its details for payouts, its connected
    account made first when it has none (once: the request's key is derived from the provider).

    Refuses (``AccessRefused``) anyone who may not manage the provider's payouts, and
    (``FieldError``) when Stripe is not set up.
    """
    require(actor, Action.MANAGE_PAYOUTS, provider_id=provider.id)
    with stripe_api.opened() as sdk:
        if sdk is None:
            raise FieldError("payouts", str(STRIPE_OFF))
        account = account_of(provider.id)
        if account is None:
            params: Any = {"type": "express", "country": "GB", "default_currency": "gbp",
                           "business_profile": {"name": provider.name},
                           "capabilities": {"transfers": {"requested": True}},
                           "metadata": {"diversion_provider": str(provider.id), "provider_slug": provider.slug}}
            made = sdk.v1.accounts.create(params, stripe_api.options(f"connected-account:{provider.slug}"))
            account = ConnectedAccount(provider_id=provider.id, stripe_account_id=made.id)
            db.session.add(account)
            db.session.flush()
        link = sdk.v1.account_links.create({"account": account.stripe_account_id, "type": "account_onboarding",
                                            "return_url": return_url, "refresh_url": refresh_url})
        return link.url


def refresh(provider: Provider, *, actor: Actor) -> ConnectedAccount | None:
    """Ask Stripe whether the provider's account can receive transfers now, and keep the answer.
    Nothing is asked without an account or without Stripe."""
    require(actor, Action.MANAGE_PAYOUTS, provider_id=provider.id)
    account = account_of(provider.id)
    if account is None:
        return None
    with stripe_api.opened() as sdk:
        if sdk is None:
            return account
        found = sdk.v1.accounts.retrieve(account.stripe_account_id)
        account.transfers_active = found.capabilities is not None and found.capabilities.transfers == "active"
        account.details_submitted = bool(found.details_submitted)
        db.session.flush()
    return account
