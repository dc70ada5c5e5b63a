"""Statements: drafts from the ledger, settled once the month is closed, and their CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from flask import Flask
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import User
from diversion.billing import ledger, statements
from diversion.billing.models import ClosedMonth, EventKind, LedgerEntry, StatementLine, VatTreatment
from diversion.cases.models import State
from diversion.db import utcnow
from diversion.errors import AccessRefused, FieldError
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.billing.conftest import Billing, at, make_contract, moved
from tests.conftest import World

OCTOBER = date(2026, 10, 1)


def _october(app: Flask, world: World, billing: Billing) -> None:
    """Two accepted, three attended at 15.00 (one reversed), a completion, and a monthly fee of 500.00."""
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1), fee=50000,
                  vat=VatTreatment.STANDARD, basis_points=250)
    for day in (2, 3):
        moved(app, billing, State.ACCEPTED, at(2026, 10, day))
    for day in (5, 6, 7):
        moved(app, billing, State.ATTENDED, at(2026, 10, day))
    moved(app, billing, State.COMPLETED, at(2026, 10, 9))
    with app.app_context(), scoped(billing.force.id):
        tenant = db.session.get(Tenant, billing.force.id)
        assert tenant is not None
        ledger.charge_monthly_fees(tenant, OCTOBER, actor=SYSTEM)
        entry = db.session.scalars(select(LedgerEntry).where(LedgerEntry.kind == EventKind.SESSION_ATTENDED)
                                   .order_by(LedgerEntry.occurred_at)).first()
        assert entry is not None
        admin = db.session.get(User, world.users["platform_admin"].id)
        # The reversal lands in the month open today (December), not in October's statement.
        with_reason = ledger.reverse(tenant, entry, reason="Recorded twice", actor=admin)
        assert with_reason.month == ledger.open_month(billing.force.id, ledger.month_of(utcnow()))
        db.session.commit()


def test_a_draft_groups_the_ledger_with_vat_and_the_platform_fee(app: Flask, world: World, billing: Billing) -> None:
    _october(app, world, billing)
    with app.app_context(), scoped(billing.force.id):
        found = statements.draft(billing.force.id, billing.provider.id, OCTOBER)
    assert [(g.kind, g.unit_pence, g.quantity, g.amount_pence, g.vat_pence) for g in found.groups] == [
        (EventKind.REFERRAL_ACCEPTED, 7000, 2, 14000, 2800),
        (EventKind.SESSION_ATTENDED, 1500, 3, 4500, 900),
        (EventKind.COURSE_COMPLETED, 2500, 1, 2500, 500),
        (EventKind.MONTHLY_FEE, 50000, 1, 50000, 10000),
    ]
    assert found.net_pence == 71000
    assert found.vat_pence == 14200
    assert found.platform_fee_pence == 1775  # 2.5% of the net amount, before VAT
    assert found.to_provider_pence == 71000 + 14200 - 1775


def test_settling_needs_a_closed_month_and_is_idempotent(app: Flask, world: World, billing: Billing) -> None:
    _october(app, world, billing)
    with app.app_context(), scoped(billing.force.id):
        tenant = db.session.get(Tenant, billing.force.id)
        assert tenant is not None
        with pytest.raises(FieldError) as refused:
            statements.settle_month(tenant, OCTOBER, actor=SYSTEM)
        assert refused.value.field == "month"
        force_admin = db.session.get(User, world.users["a_force_admin"].id)
        with pytest.raises(AccessRefused):
            statements.settle_month(tenant, OCTOBER, actor=force_admin)
        db.session.add(ClosedMonth(tenant_id=tenant.id, month=OCTOBER))
        first = statements.settle_month(tenant, OCTOBER, actor=SYSTEM)
        db.session.commit()
        again = statements.settle_month(tenant, OCTOBER, actor=SYSTEM)
        assert [s.id for s in again] == [s.id for s in first]
        assert len(first) == 1
        statement = first[0]
        assert (statement.net_pence, statement.vat_pence, statement.platform_fee_pence) == (71000, 14200, 1775)
        lines = db.session.scalars(select(StatementLine).where(StatementLine.statement_id == statement.id)).all()
        assert sorted((line.kind, line.quantity, line.amount_pence) for line in lines) == sorted([
            (EventKind.REFERRAL_ACCEPTED, 2, 14000), (EventKind.SESSION_ATTENDED, 3, 4500),
            (EventKind.COURSE_COMPLETED, 1, 2500), (EventKind.MONTHLY_FEE, 1, 50000)])
        assert statements.of_statement(statement) == statements.draft(billing.force.id, billing.provider.id, OCTOBER)
        # A late event goes to November: October's statement does not change.
        moved(app, billing, State.ATTENDED, at(2026, 10, 20))
        assert statements.draft(billing.force.id, billing.provider.id, OCTOBER).net_pence == 71000


def test_a_month_without_rows_settles_no_statement(app: Flask, world: World, billing: Billing) -> None:
    with app.app_context(), scoped(billing.force.id):
        tenant = db.session.get(Tenant, billing.force.id)
        assert tenant is not None
        db.session.add(ClosedMonth(tenant_id=tenant.id, month=OCTOBER))
        assert statements.settle_month(tenant, OCTOBER, actor=SYSTEM) == []


def test_the_csv_lists_every_row_then_the_lines_and_totals(app: Flask, world: World, billing: Billing) -> None:
    _october(app, world, billing)
    with app.app_context(), scoped(billing.force.id):
        text = statements.statement_csv(billing.force.id, billing.provider.id, OCTOBER)
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["Ledger rows"]
    assert table[1] == list(statements.CSV_ROWS_HEADER)
    body = table[2:table.index([])]
    assert len(body) == 7  # 2 accepted, 3 attended, 1 completed, the fee
    assert body[0] == ["2026-10-01", "", "Monthly fee", "", "500.00", "1", "500.00", ""]  # about no case
    assert ["Net (before VAT)", "710.00"] in table
    assert ["VAT", "142.00"] in table
    assert ["Total to pay", "852.00"] in table
    assert ["Platform fee", "17.75"] in table
    assert ["Paid to the provider after the platform fee", "834.25"] in table


def test_a_reversal_makes_a_group_of_its_own(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    moved(app, billing, State.ACCEPTED, at(2026, 10, 2))
    with app.app_context(), scoped(billing.force.id):
        tenant = db.session.get(Tenant, billing.force.id)
        entry = db.session.scalars(select(LedgerEntry)).one()
        admin = db.session.get(User, world.users["platform_admin"].id)
        assert tenant is not None
        reversal = ledger.reverse(tenant, entry, reason="Not ours", actor=admin)
        found = statements.draft(billing.force.id, billing.provider.id, reversal.month)
        if reversal.month == OCTOBER:
            names = statements.pathway_names(billing.force.id)
            assert [(g.unit_pence, g.quantity, g.label(names)) for g in found.groups] == [
                (7000, 1, "Referral accepted, DIVERT (adults)"),
                (-7000, 1, "Referral accepted, DIVERT (adults) (reversed)")]
            assert found.net_pence == 0
        else:
            assert [(g.unit_pence, g.amount_pence) for g in found.groups] == [(-7000, -7000)]
        text = statements.statement_csv(billing.force.id, billing.provider.id, reversal.month)
        assert "Reversal of: Referral accepted, DIVERT (adults)" in text
        assert "Not ours" in text
