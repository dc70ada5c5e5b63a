"""North Wales in Welsh, in a real browser: an officer switches to Cymraeg, records an encounter for a
person who prefers Welsh, reads the decision and its reasons in Welsh and refers them to a course
offered in Welsh; the course's provider reads the referral in Welsh and sees the person's language.
Every page on the way is checked by axe-core and fits a phone, in Welsh."""

from __future__ import annotations

from datetime import date

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ProviderMembership, Role
from diversion.catalogue.models import Provider
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.browser.conftest import BROWSER_MARKS, Session, axe_violations, sign_in, wider_than_a_phone
from tests.conftest import PASSWORD

pytestmark = BROWSER_MARKS
TODAY = date.today()  # noqa: DTZ011 - as the officer would
OFFICER = "officer@north-wales.example"
PROVIDER_STAFF = "staff@checkpoint-cymru.example"


def _people(app: Flask) -> None:
    """An officer of North Wales, and a member of staff of the provider of its Welsh course."""
    with app.app_context():
        north_wales = db.session.scalar(select(Tenant).where(Tenant.slug == "north-wales"))
        assert north_wales is not None
        officer = accounts.create_user(email=OFFICER, name="Elin Hughes", password=PASSWORD, actor=SYSTEM)
        with scoped(north_wales.id):
            accounts.add_membership(north_wales, officer, Role.OFFICER, actor=SYSTEM)
        staff = accounts.create_user(email=PROVIDER_STAFF, name="Gareth Jones", password=PASSWORD, actor=SYSTEM)
        provider = db.session.scalar(select(Provider).where(Provider.slug == "checkpoint-cymru-partners"))
        assert provider is not None
        db.session.add(ProviderMembership(provider_id=provider.id, user_id=staff.id))
        db.session.commit()


def _checked(page: Page, problems: list[str], what: str) -> None:
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "cy", f"{what} is not in Welsh"
    problems += [f"{what}: {line}" for line in axe_violations(page)]
    if (width := wider_than_a_phone(page)) is not None:
        problems.append(f"{what}: {width} pixels wide on a 375-pixel phone")


def _date(page: Page, field: str, day: date) -> None:
    page.locator(f"#{field}-day").fill(str(day.day))
    page.locator(f"#{field}-month").fill(str(day.month))
    page.locator(f"#{field}-year").fill(str(day.year))


def _answer(page: Page, name: str, value: str) -> None:
    page.locator(f"input[name={name}][value={value}]").check()


def test_a_north_wales_officer_works_in_welsh_from_intake_to_referral(app: Flask, browser_page: Session) -> None:
    _people(app)
    page, problems = browser_page.page, []
    sign_in(page, OFFICER)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    switch = page.get_by_test_id("language-switch").get_by_role("link", name="Cymraeg")
    expect(switch).to_have_attribute("hreflang", "cy")
    switch.click()
    _checked(page, problems, "force home")

    page.goto("/north-wales/encounters/new")
    expect(page.get_by_role("heading", level=1)).not_to_contain_text("Record")
    page.locator("main form button").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    expect(page.locator(".govuk-error-summary__title")).to_have_text("Mae problem wedi codi")
    expect(page.locator(".govuk-error-message .govuk-visually-hidden").first).to_have_text("Gwall:")
    expect(page.locator("label[for=date_of_birth-day]")).to_have_text("Diwrnod")
    _checked(page, problems, "intake with errors")

    page.locator("input[name=surname]").fill("Pritchard")
    page.locator("input[name=given_name]").fill("Siân")
    _date(page, "date_of_birth", date(TODAY.year - 30, 5, 4))
    _date(page, "offence_on", TODAY)
    _answer(page, "language", "cy")
    for name, value in (("offence", "possession"), ("personal_use", "yes"), ("user_dealer", "no"),
                        ("admission", "admitted"), ("stage", "custody"), ("drug_class", "B"),
                        ("suitable_for_out_of_court_disposal", "yes"), ("on_bail", "no"),
                        ("under_court_order", "no"), ("aggravating_factors", "none"), ("substances", "cannabis")):
        _answer(page, name, value)
    page.locator("main form button").click()

    outcome = page.get_by_test_id("decision-outcome")
    expect(outcome).to_contain_text("Cymwys")
    expect(outcome).to_contain_text("Checkpoint Cymru: contract 4 mis")
    reasons = page.get_by_test_id("reasons")
    expect(reasons).to_contain_text("18 oed neu hŷn ar ddyddiad y drosedd.")
    expect(reasons).to_contain_text("Ddim ar fechnïaeth am fater arall.")
    expect(reasons).not_to_contain_text("Aged 18 or over")
    _checked(page, problems, "decision")

    courses = page.locator("fieldset:has(input[name=offering]) .govuk-radios__item")
    expect(courses.first).to_contain_text("Cwrs addysg Checkpoint Cymru (Cymraeg a Saesneg)")
    courses.first.locator("input").check()
    page.locator("form:has(input[name=offering]) button").click()
    expect(page.get_by_test_id("person-name")).to_have_text("Siân Pritchard")
    expect(page.get_by_test_id("person-language")).to_have_text("Cymraeg")
    _checked(page, problems, "case")
    page.locator("header form button").click()

    page.goto("/sign-in?lang=en")  # the browser keeps the officer's Welsh until asked otherwise
    sign_in(page, PROVIDER_STAFF)
    page.goto("/provider/?lang=cy")
    _checked(page, problems, "provider workspace")
    page.get_by_role("link", name="Siân Pritchard").click()
    expect(page.get_by_test_id("person-language")).to_have_text("Cymraeg")
    expect(page.locator("main")).to_contain_text("Cwrs addysg Checkpoint Cymru (Cymraeg a Saesneg)")
    _checked(page, problems, "provider's referral")

    assert problems == []
    assert browser_page.errors == []
