"""When the database cannot answer: telling an outage from a fault of the code, and answering 503.

An outage is the database being unreachable or overloaded for a while: the
server stopped or restarting, the connection refused, dropped or timed out,
every pooled connection busy, a deadlock or serialisation failure that a
retry would get past. It is answered 503 with ``Retry-After``: the client
should try again and will likely succeed. Anything else the database
refuses (a missing table, a bad statement, a broken constraint) is a fault
of the code: it stays a logged 500, never disguised as a busy server.

Nothing here may touch the database: the 503 page is rendered from the
template alone, with nobody signed in (the user loader reads the database),
and the rollback that ends the failed unit of work never raises.

Whether a request tried to commit is noted too, so that an error answer
says "nothing was changed" only when that is certain: a commit that fails
with the connection may have been applied.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from flask import Flask, current_app, g, has_app_context, has_request_context, request
from flask_login import AnonymousUserMixin
from markupsafe import escape
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from diversion.extensions import db
from diversion.forms import lazy_gettext as _l

# PostgreSQL SQLSTATE classes that say the server cannot serve now, not that
# the statement is wrong: 08 connection exception, 40 transaction rollback
# (serialisation failure, deadlock: a retry gets past it), 53 insufficient
# resources (too many connections, disk full), 57 operator intervention
# (shutdown, restart, statement timeout), 58 system error (I/O).
POSTGRESQL_OUTAGE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# SQLite's result codes of the same kind: busy or locked by another writer,
# out of memory, I/O error, disk full, cannot open the file, lock protocol.
SQLITE_OUTAGE_CODES = frozenset({5, 6, 7, 10, 13, 14, 15})

# In the reader's language when shown (their choice is known without the database).
TITLE = _l("The service is busy or down for a moment")
TRY_AGAIN = _l("Try again in a minute.")
NOTHING_CHANGED = _l("Nothing was changed.")
MAYBE_CHANGED = _l("If you were saving something, check whether it was saved before you enter it again.")
# The last resort when even the error page cannot be rendered: no template, no database.
PLAIN_PAGE = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} – diversion</title>'
              '</head><body><main><h1>{title}</h1><p>{message}</p><p><a href="{again}">{link}</a></p>'
              "</main></body></html>")

_OUTAGE_SEEN = "diversion_database_outage"
_COMMIT_TRIED = "diversion_commit_tried"


def _driver_outage(error: BaseException | None) -> bool:
    """Whether a driver's OperationalError is an outage (by its SQLSTATE or SQLite code)."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in SQLITE_OUTAGE_CODES
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate is None:
        # psycopg gives no SQLSTATE to failures on the client's side of the
        # wire: connection refused, timed out, or lost mid-statement.
        return True
    return str(sqlstate)[:2] in POSTGRESQL_OUTAGE_CLASSES


def _is_outage(error: BaseException) -> bool:
    if isinstance(error, exc.TimeoutError | exc.DisconnectionError):
        return True  # every pooled connection busy for pool_timeout; or the pool could not connect
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True  # SQLAlchemy saw the connection drop
        # An InterfaceError that did not drop the connection is a misuse of the driver: a fault.
        return isinstance(error, exc.OperationalError) and _driver_outage(error.orig)
    if isinstance(error, exc.PendingRollbackError):
        # "Roll back first": a fault of the code that went on after a failure,
        # unless what failed earlier in this request was the database itself.
        return outage_seen()
    return False


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot serve now (503) rather than a fault of the code (500).

    Follows explicit causes (``raise ... from``) but not the exceptions that
    were merely being handled: a bug in an ``except`` block stays a bug.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_outage(current):
            return True
        current = current.__cause__
    return False


def _note_outage(context: ExceptionContext) -> None:
    """Remember, for the rest of the request, that the database itself failed."""
    if context.is_pre_ping or not has_app_context():
        return  # a stale pooled connection found by the ping is replaced silently
    if context.is_disconnect or (isinstance(context.sqlalchemy_exception, exc.OperationalError)
                                 and _driver_outage(context.original_exception)):
        setattr(g, _OUTAGE_SEEN, True)


def _note_commit(_session: Session) -> None:
    if has_request_context():
        setattr(g, _COMMIT_TRIED, True)


def _start_request(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
    # Runs first of all in a request (an application's URL value preprocessor).
    # ``g`` lives as long as the application context, which a test (or a
    # command) may keep across several requests: each starts afresh.
    g.pop(_OUTAGE_SEEN, None)
    g.pop(_COMMIT_TRIED, None)


def install(app: Flask) -> None:
    """Attach the listeners that note outages and commits (idempotent), and start each request afresh."""
    if not event.contains(Engine, "handle_error", _note_outage):
        event.listen(Engine, "handle_error", _note_outage)
    if not event.contains(Session, "before_commit", _note_commit):
        event.listen(Session, "before_commit", _note_commit)
    app.url_value_preprocessor(_start_request)
    # Registered after Flask-SQLAlchemy's own, so it runs first (teardowns run last registered first).
    app.teardown_appcontext(_end_session)


def _end_session(_error: BaseException | None) -> None:
    """End the unit of work's session when the request (or command) ends, never raising: a
    connection dropped after the answer was made must not turn that answer into a raw error page.
    Should closing fail, the broken session is forgotten all the same, so the next request starts
    with a new one (its connection was invalidated, and the pool connects afresh)."""
    try:
        db.session.remove()
    except Exception:  # whatever the driver says, the answer has gone out
        current_app.logger.warning("Closing the session failed; it is dropped.", exc_info=True)
        db.session.registry.clear()


def commit_tried() -> bool:
    """Whether this request has tried to commit its change (at its end: ``unit``)."""
    return has_request_context() and bool(g.get(_COMMIT_TRIED))


def outage_seen() -> bool:
    """Whether the database itself failed earlier in this request (or command)."""
    return has_app_context() and bool(g.get(_OUTAGE_SEEN))


def changes_note() -> str:
    """What an error answer may say about changes: "nothing" only when no commit was tried."""
    return str(MAYBE_CHANGED if commit_tried() else NOTHING_CHANGED)


def retry_after() -> str:
    return str(int(current_app.config["RETRY_AFTER_SECONDS"]))


def safe_rollback() -> None:
    """Roll the request's unit of work back; never raises, so that an error answer can always be sent.

    On a dropped connection the rollback itself fails: the connection is then
    invalidated, and closing the session hands it back to the pool, which
    discards it and connects afresh next time.
    """
    try:
        db.session.rollback()
    except Exception:  # whatever the driver says, the answer must still go out
        current_app.logger.warning("Rolling back failed; closing the session.", exc_info=True)
        with contextlib.suppress(Exception):
            db.session.close()


def safe_page(title: str, message: str, status: int, *, again: str | None = None) -> Response:
    """An error page rendered without the database: nobody signed in, no force, no flashed messages.

    ``render_template`` would run Flask-Login's context processor, which
    loads the signed-in user from the database; this renders the template
    directly with a context of its own. If even that fails, a plain page.
    """
    context: dict[str, Any] = {"title": title, "message": message, "current_user": AnonymousUserMixin(),
                               "tenant": None, "get_flashed_messages": lambda **_: [], "again": again}
    try:
        html = current_app.jinja_env.get_template("errors/error.html").render(context)
    except Exception:  # the error page must always be answered
        current_app.logger.exception("The error page could not be rendered")
        html = PLAIN_PAGE.format(title=escape(title), message=escape(message), again=escape(again or "/"),
                                 link=_l("Try again") if again else _l("Go to the start page"))
    return Response(html, status=status, mimetype="text/html")


def unavailable_page() -> Response:
    """The 503 page, with ``Retry-After``."""
    # "Try again" leads back to the page asked for; after a form, to the start page.
    again = request.full_path.rstrip("?") if has_request_context() and request.method == "GET" else None
    response = safe_page(str(TITLE), f"{TRY_AGAIN} {changes_note()}", 503, again=again)
    response.headers["Retry-After"] = retry_after()
    return response


def unavailable_message() -> str:
    """The 503 message of the JSON API."""
    if commit_tried():
        return (f"{TITLE}; try again in a minute. The request may have been done: send it again with the same "
                "Idempotency-Key and it is done at most once.")
    return f"{TITLE}; try again in a minute. {NOTHING_CHANGED}"
