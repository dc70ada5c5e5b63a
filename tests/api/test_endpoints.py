"""Each endpoint: what it answers, and its 401, 404 and 422 answers."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from diversion.audit.models import AuditEvent
from diversion.cases.models import Encounter, Person, Referral
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.tenancy.context import scoped
from tests.api.conftest import bearer, today, user_dealer
from tests.conftest import World, sign_in

NOWHERE = uuid.UUID("00000000-0000-4000-8000-000000000000")
UNAUTHORIZED = {"errors": [{"field": None, "message": "Send a valid API token: Authorization: Bearer <token>."}]}
NOT_A_FIELD = "This is not a field or parameter of this request."
NOT_FOUND = {"errors": [{"field": None, "message": "There is no such item in this force."}]}
OPERATIONS = [
    ("POST", "/api/v1/encounters"),
    ("GET", f"/api/v1/encounters/{NOWHERE}"),
    ("GET", f"/api/v1/decisions/{NOWHERE}"),
    ("POST", f"/api/v1/decisions/{NOWHERE}/referrals"),
    ("GET", "/api/v1/referrals"),
    ("GET", f"/api/v1/referrals/{NOWHERE}"),
    ("POST", f"/api/v1/referrals/{NOWHERE}/transitions"),
    ("GET", "/api/v1/offerings"),
]


def _counts(app: Flask, world: World) -> tuple[int, ...]:
    with app.app_context(), scoped(world.b.id):
        return tuple(db.session.scalar(select(func.count()).select_from(model)) or 0
                     for model in (Person, Encounter, Decision, Referral, AuditEvent))


def _record(client: FlaskClient, token: str, **changes: Any) -> dict[str, Any]:
    response = client.post("/api/v1/encounters", json=user_dealer(**changes), headers=bearer(token))
    assert response.status_code == 201, response.json
    return response.json


@pytest.mark.parametrize(("method", "url"), OPERATIONS)
def test_every_operation_wants_a_token(client: FlaskClient, world: World, method: str, url: str) -> None:
    response = client.open(url, method=method, json={})
    assert response.status_code == 401
    assert response.json == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="diversion API"'
    assert response.mimetype == "application/json"


@pytest.mark.parametrize(("method", "url"), [op for op in OPERATIONS if str(NOWHERE) in op[1]])
def test_an_unknown_id_is_404(client: FlaskClient, world: World, b_token: str, method: str, url: str) -> None:
    body = {"offering_id": str(NOWHERE)} if url.endswith("referrals") else {"to": "accepted"}
    response = client.open(url, method=method, json=body if method == "POST" else None, headers=bearer(b_token))
    assert response.status_code == 404
    assert response.json == NOT_FOUND


def test_the_api_answers_json_for_what_it_does_not_have(client: FlaskClient, world: World, b_token: str) -> None:
    for url in ("/api/v1/encounters/not-a-uuid", "/api/v1/nothing-here", "/api/v2/encounters"):
        response = client.get(url, headers=bearer(b_token))
        assert response.status_code == 404, url
        assert response.json == NOT_FOUND
    huge = client.post("/api/v1/encounters", data=b"{" + b" " * 300_000 + b"}", content_type="application/json",
                       headers=bearer(b_token))
    assert huge.status_code == 413
    assert huge.json == {"errors": [{"field": None, "message": "The request is too large."}]}
    wrong_method = client.delete("/api/v1/referrals", headers=bearer(b_token))
    assert wrong_method.status_code == 405
    assert set(wrong_method.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert wrong_method.json == {"errors": [{"field": None, "message": "This method is not allowed here."}]}


def test_recording_an_encounter_decides_it(app: Flask, client: FlaskClient, world: World, b_token: str) -> None:
    not_eligible = _record(client, b_token, facts={"user_dealer": False, "aggravating_factors": ["hate_crime"]})
    decision = not_eligible["decision"]
    assert decision["outcome"] == "not_eligible"
    assert decision["pathway"] is None
    assert {"pathway": None, "criterion": "hate-crime", "reason": "Excluded: hate crime."} in decision["unmet"]
    assert {u["criterion"] for u in decision["unmet"]} == {"hate-crime", "low-level-offence"}
    with app.app_context(), scoped(world.b.id):  # the reasons named by the stored ids are the results worked out again
        stored = db.session.get(Decision, uuid.UUID(decision["id"]))
        assert stored is not None
        assert stored.unmet == ["hate-crime", "checkpoint/low-level-offence"]
        assert decision["unmet"] == [{"pathway": r["pathway"], "criterion": r["criterion"], "reason": r["reason"]}
                                     for r in stored.results if r["result"] == "unmet"]

    unknown = _record(client, b_token, facts={"stage": None, "admission": None},
                      person={"surname": "Other", "given_name": "Person", "date_of_birth": "2000-01-01"})
    assert unknown["decision"]["outcome"] == "needs_review"
    assert unknown["decision"]["missing"] == ["admission", "stage"]
    assert "stage" not in unknown["encounter"]["facts"]  # unknown facts are not stored as given

    # A list not known yet (null, or left out) is not "none": the decision waits for it.
    for left_out in (False, True):
        body = user_dealer(facts={"aggravating_factors": None},
                           person={"surname": "Lister", "given_name": "Kit", "date_of_birth": "1990-05-05"})
        if left_out:
            del body["facts"]["aggravating_factors"]
        listed = client.post("/api/v1/encounters", json=body, headers=bearer(b_token)).json
        assert listed["decision"]["outcome"] == "needs_review"
        assert "aggravating_factors" in listed["decision"]["missing"]
        assert "aggravating_factors" not in listed["encounter"]["facts"]

    # The same person again: the platform finds them and counts nothing yet (no referral).
    again = _record(client, b_token)
    assert again["encounter"]["person_id"] == not_eligible["encounter"]["person_id"]
    assert again["encounter"]["person_id"] != unknown["encounter"]["person_id"]
    with app.app_context(), scoped(world.b.id):
        stored = db.session.get(Decision, uuid.UUID(again["decision"]["id"]))
        assert stored is not None
        assert stored.facts["previous_diversions"] == 0
        offence = today() - timedelta(days=3)  # as user_dealer() has it; born 14 March 1996
        assert stored.facts["age"] == offence.year - 1996 - ((offence.month, offence.day) < (3, 14))
        assert stored.source == "api"


def test_a_missing_or_wrong_field_is_422_and_changes_nothing(
    app: Flask, client: FlaskClient, world: World, b_token: str,
) -> None:
    before = _counts(app, world)
    cases: list[tuple[Any, list[tuple[str, str]]]] = [
        ({}, [("person", "This field is required."), ("ethnicity", "This field is required."),
              ("offence_on", "This field is required."), ("facts", "This field is required.")]),
        (user_dealer(ethnicity="X1"), [("ethnicity", "")]),
        (user_dealer(offence_on="24/11/2026"), [("offence_on", "")]),
        (user_dealer(colour="blue"), [("colour", NOT_A_FIELD)]),
        (user_dealer(facts={"age": 30}), [("facts.age", "This fact is worked out by the platform; leave it out.")]),
        (user_dealer(facts={"stage": "garden"}), [("facts.stage", "")]),
        (user_dealer(facts={"substances": ["cannabis", "tea"]}), [("facts.substances.1", "")]),
        (user_dealer(facts={"personal_use": "yes"}), [("facts.personal_use", "")]),
        (user_dealer(facts={"shoe_size": 9}), [("facts.shoe_size", NOT_A_FIELD)]),
        (user_dealer(person={"surname": "A\x00B", "given_name": "C", "date_of_birth": "1990-01-01"}),
         [("person.surname", "Control characters are not allowed here.")]),
        (user_dealer(person={"surname": "", "given_name": "C", "date_of_birth": "1990-01-01"}),
         [("person.surname", "")]),
        ([user_dealer()], [("body", "The body must be a JSON object.")]),
    ]
    for body, expected in cases:
        response = client.post("/api/v1/encounters", json=body, headers=bearer(b_token))
        assert response.status_code == 422, body
        errors = response.json["errors"]
        assert [e["field"] for e in errors] == [field for field, _ in expected], errors
        for error, (_field, message) in zip(errors, expected, strict=True):
            assert error["message"] == (message or error["message"])
            assert error["message"]
    not_json = client.post("/api/v1/encounters", data="{not json", content_type="application/json",
                           headers=bearer(b_token))
    assert not_json.status_code == 422
    assert not_json.json == {"errors": [{"field": "body", "message": "The body must be a JSON object."}]}
    assert _counts(app, world) == before


def test_what_the_case_rules_refuse_is_422_on_the_field(
    app: Flask, client: FlaskClient, world: World, b_token: str,
) -> None:
    before = _counts(app, world)
    person = {"surname": "Lee", "given_name": "Sam", "date_of_birth": "2000-05-01"}
    cases = [
        (user_dealer(offence_on=(today() + timedelta(days=1)).isoformat()),
         "offence_on", "The offence date cannot be in the future."),
        (user_dealer(person={**person, "surname": "   "}), "person.surname", "Enter the person's surname."),
        (user_dealer(person={**person, "given_name": " "}), "person.given_name", "Enter the person's given name."),
        (user_dealer(person={**person, "date_of_birth": today().isoformat()}, offence_on=today().isoformat()),
         "person.date_of_birth", "The date of birth must be before the offence date."),
        (user_dealer(person={**person, "date_of_birth": (today() - timedelta(days=365 * 5)).isoformat()}),
         "person.date_of_birth", "Under 10 on the offence date: below the age of criminal responsibility."),
    ]
    for body, field, message in cases:
        response = client.post("/api/v1/encounters", json=body, headers=bearer(b_token))
        assert response.status_code == 422, body
        assert response.json == {"errors": [{"field": field, "message": message}]}
    assert _counts(app, world) == before


def test_referring_refuses_what_cannot_be_referred(
    app: Flask, client: FlaskClient, world: World, b_token: str, checkpoint_offering: uuid.UUID,
) -> None:
    auth = bearer(b_token)
    refused = _record(client, b_token, facts={"held_for_court": True})["decision"]
    assert refused["outcome"] == "not_eligible"
    url = f"/api/v1/decisions/{refused['id']}/referrals"
    before = _counts(app, world)
    cases = [
        ({"offering_id": str(checkpoint_offering)}, "decision_id", "Only an eligible decision can lead to a referral."),
        ({"offering_id": str(NOWHERE)}, "offering_id", "This force offers no course with this id."),
        ({"offering_id": "not-an-id"}, "offering_id", ""),
        ({}, "offering_id", "This field is required."),
        ({"offering_id": str(checkpoint_offering), "reason": 7}, "reason", ""),
    ]
    for body, field, message in cases:
        response = client.post(url, json=body, headers=auth)
        assert response.status_code == 422, body
        assert [e["field"] for e in response.json["errors"]] == [field]
        assert response.json["errors"][0]["message"] == (message or response.json["errors"][0]["message"])
    # A decision that is not there (or is another force's) is named before what the body gets wrong.
    for body in ({"offering_id": str(checkpoint_offering)}, {}):
        response = client.post(f"/api/v1/decisions/{NOWHERE}/referrals", json=body, headers=auth)
        assert response.status_code == 404, body
    assert _counts(app, world) == before


def test_moving_a_referral_refuses_what_the_lifecycle_does_not_allow(
    app: Flask, client: FlaskClient, world: World, b_token: str, checkpoint_offering: uuid.UUID,
) -> None:
    auth = bearer(b_token)
    decision = _record(client, b_token)["decision"]
    referral = client.post(f"/api/v1/decisions/{decision['id']}/referrals",
                           json={"offering_id": str(checkpoint_offering)}, headers=auth).json
    url = f"/api/v1/referrals/{referral['id']}/transitions"
    cases = [
        ({"to": "completed"}, "to",
         "A referral that is offered cannot become completed; it can become accepted, declined, "
         "not completed, withdrawn."),
        ({"to": "withdrawn"}, "reason",
         "Give the reason (did not attend, deadline passed, condition breached...)."),
        ({"to": "finished"}, "to", ""),
        ({"reason": "why"}, "to", "This field is required."),
        ({"to": "accepted", "reason": "x" * 1001}, "reason", ""),
    ]
    for body, field, message in cases:
        response = client.post(url, json=body, headers=auth)
        assert response.status_code == 422, body
        assert [e["field"] for e in response.json["errors"]] == [field]
        assert response.json["errors"][0]["message"] == (message or response.json["errors"][0]["message"])
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=auth).json["transitions"] == \
        referral["transitions"]

    withdrawn = client.post(url, json={"to": "withdrawn", "reason": "Moved out of the area"}, headers=auth)
    assert withdrawn.status_code == 201
    assert withdrawn.json["transition"]["from"] == "offered"
    assert withdrawn.json["transition"]["reason"] == "Moved out of the area"
    assert withdrawn.json["referral"]["outcome"] == {"code": None, "label": None}


def test_the_referral_list_pages_and_filters(
    app: Flask, client: FlaskClient, world: World, b_token: str, checkpoint_offering: uuid.UUID,
) -> None:
    auth = bearer(b_token)
    made = []
    for number in range(3):
        person = {"surname": f"Person{number}", "given_name": "Test", "date_of_birth": "1990-01-01"}
        decision = _record(client, b_token, person=person)["decision"]
        made.append(client.post(f"/api/v1/decisions/{decision['id']}/referrals",
                                json={"offering_id": str(checkpoint_offering)}, headers=auth).json["id"])
    client.post(f"/api/v1/referrals/{made[0]}/transitions", json={"to": "accepted"}, headers=auth)

    everything = client.get("/api/v1/referrals", headers=auth).json
    assert sorted(r["id"] for r in everything["referrals"]) == sorted(made)
    assert everything["next_offset"] is None
    first = client.get("/api/v1/referrals?limit=2", headers=auth).json
    assert (len(first["referrals"]), first["limit"], first["offset"], first["next_offset"]) == (2, 2, 0, 2)
    rest = client.get("/api/v1/referrals?limit=2&offset=2", headers=auth).json
    assert len(rest["referrals"]) == 1
    assert rest["next_offset"] is None
    assert {r["id"] for r in first["referrals"] + rest["referrals"]} == set(made)
    accepted = client.get("/api/v1/referrals?state=accepted", headers=auth).json["referrals"]
    assert [r["id"] for r in accepted] == [made[0]]

    for query, field in (("state=finished", "state"), ("limit=0", "limit"), ("limit=501", "limit"),
                         ("limit=ten", "limit"), ("offset=-1", "offset")):
        response = client.get(f"/api/v1/referrals?{query}", headers=auth)
        assert response.status_code == 422, query
        assert [e["field"] for e in response.json["errors"]] == [field]


def test_a_case_recorded_through_the_api_says_the_forces_case_system_recorded_it(
        app: Flask, world: World, b_token: str) -> None:
    api = app.test_client()
    made = _record(api, b_token)
    reference = made["encounter"]["reference"]
    officer = app.test_client()
    sign_in(officer, world.email("b_officer"))
    system = f"{world.b.name}’s case system"
    case = officer.get(f"/durham/cases/{reference}").text
    bylines = dict(zip(re.findall(r'moj-timeline__title">([^<]*)<', case),
                       re.findall(r'moj-timeline__byline">([^<]*)<', case), strict=True))
    assert bylines["Encounter recorded"] == f"by {system}"
    assert next(by for title, by in bylines.items() if title.startswith("Decision:")) == f"by {system}"
    listed = officer.get("/durham/cases/", query_string={"q": reference}).text
    assert system in listed
    assert "Import" not in listed  # it was not imported
