"""Case references in the force API: every encounter, decision and referral answer names its
case's reference, and an encounter is found by its reference as by its id."""

from __future__ import annotations

import re
import uuid

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from diversion.extensions import db
from tests.api.conftest import bearer, user_dealer
from tests.conftest import World


def test_answers_carry_the_reference_and_the_url_takes_it(client: FlaskClient, world: World, b_token: str,
                                                          a_token: str, checkpoint_offering: uuid.UUID) -> None:
    auth = bearer(b_token)
    recorded = client.post("/api/v1/encounters", json=user_dealer(), headers=auth)
    assert recorded.status_code == 201
    reference = recorded.json["encounter"]["reference"]
    assert re.fullmatch(r"[A-Z]+-\d{4}-\d{6}", reference)
    assert recorded.json["decision"]["reference"] == reference
    assert recorded.json["decision"]["superseded_by_id"] is None
    decision_id = recorded.json["decision"]["id"]
    for asked in (reference, reference.lower(), re.sub(r"-0+", "-", reference), recorded.json["encounter"]["id"]):
        found = client.get(f"/api/v1/encounters/{asked}", headers=auth)
        assert found.status_code == 200, asked
        assert found.json["encounter"]["id"] == recorded.json["encounter"]["id"]
    # Another force's token, a reference of no case, and text that is no reference: the same 404.
    for asked, token in ((reference, a_token), (f"{reference[:-1]}9", b_token), ("nothing", b_token)):
        assert client.get(f"/api/v1/encounters/{asked}", headers=bearer(token)).status_code == 404
    assert client.get(f"/api/v1/decisions/{decision_id}", headers=auth).json["reference"] == reference
    referral = client.post(f"/api/v1/decisions/{decision_id}/referrals", json={"offering_id": str(checkpoint_offering)},
                           headers={**auth, "Idempotency-Key": str(uuid.uuid4())})
    assert referral.status_code == 201
    assert referral.json["reference"] == reference
    assert client.get(f"/api/v1/referrals/{referral.json['id']}", headers=auth).json["reference"] == reference
    moved = client.post(f"/api/v1/referrals/{referral.json['id']}/transitions", json={"to": "accepted"},
                        headers={**auth, "Idempotency-Key": str(uuid.uuid4())})
    assert moved.json["referral"]["reference"] == reference


def test_the_referrals_list_reads_references_by_a_join(app: Flask, client: FlaskClient, world: World, b_token: str,
                                                       checkpoint_offering: uuid.UUID) -> None:
    auth = bearer(b_token)
    for n in range(3):
        decision = client.post("/api/v1/encounters", json=user_dealer(person={
            "surname": f"Person{n}", "given_name": "Alex", "date_of_birth": "1990-01-0" + str(n + 1)}),
            headers=auth).json["decision"]
        client.post(f"/api/v1/decisions/{decision['id']}/referrals", json={"offering_id": str(checkpoint_offering)},
                    headers={**auth, "Idempotency-Key": str(uuid.uuid4())})
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        page = client.get("/api/v1/referrals", headers=auth).json
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len({r["reference"] for r in page["referrals"]}) == 3
    assert sum("encounters" in statement.lower() for statement in seen) == 1  # the page's join, once
