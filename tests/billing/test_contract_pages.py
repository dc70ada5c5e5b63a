"""The contract pages: the console makes, reads and changes contracts; a force's admins and a provider's admins
read their own, and nothing of anyone else's."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ProviderMembership, ProviderRole
from diversion.billing import contracts
from diversion.billing.contracts import Terms
from diversion.billing.models import Contract, EventKind, VatTreatment
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World, csrf_token, sign_in

ACCEPTED = EventKind.REFERRAL_ACCEPTED
NEW = "/admin/billing/contracts/west-midlands/new"


def _form(**changes: str | list[str]) -> dict[str, str | list[str]]:
    data: dict[str, str | list[str]] = {
        "provider": "", "starts_on": ["1", "1", "2026"], "ends_on": ["31", "12", "2026"], "monthly_fee": "£1,500",
        "vat": "exempt", "platform_fee": "2.5", "notes": "Assumed figures", "price_referral_accepted_divert": "70",
        "price_session_attended_divert": "25.50", "price_course_completed_divert-youth": "",
    }
    return {**data, **changes}


def _post(client: FlaskClient, url: str, data: dict[str, str | list[str]]) -> object:
    token = csrf_token(client.get(url).text)
    return client.post(url, data={**data, "csrf_token": token})


def _contract_count(app: Flask, world: World) -> int:
    with app.app_context(), scoped(world.a.id):
        return int(db.session.scalar(select(func.count()).select_from(Contract)) or 0)


def _make(app: Flask, world: World, **changes: object) -> uuid.UUID:
    terms = Terms(provider_id=world.providers["cranstoun"].id, starts_on=date(2026, 1, 1), ends_on=None,
                  monthly_fee_pence=0, vat=VatTreatment.STANDARD, platform_fee_basis_points=300,
                  prices={(ACCEPTED, "divert"): 7000}, notes="Assumptions")
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        made = contracts.create_contract(tenant, Terms(**{**terms.__dict__, **changes}), actor=SYSTEM)
        db.session.commit()
        return made.id


def test_a_platform_admin_adds_a_contract_and_reads_it(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("platform_admin"))
    chooser = client.get("/admin/billing/contracts/new").text
    assert "West Midlands Police" in chooser or "West Midlands" in chooser
    page = client.get(NEW).text
    assert "Cranstoun" in page
    assert "Druglink" not in page  # it delivers no course West Midlands offers
    response = _post(client, NEW, _form(provider=str(world.providers["cranstoun"].id)))
    assert response.status_code == 302  # type: ignore[attr-defined]
    shown = client.get(response.headers["Location"]).text  # type: ignore[attr-defined]
    for text in ("£1,500.00 a month", "£70.00", "£25.50", "Not billed", "2.5% of the net amount, before VAT",
                 "Exempt from VAT", "1 January 2026 to 31 December 2026", "Assumed figures"):
        assert text in shown
    with app.app_context(), scoped(world.a.id):
        contract = db.session.scalar(select(Contract))
        assert contract is not None
        assert contracts.prices_of(contract) == {(ACCEPTED, "divert"): 7000,
                                                 (EventKind.SESSION_ATTENDED, "divert"): 2550}
        assert contract.monthly_fee_pence == 150_000
        assert contract.platform_fee_basis_points == 250


BAD = [
    pytest.param({"price_referral_accepted_divert": "seventy"},
                 "Enter the price of referral accepted on DIVERT (adults) in pounds", id="price-not-money"),
    pytest.param({"price_referral_accepted_divert": "-70"},
                 "The price of referral accepted on DIVERT (adults) cannot be negative", id="negative-price"),
    pytest.param({"monthly_fee": "-£5"}, "The monthly fee cannot be negative", id="negative-fee"),
    pytest.param({"monthly_fee": "lots"}, "Enter the monthly fee in pounds and pence", id="fee-not-money"),
    pytest.param({"platform_fee": "200"}, "between 0% and 100%", id="platform-fee-over-100"),
    pytest.param({"platform_fee": "a tenth"}, "Enter the platform fee as a percentage", id="platform-fee-words"),
    pytest.param({"ends_on": ["1", "1", "2025"]}, "on or after the start date", id="ends-before-start"),
    pytest.param({"provider": ""}, "Choose a provider", id="no-provider"),
    pytest.param({"provider": "druglink"}, "Choose one of the providers listed", id="provider-not-serving"),
    pytest.param({"vat": "zero"}, "Choose the VAT treatment", id="vat-unknown"),
]


@pytest.mark.parametrize(("changes", "says"), BAD)
def test_bad_input_is_refused_on_its_field_and_changes_nothing(
        app: Flask, client: FlaskClient, world: World, changes: dict[str, str], says: str) -> None:
    sign_in(client, world.email("platform_admin"))
    provider = str(world.providers["cranstoun"].id)
    if changes.get("provider") == "druglink":
        changes = {**changes, "provider": str(world.providers["druglink"].id)}
    response = _post(client, NEW, _form(**{"provider": provider, **changes}))
    assert response.status_code == 400  # type: ignore[attr-defined]
    body = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "govuk-error-summary" in body
    assert says in body
    assert _contract_count(app, world) == 0


def test_an_overlap_is_refused_on_the_start_date(app: Flask, client: FlaskClient, world: World) -> None:
    _make(app, world)
    sign_in(client, world.email("platform_admin"))
    response = _post(client, NEW, _form(provider=str(world.providers["cranstoun"].id)))
    assert response.status_code == 400  # type: ignore[attr-defined]
    body = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert 'href="#starts_on' in body
    assert "overlap the contract with this provider from 1 January 2026 until further notice" in body
    assert _contract_count(app, world) == 1


def test_a_platform_admin_changes_a_contract(app: Flask, client: FlaskClient, world: World) -> None:
    made = _make(app, world)
    sign_in(client, world.email("platform_admin"))
    edit = f"/admin/billing/contracts/west-midlands/{made}/edit"
    page = client.get(edit).text
    assert 'value="70.00"' in page
    assert 'value="3"' in page
    response = _post(client, edit, _form(provider=str(world.providers["druglink"].id), vat="standard",
                                         price_referral_accepted_divert="72", monthly_fee=""))
    assert response.status_code == 302, response.get_data(as_text=True)  # type: ignore[attr-defined]
    with app.app_context(), scoped(world.a.id):
        contract = db.session.get(Contract, made)
        assert contract is not None
        assert contract.provider_id == world.providers["cranstoun"].id  # a contract stays with its provider
        assert contract.ends_on == date(2026, 12, 31)
        assert contracts.unit_price(made, ACCEPTED, "divert") == 7200


def test_the_console_lists_every_contract_searchable_and_paginated(
        app: Flask, client: FlaskClient, world: World) -> None:
    for year in range(2000, 2027):  # 27 contracts, one a year: two pages
        _make(app, world, starts_on=date(year, 1, 1), ends_on=date(year, 12, 31))
    sign_in(client, world.email("platform_admin"))
    first = client.get("/admin/billing/contracts/").text
    assert "27 contracts" in first
    assert "1 January 2026 to 31 December 2026" in first
    assert "1 January 2000 to 31 December 2000" not in first
    second = client.get("/admin/billing/contracts/?page=2").text
    assert "1 January 2000 to 31 December 2000" in second
    assert "27 contracts matching “cranstoun”" in client.get("/admin/billing/contracts/?q=cranstoun").text
    assert "No contract matches “durham”." in client.get("/admin/billing/contracts/?q=durham").text


def test_a_force_admin_reads_the_forces_contracts_only(app: Flask, client: FlaskClient, world: World) -> None:
    made = _make(app, world)
    sign_in(client, world.email("a_force_admin"))
    listed = client.get("/west-midlands/billing/contracts/").text
    assert "Cranstoun" in listed
    assert "Add a contract" not in listed
    shown = client.get(f"/west-midlands/billing/contracts/{made}").text
    assert "£70.00" in shown
    assert "Change this contract" not in shown
    other = app.test_client()
    sign_in(other, world.email("b_force_admin"))
    assert "There are no contracts yet." in other.get("/durham/billing/contracts/").text
    assert other.get(f"/durham/billing/contracts/{made}").status_code == 404


def test_a_provider_admin_reads_its_contracts_with_every_force(app: Flask, client: FlaskClient, world: World) -> None:
    made = _make(app, world)
    with app.app_context():
        for key in ("provider_staff", "druglink_staff"):
            membership = db.session.scalar(select(ProviderMembership).where(
                ProviderMembership.user_id == world.users[key].id))
            assert membership is not None
            membership.role = ProviderRole.ADMIN
        db.session.commit()
    sign_in(client, world.email("provider_staff"))
    listed = client.get("/provider/billing/contracts/").text
    assert "West Midlands" in listed
    shown = client.get(f"/provider/billing/contracts/{made}").text
    assert "£70.00" in shown
    assert "DIVERT" in shown or "Divert" in shown  # the pathway by its name in the force's policy
    other = app.test_client()
    sign_in(other, world.email("druglink_staff"))
    assert "There are no contracts yet." in other.get("/provider/billing/contracts/").text
    assert other.get(f"/provider/billing/contracts/{made}").status_code == 404
