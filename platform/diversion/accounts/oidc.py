"""The OpenID Connect client side of a force's single sign-on: the authorization
code flow with PKCE (S256), ``state`` and ``nonce``, and the ID token's checks.

Authlib builds the authorization request, the PKCE challenge and the token
request; joserfc checks the ID token. Every call to the provider (discovery,
its key set, its token endpoint) goes through ``diversion.outbound``: checked,
pinned, never following a redirect, so an issuer typed by a force admin
cannot reach what only the platform can reach.

What is refused, each as ``SignInRefused`` with a reason for the audit log:

- a discovery document whose ``issuer`` is not exactly the force's issuer
  (the issuer is pinned), or that lacks an endpoint, or whose endpoints the
  outbound rules refuse;
- a token answer that is not a success, or carries no ID token;
- an ID token not signed by a key of the issuer's key set (``alg`` none and
  symmetric algorithms are not accepted), or whose ``iss`` is not the issuer,
  whose ``aud`` does not hold the force's client id (and, with several
  audiences, whose ``azp`` is not it), which has expired or was issued in the
  future, which has no subject, or whose ``nonce`` is not the one this
  browser's sign-in sent.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import current_app
from flask_babel import gettext as _
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from diversion import outbound
from diversion.accounts.sso import SignInRefused
from diversion.forms import lazy_gettext as _l

SCOPE = "openid email profile"
# Asymmetric only: a symmetric (HS*) token would be checked with the client
# secret, which the platform holds too; ``none`` is never accepted.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS = 60
READ_LIMIT = 512 * 1024
UNREACHABLE = _l("Your force's identity provider could not be reached just now. Try again in a few minutes; if it "
                 "keeps happening, tell your force's admin.")


@dataclass(frozen=True)
class ProviderMetadata:
    """What the issuer's discovery document says, once checked."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class Pending:
    """One browser's sign-in in progress: kept in its session until the callback."""

    state: str
    nonce: str
    code_verifier: str

    @classmethod
    def new(cls) -> Pending:
        return cls(state=generate_token(43), nonce=generate_token(43), code_verifier=generate_token(64))


def _timeout() -> float:
    return float(current_app.config.get("SSO_TIMEOUT_SECONDS", 10.0))


def _get_json(url: str, rules: outbound.Policy, *, what: str) -> dict[str, Any]:
    answer = outbound.request("GET", url, rules=rules, timeout=_timeout(), read_limit=READ_LIMIT,
                              headers={"Accept": "application/json"})
    if answer.result is not outbound.Result.ANSWERED or answer.status != 200:
        raise SignInRefused(f"{what}_unreachable", str(UNREACHABLE))
    try:
        data = json.loads(answer.body)
    except ValueError:
        raise SignInRefused(f"{what}_unreadable", str(UNREACHABLE)) from None
    if not isinstance(data, dict):
        raise SignInRefused(f"{what}_unreadable", str(UNREACHABLE))
    return data


def discovery_url(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


def discover(issuer: str, rules: outbound.Policy) -> ProviderMetadata:
    """The issuer's endpoints, from its discovery document; refuses a document
    naming another issuer, or lacking an endpoint, or with one the rules refuse."""
    document = _get_json(discovery_url(issuer), rules, what="discovery")
    if document.get("issuer") != issuer:
        raise SignInRefused("issuer_mismatch", _("Your force's identity provider names itself differently from the "
                                               "issuer your force set up, so the platform does not trust it. "
                                               "Tell your force's admin."))
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str):
            raise SignInRefused("discovery_incomplete", str(UNREACHABLE))
        try:
            outbound.check(value, rules)
        except outbound.Refused:
            raise SignInRefused("endpoint_refused", _("Your force's identity provider sends the platform to an "
                                                    "address it may not call. Tell your force's admin.")) from None
        endpoints[name] = value
    return ProviderMetadata(issuer=issuer, **endpoints)


def authorization_url(metadata: ProviderMetadata, *, client_id: str, redirect_uri: str, pending: Pending) -> str:
    """Where the browser goes to sign in: code flow, PKCE S256, state and nonce."""
    return str(prepare_grant_uri(
        metadata.authorization_endpoint, client_id, "code", redirect_uri=redirect_uri, scope=SCOPE,
        state=pending.state, nonce=pending.nonce,
        code_challenge=create_s256_code_challenge(pending.code_verifier), code_challenge_method="S256"))


def exchange_code(metadata: ProviderMetadata, *, client_id: str, client_secret: str, code: str,
                  redirect_uri: str, pending: Pending, rules: outbound.Policy) -> str:
    """The ID token the token endpoint gives for ``code`` (client_secret_basic, with the PKCE verifier)."""
    body = prepare_token_request("authorization_code", code=code, redirect_uri=redirect_uri,
                                 code_verifier=pending.code_verifier)
    # RFC 6749 2.3.1: each part form-encoded before the Basic encoding.
    credentials = f"{urlencode({'': client_id})[1:]}:{urlencode({'': client_secret})[1:]}"
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
               "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
    answer = outbound.request("POST", metadata.token_endpoint, rules=rules, timeout=_timeout(),
                              body=str(body).encode(), headers=headers, read_limit=READ_LIMIT)
    if answer.result is not outbound.Result.ANSWERED or answer.status is None:
        raise SignInRefused("token_unreachable", str(UNREACHABLE))
    if answer.status != 200:
        raise SignInRefused("token_refused", _("Your force's identity provider did not accept this sign-in. "
                                             "Start again from the sign-in page."))
    try:
        data = json.loads(answer.body)
    except ValueError:
        data = None
    token = data.get("id_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise SignInRefused("no_id_token", _("Your force's identity provider did not say who signed in. "
                                           "Start again from the sign-in page."))
    return token


def _unverified_header(id_token: str) -> dict[str, Any]:
    try:
        part = id_token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, TypeError):
        raise SignInRefused("id_token_signature", str(INVALID)) from None
    if not isinstance(header, dict):
        raise SignInRefused("id_token_signature", str(INVALID))
    return header


def _verified(id_token: str, keys: KeySet) -> dict[str, Any]:
    """The claims of an ID token signed by a key of ``keys``: the key its ``kid``
    names or, for a token that names none (some providers send none), any key
    of the set that verifies it."""
    candidates: list[Any] = [keys] if _unverified_header(id_token).get("kid") else list(keys.keys)
    for key in candidates:
        try:
            return dict(jwt.decode(id_token, key, algorithms=list(ALGORITHMS)).claims)
        except (JoseError, ValueError, TypeError, KeyError):
            continue
    raise SignInRefused("id_token_signature", str(INVALID))


INVALID = _l("The platform could not confirm who signed in at your force's identity provider. Start again from "
             "the sign-in page; if it keeps happening, tell your force's admin.")


def checked_claims(id_token: str, metadata: ProviderMetadata, *, client_id: str, nonce: str,
                   rules: outbound.Policy) -> dict[str, Any]:
    """The ID token's claims, once its signature (against the issuer's key set),
    ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat``, ``sub`` and ``nonce`` pass."""
    try:
        keys = KeySet.import_key_set(_get_json(metadata.jwks_uri, rules, what="jwks"))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError):
        raise SignInRefused("jwks_unreadable", str(UNREACHABLE)) from None
    claims = _verified(id_token, keys)
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": metadata.issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as error:
        claim = getattr(error, "claim", None) or "claims"
        raise SignInRefused(f"id_token_{claim}", str(INVALID)) from None
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise SignInRefused("id_token_azp", str(INVALID))
    if not isinstance(claims.get("sub"), str) or not claims["sub"] or len(claims["sub"]) > 255:
        raise SignInRefused("id_token_sub", str(INVALID))
    return claims
