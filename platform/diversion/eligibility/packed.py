"""A decision's facts packed into 30 bytes: one fixed place for each field of the catalogue.

A stored decision keeps the checked facts it was made from (every criterion's
result is worked out again from them), so they are kept small: each field of
the national catalogue, in the catalogue's order, at a fixed place after a
first byte naming the layout (1):

- a whole number: 4 bytes, signed, big-endian; -1 when not known (every
  whole-number field has a minimum of 0 or more, so -1 is never a value);
- yes or no: 1 byte, 0 not known, 1 no, 2 yes;
- one of: 1 byte, 0 not known, else 1 + the value's place in the field's values;
- any of: 2 bytes, big-endian, the top bit set when known and bit ``i`` for
  the field's ``i``-th value (a list of values is a set: kept in the
  catalogue's order, read back sorted, as ``fields.validate_facts`` gives it).

The places are fixed so that PostgreSQL can read a field from the bytes with
``get_byte`` (the simulation does, ``eligibility.past``). Changing the
catalogue's fields or the order of a field's values needs a new layout: the
test suite keeps a copy of this one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from diversion.eligibility.fields import FIELDS, LARGEST_WHOLE, Field, Kind

LAYOUT = 1
WIDTHS = {Kind.INT: 4, Kind.BOOL: 1, Kind.CHOICE: 1, Kind.CHOICES: 2}
KNOWN = 0x8000  # the "known" bit of a list of values
_INT = struct.Struct(">i")
_SET = struct.Struct(">H")


@dataclass(frozen=True)
class Place:
    """Where a field is in the packed bytes (``offset`` counts from 0, the layout byte)."""

    name: str
    field: Field
    offset: int

    @property
    def width(self) -> int:
        return WIDTHS[self.field.kind]


def _places() -> tuple[Place, ...]:
    places: list[Place] = []
    offset = 1
    for name, field in FIELDS.items():
        if field.kind is Kind.INT and (field.minimum is None or field.minimum < 0):
            raise RuntimeError(f"{name}: a whole-number field packed needs a minimum of 0 or more")
        if field.kind is Kind.CHOICES and len(field.values) > 15:
            raise RuntimeError(f"{name}: a list packed holds at most 15 values")
        if field.kind is Kind.CHOICE and len(field.values) > 254:
            raise RuntimeError(f"{name}: a choice packed has at most 254 values")
        places.append(Place(name, field, offset))
        offset += WIDTHS[field.kind]
    return tuple(places)


PLACES = _places()
PLACE = {place.name: place for place in PLACES}
SIZE = PLACES[-1].offset + PLACES[-1].width
_CODES = {place.name: {value: number for number, value in enumerate(place.field.values)} for place in PLACES}


class Unpackable(ValueError):  # noqa: N818 - reads as the condition it reports
    """Facts that cannot be packed (a field or value the catalogue does not have, a number
    out of range), or bytes that are not packed facts."""


def _blank() -> bytes:
    """Nothing known: the layout byte, -1 in every whole number, 0 elsewhere."""
    out = bytearray(SIZE)
    out[0] = LAYOUT
    for place in PLACES:
        if place.field.kind is Kind.INT:
            _INT.pack_into(out, place.offset, -1)
    return bytes(out)


_BLANK = _blank()
_Packer = Callable[[bytearray, Any], None]


def _packer(place: Place) -> _Packer:
    """What writes a known value of the field into its place (worked out once per field, not per
    value: every decision and encounter is packed). Raises ``KeyError`` or ``TypeError`` for a value
    the catalogue does not have."""
    offset, name, kind = place.offset, place.name, place.field.kind
    codes = _CODES[name]

    def whole(out: bytearray, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= LARGEST_WHOLE:
            raise Unpackable(f"{name}: {value!r} is not a whole number from 0 to {LARGEST_WHOLE}")
        _INT.pack_into(out, offset, value)

    def yes_or_no(out: bytearray, value: Any) -> None:
        if not isinstance(value, bool):
            raise Unpackable(f"{name}: {value!r} is not yes or no")
        out[offset] = 1 + value

    def one_of(out: bytearray, value: Any) -> None:
        out[offset] = 1 + codes[value]

    def any_of(out: bytearray, value: Any) -> None:
        bits = KNOWN
        for item in value:
            bits |= 1 << codes[item]
        _SET.pack_into(out, offset, bits)

    return {Kind.INT: whole, Kind.BOOL: yes_or_no, Kind.CHOICE: one_of, Kind.CHOICES: any_of}[kind]


_PACKERS = {place.name: _packer(place) for place in PLACES}


def pack_facts(facts: Mapping[str, Any]) -> bytes:
    """The known facts (as ``fields.validate_facts`` gives them) packed; a fact given as None is not known.

    Refuses (``Unpackable``) a field not in the catalogue, a value it does not allow,
    a whole number below 0 or above ``fields.LARGEST_WHOLE``."""
    out = bytearray(_BLANK)
    for name, value in facts.items():
        packer = _PACKERS.get(name)
        if packer is None:
            raise Unpackable(f"{sorted(set(facts) - _PACKERS.keys())[0]}: not a field of the catalogue")
        if value is not None:
            try:
                packer(out, value)
            except (KeyError, TypeError):
                raise Unpackable(f"{name}: {value!r} is not a value of the catalogue") from None
    return bytes(out)


def unpack_facts(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The known facts packed in ``data``, in the catalogue's order (a list sorted).

    Refuses (``Unpackable``) bytes of another layout or length."""
    data = bytes(data)
    if len(data) != SIZE or data[0] != LAYOUT:
        raise Unpackable(f"not facts packed in layout {LAYOUT} ({len(data)} bytes)")
    facts: dict[str, Any] = {}
    for place in PLACES:
        offset, field = place.offset, place.field
        if field.kind is Kind.INT:
            number = _INT.unpack_from(data, offset)[0]
            if number >= 0:
                facts[place.name] = number
        elif field.kind is Kind.BOOL:
            if data[offset]:
                facts[place.name] = data[offset] == 2
        elif field.kind is Kind.CHOICE:
            if data[offset]:
                facts[place.name] = field.values[data[offset] - 1]
        else:
            bits = _SET.unpack_from(data, offset)[0]
            if bits & KNOWN:
                facts[place.name] = sorted(value for number, value in enumerate(field.values) if bits >> number & 1)
    return facts


class PackedFacts(TypeDecorator[dict[str, Any]]):
    """A column of facts, packed (``pack_facts``) on the way in and unpacked on the way out."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Mapping[str, Any] | None, dialect: Dialect) -> bytes | None:
        return None if value is None else pack_facts(value)

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> dict[str, Any] | None:
        return None if value is None else unpack_facts(value)
