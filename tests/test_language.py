"""English or Welsh: the switch, the choice remembered by the browser and the account, and who is offered it."""

from __future__ import annotations

import html
import re

from flask import Flask
from flask.testing import FlaskClient

from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ProviderMembership, Role, User
from diversion.catalogue.models import Provider
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import PASSWORD, World, csrf_token, sign_in


def _lang(html: str) -> str:
    found = re.search(r'<html lang="([a-z]+)"', html)
    assert found is not None
    return found.group(1)


def _language_of(app: Flask, email: str) -> str | None:
    with app.app_context():
        return db.session.scalar(db.select(User.language).where(User.email == email))


def test_the_sign_in_page_in_welsh_links_back_to_english(client: FlaskClient, world: World) -> None:
    page = client.get("/sign-in?lang=cy")
    assert _lang(page.text) == "cy"
    assert "Mewngofnodi" in page.text
    assert "Neidio i'r prif gynnwys" in page.text
    assert "Cyfeiriad e-bost" in page.text
    switch = re.search(r'<nav class="diversion-language-switch".*?</nav>', page.text, re.S)
    assert switch is not None
    assert '<a class="govuk-link" href="/sign-in?lang=en" hreflang="en" lang="en" rel="alternate">English</a>' \
        in switch.group(0)
    assert '<span aria-current="true">Cymraeg</span>' in switch.group(0)
    # Remembered by the browser: the next page is Welsh without asking again.
    assert _lang(client.get("/").text) == "cy"
    assert "Heddluoedd ar y platfform" in client.get("/").text
    assert _lang(client.get("/?lang=en").text) == "en"
    assert _lang(client.get("/").text) == "en"


def test_before_any_choice_the_browser_decides_and_a_language_we_lack_changes_nothing(
        client: FlaskClient, world: World) -> None:
    assert _lang(client.get("/sign-in", headers={"Accept-Language": "cy-GB,cy;q=0.9,en;q=0.5"}).text) == "cy"
    assert _lang(client.get("/sign-in", headers={"Accept-Language": "fr"}).text) == "en"
    page = client.get("/sign-in?lang=fr")
    assert page.status_code == 200
    assert _lang(page.text) == "en"
    assert "language=" not in page.headers.get("Set-Cookie", "")


def test_errors_are_in_the_readers_language(client: FlaskClient, world: World) -> None:
    form = client.get("/sign-in?lang=cy")
    page = client.post("/sign-in", data={"email": "", "password": "", "csrf_token": csrf_token(form.text)})
    assert "Mae problem wedi codi" in page.text
    assert "Rhowch eich cyfeiriad e-bost" in page.text
    assert "<title>Gwall: Mewngofnodi" in page.text


def test_an_error_page_is_in_the_readers_language(client: FlaskClient, world: World) -> None:
    missing = client.get("/no/such/page?lang=cy")
    assert missing.status_code == 404
    assert "<title>Heb ddod o hyd i&#39;r dudalen" in missing.text
    assert "Page not found" not in missing.text
    assert "Page not found" in client.get("/no/such/page?lang=en").text


def test_the_choice_made_before_signing_in_is_the_accounts_on_every_device(
        app: Flask, world: World) -> None:
    email = world.email("a_officer")
    first = app.test_client()
    first.get("/sign-in?lang=cy")
    assert sign_in(first, email).status_code == 302
    assert _language_of(app, email) == "cy"
    other = app.test_client()  # another browser: no cookie, no session
    assert _lang(other.get("/sign-in").text) == "en"
    sign_in(other, email)
    assert _lang(other.get("/").text) == "cy"
    other.get("/?lang=en")  # changed while signed in: the account keeps it
    assert _language_of(app, email) == "en"


def test_the_switch_is_offered_where_welsh_is_spoken(app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context():
        north_wales = db.session.scalar(db.select(Tenant).where(Tenant.slug == "north-wales"))
        assert north_wales is not None
        assert "cy" in north_wales.languages
        user = db.session.get(User, world.users["a_officer"].id)
        with scoped(north_wales.id):
            accounts.add_membership(north_wales, user, Role.OFFICER, actor=SYSTEM)
        db.session.commit()
    sign_in(client, world.email("a_officer"))
    assert 'data-testid="language-switch"' in client.get("/north-wales/").text
    assert 'data-testid="language-switch"' not in client.get("/west-midlands/").text  # English alone
    assert 'data-testid="language-switch"' in client.get("/north-wales/?lang=cy").text
    assert _lang(client.get("/north-wales/").text) == "cy"


def test_a_providers_staff_are_offered_the_switch_where_it_gives_a_course_in_welsh(
        app: Flask, client: FlaskClient, world: World) -> None:
    """Outside a force, the switch follows the reader: the staff of a provider that gives a course in Welsh
    have it; others have it only while they read Welsh, to come back to English."""
    sign_in(client, world.email("provider_staff"))
    assert 'data-testid="language-switch"' not in client.get("/provider/").text  # Cranstoun: English alone
    assert 'data-testid="language-switch"' in client.get("/provider/?lang=cy").text
    assert 'data-testid="language-switch"' not in client.get("/provider/?lang=en").text
    with app.app_context():
        cymru = db.session.scalar(db.select(Provider).where(Provider.slug == "checkpoint-cymru-partners"))
        assert cymru is not None
        db.session.add(ProviderMembership(provider_id=cymru.id, user_id=world.users["provider_staff"].id))
        db.session.commit()
    assert 'data-testid="language-switch"' in client.get("/").text


def test_a_provider_reads_the_forces_it_serves_by_their_welsh_names(
        app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context():
        cymru = db.session.scalar(db.select(Provider).where(Provider.slug == "checkpoint-cymru-partners"))
        assert cymru is not None
        staff = accounts.create_user(email="staff@cymru.example", name="Gareth Jones", password=PASSWORD,
                                     actor=SYSTEM)
        db.session.add(ProviderMembership(provider_id=cymru.id, user_id=staff.id))
        db.session.commit()
    sign_in(client, "staff@cymru.example")
    welsh = html.unescape(client.get("/provider/?lang=cy").text)
    assert "yn ei wasanaethu: Heddlu Gogledd Cymru." in welsh
    assert ">Heddlu Gogledd Cymru</option>" in welsh
    assert "North Wales Police" not in welsh


def test_the_console_billing_and_audit_pages_name_a_force_in_the_readers_language(
        app: Flask, client: FlaskClient, world: World) -> None:
    """North Wales gives its Welsh name: a reader of Welsh reads it wherever a page names the force (the
    console's choices of forces, billing, the audit log, the page of an invitation), and a reader of
    English reads its English name."""
    with app.app_context():
        north_wales = db.session.scalar(db.select(Tenant).where(Tenant.slug == "north-wales"))
        assert north_wales is not None
        with scoped(north_wales.id):
            accounts.add_membership(north_wales, db.session.get(User, world.users["a_force_admin"].id),
                                    Role.FORCE_ADMIN, actor=SYSTEM)
        db.session.commit()
    sign_in(client, world.email("platform_admin"))
    for page in ("/admin/members/new", "/admin/people/invite", "/admin/billing/contracts/new",
                 "/admin/billing/reconciliation", "/admin/billing/close/", "/admin/audit/"):
        welsh = html.unescape(client.get(f"{page}?lang=cy").text)
        assert "Heddlu Gogledd Cymru" in welsh, page
        assert "North Wales Police" not in welsh, page
        english = html.unescape(client.get(f"{page}?lang=en").text)
        assert "North Wales Police" in english, page
        assert "Heddlu Gogledd Cymru" not in english, page
    admin = app.test_client()
    sign_in(admin, world.email("a_force_admin"))
    contracts = html.unescape(admin.get("/north-wales/billing/contracts/?lang=cy").text)
    assert "Heddlu Gogledd Cymru" in contracts
    assert "North Wales Police" not in contracts
    page = "/north-wales/members/invite"
    invited = admin.post(page, data={"email": "rhys@example.org", "name": "Rhys Evans", "role": "officer",
                                     "csrf_token": csrf_token(admin.get(page).text)})
    assert invited.status_code == 200, invited.text
    link = re.search(r"https?://[^/\s\"<]+(/north-wales/invitation/[^\s\"<]+)", invited.text)
    assert link is not None
    sent = html.unescape(invited.text)
    assert "Heddlu Gogledd Cymru" in sent
    assert "North Wales Police" not in sent
    joining = html.unescape(app.test_client().get(f"{link.group(1)}?lang=cy").text)
    assert "Ymuno â Heddlu Gogledd Cymru" in joining
    assert "North Wales Police" not in joining
