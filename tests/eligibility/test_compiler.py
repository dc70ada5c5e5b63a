"""Compiling policies: bad expressions are refused at save time, with their place."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import Flask
from flask_babel import force_locale

from diversion.eligibility.compiler import PolicyInvalid, compile_policy

BASE: dict[str, Any] = {
    "parameters": {"adult_age": [{"from": "2020-01-01", "value": 18}]},
    "exclusions": [{"id": "supply", "excluded_if": "offence == 'supply'", "reason": "Supply is prosecuted."}],
    "pathways": [{
        "id": "adult", "name": "Adults", "sessions": 1, "deadline_days": 30,
        "criteria": [{"id": "age", "expression": "age >= adult_age", "reason": "Under 18."}],
    }],
}


def _with_expression(expression: str) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    document["pathways"][0]["criteria"].append({"id": "extra", "expression": expression, "reason": "r"})
    return document


def _problem(document: dict[str, Any]) -> Any:
    with pytest.raises(PolicyInvalid) as caught:
        compile_policy(document)
    assert len(caught.value.problems) == 1, caught.value.problems
    return caught.value.problems[0]


def test_a_valid_policy_compiles_and_knows_which_facts_each_criterion_reads() -> None:
    policy = compile_policy(BASE)
    assert policy.pathways[0].criteria[0].facts == {"age"}
    assert policy.exclusions[0].facts == {"offence"}
    assert policy.content_hash.startswith("sha256:")


def test_unknown_field_names_pathway_criterion_and_column() -> None:
    problem = _problem(_with_expression("age >= 18 and personal_uze"))
    assert (problem.pathway, problem.criterion, problem.position) == ("adult", "extra", 15)
    assert "unknown field 'personal_uze'" in problem.message
    assert "personal_use" in problem.message  # the suggestion


def test_type_mismatch_is_refused_with_its_column() -> None:
    problem = _problem(_with_expression("personal_use and offence >= 3"))
    assert problem.criterion == "extra"
    assert problem.message == "type mismatch: 'offence' is text and 3 is a number: '>=' cannot join them"
    assert problem.position == 26


def test_syntax_error_is_refused_with_its_column() -> None:
    problem = _problem(_with_expression("age >= 18 and (offence == 'supply'"))
    assert problem.message.startswith("syntax error")
    assert problem.position is not None


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("age >= 18 and (offence == 'supply'", "syntax error: the expression ends before it is complete"),
        ("age >= 18 18", "syntax error: '18' is not expected here"),
        ("age >= 18 $", "syntax error: the character '$' cannot be used"),
    ],
)
def test_a_syntax_error_says_what_cannot_be_read(expression: str, said: str) -> None:
    assert _problem(_with_expression(expression)).message == said


def test_every_kind_of_problem_is_said_in_the_readers_language(app: Flask) -> None:
    """A force admin reading Welsh reads a policy's problems in Welsh: the shape's, the expressions'
    and the test cases'; the places stay the document's own words."""
    document = _with_expression("age >= 18 and personal_uze")
    document["exclusions"][0]["excluded_if"] = "offence >= 3"
    document["pathways"][0].pop("sessions")
    document["colour"] = "blue"
    with app.test_request_context(), force_locale("cy"):
        with pytest.raises(PolicyInvalid) as shape:
            compile_policy(document)
        document.pop("colour")
        document["pathways"][0]["sessions"] = 1
        with pytest.raises(PolicyInvalid) as expressions:
            compile_policy(document)
    said = {p.place: p.message for p in shape.value.problems + expressions.value.problems}
    assert said["pathways[adult].sessions"] == "mae angen hwn"
    assert said["colour"] == "nid yw'n rhan o bolisi: gwiriwch y sillafu"
    assert said["pathways[adult].criteria[extra].expression"].startswith(
        "maes anhysbys 'personal_uze': nid yw yn y catalog cenedlaethol nac yn baramedr")
    assert said["exclusions[supply].excluded_if"] == \
        "anghysondeb math: testun yw 'offence' a rhif yw 3: ni all '>=' eu cysylltu"


def test_an_expression_that_is_not_a_condition_is_refused() -> None:
    problem = _problem(_with_expression("age + 1"))
    assert "yes-or-no condition" in problem.message


def test_exclusion_problems_name_the_exclusion() -> None:
    document = copy.deepcopy(BASE)
    document["exclusions"][0]["excluded_if"] = "ofence == 'supply'"
    problem = _problem(document)
    assert (problem.pathway, problem.criterion) == (None, "supply")
    assert problem.place == "exclusions[supply].excluded_if"


def test_every_problem_is_reported_at_once() -> None:
    document = _with_expression("nonsense_one")
    document["exclusions"][0]["excluded_if"] = "nonsense_two"
    with pytest.raises(PolicyInvalid) as caught:
        compile_policy(document)
    assert {p.criterion for p in caught.value.problems} == {"extra", "supply"}


@pytest.mark.parametrize(
    ("change", "place", "text"),
    [
        (lambda d: d["pathways"][0].pop("criteria"), "pathways[adult].criteria", "is required"),
        (lambda d: d["pathways"].append(copy.deepcopy(d["pathways"][0])), "pathways", "appears twice"),
        (lambda d: d["pathways"][0].update(sessions=0), "pathways[adult].sessions", "must be 1 or more"),
        (lambda d: d["parameters"].update(age=[{"from": "2020-01-01", "value": 3}]), "parameters.age",
         "name of a catalogue field"),
        (lambda d: d.update(colour="blue"), "colour", "is not part of a policy"),
    ],
)
def test_shape_problems_say_where(change, place, text) -> None:
    document = copy.deepcopy(BASE)
    change(document)
    problem = _problem(document)
    assert problem.place == place, problem
    assert text in problem.message


def test_the_hash_changes_with_content_and_only_with_content() -> None:
    same = compile_policy(copy.deepcopy(BASE)).content_hash
    assert compile_policy(copy.deepcopy(BASE)).content_hash == same
    assert compile_policy(_with_expression("personal_use")).content_hash != same


def test_comparing_a_number_with_text_is_refused_where_it_happens() -> None:
    problem = _problem(_with_expression("stage == 'custody' and age == 'old'"))
    assert problem.position == 28
    assert problem.message == "type mismatch: 'age' is a number and 'old' is text, so it is never equal"
