"""No answer but a static asset may be stored: ``Cache-Control: no-store``.

``tests/test_access_matrix.py`` checks the header on every route for every
principal, allowed or denied. These tests look at the answers that matter
most with their data on them: the pages showing a person's name and contact
details or members' email addresses, and the API answering a valid token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.catalogue.models import Offering, Provider
from diversion.extensions import db
from diversion.jsonapi import tokens as api_tokens
from diversion.jsonapi import tokens as provider_tokens
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World, sign_in

FACTS = {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
         "user_dealer": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
         "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
         "resident_in_force_area": True, "stage": "street", "suitable_for_out_of_court_disposal": True}
SURNAME = "Storeless"
PHONE = "07700 900555"


@dataclass(frozen=True)
class Case:
    encounter_id: uuid.UUID
    decision_id: uuid.UUID
    referral_id: uuid.UUID
    force_token: str
    provider_token: str


@pytest.fixture
def case(app: Flask, world: World) -> Case:
    """A West Midlands case referred to Cranstoun, and a token of each side."""
    today = datetime.now(UTC).date()
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        with scoped(world.a.id):
            _, decision = cases.record_encounter(tenant, cases.Intake(
                Identity(SURNAME, "Robin", date(1996, 2, 3)), Contact(phone=PHONE), "W1", today, dict(FACTS)),
                actor=SYSTEM, today=today)
            offering = db.session.scalar(select(Offering).where(Offering.pathway == "divert"))
            assert offering is not None
            referral = cases.refer(tenant, decision, offering, actor=SYSTEM, today=today)
            _, force_token = api_tokens.make_force_token(tenant, name="Custody system", actor=SYSTEM)
            found = Case(decision.encounter_id, decision.id, referral.id, force_token, "")
        provider = db.session.scalar(select(Provider).where(Provider.slug == "cranstoun"))
        assert provider is not None
        _, provider_token = provider_tokens.make_provider_token(provider, name="Case system", actor=SYSTEM)
        db.session.commit()
    assert found.encounter_id is not None
    return Case(found.encounter_id, found.decision_id, found.referral_id, found.force_token, provider_token)


def _not_stored(client: FlaskClient, url: str, *shows: str, headers: dict[str, str] | None = None) -> None:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text[:500]
    for text in shows:
        assert text in response.text
    assert response.headers["Cache-Control"] == "no-store"


def test_a_case_page_is_not_stored(client: FlaskClient, world: World, case: Case) -> None:
    sign_in(client, world.email("a_officer"))
    _not_stored(client, f"/{world.a.slug}/cases/{case.encounter_id}", SURNAME, PHONE)
    _not_stored(client, f"/{world.a.slug}/decisions/{case.decision_id}", "Eligible")
    _not_stored(client, f"/{world.a.slug}/referrals", "1 referral")


def test_a_provider_referral_page_is_not_stored(client: FlaskClient, world: World, case: Case) -> None:
    sign_in(client, world.email("provider_staff"))
    _not_stored(client, f"/provider/referrals/{case.referral_id}", SURNAME, PHONE)
    _not_stored(client, "/provider/", world.a.name)


def test_the_members_page_is_not_stored(client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    _not_stored(client, f"/{world.a.slug}/members/", world.email("a_officer"))


def test_api_answers_are_not_stored(client: FlaskClient, world: World, case: Case) -> None:
    force = {"Authorization": f"Bearer {case.force_token}"}
    _not_stored(client, f"/api/v1/encounters/{case.encounter_id}", str(case.encounter_id), headers=force)
    _not_stored(client, "/api/v1/referrals", str(case.referral_id), headers=force)
    provider = {"Authorization": f"Bearer {case.provider_token}"}
    _not_stored(client, "/api/v1/provider/referrals", SURNAME, PHONE, headers=provider)
    _not_stored(client, "/api/v1/openapi.json", "openapi")
    refused = client.get("/api/v1/referrals")
    assert refused.status_code == 401
    assert refused.headers["Cache-Control"] == "no-store"


def test_error_pages_are_not_stored(client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    assert client.get(f"/{world.b.slug}/referrals").headers["Cache-Control"] == "no-store"  # 404
    assert client.get("/admin/").headers["Cache-Control"] == "no-store"  # 403


def test_static_assets_stay_cacheable(client: FlaskClient) -> None:
    with client.get("/static/build/app.css") as response:
        assert response.status_code == 200
        assert "no-store" not in response.headers.get("Cache-Control", "")
        etag = response.headers["ETag"]
    with client.get("/static/build/app.css", headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304  # kept by the browser, checked again, not fetched again
