"""Case work through the pages: intake with its errors, the decision, the case timeline."""

from __future__ import annotations

import re
from datetime import date

from flask import Flask
from sqlalchemy import select

from diversion.cases.models import Encounter
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.tenancy.context import scoped
from tests.conftest import World, csrf_token, sign_in

TODAY = date.today()  # noqa: DTZ011 - the form takes today's date, as an officer would


def _form(client, url: str, data: dict) -> object:
    page = client.get(url)
    return client.post(url, data={**data, "csrf_token": csrf_token(page.text)})


INTAKE = {
    "surname": "Morgan", "given_name": "Rhys", "date_of_birth": ["9", "9", "1994"], "ethnicity": "W1",
    "phone": "07700 900777", "offence_on": [str(TODAY.day), str(TODAY.month), str(TODAY.year)],
    "offence": "supply", "substances": ["heroin"], "drug_class": "A", "personal_use": "no", "user_dealer": "yes",
    "admission": "admitted", "under_court_order": "no", "held_for_court": "no",
    "detained_mental_health_act": "no", "resident_in_force_area": "yes", "stage": "custody",
    "aggravating_factors": ["none"],
}


def test_officer_records_a_user_dealer_refers_and_sees_the_timeline(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("b_officer"))
    response = _form(client, "/durham/encounters/new", INTAKE)
    assert response.status_code == 302
    decision = client.get(response.headers["Location"])
    outcome = re.search(r'data-testid="decision-outcome">(.*?)</div>\s*</div>', decision.text, re.S).group(1)
    assert "Eligible" in outcome
    assert "Checkpoint: 4-month contract" in outcome
    offering = re.search(r'name="offering" type="radio" value="([^"]+)"', decision.text).group(1)
    referred = client.post(response.headers["Location"] + "/referrals",
                           data={"offering": offering, "csrf_token": csrf_token(decision.text)})
    assert referred.status_code == 302
    case = client.get(referred.headers["Location"])
    assert "Rhys Morgan" in case.text
    timeline = re.search(r'data-testid="timeline">(.*?)<h2', case.text, re.S).group(1)
    assert timeline.index("Referral offered") < timeline.index("Decision: Eligible, Checkpoint: 4-month contract") \
        < timeline.index("Encounter recorded")
    moved = client.post(re.search(r'action="([^"]+/transitions)"', case.text).group(1),
                        data={"to": "accepted", "csrf_token": csrf_token(case.text)})
    assert moved.status_code == 302
    assert "Referral accepted" in client.get(referred.headers["Location"]).text
    # Recorded and decided in the same moment (case work recorded after the fact), the decision still
    # reads as following its encounter.
    with app.app_context(), scoped(world.b.id):
        encounter = db.session.scalar(select(Encounter).order_by(Encounter.recorded_at.desc()).limit(1))
        assert encounter is not None
        decided = db.session.scalar(select(Decision).where(Decision.encounter_id == encounter.id))
        assert decided is not None
        decided.decided_at = encounter.recorded_at
        db.session.commit()
    timeline = re.search(r'data-testid="timeline">(.*?)<h2', client.get(referred.headers["Location"]).text,
                         re.S).group(1)
    assert timeline.index("Decision: Eligible") < timeline.index("Encounter recorded")


def test_intake_errors_name_the_field_and_record_nothing(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("b_officer"))
    response = _form(client, "/durham/encounters/new", {**INTAKE, "surname": "", "date_of_birth": ["31", "2", "1990"]})
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert "Enter the person&#39;s surname" in response.text
    future = {**INTAKE, "offence_on": ["1", "1", str(TODAY.year + 1)]}
    response = _form(client, "/durham/encounters/new", future)
    assert response.status_code == 400
    assert "The offence date cannot be in the future." in response.text
    assert "No referral yet." in client.get("/durham/referrals").text


def test_a_decision_that_needs_review_is_queued_for_supervisors(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("b_officer"))
    response = _form(client, "/durham/encounters/new", {**INTAKE, "admission": "unknown"})
    decision = client.get(response.headers["Location"]).text
    assert "Needs review" in decision
    assert "Admission" in decision  # the fact it waits for
    supervisor = app.test_client()
    sign_in(supervisor, world.email("b_supervisor"))
    queue = supervisor.get("/durham/review").text
    assert "1 decision waits for review" in queue
    page = supervisor.get(response.headers["Location"])
    refused = supervisor.post(response.headers["Location"] + "/override",
                              data={"outcome": "eligible", "pathway": "checkpoint", "reason": "",
                                    "csrf_token": csrf_token(page.text)})
    assert refused.status_code == 400
    assert "Give the reason for the override" in refused.text
    done = supervisor.post(response.headers["Location"] + "/override",
                           data={"outcome": "eligible", "pathway": "checkpoint", "reason": "Admission on tape",
                                 "csrf_token": csrf_token(page.text)})
    assert done.status_code == 302
    overridden = supervisor.get(response.headers["Location"]).text
    assert "Overridden by a supervisor from needs review: Admission on tape" in overridden
    # Nothing waits any more: the fact waited for is history, in the details for audit.
    assert "Facts the decision is waiting for" not in overridden
    assert 'data-testid="awaited"' not in overridden
    assert "Facts this decision waited for: Admission (overridden by a supervisor instead)." in overridden
    assert "Nothing waits for review." in supervisor.get("/durham/review").text
