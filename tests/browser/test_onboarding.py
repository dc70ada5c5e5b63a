"""The whole of a force's arrival, in a real browser: a platform admin
onboards Cleveland Police (details with a mistake first, a policy copied from
Durham, two offerings, single sign-on with its own provider, the first force
admin); the invited admin signs in through that provider (``oidc-provider-mock``
behind the proxy of ``tests.oidc``); an officer the admin invites gets
Durham's decision at once; the exported file syncs back onto an empty
database as the same force; suspending it ends its people's sessions."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import Role
from diversion.eligibility import services as policies
from diversion.extensions import db
from diversion.forces import onboarding
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant
from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World
from tests.forces.round_trip import force_as_stored, sync_onto_empty_database
from tests.oidc import Proxy, oidc, oidc_server, put_user

if TYPE_CHECKING:
    from tests.databases import TestDatabase

pytestmark = BROWSER_MARKS
__all__ = ["oidc", "oidc_server"]
PLATFORM = "platform@diversion.example"


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"onboarding-{name}.png"), full_page=True)


def _no_page_trouble(session: Session, live_server: str) -> None:
    """No script error, no failed load of this site (the provider's page loads its style from the internet)."""
    assert session.errors == []
    assert [line for line in session.failed if live_server in line] == []
    assert session.page.evaluate("window.cspViolations") == []


def _fill_details(page: Page, *, colour: str) -> None:
    page.get_by_label("Force name", exact=True).fill("Cleveland Police")
    page.get_by_label("Address", exact=True).fill("cleveland")
    page.get_by_label("Scheme name").fill("Checkpoint Cleveland")
    page.get_by_label("Police force area").select_option(label="Cleveland")
    page.get_by_label("Code on completion", exact=True).fill("outcome-22")
    page.get_by_label("What the code on completion means", exact=True).fill("No further action (Outcome 22)")
    page.get_by_label("Code on non-completion", exact=True).fill("prosecution")
    page.get_by_label("What the code on non-completion means", exact=True).fill("Prosecution resumes")
    page.get_by_label("Prosecution resumes", exact=True).check()
    page.get_by_label("Brand colour").fill(colour)


def test_cleveland_joins_signs_in_through_its_provider_decides_at_once_and_can_be_suspended(
        app: Flask, browser_page: Session, world: World, oidc: Proxy, live_server: str, database: TestDatabase,
        tmp_path: Path) -> None:
    """The issue's whole journey: onboarded in the console, its admin signing in
    through the force's own provider, an officer invited by that admin getting
    Durham's decision at once, the exported file syncing back identically,
    and suspending it ending its people's sessions."""
    app.config.update(SSO_ALLOW_HTTP=True, OUTBOUND_TEST_ALLOW_HOSTS=("127.0.0.1",))
    with app.app_context():
        admin = accounts.create_user(email=PLATFORM, name="Platform admin", password=PASSWORD, actor=SYSTEM)
        accounts.grant_platform_role(admin, Role.PLATFORM_ADMIN, actor=SYSTEM)
        db.session.commit()
    page = browser_page.page
    _sign_in(page, PLATFORM)
    page.goto("/admin/")
    page.get_by_role("link", name="Set up a new force").click()

    _details_step(page)
    _policy_and_offerings(page)
    _sign_on_step(page, issuer=oidc.url)
    link = _first_admin_step(page)

    page.get_by_test_id("finish").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Cleveland Police is open")
    _shot(page, "10-open")
    _opened_with_durhams_policy(app)

    _the_admin_accepts_through_the_forces_provider(page, oidc, link)
    officer_link = _the_admin_invites_an_officer(page)
    _the_officer_accepts_and_gets_durhams_decision(page, officer_link)
    _no_page_trouble(browser_page, live_server)

    text, before = _exported_then_suspended(app, page, live_server)

    # The officer's session has ended: their next step asks them to sign in.
    page.reload()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    _shot(page, "17-suspended-signed-out")

    # The exported file, synced onto an empty database, makes the same force.
    report = sync_onto_empty_database(app, database, tmp_path / "tenants", "cleveland", text)
    assert report.created == ["cleveland"]
    with app.app_context():
        after = force_as_stored("cleveland")
    assert after == before
    assert before["sign_on"] == (oidc.url, "cleveland-diversion", False, "refuse")


def _opened_with_durhams_policy(app: Flask) -> None:
    with app.app_context():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == "cleveland"))
        assert tenant is not None
        assert tenant.status is ForceStatus.ACTIVE
        with scoped(tenant.id):
            version = policies.policy_in_force(datetime.now(UTC).date())
            assert version is not None
            assert version.described.startswith("Copied from Durham Constabulary")
            assert len(onboarding.offered()) == 2


def _exported_then_suspended(app: Flask, page: Page, live_server: str) -> tuple[str, dict[str, Any]]:
    """The platform admin, in a browser of their own, downloads Cleveland's
    file (the force as stored then), then suspends it."""
    assert page.context.browser is not None
    console = page.context.browser.new_context(base_url=live_server)
    try:
        other = console.new_page()
        _sign_in(other, PLATFORM)
        download = other.request.get("/admin/forces/cleveland/export")
        assert download.status == 200
        text = download.text()
        assert "a-secret-entered-once" not in text
        with app.app_context():
            before = force_as_stored("cleveland")
        other.goto("/admin/forces/cleveland/suspend")
        other.get_by_role("button", name="Suspend Cleveland Police").click()
        expect(other.locator(".govuk-notification-banner--success")).to_contain_text("Cleveland Police")
        return text, before
    finally:
        console.close()


def _details_step(page: Page) -> None:
    """Details: a colour that is not #rrggbb is shown in place, then put right; the draft is kept."""
    _fill_details(page, colour="dark blue")
    page.get_by_role("button", name="Save and continue").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter the brand colour as #rrggbb")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#brand_colour")
    _shot(page, "1-details-error")
    page.get_by_label("Brand colour").fill("#00558c")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("heading", name="Cleveland Police")).to_be_visible()
    expect(page.locator(".govuk-task-list")).to_contain_text("Not yet started")
    _shot(page, "2-tasks")

    # Leaving half way keeps the draft: the console offers to resume it.
    page.goto("/admin/")
    expect(page.get_by_test_id("drafts")).to_contain_text("Cleveland Police")
    _shot(page, "3-console-draft")
    page.get_by_role("link", name="Resume setting up Cleveland Police").click()


def _policy_and_offerings(page: Page) -> None:
    # The first policy: a copy of Durham's.
    page.get_by_role("link", name="Choose the first policy").click()
    _shot(page, "4-policy")
    page.get_by_label("A copy of Durham Constabulary's policy").check()
    page.get_by_role("button", name="Use this policy").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("passes its tests")

    # Two offerings, both Cleveland courses of the catalogue.
    page.get_by_role("link", name="Choose the courses offered").click()
    page.get_by_role("button", name="Save the courses offered").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Choose at least one course")
    _shot(page, "5-offerings-error")
    page.get_by_label("Deferred prosecution contract with a navigator (Cleveland, example)").check()
    page.get_by_label("Drug education for a deferred prosecution (Cleveland, example)").check()
    _shot(page, "6-offerings")
    page.get_by_role("button", name="Save the courses offered").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("2 courses are offered")


def _sign_on_step(page: Page, *, issuer: str) -> None:
    # Single sign-on (optional): the force's own provider.
    page.get_by_role("link", name="Set up single sign-on").click()
    page.get_by_label("Issuer").fill(issuer)
    page.get_by_label("Client ID").fill("cleveland-diversion")
    page.get_by_label("Client secret").fill("a-secret-entered-once")
    page.get_by_label("Refuse them: people join by invitation only").check()
    _shot(page, "7-sign-on")
    page.get_by_role("button", name="Save sign-on settings").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Single sign-on is saved")


def _first_admin_step(page: Page) -> str:
    """The first force admin: the invitation's link, shown once."""
    page.get_by_role("link", name="Invite the first force admin").click()
    page.get_by_label("Full name").fill("Cleveland Admin")
    page.get_by_label("Email address").fill("admin@cleveland.example")
    page.get_by_role("button", name="Invite them").click()
    link = page.get_by_test_id("invitation-link")
    expect(link).to_contain_text("/cleveland/invitation/")
    _shot(page, "8-invited")
    shown = link.inner_text().strip()
    page.get_by_role("link", name="Back to the set-up of Cleveland Police").click()
    expect(page.locator(".govuk-task-list")).to_contain_text("Cleveland Admin (admin@cleveland.example)")
    _shot(page, "9-tasks-done")
    return shown


def _the_admin_accepts_through_the_forces_provider(page: Page, oidc: Proxy, link: str) -> None:
    """The invited admin takes the link up by signing in at Cleveland's provider, and lands on its home page."""
    put_user(oidc, "cleveland-admin-1", {"email": "admin@cleveland.example", "name": "Cleveland Admin"})
    page.get_by_role("button", name="Sign out").click()
    page.goto(link)
    _shot(page, "11-accept")
    page.get_by_role("link", name="Sign in with Cleveland Police's account").click()
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    assert page.url.startswith(oidc.url)
    page.get_by_placeholder("sub").fill("cleveland-admin-1")
    page.get_by_role("button", name="Authorize").click()
    expect(page).to_have_url(re.compile(r"/cleveland/$"))
    expect(page.get_by_test_id("force-name")).to_have_text("Cleveland Police")
    expect(page.get_by_test_id("signed-in-user")).to_contain_text("admin@cleveland.example")
    _shot(page, "12-cleveland-home")


def _the_admin_invites_an_officer(page: Page) -> str:
    page.goto("/cleveland/members/")
    page.get_by_role("button", name="Invite a person").click()
    page.get_by_label("Full name").fill("Casey Officer")
    page.get_by_label("Email address").fill("officer@cleveland.example")
    page.get_by_label("Officer", exact=True).check()
    page.get_by_role("button", name="Send the invitation").click()
    link = page.get_by_test_id("invitation-link")
    expect(link).to_contain_text("/cleveland/invitation/")
    _shot(page, "13-officer-invited")
    return (link.text_content() or "").strip()


def _the_officer_accepts_and_gets_durhams_decision(page: Page, link: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.goto(link)
    _shot(page, "14-officer-accepts")
    page.get_by_label("Create a password").fill("an officer's long password")
    page.get_by_label("Type the password again").fill("an officer's long password")
    page.get_by_role("button", name="Create my account and accept").click()
    expect(page).to_have_url(re.compile(r"/cleveland/$"))
    page.get_by_role("link", name="Record an encounter").click()
    page.get_by_label("Surname").fill("Bell")
    page.get_by_label("Given name").fill("Casey")
    for field, day in (("date_of_birth", date(1993, 7, 14)), ("offence_on", date.today())):  # noqa: DTZ011
        page.locator(f"#{field}-day").fill(str(day.day))
        page.locator(f"#{field}-month").fill(str(day.month))
        page.locator(f"#{field}-year").fill(str(day.year))
    answers = {"offence": "Supply", "user_dealer": "Yes", "personal_use": "No", "admission": "Admitted the offence",
               "stage": "In custody (after arrest)", "under_court_order": "No", "held_for_court": "No",
               "detained_mental_health_act": "No", "resident_in_force_area": "Yes", "drug_class": "Class A"}
    for name, label in answers.items():
        page.locator(f"fieldset:has(input[name={name}])").get_by_label(label, exact=True).check()
    page.locator("fieldset:has(input[name=substances])").get_by_label("Heroin").check()
    page.locator("fieldset:has(input[name=aggravating_factors])").get_by_label("None", exact=True).check()
    _shot(page, "14-officer-intake")
    page.get_by_role("button", name="Record and decide").click()
    # Durham's policy, decided at once: Checkpoint's user-dealer case in custody.
    outcome = page.get_by_test_id("decision-outcome")
    expect(outcome).to_contain_text("Eligible")
    expect(outcome).to_contain_text("Checkpoint: 4-month contract")
    _shot(page, "15-officer-decision")
    page.goto("/cleveland/")
    _shot(page, "16-officer-home")
