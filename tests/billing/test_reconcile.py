"""Reconciliation of a month: ledger against statements, and payments, set up row by row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import delete, select

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import User
from diversion.billing import ledger, statements
from diversion.billing.models import (
    ClosedMonth,
    Contract,
    EventKind,
    InvoiceStatus,
    LedgerEntry,
    Statement,
    StatementLine,
    StripeEvent,
    VatTreatment,
)
from diversion.billing.reconcile import Mismatch, Problem, describe, reconcile
from diversion.cli import main
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World

MONTH = date(2026, 11, 1)
TODAY = date(2026, 12, 20)
PRICES = {EventKind.REFERRAL_ACCEPTED: 7000, EventKind.SESSION_ATTENDED: 1500}


@dataclass(frozen=True)
class Billed:
    contract: uuid.UUID
    statement: uuid.UUID


def _ledger_row(tenant_id: int, provider_id: int, contract: uuid.UUID, kind: EventKind, n: int,
                *, month: date = MONTH) -> LedgerEntry:
    unit = PRICES[kind]
    return LedgerEntry(tenant_id=tenant_id, key=f"test:{provider_id}:{kind.value}:{n}:{month}", provider_id=provider_id,
                       contract_id=contract, month=month, kind=kind, pathway="education",
                       occurred_at=datetime(month.year, month.month, 10, tzinfo=UTC), unit_pence=unit,
                       quantity=1, amount_pence=unit)


def bill(app: Flask, world: World, *, force: str = "a", status: InvoiceStatus = InvoiceStatus.OPEN,
         due_on: date | None = date(2026, 12, 31), invoice_id: str | None = "in_west_midlands_cranstoun",
         paid: int = 0) -> Billed:
    """A closed month of Cranstoun's in force A: 3 referrals accepted and 2 sessions attended, the
    statement billing exactly those rows (standard VAT), its invoice as ``status`` says."""
    tenant = world.a if force == "a" else world.b
    provider = world.providers["cranstoun"].id
    with app.app_context(), scoped(tenant.id):
        contract = Contract(provider_id=provider, starts_on=date(2026, 1, 1), vat=VatTreatment.STANDARD,
                            platform_fee_basis_points=500)
        db.session.add(contract)
        db.session.flush()
        for n in range(3):
            db.session.add(_ledger_row(tenant.id, provider, contract.id, EventKind.REFERRAL_ACCEPTED, n))
        for n in range(2):
            db.session.add(_ledger_row(tenant.id, provider, contract.id, EventKind.SESSION_ATTENDED, n))
        db.session.add(ClosedMonth(month=MONTH))
        statement = Statement(provider_id=provider, month=MONTH, net_pence=24000, vat_pence=4800,
                              platform_fee_pence=1200, to_provider_pence=27600, stripe_invoice_id=invoice_id,
                              invoice_status=status, invoice_due_on=due_on, amount_paid_pence=paid)
        db.session.add(statement)
        db.session.flush()
        for kind, quantity in ((EventKind.REFERRAL_ACCEPTED, 3), (EventKind.SESSION_ATTENDED, 2)):
            amount = PRICES[kind] * quantity
            db.session.add(StatementLine(statement_id=statement.id, contract_id=contract.id, kind=kind,
                                         pathway="education", unit_pence=PRICES[kind], quantity=quantity,
                                         amount_pence=amount, vat_pence=amount // 5,
                                         stripe_item_id=f"ii_{force}_{kind.value}"))
        db.session.commit()
        return Billed(contract.id, statement.id)


def _reconciled(app: Flask, *, tenant_id: int | None = None, month: date = MONTH) -> list[Mismatch]:
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id) if tenant_id is not None else None
        found = reconcile(month, tenant=tenant, today=TODAY)
        return list(found.mismatches)


def test_a_month_that_agrees_has_no_mismatch(app: Flask, world: World) -> None:
    bill(app, world)
    with app.app_context():
        found = reconcile(MONTH, today=TODAY)
        assert found.clean
        assert (found.statements, found.invoices_read, found.stripe_on) == (1, 0, False)
        assert list(describe(found)) == [
            "Reconciliation of November 2026: 1 statement, 0 invoices read from Stripe "
            "(Stripe is not set up: invoices were not compared).",
            "No mismatches."]


def test_a_ledger_group_the_statement_lacks_is_a_missing_line(app: Flask, world: World) -> None:
    bill(app, world)
    with app.app_context(), scoped(world.a.id):
        db.session.execute(delete(StatementLine).where(StatementLine.kind == EventKind.SESSION_ATTENDED))
        db.session.commit()
    found = _reconciled(app)
    assert [(m.problem, m.force, m.provider) for m in found] == [
        (Problem.MISSING_LINE, "West Midlands Police", "Cranstoun"),
        (Problem.WRONG_AMOUNT, "West Midlands Police", "Cranstoun"),
        (Problem.WRONG_AMOUNT, "West Midlands Police", "Cranstoun")]
    assert found[0].detail == ("The statement has no line for 2 × Session attended, education, at £15.00 (£30.00) "
                               "in the ledger.")
    assert found[1].detail == "The statement's net total is £240.00; its lines add up to £210.00."
    assert found[2].detail == "The statement's VAT is £48.00; its lines' VAT adds up to £42.00."


def test_a_line_whose_quantity_differs_from_the_ledger_is_a_wrong_amount(app: Flask, world: World) -> None:
    billed = bill(app, world)
    with app.app_context(), scoped(world.a.id):
        provider = world.providers["cranstoun"].id
        db.session.add(_ledger_row(world.a.id, provider, billed.contract, EventKind.REFERRAL_ACCEPTED, 99))
        db.session.commit()
    found = _reconciled(app)
    assert [(m.problem, m.detail) for m in found] == [(
        Problem.WRONG_AMOUNT,
        "The statement bills 3 × Referral accepted, education, at £70.00 (£210.00); "
        "the ledger has 4 × Referral accepted, education, at £70.00 (£280.00).")]


def test_ledger_rows_of_a_closed_month_that_no_statement_bills_are_missing(app: Flask, world: World) -> None:
    bill(app, world)
    with app.app_context(), scoped(world.a.id):
        druglink = world.providers["druglink"].id
        contract = Contract(provider_id=druglink, starts_on=date(2026, 1, 1))
        db.session.add(contract)
        db.session.flush()
        db.session.add(_ledger_row(world.a.id, druglink, contract.id, EventKind.SESSION_ATTENDED, 1))
        db.session.commit()
    found = _reconciled(app)
    assert [(m.problem, m.provider, m.detail) for m in found] == [(
        Problem.MISSING_LINE, "Druglink",
        "The month is closed but nothing bills its 1 ledger row (£15.00): there is no statement.")]


def test_an_open_months_rows_are_not_yet_expected_on_a_statement(app: Flask, world: World) -> None:
    billed = bill(app, world)
    with app.app_context(), scoped(world.a.id):
        db.session.add(_ledger_row(world.a.id, world.providers["cranstoun"].id, billed.contract,
                                   EventKind.SESSION_ATTENDED, 7, month=date(2026, 12, 1)))
        db.session.commit()
    assert _reconciled(app, month=date(2026, 12, 1)) == []


@pytest.mark.parametrize(("status", "due_on", "paid", "expected"), [
    (InvoiceStatus.OPEN, date(2026, 12, 19), 0,
     [(Problem.UNPAID_PAST_DUE, "Due on 19 December 2026 and not paid: £288.00 outstanding "
                                "(“Sent, awaiting payment”).")]),
    (InvoiceStatus.PAYMENT_FAILED, date(2026, 12, 1), 0,
     [(Problem.UNPAID_PAST_DUE, "Due on 1 December 2026 and not paid: £288.00 outstanding (“Payment failed”).")]),
    (InvoiceStatus.OPEN, TODAY, 0, []),  # due today: not yet past due
    (InvoiceStatus.PAID, date(2026, 12, 1), 28800, []),
    (InvoiceStatus.VOID, date(2026, 12, 1), 0, []),
    (InvoiceStatus.PAID, date(2026, 12, 31), 20000,
     [(Problem.PAID_AMOUNT_DIFFERS, "£200.00 was paid for an invoice of £288.00.")]),
])
def test_payments_against_invoices(app: Flask, world: World, status: InvoiceStatus, due_on: date, paid: int,
                                   expected: list[tuple[Problem, str]]) -> None:
    bill(app, world, status=status, due_on=due_on, paid=paid)
    assert [(m.problem, m.detail) for m in _reconciled(app)] == expected


def test_a_payment_stripe_reported_for_no_invoice_of_ours(app: Flask, world: World) -> None:
    bill(app, world)
    with app.app_context():
        for n, (when, matched) in enumerate(((datetime(2026, 11, 3, 10, tzinfo=UTC), False),
                                             (datetime(2026, 11, 30, 23, 30, tzinfo=UTC), False),  # London: Nov
                                             (datetime(2026, 10, 31, 23, 30, tzinfo=UTC), False),  # Oct (GMT)
                                             (datetime(2026, 11, 4, tzinfo=UTC), True))):
            db.session.add(StripeEvent(event_id=f"evt_{n}", type="invoice.paid", created=when, matched=matched,
                                       stripe_invoice_id=f"in_{n}", amount_paid_pence=4200 + n))
        db.session.commit()
    found = _reconciled(app)
    assert [(m.problem, m.force, m.detail, m.reference) for m in found] == [
        (Problem.PAYMENT_WITHOUT_INVOICE, "",
         "Stripe reported a payment of £42.00 on 3 November 2026 for an invoice that no statement bills.", "in_0"),
        (Problem.PAYMENT_WITHOUT_INVOICE, "",
         "Stripe reported a payment of £42.01 on 30 November 2026 for an invoice that no statement bills.", "in_1"),
    ]
    # One force's reconciliation cannot place them.
    assert _reconciled(app, tenant_id=world.a.id) == []


def test_each_force_is_reconciled_in_its_own_scope(app: Flask, world: World) -> None:
    bill(app, world, force="a")
    bill(app, world, force="b", invoice_id="in_durham_cranstoun", status=InvoiceStatus.OPEN,
         due_on=date(2026, 12, 1))
    found = _reconciled(app)
    assert [(m.problem, m.force) for m in found] == [(Problem.UNPAID_PAST_DUE, "Durham Constabulary")]
    assert _reconciled(app, tenant_id=world.a.id) == []


def run_reconcile(app: Flask, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["billing", "reconcile", *args], obj=ScriptInfo(create_app=lambda: app))
    return result.exit_code, result.output


def test_the_command_lists_the_mismatches_and_fails(app: Flask, world: World) -> None:
    bill(app, world, status=InvoiceStatus.OPEN, due_on=date(2026, 11, 30))
    code, output = run_reconcile(app, "--month", "2026-11")
    assert code == 1
    assert output.splitlines()[1:] == [
        "1 mismatch:",
        "- Unpaid past due: West Midlands Police / Cranstoun: Due on 30 November 2026 and not paid: £288.00 "
        "outstanding (“Sent, awaiting payment”). [in_west_midlands_cranstoun]"]
    code, output = run_reconcile(app, "--month", "2026-11", "--tenant", "durham")
    assert (code, output.splitlines()[-1]) == (0, "No mismatches.")


def test_the_command_refuses_a_bad_month_or_force(app: Flask, world: World) -> None:
    code, output = run_reconcile(app, "--month", "November")
    assert code == 2
    assert "Enter the month as year and month, like 2026-11" in output
    code, output = run_reconcile(app, "--month", "2026-11", "--tenant", "atlantis")
    assert code == 2
    assert "no force 'atlantis'" in output


def test_reconciling_writes_nothing(app: Flask, world: World) -> None:
    bill(app, world, status=InvoiceStatus.OPEN, due_on=date(2026, 11, 30))
    with app.app_context():
        reconcile(MONTH, today=TODAY)
        assert not db.session.new
        assert not db.session.dirty
        assert not db.session.deleted
        with scoped(world.a.id):
            statement = db.session.scalar(select(Statement))
            assert statement is not None
            assert statement.invoice_status is InvoiceStatus.OPEN


def test_statements_settled_from_the_ledger_reconcile_clean(app: Flask, world: World) -> None:
    """The statements ``settle_month`` writes, a reversal and a second provider included, agree with
    the ledger as reconciliation groups it."""
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        rows = []
        for slug in ("cranstoun", "druglink"):
            provider = world.providers[slug].id
            contract = Contract(provider_id=provider, starts_on=date(2026, 1, 1), vat=VatTreatment.STANDARD,
                                platform_fee_basis_points=750)
            db.session.add(contract)
            db.session.flush()
            for n in range(3):
                rows.append(_ledger_row(world.a.id, provider, contract.id, EventKind.REFERRAL_ACCEPTED, n))
            rows.append(_ledger_row(world.a.id, provider, contract.id, EventKind.SESSION_ATTENDED, 1))
        db.session.add_all(rows)
        db.session.flush()
        ledger.reverse(tenant, rows[0], reason="Accepted twice by mistake", actor=_platform_admin(world))
        db.session.add(ClosedMonth(month=MONTH))
        db.session.flush()
        settled = statements.settle_month(tenant, MONTH, actor=SYSTEM)
        db.session.commit()
        assert len(settled) == 2
    assert _reconciled(app) == []


def _platform_admin(world: World) -> User:
    user = db.session.get(User, world.users["platform_admin"].id)
    assert user is not None
    return user
