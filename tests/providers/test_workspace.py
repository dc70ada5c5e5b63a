"""The provider workspace drives the referral lifecycle; the force sees the outcome on its case page."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from diversion.accounts.models import ProviderMembership
from diversion.cases.models import Attendance, BookedSession, Referral, State, Why
from diversion.db import LONDON
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World, csrf_token, sign_in, steps_of
from tests.providers.conftest import Made, Referrals

LONDON_YESTERDAY = datetime.now(UTC) - timedelta(days=1)


def _post(client: FlaskClient, referral: Made, path: str, data: dict[str, str | list[str]]) -> object:
    token = csrf_token(client.get(f"/provider/referrals/{referral.id}").text)
    return client.post(path, data={**data, "csrf_token": token})


def _booking(venue: str = "Cranstoun hub, Digbeth", day: datetime = LONDON_YESTERDAY) -> dict[str, str | list[str]]:
    return {"day": [str(day.day), str(day.month), str(day.year)], "time": "10:30", "venue": venue}


def _state(app: Flask, made: Made) -> tuple[State, int, str | None]:
    with app.app_context(), scoped(made.tenant_id):
        referral = db.session.get(Referral, made.id)
        assert referral is not None
        return referral.state, referral.sessions_attended, referral.outcome_label


def _sessions(app: Flask, made: Made) -> list[BookedSession]:
    with app.app_context(), scoped(made.tenant_id):
        found = list(db.session.scalars(select(BookedSession).where(BookedSession.referral_id == made.id)
                                        .order_by(BookedSession.booked_at)))
        db.session.expunge_all()
        return found


def test_accept_book_attend_complete_and_the_force_sees_the_outcome(
        app: Flask, client: FlaskClient, world: World, referrals: Referrals) -> None:
    mine = referrals.west_midlands
    sign_in(client, world.email("provider_staff"))
    page = client.get(f"/provider/referrals/{mine.id}")
    assert page.status_code == 200
    assert "Sam Midlander" in page.text
    assert mine.phone in page.text  # contact details, here only
    assert re.search(r'Case reference\s*</dt>\s*<dd class="[^"]*diversion-reference">\s*WM-\d{4}-\d{6}\s*</dd>',
                     page.text)  # to quote to the force
    assert "No session is booked yet." in page.text
    assert "0 sessions booked" not in page.text  # no table of nothing

    assert _post(client, mine, f"/provider/referrals/{mine.id}/accept", {}).status_code == 302
    assert _state(app, mine)[0] is State.ACCEPTED
    for number in (1, 2):
        booked = _post(client, mine, f"/provider/referrals/{mine.id}/sessions", _booking())
        assert booked.status_code == 302, booked.get_data(as_text=True)[:300]
        assert _state(app, mine)[0] is State.BOOKED
        session = _sessions(app, mine)[-1]
        assert session.venue == "Cranstoun hub, Digbeth"
        assert session.starts_at.astimezone(LONDON).strftime("%H:%M") == "10:30"  # typed in UK time
        attended = _post(client, mine, f"/provider/sessions/{session.id}/attendance",
                         {"attendance": "attended", "confirm": "y"})
        assert attended.status_code == 302
        assert _state(app, mine)[:2] == (State.ATTENDED, number)
    ready = client.get(f"/provider/referrals/{mine.id}").text
    assert "Every session is attended: 2 of 2." in ready
    assert "2 sessions booked" in ready
    done = _post(client, mine, f"/provider/referrals/{mine.id}/complete", {"confirm": "y"})
    assert done.status_code == 302
    state, attended_count, outcome = _state(app, mine)
    assert (state, attended_count) == (State.COMPLETED, 2)
    assert outcome == "Community resolution: no criminal record"  # West Midlands' own outcome
    with app.app_context(), scoped(mine.tenant_id):
        steps = steps_of(mine.id)
        assert [s.to_state for s in steps] == [State.OFFERED, State.ACCEPTED, State.BOOKED, State.ATTENDED,
                                               State.BOOKED, State.ATTENDED, State.COMPLETED]
        assert {s.actor_id for s in steps[1:]} == {world.users["provider_staff"].id}

    officer = app.test_client()
    sign_in(officer, world.email("a_officer"))
    case = officer.get(f"/west-midlands/cases/{mine.encounter_id}")
    assert case.status_code == 200
    assert "Community resolution: no criminal record" in case.text
    assert "Cranstoun hub, Digbeth" in case.text
    assert "Provider Staff" in case.text  # who moved it, on the timeline


def test_a_missed_session_is_rebooked_and_a_second_miss_ends_the_referral(
        app: Flask, client: FlaskClient, world: World, referrals: Referrals) -> None:
    mine = referrals.thames_valley
    sign_in(client, world.email("provider_staff"))
    _post(client, mine, f"/provider/referrals/{mine.id}/accept", {})
    _post(client, mine, f"/provider/referrals/{mine.id}/sessions", _booking("Oxford"))
    session = _sessions(app, mine)[0]
    page = client.get(f"/provider/referrals/{mine.id}").text
    assert "the session is recorded as missed and another can be booked" in page
    assert "The force allows 1 missed session" in page
    no_confirmation = _post(client, mine, f"/provider/sessions/{session.id}/attendance",
                            {"attendance": "did_not_attend"})
    assert no_confirmation.status_code == 400
    assert "Confirm what happened" in no_confirmation.get_data(as_text=True)
    assert _state(app, mine)[0] is State.BOOKED
    answer = _post(client, mine, f"/provider/sessions/{session.id}/attendance",
                   {"attendance": "did_not_attend", "note": "No answer on the phone", "confirm": "y"})
    assert answer.status_code == 302
    assert _state(app, mine) == (State.MISSED, 0, None)  # waiting for a booking, not ended
    assert _sessions(app, mine)[0].attendance is Attendance.DID_NOT_ATTEND
    page = client.get(f"/provider/referrals/{mine.id}").text
    assert "The referral waits for another session to be booked" in page
    assert "Missed a session" in page
    assert re.search(r"Book session 1 of \d+ again</h2>", page)
    # Rebooked: the same session of the course, another date.
    assert _post(client, mine, f"/provider/referrals/{mine.id}/sessions", _booking("Banbury")).status_code == 302
    assert _state(app, mine)[0] is State.BOOKED
    again = _sessions(app, mine)[-1]
    assert again.venue == "Banbury"
    page = client.get(f"/provider/referrals/{mine.id}").text
    assert "Did not attend ends the referral as not completed: 2 sessions missed, more than the 1" in page
    answer = _post(client, mine, f"/provider/sessions/{again.id}/attendance",
                   {"attendance": "did_not_attend", "confirm": "y"})
    assert answer.status_code == 302
    state, _, outcome = _state(app, mine)
    assert state is State.NOT_COMPLETED
    assert outcome == "Prosecution: the deferred summons proceeds"  # Thames Valley's action
    with app.app_context(), scoped(mine.tenant_id):
        steps = steps_of(mine.id)
        assert [s.to_state for s in steps] == [State.OFFERED, State.ACCEPTED, State.BOOKED, State.MISSED,
                                               State.BOOKED, State.NOT_COMPLETED]
        assert (steps[3].why, steps[3].reason) == (Why.DID_NOT_ATTEND, "No answer on the phone")
        assert steps[3].account.startswith("Did not attend the session of ")
        assert steps[3].account.endswith(": No answer on the phone")
        assert steps[-1].account.endswith(". The referral ends: 2 sessions missed, more than the 1 the force allows")


def test_the_force_setting_of_missed_sessions_applies(app: Flask, client: FlaskClient, world: World,
                                                      referrals: Referrals) -> None:
    mine = referrals.thames_valley
    with app.app_context():
        tenant = db.session.get(Tenant, mine.tenant_id)
        assert tenant is not None
        tenant.settings = {**tenant.settings, "missed_sessions_allowed": 0}
        db.session.commit()
    sign_in(client, world.email("provider_staff"))
    _post(client, mine, f"/provider/referrals/{mine.id}/accept", {})
    _post(client, mine, f"/provider/referrals/{mine.id}/sessions", _booking("Oxford"))
    page = client.get(f"/provider/referrals/{mine.id}").text
    assert "Did not attend ends the referral as not completed: the force allows no missed session" in page
    session = _sessions(app, mine)[0]
    _post(client, mine, f"/provider/sessions/{session.id}/attendance", {"attendance": "did_not_attend", "confirm": "y"})
    assert _state(app, mine)[0] is State.NOT_COMPLETED


def test_the_provider_declines_a_referral_with_its_reason(app: Flask, client: FlaskClient, world: World,
                                                          referrals: Referrals) -> None:
    mine = referrals.west_midlands
    sign_in(client, world.email("provider_staff"))
    page = client.get(f"/provider/referrals/{mine.id}").text
    assert "Decline the referral" in page
    blank = _post(client, mine, f"/provider/referrals/{mine.id}/decline", {"reason": "   "})
    assert blank.status_code == 400
    assert "Give the reason the referral is declined" in blank.get_data(as_text=True)
    assert _state(app, mine)[0] is State.OFFERED
    done = _post(client, mine, f"/provider/referrals/{mine.id}/decline", {"reason": "No places before the deadline"})
    assert done.status_code == 302
    state, _, outcome = _state(app, mine)
    assert state is State.DECLINED
    assert outcome
    page = client.get(f"/provider/referrals/{mine.id}").text
    assert "No places before the deadline" in page
    assert "Decline the referral" not in page
    again = _post(client, mine, f"/provider/referrals/{mine.id}/decline", {"reason": "Twice"})
    assert again.status_code == 400
    assert "cannot become declined" in again.get_data(as_text=True)
    # The force reads the reason on its case page.
    sign_in(client, world.email("a_officer"))
    case = client.get(f"/{world.a.slug}/cases/{mine.encounter_id}").text
    assert "No places before the deadline" in case
    assert "Referral declined" in case


def test_bad_input_is_named_and_changes_nothing(app: Flask, client: FlaskClient, world: World,
                                               referrals: Referrals) -> None:
    mine = referrals.west_midlands
    sign_in(client, world.email("provider_staff"))
    not_yet = _post(client, mine, f"/provider/referrals/{mine.id}/sessions", _booking())
    assert not_yet.status_code == 400
    assert "accept it first" in not_yet.get_data(as_text=True)
    _post(client, mine, f"/provider/referrals/{mine.id}/accept", {})
    blank = _post(client, mine, f"/provider/referrals/{mine.id}/sessions", _booking(venue="  "))
    assert blank.status_code == 400
    assert "Enter where the session takes place" in blank.get_data(as_text=True)
    bad_time = _post(client, mine, f"/provider/referrals/{mine.id}/sessions", {**_booking(), "time": "25:00"})
    assert bad_time.status_code == 400
    assert "Enter the start time as hours and minutes" in bad_time.get_data(as_text=True)
    too_late = _post(client, mine, f"/provider/referrals/{mine.id}/sessions",
                     _booking(day=datetime.now(UTC) + timedelta(days=400)))
    assert too_late.status_code == 400
    assert "on or before the referral&#39;s deadline" in too_late.get_data(as_text=True)
    assert _sessions(app, mine) == []
    assert _state(app, mine)[0] is State.ACCEPTED
    early = _post(client, mine, f"/provider/referrals/{mine.id}/complete", {"confirm": "y"})
    assert early.status_code == 400
    assert "cannot become completed" in early.get_data(as_text=True)
    # A session in the future: its attendance waits.
    _post(client, mine, f"/provider/referrals/{mine.id}/sessions", _booking(day=datetime.now(UTC) + timedelta(days=2)))
    future = _sessions(app, mine)[0]
    premature = _post(client, mine, f"/provider/sessions/{future.id}/attendance",
                      {"attendance": "attended", "confirm": "y"})
    assert premature.status_code == 400
    assert "once the session has started" in premature.get_data(as_text=True)
    assert _state(app, mine)[:2] == (State.BOOKED, 0)
    filters = client.get("/provider/?due_from=tomorrow&state=lost")
    assert filters.status_code == 400
    text = filters.get_data(as_text=True)
    assert "Due from must be a real date." in text
    assert "Choose one of the referral states." in text


def test_the_filters_and_the_sort(client: FlaskClient, world: World, referrals: Referrals) -> None:
    sign_in(client, world.email("provider_staff"))
    referrals_shown = client.get("/provider/?state=offered&sort=state&order=descending").get_data(as_text=True)
    assert str(referrals.west_midlands.id) in referrals_shown
    assert str(referrals.thames_valley.id) in referrals_shown
    assert client.get("/provider/?sort=force").status_code == 400  # sorted by due date or state only
    assert str(referrals.west_midlands.id) not in client.get("/provider/?state=completed").get_data(as_text=True)
    far = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    assert "No referral matches these filters." in client.get(f"/provider/?due_from={far}").get_data(as_text=True)
    near = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert "No referral matches these filters." in client.get(f"/provider/?due_to={near}").get_data(as_text=True)
    assert client.get("/provider/?force=durham").status_code == 400  # not a force Cranstoun serves


def test_the_organisation_switcher(app: Flask, client: FlaskClient, world: World, referrals: Referrals) -> None:
    """Staff of two providers see one provider's referrals at a time, and switch."""
    with app.app_context():
        db.session.add(ProviderMembership(id=uuid.uuid4(), provider_id=world.providers["druglink"].id,
                                          user_id=world.users["provider_staff"].id))
        db.session.commit()
    sign_in(client, world.email("provider_staff"))
    first = client.get("/provider/").get_data(as_text=True)  # Cranstoun comes first by name
    assert str(referrals.west_midlands.id) in first
    assert str(referrals.druglink.id) not in first
    token = csrf_token(first)
    assert client.post("/provider/organisation", data={"csrf_token": token,
                                                       "provider": str(world.providers["druglink"].id)}
                       ).status_code == 302
    second = client.get("/provider/").get_data(as_text=True)
    assert str(referrals.druglink.id) in second
    assert str(referrals.west_midlands.id) not in second
    assert client.get(f"/provider/referrals/{referrals.west_midlands.id}").status_code == 404
    # A provider the user does not work for cannot be chosen.
    refused = client.post("/provider/organisation", data={"csrf_token": token,
                                                          "provider": str(world.providers["cranstoun"].id + 1000)})
    assert refused.status_code == 302
    assert str(referrals.druglink.id) in client.get("/provider/").get_data(as_text=True)
