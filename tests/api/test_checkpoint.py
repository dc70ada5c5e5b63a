"""A Durham user-dealer through the API, from the encounter to the case outcome."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from diversion.audit.models import AuditEvent
from diversion.cases.models import Encounter, Referral
from diversion.extensions import db
from diversion.tenancy.context import scoped
from tests.api.conftest import bearer, today, user_dealer
from tests.conftest import World, started_today, steps_of


def _record_a_user_dealer(client: FlaskClient, auth: dict[str, str]) -> tuple[dict, dict]:
    """The encounter and its decision: Checkpoint, with everything a decision keeps."""
    recorded = client.post("/api/v1/encounters", json=user_dealer(), headers=auth)
    assert recorded.status_code == 201, recorded.json
    encounter, decision = recorded.json["encounter"], recorded.json["decision"]
    assert recorded.headers["Location"] == f"/api/v1/encounters/{encounter['id']}"
    assert decision["outcome"] == decision["final_outcome"] == "eligible"
    assert decision["pathway"] == decision["final_pathway"] == "checkpoint"
    assert decision["policy_version"] == 1
    assert decision["policy_hash"].startswith("sha256:")
    assert decision["missing"] == []
    assert decision["override"] is None
    assert decision["encounter_id"] == encounter["id"]
    assert encounter["source"] == "api"
    assert encounter["facts"]["user_dealer"] is True
    # The person is pseudonymous: their name is not in the answer.
    assert "Neill" not in recorded.text
    assert "Siobh" not in recorded.text

    assert client.get(f"/api/v1/decisions/{decision['id']}", headers=auth).json == decision
    assert client.get(f"/api/v1/encounters/{encounter['id']}", headers=auth).json == recorded.json
    return encounter, decision


def test_a_user_dealer_gets_checkpoint_and_goes_through_to_outcome_22(
    app: Flask, client: FlaskClient, world: World, b_token: str, checkpoint_offering: uuid.UUID,
) -> None:
    auth = bearer(b_token)
    encounter, decision = _record_a_user_dealer(client, auth)
    offerings = client.get("/api/v1/offerings", headers=auth).json["offerings"]
    ours = next(o for o in offerings if o["id"] == str(checkpoint_offering))
    assert ours["pathway"] == "checkpoint"
    assert ours["course"]["provider"] == "API test navigators"
    assert {o["pathway"] for o in offerings} == {"checkpoint"}
    referred = client.post(f"/api/v1/decisions/{decision['id']}/referrals",
                           json={"offering_id": ours["id"], "reason": "Navigator assigned"}, headers=auth)
    assert referred.status_code == 201, referred.json
    referral = referred.json
    assert referred.headers["Location"] == f"/api/v1/referrals/{referral['id']}"
    assert referral["state"] == "offered"
    assert referral["offering_id"] == str(checkpoint_offering)
    assert referral["pathway"] == "checkpoint"
    assert referral["sessions_required"] == 5
    assert date.fromisoformat(referral["deadline"]) == today() + timedelta(days=122)  # the 4-month contract
    assert referral["outcome"] is None
    assert [(t["from"], t["to"], t["reason"]) for t in referral["transitions"]] == [
        (None, "offered", "Navigator assigned")]

    def move(to: str, reason: str = "", **more: object) -> dict:
        answer = client.post(f"/api/v1/referrals/{referral['id']}/transitions",
                             json={"to": to, "reason": reason, **more}, headers=auth)
        assert answer.status_code == 201, answer.json
        assert answer.json["transition"]["to"] == to
        return answer.json["referral"]

    move("accepted", "Signed the contract")
    for session in range(1, 6):
        move("booked", session={"starts_at": (datetime.now(UTC) - timedelta(hours=6 - session)).isoformat(),
                                "venue": "Navigator's office"})
        state = move("attended", f"Condition {session} met")
        assert state["sessions_attended"] == session
    early = client.get(f"/api/v1/referrals/{referral['id']}", headers=auth).json
    assert early["state"] == "attended"
    assert early["outcome"] is None
    done = move("completed", "All five conditions met")
    assert done["state"] == "completed"
    assert done["outcome"] == {"code": "outcome-22", "label": "No further action (Outcome 22)"}
    assert [t["to"] for t in done["transitions"]] == [
        "offered", "accepted", *["booked", "attended"] * 5, "completed"]

    # An ended referral goes nowhere, and says so.
    refused = client.post(f"/api/v1/referrals/{referral['id']}/transitions", json={"to": "booked"}, headers=auth)
    assert refused.status_code == 422
    assert refused.json["errors"] == [{"field": "to", "message": (
        "A referral that is completed cannot become booked; it can become nothing: it has ended.")}]

    listed = client.get("/api/v1/referrals?state=completed", headers=auth).json
    assert [r["id"] for r in listed["referrals"]] == [referral["id"]]
    assert client.get("/api/v1/referrals?state=offered", headers=auth).json["referrals"] == []

    _check_what_was_stored(app, world, b_token, encounter["id"], referral["id"])


def _check_what_was_stored(app: Flask, world: World, token: str, encounter_id: str, referral_id: str) -> None:
    with app.app_context(), scoped(world.b.id):
        stored = db.session.get(Referral, uuid.UUID(referral_id))
        assert stored is not None
        assert stored.outcome_code == "outcome-22"
        steps = steps_of(stored.id)
        assert len(steps) == 13  # offered, accepted, five sessions booked and attended, completed
        assert all(step.actor_id is None for step in steps)  # a system, not a user, moved it
        assert db.session.get(Encounter, uuid.UUID(encounter_id)).recorded_by_id is None
        # Which token did each change: one event per change, the services' own, naming the token.
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == world.b.id)
                                    .where(AuditEvent.object_type.in_(("encounter", "referral", "session")))
                                    .order_by(AuditEvent.occurred_at)).all()
        assert [e.action for e in events] == [
            "encounter.recorded", "referral.offered", "referral.accepted",
            *["referral.booked", "session.booked", "referral.attended", "session.attendance_recorded"] * 5,
            "referral.completed"]
        assert not db.session.scalar(select(func.count()).select_from(AuditEvent)
                                     .where(AuditEvent.action.like("api.%")))
        assert {e.details["prefix"] for e in events} == {token.rsplit(".", 1)[0]}


def test_a_second_open_referral_and_a_course_of_another_pathway_are_refused(
    app: Flask, client: FlaskClient, world: World, b_token: str, checkpoint_offering: uuid.UUID,
) -> None:
    from tests.api.conftest import add_offering

    other_pathway = add_offering(app, world.b, "no-such-pathway", slug="another-course")
    auth = bearer(b_token)
    decision = client.post("/api/v1/encounters", json=user_dealer(), headers=auth).json["decision"]
    url = f"/api/v1/decisions/{decision['id']}/referrals"
    wrong = client.post(url, json={"offering_id": str(other_pathway)}, headers=auth)
    assert wrong.status_code == 422
    assert wrong.json["errors"][0]["field"] == "offering_id"
    assert client.post(url, json={"offering_id": str(checkpoint_offering)}, headers=auth).status_code == 201
    again = client.post(url, json={"offering_id": str(checkpoint_offering)}, headers=auth)
    assert again.status_code == 422
    assert again.json["errors"] == [{"field": "decision_id", "message": "This encounter already has an open referral."}]
    with app.app_context(), scoped(world.b.id):
        assert len(db.session.scalars(select(Referral)).all()) == 1


def test_a_missed_session_through_the_force_api_waits_for_a_rebooking_then_ends(
    app: Flask, client: FlaskClient, world: World, b_token: str, checkpoint_offering: uuid.UUID,
) -> None:
    auth = bearer(b_token)
    _encounter, decision = _record_a_user_dealer(client, auth)
    referral = client.post(f"/api/v1/decisions/{decision['id']}/referrals",
                           json={"offering_id": str(checkpoint_offering)}, headers=auth).json

    def move(to: str, **more: object) -> dict:
        answer = client.post(f"/api/v1/referrals/{referral['id']}/transitions", json={"to": to, **more},
                             headers=auth)
        assert answer.status_code == 201, answer.json
        return answer.json

    session = {"starts_at": (started_today()).isoformat(), "venue": "Navigator's office"}
    move("accepted")
    first = move("booked", session=session)["referral"]["sessions"][0]["id"]
    refused = client.post(f"/api/v1/referrals/{referral['id']}/transitions",
                          json={"to": "missed", "session_id": str(uuid.uuid4())}, headers=auth)
    assert refused.status_code == 422
    assert refused.json["errors"][0]["field"] == "session_id"
    missed = move("missed", session_id=first, reason="No answer")
    assert missed["transition"]["to"] == "missed"
    assert missed["referral"]["state"] == "missed"
    assert missed["referral"]["outcome"] is None
    assert missed["referral"]["sessions"][0]["attendance"] == "did_not_attend"
    rebooked = move("booked", session=session)["referral"]
    assert rebooked["state"] == "booked"
    ended = move("missed")  # the second miss: more than Durham allows
    assert ended["transition"]["to"] == "not_completed"
    assert ended["referral"]["state"] == "not_completed"
    assert "2 sessions missed, more than the 1 the force allows" in ended["transition"]["reason"]
    assert ended["referral"]["outcome"]["code"]
