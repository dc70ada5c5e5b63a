"""One page of a long list, and its search: every list a person reads is
paginated with Flask-SQLAlchemy's ``paginate`` (a COUNT and one page of
rows, never the whole table in Python) and searched with ``search_terms``.

Refuses nothing: a page number out of range, or not a number, shows the
first or last page instead of an error.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_babel import gettext as _
from flask_sqlalchemy.pagination import Pagination, SelectPagination
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import lazyload

from diversion.extensions import db
from diversion.words import counted

PER_PAGE = 25
MAX_SEARCH = 100
COUNT_CAP = 10_000  # a long list counts this far exactly, and says "more than" beyond


class _Page(SelectPagination):
    """Flask-SQLAlchemy's page of a SELECT, whose COUNT keeps the statement's execution options
    (a list that crosses forces on purpose, ``all_tenants``, is counted across them too), and
    whose items are whole rows when the SELECT has several columns."""

    def _query_items(self) -> list[Any]:
        statement = self._query_args["select"]
        if len(statement.column_descriptions) == 1:
            return super()._query_items()
        paged = statement.limit(self.per_page).offset(self._query_offset)
        return list(self._query_args["session"].execute(paged).all())

    def _counted(self) -> Select[Any]:
        """What is counted: the ``count`` given in its place, else the page's own SELECT."""
        counted: Select[Any] | None = self._query_args["counted"]
        return self._query_args["select"] if counted is None else counted

    def _query_count(self) -> int:
        statement = self._counted()
        inner = statement.options(lazyload("*")).order_by(None).subquery()
        counted = select(func.count()).select_from(inner).execution_options(**statement.get_execution_options())
        return int(self._query_args["session"].execute(counted).scalar() or 0)


class _CappedPage(_Page):
    """A page of a list that may be long: its COUNT stops at ``COUNT_CAP`` + 1
    rows (one indexed scan, never the whole table), so ``total`` is exact up
    to the cap, and ``capped`` says when there are more (the pages go as far
    as the cap reaches)."""

    def _query_count(self) -> int:
        return count_to_cap(self._counted())

    @property
    def capped(self) -> bool:
        return (self.total or 0) > COUNT_CAP


def _paginate(statement: Select[Any], page: int, per_page: int, *, capped: bool = False,
              count: Select[Any] | None = None) -> Pagination:
    kind = _CappedPage if capped else _Page
    return kind(select=statement, counted=count, session=db.session(), page=page, per_page=per_page,
                error_out=False, count=True)


def page_of(statement: Select[Any], *, per_page: int = PER_PAGE, capped: bool = False,
            count: Select[Any] | None = None) -> Pagination:
    """The page of ``statement`` asked for by ``?page=`` (1 when absent or wrong).

    ``capped``: for lists that may run to millions (cases, referrals, the
    review queue): counted only up to ``COUNT_CAP`` (``total_text`` says
    "more than 10,000" beyond). Its ORDER BY should follow an index, so that
    a page costs an indexed scan of the rows before it. ``count``: a cheaper
    SELECT finding as many rows as ``statement``, counted in its place."""
    raw = request.args.get("page", "1")
    number = int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1
    page = _paginate(statement, max(number, 1), per_page, capped=capped, count=count)
    if page.pages and number > page.pages:  # past the end: show the last page
        page = _paginate(statement, page.pages, per_page, capped=capped, count=count)
    return page


def count_to_cap(statement: Select[Any]) -> int:
    """How many rows ``statement`` finds, counted no further than ``COUNT_CAP`` + 1: the cost of an
    indexed scan of at most that many rows, however many there are."""
    inner = statement.options(lazyload("*")).order_by(None).limit(COUNT_CAP + 1).subquery()
    counting = select(func.count()).select_from(inner).execution_options(**statement.get_execution_options())
    return int(db.session.execute(counting).scalar() or 0)


def capped_text(total: int, noun: str | None = None) -> str:
    """"1 case", "2,417 cases", "More than 10,000 cases" (or "2,417", "More than 10,000" without a noun):
    a total counted by ``count_to_cap``, in words."""
    if total > COUNT_CAP:
        return str(_("More than %(count)s", count=counted(COUNT_CAP, noun) if noun else format(COUNT_CAP, ",")))
    return counted(total, noun) if noun else f"{total:,}"


def total_text(page: Pagination, noun: str) -> str:
    """A capped list's total in words (``capped_text``)."""
    return capped_text(page.total or 0, noun)


def search_terms() -> str:
    """What was typed in the list's search box (``?q=``), trimmed to a sane length."""
    return request.args.get("q", "").strip()[:MAX_SEARCH]


def matching(text: str, *columns: ColumnElement[str] | ColumnElement[str | None]) -> ColumnElement[bool]:
    """Rows where any of ``columns`` contains ``text``, ignoring case; ``%``
    and ``_`` in the text match themselves (an empty column, NULL, matches nothing)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(*(column.ilike(f"%{escaped}%", escape="\\") for column in columns))
