"""decide() answers from the policy compiled to one Python function, stopping as
soon as a case is settled; its explanation is worked out in full only when
asked for. Both must agree with a plain evaluation of every criterion by
rule-engine itself, for every force's policy and for a policy of awkward
shapes, on any facts and date."""

from __future__ import annotations

import tomllib
from collections import OrderedDict
from datetime import date
from types import MappingProxyType
from typing import Any

import pytest
import rule_engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diversion.eligibility.compiler import CompiledCriterion, CompiledPolicy, compile_policy
from diversion.eligibility.document import split_policy
from diversion.eligibility.engine import Assessment, CriterionResult, criterion_results, decide, unmet_named
from diversion.eligibility.explain import explain
from diversion.eligibility.fields import FIELDS, FactsInvalid, Kind, _check
from diversion.eligibility.packed import pack_facts, unpack_facts
from tests.conftest import TENANTS_DIR
from tests.eligibility.test_forces import adult

FORCE_POLICIES = {
    path.stem: compile_policy(split_policy(raw["policy"])[1])
    for path in sorted(TENANTS_DIR.glob("*.toml"))
    if "policy" in (raw := tomllib.loads(path.read_text()))
}

# Every shape a criterion can take: comparisons of every kind, ``in`` over lists
# and parameters, ``not``, ``and``/``or`` as values, dated parameters of every
# type, and expressions only rule-engine evaluates (arithmetic, indexing, $today).
AWKWARD: dict[str, Any] = {
    "parameters": {
        "adult_age": [{"from": "2020-01-01", "value": 18}, {"from": "2023-06-01", "value": 21}],
        "allowed": [{"from": "2020-01-01", "value": ["possession", "cultivation"]},
                    {"from": "2024-01-01", "value": ["possession"]}],
        "scheme": [{"from": "2020-01-01", "value": "street"}],
        "strict": [{"from": "2020-01-01", "value": True}, {"from": "2022-01-01", "value": False}],
    },
    "exclusions": [
        {"id": "supply", "excluded_if": "offence == 'supply' or (user_dealer and not personal_use)",
         "reason": "Supply is prosecuted."},
        {"id": "late", "excluded_if": "$today < d'2000-01-01' or age + offence_age_days > 120",
         "reason": "Too late."},
        {"id": "bail", "excluded_if": "on_bail and strict", "reason": "On bail."},
    ],
    "pathways": [
        {"id": "first", "name": "First", "sessions": 1, "deadline_days": 10, "criteria": [
            {"id": "allowed", "expression": "offence in allowed", "reason": "Not an offence it takes."},
            {"id": "age", "expression": "(age >= adult_age) == personal_use", "reason": "Age and use."},
            {"id": "cannabis-first", "expression": "substances[0] == 'cannabis'", "reason": "Cannabis first."},
            {"id": "class", "expression": "substances == ['cannabis'] or drug_class != 'A'", "reason": "Class A."},
        ]},
        {"id": "second", "name": "Second", "sessions": 1, "deadline_days": 10, "criteria": [
            {"id": "stage", "expression": "stage == scheme and not ('weapon' in aggravating_factors)",
             "reason": "Not on the street, or a weapon."},
            {"id": "few", "expression": "previous_diversions < 2 and previous_diversions >= 0.5 "
                                        "or admission in ['admitted']", "reason": "Too many, or denied."},
            {"id": "either", "expression": "(held_for_court or under_court_order) != true",
             "reason": "Before a court."},
        ]},
        {"id": "last", "name": "Last", "sessions": 1, "deadline_days": 10, "criteria": [
            {"id": "young", "expression": "age < 25", "reason": "25 or over."},
            {"id": "local", "expression": "resident_in_force_area", "reason": "Lives elsewhere."},
        ]},
    ],
}
POLICIES = {**FORCE_POLICIES, "awkward": compile_policy(AWKWARD)}

_INTS = {"age": st.integers(10, 70), "previous_diversions": st.integers(0, 4),
         "offence_age_days": st.integers(0, 150)}


def _value(name: str) -> st.SearchStrategy[Any]:
    spec = FIELDS[name]
    if spec.kind is Kind.INT:
        return _INTS[name]
    if spec.kind is Kind.BOOL:
        return st.booleans()
    if spec.kind is Kind.CHOICE:
        return st.sampled_from(spec.values)
    return st.lists(st.sampled_from(spec.values), max_size=3)  # a value twice is the value once


@st.composite
def _facts(draw: st.DrawFn) -> dict[str, Any]:
    """Facts in any order: mostly every field known (the usual case), else some left out or None."""
    names = draw(st.permutations(list(FIELDS)))
    everything = draw(st.booleans())
    facts: dict[str, Any] = {}
    for name in names:
        kind = "known" if everything else draw(st.sampled_from(["known", "known", "known", "none", "left out"]))
        if kind == "known":
            facts[name] = draw(_value(name))
        elif kind == "none":
            facts[name] = None
    return facts


_DAYS = st.dates(date(2019, 6, 1), date(2025, 6, 1))


def _reference_known(facts: dict[str, Any]) -> dict[str, Any]:
    """The checked facts, field by field, as the catalogue says."""
    problems = {name: "is not a field of the national catalogue" for name in facts if name not in FIELDS}
    problems.update({name: problem for name, value in facts.items()
                     if name in FIELDS and value is not None and (problem := _check(FIELDS[name], value))})
    if problems:
        raise FactsInvalid(problems)
    return {name: sorted(set(value)) if FIELDS[name].kind is Kind.CHOICES else value
            for name, value in facts.items() if value is not None}


def _reference(policy: CompiledPolicy, facts: dict[str, Any],
               on: date) -> tuple[str, str | None, tuple[str, ...], tuple[CriterionResult, ...]]:
    """The decision the slow, plain way: rule-engine evaluates every criterion, then the rules apply."""
    known = _reference_known(facts)
    thing = {**policy.document.parameters_on(on), **known}

    def result(criterion: CompiledCriterion, pathway: str | None) -> CriterionResult:
        met: bool | None = None
        if criterion.facts <= known.keys():
            try:
                matched = bool(criterion.rule.matches(thing))
                met = not matched if criterion.exclusion else matched
            except rule_engine.EngineError:
                met = None
        return CriterionResult(pathway, criterion.id, "unknown" if met is None else "met" if met else "unmet",
                               criterion.reason)

    exclusions = [(c, result(c, None)) for c in policy.exclusions]
    pathways = [(p, [(c, result(c, p.id)) for c in p.criteria]) for p in policy.pathways]
    results = tuple(r for _, r in exclusions) + tuple(r for _, rs in pathways for _, r in rs)

    def waiting(pairs: list[tuple[CompiledCriterion, CriterionResult]]) -> set[str]:
        return {fact for c, r in pairs if r.result == "unknown" for fact in c.facts - known.keys()}

    if any(r.result == "unmet" for _, r in exclusions):
        return "not_eligible", None, (), results
    missing = waiting(exclusions)
    blocked = any(r.result == "unknown" for _, r in exclusions)
    for pathway, pairs in pathways:
        if any(r.result == "unmet" for _, r in pairs):
            continue
        if any(r.result == "unknown" for _, r in pairs):
            missing |= waiting(pairs)
            blocked = True
            continue
        if not blocked:
            return "eligible", pathway.id, (), results
        break
    return ("needs_review" if blocked else "not_eligible"), None, tuple(sorted(missing)), results


def _agrees(policy: CompiledPolicy, facts: dict[str, Any], on: date) -> Assessment:
    outcome, pathway, missing, results = _reference(policy, facts, on)
    decision = decide(policy, facts, on, version=4)
    assert (decision.outcome, decision.pathway, decision.missing) == (outcome, pathway, missing), (facts, on)
    assert list(decision.facts.items()) == list(_reference_known(facts).items())  # same values, same order
    assert decision.results == results
    assert decision.results_json() == [{"pathway": r.pathway, "criterion": r.criterion, "result": r.result,
                                        "reason": r.reason} for r in results]
    assert [r.reason for r in decision.unmet] == [r.reason for r in results if r.result == "unmet"]
    # As a stored decision keeps it: the facts packed, the unmet criteria by id; the results worked out again.
    kept = unpack_facts(pack_facts(decision.facts))
    assert kept == decision.facts
    assert criterion_results(policy, kept, on) == results
    assert unmet_named(policy, decision.unmet_ids()) == [r for r in results if r.result == "unmet"]
    page = explain(policy, outcome=decision.outcome, pathway=decision.pathway, results=decision.results_json(),
                   missing=decision.missing, facts=decision.facts)
    assert page == explain(policy, outcome=outcome, pathway=pathway, missing=missing, facts=decision.facts,
                           results=[{"pathway": r.pathway, "criterion": r.criterion, "result": r.result,
                                     "reason": r.reason} for r in results])
    return decision


@pytest.mark.parametrize("name", sorted(POLICIES))
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts=_facts(), on=_DAYS)
def test_the_compiled_decision_agrees_with_every_criterion_evaluated(name: str, facts: dict[str, Any],
                                                                      on: date) -> None:
    _agrees(POLICIES[name], facts, on)


@pytest.mark.parametrize("name", sorted(POLICIES))
@settings(max_examples=100, deadline=None)
@given(facts=st.fixed_dictionaries({name: _value(name) for name in FIELDS}), on=_DAYS)
def test_every_fact_known_never_needs_review(name: str, facts: dict[str, Any], on: date) -> None:
    decision = _agrees(POLICIES[name], facts, on)
    if name != "awkward":  # its rule-engine criteria can fail to evaluate (the first of no substances)
        assert decision.outcome != "needs_review"
        assert decision.missing == ()


_WRONG: list[tuple[str, Any]] = [
    ("age", True), ("age", 9), ("age", 30.0), ("age", "30"), ("previous_diversions", -1),
    ("offence", "murder"), ("offence", ["possession"]), ("offence", None), ("drug_class", "b"),
    ("substances", "cannabis"), ("substances", ("cannabis",)), ("substances", ["tea"]),
    ("substances", [["cannabis"]]), ("aggravating_factors", {"violence"}),
    ("age", 2 ** 31), ("offence_age_days", 2 ** 31 - 1), ("personal_use", 1), ("personal_use", 0),
    ("personal_use", "yes"), ("stage", {"street": 1}),
    ("shoe_size", 9), ("shoe_size", None),
]


@pytest.mark.parametrize(("field", "value"), _WRONG)
def test_facts_that_do_not_fit_are_refused_as_the_catalogue_says(field: str, value: Any) -> None:
    facts = {**adult(), field: value}
    try:
        expected: dict[str, Any] | None = _reference_known(facts)
    except FactsInvalid as error:
        expected = None
        problems = error.problems
    for policy in POLICIES.values():
        if expected is None:
            with pytest.raises(FactsInvalid) as caught:
                decide(policy, facts, date(2024, 1, 1))
            assert caught.value.problems == problems
        else:
            _agrees(policy, facts, date(2024, 1, 1))


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_facts_that_are_not_a_plain_dict_decide_the_same(name: str) -> None:
    policy, on = POLICIES[name], date(2024, 1, 1)
    for facts in (adult(), adult(age=15, stage="custody"), adult(offence="supply"), adult(admission=None)):
        expected = decide(policy, facts, on)
        assert decide(policy, MappingProxyType(facts), on) == expected
        assert decide(policy, OrderedDict(facts), on) == expected


def test_the_decision_keeps_its_own_copy_of_the_facts() -> None:
    facts = adult(substances=["mdma", "cannabis"], aggravating_factors=[])
    decision = decide(POLICIES["west-midlands"], facts, date(2024, 1, 1))
    facts["substances"].append("heroin")
    facts["aggravating_factors"].append("weapon")
    facts["age"] = 12
    assert decision.facts["substances"] == ["cannabis", "mdma"]
    assert decision.facts["aggravating_factors"] == []
    assert decision.facts["age"] == 30


def test_an_exclusion_that_applies_settles_the_case_without_the_pathways() -> None:
    policy = compile_policy({
        "exclusions": [{"id": "supply", "excluded_if": "offence == 'supply'", "reason": "Supply."}],
        "pathways": [{"id": "p", "name": "P", "sessions": 1, "deadline_days": 10, "criteria": [
            {"id": "first", "expression": "substances[0] == 'cannabis'", "reason": "Cannabis first."}]}],
    })
    evaluated: list[str] = []
    first = policy.pathways[0].criteria[0]
    original = first.rule.matches

    def counting(thing: dict[str, Any]) -> bool:
        evaluated.append(first.id)
        return bool(original(thing))

    object.__setattr__(first.rule, "matches", counting)
    decision = decide(policy, adult(offence="supply"), date(2024, 1, 1))
    assert decision.outcome == "not_eligible"
    assert evaluated == []  # the decision stopped at the exclusion
    assert [r.result for r in decision.results] == ["unmet", "met"]  # the explanation has them all
    assert evaluated == ["first"]


def test_decisions_are_equal_whichever_compiled_copy_of_the_policy_made_them() -> None:
    facts, on = adult(stage="custody"), date(2024, 1, 1)
    again = compile_policy(AWKWARD)
    assert decide(POLICIES["awkward"], facts, on) == decide(again, facts, on)
    assert decide(POLICIES["awkward"], facts, on) != decide(again, facts, on, version=2)
    assert "policy=" not in repr(decide(again, facts, on))
