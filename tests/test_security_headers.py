"""Headers and cookies every response carries."""

from __future__ import annotations

from cryptography.fernet import Fernet

from diversion import create_app
from tests.conftest import World, make_app, sign_in


def _csp(response) -> dict[str, str]:
    directives = response.headers["Content-Security-Policy"].split(";")
    return {d.strip().split(" ", 1)[0]: d.strip().partition(" ")[2] for d in directives if d.strip()}


def test_pages_carry_strict_headers(client, world: World) -> None:
    response = client.get("/sign-in")
    csp = _csp(response)
    assert csp["script-src"] == "'self'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in response.text  # no inline script anywhere


def test_no_hsts_in_development(database) -> None:
    app = make_app(database, ENV_NAME="development", HSTS=False)
    response = app.test_client().get("/sign-in", base_url="https://localhost")
    assert "Strict-Transport-Security" not in response.headers


def test_production_sends_hsts_and_secure_cookies(database, world: World, monkeypatch) -> None:
    monkeypatch.setenv("DIVERSION_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 48)
    monkeypatch.setenv("DATABASE_URL", database.app_url)
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", database.insights_url)
    monkeypatch.setenv("PERSONAL_DATA_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("PERSON_KEY_SECRET", "p" * 40)
    app = create_app({"PASSWORD_HASHING": "fast-insecure"})
    client = app.test_client()
    response = sign_in_over_https(client, world.email("a_officer"))
    assert "max-age=" in response.headers["Strict-Transport-Security"]
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    from diversion.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def sign_in_over_https(client, email: str):
    from tests.conftest import PASSWORD, csrf_token

    page = client.get("/sign-in", base_url="https://localhost")
    # Over HTTPS the CSRF check also wants a same-origin Referer, as browsers send.
    return client.post("/sign-in", base_url="https://localhost",
                       headers={"Referer": "https://localhost/sign-in"}, data={
        "email": email, "password": PASSWORD, "csrf_token": csrf_token(page.text)})


def test_development_cookies_are_httponly_and_samesite(client, world: World) -> None:
    response = sign_in(client, world.email("a_officer"))
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_errors_show_no_stack_trace(client, world: World) -> None:
    response = client.get("/no-such-force/members/")
    assert response.status_code == 404
    assert "Traceback" not in response.text
    assert "Page not found" in response.text
