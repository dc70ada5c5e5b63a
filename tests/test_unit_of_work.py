"""One commit per request: the end of the request commits its unit of work or rolls it back; views,
pages and services never commit; what must outlast a refusal is written apart, on purpose."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask, abort, flash, has_request_context, redirect, request
from flask.testing import FlaskClient
from sqlalchemy import event, exc, func, select
from sqlalchemy.orm import Session

from diversion.audit.models import AuditEvent
from diversion.audit.services import record
from diversion.extensions import csrf, db
from diversion.jsonapi.tokens import ApiToken
from diversion.outage import MAYBE_CHANGED, TITLE
from diversion.tenancy.context import scoped
from diversion.unit import refuse
from tests import databases
from tests.api.conftest import bearer, make_token, user_dealer
from tests.audit.test_audit import _events
from tests.conftest import World, empty_database, make_app, sign_in

PLATFORM = Path(__file__).resolve().parents[1] / "platform" / "diversion"
# The boundaries that may commit: the request's end (unit.py), each command (any cli.py), and a
# worker, once per unit of a job's work (jobs/, which also queues a job on a connection of its own).
BOUNDARIES = {"unit.py", "jobs/__init__.py"}
BOUNDARY_NAMES = {"cli.py"}


def _commits(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"]


def test_only_the_boundaries_commit() -> None:
    """No view, page, service or helper calls ``commit()``: only the request's end, commands and jobs."""
    found = {}
    for path in sorted(PLATFORM.rglob("*.py")):
        name = path.relative_to(PLATFORM).as_posix()
        if name in BOUNDARIES or path.name in BOUNDARY_NAMES:
            continue
        lines = _commits(path)
        if lines:
            found[name] = lines
    assert found == {}
    assert _commits(PLATFORM / "unit.py"), "the request's end commits"


# ---------------------------------------------------------------- the end of a request

PROBE = "unit.probe"


def _probe(note: str) -> None:
    record(PROBE, actor=None, tenant_id=None, details={"note": note})


@pytest.fixture
def units(database: databases.TestDatabase) -> Iterator[Flask]:
    """The app with a few routes that write a row, then answer in one way or another."""
    application = make_app(database)
    routes = Blueprint("units", __name__)
    csrf.exempt(routes)

    @routes.post("/units/done")
    def done() -> str:
        _probe("done")
        return "done"

    @routes.post("/units/done-and-redirected")
    def done_and_redirected() -> Any:
        _probe("redirected")
        flash("Saved.", "success")
        return redirect("/")

    @routes.post("/units/refused-page")
    def refused_page() -> tuple[str, int]:
        _probe("refused page")
        return "refused", 400

    @routes.post("/units/refused-then-redirected")
    def refused_then_redirected() -> Any:
        _probe("before the refusal")
        refuse()
        _probe("after the refusal")
        return redirect("/")

    @routes.post("/units/aborted")
    def aborted() -> str:
        _probe("aborted")
        abort(403)

    @routes.post("/units/crashed")
    def crashed() -> str:
        _probe("crashed")
        raise RuntimeError("a fault of the code, after a flush")

    @routes.get("/units/read")
    def read() -> str:
        return str(db.session.scalar(select(func.count()).select_from(AuditEvent)))

    @routes.get("/units/written-by-a-read")
    def written_by_a_read() -> str:
        _probe("read")
        return "read"

    @routes.post("/units/lasting-then-rolled-back")
    def lasting_then_rolled_back() -> str:
        record(PROBE, actor=None, tenant_id=None, details={"note": "lasting"}, lasting=True)
        _probe("rolled back")
        db.session.rollback()  # not through refuse: the unit goes on, and commits what follows
        _probe("after the rollback")
        return "done"

    @routes.post("/units/commit-fails")
    def commit_fails() -> Any:
        _probe("lost")
        flash("Saved.", "success")
        return redirect("/")

    application.register_blueprint(routes)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    empty_database(database)


def _probes(database: databases.TestDatabase) -> list[str]:
    return [e["details"]["note"] for e in _events(database) if e["action"] == PROBE]


@contextmanager
def counting_commits(app: Flask) -> Iterator[list[int]]:
    """Counts the COMMITs the app's database is sent while the block runs."""
    seen: list[int] = []

    def note(_connection: Any) -> None:
        seen.append(1)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "commit", note)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", note)


@pytest.fixture
def commits(units: Flask) -> Iterator[list[int]]:
    """Counts the COMMITs the database is sent."""
    with counting_commits(units) as seen:
        yield seen


def test_a_successful_change_commits_once_at_the_end(units: Flask, database: databases.TestDatabase,
                                                     commits: list[int]) -> None:
    visitor = units.test_client()
    assert visitor.post("/units/done").status_code == 200
    assert commits == [1]
    assert visitor.post("/units/done-and-redirected").status_code == 302
    assert _probes(database) == ["done", "redirected"]


def test_a_refused_or_failed_request_leaves_nothing_written(units: Flask, database: databases.TestDatabase,
                                                             commits: list[int]) -> None:
    visitor = units.test_client()
    assert visitor.post("/units/refused-page").status_code == 400
    assert visitor.post("/units/refused-then-redirected").status_code == 302
    assert visitor.post("/units/aborted").status_code == 403
    assert visitor.post("/units/crashed").status_code == 500
    assert _probes(database) == []
    assert commits == []


def test_a_lasting_write_rolled_back_with_its_unit_is_made_again_on_its_own(
    units: Flask, database: databases.TestDatabase, commits: list[int],
) -> None:
    assert units.test_client().post("/units/lasting-then-rolled-back").status_code == 200
    assert sorted(_probes(database)) == ["after the rollback", "lasting"]
    assert commits == [1, 1]  # the unit, then the lasting write apart


def test_a_read_commits_only_what_it_wrote(units: Flask, database: databases.TestDatabase,
                                           commits: list[int]) -> None:
    visitor = units.test_client()
    assert visitor.get("/units/read").status_code == 200
    assert commits == []
    assert visitor.get("/units/written-by-a-read").status_code == 200
    assert commits == [1]
    assert _probes(database) == ["read"]


def test_a_commit_that_fails_replaces_the_answer_and_takes_back_its_message(
    units: Flask, database: databases.TestDatabase,
) -> None:
    def fail(_session: Session) -> None:
        if has_request_context() and request.path == "/units/commit-fails":
            raise exc.TimeoutError("every pooled connection is busy")

    event.listen(Session, "before_commit", fail)
    try:
        visitor = units.test_client()
        response = visitor.post("/units/commit-fails")
    finally:
        event.remove(Session, "before_commit", fail)
    assert response.status_code == 503
    assert str(TITLE) in response.text
    assert str(MAYBE_CHANGED) in response.text
    assert response.headers["Cache-Control"] == "no-store"  # the other after-request work still applies
    assert _probes(database) == []
    with visitor.session_transaction() as cookie:
        assert "Saved." not in str(cookie.get("_flashes", []))


# ---------------------------------------------------------------- what outlasts a refusal

def test_a_failed_sign_in_is_recorded_though_the_sign_in_is_refused(
    app: Flask, client: FlaskClient, database: databases.TestDatabase, world: World,
) -> None:
    with counting_commits(app) as commits:
        response = sign_in(client, world.email("a_officer"), "wrong-password")
    assert response.status_code == 400
    assert commits == [1]  # the refused sign-in is rolled back; its record is written apart
    failed = [e for e in _events(database) if e["action"] == "auth.sign_in_failed"]
    assert [(e["actor_email"], e["details"]) for e in failed] == [(world.email("a_officer"),
                                                                   {"reason": "credentials"})]
    assert failed[0]["ip_address"] == "127.0.0.1"


def test_an_api_call_commits_once(app: Flask, world: World) -> None:
    token = make_token(app, world.b)
    with counting_commits(app) as commits:
        visitor = app.test_client()
        # The first call notes when the token was used, with the call's own change: one commit.
        made = visitor.post("/api/v1/encounters", json=user_dealer(),
                            headers={**bearer(token), "Idempotency-Key": "one-commit-1"})
        assert made.status_code == 201, made.json
        assert commits == [1]
        commits.clear()
        again = visitor.post("/api/v1/encounters", json=user_dealer(),
                             headers={**bearer(token), "Idempotency-Key": "one-commit-1"})
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_data() == made.get_data()
        assert commits == [1]
        commits.clear()
        refused = visitor.post("/api/v1/encounters", json=user_dealer(offence_on="not a date"),
                               headers=bearer(token))
        assert refused.status_code == 422
        assert commits == []  # nothing changed, and "last used" was noted a moment ago


def test_a_refused_api_call_still_notes_when_its_token_was_used(app: Flask, world: World) -> None:
    token = make_token(app, world.b)
    refused = app.test_client().post("/api/v1/encounters", json={"person": {}}, headers=bearer(token))
    assert refused.status_code == 422
    with app.app_context(), scoped(world.b.id):
        assert db.session.scalar(select(ApiToken.last_used_at)) is not None
