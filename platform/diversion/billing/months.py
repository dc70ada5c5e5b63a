"""Months and money as billing reads and writes them.

A month is the date of its first day, and an event belongs to the month of
its time in London (an event at 00:30 on 1 December, London time, is
December's even though it is 30 November in UTC). Money is integer pence;
``money`` writes it for people (``£1,234.50``, ``-£70.00``).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from flask_babel import gettext as _

from diversion import words
from diversion.db import LONDON
from diversion.errors import FieldError

_MONTH = re.compile(r"(\d{4})-(\d{2})")


def month_of(moment: datetime) -> date:
    """The month ``moment`` falls in, in London."""
    local = moment.astimezone(LONDON)
    return date(local.year, local.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def parse_month(text: str, *, field: str = "month") -> date:
    """The month written ``YYYY-MM``. Refuses (``FieldError`` on ``field``) anything else."""
    found = _MONTH.fullmatch(text.strip())
    if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) < 2000:
        raise FieldError(field, _("Enter the month as year and month, like 2026-11, not %(given)s.",
                                  given=repr(text.strip()[:20])))
    return date(int(found[1]), int(found[2]), 1)


def month_key(month: date) -> str:
    """``YYYY-MM``: how a month is written in keys, addresses and files."""
    return f"{month.year:04d}-{month.month:02d}"


def month_label(month: date) -> str:
    """How a month is written for people: ``November 2026`` (in the reader's language: ``words.month``)."""
    return words.month(month)


# Pence written for people: ``£1,234.50`` (the one place is ``words.money``).
money = words.money


def share_of(amount_pence: int, basis_points: int) -> int:
    """``basis_points`` of ``amount_pence``, rounded half away from zero to the penny
    (VAT on a line, the platform's fee on a statement)."""
    whole, rest = divmod(abs(amount_pence) * basis_points, 10000)
    rounded = whole + (1 if rest * 2 >= 10000 else 0)
    return rounded if amount_pence >= 0 else -rounded
