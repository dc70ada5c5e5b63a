"""The OpenID provider (and its proxy) for the single sign-on tests."""

from tests.oidc import oidc, oidc_server

__all__ = ["oidc", "oidc_server"]
