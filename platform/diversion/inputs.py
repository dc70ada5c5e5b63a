"""What every input must be, wherever it comes from: a form, the API, a file.

The rules live here once and the forms (``diversion.forms.Form``), the API
schemas, the force and catalogue files, the CSV import and the URLs all
apply them:

- **Text** carries no control characters: PostgreSQL cannot store NUL at
  all, and the others have no place in a name, a reason or a slug. Tab,
  line feed and carriage return are allowed in multi-line text only. Lone
  UTF-16 surrogates (which JSON can spell) are refused too: they cannot be
  encoded to be stored.
- **Dates** lie within bounds that the real world sets: nobody on record
  was born before 1900 or is born tomorrow; the platform keeps no offence
  or decision from before 2000 nor from the future; a policy or a contract
  is dated at most five years ahead.
- **Whole numbers** in addresses fit the database's integer columns (32 bits:
  every id and number an address carries is one).
- **Documents** (TOML policies and force files, JSON facts) are at most a
  set size and nested no deeper than their format needs.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pydantic import AfterValidator

# C0 controls but tab, line feed and carriage return; DEL and the C1 controls.
_LINES_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
# The same, and no line breaks or tabs either.
_LINE_CONTROLS = r"\x00-\x1f\x7f-\x9f"
_SURROGATES = r"\ud800-\udfff"
_CONTROL_IN_LINES = re.compile(f"[{_LINES_CONTROLS}{_SURROGATES}]")
_CONTROL_IN_LINE = re.compile(f"[{_LINE_CONTROLS}{_SURROGATES}]")
# The same rules as JSON Schema patterns, for the API's documented types (its
# JSON parser refuses lone surrogates itself).
LINES_PATTERN = f"^[^{_LINES_CONTROLS}]*$"
LINE_PATTERN = f"^[^{_LINE_CONTROLS}]*$"
CONTROL_CHARACTERS_MESSAGE = "cannot contain control characters (such as a NUL byte)"
LINE_BREAK_MESSAGE = "must be on one line, without tabs or control characters"

EARLIEST_BIRTH = date(1900, 1, 1)
EARLIEST_CASE_DATE = date(2000, 1, 1)  # offences, decisions, referral steps
YEARS_AHEAD = 5  # how far ahead a policy or a contract may be dated
ID_MAX = 2**31 - 1  # the largest value of the integer columns ids live in

MAX_DOCUMENT_BYTES = 200_000
MAX_DOCUMENT_DEPTH = 12  # a force file nests about 7 deep (policy, tests, cases, facts, lists)


class InputRefused(ValueError):  # noqa: N818 - reads as the condition it reports
    """An input that breaks one of the rules here: ``problem`` says which, in
    plain words, and ``place`` where in a document it is (empty for the whole)."""

    def __init__(self, problem: str, place: str = "") -> None:
        super().__init__(f"{place} {problem}" if place else problem)
        self.problem = problem
        self.place = place


class BadSyntax(InputRefused):
    """A document that is not TOML (or JSON) at all; the message gives the line and column."""


# ---------------------------------------------------------------- text

def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` is not acceptable text (a phrase to follow the field's name), or None."""
    if multiline:
        return CONTROL_CHARACTERS_MESSAGE if _CONTROL_IN_LINES.search(value) else None
    if _CONTROL_IN_LINE.search(value):
        return LINE_BREAK_MESSAGE if not _CONTROL_IN_LINES.search(value) else CONTROL_CHARACTERS_MESSAGE
    return None


def checked_text(value: str, *, multiline: bool = False) -> str:
    """``value`` itself; refuses (``InputRefused``) control characters (line breaks
    and tabs too, unless ``multiline``)."""
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise InputRefused(problem)
    return value


def printable(value: str) -> str:
    """``value`` with each control character replaced by U+FFFD, for a record
    of what someone sent (the audit log) that the database can store."""
    return _CONTROL_IN_LINE.sub("\ufffd", value)


def _line(value: str) -> str:
    return checked_text(value)


def _lines(value: str) -> str:
    return checked_text(value, multiline=True)


# Text types for pydantic models (the API's bodies, the files' entries).
Line = Annotated[str, AfterValidator(_line)]
Lines = Annotated[str, AfterValidator(_lines)]


def strings_in(data: Any, place: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string in a parsed document (keys too), with where it sits."""
    if isinstance(data, str):
        yield place, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield (*place, str(key)), str(key)
            yield from strings_in(value, (*place, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from strings_in(value, (*place, index))


def dotted(place: tuple[str | int, ...]) -> str:
    """``pathways[2].reason`` for ("pathways", 2, "reason"), counting from 1 as people do."""
    return "".join(f"[{part + 1}]" if isinstance(part, int) else ("." if i else "") + printable(part)
                   for i, part in enumerate(place))


# ---------------------------------------------------------------- dates

def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def latest_future_date(today: date) -> date:
    """The furthest a policy or contract may be dated: ``YEARS_AHEAD`` years from today."""
    return _years_after(today, YEARS_AHEAD)


def _outside(day: date, earliest: date, latest: date, too_late: str) -> str | None:
    """Why ``day`` is not from ``earliest`` to ``latest`` (``too_late`` when after it), or None."""
    if day < earliest:
        return f"must be on or after {earliest:%-d %B %Y}"
    if day > latest:
        return too_late
    return None


def date_of_birth_problem(born: date, today: date) -> str | None:
    return _outside(born, EARLIEST_BIRTH, today, "cannot be in the future")


def case_date_problem(day: date, today: date) -> str | None:
    """Why an offence, decision or referral date cannot be, or None."""
    return _outside(day, EARLIEST_CASE_DATE, today, "cannot be in the future")


def planned_date_problem(day: date, today: date, *, earliest: date = EARLIEST_CASE_DATE) -> str | None:
    """Why a date that may lie ahead (a policy's or contract's start, a booked
    session) cannot be, or None."""
    latest = latest_future_date(today)
    return _outside(day, earliest, latest, f"must be no later than {latest:%-d %B %Y} ({YEARS_AHEAD} years from today)")


# ---------------------------------------------------------------- numbers

def id_or_none(raw: str | None) -> int | None:
    """A whole number from an address or query string that fits an integer id
    column, or None for anything else (so it reads as an unknown id)."""
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return None
    number = int(raw)
    return number if number <= ID_MAX else None


# ---------------------------------------------------------------- documents

def _depth(data: Any) -> int:
    """How deeply tables and lists nest in a parsed document (a scalar is 0)."""
    deepest, level, pending = 0, 0, [(data, 0)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, dict):
            pending.extend((value, level + 1) for value in node.values())
        elif isinstance(node, list):
            pending.extend((value, level + 1) for value in node)
        else:
            continue
        deepest = max(deepest, level + 1)
    return deepest


# What a refused document is called, in the reader's language (``what`` of the loaders).
_DOCUMENTS = {"document": _l("document"), "draft": _l("draft"), "policy": _l("policy"), "file": _l("file"),
              "facts file": _l("facts file")}


def _said(what: str) -> str:
    return str(_DOCUMENTS.get(what, what))


def _deep(what: str) -> str:
    return str(_("The %(what)s nests tables or lists more than %(count)s levels deep.", what=_said(what),
                 count=MAX_DOCUMENT_DEPTH))


def _bounded(text: str, what: str) -> None:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise InputRefused(_("The %(what)s is larger than %(size)s KB.", what=_said(what),
                             size=MAX_DOCUMENT_BYTES // 1000))


def _checked(data: Any, what: str) -> Any:
    if _depth(data) > MAX_DOCUMENT_DEPTH:
        raise InputRefused(_deep(what))
    for place, value in strings_in(data):
        if (problem := text_problem(value, multiline=True)) is not None:
            raise InputRefused(problem, dotted(place))
    return data


def load_toml(text: str, *, what: str = "document") -> dict[str, Any]:
    """A TOML document, parsed; refuses (``InputRefused``) bad syntax, a
    document over the size limit, one nested deeper than the limit, and
    control characters in any of its text (keys too), named by place."""
    _bounded(text, what)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BadSyntax(_("The %(what)s is not valid TOML: %(error)s.", what=_said(what), error=error)) from error
    except RecursionError as error:  # the parser recurses once per level of nesting
        raise InputRefused(_deep(what)) \
            from error
    return _checked(data, what)  # type: ignore[no-any-return]


def load_json(text: str, *, what: str = "document") -> Any:
    """A JSON document, parsed, with the same refusals as ``load_toml``."""
    _bounded(text, what)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadSyntax(_("The %(what)s is not valid JSON: %(error)s.", what=_said(what), error=error)) from error
    except RecursionError as error:
        raise InputRefused(_deep(what)) \
            from error
    return _checked(data, what)
