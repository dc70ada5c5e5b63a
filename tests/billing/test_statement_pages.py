"""The statement pages: a force's admins, a provider's admins (their own only) and the platform's."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ProviderRole
from diversion.billing import ledger
from diversion.billing.models import LedgerEntry
from diversion.cases.models import Referral, State
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.billing.conftest import Billing, at, force_ref, make_contract, moved, rows
from tests.conftest import Ref, World, csrf_token, sign_in, statements_of
from tests.providers.conftest import add_provider_member, make_referral, provider_ref, refer

OCTOBER = "2026-10"


def _october(app: Flask, world: World, billing: Billing) -> None:
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    moved(app, billing, State.ACCEPTED, at(2026, 10, 2))
    moved(app, billing, State.ATTENDED, at(2026, 10, 5))


def test_a_force_admin_reads_its_statements(app: Flask, client: FlaskClient, world: World, billing: Billing) -> None:
    _october(app, world, billing)
    sign_in(client, world.email("a_force_admin"))
    index = client.get("/west-midlands/billing/")
    assert index.status_code == 200
    assert "Cranstoun" in index.text
    assert "October 2026" in index.text
    assert "£85.00" in index.text
    page = client.get(f"/west-midlands/billing/cranstoun/{OCTOBER}")
    assert page.status_code == 200
    for words in ("Referral accepted, DIVERT (adults)", "Session attended, DIVERT (adults)", "£70.00", "£15.00",
                  "2 ledger rows", "A draft"):
        assert words in page.text
    assert "Reverse" not in page.text
    download = client.get(f"/west-midlands/billing/cranstoun/{OCTOBER}.csv")
    assert download.status_code == 200
    assert download.mimetype == "text/csv"
    assert "Paid to the provider after the platform fee,85.00" in download.text
    assert "Net to" not in download.text  # "net" is before VAT, and only that
    assert "Paid to Cranstoun after the platform fee" in page.text
    assert "Net to" not in page.text
    assert client.get("/west-midlands/billing/druglink/2026-10").status_code == 404
    assert client.get("/west-midlands/billing/cranstoun/2026-13").status_code == 404
    assert client.get("/west-midlands/billing/?q=nobody").status_code == 200


def test_a_draft_says_the_monthly_fee_comes_at_the_close(app: Flask, client: FlaskClient, world: World,
                                                        billing: Billing) -> None:
    """The fee is charged when the month closes: a draft says so, and that its totals are so far."""
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1), fee=150000)
    moved(app, billing, State.ACCEPTED, at(2026, 10, 2))
    sign_in(client, world.email("a_force_admin"))
    page = client.get(f"/west-midlands/billing/cranstoun/{OCTOBER}")
    assert page.status_code == 200
    assert ("The monthly fee, £1,500.00 before VAT, is added when the month closes: these totals do not include "
            "it yet.") in page.text
    assert "Total to pay so far" in page.text
    with app.app_context(), scoped(billing.force.id):  # charged, as the close charges it: no longer to come
        ledger.charge_monthly_fees(db.session.get(Tenant, billing.force.id), date(2026, 10, 1), actor=SYSTEM)
        db.session.commit()
    page = client.get(f"/west-midlands/billing/cranstoun/{OCTOBER}")
    assert "is added when the month closes" not in page.text
    assert "£1,500.00" in page.text


def test_a_provider_admin_reads_its_own_statements_only(app: Flask, client: FlaskClient, world: World,
                                                        billing: Billing) -> None:
    _october(app, world, billing)
    # Druglink's work for Thames Valley: billed, and none of Cranstoun's business.
    druglink, valley = provider_ref_in(app, "druglink"), force_ref(app, "thames-valley")
    theirs = make_referral(app, "thames-valley", "druglink-adult-course", "Thamesby", "07700 900555")
    make_contract(app, valley, druglink, starts_on=date(2026, 1, 1), pathway="adult-course")
    moved(app, Billing(valley, druglink, theirs.id, billing.offering), State.ACCEPTED, at(2026, 10, 3),
          pathway="adult-course")
    assert len(rows(app, valley)) == 1
    add_provider_member(app, world.users["provider_staff"], billing.provider, ProviderRole.ADMIN)
    sign_in(client, world.email("provider_staff"))
    index = client.get("/provider/billing/")
    assert index.status_code == 200
    assert "West Midlands" in index.text
    assert "Thames Valley" not in index.text
    assert 'href="/provider/billing/payouts/' in index.text  # an admin sets up the payouts from here
    page = client.get(f"/provider/billing/west-midlands/{OCTOBER}")
    assert page.status_code == 200
    assert "£70.00" in page.text
    assert "Paid to Cranstoun after the platform fee" in page.text
    assert "Net to" not in page.text
    contracts, payouts = client.get("/provider/billing/contracts/"), client.get("/provider/billing/payouts/")
    for billing_page in (index, page, contracts, payouts):
        assert 'data-testid="organisation"' not in billing_page.text
        assert "provider workspace" in billing_page.text  # the workspace's navigation, Referrals first
        assert 'href="/provider/"' in billing_page.text
    assert client.get(f"/provider/billing/thames-valley/{OCTOBER}").status_code == 404
    assert client.get(f"/provider/billing/west-midlands/{OCTOBER}.csv").status_code == 200


def provider_ref_in(app: Flask, slug: str) -> Ref:
    with app.app_context():
        return provider_ref(slug)


def test_a_platform_admin_reads_every_force_and_reverses_a_row(app: Flask, client: FlaskClient, world: World,
                                                               billing: Billing) -> None:
    _october(app, world, billing)
    sign_in(client, world.email("platform_admin"))
    index = client.get(f"/admin/billing/?month={OCTOBER}")
    assert index.status_code == 200
    assert "West Midlands" in index.text
    assert "Durham" in index.text
    assert "Nothing billed this month" in index.text
    assert client.get("/admin/billing/?month=October").status_code == 400
    url = f"/admin/billing/west-midlands/cranstoun/{OCTOBER}"
    page = client.get(url)
    assert page.status_code == 200
    assert "Reverse" in page.text
    with app.app_context(), scoped(billing.force.id):
        entry = db.session.scalars(select(LedgerEntry).where(LedgerEntry.unit_pence == 7000)).one()
    form_url = f"{url}/rows/{entry.id}/reverse"
    form = client.get(form_url)
    assert form.status_code == 200
    blank = client.post(form_url, data={"reason": "  ", "csrf_token": csrf_token(form.text)})
    assert blank.status_code == 400
    assert "Enter why this row is reversed" in blank.text
    assert len(rows(app, billing.force)) == 2
    done = client.post(form_url, data={"reason": "Accepted by mistake", "csrf_token": csrf_token(form.text)})
    assert done.status_code == 302
    found = rows(app, billing.force)
    assert [(r["amount"], r["reason"]) for r in found][-1] == (-7000, "Accepted by mistake")
    again = client.post(form_url, data={"reason": "Twice", "csrf_token": csrf_token(form.text)})
    assert again.status_code == 400
    assert "already been reversed" in again.text
    assert len(rows(app, billing.force)) == 3


def test_billing_in_the_console_leads_to_the_close_and_the_reconciliation_and_back(
        client: FlaskClient, world: World) -> None:
    """The console's Billing page names all it holds: contracts, the monthly close, reconciliation; each leads
    back to it."""
    sign_in(client, world.email("platform_admin"))
    index = client.get("/admin/billing/")
    for href in ('href="/admin/billing/contracts/"', 'href="/admin/billing/close/"',
                 'href="/admin/billing/reconciliation"'):
        assert href in index.text
    for url in ("/admin/billing/close/", "/admin/billing/reconciliation", "/admin/billing/contracts/"):
        page = client.get(url)
        assert page.status_code == 200
        assert 'href="/admin/billing/"' in page.text
        assert "Back to billing" in page.text


def _reference_of(app: Flask, billing: Billing, referral_id: Any = None) -> str:
    with app.app_context(), scoped(billing.force.id):
        referral = db.session.get(Referral, referral_id or billing.referral)
        assert referral is not None
        return referral.encounter.reference


def test_each_ledger_row_names_the_case_its_charge_is_for(app: Flask, client: FlaskClient, world: World,
                                                         billing: Billing) -> None:
    """A force's admin, the provider's and the platform's read which case each row is for, on the page,
    in the CSV and on the Reverse page; a monthly fee is about no case."""
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1), fee=150000)
    moved(app, billing, State.ACCEPTED, at(2026, 10, 2))
    with app.app_context(), scoped(billing.force.id):
        ledger.charge_monthly_fees(db.session.get(Tenant, billing.force.id), date(2026, 10, 1), actor=SYSTEM)
        db.session.commit()
    reference = _reference_of(app, billing)
    add_provider_member(app, world.users["provider_staff"], billing.provider, ProviderRole.ADMIN)
    for who, url in (("a_force_admin", f"/west-midlands/billing/cranstoun/{OCTOBER}"),
                     ("provider_staff", f"/provider/billing/west-midlands/{OCTOBER}"),
                     ("platform_admin", f"/admin/billing/west-midlands/cranstoun/{OCTOBER}")):
        sign_in(client, world.email(who))
        page = client.get(url)
        assert page.status_code == 200, who
        assert "Case reference" in page.text, who
        assert page.text.count(reference) == 1, who  # the accepted row's, not the monthly fee's
        table = list(csv.reader(io.StringIO(client.get(f"{url}.csv").text)))
        assert table[1][:3] == ["Date", "Case reference", "Event"], who
        by_event = {row[2]: row[1] for row in table[2:4]}
        assert by_event == {"Referral accepted, DIVERT (adults)": reference, "Monthly fee": ""}, who
        client.post("/sign-out", data={"csrf_token": csrf_token(page.text)})
    with app.app_context(), scoped(billing.force.id):
        entry = db.session.scalars(select(LedgerEntry).where(LedgerEntry.unit_pence == 7000)).one()
    sign_in(client, world.email("platform_admin"))
    form = client.get(f"/admin/billing/west-midlands/cranstoun/{OCTOBER}/rows/{entry.id}/reverse")
    assert reference in form.text


def test_the_case_references_of_a_page_of_ledger_rows_cost_no_statement_per_row(
        app: Flask, client: FlaskClient, world: World, billing: Billing) -> None:
    """The references are read for the page at once: ten rows cost what two cost."""
    make_contract(app, billing.force, billing.provider, starts_on=date(2026, 1, 1))
    more = [refer(app, world.a, billing.offering, surname=f"Counter{n}") for n in range(4)]
    moved(app, billing, State.ACCEPTED, at(2026, 10, 2))
    moved(app, billing, State.ATTENDED, at(2026, 10, 3))
    sign_in(client, world.email("a_force_admin"))
    url = f"/west-midlands/billing/cranstoun/{OCTOBER}"
    two, page = statements_of(app, client, url)
    assert _reference_of(app, billing) in page
    for number, referral_id in enumerate(more):
        moved(app, billing, State.ACCEPTED, at(2026, 10, 4 + number), referral_id=referral_id)
        moved(app, billing, State.ATTENDED, at(2026, 10, 4 + number, 15), referral_id=referral_id)
    ten, page = statements_of(app, client, url)
    assert "10 ledger rows" in page
    assert all(_reference_of(app, billing, referral_id) in page for referral_id in more)
    assert ten == two
