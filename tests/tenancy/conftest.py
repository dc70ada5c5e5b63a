"""The isolation tests run twice: with force B synced from its file (Durham),
and with force B onboarded in the console (``forces.onboarding``: details,
a policy copied from Durham, two offerings, its first admin invited,
finished), so that a force created in the console is covered exactly as
the seeded ones are."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.catalogue.models import Course
from diversion.extensions import db
from diversion.forces import onboarding
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant
from tests.conftest import World, build_world, world_of
from tests.databases import TestDatabase

ONBOARDED = onboarding.ForceDetails(
    name="Cleveland Police", slug="cleveland", scheme_name="Checkpoint Cleveland", area="cleveland",
    languages=["en"], completed_code="outcome-22", completed_label="No further action (Outcome 22)",
    not_completed_code="prosecution", not_completed_label="Prosecution resumes",
    not_completed_action="prosecution", brand_colour="#00558c",
)


def onboard_cleveland() -> Tenant:
    """Cleveland, through every step of the onboarding service, opened."""
    today = datetime.now(UTC).date()
    tenant = onboarding.start_draft(ONBOARDED, actor=SYSTEM)
    durham = db.session.scalar(select(Tenant).where(Tenant.slug == "durham"))
    assert durham is not None
    courses = [course.id for course in db.session.scalars(select(Course)) if "cleveland" in course.areas]
    assert len(courses) == 2
    with scoped(tenant.id):
        onboarding.copy_policy(tenant, durham, actor=SYSTEM, today=today)
        onboarding.set_offerings(tenant, {("checkpoint", course) for course in courses}, actor=SYSTEM)
        onboarding.invite_first_admin(tenant, email="first-admin@cleveland.example", name="First Admin",
                                      actor=SYSTEM)
        onboarding.finish(tenant, actor=SYSTEM, today=today)
    assert tenant.status is ForceStatus.ACTIVE
    return tenant


@pytest.fixture(params=["seeded", "onboarded"])
def world(request: pytest.FixtureRequest, app: Flask, database: TestDatabase) -> World:
    """The suite's world, force B synced from its file or onboarded in the console."""
    if request.param == "onboarded":
        return world_of(app, database, "onboarded", lambda: build_world(onboard_cleveland))
    return world_of(app, database, "seeded", build_world)
