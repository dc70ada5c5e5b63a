"""A force's members: force admins change roles of and remove their own members;
platform admins add people. No force admin learns of, enrols or signs out
anyone of another force."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.accounts import services
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ForceMembership, Role, User
from diversion.audit.models import AuditEvent
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World, csrf_token, post_form, sign_in


def _roles(app: Flask, tenant_id: int, user_id: int) -> set[Role]:
    with app.app_context(), scoped(tenant_id):
        return set(db.session.scalars(select(ForceMembership.role).where(ForceMembership.user_id == user_id)))


def _session_version(app: Flask, user_id: int) -> int:
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        return user.session_version


def _also_officer_in_b(app: Flask, world: World, key: str) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = db.session.get(Tenant, world.b.id)
        user = db.session.get(User, world.users[key].id)
        assert tenant is not None
        assert user is not None
        services.add_membership(tenant, user, Role.OFFICER, actor=SYSTEM)
        db.session.commit()


def test_removing_a_membership_closes_that_force_only_at_the_next_request(
    app: Flask, client: FlaskClient, world: World
) -> None:
    _also_officer_in_b(app, world, "a_officer")
    sign_in(client, world.email("a_officer"))
    assert client.get("/west-midlands/").status_code == 200
    version = _session_version(app, world.users["a_officer"].id)
    admin = app.test_client()
    sign_in(admin, world.email("a_force_admin"))
    remove = f"/west-midlands/members/{world.memberships['a_officer'].id}/remove"
    assert f'href="{remove}"' in admin.get("/west-midlands/members/").text  # the list links to a question
    asked = admin.get(remove)
    assert asked.status_code == 200
    assert "Remove A Officer from West Midlands Police?" in asked.text
    assert "A Officer (a-officer@example.org) is an officer in West Midlands Police." in asked.text
    assert client.get("/west-midlands/").status_code == 200  # asking changed nothing
    assert _roles(app, world.a.id, world.users["a_officer"].id) == {Role.OFFICER}
    response = post_form(admin, remove, remove)
    assert response.status_code == 302
    assert "A Officer is no longer an officer in West Midlands Police." in admin.get("/west-midlands/members/").text
    # Still signed in, and still an officer of the other force.
    assert client.get("/west-midlands/").status_code == 404
    assert client.get("/durham/").status_code == 200
    assert world.email("a_officer") in client.get("/").text
    assert _session_version(app, world.users["a_officer"].id) == version


def test_removing_one_of_two_roles_says_which_stays(app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        user = db.session.get(User, world.users["a_officer"].id)
        assert tenant is not None
        assert user is not None
        services.add_membership(tenant, user, Role.SUPERVISOR, actor=SYSTEM)
        db.session.commit()
    sign_in(client, world.email("a_force_admin"))
    remove = f"/west-midlands/members/{world.memberships['a_officer'].id}/remove"
    asked = client.get(remove)
    assert asked.status_code == 200
    assert "Remove A Officer as an officer?" in asked.text
    assert "They stay a supervisor there." in asked.text
    assert "Remove the role" in asked.text
    assert _roles(app, world.a.id, world.users["a_officer"].id) == {Role.OFFICER, Role.SUPERVISOR}
    assert post_form(client, remove, remove).status_code == 302
    assert _roles(app, world.a.id, world.users["a_officer"].id) == {Role.SUPERVISOR}
    assert client.get(remove).status_code == 404  # nothing left to ask about


def test_last_force_admin_cannot_be_removed(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    membership = world.memberships["a_force_admin"]
    remove = f"/west-midlands/members/{membership.id}/remove"
    assert client.get(remove).status_code == 200  # asked; the answer refuses
    response = post_form(client, remove, remove)
    assert response.status_code == 302
    assert "at least one force admin" in client.get("/west-midlands/members/").text
    with app.app_context(), scoped(world.a.id):
        assert db.session.get(ForceMembership, membership.id) is not None


def test_a_force_admin_cannot_add_anyone_by_email(app: Flask, client: FlaskClient, world: World) -> None:
    """The probe's case: Durham's admin names another force's officer."""
    sign_in(client, world.email("b_force_admin"))
    target = world.users["a_officer"]
    version = _session_version(app, target.id)
    page = client.get("/durham/members/")
    assert page.status_code == 200
    assert 'name="email"' not in page.text
    response = client.post("/durham/members/", data={
        "email": target.email, "name": "Someone", "password": "a-long-initial-password", "role": "officer",
        "csrf_token": csrf_token(page.text)})
    assert response.status_code == 405
    assert target.email not in response.text
    assert target.name not in response.text
    assert _roles(app, world.b.id, target.id) == set()
    assert _session_version(app, target.id) == version


def test_a_force_admin_cannot_touch_another_forces_membership(
    app: Flask, client: FlaskClient, world: World
) -> None:
    sign_in(client, world.email("a_force_admin"))
    theirs = world.memberships["b_officer"]
    assert client.get(f"/west-midlands/members/{theirs.id}/role").status_code == 404
    assert client.get(f"/west-midlands/members/{theirs.id}/remove").status_code == 404
    response = post_form(client, "/west-midlands/members/", f"/west-midlands/members/{theirs.id}/role",
                         {"role": "force_admin"})
    assert response.status_code == 404
    assert _roles(app, world.b.id, world.users["b_officer"].id) == {Role.OFFICER}


def test_a_force_admin_changes_a_members_role(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    membership = world.memberships["a_supervisor"]
    url = f"/west-midlands/members/{membership.id}/role"
    page = client.get(url)
    assert "Change the role of A Supervisor" in page.text
    response = post_form(client, url, url, {"role": "officer"})
    assert response.status_code == 302
    assert "A Supervisor is now an officer." in client.get("/west-midlands/members/").text
    assert _roles(app, world.a.id, world.users["a_supervisor"].id) == {Role.OFFICER}
    with app.app_context(), scoped(world.a.id):
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "membership.role_changed"))
        assert event is not None
        assert event.details == {"user_id": world.users["a_supervisor"].id, "from": "supervisor", "to": "officer"}


def test_changing_a_role_refuses_a_role_held_and_the_last_force_admin(
    app: Flask, client: FlaskClient, world: World
) -> None:
    sign_in(client, world.email("a_force_admin"))
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        user = db.session.get(User, world.users["a_supervisor"].id)
        assert tenant is not None
        assert user is not None
        services.add_membership(tenant, user, Role.OFFICER, actor=SYSTEM)
        db.session.commit()
    url = f"/west-midlands/members/{world.memberships['a_supervisor'].id}/role"
    response = post_form(client, url, url, {"role": "officer"})
    assert response.status_code == 400
    assert "A Supervisor is already an officer here." in response.text
    own = f"/west-midlands/members/{world.memberships['a_force_admin'].id}/role"
    response = post_form(client, own, own, {"role": "officer"})
    assert response.status_code == 400
    assert "A force must keep at least one force admin." in response.text
    assert _roles(app, world.a.id, world.users["a_force_admin"].id) == {Role.FORCE_ADMIN}
    response = post_form(client, url, url, {"role": "platform_admin"})
    assert response.status_code == 400
    assert _roles(app, world.a.id, world.users["a_supervisor"].id) == {Role.SUPERVISOR, Role.OFFICER}


def test_a_platform_admin_adds_a_new_person_who_can_sign_in(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("platform_admin"))
    response = post_form(client, "/admin/members/new", "/admin/members/new", {
        "force": "west-midlands", "email": "New.Officer@Example.org", "name": "New Officer",
        "password": "a-long-initial-password", "role": "officer",
    })
    assert response.status_code == 302
    assert "New Officer is now an officer in West Midlands Police." in client.get("/admin/").text
    newcomer = app.test_client()
    sign_in(newcomer, "new.officer@example.org", "a-long-initial-password")
    assert newcomer.get("/west-midlands/").status_code == 200
    assert newcomer.get("/durham/").status_code == 404


def test_a_platform_admin_adds_an_existing_account_to_another_force(
    app: Flask, client: FlaskClient, world: World
) -> None:
    sign_in(client, world.email("platform_admin"))
    response = post_form(client, "/admin/members/new", "/admin/members/new", {
        "force": "durham", "email": world.email("a_officer"), "role": "supervisor"})
    assert response.status_code == 302
    assert _roles(app, world.b.id, world.users["a_officer"].id) == {Role.SUPERVISOR}
    assert _roles(app, world.a.id, world.users["a_officer"].id) == {Role.OFFICER}


def test_adding_a_person_with_bad_input_names_the_field_and_changes_nothing(
    app: Flask, client: FlaskClient, world: World
) -> None:
    sign_in(client, world.email("platform_admin"))
    response = post_form(client, "/admin/members/new", "/admin/members/new", {
        "force": "west-midlands", "email": "fresh@example.org", "name": "Fresh", "password": "short",
        "role": "officer",
    })
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert "Password must be at least 12 characters" in response.text
    for data in ({"force": "west-midlands", "email": "fresh@example.org", "role": "platform_admin"},
                 {"force": "no-such-force", "email": "fresh@example.org", "name": "Fresh",
                  "password": "a-long-initial-password", "role": "officer"},
                 {"force": "west-midlands", "email": "fresh@example.org", "password": "a-long-initial-password",
                  "role": "officer"}):
        assert post_form(client, "/admin/members/new", "/admin/members/new", data).status_code == 400
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "fresh@example.org")) is None
