"""The reconciliation page: a month's mismatches for the platform admins, in plain words."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import Flask
from flask.testing import FlaskClient

from diversion.billing.models import InvoiceStatus, StripeEvent
from diversion.extensions import db
from tests.billing.test_reconcile import bill
from tests.conftest import World, sign_in

PAGE = "/admin/billing/reconciliation"


def _as_admin(client: FlaskClient, world: World) -> FlaskClient:
    assert sign_in(client, world.email("platform_admin")).status_code == 302
    return client


def _stray_payments(app: Flask, count: int) -> None:
    with app.app_context():
        for n in range(count):
            db.session.add(StripeEvent(event_id=f"evt_{n}", type="invoice.paid", matched=False,
                                       created=datetime(2026, 11, 2 + n % 20, 12, tzinfo=UTC),
                                       stripe_invoice_id=f"in_stray_{n}", amount_paid_pence=100 * (n + 1)))
        db.session.commit()


def test_a_clean_month_says_so(app: Flask, client: FlaskClient, world: World) -> None:
    bill(app, world, status=InvoiceStatus.PAID, paid=28800)
    page = _as_admin(client, world).get(f"{PAGE}?month=2026-11")
    assert page.status_code == 200
    assert "November 2026" in page.text
    assert "1 statement compared" in page.text
    assert "No mismatches" in page.text
    assert "Stripe is not set up here" in page.text


def test_every_mismatch_is_listed_in_plain_words(app: Flask, client: FlaskClient, world: World) -> None:
    bill(app, world, status=InvoiceStatus.OPEN, due_on=date(2026, 11, 30))
    _stray_payments(app, 1)
    page = _as_admin(client, world).get(f"{PAGE}?month=2026-11")
    assert page.status_code == 200
    assert "2 mismatches" in page.text
    for text in ("Unpaid past due", "West Midlands Police", "Cranstoun",
                 "Due on 30 November 2026 and not paid: £288.00 outstanding",
                 "Payment without invoice", "Stripe reported a payment of £1.00 on 2 November 2026"):
        assert text in page.text
    assert "in_stray_0" not in page.text  # no Stripe ids on a page
    assert "in_west_midlands_cranstoun" not in page.text
    one_force = client.get(f"{PAGE}?month=2026-11&force=durham")
    assert "No mismatches" in one_force.text


def test_the_list_is_searched_and_paginated(app: Flask, client: FlaskClient, world: World) -> None:
    _stray_payments(app, 30)
    _as_admin(client, world)
    first = client.get(f"{PAGE}?month=2026-11")
    assert "30 mismatches" in first.text
    assert first.text.count("Payment without invoice") == 25
    second = client.get(f"{PAGE}?month=2026-11&page=2")
    assert second.text.count("Payment without invoice") == 5
    assert client.get(f"{PAGE}?month=2026-11&page=99").text.count("Payment without invoice") == 5
    found = client.get(f"{PAGE}?month=2026-11&q=%C2%A330.00")
    assert "1 mismatch matching “£30.00” of 30" in found.text
    nothing = client.get(f"{PAGE}?month=2026-11&q=zebra")
    assert "No mismatch matches “zebra”." in nothing.text


def test_a_wrong_month_or_force_is_said_naming_the_field(app: Flask, client: FlaskClient, world: World) -> None:
    _as_admin(client, world)
    page = client.get(f"{PAGE}?month=Novembre")
    assert page.status_code == 400
    assert "There is a problem" in page.text
    assert 'href="#month"' in page.text
    assert "Enter the month as year and month, like 2026-11" in page.text
    page = client.get(f"{PAGE}?month=2026-13&force=atlantis")
    assert page.status_code == 400
    assert 'href="#force"' in page.text
    assert "Choose a force from the list" in page.text


def test_without_a_month_the_last_one_is_reconciled(app: Flask, client: FlaskClient, world: World) -> None:
    page = _as_admin(client, world).get(PAGE)
    assert page.status_code == 200
    assert "No mismatches" in page.text
