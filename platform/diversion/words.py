"""The one place that puts counts and articles into words: "1 encounter", "3 people", "an officer".

Templates use the ``counted`` filter (``{{ n | counted('encounter') }}``) and
``article`` (``{{ role | article }}``); Python code (flash messages, captions
built in views) calls the functions.

A count is said in the reader's language: each noun counted on a page has its line in
``COUNTED``, a plural message of the catalogue, whose Welsh has the six forms Welsh counts
in. Outside a request (the command line) the English is used.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar

from babel.dates import format_date, format_datetime
from flask import has_request_context
from flask_babel import get_locale, ngettext
from flask_babel.speaklater import LazyString

from diversion.db import LONDON

# The languages the platform speaks, by their codes (``language`` chooses among them for each reader).
LANGUAGES = ("en", "cy")
ENGLISH = "en"
WELSH = "cy"
_Text = TypeVar("_Text", bound=str | None)

# Plurals that do not follow the rules below.
IRREGULAR = {
    "person": "people", "criterion": "criteria", "child": "children", "analysis": "analyses",
    "was": "were", "is": "are", "has": "have",
}
# Words that start with a vowel letter but not a vowel sound, or the other way about.
A_NOT_AN = ("user", "use", "uni", "one", "eu")
AN_NOT_A = ("hour", "honest", "nhs", "fcr")


def plural(noun: str) -> str:
    """The plural of an English noun (or of the last word of a phrase: "course place": "course places")."""
    head, _, last = noun.rpartition(" ")
    lower = last.lower()
    if lower in IRREGULAR:
        word = IRREGULAR[lower]
        word = word.capitalize() if last[:1].isupper() else word
    elif lower.endswith("y") and lower[-2:-1] not in tuple("aeiou"):
        word = last[:-1] + "ies"
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        word = last + "es"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


class Described:
    """A thing of a fixed catalogue named and explained in the reader's language: its ``title``
    and ``explanation`` are messages translated when read, as ``label`` and ``meaning``."""

    title: LazyString
    explanation: LazyString

    @property
    def label(self) -> str:
        return str(self.title)

    @property
    def meaning(self) -> str:
        return str(self.explanation)


# Every noun a page counts, in the reader's language (each a literal message, for extraction).
# A noun missing here is counted in English.
COUNTED: dict[str, Callable[[int], str]] = {
    "account": lambda n: ngettext("%(count)s account", "%(count)s accounts", n, count=f"{n:,}"),
    "case": lambda n: ngettext("%(count)s case", "%(count)s cases", n, count=f"{n:,}"),
    "change": lambda n: ngettext("%(count)s change", "%(count)s changes", n, count=f"{n:,}"),
    "contract": lambda n: ngettext("%(count)s contract", "%(count)s contracts", n, count=f"{n:,}"),
    "course": lambda n: ngettext("%(count)s course", "%(count)s courses", n, count=f"{n:,}"),
    "day": lambda n: ngettext("%(count)s day", "%(count)s days", n, count=f"{n:,}"),
    "decision": lambda n: ngettext("%(count)s decision", "%(count)s decisions", n, count=f"{n:,}"),
    "encounter": lambda n: ngettext("%(count)s encounter", "%(count)s encounters", n, count=f"{n:,}"),
    "event": lambda n: ngettext("%(count)s event", "%(count)s events", n, count=f"{n:,}"),
    "force": lambda n: ngettext("%(count)s force", "%(count)s forces", n, count=f"{n:,}"),
    "invitation": lambda n: ngettext("%(count)s invitation", "%(count)s invitations", n, count=f"{n:,}"),
    "invoice": lambda n: ngettext("%(count)s invoice", "%(count)s invoices", n, count=f"{n:,}"),
    "ledger row": lambda n: ngettext("%(count)s ledger row", "%(count)s ledger rows", n, count=f"{n:,}"),
    "line": lambda n: ngettext("%(count)s line", "%(count)s lines", n, count=f"{n:,}"),
    "membership": lambda n: ngettext("%(count)s membership", "%(count)s memberships", n, count=f"{n:,}"),
    "mismatch": lambda n: ngettext("%(count)s mismatch", "%(count)s mismatches", n, count=f"{n:,}"),
    "offering": lambda n: ngettext("%(count)s offering", "%(count)s offerings", n, count=f"{n:,}"),
    "open referral": lambda n: ngettext("%(count)s open referral", "%(count)s open referrals", n, count=f"{n:,}"),
    "past decision": lambda n: ngettext("%(count)s past decision", "%(count)s past decisions", n, count=f"{n:,}"),
    "person": lambda n: ngettext("%(count)s person", "%(count)s people", n, count=f"{n:,}"),
    "referral": lambda n: ngettext("%(count)s referral", "%(count)s referrals", n, count=f"{n:,}"),
    "row": lambda n: ngettext("%(count)s row", "%(count)s rows", n, count=f"{n:,}"),
    "session": lambda n: ngettext("%(count)s session", "%(count)s sessions", n, count=f"{n:,}"),
    "statement": lambda n: ngettext("%(count)s statement", "%(count)s statements", n, count=f"{n:,}"),
    "test case": lambda n: ngettext("%(count)s test case", "%(count)s test cases", n, count=f"{n:,}"),
    "token": lambda n: ngettext("%(count)s token", "%(count)s tokens", n, count=f"{n:,}"),
}


def counted(number: int, noun: str, many: str | None = None) -> str:
    """``number`` with ``noun`` agreeing, in the reader's language: "1 encounter", "2 encounters",
    "1,200 people".

    ``many`` gives the English plural where ``plural`` would get it wrong.
    """
    if noun in COUNTED:
        return COUNTED[noun](number)
    return f"{number:,} {noun if number == 1 else many or plural(noun)}"


def article(word: str) -> str:
    """``word`` with "a" or "an" before it, by how it sounds: "an officer", "a user", "an hour"."""
    lower = word.lower()
    if lower.startswith(AN_NOT_A):
        return f"an {word}"
    if lower.startswith(A_NOT_AN):
        return f"a {word}"
    return f"{'an' if lower[:1] in tuple('aeiou') else 'a'} {word}"


def in_language(english: _Text, welsh: str | None, language: str) -> _Text | str:
    """A text given in English and perhaps in Welsh, in ``language``: the Welsh to a reader of Welsh
    where there is one, else the English."""
    return (welsh if language == WELSH else None) or english


def current_language() -> str:
    """The reader's language; English outside a request (the command line)."""
    return str(get_locale() or ENGLISH) if has_request_context() else ENGLISH


def day(value: date) -> str:
    """A date for people, in the reader's language, as GOV.UK writes one: "3 December 2026",
    "3 Rhagfyr 2026" (no leading zero)."""
    return format_date(value, "d MMMM y", locale=current_language())


def month(value: date) -> str:
    """A month for people, in the reader's language: "November 2026", "Tachwedd 2026"."""
    return format_date(value, "LLLL y", locale=current_language())


def moment(value: datetime) -> str:
    """A moment for people, in London's time and the reader's language: "3 December 2026 14:05"."""
    return format_datetime(value, "d MMMM y HH:mm", tzinfo=LONDON, locale=current_language())


def money(pence: int) -> str:
    """Pence written for people: ``£1,234.50``; a negative amount ``-£70.00``."""
    sign = "-" if pence < 0 else ""
    pounds, rest = divmod(abs(pence), 100)
    return f"{sign}£{pounds:,}.{rest:02d}"


def percent(basis_points: int) -> str:
    """Basis points written for people and fields, without the sign: ``2.5`` (250), ``10`` (1000)."""
    if basis_points % 100 == 0:
        return str(basis_points // 100)
    return f"{Decimal(basis_points) / 100:f}".rstrip("0").rstrip(".")
