"""An officer records an encounter and refers the person with the keyboard alone: the skip link
comes first, focus moves through each page in its reading order, and wherever it is, the GOV.UK
focus style (yellow) shows it."""

from __future__ import annotations

from datetime import date

from playwright.sync_api import Page, expect

from tests.browser.conftest import BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World

pytestmark = BROWSER_MARKS
TABS = 200  # more than any page here has places to stop
# Whether the focused element shows the GOV.UK focus colour (#ffdd00): on itself (links, buttons,
# text inputs), or on the box drawn beside a radio or checkbox by its label.
FOCUS_SHOWN = """() => {
  const yellow = style => [style.outlineStyle !== 'none' ? style.outlineColor : '', style.backgroundColor,
                           style.boxShadow, style.borderColor].some(value => value.includes('255, 221, 0'));
  const element = document.activeElement;
  if (yellow(getComputedStyle(element))) return true;
  const label = element.labels && element.labels[0];
  return !!label && (yellow(getComputedStyle(label, '::before')) || yellow(getComputedStyle(label, '::after')));
}"""
# Where the focused element stands against the one focused before: true when it comes later in the page.
LATER = "earlier => !!earlier && !!(earlier.compareDocumentPosition(document.activeElement) & 4)"


class _Keyboard:
    """Tabbing through a page, checking that focus moves forward and shows where it is."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.stops = 0

    def tab_to(self, selector: str) -> None:
        """Tab until the element ``selector`` finds has focus."""
        page = self.page
        for _ in range(TABS):
            earlier = page.evaluate_handle("document.activeElement")
            page.keyboard.press("Tab")
            self.stops += 1
            if page.evaluate("document.activeElement === document.body"):
                continue  # past the end of the page: the next Tab starts again from the top
            where = page.evaluate("() => document.activeElement.outerHTML.slice(0, 120)")
            assert page.evaluate(FOCUS_SHOWN), f"focus does not show on {where}"
            from_the_top = page.evaluate("earlier => earlier === document.body", earlier)
            assert from_the_top or page.evaluate(LATER, earlier), f"focus went back up the page to {where}"
            if page.evaluate("s => document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"{selector} never had focus in {TABS} tabs")

    def type_into(self, selector: str, text: str) -> None:
        self.tab_to(selector)
        self.page.keyboard.type(text)

    def choose(self, name: str, value: str) -> None:
        """Pick a radio of a group: Tab reaches the group, the arrow keys move the choice."""
        self.tab_to(f"input[name={name}]")
        for _ in range(20):
            if self.page.evaluate("v => document.activeElement.value === v", value):
                self.page.keyboard.press("Space")  # the first of a group is focused, not chosen
                break
            self.page.keyboard.press("ArrowDown")
        expect(self.page.locator(f"input[name={name}][value={value}]")).to_be_checked()

    def tick(self, name: str, value: str) -> None:
        self.tab_to(f"input[name={name}][value={value}]")
        self.page.keyboard.press("Space")
        expect(self.page.locator(f"input[name={name}][value={value}]")).to_be_checked()


def test_an_officer_records_and_refers_with_the_keyboard_alone(browser_page: Session, world: World) -> None:
    page = browser_page.page
    keys = _Keyboard(page)
    page.goto("/sign-in")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to main content")
    assert page.evaluate(FOCUS_SHOWN)
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    keys.type_into("#email", world.email("a_officer"))
    keys.type_into("#password", PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("force-name")).to_be_visible()

    keys.tab_to("a[href$='/encounters/new']")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Record an encounter")
    today = date.today()  # noqa: DTZ011 - as the officer would
    keys.type_into("#surname", "Okafor")
    keys.type_into("#given_name", "Dami")
    for field, day in (("date_of_birth", date(today.year - 30, 3, 9)), ("offence_on", today)):
        for part, number in (("day", day.day), ("month", day.month), ("year", day.year)):
            keys.type_into(f"#{field}-{part}", str(number))
    keys.choose("offence", "possession")
    keys.tick("substances", "cannabis")
    for name, value in (("drug_class", "B"), ("personal_use", "yes"), ("user_dealer", "no"), ("admission", "admitted")):
        keys.choose(name, value)
    keys.tick("aggravating_factors", "none")
    keys.choose("stage", "street")
    keys.tab_to("main button[type=submit], main .govuk-button")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("decision-outcome")).to_contain_text("DIVERT (adults)")

    keys.tab_to("input[name=offering]")
    page.keyboard.press("Space")
    keys.tab_to("main button")
    expect(page.locator(":focus")).to_have_text("Offer a place")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("person-name")).to_have_text("Dami Okafor")
    expect(page.get_by_test_id("timeline")).to_contain_text("Referral offered")
    assert keys.stops > 20
    assert browser_page.errors == []
