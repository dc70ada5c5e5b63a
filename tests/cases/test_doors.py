"""Every door moves a referral by the same rule and leaves the same rows.

The same sequence (accept, then for each of the course's sessions: book it and
record its attendance, then complete) is driven through the force's pages,
the force API, the provider workspace and the provider API, each on a
referral of its own in West Midlands (Cranstoun's DIVERT course, two
sessions). The stored steps, sessions and outcome must be the same at
every door; and every door refuses attendance with no booked session awaiting it,
with the reason, and changes nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import BookedSession, Referral, State
from diversion.catalogue.models import Offering
from diversion.db import LONDON
from diversion.extensions import db
from diversion.jsonapi import tokens
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.api.conftest import bearer, make_token
from tests.conftest import World, post_form, sign_in, steps_of

FACTS = {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
         "user_dealer": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
         "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
         "resident_in_force_area": True, "stage": "street", "suitable_for_out_of_court_disposal": True}
VENUE = "Digbeth community hub"


def _held() -> datetime:
    """A session held this morning (UK time), so that its attendance can be recorded."""
    now = datetime.now(LONDON)
    return (now - timedelta(hours=2)).replace(second=0, microsecond=0)


def _refer(app: Flask, world: World, surname: str) -> uuid.UUID:
    """A West Midlands referral to Cranstoun's DIVERT course, as an officer makes it (offered)."""
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        today = datetime.now(UTC).date()
        _, decision = cases.record_encounter(tenant, cases.Intake(
            Identity(surname, "Sam", date(1994, 6, 7)), Contact(), "W1", today, dict(FACTS)), actor=SYSTEM, today=today)
        offering = db.session.scalar(select(Offering).where(Offering.pathway == "divert"))
        assert offering is not None
        referral = cases.refer(tenant, decision, offering, actor=SYSTEM, today=today)
        db.session.commit()
        return referral.id


@dataclass(frozen=True)
class Stored:
    """What a referral's moves left, without ids, actors, reasons or exact times."""

    steps: list[tuple[State | None, State]]
    sessions: list[tuple[str, str | None, str]]  # venue, attendance, start to the minute (UK)
    state: State
    attended: int
    outcome: tuple[str | None, str | None]


def _stored(app: Flask, world: World, referral_id: uuid.UUID) -> Stored:
    with app.app_context(), scoped(world.a.id):
        referral = db.session.get(Referral, referral_id)
        assert referral is not None
        steps = steps_of(referral_id)
        booked = db.session.scalars(select(BookedSession).where(BookedSession.referral_id == referral_id)
                                    .order_by(BookedSession.starts_at, BookedSession.booked_at)).all()
        return Stored([(s.from_state, s.to_state) for s in steps],
                      [(s.venue, s.attendance.value if s.attendance else None,
                        f"{s.starts_at.astimezone(LONDON):%Y-%m-%d %H:%M}") for s in booked],
                      referral.state, referral.sessions_attended, (referral.outcome_code, referral.outcome_label))


# ---------------------------------------------------------------- the doors

Door = Callable[[str, uuid.UUID, datetime], Any]  # (what to do, referral, session start) -> the answer


def _session_form(held: datetime) -> dict[str, Any]:
    return {"day": [str(held.day), str(held.month), str(held.year)], "time": f"{held:%H:%M}", "venue": VENUE}


def _pages(client: FlaskClient, world: World, app: Flask) -> Door:
    sign_in(client, world.email("a_officer"))

    def act(what: str, referral_id: uuid.UUID, held: datetime) -> Any:
        with app.app_context(), scoped(world.a.id):
            referral = db.session.get(Referral, referral_id)
            assert referral is not None
            page = f"/west-midlands/cases/{referral.encounter_id}"
            waiting = next((s.id for s in cases.sessions_of(referral) if s.attendance is None), uuid.uuid4())
        if what == "book":
            return post_form(client, page, f"/west-midlands/referrals/{referral_id}/sessions", _session_form(held))
        if what in ("attend", "miss"):
            return post_form(client, page, f"/west-midlands/sessions/{waiting}/attendance",
                             {"attendance": "attended" if what == "attend" else "did_not_attend", "confirm": "y"})
        return post_form(client, page, f"/west-midlands/referrals/{referral_id}/transitions",
                         {"to": what, "reason": "by the officer"})
    return act


def _api(client: FlaskClient, auth: dict[str, str], base: str) -> Door:
    def act(what: str, referral_id: uuid.UUID, held: datetime) -> Any:
        body: dict[str, Any] = {"to": {"book": "booked", "attend": "attended", "miss": "missed"}.get(what, what)}
        if what == "book":
            body["session"] = {"starts_at": held.isoformat(), "venue": VENUE}
        return client.post(f"{base}/{referral_id}/transitions", json=body, headers=auth)
    return act


def _force_api(client: FlaskClient, world: World, app: Flask) -> Door:
    return _api(client, bearer(make_token(app, world.a)), "/api/v1/referrals")


def _workspace(client: FlaskClient, world: World, app: Flask) -> Door:
    sign_in(client, world.email("provider_staff"))

    def act(what: str, referral_id: uuid.UUID, held: datetime) -> Any:
        page = f"/provider/referrals/{referral_id}"
        if what == "accepted":
            return post_form(client, page, f"{page}/accept")
        if what == "book":
            return post_form(client, page, f"{page}/sessions", _session_form(held))
        if what in ("attend", "miss"):
            with app.app_context(), scoped(world.a.id):
                referral = db.session.get(Referral, referral_id)
                assert referral is not None
                waiting = next((s.id for s in cases.sessions_of(referral) if s.attendance is None), uuid.uuid4())
            return post_form(client, page, f"/provider/sessions/{waiting}/attendance",
                             {"attendance": "attended" if what == "attend" else "did_not_attend", "confirm": "y"})
        return post_form(client, page, f"{page}/complete", {"confirm": "y"})
    return act


def _provider_api(client: FlaskClient, world: World, app: Flask) -> Door:
    from diversion.catalogue.models import Provider

    with app.app_context():
        provider = db.session.get(Provider, world.providers["cranstoun"].id)
        assert provider is not None
        _row, secret = tokens.make_provider_token(provider, name="Doors", actor=SYSTEM)
        db.session.commit()
    return _api(client, bearer(secret), "/api/v1/provider/referrals")


DOORS = {"force pages": _pages, "force API": _force_api, "provider workspace": _workspace,
         "provider API": _provider_api}
SEQUENCE = ("accepted", "book", "attend", "book", "attend", "completed")  # DIVERT: two sessions


def test_every_door_makes_the_same_rows(app: Flask, world: World) -> None:
    held = _held()
    stored: dict[str, Stored] = {}
    for name, door in DOORS.items():
        client = app.test_client()
        act = door(client, world, app)
        referral_id = _refer(app, world, name.replace(" ", "-").title())
        for what in SEQUENCE:
            answer = act(what, referral_id, held)
            assert answer.status_code in (201, 302), (name, what, answer.status_code, answer.text[:300])
        stored[name] = _stored(app, world, referral_id)
    first = stored["force pages"]
    assert first.state is State.COMPLETED
    assert first.steps == [(None, State.OFFERED), (State.OFFERED, State.ACCEPTED), (State.ACCEPTED, State.BOOKED),
                           (State.BOOKED, State.ATTENDED), (State.ATTENDED, State.BOOKED),
                           (State.BOOKED, State.ATTENDED), (State.ATTENDED, State.COMPLETED)]
    assert [s[:2] for s in first.sessions] == [(VENUE, "attended"), (VENUE, "attended")]
    assert first.attended == 2
    for name, rows in stored.items():
        assert rows == first, name


def test_every_door_records_a_missed_session_rebooks_it_and_ends_at_the_second_miss(
        app: Flask, world: World) -> None:
    held = _held()
    stored: dict[str, Stored] = {}
    for name, door in DOORS.items():
        client = app.test_client()
        act = door(client, world, app)
        referral_id = _refer(app, world, name.replace(" ", "-").title() + "-Missed")
        for what in ("accepted", "book", "miss", "book", "attend", "book", "miss"):
            answer = act(what, referral_id, held)
            assert answer.status_code in (201, 302), (name, what, answer.status_code, answer.text[:300])
            if what == "miss" and answer.status_code == 302:
                after = client.get(answer.headers["Location"]).text
                assert "Recorded: did not attend" in after
                if "The referral waits for another session to be booked" in after:  # the first miss
                    assert re.search(r"Book session 1 of \d+ again</h[23]>", after), name
            if what == "book" and answer.status_code == 302:  # the page says what did not attend will do
                page = client.get(answer.headers["Location"]).text
                assert ("the session is recorded as missed and another can be booked" in page
                        or "Did not attend ends the referral as not completed" in page), name
        stored[name] = _stored(app, world, referral_id)
    first = stored["force pages"]
    assert first.steps == [(None, State.OFFERED), (State.OFFERED, State.ACCEPTED), (State.ACCEPTED, State.BOOKED),
                           (State.BOOKED, State.MISSED), (State.MISSED, State.BOOKED),
                           (State.BOOKED, State.ATTENDED), (State.ATTENDED, State.BOOKED),
                           (State.BOOKED, State.NOT_COMPLETED)]
    assert [s[:2] for s in first.sessions] == [(VENUE, "did_not_attend"), (VENUE, "attended"),
                                               (VENUE, "did_not_attend")]
    assert first.state is State.NOT_COMPLETED
    assert first.outcome[0] is not None
    for name, rows in stored.items():
        assert rows == first, name


@pytest.mark.parametrize("name", list(DOORS))
def test_every_door_refuses_attendance_with_no_session_waiting(app: Flask, world: World, name: str) -> None:
    client = app.test_client()
    act = DOORS[name](client, world, app)
    referral_id = _refer(app, world, "Refused")
    held = _held()
    for what in ("accepted", "book", "attend"):  # the first of two sessions, attended
        assert act(what, referral_id, held).status_code in (201, 302)
    before = _stored(app, world, referral_id)
    answer = act("attend", referral_id, held)
    if name.endswith("API"):
        assert answer.status_code == 422, answer.text
        assert answer.json["errors"] == [{"field": "session_id", "message": (
            "No booked session of this referral has started and awaits its attendance: book one first.")}]
    else:  # the page offers no attendance to record: the address of one is not found
        assert answer.status_code == 404
        page = client.get(f"/provider/referrals/{referral_id}" if name == "provider workspace" else
                          _case_url(app, world, referral_id)).text
        assert "Record attendance" not in page
        assert "Book session 2 of 2" in page
    assert _stored(app, world, referral_id) == before


def _case_url(app: Flask, world: World, referral_id: uuid.UUID) -> str:
    with app.app_context(), scoped(world.a.id):
        referral = db.session.get(Referral, referral_id)
        assert referral is not None
        return f"/west-midlands/cases/{referral.encounter_id}"


@pytest.mark.parametrize("name", ["force pages", "provider workspace"])
def test_the_case_page_captions_its_sessions_true_to_whoever_booked_them(app: Flask, world: World,
                                                                         name: str) -> None:
    """An officer books sessions as a provider's staff do: the case page's table of them says they are
    booked, not who booked them."""
    client = app.test_client()
    act = DOORS[name](client, world, app)
    referral_id = _refer(app, world, "Captioned")
    for what in ("accepted", "book"):
        assert act(what, referral_id, _held()).status_code in (201, 302)
    officer = app.test_client()
    sign_in(officer, world.email("a_officer"))
    page = officer.get(_case_url(app, world, referral_id)).text
    assert re.search(r"<caption[^>]*>\s*Sessions booked\s*</caption>", page)
    assert "booked by the provider" not in page
