"""A force admin adds an offering, and a platform admin edits a course, in a real browser."""

from __future__ import annotations

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from diversion.accounts.models import User
from diversion.catalogue import services as catalogue
from diversion.catalogue.models import Course, Offering
from diversion.extensions import db
from diversion.tenancy.context import scoped
from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session, sign_in
from tests.catalogue.test_services import NEW_COURSE
from tests.conftest import World

pytestmark = BROWSER_MARKS


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _no_page_trouble(session: Session) -> None:
    assert session.errors == []
    assert session.failed == []
    assert session.page.evaluate("window.cspViolations") == []


def test_a_force_admin_adds_an_offering(app: Flask, browser_page: Session, world: World) -> None:
    with app.app_context():
        catalogue.create_course(NEW_COURSE, actor=db.session.get(User, world.users["platform_admin"].id))
        db.session.commit()
    page = browser_page.page
    sign_in(page, world.email("a_force_admin"))
    page.goto("/west-midlands/")
    page.get_by_role("link", name="Courses offered").click()
    expect(page.get_by_role("heading", name="Courses offered by West Midlands Police")).to_be_visible()
    page.get_by_role("link", name="Add an offering").click()

    page.get_by_role("button", name="Continue").click()  # no pathway chosen
    expect(page.locator(".govuk-error-summary")).to_contain_text("Choose a pathway")
    page.get_by_label("DIVERT (adults)").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="DIVERT (adults)")).to_be_visible()
    expect(page.get_by_label("Drug awareness evening")).to_be_visible()
    expect(page.get_by_text("DIVERT young person's route")).to_have_count(0)  # a youth course does not fit

    page.get_by_label("Drug awareness evening").check()
    page.get_by_label("Venues (optional)").fill("Digbeth Hub\nCoventry Road Library")
    page.get_by_label("Booking contact (optional)").fill("0121 496 0000")
    _shot(page, "offering-add")
    page.get_by_role("button", name="Add offering").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        "Drug awareness evening is offered for DIVERT (adults)")
    expect(page.get_by_test_id("offerings")).to_contain_text("Coventry Road Library")
    _shot(page, "offerings-list")
    _no_page_trouble(browser_page)
    with app.app_context(), scoped(world.a.id):
        offering = db.session.scalar(select(Offering).join(Course).where(Course.slug == NEW_COURSE["slug"]))
        assert offering is not None
        assert offering.venues == "Digbeth Hub\nCoventry Road Library"


def test_a_platform_admin_edits_a_course(app: Flask, browser_page: Session, world: World) -> None:
    page = browser_page.page
    sign_in(page, world.email("platform_admin"))
    page.goto("/admin/")
    page.get_by_role("link", name="Course catalogue: providers and courses").click()
    page.get_by_role("link", name="Change Drug Education Programme group session").click()
    expect(page.get_by_role("heading", name="Change Drug Education Programme group session")).to_be_visible()

    page.get_by_label("Length of a session, in minutes").fill("")
    page.get_by_label("Online").check()
    page.get_by_role("button", name="Save course").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter the length of a session")
    _shot(page, "course-edit-error")
    summary.get_by_role("link", name="Enter the length of a session").click()
    expect(page.get_by_label("Length of a session, in minutes")).to_be_focused()

    page.get_by_label("Length of a session, in minutes").fill("180")
    page.get_by_role("button", name="Save course").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        "Drug Education Programme group session is saved")
    expect(page.get_by_test_id("courses")).to_contain_text("1 session of 180 minutes")
    _shot(page, "catalogue-after-edit")
    _no_page_trouble(browser_page)
    with app.app_context():
        course = db.session.scalar(select(Course).where(Course.slug == "avon-dep-session"))
        assert (course.session_minutes, course.delivery, course.edited_in_console) == (
            180, ["in_person", "online"], True)
