"""Catalogue services: courses validated by field, offerings that fit, retired and withdrawn courses."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import User
from diversion.audit.models import AuditEvent
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import State
from diversion.catalogue import services as catalogue
from diversion.catalogue.models import Course, Offering
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.audit.test_audit import _events
from tests.conftest import World

TODAY = date(2026, 11, 24)
NEW_COURSE: dict[str, Any] = {
    "slug": "birmingham-awareness", "provider": "cranstoun", "title": "Drug awareness evening",
    "kinds": ["adult_education"], "format": "group", "sessions": 1, "session_minutes": 150,
    "delivery": ["in_person", "online"], "min_age": 18, "max_age": None, "languages": ["en"],
    "areas": ["west-midlands"], "description": "One evening session."}
STREET_CASE = {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
               "user_dealer": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
               "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
               "resident_in_force_area": True, "stage": "street", "suitable_for_out_of_court_disposal": True}
NO_DETAILS = catalogue.LocalDetails([], "", "")


def _user(world: World, key: str) -> User:
    user = db.session.get(User, world.users[key].id)
    assert user is not None
    return user


def _west(world: World) -> Tenant:
    tenant = db.session.get(Tenant, world.a.id)
    assert tenant is not None
    return tenant


def _course(slug: str) -> Course:
    course = db.session.scalar(select(Course).where(Course.slug == slug))
    assert course is not None
    return course


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"areas": ["birmingham"]}, "areas", "'birmingham' is not a police force area"),
    ({"kinds": []}, "kinds", "at least 1 item"),
    ({"kinds": ["rehab"]}, "kinds", "Input should be"),
    ({"delivery": ["post"]}, "delivery", "Input should be"),
    ({"languages": ["en", "en"]}, "languages", "a language is listed twice"),
    ({"min_age": 30, "max_age": 20}, "(form)", "max_age must not be below min_age"),
    ({"session_minutes": 5}, "session_minutes", "greater than or equal to 10"),
    ({"slug": "Not A Slug"}, "slug", "match pattern"),
    ({"provider": "nobody"}, "provider", "Choose a provider on the platform."),
])
def test_a_bad_course_is_refused_by_field_and_nothing_is_added(app: Flask, world: World, change: dict[str, Any],
                                                               field: str, message: str) -> None:
    with app.app_context():
        with pytest.raises(catalogue.CatalogueError) as refused:
            catalogue.create_course({**NEW_COURSE, **change}, actor=_user(world, "platform_admin"))
        assert refused.value.field == field
        assert message in refused.value.message
        db.session.rollback()
        assert db.session.scalar(select(Course).where(Course.slug == NEW_COURSE["slug"])) is None


def test_courses_and_providers_are_added_changed_and_audited(app: Flask, world: World, database: Any) -> None:
    with app.app_context():
        admin = _user(world, "platform_admin")
        provider = catalogue.create_provider({"slug": "new-charity", "name": "New Charity",
                                              "website": "https://charity.example", "contact_email": ""},
                                             actor=admin)
        with pytest.raises(catalogue.CatalogueError) as refused:
            catalogue.update_provider(provider, {"name": "New Charity", "website": "http://plain.example"},
                                      actor=admin)
        assert refused.value.field == "website"
        course = catalogue.create_course({**NEW_COURSE, "provider": "new-charity"}, actor=admin)
        with pytest.raises(catalogue.CatalogueError, match="already has the address"):
            catalogue.create_course(NEW_COURSE, actor=admin)
        changed = catalogue.update_course(course, {**NEW_COURSE, "provider": "new-charity", "sessions": 2,
                                                   "slug": "ignored"}, actor=admin)
        assert changed == ["sessions"]
        assert course.slug == "birmingham-awareness"  # the address never changes
        assert course.edited_in_console
        db.session.commit()
    actions = {e["action"] for e in _events(database) if e["actor_id"] == world.users["platform_admin"].id}
    assert {"provider.created", "course.created", "course.updated"} <= actions


def test_offerings_list_only_courses_that_fit_the_pathway(app: Flask, world: World) -> None:
    with app.app_context():
        catalogue.create_course(NEW_COURSE, actor=_user(world, "platform_admin"))
        catalogue.create_course({**NEW_COURSE, "slug": "elsewhere", "areas": ["kent"]},
                                actor=_user(world, "platform_admin"))
        with scoped(world.a.id):
            pathways = {p.id: p for p in catalogue.pathways_in_force(TODAY)}
            adult = {c.slug for c in catalogue.fitting_courses(_west(world), pathways["divert"])}
            youth = {c.slug for c in catalogue.fitting_courses(_west(world), pathways["divert-youth"])}
    assert adult == {"cranstoun-divert", "birmingham-awareness"}  # not Kent's, not the youth route
    assert youth == {"cranstoun-divert-youth"}


def test_an_offering_that_does_not_fit_or_repeats_is_refused(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        force_admin, west = _user(world, "a_force_admin"), _west(world)

        def add(slug: str, pathway: str) -> Offering:
            return catalogue.add_offering(west, _course(slug), pathway, NO_DETAILS, actor=force_admin, today=TODAY)

        with pytest.raises(catalogue.CatalogueError, match="does not serve the pathway's kind") as refused:
            add("cranstoun-divert-youth", "divert")
        assert refused.value.field == "course"
        with pytest.raises(catalogue.CatalogueError, match="does not serve this force's area"):
            add("avon-dep-session", "divert")
        with pytest.raises(catalogue.CatalogueError, match="already offered") as refused:
            add("cranstoun-divert", "divert")
        with pytest.raises(catalogue.CatalogueError, match="pathway of the force's policy in force") as refused:
            add("cranstoun-divert", "checkpoint")  # Durham's pathway, not West Midlands'
        assert refused.value.field == "pathway"
        course = catalogue.create_course(NEW_COURSE, actor=_user(world, "platform_admin"))
        catalogue.retire_course(course, actor=_user(world, "platform_admin"))
        with pytest.raises(catalogue.CatalogueError, match="retired"):
            add("birmingham-awareness", "divert")


def test_a_youth_course_fits_a_youth_pathway_only_for_its_ages(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        admin = _user(world, "platform_admin")
        catalogue.create_course({**NEW_COURSE, "slug": "teen", "kinds": ["youth_intervention"], "min_age": 18},
                                actor=admin)
        pathways = {p.id: p for p in catalogue.pathways_in_force(TODAY)}
        assert [c.slug for c in catalogue.fitting_courses(_west(world), pathways["divert-youth"])] == [
            "cranstoun-divert-youth"]  # 18 and over cannot serve under 18s


def test_local_details_are_kept_changed_and_audited(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        force_admin = _user(world, "a_force_admin")
        catalogue.create_course(NEW_COURSE, actor=_user(world, "platform_admin"))
        offering = catalogue.add_offering(
            _west(world), _course("birmingham-awareness"), "divert",
            catalogue.LocalDetails([" Digbeth Hub ", "", "Coventry Road"], " 0121 496 0000 ", "Evenings"),
            actor=force_admin, today=TODAY)
        assert (offering.venues, offering.booking_contact, offering.notes) == (
            "Digbeth Hub\nCoventry Road", "0121 496 0000", "Evenings")
        with pytest.raises(catalogue.CatalogueError) as refused:
            catalogue.update_offering(_west(world), offering, catalogue.LocalDetails([], "x" * 301, ""),
                                      actor=force_admin)
        assert refused.value.field == "booking_contact"
        assert catalogue.update_offering(_west(world), offering, catalogue.LocalDetails(["Digbeth Hub"], "", ""),
                                         actor=force_admin) == ["venues", "booking_contact", "notes"]
        db.session.commit()
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.object_id == str(offering.id))
                                    .order_by(AuditEvent.occurred_at)).all()
        assert [e.action for e in events] == ["offering.added", "offering.updated"]
        assert all(e.tenant_id == world.a.id for e in events)


def _eligible_decision(world: World) -> Any:
    _, decision = cases.record_encounter(
        _west(world), cases.Intake(Identity("Case", "Sam", date(1995, 1, 2)), Contact(), "W1",
                                   TODAY - timedelta(days=1), dict(STREET_CASE)), actor=SYSTEM, today=TODAY)
    assert decision.final_pathway == "divert"
    return decision


def test_a_retired_course_takes_no_new_referrals_but_its_referrals_go_on(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        offering = db.session.scalar(select(Offering).where(Offering.pathway == "divert"))
        referral = cases.refer(_west(world), _eligible_decision(world), offering, actor=SYSTEM, today=TODAY)
        catalogue.retire_course(offering.course, actor=_user(world, "platform_admin"))
        assert cases.offerings_for("divert") == []
        cases.transition(_west(world), referral, State.ACCEPTED, actor=SYSTEM)  # goes on
        assert referral.state is State.ACCEPTED
        later = _eligible_decision_for_someone_else(world)
        with pytest.raises(cases.CaseError, match="no longer offered") as refused:
            cases.refer(_west(world), later, offering, actor=SYSTEM, today=TODAY)
        assert refused.value.field == "offering"
        catalogue.reinstate_course(offering.course, actor=_user(world, "platform_admin"))
        assert cases.refer(_west(world), later, offering, actor=SYSTEM, today=TODAY).state is State.OFFERED


def _eligible_decision_for_someone_else(world: World) -> Any:
    _, decision = cases.record_encounter(
        _west(world), cases.Intake(Identity("Other", "Ali", date(1990, 3, 4)), Contact(), "W1",
                                   TODAY - timedelta(days=1), dict(STREET_CASE)), actor=SYSTEM, today=TODAY)
    return decision


def test_a_withdrawn_offering_takes_no_new_referrals_and_can_be_added_again(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        force_admin = _user(world, "a_force_admin")
        offering = db.session.scalar(select(Offering).where(Offering.pathway == "divert"))
        catalogue.withdraw_offering(_west(world), offering, actor=force_admin)
        with pytest.raises(catalogue.CatalogueError, match="already withdrawn"):
            catalogue.withdraw_offering(_west(world), offering, actor=force_admin)
        assert cases.offerings_for("divert") == []
        with pytest.raises(cases.CaseError, match="no longer offered"):
            cases.refer(_west(world), _eligible_decision(world), offering, actor=SYSTEM, today=TODAY)
        again = catalogue.add_offering(_west(world), offering.course, "divert",
                                       catalogue.LocalDetails([], "", "Back again"), actor=force_admin, today=TODAY)
        assert again.id == offering.id  # the same offering, reopened: no duplicate
        assert again.withdrawn_at is None
        assert list(cases.offerings_for("divert")) == [again]
