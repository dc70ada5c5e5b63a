"""Referrals to providers in several forces, shared by the workspace, API, feed and webhook tests.

The workspace tests write referrals row by row (``referrals``): to two
providers in one force, and to a force Cranstoun does not serve.

- West Midlands -> Cranstoun (force A of the world)
- Thames Valley -> Cranstoun, and Thames Valley -> Druglink (same force, another provider)
- Durham -> Checkpoint navigators (a force Cranstoun does not serve)

The API, feed and webhook tests make them through the case services
(``providers``): two providers, their referrals in two forces, tokens. From
the real force files: West Midlands (force A) offers Cranstoun's course;
Durham (force B) offers Checkpoint Navigators' contract. Here Durham also
offers a Cranstoun course, so that:

- Cranstoun (P1) serves both forces and has a referral in each;
- Checkpoint Navigators (P2) serves Durham only and has one referral there,
  in the same force as one of Cranstoun's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ProviderMembership, ProviderRole, User
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity, person_keys, seal
from diversion.cases.models import Encounter, Person, Referral, State, Transition, Why
from diversion.cases.references import take_references
from diversion.catalogue.models import Course, Offering, Provider
from diversion.db import utcnow
from diversion.extensions import db
from diversion.jsonapi import tokens as provider_tokens
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import Ref, World, started_today


@dataclass(frozen=True)
class Made:
    id: uuid.UUID
    tenant_id: int
    person_id: uuid.UUID
    encounter_id: uuid.UUID
    surname: str
    phone: str


def today() -> date:
    return datetime.now(UTC).date()


def make_referral(app: Flask, force: str, course: str, surname: str, phone: str, *, sessions: int = 2) -> Made:
    """A referral as ``cases.services.refer`` leaves it (offered), written row by row in the force's scope."""
    with app.app_context():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == force))
        found = db.session.scalar(select(Course).where(Course.slug == course))
        assert tenant is not None
        assert found is not None
        with scoped(tenant.id):
            offering = db.session.scalar(select(Offering).where(Offering.course_id == found.id))
            assert offering is not None, f"{force} does not offer {course}"
            identity = Identity(surname, "Sam", date(1995, 5, 6))
            name_key, pnc_key = person_keys(tenant.slug, identity)
            person = Person(id=uuid.uuid4(), tenant_id=tenant.id, name_key=name_key, pnc_key=pnc_key,
                            identity_sealed=seal(identity), contact_sealed=seal(Contact(phone=phone)), ethnicity="W1")
            encounter = Encounter(id=uuid.uuid4(), tenant_id=tenant.id, person_id=person.id,
                                  offence_on=today() - timedelta(days=3), facts={},
                                  reference=take_references(tenant, today().year)[0], outcome="eligible",
                                  pathway=offering.pathway)
            referral = Referral(id=uuid.uuid4(), tenant_id=tenant.id, encounter_id=encounter.id, person_id=person.id,
                                offering_id=offering.id, provider_id=found.provider_id, pathway=offering.pathway,
                                state=State.OFFERED, deadline=today() + timedelta(days=60),
                                sessions_required=sessions,
                                steps=(Transition(None, State.OFFERED, utcnow(), why=Why.OFFERED),))
            db.session.add(person)
            db.session.flush()
            db.session.add(encounter)
            db.session.flush()
            db.session.add(referral)
            db.session.flush()
            db.session.commit()
            return Made(referral.id, tenant.id, person.id, encounter.id, surname, phone)


@dataclass(frozen=True)
class Referrals:
    west_midlands: Made  # Cranstoun's
    thames_valley: Made  # Cranstoun's
    druglink: Made  # Thames Valley, Druglink's
    durham: Made  # Durham, not served by Cranstoun

    @property
    def cranstouns(self) -> set[uuid.UUID]:
        return {self.west_midlands.id, self.thames_valley.id}

    @property
    def others(self) -> list[Made]:
        return [self.druglink, self.durham]


@pytest.fixture
def referrals(app: Flask, world: World) -> Referrals:
    return Referrals(
        west_midlands=make_referral(app, "west-midlands", "cranstoun-divert", "Midlander", "07700 900101"),
        thames_valley=make_referral(app, "thames-valley", "cranstoun-divert", "Valleyman", "07700 900202",
                                    sessions=1),
        druglink=make_referral(app, "thames-valley", "druglink-adult-course", "Druglinked", "07700 900303"),
        durham=make_referral(app, "durham", "durham-checkpoint-contract", "Durhamite", "07700 900404"),
    )


WEST_MIDLANDS_FACTS = {
    "offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
    "user_dealer": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
    "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
    "resident_in_force_area": True, "stage": "street", "suitable_for_out_of_court_disposal": True,
}
DURHAM_FACTS = {
    "offence": "supply", "user_dealer": True, "substances": ["heroin"], "drug_class": "A",
    "personal_use": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
    "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
    "resident_in_force_area": True, "stage": "custody", "suitable_for_out_of_court_disposal": True,
}


@dataclass
class Providers:
    """The two providers, their offerings, and one referral per (force, provider)."""

    p1: Ref  # Cranstoun: West Midlands and Durham
    p2: Ref  # Checkpoint Navigators: Durham only
    offerings: dict[str, uuid.UUID]  # "a1", "b1", "b2"
    referrals: dict[str, uuid.UUID]  # "a1" (A to P1), "b1" (B to P1), "b2" (B to P2)


def provider_ref(slug: str) -> Ref:
    provider = db.session.scalar(select(Provider).where(Provider.slug == slug))
    assert provider is not None, slug
    return Ref(provider.id, slug=provider.slug, name=provider.name)


def offering_of(force: Ref, provider: Ref, pathway: str) -> uuid.UUID:
    with scoped(force.id):
        found = db.session.scalar(select(Offering.id).join(Course, Course.id == Offering.course_id)
                                  .where(Course.provider_id == provider.id, Offering.pathway == pathway))
    assert found is not None
    return found


def refer(app: Flask, force: Ref, offering_id: uuid.UUID, *, surname: str, given_name: str = "Alex",
          contact: Contact | None = None) -> uuid.UUID:
    """Record an eligible encounter in ``force`` and refer it to ``offering_id``, as an officer would."""
    facts = WEST_MIDLANDS_FACTS if force.slug == "west-midlands" else DURHAM_FACTS
    with app.app_context(), scoped(force.id):
        tenant = db.session.get(Tenant, force.id)
        assert tenant is not None
        _encounter, decision = cases.record_encounter(tenant, cases.Intake(
            Identity(surname, given_name, date(1995, 6, 7)),
            contact or Contact("07700 900456", f"{surname.lower()}@example.org", "2 Example Road"),
            "W1", today() - timedelta(days=2), dict(facts)), actor=SYSTEM, today=today())
        offering = db.session.get(Offering, offering_id)
        assert offering is not None
        referral = cases.refer(tenant, decision, offering, actor=SYSTEM, today=today())
        db.session.commit()
        return referral.id


def move(app: Flask, force: Ref, referral_id: uuid.UUID, to: State, reason: str = "") -> None:
    """Move a referral on as the force's staff would (pages, API, CLI: the same service)."""
    with app.app_context(), scoped(force.id):
        tenant = db.session.get(Tenant, force.id)
        referral = db.session.get(Referral, referral_id)
        assert tenant is not None
        assert referral is not None
        session = cases.SessionDetails(started_today(), "Test venue") if to is State.BOOKED else None
        cases.move_to(tenant, referral, to, actor=SYSTEM, reason=reason, session=session)
        db.session.commit()


def state_of(app: Flask, force: Ref, referral_id: uuid.UUID) -> State:
    with app.app_context(), scoped(force.id):
        referral = db.session.get(Referral, referral_id)
        assert referral is not None
        return referral.state


def provider_token(app: Flask, provider: Ref, name: str = "Case system") -> str:
    with app.app_context():
        row = db.session.get(Provider, provider.id)
        assert row is not None
        _token, secret = provider_tokens.make_provider_token(row, name=name, actor=SYSTEM)
        db.session.commit()
        return secret


def add_provider_member(app: Flask, user: Ref, provider: Ref, role: ProviderRole) -> None:
    """Make ``user`` a member of ``provider`` in ``role`` (the world's members change role)."""
    with app.app_context():
        membership = db.session.scalar(select(ProviderMembership).where(
            ProviderMembership.provider_id == provider.id, ProviderMembership.user_id == user.id))
        if membership is None:
            db.session.add(ProviderMembership(provider_id=provider.id, user_id=user.id, role=role))
        else:
            membership.role = role
        db.session.commit()


def build_providers(app: Flask, world: World) -> Providers:
    with app.app_context():
        p1, p2 = provider_ref("cranstoun"), provider_ref("checkpoint-navigators")
        course = Course(provider_id=p1.id, slug="cranstoun-checkpoint", title="Cranstoun Checkpoint navigation",
                        sessions=3)
        db.session.add(course)
        db.session.flush()
        with scoped(world.b.id):
            db.session.add(Offering(tenant_id=world.b.id, course_id=course.id, pathway="checkpoint"))
            db.session.flush()
        db.session.commit()
        offerings = {"a1": offering_of(world.a, p1, "divert"), "b1": offering_of(world.b, p1, "checkpoint"),
                     "b2": offering_of(world.b, p2, "checkpoint")}
    referrals = {
        "a1": refer(app, world.a, offerings["a1"], surname="Archer"),
        "b1": refer(app, world.b, offerings["b1"], surname="Baker"),
        "b2": refer(app, world.b, offerings["b2"], surname="Carter"),
    }
    return Providers(p1, p2, offerings, referrals)


@pytest.fixture
def providers(app: Flask, world: World) -> Providers:
    return build_providers(app, world)


@pytest.fixture
def p1_token(app: Flask, providers: Providers) -> str:
    return provider_token(app, providers.p1)


@pytest.fixture
def p2_token(app: Flask, providers: Providers) -> str:
    return provider_token(app, providers.p2)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def user_ref(app: Flask, key: str, world: World) -> Ref:
    with app.app_context():
        user = db.session.get(User, world.users[key].id)
        assert user is not None
        return Ref(user.id, email=user.email)


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["referrals"]]
