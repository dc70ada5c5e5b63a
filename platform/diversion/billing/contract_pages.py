"""The contract pages: platform admins manage every force's contracts in the console
(``/admin/billing/contracts/``: the list, a new one, one read, one changed); a force's
admins read their force's (``/<force>/billing/contracts/``); a provider's admins read
their provider's with every force (``/provider/billing/contracts/``).

Each page puts in scope exactly what it reads: the console the force of the
contract at hand (and, for the list, the platform admin, whom row-level
security lets read every force's contracts); a force's page its force; a
provider's page its provider and no force.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from diversion.accounts.access import Action, may, requires_force_action, requires_platform_action
from diversion.billing import contracts
from diversion.billing.contract_forms import ContractForm, contract_form, percent_of
from diversion.billing.models import PRICED_KINDS, Contract
from diversion.catalogue.models import Provider
from diversion.db import LONDON, utcnow
from diversion.extensions import db
from diversion.listing import page_of, search_terms
from diversion.providers.acting import WORKSPACE_BASE, provider_in_address, requires_provider_action
from diversion.tenancy.context import scoped, set_scope
from diversion.tenancy.models import Tenant
from diversion.tenancy.web import force_blueprint
from diversion.web import change_on_form
from diversion.words import current_language, day

admin_bp = Blueprint("contracts_admin", __name__, url_prefix="/admin/billing/contracts")
force_bp = force_blueprint("force_contracts", __name__, "/billing/contracts")
provider_bp = Blueprint("provider_contracts", __name__, url_prefix="/provider/billing/contracts")


def _today() -> date:
    return datetime.now(UTC).date()


def _dates(contract: Contract) -> str:
    if contract.ends_on is None:
        return str(_("From %(start)s, until further notice", start=day(contract.starts_on)))
    return str(_("%(start)s to %(end)s", start=day(contract.starts_on),
                 end=day(contract.ends_on)))


def _list(*, base: str, title: str, caption: str, endpoint: str, view: str, statement: Any, search: str,
          show_force: bool, show_provider: bool, here: dict[str, Any] | None = None,
          new: str | None = None, back: str | None = None) -> str:
    page = page_of(statement)
    parties = contracts.parties_of(page.items)
    return render_template("billing/contracts.html", base=base, title=title, caption=caption, page=page,
                           parties=parties, search=search, endpoint=endpoint, view=view, show_force=show_force,
                           show_provider=show_provider, here=here or {}, new=new, back=back, dates=_dates,
                           status=lambda c: contracts.status_of(c, _today()))


def _show(contract: Contract, *, base: str, names: dict[str, str], back: str, back_text: str,
          change: str | None = None) -> str:
    parties = contracts.parties_of([contract])
    prices = contracts.prices_of(contract)
    pathways = dict(names)
    for _kind, pathway in prices:
        pathways.setdefault(pathway, pathway)
    return render_template("billing/contract.html", base=base, contract=contract,
                           force=parties.forces[contract.tenant_id], provider=parties.providers[contract.provider_id],
                           prices=prices, pathways=pathways, kinds=PRICED_KINDS, dates=_dates(contract),
                           status=contracts.status_of(contract, _today()),
                           platform_fee=percent_of(contract.platform_fee_basis_points), back=back,
                           back_text=back_text, change=change)


@admin_bp.app_template_global()
def offered_without_contract() -> list[Provider]:
    """For the pages where a force's courses are offered (the force's "Courses offered", the console's
    onboarding step and its Billing page): the providers whose courses the force in scope offers with
    no contract in force today (``contracts.offered_without_contract``). Offering is never refused for
    it: the pages warn."""
    return contracts.offered_without_contract(utcnow().astimezone(LONDON).date())


@admin_bp.app_template_global()
def adds_contracts() -> bool:
    """Whether the signed-in user may add contracts (the platform's admins): the warnings link to the form."""
    return may(current_user, Action.MANAGE_CONTRACTS)


# ---------------------------------------------------------------- the console: every force's contracts

def _force(slug: str) -> Tenant:
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        abort(404)
    return tenant


@admin_bp.route("/")
@requires_platform_action(Action.MANAGE_CONTRACTS)
def index() -> str:
    set_scope(None, current_user.id)  # row-level security lets a platform admin read every force's contracts
    search = search_terms()
    return _list(base="base.html", title=_("Contracts"), caption=_("Billing"), endpoint="contracts_admin.index",
                 view="contracts_admin.show", statement=contracts.every_contract(search), search=search,
                 show_force=True, show_provider=True, new=url_for(".choose_force"),
                 back=url_for("admin_billing.index"))


@admin_bp.route("/new")
@requires_platform_action(Action.MANAGE_CONTRACTS)
def choose_force() -> str:
    forces = db.session.scalars(select(Tenant).order_by(Tenant.name)).all()
    return render_template("billing/contract_choose_force.html", forces=forces)


def _form_page(tenant: Tenant, form: ContractForm, *, contract: Contract | None) -> str | tuple[str, int]:
    html = render_template("billing/contract_form.html", form=form, tenant=tenant, contract=contract,
                           provider=db.session.get(Provider, contract.provider_id) if contract else None)
    return (html, 400) if form.errors else html


@admin_bp.route("/<force>/new", methods=["GET", "POST"])
@requires_platform_action(Action.MANAGE_CONTRACTS)
def new(force: str) -> str | Response | tuple[str, int]:
    tenant = _force(force)
    with scoped(tenant.id, current_user.id):
        pathways, providers = contracts.pathways_of_force(), contracts.providers_serving_force()
        form = contract_form(pathways, providers)
        chosen = next((p for p in providers if p.slug == request.args.get("provider")), None)
        if chosen is not None and request.method == "GET":  # from a warning that the provider has none
            form.provider.data = str(chosen.id)
        if form.validate_on_submit():
            made = change_on_form(form, lambda: contracts.create_contract(
                tenant, form.terms(int(form.provider.data or 0)), actor=current_user._get_current_object()))
            if made is not None:
                flash(_("The contract between %(force)s and %(provider)s is saved.",
                        force=tenant.name_in(current_language()),
                        provider=db.session.get(Provider, made.provider_id).name), "success")  # type: ignore[union-attr]
                return redirect(url_for(".show", force=tenant.slug, contract_id=made.id))
        return _form_page(tenant, form, contract=None)


def _contract_of(tenant: Tenant, contract_id: uuid.UUID) -> Contract:
    found = contracts.find_contract(contract_id)
    if found is None:
        abort(404)
    return found


@admin_bp.route("/<force>/<uuid:contract_id>")
@requires_platform_action(Action.MANAGE_CONTRACTS)
def show(force: str, contract_id: uuid.UUID) -> str:
    tenant = _force(force)
    with scoped(tenant.id, current_user.id):
        contract = _contract_of(tenant, contract_id)
        return _show(contract, base="base.html", names=dict(contracts.pathways_of_force()),
                     back=url_for(".index"), back_text=_("Contracts"),
                     change=url_for(".edit", force=tenant.slug, contract_id=contract.id))


@admin_bp.route("/<force>/<uuid:contract_id>/edit", methods=["GET", "POST"])
@requires_platform_action(Action.MANAGE_CONTRACTS)
def edit(force: str, contract_id: uuid.UUID) -> str | Response | tuple[str, int]:
    tenant = _force(force)
    with scoped(tenant.id, current_user.id):
        contract = _contract_of(tenant, contract_id)
        provider = db.session.get(Provider, contract.provider_id)
        form = contract_form(contracts.pathways_of_force(), [provider] if provider else [],
                             terms=contracts.terms_of(contract))
        form.provider.data = str(contract.provider_id)  # a contract stays with its provider
        if form.validate_on_submit():
            changed = change_on_form(form, lambda: contracts.change_contract(
                tenant, contract, form.terms(contract.provider_id), actor=current_user._get_current_object()))
            if changed is not None:
                flash(_("The contract between %(force)s and %(provider)s is changed.",
                        force=tenant.name_in(current_language()),
                        provider=provider.name if provider else ""), "success")
                return redirect(url_for(".show", force=tenant.slug, contract_id=contract.id))
        return _form_page(tenant, form, contract=contract)


# ---------------------------------------------------------------- a force's admins: the force's contracts

@force_bp.route("/")
@requires_force_action(Action.READ_BILLING)
def force_index() -> str:
    search = search_terms()
    return _list(base="force_base.html", title=_("Contracts"), caption=g.tenant.name_in(current_language()),
                 endpoint="force_contracts.force_index", view="force_contracts.force_show",
                 statement=contracts.contracts_of_force(search), search=search, show_force=False, show_provider=True)


@force_bp.route("/<uuid:contract_id>")
@requires_force_action(Action.READ_BILLING)
def force_show(contract_id: uuid.UUID) -> str:
    contract = _contract_of(g.tenant, contract_id)
    return _show(contract, base="force_base.html", names=dict(contracts.pathways_of_force()),
                 back=url_for(".force_index"), back_text=_("Contracts"))


# ---------------------------------------------------------------- a provider's admins: its contracts with every force

@provider_bp.route("/")
@requires_provider_action(Action.READ_BILLING)
def provider_index() -> str:
    search = search_terms()
    return _list(base=WORKSPACE_BASE, title=_("Contracts"), caption=g.provider.name,
                 endpoint="provider_contracts.provider_index", view="provider_contracts.provider_show",
                 statement=contracts.contracts_of_provider(g.provider.id, search), search=search, show_force=True,
                 show_provider=False, here=provider_in_address())


@provider_bp.route("/<uuid:contract_id>")
@requires_provider_action(Action.READ_BILLING)
def provider_show(contract_id: uuid.UUID) -> str:
    found = contracts.find_contract(contract_id)
    if found is None or found.provider_id != g.provider.id:
        abort(404)
    tenant_id = found.tenant_id
    with scoped(None, current_user.id):  # the force's published pathways: public, read with no provider in scope
        names = contracts.pathway_names(tenant_id)
    return _show(found, base=WORKSPACE_BASE, names=names, back=url_for(".provider_index", **provider_in_address()),
                 back_text=_("Contracts"))
