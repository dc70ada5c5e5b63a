"""Review that resolves: the facts a decision waits for, given, decide the case again under the
policy of the original date; both decisions are kept, the new one stands (``cases.services.decide_again``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import User
from diversion.audit.models import AuditEvent
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import Encounter, State
from diversion.catalogue.models import Offering
from diversion.eligibility import services as policies
from diversion.eligibility.models import Decision
from diversion.errors import AccessRefused
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World, csrf_token, sign_in

TODAY = date(2026, 11, 24)
# A Durham user-dealer whose admission is not known yet: the decision waits for it.
WAITING = {"offence": "supply", "user_dealer": True, "substances": ["heroin"], "drug_class": "A",
           "personal_use": False, "under_court_order": False, "held_for_court": False,
           "detained_mental_health_act": False, "aggravating_factors": [], "resident_in_force_area": True,
           "stage": "custody"}
JO = Identity("O'Neill", "Jo", date(1990, 5, 1))


def _durham(world: World) -> Tenant:
    tenant = db.session.get(Tenant, world.b.id)
    assert tenant is not None
    return tenant


def _user(world: World, key: str) -> User:
    user = db.session.get(User, world.users[key].id)
    assert user is not None
    return user


def _waiting(world: World, *, actor: object = SYSTEM, identity: Identity = JO,
             facts: dict[str, object] | None = None) -> tuple[Encounter, Decision]:
    intake = cases.Intake(identity, Contact(), "W1", TODAY - timedelta(days=2), dict(facts or WAITING))
    encounter, decision = cases.record_encounter(_durham(world), intake, actor=actor, today=TODAY)  # type: ignore[arg-type]
    assert decision.outcome == "needs_review"
    assert decision.missing == ["admission"]
    return encounter, decision


def _audits(action: str) -> int:
    return int(db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))
               or 0)


def test_a_supervisor_gives_the_fact_and_the_case_is_decided_again_and_referred(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        encounter, first = _waiting(world)
        supervisor = _user(world, "b_supervisor")
        again = cases.decide_again(tenant, first, {"admission": "admitted"}, actor=supervisor)
        assert (again.outcome, again.pathway, again.source) == ("eligible", "checkpoint", "review")
        assert again.encounter_id == encounter.id
        assert again.decided_by_id == supervisor.id
        assert again.decided_on == first.decided_on  # decided as at the original date
        assert again.facts["age"] == first.facts["age"]  # the derived facts of that date
        assert first.superseded_by_id == again.id
        assert first.outcome == "needs_review"
        assert encounter.facts["admission"] == "admitted"
        db.session.refresh(encounter)
        assert (encounter.outcome, encounter.pathway) == ("eligible", "checkpoint")
        assert cases.standing(encounter.id) is again
        assert cases.standing_of([encounter.id]) == {encounter.id: again}
        assert db.session.scalars(cases.review_queue()).all() == []
        assert cases.awaiting_review() == 0
        assert cases.awaited(first) == []
        assert cases.awaited(again) == []
        assert _audits("decision.decided_again") == 1
        offering = db.session.scalar(select(Offering).where(Offering.pathway == "checkpoint"))
        referral = cases.refer(tenant, again, offering, actor=supervisor, today=TODAY)
        assert referral.state is State.OFFERED


def test_the_officer_who_recorded_the_case_may_give_the_facts_another_may_not(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        officer = _user(world, "b_officer")
        _, theirs = _waiting(world, actor=officer)
        _, imported = _waiting(world, identity=Identity("Other", "Sam", date(1991, 1, 1)))
        for who in (officer, SYSTEM, _user(world, "b_force_admin")):
            with pytest.raises(AccessRefused):
                cases.decide_again(tenant, imported, {"admission": "admitted"}, actor=who)
        assert imported.superseded_by_id is None
        again = cases.decide_again(tenant, theirs, {"admission": "denied"}, actor=officer)
        assert again.outcome == "not_eligible"
        assert cases.awaiting_review() == 1


def test_decide_again_refuses_naming_the_fact_and_changes_nothing(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        encounter, decision = _waiting(world)
        supervisor = _user(world, "b_supervisor")
        refused = [({}, "admission"), ({"admission": None}, "admission"), ({"colour": "red"}, "colour"),
                   ({"stage": "street"}, "stage"), ({"admission": "perhaps"}, "admission"),
                   ({"admission": True}, "admission")]
        for facts, field in refused:
            with pytest.raises(cases.CaseError) as caught:
                cases.decide_again(tenant, decision, facts, actor=supervisor)
            assert caught.value.field == field, facts
        assert db.session.scalar(select(func.count()).select_from(Decision)) == 1
        assert decision.superseded_by_id is None
        assert "admission" not in encounter.facts
        assert _audits("decision.decided_again") == 0
        # Made again: the old one is refused, and so is overriding it; the new one stands.
        again = cases.decide_again(tenant, decision, {"admission": "admitted"}, actor=supervisor)
        with pytest.raises(cases.CaseError, match="already made again"):
            cases.decide_again(tenant, decision, {"admission": "denied"}, actor=supervisor)
        with pytest.raises(cases.CaseError, match="made again"):
            cases.override(tenant, decision, outcome="not_eligible", pathway=None, reason="No", actor=supervisor)
        with pytest.raises(cases.CaseError, match="needs review"):
            cases.decide_again(tenant, again, {"admission": "denied"}, actor=supervisor)
        # An overridden decision waits for nothing.
        _, other = _waiting(world, identity=Identity("Other", "Sam", date(1991, 1, 1)))
        cases.override(tenant, other, outcome="not_eligible", pathway=None, reason="Seen", actor=supervisor)
        assert cases.awaited(other) == []
        with pytest.raises(cases.CaseError, match="overridden"):
            cases.decide_again(tenant, other, {"admission": "admitted"}, actor=supervisor)


def test_decided_again_under_the_policy_in_force_on_the_original_date(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        _, decision = _waiting(world)
        old = decision.policy_version
        draft = policies.save_draft(tenant, dict(old.document), actor=SYSTEM, note="Next year's")
        later = policies.publish(tenant, draft, effective_from=TODAY + timedelta(days=30), actor=SYSTEM, today=TODAY)
        again = cases.decide_again(tenant, decision, {"admission": "admitted"}, actor=_user(world, "b_supervisor"))
        assert again.policy_version_id == old.id != later.id
        assert again.policy_hash == old.content_hash


@contextmanager
def _statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_the_queue_loads_a_page_in_a_fixed_number_of_statements(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        officer = _user(world, "b_officer")
        for n in range(6):
            _waiting(world, actor=officer if n % 2 else SYSTEM, identity=Identity(f"Person{n}", "Alex",
                                                                                 date(1990, 1, 1 + n)))
        counts = []
        for size in (2, 6):
            db.session.expire_all()
            page = db.session.scalars(cases.review_queue().limit(size)).all()
            with _statements() as seen:
                items = cases.review_items(page)
            assert len(items) == size
            counts.append(len(seen))
        assert counts[0] == counts[1] <= 3
        assert {item.officer for item in items} == {officer.name, None}
        assert {item.offence for item in items} == {"supply"}
        assert sorted(item.identity.surname for item in items if item.identity) == [f"Person{n}" for n in range(6)]


# ---------------------------------------------------------------- the pages

def _form(client, url: str, data: dict) -> object:
    page = client.get(url)
    return client.post(url, data={**data, "csrf_token": csrf_token(page.text)})


def _nothing_waits(client: FlaskClient, url: str) -> None:
    """The facts page of a decision that waits for nothing sends back to it, saying so as news, not a success."""
    waits_not = client.get(url)
    assert waits_not.status_code == 302
    told = client.get(waits_not.headers["Location"]).text
    assert "This decision waits for no facts" in told
    assert "govuk-notification-banner--success" not in told


def test_the_queue_shows_who_what_and_how_long_and_the_supervisor_resolves_it(app: Flask, client,
                                                                              world: World) -> None:
    today = datetime.now(UTC).date()
    with app.app_context(), scoped(world.b.id):
        officer = _user(world, "b_officer")
        intake = cases.Intake(Identity("Morgan", "Rhys", date(1994, 9, 9)), Contact(), "W1", today, dict(WAITING))
        encounter, decision = cases.record_encounter(_durham(world), intake, actor=officer, today=today)
        decision.decided_on = decision.decided_on - timedelta(days=3)  # it has waited three days
        reference, decision_id, encounter_id = encounter.reference, decision.id, encounter.id
        db.session.commit()
    sign_in(client, world.email("b_supervisor"))
    queue = client.get("/durham/review")
    assert queue.status_code == 200
    row = re.search(r'data-testid="review-queue".*?</table>', queue.text, re.S).group(0)
    for shown in ("Rhys Morgan", reference, "Supply", "B Officer", "3 days", "1 decision waits for review"):
        assert shown in queue.text, shown
    assert f"/durham/decisions/{decision_id}" in row
    page = client.get(f"/durham/decisions/{decision_id}")
    assert "Give these facts and decide again" in page.text
    assert "It waits for your review: see below" in page.text  # told to the supervisor, who reviews it
    url = f"/durham/decisions/{decision_id}/facts"
    form = client.get(url)
    assert form.status_code == 200
    assert "Not known yet" in form.text
    assert 'name="admission"' in form.text
    assert 'name="stage"' not in form.text  # only the facts it waits for
    blank = _form(client, url, {"admission": "unknown"})
    assert blank.status_code == 400
    assert "Give at least one of the facts the decision waits for" in blank.text
    done = _form(client, url, {"admission": "admitted"})
    assert done.status_code == 302
    new_page = client.get(done.headers["Location"])
    assert "Eligible" in new_page.text
    assert "Decided again with the facts given: eligible." in new_page.text
    assert "Under the policy in force on" in new_page.text  # made today, under the first decision's policy
    assert "Decided again on review" in new_page.text
    assert 'data-testid="awaited"' not in new_page.text
    old_page = client.get(f"/durham/decisions/{decision_id}").text
    assert 'data-testid="superseded"' in old_page
    assert "Facts this decision waited for: Admission (given when it was made again)." in old_page
    assert "Override this decision" not in old_page
    assert "Refer to a course" not in old_page
    _nothing_waits(client, url)
    assert "Nothing waits for review." in client.get("/durham/review").text
    # Referred from the case page, which shows the standing decision.
    case = client.get(f"/durham/cases/{encounter_id}")
    assert "Decision: Eligible, " in case.text
    assert reference in case.text
    offering = re.search(r'name="offering" type="radio" value="([^"]+)"', case.text).group(1)
    action = re.search(r'action="([^"]+/referrals[^"]*)"', case.text).group(1).replace("&amp;", "&")
    referred = client.post(action, data={"offering": offering, "csrf_token": csrf_token(case.text)})
    assert referred.status_code == 302
    assert "Referral: offered" in client.get(f"/durham/cases/{encounter_id}").text


def test_the_case_page_refer_form_shows_its_errors_there(app: Flask, client, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        facts = {**WAITING, "admission": "admitted"}
        encounter, decision = cases.record_encounter(_durham(world), cases.Intake(
            JO, Contact(), "W1", TODAY, facts), actor=SYSTEM, today=TODAY)
        encounter_id, decision_id = encounter.id, decision.id
        db.session.commit()
    sign_in(client, world.email("b_officer"))
    case = client.get(f"/durham/cases/{encounter_id}")
    refused = client.post(f"/durham/decisions/{decision_id}/referrals?from=case",
                          data={"csrf_token": csrf_token(case.text)})
    assert refused.status_code == 400
    assert "Choose a course" in refused.text
    assert 'data-testid="person-name"' in refused.text


def test_an_officer_may_not_give_the_facts_of_anothers_case(app: Flask, client, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        _, decision = _waiting(world)
        decision_id = decision.id
        db.session.commit()
    sign_in(client, world.email("b_officer"))
    assert "Give these facts" not in client.get(f"/durham/decisions/{decision_id}").text
    assert client.get(f"/durham/decisions/{decision_id}/facts").status_code == 403
