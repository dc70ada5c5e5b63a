"""The force in the URL (``/<tenant>/...``) and layer 4 of isolation.

Every force page lives on a blueprint made by ``force_blueprint``: the slug
is taken from the URL and resolved to a force before any view runs, the
scope is set for the ORM guard and row-level security, and the signed-in
user must hold a membership in *that* force. A user of force A who asks
for force B's pages gets 404, the same answer as for a force that does not
exist, so the response says nothing about B.

Who is a member is not known here: the check is handed in at start-up
(``hand_membership_check``, by ``accounts``). Until it is, every force
page is refused. A blueprint made with ``members_only=False`` resolves the
force and sets its scope without asking for a membership (a sign-in
callback that arrives before anyone is signed in).

A force that is not active (a draft, or suspended) refuses its pages to
its members with a plain page that says so; those the check lets see
closed forces (the platform admin) still see them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Blueprint, Flask, abort, current_app, g, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from diversion.extensions import db, login
from diversion.tenancy.context import set_scope
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.words import current_language

# The roles a user holds in the force in scope (none: not a member).
RolesOf = Callable[[Any], frozenset[enum.Enum]]


@dataclass(frozen=True)
class MembershipCheck:
    roles_of: RolesOf
    sees_closed_forces: Callable[[Any], bool]


_EXTENSION = "diversion.membership_check"


def hand_membership_check(app: Flask, roles_of: RolesOf, *, sees_closed_forces: Callable[[Any], bool]) -> None:
    """Say how a user's roles in the force in scope are found, and who may
    see a force that is not active; called once when the app is set up."""
    app.extensions[_EXTENSION] = MembershipCheck(roles_of, sees_closed_forces)


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


_CLOSED = {
    ForceStatus.DRAFT: _l("%(name)s is being set up on the platform: its pages open once it is ready."),
    ForceStatus.SUSPENDED: _l("%(name)s's pages are closed for now. Ask the platform team when they will open again."),
}


def _require_membership(*, platform_admins: bool = False) -> Any:
    if not current_user.is_authenticated:
        return login.unauthorized()
    check: MembershipCheck | None = current_app.extensions.get(_EXTENSION)
    roles = check.roles_of(current_user) if check is not None else frozenset()
    admitted = platform_admins and check is not None and check.sees_closed_forces(current_user)
    if not roles and not admitted:
        # Forget the force before answering, so the 404 page cannot show a
        # trace of it (its name, its colour).
        g.pop("tenant", None)
        set_scope(None)
        abort(404)
    tenant = g.tenant
    if tenant.status is not ForceStatus.ACTIVE and not (check and check.sees_closed_forces(current_user)):
        g.pop("tenant", None)
        set_scope(None)
        return render_template("errors/error.html", title=_("This force's pages are closed"),
                               message=str(_CLOSED[tenant.status]) % {"name": tenant.name_in(current_language())}), 403
    g.force_roles = roles
    set_scope(tenant.id, current_user.id)
    return None


def require_membership() -> Any:
    """For a view of a ``members_only=False`` blueprint that is for members
    after all: None when the signed-in user is a member of the force in the
    URL (the scope then carries them), else the answer a members-only page gives."""
    return _require_membership()


def force_blueprint(name: str, import_name: str, url_prefix: str = "", *, members_only: bool = True,
                    platform_admins: bool = False) -> Blueprint:
    """A blueprint under ``/<tenant>`` whose views run inside that force only
    (and, unless ``members_only`` is False, for its members only; with
    ``platform_admins``, for those who see closed forces too, the platform
    admins, member or not: a force's settings and audit)."""
    blueprint = Blueprint(name, import_name, url_prefix=f"/<tenant>{url_prefix}")
    blueprint.url_value_preprocessor(_pull_tenant)
    blueprint.url_defaults(_push_tenant)
    if members_only:
        blueprint.before_request(partial(_require_membership, platform_admins=platform_admins))
    return blueprint
