"""Referrals to two providers in one force, and to a force Cranstoun does not serve.

- West Midlands -> Cranstoun (force A of the world)
- Thames Valley -> Cranstoun, and Thames Valley -> Druglink (same force, another provider)
- Durham -> Checkpoint navigators (a force Cranstoun does not serve)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from diversion.cases.identity import Contact, Identity, person_keys, seal
from diversion.cases.models import Encounter, Person, Referral, State, Transition
from diversion.catalogue.models import Course, Offering
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World


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
                                  offence_on=today() - timedelta(days=3), facts={})
            referral = Referral(id=uuid.uuid4(), tenant_id=tenant.id, encounter_id=encounter.id, person_id=person.id,
                                offering_id=offering.id, provider_id=found.provider_id, pathway=offering.pathway,
                                state=State.OFFERED, deadline=today() + timedelta(days=60),
                                sessions_required=sessions)
            db.session.add(person)
            db.session.flush()
            db.session.add(encounter)
            db.session.flush()
            db.session.add(referral)
            db.session.flush()
            db.session.add(Transition(id=uuid.uuid4(), tenant_id=tenant.id, referral_id=referral.id, from_state=None,
                                      to_state=State.OFFERED, reason="Offered after the decision"))
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
