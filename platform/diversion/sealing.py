"""Secrets the platform must read back (a webhook's signing secret, a force's
sign-on client secret, people's details): sealed with the platform's data keys.

``PERSONAL_DATA_KEYS`` holds comma-separated Fernet keys: the first seals,
every one opens, so that keys can be rotated. This module imports no feature
package, so that any feature can seal what it keeps.

Two forms. Text (``seal_text``): a Fernet token, for the few secrets kept in
text columns. Bytes (``seal_bytes``), for people's details, of which a force
keeps millions: one version byte, a 96-bit random nonce and AES-256-GCM
(ciphertext and its 16-byte tag), under a key derived from each Fernet key;
29 bytes more than the value, where a Fernet token in base64 takes about
twice the value and 90 bytes more, and one call into OpenSSL to make.
``open_bytes`` also opens a Fernet token kept as bytes (people sealed before
the bytes form). A random nonce is safe for far more values than a key will
seal (the limit is about four billion a key).
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

SEALED_BYTES = 0x01  # the first byte of the bytes form
FERNET_TOKEN = 0x80  # the first byte of a Fernet token (its version)
_NONCE_BYTES = 12


def data_cipher() -> MultiFernet:
    """The platform's data keys (``PERSONAL_DATA_KEYS``): the first encrypts,
    every key decrypts (so keys can be rotated)."""
    return _cipher_of(_keys_text())


def _keys_text() -> str:
    return str(current_app.config["PERSONAL_DATA_KEYS"])


def _keys(keys: str) -> list[str]:
    return [key.strip() for key in keys.split(",") if key.strip()]


@lru_cache(maxsize=8)
def _cipher_of(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _keys(keys)])


@lru_cache(maxsize=8)
def _ciphers_of(keys: str) -> tuple[AESGCM, ...]:
    """An AES-256-GCM cipher for each data key, its key derived from the whole Fernet key."""
    return tuple(AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sealed-bytes")
                        .derive(base64.urlsafe_b64decode(key))) for key in _keys(keys))


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


def seal_bytes(value: bytes) -> bytes:
    """``value`` sealed in the bytes form with the first data key."""
    nonce = os.urandom(_NONCE_BYTES)
    return bytes((SEALED_BYTES,)) + nonce + _ciphers_of(_keys_text())[0].encrypt(nonce, value, None)


def open_bytes(sealed: bytes) -> bytes:
    """The value ``seal_bytes`` sealed, or a Fernet token's kept as bytes. Refuses
    (``Unopenable``) what no configured key opens, and bytes of neither form."""
    if sealed[:1] == bytes((FERNET_TOKEN,)):
        try:
            return data_cipher().decrypt(base64.urlsafe_b64encode(sealed))
        except InvalidToken as error:
            raise Unopenable("a sealed value cannot be decrypted with the configured keys") from error
    if sealed[:1] != bytes((SEALED_BYTES,)) or len(sealed) < 1 + _NONCE_BYTES + 16:
        raise Unopenable("not a sealed value")
    nonce, body = sealed[1:1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES:]
    for cipher in _ciphers_of(_keys_text()):
        try:
            return cipher.decrypt(nonce, body, None)
        except InvalidTag:
            continue
    raise Unopenable("a sealed value cannot be decrypted with the configured keys")
