"""The people pages and the invitation links, as people use them: a force admin,
a provider admin and a platform admin invite; the invited accept (a new account,
or their own after signing in); lists are paginated and searchable; a removed
or deactivated person loses access at their next request."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.accounts import services
from diversion.accounts.access import SYSTEM
from diversion.accounts.invitations import ForceInvitation, ProviderInvitation
from diversion.accounts.models import ForceMembership, ProviderMembership, ProviderRole, Role, User
from diversion.db import utcnow
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import PASSWORD, World, csrf_token, post_form, sign_in, statements_of

NEWCOMER = "newcomer@example.org"
NEW_PASSWORD = "a-long-enough-password"
LINK = re.compile(r'data-testid="invitation-link">http://localhost([^<]+)<')


def _link(page: str) -> str:
    match = LINK.search(page)
    assert match is not None, "no invitation link on the page"
    return match.group(1)


def _invite_to_a(client: FlaskClient, world: World, *, email: str = NEWCOMER, role: str = "officer") -> str:
    sign_in(client, world.email("a_force_admin"))
    page = post_form(client, "/west-midlands/members/invite", "/west-midlands/members/invite",
                     {"name": "New Comer", "email": email, "role": role})
    assert page.status_code == 200, page.text[:400]
    return _link(page.text)


def _accept_with_new_account(client: FlaskClient, link: str, **data: str) -> object:
    page = client.get(link)
    return client.post(link, data={"name": "New Comer", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                                   **data, "csrf_token": csrf_token(page.text)})


def _roles(app: Flask, tenant_id: int, email: str) -> set[Role]:
    with app.app_context(), scoped(tenant_id):
        user = services.find_user(email)
        if user is None:
            return set()
        return set(db.session.scalars(select(ForceMembership.role).where(ForceMembership.user_id == user.id)))


# ---------------------------------------------------------------- accepting a force's invitation

def test_a_newcomer_accepts_with_a_new_account_and_is_signed_in(app: Flask, client: FlaskClient,
                                                                 world: World) -> None:
    link = _invite_to_a(client, world)
    assert link.startswith("/west-midlands/invitation/")
    newcomer = app.test_client()
    page = newcomer.get(link)
    assert page.status_code == 200
    assert "Join West Midlands Police" in page.text
    assert "New Comer (newcomer@example.org) is invited to join West Midlands Police on diversion as an officer" \
        in page.text
    done = _accept_with_new_account(newcomer, link)
    assert done.status_code == 302  # type: ignore[attr-defined]
    assert done.headers["Location"] == "/west-midlands/"  # type: ignore[attr-defined]
    home = newcomer.get("/west-midlands/")
    assert home.status_code == 200
    assert "Your account is ready and you have joined West Midlands Police." in home.text
    assert _roles(app, world.a.id, NEWCOMER) == {Role.OFFICER}
    # The link worked once: again, it is used.
    again = app.test_client().get(link)
    assert again.status_code == 410
    assert "This invitation has already been used" in again.text
    # Its taker, still signed in, is simply sent on.
    assert newcomer.get(link).status_code == 302
    # The new account signs in with its password.
    later = app.test_client()
    assert sign_in(later, NEWCOMER, NEW_PASSWORD).status_code == 302


def test_a_new_account_with_bad_input_names_the_field_and_keeps_nothing(app: Flask, client: FlaskClient,
                                                                         world: World) -> None:
    link = _invite_to_a(client, world)
    newcomer = app.test_client()
    for data, message, field in (
        ({"password": "short", "confirm": "short"}, "The password must be at least 12 characters", "password"),
        ({"confirm": "something-else-entirely"}, "The two passwords must be the same", "confirm"),
        ({"name": ""}, "Enter your full name", "name"),
    ):
        response = _accept_with_new_account(newcomer, link, **data)
        assert response.status_code == 400  # type: ignore[attr-defined]
        text = response.text  # type: ignore[attr-defined]
        assert "There is a problem" in text
        assert message in text
        assert f'href="#{field}"' in text
    with app.app_context():
        assert services.find_user(NEWCOMER) is None
    assert newcomer.get(link).status_code == 200  # still open


def test_someone_with_an_account_signs_in_first_then_accepts(app: Flask, client: FlaskClient,
                                                              world: World) -> None:
    """Durham's officer, invited to West Midlands as a supervisor."""
    link = _invite_to_a(client, world, email=world.email("b_officer"), role="supervisor")
    person = app.test_client()
    page = person.get(link)
    assert "There is already an account for b-officer@example.org" in page.text
    assert 'name="password"' not in page.text
    assert "Sign in to accept" in page.text
    assert re.search(r'href="/sign-in\?next=[^"]*' + re.escape(link.rsplit("/", 1)[1]), page.text)
    # Posting a password for the existing address makes nothing.
    refused = person.post(link, data={"name": "X", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                                      "csrf_token": csrf_token(person.get("/sign-in").text)})
    assert refused.status_code == 200
    assert _roles(app, world.a.id, world.email("b_officer")) == set()
    signed = person.post(f"/sign-in?next={link}", data={
        "email": world.email("b_officer"), "password": PASSWORD, "csrf_token": csrf_token(person.get("/sign-in").text)})
    assert signed.headers["Location"] == link
    page = person.get(link)
    assert "Accept the invitation" in page.text
    accepted = person.post(link, data={"csrf_token": csrf_token(page.text)})
    assert accepted.status_code == 302
    assert "You have joined West Midlands Police." in person.get("/west-midlands/").text
    assert _roles(app, world.a.id, world.email("b_officer")) == {Role.SUPERVISOR}
    assert _roles(app, world.b.id, world.email("b_officer")) == {Role.OFFICER}


def test_another_signed_in_account_cannot_take_it_up(app: Flask, client: FlaskClient, world: World) -> None:
    link = _invite_to_a(client, world)
    other = app.test_client()
    sign_in(other, world.email("b_supervisor"))
    page = other.get(link)
    assert page.status_code == 200
    assert "this invitation is for another email address" in page.text
    response = other.post(link, data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 403
    assert _roles(app, world.a.id, world.email("b_supervisor")) == set()
    assert app.test_client().get(link).status_code == 200  # still open for its owner


def test_unknown_expired_and_foreign_links_change_nothing(app: Flask, client: FlaskClient, world: World) -> None:
    link = _invite_to_a(client, world)
    token = link.rsplit("/", 1)[1]
    visitor = app.test_client()
    unknown = visitor.get("/west-midlands/invitation/not-a-real-token")
    assert unknown.status_code == 404
    assert "This invitation link does not work" in unknown.text
    # Force A's link at force B's address: not found there.
    assert visitor.get(f"/durham/invitation/{token}").status_code == 404
    assert visitor.get(f"/provider/invitation/{token}").status_code == 404
    assert visitor.get("/no-such-force/invitation/x").status_code == 404
    with app.app_context(), scoped(world.a.id):
        invitation = db.session.scalar(select(ForceInvitation))
        assert invitation is not None
        invitation.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    expired = visitor.get(link)
    assert expired.status_code == 410
    assert "This invitation has expired" in expired.text
    posted = visitor.post(link, data={"name": "New Comer", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                                      "csrf_token": csrf_token(visitor.get("/sign-in").text)})
    assert posted.status_code == 410
    with app.app_context():
        assert services.find_user(NEWCOMER) is None


# ---------------------------------------------------------------- a force admin's members page

def test_the_members_page_lists_searches_and_pages(app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        for number in range(30):
            user = services.create_user(email=f"constable-{number:02}@example.org", name=f"Constable {number:02}",
                                        password=None, actor=SYSTEM)
            services.add_membership(tenant, user, Role.OFFICER, actor=SYSTEM)
        db.session.commit()
    sign_in(client, world.email("a_force_admin"))
    first = client.get("/west-midlands/members/")
    assert "33 memberships" in first.text
    assert "A Force Admin" in first.text
    assert "Constable 29" not in first.text  # on the second page (25 a page)
    second = client.get("/west-midlands/members/?page=2")
    assert "Constable 29" in second.text
    assert "A Force Admin" not in second.text
    found = client.get("/west-midlands/members/?q=constable-07")
    assert "1 membership matching" in found.text
    assert "Constable 07" in found.text
    assert "Constable 08" not in found.text
    assert "No member matches" in client.get("/west-midlands/members/?q=b-officer").text  # Durham's: never listed
    assert "No member matches" in client.get("/west-midlands/members/?q=%25").text  # % is a character, not a pattern
    assert client.get("/west-midlands/members/?page=999").status_code == 200


def test_a_force_admin_sees_and_withdraws_an_invitation(app: Flask, client: FlaskClient, world: World) -> None:
    link = _invite_to_a(client, world)
    page = client.get("/west-midlands/members/")
    assert "1 invitation not yet accepted" in page.text
    assert NEWCOMER in page.text
    assert link not in page.text  # shown once, never again
    with app.app_context(), scoped(world.a.id):
        invitation = db.session.scalar(select(ForceInvitation))
        assert invitation is not None
        invitation_id = invitation.id
    # Another force's admin cannot reach it.
    other = app.test_client()
    sign_in(other, world.email("b_force_admin"))
    assert post_form(other, "/durham/members/", f"/durham/members/invitations/{invitation_id}/withdraw") \
        .status_code == 404
    assert other.get(f"/durham/members/invitations/{invitation_id}/withdraw").status_code == 404
    withdraw = f"/west-midlands/members/invitations/{invitation_id}/withdraw"
    assert f'href="{withdraw}"' in page.text  # a link to a page that asks, not a button that acts
    asking = client.get(withdraw)
    assert asking.status_code == 200
    assert "Withdraw the invitation to New Comer?" in asking.text
    assert f"New Comer ({NEWCOMER}) is invited to join West Midlands Police as officer." in asking.text
    assert "the link you gave them no longer works" in asking.text
    with app.app_context(), scoped(world.a.id):
        assert db.session.get(ForceInvitation, invitation_id) is not None  # asking changes nothing
    response = post_form(client, withdraw, withdraw)
    assert response.status_code == 302
    assert "The invitation to New Comer is withdrawn" in client.get("/west-midlands/members/").text
    assert client.get(withdraw).status_code == 404
    gone = app.test_client().get(link)
    assert gone.status_code == 404


def test_inviting_a_member_again_says_what_they_hold(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    invite = "/west-midlands/members/invite"
    refused = post_form(client, invite, invite, {"name": "A Officer", "email": world.email("a_officer"),
                                                 "role": "supervisor"})
    assert refused.status_code == 400
    assert "is invited to join" not in refused.text
    assert "A Officer is already a member of West Midlands Police, as an officer." in refused.text
    assert "use Change role beside their name on the members page" in refused.text
    assert 'href="#email' in refused.text  # the error names the email field
    # A casework role beside a force admin's is invited, and the page says so.
    also = post_form(client, invite, invite, {"name": "A Officer", "email": world.email("a_officer"),
                                              "role": "force_admin"})
    assert also.status_code == 200
    assert "A Officer is invited to be a force admin too" in also.text
    assert "They are already an officer in West Midlands Police." in also.text
    assert "is invited to join" not in also.text


def test_inviting_an_address_again_says_the_earlier_link_no_longer_works(app: Flask, client: FlaskClient,
                                                                          world: World) -> None:
    first = _invite_to_a(client, world)
    page = post_form(client, "/west-midlands/members/invite", "/west-midlands/members/invite",
                     {"name": "New Comer", "email": NEWCOMER, "role": "supervisor"})
    assert page.status_code == 200
    assert f"{NEWCOMER} had an earlier invitation that was not yet accepted. Its link no longer works" in page.text
    assert app.test_client().get(first).status_code == 404
    fresh = post_form(client, "/west-midlands/members/invite", "/west-midlands/members/invite",
                      {"name": "Another", "email": "another@example.org", "role": "officer"})
    assert "had an earlier invitation" not in fresh.text


def test_the_invite_form_names_what_is_wrong(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    for data, message, field in (
        ({"name": "New Comer", "email": "not-an-address", "role": "officer"}, "Enter a valid email address", "email"),
        ({"name": "", "email": NEWCOMER, "role": "officer"}, "Enter the person&#39;s name", "name"),
        ({"name": "New Comer", "email": NEWCOMER, "role": "platform_admin"}, "Not a valid choice", "role"),
        ({"name": "New Comer", "email": world.email("a_officer"), "role": "officer"}, "already an officer", "email"),
    ):
        response = post_form(client, "/west-midlands/members/invite", "/west-midlands/members/invite", data)
        assert response.status_code == 400
        assert "There is a problem" in response.text
        assert message in response.text
        assert f'href="#{field}' in response.text
    with app.app_context(), scoped(world.a.id):
        assert db.session.scalar(select(ForceInvitation)) is None


# ---------------------------------------------------------------- providers

def _cranstoun_admin(app: Flask, world: World) -> None:
    with app.app_context():
        membership = db.session.scalar(select(ProviderMembership).where(
            ProviderMembership.user_id == world.users["provider_staff"].id))
        assert membership is not None
        membership.role = ProviderRole.ADMIN
        db.session.commit()


def test_a_provider_admin_invites_and_the_newcomer_works_there(app: Flask, client: FlaskClient,
                                                                world: World) -> None:
    _cranstoun_admin(app, world)
    sign_in(client, world.email("provider_staff"))
    assert "Cranstoun" in client.get("/provider/people/").text
    page = post_form(client, "/provider/people/invite", "/provider/people/invite",
                     {"name": "New Comer", "email": NEWCOMER, "role": "staff"})
    assert page.status_code == 200
    link = _link(page.text)
    assert link.startswith("/provider/invitation/")
    listing = client.get("/provider/people/").text
    assert "1 invitation not yet accepted" in listing
    with app.app_context():
        invitation_id = db.session.scalar(select(ProviderInvitation.id).where(ProviderInvitation.email == NEWCOMER))
    withdraw = f"/provider/people/invitations/{invitation_id}/withdraw"
    assert f'href="{withdraw}' in listing  # a link to a page that asks first
    asking = client.get(withdraw)
    assert "Withdraw the invitation to New Comer?" in asking.text
    assert f"New Comer ({NEWCOMER}) is invited to join Cranstoun as staff." in asking.text
    assert re.search(r'aria-current="true"[^>]*>\s*<strong[^>]*>People</strong>', asking.text)  # in the workspace
    again = post_form(client, "/provider/people/invite", "/provider/people/invite",
                      {"name": "New Comer", "email": NEWCOMER, "role": "staff"})
    assert "had an earlier invitation that was not yet accepted. Its link no longer works" in again.text
    assert app.test_client().get(link).status_code == 404
    link = _link(again.text)
    newcomer = app.test_client()
    assert "Join Cranstoun" in newcomer.get(link).text
    done = _accept_with_new_account(newcomer, link)
    assert done.headers["Location"] == "/provider/"  # type: ignore[attr-defined]
    assert newcomer.get("/provider/").status_code == 200
    assert newcomer.get("/provider/people/").status_code == 403  # staff, not an admin
    assert "/provider/people/" not in newcomer.get("/provider/").text  # nor offered the page
    assert 'href="/provider/people/?provider=cranstoun"' in client.get("/provider/").text
    listed = client.get("/provider/people/?q=newcomer")
    assert "1 person matching" in listed.text
    assert "New Comer" in listed.text


def test_a_provider_admin_changes_roles_and_removes_people_but_keeps_an_admin(app: Flask, client: FlaskClient,
                                                                              world: World) -> None:
    _cranstoun_admin(app, world)
    with app.app_context():
        staff = services.create_user(email=NEWCOMER, name="New Comer", password=PASSWORD, actor=SYSTEM)
        cranstoun_id = world.providers["cranstoun"].id
        membership = ProviderMembership(provider_id=cranstoun_id, user_id=staff.id)
        db.session.add(membership)
        db.session.commit()
        staff_membership = membership.id
        admin_membership = db.session.scalar(select(ProviderMembership.id).where(
            ProviderMembership.user_id == world.users["provider_staff"].id))
    worker = app.test_client()
    sign_in(worker, NEWCOMER)
    assert worker.get("/provider/").status_code == 200
    sign_in(client, world.email("provider_staff"))
    # The people pages are pages of the workspace: its navigation above them, People the current item.
    for page in ("/provider/people/", f"/provider/people/{staff_membership}/role",
                 f"/provider/people/{staff_membership}/remove", "/provider/people/invite"):
        shown = client.get(page).text
        assert "Cranstoun · provider workspace" in shown, page
        assert re.search(r'aria-current="true"[^>]*>\s*<strong[^>]*>People</strong>', shown), page
    # The last admin can neither step down nor go.
    role = f"/provider/people/{admin_membership}/role"
    refused = post_form(client, role, role, {"role": "staff"})
    assert refused.status_code == 400
    assert "A provider must keep at least one admin." in refused.text
    remove = f"/provider/people/{admin_membership}/remove"
    assert client.get(remove).status_code == 200  # asked; the answer refuses
    post_form(client, remove, remove)
    assert "A provider must keep at least one admin." in client.get("/provider/people/").text
    # Another person: made an admin, then removed.
    role = f"/provider/people/{staff_membership}/role"
    assert post_form(client, role, role, {"role": "admin"}).status_code == 302
    assert "New Comer is now an admin of Cranstoun." in client.get("/provider/people/").text
    assert worker.get("/provider/people/").status_code == 200  # an admin at their next request
    remove = f"/provider/people/{staff_membership}/remove"
    assert f'href="{remove}"' in client.get("/provider/people/").text  # the list links to a question
    asked = client.get(remove)
    assert asked.status_code == 200
    assert "Remove New Comer from Cranstoun?" in asked.text
    assert f"New Comer ({NEWCOMER}) is an admin of Cranstoun." in asked.text
    assert worker.get("/provider/people/").status_code == 200  # asking changed nothing
    assert post_form(client, remove, remove).status_code == 302
    assert "New Comer no longer works for Cranstoun." in client.get("/provider/people/").text
    # Their next request is refused; they are still signed in.
    assert worker.get("/provider/").status_code == 403
    assert NEWCOMER in worker.get("/").text
    # Druglink's staff reach none of Cranstoun's people.
    other = app.test_client()
    sign_in(other, world.email("druglink_staff"))
    assert other.get(role).status_code == 403


def test_a_provider_admin_cannot_touch_another_providers_people(app: Flask, client: FlaskClient,
                                                                world: World) -> None:
    _cranstoun_admin(app, world)
    with app.app_context():
        druglink = db.session.scalar(select(ProviderMembership.id).where(
            ProviderMembership.user_id == world.users["druglink_staff"].id))
        invitation = ProviderInvitation(provider_id=world.providers["druglink"].id, email=NEWCOMER, name="N",
                                        role=ProviderRole.STAFF, token_hash="0" * 64,
                                        expires_at=utcnow() + timedelta(days=1))
        db.session.add(invitation)
        db.session.commit()
        invitation_id = invitation.id
    sign_in(client, world.email("provider_staff"))
    assert client.get(f"/provider/people/{druglink}/role").status_code == 404
    assert client.get(f"/provider/people/{druglink}/remove").status_code == 404
    assert post_form(client, "/provider/people/", f"/provider/people/{druglink}/remove").status_code == 404
    assert post_form(client, "/provider/people/",
                     f"/provider/people/invitations/{invitation_id}/withdraw").status_code == 404
    assert client.get(f"/provider/people/invitations/{invitation_id}/withdraw").status_code == 404
    assert world.email("druglink_staff") not in client.get("/provider/people/").text
    with app.app_context():
        assert db.session.get(ProviderMembership, druglink) is not None
        assert db.session.get(ProviderInvitation, invitation_id) is not None


# ---------------------------------------------------------------- the platform admin's people page

def test_a_platform_admin_searches_pages_and_deactivates(app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context():
        for number in range(30):
            services.create_user(email=f"person-{number:02}@example.org", name=f"Person {number:02}",
                                 password=None, actor=SYSTEM)
        db.session.commit()
    officer = app.test_client()
    sign_in(officer, world.email("a_officer"))
    assert officer.get("/west-midlands/").status_code == 200
    sign_in(client, world.email("platform_admin"))
    page = client.get("/admin/people/")
    assert f"{len(world.users) + 30} accounts" in page.text
    assert "person-29@example.org" not in page.text
    assert "person-29@example.org" in client.get("/admin/people/?page=2").text
    found = client.get("/admin/people/?q=A+Officer")
    assert "1 account matching" in found.text
    target = world.users["a_officer"].id
    # Asked first: the page names the person and what deactivating does, and changes nothing.
    asked = client.get(f"/admin/people/{target}/deactivate?q=A+Officer")
    assert asked.status_code == 200
    for words in ("Deactivate A Officer?", world.email("a_officer"), "Their sessions end at once",
                  "govuk-button--warning", 'href="/admin/people/?q=A+Officer"', "Cancel"):
        assert words in asked.text
    assert f'href="/admin/people/{target}/deactivate?q=A+Officer"' in found.text
    assert f'href="/admin/people/{target}/deactivate"' in page.text  # no empty search carried
    assert officer.get("/west-midlands/").status_code == 200
    done = post_form(client, "/admin/people/?q=A+Officer", f"/admin/people/{target}/deactivate?q=A+Officer")
    assert done.status_code == 302
    assert done.headers["Location"] == "/admin/people/?q=A+Officer"
    assert "A Officer is deactivated: their sessions have ended." in client.get(done.headers["Location"]).text
    # Their next request finds them signed out, and they cannot sign in again.
    response = officer.get("/west-midlands/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in")
    refused = sign_in(app.test_client(), world.email("a_officer"))
    assert refused.status_code == 400
    assert "Enter a correct email address and password" in refused.text
    post_form(client, "/admin/people/", f"/admin/people/{target}/reactivate")
    assert sign_in(officer, world.email("a_officer")).status_code == 302
    assert officer.get("/west-midlands/").status_code == 200
    # Not themselves.
    own = world.users["platform_admin"].id
    post_form(client, "/admin/people/", f"/admin/people/{own}/deactivate")
    assert "You cannot deactivate your own account." in client.get("/admin/people/").text


def test_the_platform_admin_sees_where_each_account_works(app: Flask, client: FlaskClient, world: World) -> None:
    """Each account's forces and providers, with its role in each, in words; read in the same number of
    statements for a page of many people as for a few (never one per person)."""
    with app.app_context():
        db.session.add(ProviderMembership(provider_id=world.providers["cranstoun"].id,
                                          user_id=world.users["a_officer"].id, role=ProviderRole.ADMIN))
        db.session.commit()
    sign_in(client, world.email("platform_admin"))
    few, page = statements_of(app, client, "/admin/people/")
    assert "Forces and providers" in page
    assert "Cranstoun (admin); West Midlands Police (officer)" in page
    assert "Cranstoun (staff)" in page  # the provider's staff member
    assert "Durham Constabulary (supervisor)" in page
    asked = client.get(f"/admin/people/{world.users['a_officer'].id}/deactivate")
    assert "Cranstoun (admin); West Midlands Police (officer)" in asked.text
    with app.app_context():
        for number in range(12):
            person = services.create_user(email=f"person-{number:02}@example.org", name=f"Person {number:02}",
                                          password=None, actor=SYSTEM)
            db.session.add(ProviderMembership(provider_id=world.providers["druglink"].id, user_id=person.id))
            with scoped(world.b.id):
                services.add_membership(db.session.get(Tenant, world.b.id), person, Role.OFFICER, actor=SYSTEM)
        db.session.commit()
    many, page = statements_of(app, client, "/admin/people/")
    assert page.count("Durham Constabulary (officer); Druglink (staff)") + page.count(
        "Druglink (staff); Durham Constabulary (officer)") == 12
    assert many == few


def test_a_platform_admin_invites_a_draft_forces_first_admin(app: Flask, client: FlaskClient,
                                                             world: World) -> None:
    sign_in(client, world.email("platform_admin"))
    form = client.get("/admin/people/invite")
    assert "West Midlands Police: force" in form.text
    assert "Cranstoun: provider" in form.text
    for data, message in (({"organisation": "force:nowhere", "name": "N", "email": NEWCOMER},
                           "Choose one of the forces or providers"),
                          ({"organisation": "", "name": "N", "email": NEWCOMER}, "Choose the force or provider"),
                          ({"organisation": "force:durham", "name": "N", "email": "nope"},
                           "Enter a valid email address")):
        refused = post_form(client, "/admin/people/invite", "/admin/people/invite", data)
        assert refused.status_code == 400
        assert message in refused.text
    page = post_form(client, "/admin/people/invite", "/admin/people/invite",
                     {"organisation": "force:durham", "name": "New Comer", "email": NEWCOMER})
    assert page.status_code == 200
    link = _link(page.text)
    assert link.startswith("/durham/invitation/")
    newcomer = app.test_client()
    assert _accept_with_new_account(newcomer, link).status_code == 302  # type: ignore[attr-defined]
    assert _roles(app, world.b.id, NEWCOMER) == {Role.FORCE_ADMIN}
    assert newcomer.get("/durham/members/").status_code == 200


def test_a_deactivated_person_cannot_take_up_an_invitation(app: Flask, client: FlaskClient, world: World) -> None:
    link = _invite_to_a(client, world, email=world.email("no_role"))
    person = app.test_client()
    sign_in(person, world.email("no_role"))
    page = person.get(link)
    with app.app_context():
        user = db.session.get(User, world.users["no_role"].id)
        assert user is not None
        services.deactivate_user(user, actor=SYSTEM)
        db.session.commit()
    response = person.post(link, data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 200  # signed out: asked to sign in first
    assert "Sign in to accept" in response.text
    assert _roles(app, world.a.id, world.email("no_role")) == set()
