"""Signing in and out, and how sessions end."""

from __future__ import annotations

import pytest
import redis
from flask import Flask

from diversion.accounts import services
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import Role, User
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import PASSWORD, World, csrf_token, make_app, post_form, sign_in


def test_sign_in_lands_on_next_page_and_shows_the_user(client, world: World) -> None:
    page = client.get("/sign-in?next=/west-midlands/")
    response = client.post(
        "/sign-in?next=/west-midlands/",
        data={"email": world.email("a_officer"), "password": PASSWORD,
              "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/west-midlands/"
    home = client.get("/west-midlands/")
    assert world.email("a_officer") in home.text
    assert "Sign out" in home.text


def test_next_must_stay_on_this_site(client, world: World) -> None:
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in?next=//evil.example/steal",
        data={"email": world.email("a_officer"), "password": PASSWORD,
              "csrf_token": csrf_token(page.text)},
    )
    assert response.headers["Location"] == "/west-midlands/"  # the officer's own force, not elsewhere


@pytest.mark.parametrize(("who", "lands"), [
    ("a_officer", "/west-midlands/"), ("b_supervisor", "/durham/"), ("provider_staff", "/provider/"),
    ("platform_admin", "/admin/"), ("national_lead", "/national/"), ("no_role", "/"),
])
def test_sign_in_lands_on_the_persons_own_workspace(client, world: World, who: str, lands: str) -> None:
    response = sign_in(client, world.email(who))
    assert response.status_code == 302
    assert response.headers["Location"] == lands
    assert client.get(lands).status_code == 200


def test_someone_in_two_workspaces_lands_on_the_start_page_that_lists_them(app: Flask, client,
                                                                           world: World) -> None:
    with app.app_context():
        tenant = db.session.get(Tenant, world.b.id)
        user = services.find_user(world.email("a_officer"))
        assert tenant is not None
        assert user is not None
        with scoped(tenant.id):
            services.add_membership(tenant, user, Role.OFFICER, actor=SYSTEM)
        db.session.commit()
    response = sign_in(client, world.email("a_officer"))
    assert response.headers["Location"] == "/"
    start = client.get("/")
    assert "West Midlands" in start.text
    assert "Durham" in start.text


def test_wrong_password_shows_error_summary_and_changes_nothing(client, world: World) -> None:
    response = sign_in(client, world.email("a_officer"), "not-the-password")
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert "Enter a correct email address and password" in response.text
    assert client.get("/west-midlands/").status_code == 302


def test_empty_form_names_each_missing_field(client, world: World) -> None:
    page = client.get("/sign-in")
    response = client.post("/sign-in", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 400
    assert "Enter your email address" in response.text
    assert "Enter your password" in response.text


def test_session_is_renewed_at_sign_in(client, world: World) -> None:
    client.get("/sign-in")
    with client.session_transaction() as session:
        session["planted"] = "by-an-attacker"
    sign_in(client, world.email("a_officer"))
    with client.session_transaction() as session:
        assert "planted" not in session


def test_form_without_csrf_token_is_refused(client, world: World) -> None:
    response = client.post(
        "/sign-in", data={"email": world.email("a_officer"), "password": PASSWORD}
    )
    assert response.status_code == 400
    assert client.get("/west-midlands/").status_code == 302


def _copy_cookie(app: Flask, source) -> object:
    """A second client carrying the same session cookie: a stolen copy."""
    thief = app.test_client()
    cookie = source.get_cookie("diversion_session")
    thief.set_cookie("diversion_session", cookie.value)
    return thief


def test_sign_out_ends_copied_sessions_too(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    thief = _copy_cookie(app, client)
    assert thief.get("/west-midlands/").status_code == 200
    post_form(client, "/west-midlands/", "/sign-out")
    assert client.get("/west-midlands/").status_code == 302
    assert thief.get("/west-midlands/").status_code == 302


def test_deactivation_ends_sessions_on_next_request(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    assert client.get("/west-midlands/").status_code == 200
    admin = app.test_client()
    sign_in(admin, world.email("platform_admin"))
    user_id = world.users["a_officer"].id
    response = post_form(admin, "/admin/people/", f"/admin/people/{user_id}/deactivate")
    assert response.status_code == 302
    assert client.get("/west-midlands/").status_code == 302
    assert sign_in(client, world.email("a_officer")).status_code == 400


def test_sign_in_is_rate_limited(database, world: World) -> None:
    app = make_app(database, SIGN_IN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    responses = [sign_in(client, world.email("a_officer"), "wrong-password") for _ in range(4)]
    assert [r.status_code for r in responses] == [400, 400, 400, 429]
    assert "Too many attempts" in responses[-1].text
    # Even the right password is refused until the window passes.
    assert sign_in(client, world.email("a_officer")).status_code == 429
    with app.app_context():
        db.engine.dispose()


def _from(address: str) -> dict[str, str]:
    return {"REMOTE_ADDR": address}


def _sign_in_from(app: Flask, address: str, email: str, password: str = PASSWORD) -> int:
    client = app.test_client()
    client.environ_base.update(_from(address))
    return int(sign_in(client, email, password).status_code)


def test_successful_sign_ins_never_count_towards_the_limit(database, world: World) -> None:
    """A trainer signs in a room of officers from one address: none is refused."""
    app = make_app(database, SIGN_IN_RATE_LIMIT="2 per minute", SIGN_IN_ACCOUNT_RATE_LIMIT="2 per minute")
    room = "192.0.2.10"
    codes = [_sign_in_from(app, room, world.email(who)) for who in
             ("a_officer", "a_supervisor", "a_force_admin", "b_officer", "b_supervisor", "a_officer", "a_officer")]
    assert codes == [302] * 7
    # Failures from that address still count, and the limit then holds for it.
    assert [_sign_in_from(app, room, world.email("a_officer"), "wrong-password") for _ in range(3)] == [400, 400, 429]
    with app.app_context():
        db.engine.dispose()


def test_failed_sign_ins_are_limited_per_account_from_any_address(database, world: World) -> None:
    app = make_app(database, SIGN_IN_RATE_LIMIT="100 per minute", SIGN_IN_ACCOUNT_RATE_LIMIT="2 per minute")
    victim = world.email("a_officer")
    codes = [_sign_in_from(app, f"198.51.100.{n}", victim, "wrong-password") for n in range(3)]
    assert codes == [400, 400, 429]
    # The account is held up whatever the address and the password (the case of the email does not matter)...
    assert _sign_in_from(app, "203.0.113.9", victim.upper()) == 429
    # ...and only that account: another signs in from the same address.
    assert _sign_in_from(app, "198.51.100.1", world.email("a_supervisor")) == 302
    with app.app_context():
        db.engine.dispose()


def test_failed_sign_ins_are_limited_per_address_across_accounts(database, world: World) -> None:
    app = make_app(database, SIGN_IN_RATE_LIMIT="3 per minute", SIGN_IN_ACCOUNT_RATE_LIMIT="100 per minute")
    address = "198.51.100.77"
    codes = [_sign_in_from(app, address, world.email(who), "wrong-password")
             for who in ("a_officer", "a_supervisor", "b_officer", "b_supervisor")]
    assert codes == [400, 400, 400, 429]
    assert _sign_in_from(app, address, world.email("a_force_admin")) == 429
    assert _sign_in_from(app, "198.51.100.78", world.email("a_force_admin")) == 302  # another address is not
    with app.app_context():
        db.engine.dispose()


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.skipif(not _redis_available(), reason="Redis is not listening on 127.0.0.1:6379")
def test_rate_limit_is_shared_through_redis(database, world: World) -> None:
    """Two app instances (two workers) share one count when storage is Redis."""
    uri = "redis://127.0.0.1:6379/15"
    redis.Redis.from_url(uri).flushdb()
    first = make_app(database, SIGN_IN_RATE_LIMIT="2 per minute", RATELIMIT_STORAGE_URI=uri)
    codes = [sign_in(first.test_client(), world.email("a_officer"), "wrong-password").status_code
             for _ in range(2)]
    second = make_app(database, SIGN_IN_RATE_LIMIT="2 per minute", RATELIMIT_STORAGE_URI=uri)
    codes.append(sign_in(second.test_client(), world.email("a_officer"), "wrong").status_code)
    assert codes == [400, 400, 429]
    redis.Redis.from_url(uri).flushdb()
    for instance in (first, second):
        with instance.app_context():
            db.engine.dispose()


def test_password_is_stored_as_argon2(app: Flask, world: World) -> None:
    with app.app_context():
        user = db.session.get(User, world.users["a_officer"].id)
        assert user is not None
        assert user.password_hash is not None
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert services.authenticate(world.email("a_officer"), PASSWORD) is not None
