"""Sealed values: the bytes form opens with any configured key, Fernet tokens kept as bytes
still open, and what no key opens (or was never sealed) is refused."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import date

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from diversion.cases.identity import Contact, Identity, open_contact, open_identity, seal, seal_contact
from diversion.sealing import Unopenable, open_bytes, seal_bytes

FIRST, SECOND = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def keys() -> Iterator[Flask]:
    app = Flask(__name__)
    app.config["PERSONAL_DATA_KEYS"] = FIRST
    with app.app_context():
        yield app


def test_a_value_sealed_as_bytes_opens_and_costs_29_bytes(keys: Flask) -> None:
    sealed = seal_bytes(b"O'Neill")
    assert open_bytes(sealed) == b"O'Neill"
    assert len(sealed) == len(b"O'Neill") + 29
    assert b"Neill" not in sealed
    assert seal_bytes(b"O'Neill") != sealed  # a fresh nonce each time


def test_a_rotated_key_still_opens_what_it_sealed_and_a_stranger_opens_nothing(keys: Flask) -> None:
    sealed = seal_bytes(b"07700 900123")
    keys.config["PERSONAL_DATA_KEYS"] = f"{SECOND},{FIRST}"
    assert open_bytes(sealed) == b"07700 900123"
    assert open_bytes(seal_bytes(b"new")) == b"new"
    keys.config["PERSONAL_DATA_KEYS"] = SECOND
    with pytest.raises(Unopenable):
        open_bytes(sealed)


def test_a_fernet_token_kept_as_bytes_opens(keys: Flask) -> None:
    token = Fernet(FIRST.encode()).encrypt(b'{"phone": "07700 900123", "email": "", "address": ""}')
    sealed = base64.urlsafe_b64decode(token)
    assert open_bytes(sealed).startswith(b'{"phone"')
    assert open_contact(sealed) == Contact(phone="07700 900123")


@pytest.mark.parametrize("sealed", [b"sealed identity", b"\x01short", b"", b"\x80" + bytes(80)])
def test_bytes_of_no_sealed_form_are_refused(keys: Flask, sealed: bytes) -> None:
    with pytest.raises(Unopenable):
        open_bytes(sealed)


def test_a_changed_byte_is_refused(keys: Flask) -> None:
    sealed = bytearray(seal_bytes(b"Jones"))
    sealed[-1] ^= 1
    with pytest.raises(Unopenable):
        open_bytes(bytes(sealed))


def test_identity_and_contact_come_back_the_same(keys: Flask) -> None:
    identity = Identity("Ó Súilleabháin", "Róisín", date(1990, 2, 3), "12/345678A")
    assert open_identity(seal(identity)) == identity
    assert open_identity(seal(Identity("Jones", "Sam", date(2001, 1, 1)))).pnc_id is None
    contact = Contact(phone="07700 900123", email="jo@example.org", address="1 High Street, Rhyl")
    assert open_contact(seal_contact(contact)) == contact
    assert seal_contact(Contact()) == b""
    assert open_contact(b"") == Contact()
