"""Pseudonymous people: keyed by an HMAC with a per-force secret, identity encrypted.

A person is found again in the same force by an HMAC of their normalised
surname, given name and date of birth (and, separately, of their PNC ID when
one is given), keyed with a secret derived for that force alone: the same
person in two forces has unrelated keys, so nothing links across forces.
Names and contact details are encrypted at rest (``sealing.seal_bytes``); only code running
for the force, or for the provider a referral goes to, decrypts them.
"""

from __future__ import annotations

import base64
import hmac
import json
import unicodedata
from dataclasses import dataclass, fields
from datetime import date
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from diversion.sealing import Unopenable, open_bytes, seal_bytes


@dataclass(frozen=True)
class Identity:
    surname: str
    given_name: str
    date_of_birth: date
    pnc_id: str | None = None


@dataclass(frozen=True)
class Contact:
    phone: str = ""
    email: str = ""
    address: str = ""


NO_CONTACT = Contact()

@lru_cache(maxsize=256)
def _derive(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from a configured secret (the same every time: cached)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(secret.encode())


def _letters(text: str) -> str:
    """Case, accents, spaces, hyphens and apostrophes do not make another person."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


# A key is the first 128 bits of an HMAC-SHA256, kept as 16 bytes: no two of a force's
# people share one in any believable number of people (a chance of about 1 in 10^25 at ten
# million), and it takes half the room of the whole digest, in the row and in its index.
KEY_BYTES = 16


def _key(secret: bytes, text: str) -> bytes:
    return hmac.digest(secret, text.encode(), "sha256")[:KEY_BYTES]


def normalise_pnc(pnc_id: str) -> str:
    return "".join(ch for ch in pnc_id.upper() if ch.isalnum())


def person_keys(tenant_slug: str, identity: Identity) -> tuple[bytes, bytes | None]:
    """(name key, PNC key) for this person in this force."""
    secret = _derive(current_app.config["PERSON_KEY_SECRET"], f"person-key:{tenant_slug}")
    facts = f"{_letters(identity.surname)}|{_letters(identity.given_name)}|{identity.date_of_birth.isoformat()}"
    name_key = _key(secret, facts)
    pnc_key = None
    if identity.pnc_id and normalise_pnc(identity.pnc_id):
        pnc_key = _key(secret, f"pnc|{normalise_pnc(identity.pnc_id)}")
    return name_key, pnc_key


def search_keys(tenant_slug: str, surname: str, date_of_birth: date) -> tuple[bytes, bytes]:
    """(surname-and-birth key, birth key): the blind indexes a force's staff search people by.

    Keyed like the name key, for this force alone, so that the database holds
    no name and nothing that matches across forces. What can be found: a
    surname (normalised as ``_letters`` does) together with the date of
    birth, or the date of birth alone. What cannot: part of a name, a given
    name, a surname without a date of birth, or anything sorted by name.
    """
    secret = _derive(current_app.config["PERSON_KEY_SECRET"], f"person-key:{tenant_slug}")
    born = date_of_birth.isoformat()
    return _key(secret, f"search|{_letters(surname)}|{born}"), _key(secret, f"born|{born}")


def derived_key(secret: str) -> str:
    """A Fernet key derived from a secret (development and tests only)."""
    return base64.urlsafe_b64encode(_derive(secret, "personal-data")).decode()


# The fields sealed of each kind, in order (looked up once, not per person).
_NAMES = {kind: tuple(item.name for item in fields(kind)) for kind in (Identity, Contact)}
# Made once: json.dumps given options makes an encoder for every value.
_SEALED_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def seal(value: Identity | Contact) -> bytes:
    """The identity or contact details sealed (``sealing.seal_bytes``): a JSON list of the
    fields in order, the date of birth as ISO text."""
    data = [getattr(value, name) for name in _NAMES[type(value)]]
    data = [field.isoformat() if isinstance(field, date) else field for field in data]
    return seal_bytes(_SEALED_JSON.encode(data).encode())


def seal_contact(contact: Contact) -> bytes:
    """The contact details sealed; empty when there are none: nothing to keep, and nothing to
    spend a nonce, a tag and an encryption on (``open_contact`` reads it as none)."""
    return seal(contact) if contact != NO_CONTACT else b""


class Unreadable(ValueError):  # noqa: N818 - reads as the condition it reports
    """Encrypted personal data that no configured key opens."""


def _open(sealed: bytes, kind: type[Identity] | type[Contact]) -> dict[str, Any]:
    """The fields sealed, by name: from a list in order, or from an object (people sealed
    before the list)."""
    try:
        data = json.loads(open_bytes(sealed))
    except Unopenable as error:
        raise Unreadable("personal data cannot be decrypted with the configured keys") from error
    return dict(zip(_NAMES[kind], data, strict=False)) if isinstance(data, list) else dict(data)


def open_identity(sealed: bytes) -> Identity:
    data = _open(sealed, Identity)
    return Identity(data["surname"], data["given_name"], date.fromisoformat(data["date_of_birth"]),
                    data.get("pnc_id"))


def open_contact(sealed: bytes) -> Contact:
    return Contact(**_open(sealed, Contact)) if sealed else NO_CONTACT
