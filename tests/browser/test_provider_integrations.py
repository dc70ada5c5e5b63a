"""A provider admin makes an API token and sets a webhook endpoint, in a real browser."""

from __future__ import annotations

import re

from flask import Flask
from playwright.sync_api import expect

from diversion.accounts.models import ProviderRole
from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World
from tests.providers.conftest import add_provider_member, build_providers, refer, user_ref

pytestmark = BROWSER_MARKS


def test_provider_admin_makes_a_token_and_sets_a_webhook(app: Flask, browser_page: Session, world: World) -> None:
    providers = build_providers(app, world)
    add_provider_member(app, user_ref(app, "provider_staff", world), providers.p1, ProviderRole.ADMIN)
    page = browser_page.page
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(world.email("provider_staff"))
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/provider/integrations/")
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()

    page.get_by_role("button", name="Make a token").click()  # no name: the error summary
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter a name for the token")
    page.get_by_label("Name").fill("Case management")
    page.get_by_role("button", name="Make a token").click()
    expect(page.get_by_test_id("secret")).to_have_value(re.compile(r"^dvp\.cranstoun\.[0-9a-f]{8}\."))
    page.get_by_role("button", name="Back to integrations").click()
    expect(page.get_by_test_id("tokens")).to_contain_text("Case management")

    page.get_by_label("Endpoint address").fill("https://example.org/diversion/hooks")
    page.get_by_role("button", name="Save the endpoint").click()
    expect(page.get_by_test_id("secret")).to_have_value(re.compile(r"^dvwh_"))
    page.get_by_role("button", name="Back to integrations").click()
    expect(page.locator("code", has_text="https://example.org/diversion/hooks")).to_be_visible()
    expect(page.get_by_test_id("deliveries")).to_contain_text("Nothing sent yet")
    refer(app, world.b, providers.offerings["b1"], surname="Moss")  # a new referral: a delivery waits
    page.reload()
    deliveries = page.get_by_test_id("deliveries")
    expect(deliveries).to_contain_text("referral.created")
    expect(deliveries).to_contain_text("Durham Constabulary")
    expect(deliveries).to_contain_text("Not tried yet")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "provider-integrations.png"), full_page=True)

    assert browser_page.errors == []
    assert browser_page.failed == []
    assert page.evaluate("window.cspViolations") == []
