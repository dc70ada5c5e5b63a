"""The force in the URL (``/<tenant>/...``) and layer 4 of isolation.

Every force page lives on a blueprint made by ``force_blueprint``: the slug
is taken from the URL and resolved to a force before any view runs, the
scope is set for the ORM guard and row-level security, and the signed-in
user must hold a membership in *that* force. A user of force A who asks
for force B's pages gets 404, the same answer as for a force that does not
exist, so the response says nothing about B.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g
from flask_login import current_user
from sqlalchemy import select

from diversion.accounts.services import force_roles
from diversion.extensions import db, login
from diversion.tenancy.context import set_scope
from diversion.tenancy.models import Tenant


def _pull_tenant(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    slug = (values or {}).pop("tenant", None)
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug)) if slug else None
    if tenant is None:
        abort(404)
    g.tenant = tenant
    set_scope(tenant.id)


def _push_tenant(_endpoint: str, values: dict[str, Any]) -> None:
    if "tenant" not in values and "tenant" in g:
        values["tenant"] = g.tenant.slug


def _require_membership() -> Any:
    if not current_user.is_authenticated:
        return login.unauthorized()
    roles = force_roles(current_user)
    if not roles:
        # Forget the force before answering, so the 404 page cannot show a
        # trace of it (its name, its colour).
        g.pop("tenant", None)
        set_scope(None)
        abort(404)
    g.force_roles = roles
    set_scope(g.tenant.id, current_user.id)
    return None


def force_blueprint(name: str, import_name: str, url_prefix: str = "") -> Blueprint:
    """A blueprint under ``/<tenant>`` whose views run inside that force only."""
    blueprint = Blueprint(name, import_name, url_prefix=f"/<tenant>{url_prefix}")
    blueprint.url_value_preprocessor(_pull_tenant)
    blueprint.url_defaults(_push_tenant)
    blueprint.before_request(_require_membership)
    return blueprint
