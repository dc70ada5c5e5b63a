"""Deciding a case against a compiled policy, with every reason.

The rules, in order:

1. An exclusion whose facts are known and which applies rules the person
   out: ``not_eligible``.
2. Pathways are tried in the policy's order. The first whose criteria are
   all met is the answer, unless an exclusion could not be evaluated.
3. If a pathway earlier in the order, or an exclusion, depends on a fact
   that is missing, the answer is ``needs_review`` with those facts: the
   decision cannot be made safely without them.
4. Otherwise ``not_eligible``, with every unmet criterion of every pathway.

A criterion is evaluated only when every fact it reads is known, so a
missing fact never counts as a "no".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from diversion.eligibility.compiler import CompiledCriterion, CompiledPolicy
from diversion.eligibility.fields import FactsInvalid, validate_facts

Result = Literal["met", "unmet", "unknown"]


@dataclass(frozen=True)
class CriterionResult:
    pathway: str | None  # None for an exclusion
    criterion: str
    result: Result
    reason: str


@dataclass(frozen=True)
class Assessment:
    outcome: Literal["eligible", "not_eligible", "needs_review"]
    pathway: str | None
    results: tuple[CriterionResult, ...]
    missing: tuple[str, ...]
    policy_version: int | None
    policy_hash: str
    decided_on: date
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def unmet(self) -> list[CriterionResult]:
        return [r for r in self.results if r.result == "unmet"]

    def as_json(self) -> dict[str, Any]:
        """The decision as the CLI and the API print it."""
        return {
            "outcome": self.outcome,
            "pathway": self.pathway,
            "unmet": [
                {"pathway": r.pathway, "criterion": r.criterion, "reason": r.reason} for r in self.unmet
            ],
            "missing": list(self.missing),
            "policy_version": self.policy_version,
            "policy_hash": self.policy_hash,
        }

    def results_json(self) -> list[dict[str, Any]]:
        return [{"pathway": r.pathway, "criterion": r.criterion, "result": r.result, "reason": r.reason}
                for r in self.results]


def _evaluate(criterion: CompiledCriterion, pathway: str | None, facts: dict[str, Any],
              thing: dict[str, Any]) -> CriterionResult:
    met = criterion.met(thing) if criterion.facts <= facts.keys() else None
    result: Result = "unknown" if met is None else "met" if met else "unmet"
    return CriterionResult(pathway, criterion.id, result, criterion.reason)


def _missing(criteria: tuple[CompiledCriterion, ...], outcomes: list[CriterionResult],
             known: dict[str, Any]) -> set[str]:
    return {
        fact
        for criterion, result in zip(criteria, outcomes, strict=True) if result.result == "unknown"
        for fact in criterion.facts - known.keys()
    }


def decide(policy: CompiledPolicy, facts: Mapping[str, Any], on: date, *,
           version: int | None = None) -> Assessment:
    """Decide one case. Deterministic: the same facts, policy and date give the same decision.

    Refuses (``FactsInvalid``) facts that do not fit the national catalogue.
    """
    known = validate_facts(facts)
    thing = {**policy.document.parameters_on(on), **known}
    exclusions = [_evaluate(c, None, known, thing) for c in policy.exclusions]
    pathways = [
        (pathway, [_evaluate(c, pathway.id, known, thing) for c in pathway.criteria])
        for pathway in policy.pathways
    ]
    results = tuple(exclusions) + tuple(r for _, outcomes in pathways for r in outcomes)
    if any(r.result == "unmet" for r in exclusions):
        return Assessment("not_eligible", None, results, (), version, policy.content_hash, on, known)

    # An exclusion that cannot be evaluated blocks a decision as much as an
    # earlier pathway that cannot: either could change the answer.
    missing = _missing(policy.exclusions, exclusions, known)
    blocked = any(r.result == "unknown" for r in exclusions)
    for pathway, outcomes in pathways:
        if any(r.result == "unmet" for r in outcomes):
            continue
        if any(r.result == "unknown" for r in outcomes):
            missing |= _missing(pathway.criteria, outcomes, known)
            blocked = True
            continue
        if not blocked:
            return Assessment("eligible", pathway.id, results, (), version, policy.content_hash, on, known)
        break
    outcome: Literal["not_eligible", "needs_review"] = "needs_review" if blocked else "not_eligible"
    return Assessment(outcome, None, results, tuple(sorted(missing)), version, policy.content_hash, on, known)


@dataclass(frozen=True)
class TestOutcome:
    name: str
    passed: bool
    problems: tuple[str, ...]
    decision: Assessment | None


def run_tests(policy: CompiledPolicy, *, default_on: date) -> list[TestOutcome]:
    """Run the policy's own test cases; each says what it expected and what it got."""
    outcomes: list[TestOutcome] = []
    document = policy.document
    for case in document.tests:
        try:
            decision = decide(policy, case.all_facts(document.test_defaults), case.on or default_on)
        except FactsInvalid as error:
            outcomes.append(TestOutcome(case.name, False, (f"bad facts: {error}",), None))
            continue
        problems: list[str] = []
        if decision.outcome != case.expect:
            problems.append(f"expected {case.expect}, got {decision.outcome}")
        if case.pathway is not None and decision.pathway != case.pathway:
            problems.append(f"expected pathway {case.pathway}, got {decision.pathway}")
        unmet = {r.criterion for r in decision.unmet}
        problems += [f"expected {c} to be unmet" for c in case.unmet if c not in unmet]
        problems += [f"expected {f} to be missing" for f in case.missing if f not in decision.missing]
        outcomes.append(TestOutcome(case.name, not problems, tuple(problems), decision))
    return outcomes
