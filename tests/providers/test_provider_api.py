"""The provider API: the feed of a provider's referrals across its forces, one referral, and moves."""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.accounts.models import User
from diversion.audit.models import AuditEvent
from diversion.cases.models import State
from diversion.catalogue.models import Provider
from diversion.extensions import db
from diversion.providers import services as workspace
from diversion.providers.feed import encode_cursor
from diversion.tenancy.context import provider_scoped, scoped
from tests.conftest import World, started_today
from tests.providers.conftest import Providers, bearer, ids, move, refer, state_of

FEED = "/api/v1/provider/referrals"


def _feed(client: FlaskClient, token: str, query: str = "") -> dict:
    response = client.get(f"{FEED}{query}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json


def test_the_feed_lists_the_providers_referrals_from_every_force_it_serves(
    client: FlaskClient, world: World, providers: Providers, p1_token: str,
) -> None:
    page = _feed(client, p1_token)
    assert ids(page) == [str(providers.referrals["a1"]), str(providers.referrals["b1"])]
    assert page["has_more"] is False
    first, second = page["referrals"]
    assert first["force"] == {"slug": "west-midlands", "name": world.a.name}
    assert second["force"] == {"slug": "durham", "name": world.b.name}
    assert first["course"]["slug"] == "cranstoun-divert"
    assert second["course"]["slug"] == "cranstoun-checkpoint"
    assert (first["pathway"], first["state"], first["sessions_attended"]) == ("divert", "offered", 0)
    assert second["pathway"] == "checkpoint"
    assert first["deadline"]
    assert first["sessions_required"] >= 1
    # What the provider needs to reach the person, and nothing about the case.
    assert first["person"] == {"given_name": "Alex", "surname": "Archer", "phone": "07700 900456",
                               "email": "archer@example.org", "address": "2 Example Road"}
    assert set(first) == {"id", "reference", "force", "course", "pathway", "state", "deadline",
                          "sessions_required", "sessions_attended", "person", "language", "created_at",
                          "updated_at", "transitions", "sessions"}
    # West Midlands and Durham work in English alone: neither asks the person's language.
    assert (first["language"], second["language"]) == (None, None)
    assert first["course"]["title_cy"] is None
    # The case's reference in its force, to quote to the force.
    assert re.fullmatch(r"WM-\d{4}-\d{6}", first["reference"])
    assert re.fullmatch(r"[A-Z]+-\d{4}-\d{6}", second["reference"])
    assert [(t["from"], t["to"]) for t in first["transitions"]] == [(None, "offered")]


def test_the_cursor_pages_and_brings_back_changed_referrals(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
) -> None:
    first = _feed(client, p1_token, "?limit=1")
    assert ids(first) == [str(providers.referrals["a1"])]
    assert first["has_more"] is True
    second = _feed(client, p1_token, f"?limit=1&cursor={first['next_cursor']}")
    assert ids(second) == [str(providers.referrals["b1"])]
    assert second["has_more"] is False
    caught_up = _feed(client, p1_token, f"?cursor={second['next_cursor']}")
    assert caught_up["referrals"] == []
    assert caught_up["next_cursor"] == second["next_cursor"]
    # A change by the force (through the same case service) puts the referral back in the feed, once.
    move(app, world.a, providers.referrals["a1"], State.ACCEPTED)
    move(app, world.a, providers.referrals["a1"], State.BOOKED)
    new = refer(app, world.a, providers.offerings["a1"], surname="Dale")
    changed = _feed(client, p1_token, f"?cursor={caught_up['next_cursor']}")
    assert ids(changed) == [str(providers.referrals["a1"]), str(new)]
    assert changed["referrals"][0]["state"] == "booked"
    # Reading from the start gives each referral once, latest change last.
    assert ids(_feed(client, p1_token)) == [str(providers.referrals["b1"]), str(providers.referrals["a1"]),
                                            str(new)]


@pytest.mark.parametrize(("query", "field"), [
    ("?cursor=not-a-cursor", "cursor"), (f"?cursor={encode_cursor(1)[:-1]}x", "cursor"),
    ("?cursor=djE6LTE", "cursor"), (f"?cursor={encode_cursor(10_000)}", "cursor"),
    ("?limit=0", "limit"), ("?limit=201", "limit"), ("?limit=ten", "limit"),
    ("?since=1", "since"), ("?limit=1&limit=2", "limit"),
])
def test_a_bad_query_is_422_naming_the_parameter(
    client: FlaskClient, providers: Providers, p1_token: str, query: str, field: str,
) -> None:
    response = client.get(f"{FEED}{query}", headers=bearer(p1_token))
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json["errors"]] == [field]


def test_one_referral_by_id(client: FlaskClient, providers: Providers, p1_token: str) -> None:
    referral = providers.referrals["b1"]
    response = client.get(f"{FEED}/{referral}", headers=bearer(p1_token))
    assert response.status_code == 200
    assert response.json["id"] == str(referral)
    assert response.json["person"]["surname"] == "Baker"
    missing = client.get(f"{FEED}/{uuid.uuid4()}", headers=bearer(p1_token))
    assert missing.status_code == 404
    assert missing.json == {"errors": [{"field": None, "message": "This provider has no such referral."}]}


def _move(client: FlaskClient, token: str, referral: uuid.UUID, **body: object):
    return client.post(f"{FEED}/{referral}/transitions", json=body, headers=bearer(token))


def test_the_provider_drives_the_lifecycle_through_the_case_services(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
) -> None:
    referral = providers.referrals["b1"]  # Durham's
    sessions = client.get(f"{FEED}/{referral}", headers=bearer(p1_token)).json["sessions_required"]
    session = {"starts_at": (started_today()).isoformat(), "venue": "Durham hub"}
    for to in ("accepted", *["booked", "attended"] * sessions):
        more = {"session": session} if to == "booked" else {}
        response = _move(client, p1_token, referral, to=to, reason=f"{to} by the provider", **more)
        assert response.status_code == 201, response.text
        assert response.json["transition"]["to"] == to
    done = _move(client, p1_token, referral, to="completed")
    assert done.status_code == 201, done.text
    assert done.json["referral"]["state"] == "completed"
    assert done.json["referral"]["sessions_attended"] == sessions
    assert state_of(app, world.b, referral) is State.COMPLETED
    # Each move is audited once in the referral's force, by its own event, naming the token.
    with app.app_context(), scoped(world.b.id):
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.object_id == str(referral), AuditEvent.action.like("referral.%"),
            AuditEvent.action != "referral.offered")).all()  # offered by the force, before the provider
        assert sorted({e.action for e in events}) == ["referral.accepted", "referral.attended", "referral.booked",
                                                     "referral.completed"]
        assert len(events) == 2 + 2 * sessions
        assert all(e.details["prefix"].startswith("dvp.cranstoun.") for e in events)
        assert not db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("provider_api.%"))).all()


def test_moves_the_lifecycle_refuses_are_409_and_change_nothing(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
) -> None:
    referral = providers.referrals["a1"]
    skipped = _move(client, p1_token, referral, to="completed")
    assert skipped.status_code == 409
    assert skipped.json["errors"] == [{"field": "to", "message": "A referral that is offered cannot become "
                                       "completed; it can become accepted, declined, not completed, withdrawn."}]
    stale = _move(client, p1_token, referral, to="accepted", expected_state="booked")
    assert stale.status_code == 409
    assert stale.json["errors"][0]["field"] == "expected_state"
    assert state_of(app, world.a, referral) is State.OFFERED
    assert _move(client, p1_token, referral, to="accepted", expected_state="offered").status_code == 201
    early = _move(client, p1_token, referral, to="completed")
    assert early.status_code == 409
    assert state_of(app, world.a, referral) is State.ACCEPTED


@pytest.mark.parametrize(("body", "field"), [
    ({"to": "not_completed"}, "reason"),
    ({"to": "not_completed", "reason": "   "}, "reason"),
    ({"to": "withdrawn", "reason": "moved away"}, "to"),
    ({"to": "finished"}, "to"),
    ({}, "to"),
    ({"to": "accepted", "colour": "blue"}, "colour"),
    ({"to": "accepted", "reason": "a\x00b"}, "reason"),
])
def test_a_bad_move_is_422_and_changes_nothing(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
    body: dict, field: str,
) -> None:
    referral = providers.referrals["a1"]
    response = _move(client, p1_token, referral, **body)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json["errors"]]
    assert state_of(app, world.a, referral) is State.OFFERED


def test_not_completed_with_a_reason_ends_the_referral_with_the_forces_outcome(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
) -> None:
    referral = providers.referrals["a1"]
    response = _move(client, p1_token, referral, to="not_completed", reason="Did not attend")
    assert response.status_code == 201, response.text
    assert response.json["transition"]["reason"] == "Did not attend"
    assert state_of(app, world.a, referral) is State.NOT_COMPLETED


def test_a_move_in_the_provider_workspace_reaches_the_feed(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
) -> None:
    cursor = _feed(client, p1_token)["next_cursor"]
    staff_id = world.users["provider_staff"].id  # Cranstoun's staff
    with app.app_context(), provider_scoped(providers.p1.id, staff_id):
        provider = db.session.get(Provider, providers.p1.id)
        staff = db.session.get(User, staff_id)
        assert provider is not None
        assert staff is not None
        referral = workspace.find_referral(provider, providers.referrals["b1"])
        assert referral is not None
        workspace.accept(referral, actor=staff)
        db.session.commit()
    page = _feed(client, p1_token, f"?cursor={cursor}")
    assert ids(page) == [str(providers.referrals["b1"])]
    assert page["referrals"][0]["state"] == "accepted"


def test_the_provider_records_a_missed_session_and_rebooks_through_the_api(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
) -> None:
    referral = providers.referrals["b1"]  # Durham's
    session = {"starts_at": (started_today()).isoformat(), "venue": "Durham hub"}
    assert _move(client, p1_token, referral, to="accepted").status_code == 201
    too_early = _move(client, p1_token, referral, to="missed")
    assert too_early.status_code == 409  # accepted cannot become missed: nothing was booked
    assert _move(client, p1_token, referral, to="booked", session=session).status_code == 201
    missed = _move(client, p1_token, referral, to="missed", expected_state="booked", reason="No answer")
    assert missed.status_code == 201, missed.text
    assert missed.json["transition"]["to"] == "missed"
    assert missed.json["referral"]["state"] == "missed"
    assert missed.json["referral"]["sessions"][0]["attendance"] == "did_not_attend"
    assert state_of(app, world.b, referral) is State.MISSED
    feed = client.get(FEED, headers=bearer(p1_token)).json["referrals"]
    assert next(item for item in feed if item["id"] == str(referral))["state"] == "missed"
    rebooked = _move(client, p1_token, referral, to="booked", expected_state="missed", session=session)
    assert rebooked.status_code == 201, rebooked.text
    assert rebooked.json["referral"]["state"] == "booked"
    assert len(rebooked.json["referral"]["sessions"]) == 2


def test_a_feed_page_costs_the_same_statements_whatever_its_length(
    app: Flask, client: FlaskClient, providers: Providers, p1_token: str,
) -> None:
    assert len(_feed(client, p1_token, "?limit=2")["referrals"]) == 2  # the token's first use is noted, once
    assert _statements_of_feed(app, client, p1_token, "?limit=1") == \
        _statements_of_feed(app, client, p1_token, "?limit=2")


def _statements_of_feed(app: Flask, client: FlaskClient, token: str, query: str) -> int:
    seen: list[str] = []

    def note(*args: object) -> None:
        seen.append(str(args[2]))

    with app.app_context():
        engine = db.engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", note)
    try:
        assert client.get(f"{FEED}{query}", headers=bearer(token)).status_code == 200
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", note)
    return len(seen)


def test_a_step_made_with_the_providers_token_is_the_providers_case_systems_on_both_sides(
    app: Flask, client: FlaskClient, world: World, providers: Providers, p1_token: str,
) -> None:
    """The timelines name the case system that made a step through the API, not the force; a
    step the platform made (the offer here) keeps its words."""
    from tests.conftest import sign_in

    referral = providers.referrals["b1"]  # Durham's, offered by the platform
    accepted = _move(client, p1_token, referral, to="accepted", expected_state="offered")
    assert accepted.status_code == 201, accepted.text
    with app.app_context():
        name = db.session.get(Provider, providers.p1.id).name
    staff = app.test_client()
    sign_in(staff, world.email("provider_staff"))
    page = staff.get(f"/provider/referrals/{referral}")
    assert page.status_code == 200
    bylines = re.findall(r'moj-timeline__byline">([^<]*)<', page.text)
    assert bylines == [f"by {name}’s case system", f"by {world.b.name}"]  # newest first
    officer = app.test_client()
    sign_in(officer, world.email("b_officer"))
    case = officer.get(f"/durham/cases/{accepted.json['referral']['reference']}")
    assert case.status_code == 200
    assert f"{name}’s case system" in case.text
    assert "by the platform" in case.text  # the offer, made by the platform itself
