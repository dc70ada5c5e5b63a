"""A referral's steps, packed into one column of the referral (``Referral.steps``).

A referral has a handful of steps, always read together and in order, never one
by one: they are kept as one value of a few dozen bytes on the referral's own row,
not as rows of their own (which cost a row header, two keys and two index entries
each, more than the step itself). A step is then written in the referral's own
``UPDATE`` (or ``INSERT``), and read with it.

The packed form, version 1: a version byte, then each step in order:

- one byte: the state the step reached (high four bits, ``STATES``) and the
  code of what the platform said of it (low four bits, ``WHYS``);
- a flags byte: bit 0, a person made it (their user id follows); bit 1, the
  same person as the step before; bits 2-3, the case system that made it
  (``SYSTEMS``); bit 4, a reason follows; bits 5-6, its details: none, the
  same as the last written as JSON, a session's (when it starts and
  where) or any other (compact JSON); bit 7, a byte of rarer flags follows
  (bit 0: the state it left is not the state the step before reached, and
  follows; bit 1: the step keeps the key it had before steps were packed);
- its moment, after the step before (the first: after 1970), a varint: the
  time zigzagged, doubled, and one added when it is counted in whole seconds
  (a step dated to the second, as an import's are) rather than microseconds;
- then what the flags announced, in that order: the state left, the key (16
  bytes), the person's id (varint), the reason (UTF-8, its length first), the
  details (a session's: when it starts, in microseconds after the step, zigzag,
  and the venue; any other: compact JSON, its length first).

Codes are never renumbered: a new state or code takes a new number, and a
change of form a new version.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

VERSION = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATES: tuple[str | None, ...] = (None, "offered", "accepted", "declined", "booked", "attended", "missed",
                                   "completed", "not_completed", "withdrawn")
WHYS: tuple[str | None, ...] = (None, "offered", "accepted", "booked", "attended", "did_not_attend",
                                 "all_attended", "deadline_passed", "imported")
SYSTEMS: tuple[str | None, ...] = (None, "force", "provider")
_SESSION_KEYS = frozenset({"starts_at", "venue"})
_NO_DETAILS, _SAME_DETAILS, _SESSION, _JSON = range(4)


class Unpackable(ValueError):  # noqa: N818 - reads as the condition it reports
    """Bytes that are not a referral's packed steps."""


class Packed(Protocol):
    """A step as ``pack`` reads it (``models.Transition``): the state it left and reached, when, who
    made it (a person, ``actor_id``, or a case system, ``by_system``), the words a person gave
    (``reason``), what the platform said of it (``why``, a code, with its ``details``), and the key
    it had before steps were packed (``key``, None for every step since)."""

    @property
    def from_state(self) -> str | None: ...
    @property
    def to_state(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def actor_id(self) -> int | None: ...
    @property
    def by_system(self) -> str | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def why(self) -> str | None: ...
    @property
    def why_details(self) -> dict[str, Any] | None: ...
    @property
    def key(self) -> uuid.UUID | None: ...


# A step as ``unpack`` gives it: the fields of ``Packed`` in that order, the states and codes as text.
Unpacked = tuple[str | None, str, datetime, int | None, str | None, str, str | None, dict[str, Any] | None,
                 uuid.UUID | None]


def step_key(referral_id: uuid.UUID, position: int, kept: uuid.UUID | None = None) -> uuid.UUID:
    """A step's key: the one it kept, else made from its referral's and its place among its steps
    (the same every time it is read; unguessable as its referral's key is)."""
    return kept if kept is not None else uuid.uuid5(referral_id, str(position))


def _varint(value: int, out: bytearray) -> None:
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)


def _zigzagged(value: int) -> int:
    """A whole number as a natural one: 0, -1, 1, -2 ... as 0, 1, 2, 3 ..."""
    return value << 1 if value >= 0 else (-value << 1) - 1


def _unzigzagged(value: int) -> int:
    """The whole number ``_zigzagged`` made ``value`` of."""
    return value >> 1 if not value & 1 else -((value + 1) >> 1)


def _zigzag(value: int, out: bytearray) -> None:
    _varint(_zigzagged(value), out)


def _moment(micros: int, out: bytearray) -> None:
    seconds, part = divmod(micros, 1_000_000)
    _varint(_zigzagged(seconds) << 1 | 1 if not part else _zigzagged(micros) << 1, out)


def _text(value: str, out: bytearray) -> None:
    data = value.encode()
    _varint(len(data), out)
    out += data


def _micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _session(details: dict[str, Any], at: int) -> tuple[int, str] | None:
    """A session's details as (microseconds after the step, venue), when they are exactly that."""
    if details.keys() != _SESSION_KEYS or not isinstance(details["venue"], str):
        return None
    starts_at = details["starts_at"]
    try:
        moment = datetime.fromisoformat(starts_at) if isinstance(starts_at, str) else None
    except ValueError:
        return None
    if moment is None or moment.tzinfo is None or moment.astimezone(UTC).isoformat() != starts_at:
        return None
    return _micros(moment) - at, details["venue"]


def pack(steps: Iterable[Packed]) -> bytes:
    """Steps in their packed form (refuses, ``ValueError``, a state or code it has no number for)."""
    out = bytearray((VERSION,))
    before: Packed | None = None
    last_details: dict[str, Any] | None = None
    previous_at = 0
    for step in steps:
        at = _micros(step.occurred_at)
        out.append(STATES.index(step.to_state) << 4 | WHYS.index(step.why))
        flags = SYSTEMS.index(step.by_system) << 2
        actor = before.actor_id if before is not None else None
        if step.actor_id is not None:
            flags |= 2 if step.actor_id == actor else 1
        if step.reason:
            flags |= 16
        details = step.why_details
        session = _session(details, at) if details else None
        kind = (_NO_DETAILS if not details else _SAME_DETAILS if details == last_details
                else _SESSION if session is not None else _JSON)
        flags |= kind << 5
        rare = (1 if step.from_state != (before.to_state if before is not None else None) else 0) \
            | (2 if step.key is not None else 0)
        out.append(flags | (0x80 if rare else 0))
        _moment(at - previous_at, out)
        if rare:
            out.append(rare)
            if rare & 1:
                out.append(STATES.index(step.from_state))
            if rare & 2:
                out += step.key.bytes  # type: ignore[union-attr]  # announced by the flag
        if flags & 1:
            _varint(step.actor_id, out)  # type: ignore[arg-type]  # announced by the flag
        if step.reason:
            _text(step.reason, out)
        if kind == _SESSION:
            _zigzag(session[0], out)  # type: ignore[index]  # a session's, as checked
            _text(session[1], out)  # type: ignore[index]
        elif kind == _JSON:
            _text(json.dumps(details, separators=(",", ":"), ensure_ascii=False), out)
        if kind == _JSON:
            last_details = details
        before, previous_at = step, at
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise Unpackable("the steps end half way")
        value = self.data[self.at]
        self.at += 1
        return value

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def zigzag(self) -> int:
        return _unzigzagged(self.varint())

    def moment(self) -> int:
        value = self.varint()
        return _unzigzagged(value >> 1) * (1_000_000 if value & 1 else 1)

    def bytes(self, length: int) -> bytes:
        if self.at + length > len(self.data):
            raise Unpackable("the steps end half way")
        value = self.data[self.at:self.at + length]
        self.at += length
        return value

    def text(self) -> str:
        return self.bytes(self.varint()).decode()


def _code(codes: Sequence[Any], number: int) -> Any:
    if number >= len(codes):
        raise Unpackable(f"no code numbered {number}")
    return codes[number]


def unpack(data: bytes) -> list[Unpacked]:
    """The steps packed in ``data``; refuses (``Unpackable``) what ``pack`` did not write."""
    if not data:
        return []
    if data[0] != VERSION:
        raise Unpackable(f"steps packed in an unknown form ({data[0]})")
    reader = _Reader(data)
    reader.at = 1
    steps: list[Unpacked] = []
    last_details: dict[str, Any] | None = None
    at = 0
    try:
        while reader.at < len(data):
            codes, flags = reader.byte(), reader.byte()
            if not codes >> 4:
                raise Unpackable("a step that reached no state")
            at += reader.moment()
            before = steps[-1] if steps else None
            rare = reader.byte() if flags & 0x80 else 0
            came_from = _code(STATES, reader.byte()) if rare & 1 else (before[1] if before else None)
            key = uuid.UUID(bytes=reader.bytes(16)) if rare & 2 else None
            actor = reader.varint() if flags & 1 else (before[3] if flags & 2 and before else None)
            reason = reader.text() if flags & 16 else ""
            kind = flags >> 5 & 3
            details: dict[str, Any] | None = None
            if kind == _SAME_DETAILS:
                details = dict(last_details) if last_details else None
            elif kind == _SESSION:
                starts = reader.zigzag() + at
                details = {"starts_at": (EPOCH + timedelta(microseconds=starts)).isoformat(), "venue": reader.text()}
            elif kind == _JSON:
                details = last_details = json.loads(reader.text())
            steps.append((came_from, _code(STATES, codes >> 4), EPOCH + timedelta(microseconds=at), actor,
                          _code(SYSTEMS, flags >> 2 & 3), reason, _code(WHYS, codes & 0x0F), details, key))
    except (UnicodeDecodeError, json.JSONDecodeError, OverflowError) as error:
        raise Unpackable(str(error)) from error
    return steps
