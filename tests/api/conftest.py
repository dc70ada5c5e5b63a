"""What the API tests share: tokens, a Durham Checkpoint course, encounter bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from diversion.accounts.access import SYSTEM
from diversion.catalogue.models import Course, Offering, Provider
from diversion.extensions import db
from diversion.jsonapi import tokens
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import Ref, World


def today() -> date:
    """The date the API decides on (UTC, as the services are given it)."""
    return datetime.now(UTC).date()


def make_token(app: Flask, force: Ref, name: str = "Custody system") -> str:
    """A new token of ``force``, as its admin would get it (the token itself)."""
    with app.app_context(), scoped(force.id):
        tenant = db.session.get(Tenant, force.id)
        assert tenant is not None
        _row, secret = tokens.make_force_token(tenant, name=name, actor=SYSTEM)
        db.session.commit()
        return secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add_offering(app: Flask, force: Ref, pathway: str, slug: str = "api-test-checkpoint",
                 sessions: int = 5) -> uuid.UUID:
    """A new provider, its course, and the force's offering of it for ``pathway``."""
    with app.app_context():
        provider = Provider(slug=f"{slug}-provider", name="API test navigators")
        db.session.add(provider)
        db.session.flush()
        course = Course(provider_id=provider.id, slug=slug, title="Checkpoint: 4-month contract",
                        sessions=sessions)
        db.session.add(course)
        db.session.flush()
        with scoped(force.id):
            offering = Offering(tenant_id=force.id, course_id=course.id, pathway=pathway)
            db.session.add(offering)
            db.session.flush()
            offering_id = offering.id
        db.session.commit()
        return offering_id


@pytest.fixture
def a_token(app: Flask, world: World) -> str:
    return make_token(app, world.a)


@pytest.fixture
def b_token(app: Flask, world: World) -> str:
    return make_token(app, world.b)


@pytest.fixture
def checkpoint_offering(app: Flask, world: World) -> uuid.UUID:
    """Durham offers one more Checkpoint contract course, besides its force file's."""
    return add_offering(app, world.b, "checkpoint")


def user_dealer(facts: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A Durham user-dealer in custody, whom Checkpoint takes; ``facts`` and ``fields`` change it."""
    body: dict[str, Any] = {
        "person": {"surname": "O'Neill", "given_name": "Siobhán", "date_of_birth": "1996-03-14",
                   "pnc_id": "12/345678X"},
        "contact": {"phone": "07700 900123", "email": "s.oneill@example.org",
                    "address": "1 Example Street, Durham DH1 1AA"},
        "ethnicity": "W2",
        "offence_on": (today() - timedelta(days=3)).isoformat(),
        "facts": {
            "offence": "supply", "user_dealer": True, "substances": ["heroin"], "drug_class": "A",
            "personal_use": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
            "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
            "resident_in_force_area": True, "stage": "custody", "suitable_for_out_of_court_disposal": True,
        },
    }
    body["facts"].update(facts or {})
    body.update(fields)
    return body
