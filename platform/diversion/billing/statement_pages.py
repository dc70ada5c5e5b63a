"""Statement pages, for the three who read them: a force's admins (its providers), a provider's
admins (the forces it serves) and the platform's admins (every force, with the Reverse action).

One template shows a statement to all three (``billing/statement.html``): every ledger row
behind it (paginated, each with the case reference of its referral), its lines, totals, VAT,
the platform's fee and what the provider receives, and where its invoice stands; each also as CSV.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput, GovTextArea
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from diversion.accounts.access import (
    Action,
    may,
    requires_force_action,
    requires_platform_action,
)
from diversion.billing import contracts, ledger, statements
from diversion.billing.models import LedgerEntry
from diversion.billing.months import month_key, month_label, month_of, parse_month
from diversion.catalogue.models import Provider
from diversion.db import LONDON, utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.forms import Form
from diversion.forms import lazy_gettext as _l
from diversion.listing import matching, page_of, search_terms
from diversion.providers.acting import WORKSPACE_BASE, provider_in_address, requires_provider_action
from diversion.tenancy.context import set_scope
from diversion.tenancy.models import Tenant
from diversion.tenancy.web import force_blueprint
from diversion.web import change_on_form
from diversion.words import current_language

force_bp = force_blueprint("force_billing", __name__, "/billing")
provider_bp = Blueprint("provider_billing", __name__, url_prefix="/provider/billing")
admin_bp = Blueprint("admin_billing", __name__, url_prefix="/admin/billing")


class ReverseForm(Form):
    reason = TextAreaField(_l("Why is this row reversed?"), widget=GovTextArea(),
                           validators=[InputRequired(message=_l("Enter why this row is reversed")),
                                       Length(max=ledger.REASON_LIMIT,
                                              message=_l("The reason must be %(max)s characters or fewer",
                                                         max=ledger.REASON_LIMIT))])
    submit = SubmitField(_l("Reverse the row"), widget=GovSubmitInput())


@provider_bp.app_template_global()
def reads_provider_billing() -> bool:
    """For the workspace's templates: whether the signed-in user may read the billing of the provider in hand."""
    provider = g.get("provider")
    return provider is not None and may(current_user, Action.READ_BILLING, provider_id=provider.id)


def _month(text: str) -> date:
    try:
        return parse_month(text)
    except FieldError:
        abort(404)


def _provider(slug: str) -> Provider:
    found = db.session.scalar(select(Provider).where(Provider.slug == slug))
    if found is None:
        abort(404)
    return found


def _force(slug: str) -> Tenant:
    found = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    if found is None:
        abort(404)
    return found


def _statement(tenant: Tenant, provider: Provider, month: date, **page: Any) -> str:
    """The statement page of (force, provider, month); 404 when it has no ledger row at all."""
    settled = statements.statement_of(tenant.id, provider.id, month)
    rows = page_of(statements.ledger_rows(tenant.id, provider.id, month))
    if settled is None and not rows.total:
        abort(404)
    summary = statements.of_statement(settled) if settled is not None else statements.draft(
        tenant.id, provider.id, month)
    closed = ledger.is_closed(tenant.id, month)
    return render_template(
        "billing/statement.html", tenant=tenant, provider=provider, month=month, settled=settled,
        summary=summary, rows=rows, closed=closed,
        fees_to_come=0 if settled or closed else ledger.fees_to_charge(tenant.id, provider.id, month),
        reversed=ledger.reversed_ids(entry.id for entry in rows.items), names=statements.pathway_names(tenant.id),
        cases=statements.case_references(tenant.id, (entry.referral_id for entry in rows.items)),
        label=statements.row_label, **page)


def _csv(tenant: Tenant, provider: Provider, month: date) -> Response:
    if statements.statement_of(tenant.id, provider.id, month) is None and not db.session.scalar(
            statements.ledger_rows(tenant.id, provider.id, month).limit(1)):
        abort(404)
    response = Response(statements.statement_csv(tenant.id, provider.id, month), mimetype="text/csv")
    name = statements.csv_filename(tenant.slug, provider.slug, month)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# ---------------------------------------------------------------- a force's admins

@force_bp.route("/", endpoint="index")
@requires_force_action(Action.READ_BILLING)
def force_index() -> str:
    search = search_terms()
    page = statements.page_of_rows(statements.accounts(tenant_id=g.tenant.id, search=search))
    return render_template("billing/statements.html", page=page, accounts=statements.accounts_of(page.items),
                           search=search, reader="force", title=_("Statements of %(name)s",
                                                                  name=g.tenant.name_in(current_language())),
                           this_month=month_of(utcnow()), base="force_base.html", endpoint="force_billing.index")


@force_bp.route("/<provider>/<month>", endpoint="statement")
@requires_force_action(Action.READ_BILLING)
def force_statement(provider: str, month: str) -> str:
    return _statement(g.tenant, _provider(provider), _month(month), base="force_base.html",
                      csv_url=url_for("force_billing.download", provider=provider, month=month),
                      back=url_for("force_billing.index"), endpoint="force_billing.statement", reverse_endpoint=None)


@force_bp.route("/<provider>/<month>.csv", endpoint="download")
@requires_force_action(Action.READ_BILLING)
def force_download(provider: str, month: str) -> Response:
    return _csv(g.tenant, _provider(provider), _month(month))


# ---------------------------------------------------------------- a provider's admins

@provider_bp.route("/", endpoint="index")
@requires_provider_action(Action.READ_BILLING)
def provider_index() -> str:
    search = search_terms()
    page = statements.page_of_rows(statements.accounts(provider_id=g.provider.id, search=search))
    return render_template("billing/statements.html", page=page, accounts=statements.accounts_of(page.items),
                           search=search, reader="provider", title=_("Statements of %(name)s", name=g.provider.name),
                           this_month=month_of(utcnow()), base=WORKSPACE_BASE, endpoint="provider_billing.index",
                           here=provider_in_address(),
                           payouts=may(current_user, Action.MANAGE_PAYOUTS, provider_id=g.provider.id))


@provider_bp.route("/<force>/<month>", endpoint="statement")
@requires_provider_action(Action.READ_BILLING)
def provider_statement(force: str, month: str) -> str:
    return _statement(_force(force), g.provider, _month(month), base=WORKSPACE_BASE,
                      csv_url=url_for("provider_billing.download", force=force, month=month, **provider_in_address()),
                      back=url_for("provider_billing.index", **provider_in_address()),
                      endpoint="provider_billing.statement", reverse_endpoint=None)


@provider_bp.route("/<force>/<month>.csv", endpoint="download")
@requires_provider_action(Action.READ_BILLING)
def provider_download(force: str, month: str) -> Response:
    return _csv(_force(force), g.provider, _month(month))


# ---------------------------------------------------------------- the platform's admins

@admin_bp.route("/", endpoint="index")
@requires_platform_action(Action.READ_BILLING)
def admin_index() -> str | tuple[str, int]:
    """One month (``?month=YYYY-MM``, this month unless given) across the forces, a page of forces at
    a time (each read in its own scope, as row-level security has it), searchable by force name; with a
    warning for each force of the page that offers courses of a provider it has no contract with."""
    this_month = month_of(utcnow())
    error = None
    month = this_month
    if request.args.get("month"):
        try:
            month = parse_month(request.args["month"])
        except FieldError as problem:
            error = problem.message
    search = search_terms()
    forces = select(Tenant).order_by(Tenant.name)
    if search:
        forces = forces.where(matching(search, Tenant.name.expression))
    page = page_of(forces)
    by_force, uncontracted = [], []
    today = utcnow().astimezone(LONDON).date()
    for tenant in page.items:
        set_scope(tenant.id, current_user.id)
        rows = db.session.execute(statements.accounts(tenant_id=tenant.id, month=month)).all()
        by_force.append((tenant, statements.accounts_of(rows)))
        offered = contracts.offered_without_contract(today)
        if offered:
            uncontracted.append((tenant, offered))
    set_scope(None, current_user.id)
    html = render_template("billing/admin_statements.html", page=page, by_force=by_force, month=month,
                           uncontracted=uncontracted,
                           search=search, error=error, this_month=this_month, month_key=month_key)
    return (html, 400) if error else html


def _in_force(force: str) -> Tenant:
    tenant = _force(force)
    set_scope(tenant.id, current_user.id)
    return tenant


@admin_bp.route("/<force>/<provider>/<month>", endpoint="statement")
@requires_platform_action(Action.READ_BILLING)
def admin_statement(force: str, provider: str, month: str) -> str:
    tenant = _in_force(force)
    return _statement(tenant, _provider(provider), _month(month), base="base.html",
                      csv_url=url_for("admin_billing.download", force=force, provider=provider, month=month),
                      back=url_for("admin_billing.index", month=month), endpoint="admin_billing.statement",
                      reverse_endpoint="admin_billing.reverse" if may(current_user, Action.CORRECT_LEDGER,
                                                                      tenant_id=tenant.id) else None)


@admin_bp.route("/<force>/<provider>/<month>.csv", endpoint="download")
@requires_platform_action(Action.READ_BILLING)
def admin_download(force: str, provider: str, month: str) -> Response:
    return _csv(_in_force(force), _provider(provider), _month(month))


@admin_bp.route("/<force>/<provider>/<month>/rows/<uuid:entry_id>/reverse", methods=["GET", "POST"],
                endpoint="reverse")
@requires_platform_action(Action.CORRECT_LEDGER)
def reverse(force: str, provider: str, month: str, entry_id: uuid.UUID) -> str | Response | tuple[str, int]:
    """Reverse one ledger row of the statement, with a reason."""
    tenant = _in_force(force)
    found = _provider(provider)
    chosen = _month(month)
    entry = db.session.get(LedgerEntry, entry_id)
    if entry is None or entry.tenant_id != tenant.id or entry.provider_id != found.id or entry.month != chosen:
        abort(404)
    back = url_for("admin_billing.statement", force=force, provider=provider, month=month)
    form = ReverseForm()
    if form.validate_on_submit():
        done = change_on_form(form, lambda: ledger.reverse(tenant, entry, reason=form.reason.data or "",
                                                           actor=current_user._get_current_object()),
                              {"entry": form.reason})
        if done is not None:
            flash(_("The row is reversed in the statement of %(month)s.", month=month_label(done.month)),
                  "success")
            return redirect(back)
    already = bool(ledger.reversed_ids([entry.id]))
    html = render_template("billing/reverse.html", form=form, entry=entry, tenant=tenant, provider=found,
                           month=chosen, back=back, already=already,
                           case=next(iter(statements.case_references(tenant.id, [entry.referral_id]).values()), None),
                           label=statements.row_label(entry, statements.pathway_names(tenant.id)))
    return (html, 400) if request.method == "POST" else html
