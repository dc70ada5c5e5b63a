"""Layer 4 and the whole stack: a session of force A opens nothing at force B."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from diversion.accounts.models import ForceMembership
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import CSRF_PATTERN, World, make_app, post_form, sign_in


def test_signed_in_officer_sees_own_force_and_404_for_another(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    home = client.get("/west-midlands/")
    assert home.status_code == 200
    assert "West Midlands Police" in home.text
    other = client.get(f"/{world.b.slug}/")
    assert other.status_code == 404
    with app.app_context():
        b = db.session.get(Tenant, world.b.id)
        assert b is not None
        secrets = (b.name.split()[0], b.scheme_name, b.brand_colour)
    for secret in secrets:
        assert secret not in other.text


def test_unknown_force_and_foreign_force_answer_the_same(client, world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    foreign = client.get(f"/{world.b.slug}/members/")
    unknown = client.get("/no-such-force/members/")
    assert foreign.status_code == unknown.status_code == 404
    # The same page, but for the sign-out form's CSRF token, which is signed with the time.
    assert CSRF_PATTERN.sub("", foreign.text) == CSRF_PATTERN.sub("", unknown.text)


def test_admin_lists_only_own_force_members(client, world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    page = client.get("/west-midlands/members/")
    assert page.status_code == 200
    assert world.email("a_officer") in page.text
    for key in ("b_force_admin", "b_officer", "b_supervisor"):
        assert world.email(key) not in page.text


def test_cannot_remove_another_forces_membership_through_own_url(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    target = world.memberships["b_officer"]
    response = post_form(
        client, "/west-midlands/members/", f"/west-midlands/members/{target.id}/remove"
    )
    assert response.status_code == 404
    with app.app_context(), scoped(world.b.id):
        assert db.session.get(ForceMembership, target.id) is not None


def test_anonymous_user_is_sent_to_sign_in(client, world: World) -> None:
    response = client.get("/west-midlands/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=")


def test_thousand_interleaved_requests_on_one_connection_never_mix(database, world: World) -> None:
    app = make_app(database, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0})
    a_client, b_client = app.test_client(), app.test_client()
    sign_in(a_client, world.email("a_force_admin"))
    sign_in(b_client, world.email("b_force_admin"))
    a_emails = [world.email(k) for k in ("a_force_admin", "a_officer", "a_supervisor")]
    b_emails = [world.email(k) for k in ("b_force_admin", "b_officer", "b_supervisor")]
    for i in range(1000):
        if i % 2 == 0:
            page, mine, theirs = a_client.get("/west-midlands/members/"), a_emails, b_emails
        else:
            page, mine, theirs = b_client.get(f"/{world.b.slug}/members/"), b_emails, a_emails
        assert page.status_code == 200
        assert all(email in page.text for email in mine)
        assert not any(email in page.text for email in theirs), f"request {i} leaked"
    with app.app_context():
        with scoped(world.a.id):
            count = db.session.scalar(select(func.count()).select_from(ForceMembership))
        assert count == 3
        assert db.engine.pool.size() == 1
        db.session.remove()
        db.engine.dispose()
