"""The catalogue pages: platform admins' course forms, force admins' offerings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from diversion.accounts.models import User
from diversion.catalogue import services as catalogue
from diversion.catalogue.models import Course, Offering
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.audit.test_audit import _events
from tests.catalogue.test_services import NEW_COURSE
from tests.conftest import World, post_form, sign_in

COURSE_FORM = {"slug": "night-course", "provider": "druglink", "title": "Night course",
               "kinds": ["adult_education"], "format": "group", "sessions": "3", "session_minutes": "90",
               "delivery": ["in_person", "online"], "min_age": "18", "max_age": "", "languages": ["en"],
               "areas": ["thames-valley", "west-midlands"], "description": "Three evening sessions."}


def _course(slug: str) -> Course | None:
    return db.session.scalar(select(Course).where(Course.slug == slug))


def test_a_course_form_with_mistakes_names_each_field_and_adds_nothing(app: Flask, client: FlaskClient,
                                                                       world: World) -> None:
    sign_in(client, world.email("platform_admin"))
    form = "/admin/catalogue/courses/new"
    bad = {**COURSE_FORM, "areas": [], "session_minutes": "three", "max_age": "9", "slug": "Night Course"}
    response = post_form(client, form, form, bad)
    assert response.status_code == 400
    page = response.text
    assert "There is a problem" in page
    for message in ("Choose at least one area", "Not a valid integer value",
                    "The oldest age must be between 10 and 120", "Use lower-case letters, digits and single hyphens"):
        assert message in page
    assert 'href="#areas"' in page  # the summary links to the field
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Course).where(Course.title == "Night course")) == 0


def test_a_service_refusal_lands_on_its_field(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("platform_admin"))
    form = "/admin/catalogue/courses/new"
    response = post_form(client, form, form, {**COURSE_FORM, "min_age": "40", "max_age": "20"})
    assert response.status_code == 400
    assert "max_age must not be below min_age" in response.text
    duplicate = post_form(client, form, form, {**COURSE_FORM, "slug": "avon-dep-session"})
    assert duplicate.status_code == 400
    assert "A course already has the address" in duplicate.text
    assert re.search(r'id="slug-error"', duplicate.text)


def test_a_platform_admin_adds_and_edits_a_course(app: Flask, client: FlaskClient, world: World,
                                                  database: Any) -> None:
    sign_in(client, world.email("platform_admin"))
    form = "/admin/catalogue/courses/new"
    assert post_form(client, form, form, COURSE_FORM).headers["Location"] == "/admin/catalogue/"
    with app.app_context():
        course = _course("night-course")
        assert course is not None
        assert (course.delivery, course.max_age, course.areas) == (["in_person", "online"], None,
                                                                   ["thames-valley", "west-midlands"])
        edit = f"/admin/catalogue/courses/{course.id}"
    page = client.get(edit).text
    assert 'value="online" checked' in page
    # Offered in Welsh too: the Welsh title and description are asked for, and kept.
    untranslated = post_form(client, edit, edit, {**COURSE_FORM, "title": "Late course", "languages": ["en", "cy"]})
    assert untranslated.status_code == 400
    assert "enter the Welsh title: the course is offered in Welsh" in untranslated.text
    response = post_form(client, edit, edit, {**COURSE_FORM, "title": "Late course", "languages": ["en", "cy"],
                                              "title_cy": "Cwrs hwyr", "description_cy": "Cwrs gyda'r nos."})
    assert response.status_code == 302
    with app.app_context():
        course = _course("night-course")
        assert (course.title, course.languages, course.title_cy) == ("Late course", ["en", "cy"], "Cwrs hwyr")
    # Platform events belong to no force: read them as the auditor does.
    updates = [e for e in _events(database) if e["action"] == "course.updated"]
    assert [(e["details"], e["tenant_id"]) for e in updates] == [
        ({"fields": ["title", "languages", "title_cy", "description_cy"]}, None)]
    listing = client.get("/admin/catalogue/").text
    assert "Late course" in listing


def test_a_force_admin_adds_an_offering_in_two_steps(app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context():
        admin = db.session.get(User, world.users["platform_admin"].id)
        course_id = catalogue.create_course(NEW_COURSE, actor=admin).id
        db.session.commit()
    sign_in(client, world.email("a_force_admin"))
    step_one = client.get("/west-midlands/offerings/new").text
    assert "DIVERT young person&#39;s route" in step_one or "DIVERT young person's route" in step_one
    assert "Continue" in step_one
    assert client.get("/west-midlands/offerings/new?pathway=nope").status_code == 400
    step_two = client.get("/west-midlands/offerings/new?pathway=divert").text
    assert "Drug awareness evening" in step_two
    assert "DIVERT young person" not in step_two  # the youth course does not fit the adult pathway
    page = "/west-midlands/offerings/new?pathway=divert"
    with app.app_context():
        youth_id = db.session.scalar(select(Course.id).where(Course.slug == "cranstoun-divert-youth"))
    misfit = post_form(client, page, "/west-midlands/offerings/new", {"pathway": "divert", "course": str(youth_id)})
    assert misfit.status_code == 400
    assert "Not a valid choice" in misfit.text
    added = post_form(client, page, "/west-midlands/offerings/new", {
        "pathway": "divert", "course": str(course_id), "venues": "Digbeth Hub\nCoventry Road",
        "booking_contact": "0121 496 0000", "notes": "Evenings only"})
    assert added.headers["Location"] == "/west-midlands/offerings/"
    listing = client.get("/west-midlands/offerings/").text
    assert "Digbeth Hub<br>Coventry Road" in listing
    again = post_form(client, page, "/west-midlands/offerings/new", {"pathway": "divert", "course": str(course_id)})
    assert again.status_code == 400
    assert "is already offered for DIVERT (adults)" in again.text
    with app.app_context(), scoped(world.a.id):
        offering = db.session.scalar(select(Offering).where(Offering.course_id == course_id))
        assert offering.booking_contact == "0121 496 0000"


def test_a_force_admin_changes_and_withdraws_an_offering(app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        offering_id = db.session.scalar(select(Offering.id).where(Offering.pathway == "divert"))
    sign_in(client, world.email("a_force_admin"))
    edit = f"/west-midlands/offerings/{offering_id}"
    too_long = post_form(client, edit, edit, {"booking_contact": "x" * 301})
    assert too_long.status_code == 400
    assert "The booking contact must be 300 characters or fewer" in too_long.text
    assert post_form(client, edit, edit, {"venues": "Digbeth Hub", "notes": "Mornings"}).status_code == 302
    assert f'href="{edit}/withdraw"' in client.get("/west-midlands/offerings/").text  # a link, not a button
    asking = client.get(f"{edit}/withdraw")
    assert asking.status_code == 200
    assert "Withdraw DIVERT: assessment and drug education?" in asking.text
    assert "officers can no longer refer anyone to it" in asking.text
    assert "This is the only course offered for DIVERT (adults)" in asking.text  # the pathway's last course
    with app.app_context(), scoped(world.a.id):
        assert db.session.get(Offering, offering_id).withdrawn_at is None  # asking changes nothing
    response = post_form(client, f"{edit}/withdraw", f"{edit}/withdraw")
    assert response.status_code == 302
    assert client.get(f"{edit}/withdraw").status_code == 404  # nothing left to ask about
    listing = client.get("/west-midlands/offerings/").text
    assert "Withdrawn" in listing
    with app.app_context(), scoped(world.a.id):
        offering = db.session.get(Offering, offering_id)
        assert (offering.venues, offering.notes) == ("Digbeth Hub", "Mornings")
        assert offering.withdrawn_at is not None
        assert offering.edited_in_console


def test_withdrawing_one_of_a_pathways_courses_names_the_others(app: Flask, client: FlaskClient,
                                                                 world: World) -> None:
    with app.app_context():
        admin = db.session.get(User, world.users["platform_admin"].id)
        course_id = catalogue.create_course(NEW_COURSE, actor=admin).id
        db.session.commit()
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        course = db.session.get(Course, course_id)
        admin = db.session.get(User, world.users["a_force_admin"].id)
        catalogue.add_offering(tenant, course, "divert", catalogue.LocalDetails([], "", ""), actor=admin,
                               today=datetime.now(UTC).date())
        offering_id = db.session.scalar(select(Offering.id).where(Offering.course_id == course_id))
        db.session.commit()
    sign_in(client, world.email("a_force_admin"))
    asking = client.get(f"/west-midlands/offerings/{offering_id}/withdraw").text
    assert "Withdraw Drug awareness evening?" in asking
    assert "Officers can still refer to the other courses offered for DIVERT (adults)" in asking
    assert "DIVERT: assessment and drug education (Cranstoun)" in asking
    assert "This is the only course" not in asking


def test_another_forces_offering_is_not_found(app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        durham_offering = db.session.scalar(select(Offering.id))
    sign_in(client, world.email("a_force_admin"))
    assert client.get(f"/west-midlands/offerings/{durham_offering}").status_code == 404
    assert client.get(f"/west-midlands/offerings/{durham_offering}/withdraw").status_code == 404
    response = post_form(client, "/west-midlands/offerings/", f"/west-midlands/offerings/{durham_offering}/withdraw")
    assert response.status_code == 404
    with app.app_context(), scoped(world.b.id):
        assert db.session.get(Offering, durham_offering).withdrawn_at is None


def test_the_policy_page_names_each_pathways_kind(client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    page = client.get("/west-midlands/policy/").text
    assert "National pathway kind: Adult drug education" in page
    assert "National pathway kind: Young people&#39;s early intervention" in page
