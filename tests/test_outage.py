"""When the database cannot answer: 503 with Retry-After, pages and JSON alike, never a raw error page;
a fault of the code stays a 500; the health check says which; the end of a request never fails."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from diversion.accounts.models import User
from diversion.extensions import db
from diversion.outage import TITLE
from diversion.tenancy.context import current_scope, set_scope
from tests import databases
from tests.api.conftest import bearer, user_dealer
from tests.conftest import World, make_app, sign_in
from tests.databases import postgres_admin_url

requires_postgresql = pytest.mark.skipif(postgres_admin_url() is None,
                                         reason="PostgreSQL only: set TEST_DATABASE_URL to run")
RETRY_AFTER = 7  # this suite's setting, to tell it from the default


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (taken from the system, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unreachable(database: databases.TestDatabase, tmp_path: Path) -> str:
    """A URL of the same kind as ``database`` where no database answers."""
    if database.is_postgresql:
        return f"postgresql+psycopg://diversion_app@127.0.0.1:{closed_port()}/{database.name}"
    return f"sqlite:///{tmp_path / 'no-such-folder' / 'diversion.db'}"


@pytest.fixture
def down(database: databases.TestDatabase, tmp_path: Path) -> Iterator[Flask]:
    """The app with its database gone (the same secret key, so a session cookie still reads)."""
    application = make_app(database, SQLALCHEMY_DATABASE_URI=unreachable(database, tmp_path),
                           RETRY_AFTER_SECONDS=RETRY_AFTER)
    yield application
    with application.app_context():
        db.engine.dispose()


def _connects(application: Flask) -> list[int]:
    """Counts the app's attempts to open a database connection."""
    attempts: list[int] = []
    with application.app_context():
        event.listen(db.engine, "do_connect", lambda *_args: attempts.append(1))
    return attempts


def test_a_page_gets_a_plain_503_without_touching_the_database_again(
    client: FlaskClient, world: World, down: Flask,
) -> None:
    sign_in(client, world.email("a_officer"))
    cookie = client.get_cookie("diversion_session")
    assert cookie is not None
    visitor = down.test_client()
    visitor.set_cookie("diversion_session", cookie.value)
    attempts = _connects(down)
    for path in ("/", f"/{world.a.slug}/", "/provider/"):
        attempts.clear()
        response = visitor.get(path)
        assert response.status_code == 503, path
        assert response.headers["Retry-After"] == str(RETRY_AFTER)
        assert response.mimetype == "text/html"
        assert str(TITLE) in response.text
        assert "Try again in a minute. Nothing was changed." in response.text
        assert "Traceback" not in response.text
        assert "Werkzeug" not in response.text
        # The page itself: the service's own, with nobody signed in on it, since
        # the user loader would go to the database once more.
        assert "diversion-header" in response.text
        assert "Signed in as" not in response.text
        assert attempts == [1], path


def test_the_json_apis_answer_503_in_their_error_shape(world: World, down: Flask) -> None:
    visitor = down.test_client()
    for method, path, token in (
        ("POST", "/api/v1/encounters", f"dvt.{world.a.slug}.0123abcd.secret"),
        ("GET", "/api/v1/referrals", f"dvt.{world.a.slug}.0123abcd.secret"),
        ("GET", "/api/v1/provider/referrals", "dvp.cranstoun.0123abcd.secret"),
        ("POST", "/api/v1/provider/referrals/00000000-0000-4000-8000-000000000000/transitions",
         "dvp.cranstoun.0123abcd.secret"),
    ):
        response = visitor.open(path, method=method, json=user_dealer(), headers=bearer(token))
        assert response.status_code == 503, path
        assert response.mimetype == "application/json"
        assert response.headers["Retry-After"] == str(RETRY_AFTER)
        (error,) = response.json["errors"]
        assert error["field"] is None
        assert error["message"].startswith(f"{TITLE}; try again in a minute.")
        assert error["message"].endswith("Nothing was changed.")


def test_the_health_check_says_whether_the_database_answers(client: FlaskClient, down: Flask) -> None:
    healthy = client.get("/healthz")
    assert (healthy.status_code, healthy.json) == (200, {"status": "ok"})
    unhealthy = down.test_client().get("/healthz")
    assert unhealthy.status_code == 503
    assert unhealthy.json == {"status": "unhealthy", "database": "not answering"}
    assert unhealthy.headers["Retry-After"] == str(RETRY_AFTER)


# ---------------------------------------------------------------- faults of the code, drops mid-request

@pytest.fixture
def faulty(database: databases.TestDatabase, world: World) -> Iterator[Flask]:
    """The app with a few routes that fail on purpose (added before its first request)."""
    application = make_app(database)
    routes = Blueprint("faults", __name__)

    @routes.get("/faults/missing-table")
    def missing_table() -> str:
        db.session.execute(text("SELECT * FROM no_such_table"))
        return "unreachable"

    @routes.get("/faults/used-after-failure")
    def used_after_failure() -> str:
        db.session.add(User(name="No email"))  # NOT NULL: the flush fails
        with contextlib.suppress(IntegrityError):  # the bug: going on without a rollback
            db.session.flush()
        db.session.execute(text("SELECT 1"))
        return "unreachable"

    @routes.get("/faults/dropped")
    def dropped() -> str:
        set_scope(world.a.id)
        db.session.execute(text("SELECT 1"))
        # The server ends this very connection, as a restart or a failover would.
        db.session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return "unreachable"

    @routes.get("/faults/used-after-drop")
    def used_after_drop() -> str:
        set_scope(world.a.id)
        with contextlib.suppress(OperationalError):
            db.session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        db.session.execute(text("SELECT 1"))  # "roll back first": caused by the drop
        return "unreachable"

    @routes.get("/faults/dropped-after-answer")
    def dropped_after_answer() -> str:
        set_scope(world.a.id)
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        # Another connection ends this one after its work: only the end of the request meets it dead.
        with db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()
        return "answered"

    application.register_blueprint(routes)
    yield application
    with application.app_context():
        db.engine.dispose()


def test_a_fault_of_the_code_stays_a_logged_500(faulty: Flask, caplog: pytest.LogCaptureFixture) -> None:
    visitor = faulty.test_client()
    for path in ("/faults/missing-table", "/faults/used-after-failure"):
        caplog.clear()
        response = visitor.get(path)
        assert response.status_code == 500, path
        assert "Retry-After" not in response.headers
        assert "Sorry, there is a problem with the service" in response.text
        assert str(TITLE) not in response.text
        assert any(record.levelname == "ERROR" and record.exc_info for record in caplog.records), path
    assert visitor.get("/healthz").status_code == 200


@requires_postgresql
@pytest.mark.postgres
def test_a_connection_dropped_after_the_answer_is_made_ends_the_request_quietly(faulty: Flask) -> None:
    """The end of the request rolls back on a dead connection: that must not turn the answer into a raw page."""
    visitor = faulty.test_client()
    for _ in range(3):
        response = visitor.get("/faults/dropped-after-answer")  # the test client raises what the teardown raises
        assert response.status_code == 200
        assert response.text == "answered"
    assert visitor.get("/healthz").status_code == 200


@requires_postgresql
@pytest.mark.postgres
def test_a_connection_dropped_mid_request_gets_503_and_the_next_request_works(faulty: Flask) -> None:
    visitor = faulty.test_client()
    for path in ("/faults/dropped", "/faults/used-after-drop"):
        # The test client raises what the teardown raises: it must raise nothing.
        response = visitor.get(path)
        assert response.status_code == 503, path
        assert response.headers["Retry-After"] == "30"
        assert str(TITLE) in response.text
        # The pool lets the dead connection go; the app goes on without a restart.
        assert visitor.get("/healthz").json == {"status": "ok"}
        assert visitor.get("/").status_code == 200


def test_the_end_of_a_request_forgets_the_scope_without_writing(app: Flask, world: World) -> None:
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with app.test_request_context("/"):
        app.preprocess_request()
        set_scope(world.a.id)
        db.session.execute(text("SELECT 1"))  # a transaction is open, with the force's settings
        event.listen(engine, "before_cursor_execute", note)
        try:
            app.do_teardown_request()
        finally:
            event.remove(engine, "before_cursor_execute", note)
        assert current_scope().tenant_id is None
        assert statements == []


def test_the_503_page_leads_back_to_the_page_asked_for(down: Flask) -> None:
    response = down.test_client().get("/west-midlands/referrals?state=offered")
    assert response.status_code == 503
    assert 'href="/west-midlands/referrals?state=offered">Try again</a>' in response.text


def test_a_command_says_the_database_does_not_answer_in_plain_words(down: Flask) -> None:
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from diversion.cli import main

    for command in (["referrals", "expire"], ["api", "forget-keys"], ["webhooks", "deliver"]):
        result = CliRunner().invoke(main, command, obj=ScriptInfo(create_app=lambda: down))
        assert result.exit_code == 1, (command, result.output)
        assert "The database does not answer" in result.output, command
        assert "Traceback" not in result.output


def test_the_webhook_worker_waits_for_the_database_round_after_round(down: Flask) -> None:
    from diversion.providers import webhooks

    rounds: list[int] = []
    with down.app_context():
        webhooks.run_forever(interval=0, batch=1, echo=print,
                             should_stop=lambda: rounds.append(1) is None and len(rounds) > 3)
    assert len(rounds) == 4  # three rounds met the database down, and the worker went on


# ---------------------------------------------------------------- pooled connections closed while idle

def test_a_connection_pinged_after_lying_idle_is_handed_out_outside_a_transaction(
    database: databases.TestDatabase,
) -> None:
    """The ping's own transaction is ended: a connection asked for in autocommit (as case
    references make their yearly sequence, apart from the caller's transaction) could not be
    switched to it inside one, and the national demo's import stopped there."""
    application = make_app(database, DATABASE_PING_AFTER_SECONDS=0.0)
    try:
        with application.app_context():
            with db.engine.connect() as connection:  # it lies in the pool once given back
                connection.execute(text("SELECT 1"))
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as apart:
                assert apart.execute(text("SELECT 2")).scalar() == 2
    finally:
        with application.app_context():
            db.engine.dispose()


@pytest.mark.parametrize("ping_after", [0.0, 3600.0])
def test_a_pooled_connection_closed_while_idle_is_checked_only_once_idle_long_enough(
    database: databases.TestDatabase, ping_after: float,
) -> None:
    """Without a ping per request, a connection the server closed while it lay in the pool is found
    by the ping when it lay idle longer than the setting (the request never sees it); before that,
    the request that meets it is answered 503 and the pool starts afresh for the next."""
    if not database.is_postgresql:
        pytest.skip("PostgreSQL only: the server closes the connection")
    application = make_app(database, DATABASE_PING_AFTER_SECONDS=ping_after)
    visitor = application.test_client()
    assert visitor.get("/healthz").status_code == 200  # a connection now lies in the pool
    admin = create_engine(database.inspector_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            closed = connection.scalar(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND usename = :role AND pid <> pg_backend_pid()"),
                {"role": databases.APP_ROLE})
        assert closed >= 1
        first = visitor.get("/healthz")
        assert first.status_code == (200 if ping_after == 0 else 503)
        assert visitor.get("/healthz").status_code == 200
    finally:
        admin.dispose()
        with application.app_context():
            db.engine.dispose()
