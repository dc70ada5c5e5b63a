"""Signing in with a force's own account, in a real browser, through the real
OpenID provider's page (``oidc-provider-mock`` on 127.0.0.1, behind the proxy
of ``tests.oidc``)."""

from __future__ import annotations

import base64
import hashlib

from flask import Flask
from playwright.sync_api import expect

from diversion.accounts import sso
from diversion.accounts.access import SYSTEM
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.browser.conftest import ARTIFACTS, BROWSER_MARKS, Session
from tests.conftest import PASSWORD, World
from tests.oidc import Proxy, oidc, oidc_server, put_user

pytestmark = BROWSER_MARKS
__all__ = ["oidc", "oidc_server"]


def test_a_new_officer_signs_in_through_the_forces_provider(
    app: Flask, world: World, oidc: Proxy, live_server: str, browser_page: Session,
) -> None:
    app.config.update(SSO_ALLOW_HTTP=True, OUTBOUND_TEST_ALLOW_HOSTS=("127.0.0.1",))
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        sso.configure_sign_on(tenant, issuer=oidc.url, client_id="west-midlands-app", client_secret="browser-secret",
                              compulsory=False, new_people="officer", actor=SYSTEM)
        db.session.commit()
    put_user(oidc, "sub-browser", {"email": "bea@force-a.example.org", "name": "Bea Browser"})
    page = browser_page.page

    page.goto("/sign-in")
    page.get_by_role("link", name=f"Sign in with {world.a.name}'s account").click()
    # The provider's own page, on its own origin.
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    assert page.url.startswith(oidc.url)
    page.get_by_placeholder("sub").fill("sub-browser")
    page.get_by_role("button", name="Authorize").click()

    page.wait_for_url(f"{live_server}/west-midlands/")
    expect(page.get_by_test_id("force-name")).to_have_text(world.a.name)
    expect(page.get_by_test_id("signed-in-user")).to_contain_text("bea@force-a.example.org")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "single-sign-on-home.png"), full_page=True)

    # What the browser and the platform sent: the code flow with PKCE S256.
    [asked] = [r for r in oidc.requests_to("/oauth2/authorize") if r.method == "GET"]
    [token] = oidc.requests_to("/oauth2/token")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(token.form["code_verifier"].encode()).digest())
    assert asked.query["code_challenge"] == challenge.rstrip(b"=").decode()
    assert asked.query["code_challenge_method"] == "S256"

    # Signing out ends it; the force's page asks for a sign-in again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in")
    page.goto("/west-midlands/")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    # The sign-in page offers the force's account; its admin sees the settings, the secret never.
    expect(page.get_by_role("link", name=f"Sign in with {world.a.name}'s account")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "single-sign-on-sign-in.png"), full_page=True)
    page.get_by_label("Email address").fill(world.email("a_force_admin"))
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/west-midlands/")
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Single sign-on settings").click()
    expect(page.get_by_role("heading", name="Single sign-on", level=1)).to_be_visible()
    expect(page.locator("main")).to_contain_text("Saved, kept encrypted")
    expect(page.locator("main")).not_to_contain_text("browser-secret")
    expect(page.get_by_label("Client secret")).to_have_value("")
    page.screenshot(path=str(ARTIFACTS / "single-sign-on-settings.png"), full_page=True)
    ours = [line for line in browser_page.failed if live_server in line]
    assert not ours, ours
    assert not browser_page.errors, browser_page.errors
