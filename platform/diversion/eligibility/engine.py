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
missing fact never counts as a "no". An exclusion that cannot be evaluated
blocks a decision as much as an earlier pathway that cannot: either could
change the answer.

``decide`` follows these rules in the policy compiled to one Python function
(``decider``): the facts checked once, each criterion a Python expression,
and no criterion evaluated once the case is settled. Every criterion's
result, which the decision page and the stored decision show, is worked out
from the decision's facts when it is asked for (``Assessment.results``,
``criterion_results``), evaluating every criterion, none skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any, Literal, Protocol

from flask_babel import gettext as _

from diversion.eligibility.compiler import CompiledCriterion, CompiledPolicy
from diversion.eligibility.decider import Verdict
from diversion.eligibility.fields import FactsInvalid

Result = Literal["met", "unmet", "unknown"]
_made = tuple.__new__  # an Assessment from its parts, without a call to __new__ in Python


@dataclass(frozen=True)
class CriterionResult:
    pathway: str | None  # None for an exclusion
    criterion: str
    result: Result
    reason: str


class Assessment(Verdict):
    """A decision, with every criterion's result (``results``) worked out from
    its facts when asked for: the decision itself stops as soon as it is settled.

    A named tuple, so that a decision is made as fast as a tuple; two
    decisions are equal when their parts are, whichever compiled copy of the
    policy made them.
    """

    @cached_property
    def results(self) -> tuple[CriterionResult, ...]:
        """Every criterion's result, exclusions first, then each pathway's in order."""
        return criterion_results(self.policy, self.facts, self.decided_on)

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
        return results_json(self.results)

    def unmet_ids(self) -> list[str]:
        """The ids of the unmet criteria, as a stored decision keeps them (``unmet_id``)."""
        return [unmet_id(r.pathway, r.criterion) for r in self.unmet]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Assessment) and self[:-1] == other[:-1]

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]  # its facts are a dict

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields[:-1], self[:-1], strict=True))
        return f"Assessment({parts})"


def _evaluate(criterion: CompiledCriterion, pathway: str | None, facts: dict[str, Any],
              thing: dict[str, Any]) -> CriterionResult:
    met = criterion.met(thing) if criterion.facts <= facts.keys() else None
    result: Result = "unknown" if met is None else "met" if met else "unmet"
    return CriterionResult(pathway, criterion.id, result, criterion.reason)


def unmet_id(pathway: str | None, criterion: str) -> str:
    """How a stored decision names an unmet criterion: an exclusion by its id, a
    pathway's criterion as ``pathway/criterion`` (ids never hold a ``/``)."""
    return criterion if pathway is None else f"{pathway}/{criterion}"


def unmet_named(policy: CompiledPolicy, ids: Sequence[str]) -> list[CriterionResult]:
    """The unmet criteria a stored decision names (``unmet_id``), with their reasons
    from ``policy``, the decision's policy version: nothing evaluated again."""
    criteria: dict[str, tuple[str | None, CompiledCriterion]] = {
        unmet_id(None, c.id): (None, c) for c in policy.exclusions}
    criteria.update({unmet_id(p.id, c.id): (p.id, c) for p in policy.pathways for c in p.criteria})
    return [CriterionResult(criteria[name][0], criteria[name][1].id, "unmet", criteria[name][1].reason)
            for name in ids]


def results_json(results: tuple[CriterionResult, ...]) -> list[dict[str, Any]]:
    """Criterion results as the decision page and the API read them."""
    return [{"pathway": r.pathway, "criterion": r.criterion, "result": r.result, "reason": r.reason}
            for r in results]


def criterion_results(policy: CompiledPolicy, known: dict[str, Any], on: date) -> tuple[CriterionResult, ...]:
    """Every criterion of ``policy`` evaluated on ``known`` (checked) facts on ``on``, none skipped.

    A criterion is evaluated only when every fact it reads is known;
    otherwise its result is "unknown".
    """
    thing = {**policy.document.parameters_on(on), **known}
    return (*(_evaluate(c, None, known, thing) for c in policy.exclusions),
            *(_evaluate(c, pathway.id, known, thing) for pathway in policy.pathways for c in pathway.criteria))


def decide(policy: CompiledPolicy, facts: Mapping[str, Any], on: date, *,
           version: int | None = None) -> Assessment:
    """Decide one case. Deterministic: the same facts, policy and date give the same decision.

    Refuses (``FactsInvalid``) facts that do not fit the national catalogue.
    """
    return _made(Assessment, policy.decider(facts, on, version))


class Wording(Protocol):
    """How a test case's problems name an outcome and a pathway (None: no pathway)."""

    def outcome(self, outcome: str) -> str: ...

    def pathway(self, pathway: str | None) -> str: ...


class _AsWritten:
    """Outcomes and pathways by their ids, as the policy's file writes them: for the
    command line and the force files, whose readers write those ids."""

    def outcome(self, outcome: str) -> str:
        return outcome

    def pathway(self, pathway: str | None) -> str:
        return str(pathway)


AS_WRITTEN: Wording = _AsWritten()


@dataclass(frozen=True)
class TestOutcome:
    name: str
    passed: bool
    problems: tuple[str, ...]
    decision: Assessment | None


def run_tests(policy: CompiledPolicy, *, default_on: date, wording: Wording = AS_WRITTEN) -> list[TestOutcome]:
    """Run the policy's own test cases; each says what it expected and what it got, naming
    outcomes and pathways by ``wording`` (by default, by their ids)."""
    outcomes: list[TestOutcome] = []
    document = policy.document
    for case in document.tests:
        try:
            decision = decide(policy, case.all_facts(document.test_defaults), case.on or default_on)
        except FactsInvalid as error:
            outcomes.append(TestOutcome(case.name, False, (_("bad facts: %(problems)s", problems=str(error)),), None))
            continue
        problems: list[str] = []
        if decision.outcome != case.expect:
            problems.append(_("expected %(expected)s, got %(got)s", expected=wording.outcome(case.expect),
                              got=wording.outcome(decision.outcome)))
        if case.pathway is not None and decision.pathway != case.pathway:
            problems.append(_("expected pathway %(expected)s, got %(got)s", expected=wording.pathway(case.pathway),
                              got=wording.pathway(decision.pathway)))
        unmet = {r.criterion for r in decision.unmet}
        problems += [_("expected %(criterion)s to be unmet", criterion=c) for c in case.unmet if c not in unmet]
        problems += [_("expected %(fact)s to be missing", fact=f) for f in case.missing if f not in decision.missing]
        outcomes.append(TestOutcome(case.name, not problems, tuple(problems), decision))
    return outcomes
