"""The decision page in plain words, "Not known yet" for every list fact, and the intake form's errors all at once."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict

from diversion.cases.forms import ASKED_FACTS, IntakeForm
from diversion.eligibility.compiler import compile_policy
from diversion.eligibility.engine import decide
from diversion.eligibility.fields import FIELDS, Kind
from tests.conftest import World, csrf_token, sign_in

TODAY = date.today()  # noqa: DTZ011 - the form takes today's date, as an officer would
LIST_FACTS = [name for name in ASKED_FACTS if FIELDS[name].kind is Kind.CHOICES]
INTAKE = "/west-midlands/encounters/new"

# A 28-year-old found with MDMA on the street in West Midlands, everything known.
ADULT: dict[str, Any] = {
    "surname": "Okafor", "given_name": "Dami", "date_of_birth": ["3", "4", str(TODAY.year - 28 - 1)],
    "ethnicity": "B2", "offence_on": [str(TODAY.day), str(TODAY.month), str(TODAY.year)],
    "offence": "possession", "substances": ["mdma"], "drug_class": "A", "personal_use": "yes",
    "user_dealer": "no", "admission": "admitted", "under_court_order": "no", "on_bail": "no",
    "held_for_court": "no", "detained_mental_health_act": "no", "aggravating_factors": ["none"],
    "resident_in_force_area": "yes", "stage": "street", "suitable_for_out_of_court_disposal": "yes",
}


def _record(client, data: dict[str, Any]) -> Any:
    page = client.get(INTAKE)
    return client.post(INTAKE, data={**data, "csrf_token": csrf_token(page.text)})


def _decision(client, data: dict[str, Any]) -> tuple[str, str]:
    """The decision page recorded from ``data``: its main text and its details for audit."""
    response = _record(client, data)
    assert response.status_code == 302, response.text[:2000]
    page = client.get(response.headers["Location"]).text
    main, audit = page.split('data-testid="audit"', 1)
    return re.sub(r"<[^>]+>", " ", main), audit


def test_an_eligible_adult_in_west_midlands_reads_only_the_adult_route(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    main, audit = _decision(client, ADULT)
    assert "Eligible" in main
    assert "DIVERT (adults)" in main
    assert "Aged 18 or over on the date of the offence." in main
    assert "Dealt with on the street, before arrest." in main
    assert "young person" not in main.lower()
    assert "Under 18" not in main
    assert "sha256" not in main
    # The audit details: the facts by their labels, every criterion in words, the hash; never raw JSON.
    assert "Substances found" in audit
    assert "MDMA" in audit
    assert "Class A" in audit
    assert "DIVERT young person&#39;s route" in audit
    assert "Does not apply" in audit
    assert "sha256:" in audit
    assert '"substances"' not in audit
    assert "mdma" not in audit


def test_not_eligible_gives_each_reason_once(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    main, _ = _decision(client, {**ADULT, "stage": "custody"})
    assert "Not eligible" in main
    assert main.count("DIVERT is a pre-arrest scheme") == 1
    assert "young person" not in main.lower()


@pytest.mark.parametrize("answer", [["unknown"], []])
def test_aggravating_factors_not_known_yet_goes_to_review(app: Flask, client, world: World, answer: list[str]) -> None:
    sign_in(client, world.email("a_officer"))
    main, _ = _decision(client, {**ADULT, "aggravating_factors": answer})
    assert "Needs review" in main
    assert re.search(r"waiting for.*Aggravating factors", main, re.S)


def test_the_intake_form_offers_none_and_not_known_yet_for_each_list(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    page = client.get(INTAKE).text
    for name in LIST_FACTS:
        none = re.search(rf'<input[^>]*name="{name}"[^>]*value="none"[^>]*>', page).group(0)
        assert 'data-behaviour="exclusive"' in none
        checked = re.search(rf'<input[^>]*name="{name}"[^>]*value="unknown"[^>]*>', page).group(0)
        assert "checked" in checked  # not known until the officer says
    assert "govuk-checkboxes__divider" in page


def test_none_with_a_factor_is_refused_on_its_field(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    response = _record(client, {**ADULT, "aggravating_factors": ["none", "weapon"]})
    assert response.status_code == 400
    assert "Select None on its own, or the aggravating factors" in response.text
    assert 'href="#aggravating_factors"' in response.text


@pytest.mark.parametrize("name", LIST_FACTS)
def test_each_list_fact_is_left_out_unless_answered(app: Flask, name: str) -> None:
    base = {**ADULT, "csrf_token": ""}
    for answer, expected in ((["unknown"], None), ([], None), (["none"], []),
                             ([FIELDS[name].values[0]], [FIELDS[name].values[0]])):
        data = MultiDict([(k, v) for k, values in {**base, name: answer}.items()
                          for v in (values if isinstance(values, list) else [values])])
        with app.test_request_context(INTAKE, method="POST", data=data):
            facts = IntakeForm(meta={"csrf": False}).facts()
        assert facts.get(name) == expected, (name, answer)
        assert (name in facts) == (expected is not None)


@pytest.mark.parametrize("name", LIST_FACTS)
def test_a_decision_that_reads_an_unknown_list_needs_review(name: str) -> None:
    value = FIELDS[name].values[0]
    policy = compile_policy({"pathways": [{"id": "p", "name": "P", "sessions": 1, "deadline_days": 30, "criteria": [
        {"id": "c", "expression": f"'{value}' not in {name}", "reason": "Not with that."}]}]})
    unknown = decide(policy, {}, TODAY)
    assert (unknown.outcome, unknown.missing) == ("needs_review", (name,))
    assert decide(policy, {name: []}, TODAY).outcome == "eligible"
    assert decide(policy, {name: [value]}, TODAY).outcome == "not_eligible"


def test_every_intake_error_shows_at_once_and_each_link_reaches_its_field(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    response = _record(client, {**ADULT, "surname": "", "date_of_birth": ["31", "2", "1990"],
                                "offence_on": ["1", "1", str(TODAY.year + 1)], "phone": "x" * 41})
    assert response.status_code == 400
    summary = response.text.split("govuk-error-summary__list", 1)[1].split("</ul>", 1)[0]
    assert "Enter the person&#39;s surname" in summary
    assert "Date of birth must be a real date" in summary
    assert "The offence date cannot be in the future." in summary
    assert "Phone must be 40 characters or fewer" in summary
    assert "Not a valid date value" not in response.text
    assert "Field cannot be longer" not in response.text
    for href in re.findall(r'href="#([^"]+)"', summary):
        assert f'id="{href}"' in response.text, href
    assert 'href="#date_of_birth-day"' in summary
    assert 'href="#offence_on-day"' in summary


def test_a_date_with_a_part_missing_says_which(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    response = _record(client, {**ADULT, "date_of_birth": ["3", "", ""]})
    assert "Date of birth must include a month and a year" in response.text


def test_rulebook_breaks_come_together_once_the_form_is_otherwise_right(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    response = _record(client, {**ADULT, "date_of_birth": ["1", "1", str(TODAY.year - 5)],
                                "offence_on": ["1", "1", str(TODAY.year + 1)]})
    assert response.status_code == 400
    summary = response.text.split("govuk-error-summary__list", 1)[1].split("</ul>", 1)[0]
    assert "The offence date cannot be in the future." in summary
    assert "Under 10 on the offence date" in summary
