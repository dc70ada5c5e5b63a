"""Signing in through a force's own identity provider: a real OpenID provider
(``oidc-provider-mock``) on 127.0.0.1, behind the proxy of ``tests.oidc``.

A good sign-in works, with PKCE (S256) proven from the requests the provider
received; every bad answer (another issuer, another audience, an expired
token, another nonce, a replayed or missing state, a tampered signature,
force B's code at force A's callback) is refused with a plain page, recorded,
and signs no one in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select

from diversion.accounts import sso
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ForceMembership, Role, User
from diversion.audit.models import AuditEvent
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant
from tests.conftest import PASSWORD, World, csrf_token, sign_in
from tests.oidc import Proxy, authorize, put_user

SECRET = "client-secret-of-the-force"


def _use_provider(app: Flask, world: World, proxy: Proxy, *, new_people: str = "officer",
                  compulsory: bool = False, force: str = "a") -> None:
    app.config.update(SSO_ALLOW_HTTP=True, OUTBOUND_TEST_ALLOW_HOSTS=("127.0.0.1",))
    ref = getattr(world, force)
    with app.app_context(), scoped(ref.id):
        tenant = db.session.get(Tenant, ref.id)
        assert tenant is not None
        sso.configure_sign_on(tenant, issuer=proxy.url, client_id=f"{ref.slug}-app", client_secret=SECRET,
                              compulsory=compulsory, new_people=new_people, actor=SYSTEM)
        db.session.commit()


@pytest.fixture
def provider(app: Flask, world: World, oidc: Proxy) -> Proxy:
    """Both forces sign in through the provider (new people become officers)."""
    _use_provider(app, world, oidc, force="a")
    _use_provider(app, world, oidc, force="b")
    put_user(oidc, "sub-ada", {"email": "ada@force-a.example.org", "name": "Ada Constable"})
    return oidc


def begin(client: FlaskClient, force: str = "west-midlands", query: str = "") -> str:
    started = client.get(f"/{force}/sign-in/sso{query}")
    assert started.status_code == 302, started.text[:500]
    return str(started.headers["Location"])


def come_back(client: FlaskClient, back: str) -> Any:
    parts = urlsplit(back)
    return client.get(f"{parts.path}?{parts.query}")


def sign_in_through(client: FlaskClient, proxy: Proxy, subject: str = "sub-ada",
                    force: str = "west-midlands") -> Any:
    return come_back(client, authorize(proxy, begin(client, force), subject))


def signed_in_user(client: FlaskClient) -> str | None:
    with client.session_transaction() as session:
        return session.get("_user_id")


def _events(database: Any, action: str) -> list[dict[str, Any]]:
    engine = create_engine(database.inspector_url)
    with engine.connect() as connection:
        rows = connection.execute(select(AuditEvent.__table__).where(AuditEvent.action == action)
                                  .order_by(AuditEvent.occurred_at)).mappings().all()
    engine.dispose()
    return [dict(row) for row in rows]


def _user(app: Flask, email: str) -> User | None:
    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


def assert_refused(database: Any, client: FlaskClient, answer: Any, reason: str, words: str,
                   status: int = 403, signed_before: int = 0) -> None:
    assert answer.status_code == status, answer.text[:800]
    assert "You could not be signed in" in answer.text
    assert words in answer.text
    assert signed_in_user(client) is None
    assert client.get("/west-midlands/").status_code == 302  # to the sign-in page
    failures = _events(database, "auth.sign_in_failed")
    assert failures, "the refusal is recorded"
    assert failures[-1]["details"] == {"method": "sso", "reason": reason}
    assert len(_events(database, "auth.signed_in")) == signed_before


# ---------------------------------------------------------------- a good sign-in

def test_a_new_person_signs_in_and_joins_the_force_with_its_default_role(
    app: Flask, database: Any, client: FlaskClient, world: World, provider: Proxy,
) -> None:
    answer = sign_in_through(client, provider)
    assert answer.status_code == 302, answer.text[:800]
    assert answer.headers["Location"] == "/west-midlands/"
    assert signed_in_user(client) is not None
    home = client.get("/west-midlands/")
    assert home.status_code == 200
    assert "ada@force-a.example.org" in home.text
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "ada@force-a.example.org"))
        assert user is not None
        assert user.password_hash is None
        assert user.name == "Ada Constable"
        identity = db.session.scalar(select(sso.SignOnIdentity).where(sso.SignOnIdentity.user_id == user.id))
        assert identity is not None
        assert (identity.issuer, identity.subject) == (provider.url, "sub-ada")
        with scoped(world.a.id):
            assert set(db.session.scalars(select(ForceMembership.role).where(ForceMembership.user_id == user.id))) \
                == {Role.OFFICER}
        with scoped(world.b.id):  # only into that force
            assert not db.session.scalars(select(ForceMembership).where(ForceMembership.user_id == user.id)).all()
    signed = _events(database, "auth.signed_in")
    assert len(signed) == 1
    assert signed[0]["details"]["method"] == "sso"
    assert signed[0]["tenant_id"] == world.a.id
    assert client.get("/durham/").status_code == 404  # a member of force A only
    # The second time, the same account, found by (issuer, subject).
    client.post("/sign-out", data={"csrf_token": csrf_token(client.get("/west-midlands/").text)})
    assert sign_in_through(client, provider).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "ada@force-a.example.org")) is not None
        assert len(db.session.scalars(select(sso.SignOnIdentity)).all()) == 1


def test_pkce_s256_is_sent_and_proven(client: FlaskClient, provider: Proxy) -> None:
    assert sign_in_through(client, provider).status_code == 302
    [asked] = provider.requests_to("/oauth2/authorize")
    [token] = provider.requests_to("/oauth2/token")
    assert asked.query["response_type"] == "code"
    assert asked.query["code_challenge_method"] == "S256"
    assert asked.query["state"]
    assert asked.query["nonce"]
    assert asked.query["client_id"] == "west-midlands-app"
    verifier = token.form["code_verifier"]
    assert 43 <= len(verifier) <= 128
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert asked.query["code_challenge"] == challenge
    assert token.form["grant_type"] == "authorization_code"
    assert token.form["redirect_uri"] == asked.query["redirect_uri"]
    assert "client_secret" not in token.form  # sent in the Authorization header, never in the body
    assert token.headers["Authorization"].startswith("Basic ")
    decoded = base64.b64decode(token.headers["Authorization"].removeprefix("Basic ")).decode()
    assert decoded == f"west-midlands-app:{SECRET}"


# ---------------------------------------------------------------- refusals

def test_a_discovery_document_naming_another_issuer_is_refused(
    database: Any, client: FlaskClient, provider: Proxy,
) -> None:
    provider.discovery_issuer = "https://elsewhere.example.org"
    answer = client.get("/west-midlands/sign-in/sso")
    assert_refused(database, client, answer, "issuer_mismatch", "names itself differently")
    assert not provider.requests_to("/oauth2/token")


def test_discovery_changed_between_start_and_callback_is_refused(
    database: Any, client: FlaskClient, provider: Proxy,
) -> None:
    back = authorize(provider, begin(client), "sub-ada")
    provider.discovery_issuer = "https://elsewhere.example.org"
    assert_refused(database, client, come_back(client, back), "issuer_mismatch", "names itself differently")


@pytest.mark.parametrize(("change", "resign", "reason"), [
    (lambda claims: {**claims, "aud": "someone-else-app"}, True, "id_token_aud"),
    (lambda claims: {**claims, "aud": ["someone-else-app", "another-app"]}, True, "id_token_aud"),
    (lambda claims: {**claims, "exp": int(time.time()) - 600, "iat": int(time.time()) - 4200}, True,
     "id_token_exp"),
    (lambda claims: {**claims, "nonce": "not-the-nonce-sent"}, True, "id_token_nonce"),
    (lambda claims: {k: v for k, v in claims.items() if k != "nonce"}, True, "id_token_nonce"),
    (lambda claims: {**claims, "iss": "https://elsewhere.example.org"}, True, "id_token_iss"),
    (lambda claims: {**claims, "sub": "sub-someone-else"}, False, "id_token_signature"),
], ids=["wrong-audience", "wrong-audiences", "expired", "bad-nonce", "no-nonce", "wrong-iss", "tampered"])
def test_a_bad_id_token_is_refused(database: Any, client: FlaskClient, provider: Proxy, change: Any,
                                   resign: bool, reason: str) -> None:
    provider.id_token, provider.resign = change, resign
    answer = sign_in_through(client, provider)
    assert_refused(database, client, answer, reason, "could not confirm who signed in")
    assert provider.requests_to("/oauth2/token"), "refused after the token call, on the ID token"


def _unsigned(token: str) -> str:
    """The same claims under ``alg: none``, with no signature."""
    payload = token.split(".")[1]
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return f"{header}.{payload}."


def _hmac_signed_with_the_secret(token: str) -> str:
    """The same claims signed HS256 with the client secret (which the platform holds too)."""
    from joserfc import jwt
    from joserfc.jwk import OctKey

    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(SECRET))


@pytest.mark.parametrize("replace", [_unsigned, _hmac_signed_with_the_secret, lambda _t: "not-a-token"],
                         ids=["alg-none", "hs256-with-the-client-secret", "garbage"])
def test_an_id_token_not_signed_by_the_issuers_keys_is_refused(
    database: Any, client: FlaskClient, provider: Proxy, replace: Any,
) -> None:
    provider.raw_token = replace
    answer = sign_in_through(client, provider)
    assert_refused(database, client, answer, "id_token_signature", "could not confirm who signed in")


def test_a_re_signed_good_token_passes(client: FlaskClient, provider: Proxy) -> None:
    """The proxy's own key is a key of the issuer's set: the refusals above are about the claims."""
    provider.id_token = lambda claims: claims
    assert sign_in_through(client, provider).status_code == 302
    assert signed_in_user(client) is not None


def test_a_missing_state_is_refused(database: Any, client: FlaskClient, provider: Proxy) -> None:
    back = authorize(provider, begin(client), "sub-ada")
    query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    answer = client.get(f"/west-midlands/sign-in/sso/callback?code={query['code']}")
    assert_refused(database, client, answer, "state_missing", "Start again", status=400)
    assert not provider.requests_to("/oauth2/token")


def test_a_callback_with_no_sign_in_started_is_refused(database: Any, client: FlaskClient, provider: Proxy) -> None:
    answer = client.get("/west-midlands/sign-in/sso/callback?code=abc&state=xyz")
    assert_refused(database, client, answer, "state_missing", "Start again", status=400)


def test_a_replayed_state_is_refused(app: Flask, database: Any, client: FlaskClient, provider: Proxy) -> None:
    back = authorize(provider, begin(client), "sub-ada")
    assert come_back(client, back).status_code == 302
    client.post("/sign-out", data={"csrf_token": csrf_token(client.get("/west-midlands/").text)})
    replayed = come_back(client, back)  # the same answer again: its state was good once
    assert replayed.status_code == 400
    assert signed_in_user(client) is None
    # And inside a new sign-in of the same browser: the old state is not the new one.
    begin(client)
    again = come_back(client, back)
    assert again.status_code == 400
    assert "You could not be signed in" in again.text
    assert signed_in_user(client) is None
    reasons = [e["details"]["reason"] for e in _events(database, "auth.sign_in_failed")]
    assert reasons == ["state_missing", "state_mismatch"]
    assert len(provider.requests_to("/oauth2/token")) == 1


def test_force_bs_code_at_force_as_callback_is_refused(
    database: Any, client: FlaskClient, provider: Proxy,
) -> None:
    back = authorize(provider, begin(client, "durham"), "sub-ada")
    parts = urlsplit(back)
    assert parts.path == "/durham/sign-in/sso/callback"
    answer = client.get(f"/west-midlands/sign-in/sso/callback?{parts.query}")
    assert_refused(database, client, answer, "state_other_force", "started for another force", status=400)
    assert not provider.requests_to("/oauth2/token")


def test_force_bs_code_with_force_as_own_state_is_refused(
    database: Any, client: FlaskClient, provider: Proxy,
) -> None:
    """B's code, sent with the state of a sign-in A started: the provider refuses
    it to A's client, since it was given to B's."""
    b_code = parse_qs(urlsplit(authorize(provider, begin(client, "durham"), "sub-ada")).query)["code"][0]
    a_state = parse_qs(urlsplit(begin(client)).query)["state"][0]
    answer = client.get(f"/west-midlands/sign-in/sso/callback?code={b_code}&state={a_state}")
    assert_refused(database, client, answer, "token_refused", "did not accept this sign-in")
    [token] = provider.requests_to("/oauth2/token")
    assert token.form["code"] == b_code


def test_the_provider_saying_no_is_refused(database: Any, client: FlaskClient, provider: Proxy) -> None:
    state = parse_qs(urlsplit(begin(client)).query)["state"][0]
    answer = client.get(f"/west-midlands/sign-in/sso/callback?error=access_denied&state={state}")
    assert_refused(database, client, answer, "provider_error", "did not sign you in")


# ---------------------------------------------------------------- the force's choices

def test_a_force_that_refuses_new_people_refuses_them(
    app: Flask, database: Any, client: FlaskClient, world: World, oidc: Proxy,
) -> None:
    _use_provider(app, world, oidc, new_people="refuse")
    put_user(oidc, "sub-new", {"email": "new@force-a.example.org", "name": "New Person"})
    answer = sign_in_through(client, oidc, "sub-new")
    assert_refused(database, client, answer, "not_invited", "by invitation only")
    assert _user(app, "new@force-a.example.org") is None


def test_an_email_claim_never_opens_an_existing_account(
    app: Flask, database: Any, client: FlaskClient, world: World, provider: Proxy,
) -> None:
    """A provider account whose email is a member's address does not become that member."""
    put_user(provider, "sub-impostor", {"email": world.email("a_force_admin"), "name": "Impostor"})
    answer = sign_in_through(client, provider, "sub-impostor")
    assert_refused(database, client, answer, "email_taken", "already an account with your email address")
    with app.app_context():
        assert not db.session.scalars(select(sso.SignOnIdentity)).all()


def test_a_member_joins_their_account_by_signing_in_with_their_password_first(
    app: Flask, database: Any, client: FlaskClient, world: World, provider: Proxy,
) -> None:
    put_user(provider, "sub-officer", {"email": world.email("a_officer"), "name": "A Officer"})
    assert sign_in(client, world.email("a_officer")).status_code == 302
    answer = sign_in_through(client, provider, "sub-officer")
    assert answer.status_code == 302
    with app.app_context():
        identity = db.session.scalar(select(sso.SignOnIdentity).where(sso.SignOnIdentity.subject == "sub-officer"))
        assert identity is not None
        assert identity.user_id == world.users["a_officer"].id
    assert _events(database, "sign_on.identity_linked")[-1]["details"]["how"] == "password"


def test_compulsory_sign_on_refuses_passwords_and_joins_at_the_first_sign_in(
    app: Flask, database: Any, client: FlaskClient, world: World, oidc: Proxy,
) -> None:
    _use_provider(app, world, oidc, compulsory=True, new_people="refuse")
    put_user(oidc, "sub-officer", {"email": "officer-at-idp@force-a.example.org", "name": "A Officer"})
    refused = sign_in(client, world.email("a_officer"))
    assert refused.status_code == 400
    assert "asks its members to sign in with the force&#39;s own account" in refused.text
    assert "Sign in with West Midlands Police&#39;s account" in refused.text or \
        "Sign in with West Midlands" in refused.text
    assert signed_in_user(client) is None
    failed = _events(database, "auth.sign_in_failed")[-1]
    assert failed["details"] == {"reason": "sso_compulsory", "forces": ["west-midlands"]}
    # Other people (force B, the platform admin) still use their passwords.
    other = app.test_client()
    assert sign_in(other, world.email("b_officer")).status_code == 302
    # The right password, then the force's account: the two are joined, and the officer is in.
    answer = sign_in_through(client, oidc, "sub-officer")
    assert answer.status_code == 302, answer.text[:500]
    home = client.get("/west-midlands/")
    assert home.status_code == 200
    with app.app_context():
        identity = db.session.scalar(select(sso.SignOnIdentity).where(sso.SignOnIdentity.subject == "sub-officer"))
        assert identity is not None
        assert identity.user_id == world.users["a_officer"].id
    # A wrong password proves nothing: nothing to join to.
    stranger = app.test_client()
    sign_in(stranger, world.email("a_supervisor"), "wrong-password-here")
    put_user(oidc, "sub-super", {"email": "super-at-idp@force-a.example.org"})
    assert sign_in_through(stranger, oidc, "sub-super").status_code == 403


def _set_status(app: Flask, world: World, status: ForceStatus) -> None:
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        tenant.status = status
        db.session.commit()


def test_a_suspended_force_refuses_sign_on(app: Flask, database: Any, client: FlaskClient, world: World,
                                          provider: Proxy) -> None:
    back = authorize(provider, begin(client), "sub-ada")
    _set_status(app, world, ForceStatus.SUSPENDED)
    answer = come_back(client, back)
    assert_refused(database, client, answer, "force_suspended", "closed for now")
    again = client.get("/west-midlands/sign-in/sso")
    assert again.status_code == 403
    assert "closed for now" in again.text
    assert not provider.requests_to("/oauth2/token")


def test_a_draft_force_is_not_there(app: Flask, database: Any, client: FlaskClient, world: World,
                                    provider: Proxy) -> None:
    back = authorize(provider, begin(client), "sub-ada")
    _set_status(app, world, ForceStatus.DRAFT)
    for answer in (come_back(client, back), client.get("/west-midlands/sign-in/sso")):
        assert answer.status_code == 404
        assert "Page not found" in answer.text
        assert world.a.name not in answer.text
        assert "#1f3f8f" not in answer.text  # nor its colour
    assert signed_in_user(client) is None
    assert not provider.requests_to("/oauth2/token")
    assert not _events(database, "auth.signed_in")


def test_the_sign_in_page_lists_active_forces_with_sign_on(
    app: Flask, client: FlaskClient, world: World, oidc: Proxy,
) -> None:
    assert "account</a>" not in client.get("/sign-in").text
    _use_provider(app, world, oidc, force="a")
    page = client.get("/sign-in").text
    assert 'href="/west-midlands/sign-in/sso"' in page
    assert "/durham/sign-in/sso" not in page
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        tenant.status = ForceStatus.SUSPENDED
        db.session.commit()
    assert "/west-midlands/sign-in/sso" not in client.get("/sign-in").text
    assert client.get("/cleveland/sign-in/sso").status_code == 404
    assert client.get("/durham/sign-in/sso").status_code == 404  # no sign-on set up


def test_a_deactivated_person_is_refused(app: Flask, database: Any, client: FlaskClient, provider: Proxy) -> None:
    assert sign_in_through(client, provider).status_code == 302
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "ada@force-a.example.org"))
        assert user is not None
        user.active = False
        db.session.commit()
    fresh = app.test_client()
    assert_refused(database, fresh, sign_in_through(fresh, provider), "inactive", "deactivated", signed_before=1)


def test_a_password_is_still_a_password(client: FlaskClient, world: World, provider: Proxy) -> None:
    """Sign-on that is not compulsory leaves passwords alone."""
    assert sign_in(client, world.email("a_officer"), PASSWORD).status_code == 302


# ---------------------------------------------------------------- invitations

def _invite(app: Flask, world: World, email: str, role: Role = Role.SUPERVISOR, force: str = "a") -> str:
    from diversion.accounts.invitations import invite_to_force

    ref = getattr(world, force)
    with app.app_context(), scoped(ref.id):
        tenant = db.session.get(Tenant, ref.id)
        assert tenant is not None
        _invitation, token = invite_to_force(tenant, email=email, name="Invited Person", role=role, actor=SYSTEM)
        db.session.commit()
    return token


def _invitation_used(app: Flask, world: World, token: str) -> bool:
    from diversion.accounts.invitations import find_force_invitation

    with app.app_context(), scoped(world.a.id):
        invitation = find_force_invitation(token)
        assert invitation is not None
        return invitation.used_at is not None


def _roles(app: Flask, world: World, email: str) -> set[Role]:
    with app.app_context(), scoped(world.a.id):
        user = db.session.scalar(select(User).where(User.email == email))
        assert user is not None
        return set(db.session.scalars(select(ForceMembership.role).where(ForceMembership.user_id == user.id)))


def test_an_invitation_is_taken_up_through_its_own_link_with_the_forces_account(
    app: Flask, database: Any, client: FlaskClient, world: World, oidc: Proxy,
) -> None:
    _use_provider(app, world, oidc, new_people="refuse")
    token = _invite(app, world, "invited@example.org")
    # The provider knows the person under another address: the invitation's is what counts.
    put_user(oidc, "sub-invited", {"email": "someone.else@idp.example.org", "name": "Ivy Invited"})
    back = authorize(oidc, begin(client, query=f"?invitation={token}"), "sub-invited")
    answer = come_back(client, back)
    assert answer.status_code == 302, answer.text[:800]
    assert client.get("/west-midlands/").status_code == 200
    assert _roles(app, world, "invited@example.org") == {Role.SUPERVISOR}
    assert _user(app, "someone.else@idp.example.org") is None
    assert _invitation_used(app, world, token)
    with app.app_context():
        user = _user(app, "invited@example.org")
        assert user is not None
        assert user.password_hash is None
        assert user.name == "Ivy Invited"
        identity = db.session.scalar(select(sso.SignOnIdentity).where(sso.SignOnIdentity.subject == "sub-invited"))
        assert identity is not None
        assert identity.user_id == user.id
    assert _events(database, "invitation.taken_up")
    # The link is good once.
    again = app.test_client()
    assert_refused(database, again, again.get(f"/west-midlands/sign-in/sso?invitation={token}"),
                   "invitation_unusable", "has been used", signed_before=1)
    # The account now signs in by its identity alone.
    fresh = app.test_client()
    assert sign_in_through(fresh, oidc, "sub-invited").status_code == 302


def test_an_invitation_is_never_taken_up_by_matching_the_email_claim(
    app: Flask, database: Any, client: FlaskClient, world: World, oidc: Proxy,
) -> None:
    _use_provider(app, world, oidc, new_people="refuse")
    token = _invite(app, world, "invited@example.org")
    put_user(oidc, "sub-claims-it", {"email": "invited@example.org", "name": "Claims It"})
    answer = sign_in_through(client, oidc, "sub-claims-it")  # no invitation link
    assert_refused(database, client, answer, "not_invited", "by invitation only")
    assert not _invitation_used(app, world, token)
    assert _user(app, "invited@example.org") is None


def test_an_invitation_of_force_a_opens_nothing_at_force_b(
    app: Flask, database: Any, client: FlaskClient, world: World, provider: Proxy,
) -> None:
    token = _invite(app, world, "invited@example.org")
    answer = client.get(f"/durham/sign-in/sso?invitation={token}")
    assert answer.status_code == 403
    assert "has been used, has expired or was withdrawn" in answer.text
    assert signed_in_user(client) is None
    assert not _invitation_used(app, world, token)


def test_an_invitation_to_an_address_with_an_account_needs_that_account_first(
    app: Flask, database: Any, client: FlaskClient, world: World, provider: Proxy,
) -> None:
    token = _invite(app, world, world.email("b_officer"), Role.OFFICER)
    put_user(provider, "sub-b-officer", {"email": world.email("b_officer")})
    refused = come_back(client, authorize(provider, begin(client, query=f"?invitation={token}"), "sub-b-officer"))
    assert_refused(database, client, refused, "email_taken", "with its password first")
    assert not _invitation_used(app, world, token)
    # Signed in with that account's password, the same link joins the identity and takes the invitation up.
    assert sign_in(client, world.email("b_officer")).status_code == 302
    answer = come_back(client, authorize(provider, begin(client, query=f"?invitation={token}"), "sub-b-officer"))
    assert answer.status_code == 302, answer.text[:800]
    assert _invitation_used(app, world, token)
    assert _roles(app, world, world.email("b_officer")) == {Role.OFFICER}


def test_the_invitation_offer_shows_only_for_a_force_that_signs_on(
    app: Flask, world: World, oidc: Proxy,
) -> None:
    from flask import g, render_template

    with app.test_request_context("/west-midlands/"), scoped(world.a.id):
        g.tenant = db.session.get(Tenant, world.a.id)
        html = render_template("accounts/_sign_on_offer.html", tenant=g.tenant, token="the-token")
        assert "Sign in with" not in html
    _use_provider(app, world, oidc)
    with app.test_request_context("/west-midlands/"), scoped(world.a.id):
        g.tenant = db.session.get(Tenant, world.a.id)
        html = render_template("accounts/_sign_on_offer.html", tenant=g.tenant, token="the-token")
        assert "/west-midlands/sign-in/sso?invitation=the-token" in html
        assert f"Sign in with {world.a.name}" in html


def test_a_name_from_the_provider_is_kept_to_plain_text(app: Flask, client: FlaskClient, provider: Proxy) -> None:
    put_user(provider, "sub-odd", {"email": "odd@force-a.example.org", "name": "Odd\x00 <b>Name</b>\n\tSecond line"})
    assert sign_in_through(client, provider, "sub-odd").status_code == 302
    user = _user(app, "odd@force-a.example.org")
    assert user is not None
    assert user.name == "Odd\ufffd <b>Name</b> Second line"
    assert "<b>" not in client.get("/west-midlands/").text.split("Signed in as", 1)[1][:300]


# ---------------------------------------------------------------- the outbound rules

@pytest.mark.parametrize("field", ["token_endpoint", "jwks_uri", "authorization_endpoint"])
@pytest.mark.parametrize("address", ["http://169.254.169.254/latest/meta-data", "http://10.0.0.7/token",
                                     "http://[::1]:5432/", "http://2130706434/"])
def test_a_provider_that_points_at_an_inside_address_is_refused(
    database: Any, client: FlaskClient, provider: Proxy, field: str, address: str,
) -> None:
    """Only the issuer's own host (127.0.0.1) is on the tests' allow-list: an endpoint elsewhere (127.0.0.2 too)
    inside is refused by the outbound rules before anything is sent there."""
    from tests.network import CONNECTIONS

    provider.discovery = {field: address}
    provider.recorded.clear()
    with CONNECTIONS.recording() as seen:
        answer = client.get("/west-midlands/sign-in/sso")
    assert_refused(database, client, answer, "endpoint_refused", "an address it may not call")
    # The discovery call (to the proxy, and the proxy's to the provider), and nothing else.
    assert set(seen) <= {("127.0.0.1", provider.port), ("127.0.0.1", provider.upstream)}
    assert [r.path for r in provider.recorded] == ["/.well-known/openid-configuration"]


def test_an_issuer_the_rules_no_longer_allow_is_not_called(
    app: Flask, database: Any, client: FlaskClient, provider: Proxy,
) -> None:
    """Saved while allowed, the issuer is checked again at each call: off the
    allow-list, 127.0.0.1 is an inside address, and nothing is sent."""
    from tests.network import CONNECTIONS

    app.config["OUTBOUND_TEST_ALLOW_HOSTS"] = ()
    provider.recorded.clear()
    with CONNECTIONS.recording() as seen:
        answer = client.get("/west-midlands/sign-in/sso")
    assert_refused(database, client, answer, "discovery_unreachable", "could not be reached")
    assert seen == []
    assert not provider.recorded


def test_the_invitation_page_offers_the_forces_account_and_its_button_takes_the_invitation_up(
    app: Flask, database: Any, client: FlaskClient, world: World, oidc: Proxy,
) -> None:
    token = _invite(app, world, "invited@example.org")
    page = client.get(f"/west-midlands/invitation/{token}")
    assert page.status_code == 200
    assert "Sign in with" not in page.text  # no sign-on set up yet
    _use_provider(app, world, oidc, new_people="refuse")
    page = client.get(f"/west-midlands/invitation/{token}")
    assert f"Sign in with {world.a.name}'s account" in page.text
    start = f"/west-midlands/sign-in/sso?invitation={token}"
    assert f'href="{start}"' in page.text
    put_user(oidc, "sub-from-page", {"email": "work@idp.example.org", "name": "From Page"})
    answer = come_back(client, authorize(oidc, begin(client, query=f"?invitation={token}"), "sub-from-page"))
    assert answer.status_code == 302, answer.text[:500]
    assert _invitation_used(app, world, token)
    assert _roles(app, world, "invited@example.org") == {Role.SUPERVISOR}
