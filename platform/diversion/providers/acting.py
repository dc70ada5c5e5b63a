"""Which provider a signed-in user is acting for on the integration pages, and as what.

A provider membership is global (one login serves the provider in every
force), so these pages have no force in scope. A user who works for
several providers acts for the one named by ``?provider=<slug>``, else
for the one chosen in the workspace's organisation switcher, else for the
first by name.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, request, session
from flask_login import current_user
from sqlalchemy import select

from diversion.accounts.access import Action, provider_role_allows
from diversion.accounts.models import ProviderMembership, ProviderRole
from diversion.catalogue.models import Provider
from diversion.extensions import db, login
from diversion.providers.views import CHOSEN
from diversion.tenancy.context import set_provider_scope

F = TypeVar("F", bound=Callable[..., Any])
# The template a page of the workspace that other features serve (a provider's billing) extends: the
# workspace's navigation above it.
WORKSPACE_BASE = "providers/workspace.html"


def memberships(user_id: int) -> list[tuple[Provider, ProviderRole]]:
    """The providers a user works for, by name, with their role in each."""
    rows = db.session.execute(
        select(Provider, ProviderMembership.role)
        .join(ProviderMembership, ProviderMembership.provider_id == Provider.id)
        .where(ProviderMembership.user_id == user_id).order_by(Provider.name)).all()
    return [(provider, ProviderRole(role)) for provider, role in rows]


def provider_in_address() -> dict[str, Any]:
    """The provider chosen in the address (``?provider=``), to keep on every link and redirect."""
    chosen = request.args.get("provider")
    return {"provider": chosen} if chosen else {}


def acting_provider(user_id: int, wanted: str | None = None) -> tuple[Provider, ProviderRole] | None:
    held = memberships(user_id)
    if wanted:
        held = [(provider, role) for provider, role in held if provider.slug == wanted]
    chosen = session.get(CHOSEN)
    return next((item for item in held if item[0].id == chosen), held[0] if held else None)


def requires_provider_action(action: Action) -> Callable[[F], F]:
    """Sign-in first; then 403 unless the user's role in the provider they act for
    allows ``action`` (``accounts.access``).

    The provider is then in scope (no force) for the rest of the request: its
    own rows (tokens, webhook endpoint) are reachable in its scope only.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login.unauthorized()
            found = acting_provider(current_user.id, request.args.get("provider"))
            if found is None or not provider_role_allows(found[1], action):
                abort(403)
            g.provider = found[0]
            set_provider_scope(g.provider.id, current_user.id)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
