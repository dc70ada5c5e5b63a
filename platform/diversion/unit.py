"""A request's unit of work: one commit at its end, or none; and the few writes that outlast it.

Views, pages and services change rows and ``flush()``; none of them
commits. The request's end does (``_finish``, run after the view has
answered and before the answer is sent):

- the unit is rolled back when the answer is not a success (4xx, 5xx) or
  the view gave it up (``refuse``, after a service refused the change);
- it is committed when the answer is a success (2xx, 3xx), for every
  method but a read; a GET or HEAD commits only when it wrote something
  (the audit of what a page showed), and otherwise ends as it began, its
  session closed at the end of the request (``outage``);
- a commit that fails replaces the answer, through the app's error
  handlers: 503 when the database cannot answer, a logged 500 for a fault
  of the code. The answer was built before the commit, so nothing is read
  after it, and an answer saying the change was made is never sent without
  it: the success messages the view flashed are taken back.

So an API call commits once, its kept ``Idempotency-Key`` answer with its
change, and a page's change commits with the answer that reports it.

Some writes must last when their unit does not: a failed sign-in's audit
row, the "last used" time of a token whose call is then refused, the audit
of whose personal details a page showed. ``lasting`` is the one way to
write them: the write is made in the unit (committed with it) and, when the
unit is rolled back, made again in a transaction of its own, in the scope
it was first made in (so the ORM guard and row-level security hold for it
too). Outside a request (a command, a job) a lasting write is simply part
of the unit.

Commands and jobs are their own boundaries: each command commits once at
its end (an import once per file, ``referrals expire`` once per force), a
worker once per job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g, has_request_context, message_flashed, request, session
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from werkzeug.wrappers import Response

from diversion import outage
from diversion.db import WROTE as _WROTE
from diversion.extensions import db
from diversion.tenancy.context import Scope, current_scope, scoped

READS = frozenset({"GET", "HEAD", "OPTIONS"})
_LASTING = "diversion_lasting"  # Session.info: the lasting writes made in the unit
_REFUSED = "diversion_unit_refused"  # g: the view gave the unit up
_FLASHED = "diversion_flashed"  # g: how many messages this request flashed


_T = TypeVar("_T")


@dataclass
class _Lasting:
    write: Callable[[], object]
    scope: Scope
    lost: bool = False  # rolled back with the unit after it was made


def lasting(write: Callable[[], _T]) -> _T:
    """Make ``write`` now, in the unit, and return what it returns; should the unit
    not commit, make it again on its own.

    ``write`` must read what it needs afresh (ids, not loaded rows): when
    made again, it runs in another session, in the scope it runs in now.
    """
    made = write()
    if has_request_context():
        db.session().info.setdefault(_LASTING, []).append(_Lasting(write, current_scope()))
    return made


def refuse() -> None:
    """Give the request's unit of work up: roll back what it did, and commit nothing at its end."""
    db.session.rollback()
    if has_request_context():
        setattr(g, _REFUSED, True)


def _write_apart(writes: list[_Lasting]) -> None:
    """Make lasting writes again, in a transaction of their own; never raises (the answer must go out).

    A fresh application context gives ``db.session`` a session of its own
    for the length of the block; the request's session is left as it is.
    """
    if not writes or outage.outage_seen():
        return  # nothing to write, or a database that has just failed: the answer goes out now
    with current_app.app_context():
        try:
            for each in writes:
                with scoped(each.scope.tenant_id, each.scope.user_id, provider_id=each.scope.provider_id):
                    each.write()
            db.session.commit()
        except Exception:  # the request's answer stands whatever happens here
            current_app.logger.warning("A lasting write could not be made on its own; it is lost.", exc_info=True)


def _finish(response: Response) -> Response:
    """The end of the request's unit of work: commit it, roll it back, or leave it to be closed."""
    unit = db.session()
    writes: list[_Lasting] = unit.info.pop(_LASTING, [])
    if g.pop(_REFUSED, False) or not 200 <= response.status_code < 400:
        outage.safe_rollback()
        _write_apart(writes)
        return response
    if not unit.in_transaction() or (request.method in READS and not unit.info.get(_WROTE)):
        return response  # a read: nothing to commit; the end of the request closes the session
    # Nothing is read after this commit, so the objects the request loaded are not expired by it
    # (SQLAlchemy's walk over each of them was a twentieth of an intake's CPU).
    unit.expire_on_commit = False
    try:
        unit.commit()
    except Exception as error:
        _take_back_flashes()
        return current_app.make_response(current_app.handle_user_exception(error))
    finally:
        unit.expire_on_commit = True
    _write_apart([each for each in writes if each.lost])
    return response


def _take_back_flashes() -> None:
    """Forget the messages this request flashed: its change is not known to be made."""
    count = g.pop(_FLASHED, 0)
    flashes = session.get("_flashes")
    if count and flashes:
        session["_flashes"] = flashes[:-count]


def _note_flash(_app: Flask, **_extra: Any) -> None:
    setattr(g, _FLASHED, g.get(_FLASHED, 0) + 1)


def _start(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
    # ``g`` may outlive a request (a test's application context): each starts afresh.
    g.pop(_REFUSED, None)
    g.pop(_FLASHED, None)


def _wrote_by_flush(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


def _wrote_by_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)


def _rolled_back(session: Session) -> None:
    for each in session.info.get(_LASTING, ()):
        each.lost = True


def install(app: Flask) -> None:
    """Make the end of every request the end of its unit of work (the listeners are idempotent).

    Call after every other ``after_request`` function is registered: the
    last registered runs first, so an answer that replaces a failed commit
    still gets every header the others add.
    """
    for name, listener in (("after_flush", _wrote_by_flush), ("do_orm_execute", _wrote_by_statement),
                           ("after_transaction_end", _transaction_ended), ("after_rollback", _rolled_back)):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)
    message_flashed.connect(_note_flash, app)
    app.url_value_preprocessor(_start)
    app.after_request(_finish)
