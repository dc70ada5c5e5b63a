"""The platform admin's reconciliation page, ``/admin/billing/reconciliation``: a month (and
optionally one force) reconciled, every mismatch listed in plain words, paginated and searchable.

It reads only; a wrong month or force is said on the page, naming the field, and nothing is run.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import select

from diversion.accounts.access import Action, requires_platform_action
from diversion.billing.months import month_key, month_of, parse_month, previous_month
from diversion.billing.reconcile import Mismatch, reconcile
from diversion.billing.stripe_api import opened
from diversion.db import utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.listing import PER_PAGE, search_terms
from diversion.tenancy.models import Tenant

bp = Blueprint("billing_reconciliation", __name__, url_prefix="/admin/billing")


class _Listed(Pagination):
    """A page of a list already in memory (the mismatches are found by comparing, not by a query)."""

    def _query_items(self) -> list[Any]:
        items: list[Any] = self._query_args["items"]
        return items[self._query_offset:self._query_offset + self.per_page]

    def _query_count(self) -> int:
        return len(self._query_args["items"])


def _page_of(items: list[Mismatch]) -> Pagination:
    """The page asked for by ``?page=``, as ``listing.page_of`` reads it (first page when wrong, last when past it)."""
    raw = request.args.get("page", "1")
    number = int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1
    pages = max(1, -(-len(items) // PER_PAGE))
    return _Listed(page=min(max(number, 1), pages), per_page=PER_PAGE, error_out=False, items=items)


def _matches(mismatch: Mismatch, search: str) -> bool:
    wanted = search.casefold()
    return any(wanted in text.casefold()
               for text in (mismatch.force, mismatch.provider, mismatch.problem.label, mismatch.detail))


@bp.route("/reconciliation")
@requires_platform_action(Action.RECONCILE_BILLING)
def reconciliation() -> tuple[str, int]:
    forces = list(db.session.scalars(select(Tenant).order_by(Tenant.name)))
    default = month_key(previous_month(month_of(utcnow())))
    month_text = request.args.get("month", "").strip() or default
    slug = request.args.get("force", "").strip()
    search = search_terms()
    errors: dict[str, str] = {}
    try:
        month = parse_month(month_text)
    except FieldError as refused:
        errors["month"] = refused.message
    tenant = next((force for force in forces if force.slug == slug), None)
    if slug and tenant is None:
        errors["force"] = _("Choose a force from the list, or every force.")
    args = {"forces": forces, "month_text": month_text, "slug": slug, "search": search, "errors": errors}
    if errors:
        return render_template("billing/reconciliation.html", found=None, page=None, **args), 400
    with opened() as client:
        found = reconcile(month, tenant=tenant, stripe_client=client)
    shown = [mismatch for mismatch in found.mismatches if not search or _matches(mismatch, search)]
    return render_template("billing/reconciliation.html", found=found, page=_page_of(shown), tenant=tenant,
                           **args), 200
