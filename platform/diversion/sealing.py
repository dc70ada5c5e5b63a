"""Secrets the platform must read back (a webhook's signing secret, a force's
sign-on client secret, people's details): sealed with the platform's data keys.

``PERSONAL_DATA_KEYS`` holds comma-separated Fernet keys: the first seals,
every one opens, so that keys can be rotated. This module imports no feature
package, so that any feature can seal what it keeps.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


def data_cipher() -> MultiFernet:
    """The platform's data keys (``PERSONAL_DATA_KEYS``): the first encrypts,
    every key decrypts (so keys can be rotated)."""
    return _cipher_of(str(current_app.config["PERSONAL_DATA_KEYS"]))


@lru_cache(maxsize=8)
def _cipher_of(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])


class Unopenable(ValueError):  # noqa: N818 - reads as the condition it reports
    """A sealed secret that no configured key opens."""


def seal_text(value: str) -> str:
    return data_cipher().encrypt(value.encode()).decode()


def open_text(sealed: str) -> str:
    """The secret ``seal_text`` sealed; refuses (``Unopenable``) one no configured key opens."""
    try:
        return data_cipher().decrypt(sealed.encode()).decode()
    except InvalidToken as error:
        raise Unopenable("a sealed secret cannot be decrypted with the configured keys") from error
