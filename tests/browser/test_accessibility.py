"""Every kind of page checked by a real engine, in English and in Welsh: axe-core in Chromium
against WCAG 2.2 A and AA, every rule, no element excluded; and every page fits a 375-pixel phone
without scrolling sideways (a wide table scrolls in its own region). The pages hold real work: an
encounter recorded with errors first, its decision, a referral, the case, a decision waiting for
review."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from playwright.sync_api import Page, expect

from tests.browser.conftest import BROWSER_MARKS, Session, axe_violations, sign_in, wider_than_a_phone
from tests.conftest import World

pytestmark = BROWSER_MARKS
TODAY = date.today()  # noqa: DTZ011 - as the officer would


class _Checked:
    """The pages seen so far and what was wrong with them."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.seen: list[str] = []
        self.problems: list[str] = []

    def __call__(self, what: str, in_welsh: Callable[[], None] | None = None) -> None:
        """Check the page as it stands, then the same page in Welsh: asked for at its address, or
        made again by ``in_welsh`` (a page a form's answer drew); then English is asked for again."""
        self._check(what)
        here = self.page.url
        self.page.goto(_asking(here, "cy"))
        if in_welsh is not None:
            in_welsh()
        assert self.page.locator("html").get_attribute("lang") == "cy", f"{what} in Welsh: not in Welsh"
        self._check(f"{what} in Welsh")
        self.page.goto(_asking(here, "en"))

    def _check(self, what: str) -> None:
        self.page.wait_for_load_state("networkidle")  # everything loaded, none cut short by the next page
        self.seen.append(what)
        self.problems += [f"{what}: {line}" for line in axe_violations(self.page)]
        if (width := wider_than_a_phone(self.page)) is not None:
            self.problems.append(f"{what}: {width} pixels wide on a 375-pixel phone ({self.page.url})")

    def visit(self, what: str, path: str) -> None:
        response = self.page.goto(path)
        assert response is not None
        assert response.status == 200, f"{what}: {path} answered {response.status}"
        self(what)


def _asking(address: str, language: str) -> str:
    """``address`` asking for ``language`` (any language it asked for before replaced)."""
    parts = urlsplit(address)
    query = [(name, value) for name, value in parse_qsl(parts.query) if name != "lang"] + [("lang", language)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _date(page: Page, field: str, day: date) -> None:
    page.locator(f"#{field}-day").fill(str(day.day))
    page.locator(f"#{field}-month").fill(str(day.month))
    page.locator(f"#{field}-year").fill(str(day.year))


def _intake(page: Page, surname: str, aggravating: str) -> None:
    """An adult found with cannabis on the street in West Midlands."""
    page.goto("/west-midlands/encounters/new")
    page.get_by_label("Surname").fill(surname)
    page.get_by_label("Given name").fill("Sam")
    _date(page, "date_of_birth", date(TODAY.year - 28, 1, 15))
    _date(page, "offence_on", TODAY)
    answers = {"offence": "Possession", "personal_use": "Yes", "user_dealer": "No",
               "admission": "Admitted the offence", "stage": "On the street (before arrest)",
               "drug_class": "Class B", "aggravating_factors": aggravating}
    for name, label in answers.items():
        page.locator(f"fieldset:has(input[name={name}])").get_by_label(label, exact=True).check()
    page.locator("fieldset:has(input[name=substances])").get_by_label("Cannabis", exact=True).check()
    page.get_by_role("button", name="Record and decide").click()


def test_every_kind_of_page_passes_axe_and_fits_a_phone(browser_page: Session, world: World) -> None:
    page = browser_page.page
    check = _Checked(page)
    check.visit("start page", "/")
    check.visit("sign-in", "/sign-in")

    sign_in(page, world.email("a_officer"))
    check("force home")
    page.goto("/west-midlands/encounters/new")
    check("intake")
    page.get_by_role("button", name="Record and decide").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    check("intake with errors", in_welsh=lambda: page.get_by_role("button", name="Cofnodi a phenderfynu").click())
    _intake(page, "Adeyemi", aggravating="None")
    expect(page.get_by_test_id("decision-outcome")).to_contain_text("DIVERT (adults)")
    check("decision")
    page.locator("fieldset:has(input[name=offering])").locator("input[type=radio]").first.check()
    page.get_by_role("button", name="Offer a place").click()
    expect(page.get_by_test_id("person-name")).to_have_text("Sam Adeyemi")
    check("case")
    _intake(page, "Brennan", aggravating="Not known yet")
    expect(page.get_by_test_id("decision-outcome")).to_contain_text("Needs review")
    check.visit("cases list", "/west-midlands/cases/")
    check.visit("referrals list", "/west-midlands/referrals")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, world.email("a_supervisor"))
    check.visit("review queue", "/west-midlands/review")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, world.email("a_force_admin"))
    for what, path in (("policy console", "/west-midlands/policy/"), ("simulation", "/west-midlands/policy/simulate"),
                       ("members", "/west-midlands/members/"),
                       ("removing a member", f"/west-midlands/members/{world.memberships['a_supervisor'].id}/remove"),
                       ("audit", "/west-midlands/audit/"),
                       ("settings", "/west-midlands/settings/"), ("force's billing", "/west-midlands/billing/")):
        check.visit(what, path)
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, world.email("provider_staff"))
    check.visit("provider workspace", "/provider/")
    page.get_by_role("link", name="Sam Adeyemi").click()
    check("provider's referral")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, world.email("platform_admin"))
    check.visit("admin console", "/admin/")
    check.visit("platform billing", "/admin/billing/")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, world.email("national_lead"))
    check.visit("national overview", "/national/")

    assert len(check.seen) == 2 * 22  # each kind of page in English and in Welsh
    assert check.problems == []
    assert browser_page.errors == []
