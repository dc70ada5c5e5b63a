"""decide(): outcomes, reasons, missing facts, determinism, and bad facts refused."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from diversion.eligibility.engine import decide
from diversion.eligibility.fields import FIELDS, FactsInvalid, Kind, validate_facts
from diversion.eligibility.simulation import ELIGIBLE, NEEDS_REVIEW, Columns, evaluate
from tests.eligibility.test_forces import FORCES, ON, adult, policy


def test_missing_fact_on_the_deciding_path_needs_review() -> None:
    facts = adult(stage="custody")
    del facts["admission"]
    decision = decide(policy("durham"), facts, ON)
    assert decision.outcome == "needs_review"
    assert decision.missing == ("admission",)
    assert decision.pathway is None


def test_missing_fact_that_does_not_matter_is_not_asked_for() -> None:
    facts = adult(stage="custody", under_court_order=True)  # excluded whatever the admission
    del facts["admission"]
    decision = decide(policy("durham"), facts, ON)
    assert decision.outcome == "not_eligible"
    assert decision.missing == ()


def test_none_means_unknown() -> None:
    decision = decide(policy("west-midlands"), adult(age=None), ON)
    assert decision.outcome == "needs_review"
    assert "age" in decision.missing


def test_every_criterion_has_a_result_and_the_decision_carries_its_policy() -> None:
    compiled = policy("north-wales")
    decision = decide(compiled, adult(stage="custody"), ON, version=3)
    expected = len(compiled.exclusions) + sum(len(p.criteria) for p in compiled.pathways)
    assert len(decision.results) == expected
    assert decision.as_json()["policy_version"] == 3
    assert decision.as_json()["policy_hash"] == compiled.content_hash


def test_dated_parameters_use_the_decision_date() -> None:
    compiled = policy("thames-valley")
    young = adult(age=15)
    assert decide(compiled, young, date(2020, 9, 30)).outcome == "not_eligible"
    assert decide(compiled, young, date(2020, 10, 1)).pathway == "youth"


def test_deterministic() -> None:
    compiled = policy("durham")
    first = decide(compiled, adult(stage="custody"), ON)
    assert all(decide(compiled, adult(stage="custody"), ON) == first for _ in range(5))


@pytest.mark.parametrize(
    ("facts", "field", "problem"),
    [
        ({"age": "30"}, "age", "whole number"),
        ({"age": True}, "age", "whole number"),
        ({"age": 5}, "age", "at least 10"),
        ({"offence": "murder"}, "offence", "must be one of"),
        ({"substances": "cannabis"}, "substances", "must be a list"),
        ({"substances": ["tea"]}, "substances", "'tea' is not one of"),
        ({"personal_use": "yes"}, "personal_use", "true or false"),
        ({"shoe_size": 9}, "shoe_size", "not a field"),
    ],
)
def test_bad_facts_are_refused_naming_the_field(facts, field, problem) -> None:
    with pytest.raises(FactsInvalid) as caught:
        validate_facts(facts)
    assert problem in caught.value.problems[field]


def _random_facts(rng: random.Random) -> dict:
    facts: dict = {}
    for name, spec in FIELDS.items():
        if rng.random() < 0.08:
            continue
        if spec.kind is Kind.INT:
            facts[name] = rng.randint(spec.minimum or 0, {"age": 70, "offence_age_days": 150}.get(name, 3))
        elif spec.kind is Kind.BOOL:
            facts[name] = rng.random() < 0.5
        elif spec.kind is Kind.CHOICE:
            facts[name] = rng.choice(spec.values)
        else:
            facts[name] = sorted(rng.sample(spec.values, rng.randint(0, 2)))
    return facts


@pytest.mark.parametrize("slug", FORCES)
def test_the_column_simulation_agrees_with_decide_case_by_case(slug: str) -> None:
    rng = random.Random(slug)
    compiled = policy(slug)
    facts = [_random_facts(rng) for _ in range(1500)]
    days = [date(2020, 1, 1) + timedelta(days=rng.randrange(2000)) for _ in facts]
    result = evaluate(compiled, Columns.build(facts, days), explain=True)
    assert result.unmet is not None
    names = {ELIGIBLE: "eligible", NEEDS_REVIEW: "needs_review"}
    seen = set()
    for i, (one, day) in enumerate(zip(facts, days, strict=True)):
        expected = decide(compiled, one, day)
        index = int(result.pathway[i])
        got = (names.get(int(result.outcome[i]), "not_eligible"), compiled.pathways[index].id if index >= 0 else None)
        assert got == (expected.outcome, expected.pathway), (one, day)
        assert result.unmet[i] == expected.unmet_ids(), (one, day)  # what a stored decision keeps
        seen.add(expected.outcome)
    assert seen == {"eligible", "not_eligible", "needs_review"}  # every branch exercised


def test_expressions_the_columns_cannot_express_fall_back_to_rule_engine() -> None:
    from diversion.eligibility.compiler import compile_policy

    compiled = compile_policy({
        "parameters": {"limit": [{"from": "2020-01-01", "value": 60}]},
        "pathways": [{"id": "p", "name": "P", "sessions": 1, "deadline_days": 10, "criteria": [
            {"id": "sum", "expression": "age + offence_age_days < limit", "reason": "Too late."},
            {"id": "drug", "expression": "substances[0] == 'cannabis'", "reason": "Cannabis first."},
        ]}],
    })
    rng = random.Random(7)
    facts = [_random_facts(rng) for _ in range(300)]
    days = [date(2024, 1, 1)] * len(facts)
    result = evaluate(compiled, Columns.build(facts, days), explain=True)
    assert result.unmet is not None
    names = {ELIGIBLE: "eligible", NEEDS_REVIEW: "needs_review"}
    outcomes = set()
    for i, one in enumerate(facts):
        expected = decide(compiled, one, days[i])
        assert names.get(int(result.outcome[i]), "not_eligible") == expected.outcome, one
        assert result.unmet[i] == expected.unmet_ids(), one
        outcomes.add(expected.outcome)
    # An empty list of substances cannot be indexed: such a case goes to review.
    young = {"age": 20, "offence_age_days": 1}
    assert decide(compiled, {**young, "substances": ["cannabis"]}, days[0]).outcome == "eligible"
    assert decide(compiled, {**young, "substances": []}, days[0]).outcome == "needs_review"
    assert outcomes == {"eligible", "not_eligible", "needs_review"}


@pytest.mark.parametrize("slug", FORCES)
def test_the_python_fast_path_agrees_with_rule_engine(slug: str) -> None:
    compiled = policy(slug)
    criteria = [*compiled.exclusions, *(c for p in compiled.pathways for c in p.criteria)]
    assert all(c.fast is not None for c in criteria)  # the five policies use only plain shapes
    rng = random.Random(f"fast:{slug}")
    for _ in range(500):
        facts = _random_facts(rng)
        thing = {**compiled.document.parameters_on(ON), **facts}
        for criterion in criteria:
            if criterion.facts <= facts.keys():
                assert bool(criterion.fast(thing)) == bool(criterion.rule.matches(thing)), criterion.expression
