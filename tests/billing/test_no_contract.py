"""A force may offer a provider's courses with no contract between them (offering is never refused), but
the pages where courses are offered say so: referrals to those courses earn the provider nothing."""

from __future__ import annotations

import html
from datetime import date

from flask import Flask
from flask.testing import FlaskClient

from tests.billing.conftest import Billing, make_contract
from tests.conftest import World, sign_in

WARNING = "West Midlands Police offers courses of Cranstoun but has no contract with it in force today"


def test_the_courses_offered_page_warns_of_a_provider_with_no_contract_in_force(
        app: Flask, client: FlaskClient, world: World, billing: Billing) -> None:
    sign_in(client, world.email("a_force_admin"))
    page = html.unescape(client.get("/west-midlands/offerings/").text)
    assert WARNING in page
    assert "referrals to those courses earn Cranstoun nothing" in page
    assert "Ask the platform’s administrators to add one." in page  # a force's admins add no contract
    assert "/admin/billing/contracts/" not in page
    make_contract(app, billing.force, billing.provider, starts_on=date(2020, 1, 1), ends_on=date(2020, 12, 31))
    assert WARNING in html.unescape(client.get("/west-midlands/offerings/").text)  # one that has ended: none
    make_contract(app, billing.force, billing.provider, starts_on=date(2021, 1, 1))
    assert WARNING not in html.unescape(client.get("/west-midlands/offerings/").text)


def test_the_consoles_billing_page_warns_and_leads_to_a_contract_for_the_pair(
        app: Flask, client: FlaskClient, world: World, billing: Billing) -> None:
    sign_in(client, world.email("platform_admin"))
    page = html.unescape(client.get("/admin/billing/").text)
    assert WARNING in page
    link = "/admin/billing/contracts/west-midlands/new?provider=cranstoun"
    assert f'href="{link}"' in page
    form = client.get(link)
    assert form.status_code == 200
    assert f'<option value="{billing.provider.id}" selected>Cranstoun</option>' in form.text
    make_contract(app, billing.force, billing.provider, starts_on=date(2021, 1, 1))
    assert WARNING not in html.unescape(client.get("/admin/billing/").text)
