"""A decision in plain words: what was decided and why, in the force's own reasons.

The decision page reads this, never the raw results: for an eligible
person, the pathway and what holds for *that* pathway (its criteria's
``holds`` sentences, or the facts a criterion read when the policy gives
none), and the exclusions that do not apply; for a person not eligible,
every reason that rules them out, once; for a decision that needs review,
the facts it waits for, by their labels. Everything else (each criterion of
each pathway, every fact) is the audit's, shown behind a disclosure.

A criterion's ``reason`` is written as why it is *not* met, so it is never
shown for a criterion that is met. For an exclusion, the stored result is
"met" when the person is *not* excluded: an exclusion whose result is
"unmet" is one that applies and rules the person out (``engine``).

The force's sentences (pathway names, reasons, what holds) are given in the
reader's language where the policy has them in it (``reason_cy``...), else in
English; the words of the page around them are the catalogue's.

A pure function of a decision's stored parts and its compiled policy: the
results of a stored decision are worked out again from its facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from diversion.eligibility.compiler import CompiledCriterion, CompiledPolicy
from diversion.eligibility.engine import criterion_results, results_json
from diversion.eligibility.fields import FIELDS, describe_fact, fact_label
from diversion.words import ENGLISH


@dataclass(frozen=True)
class AuditFact:
    label: str
    value: str


@dataclass(frozen=True)
class AuditCriterion:
    criterion: str  # its id in the policy
    pathway: str  # the pathway's name, or "Every pathway" for an exclusion
    result: str  # in words
    reason: str  # the policy's sentence for this result (why not, or what holds), "" when it has none


@dataclass(frozen=True)
class RoutesReasons:
    pathway: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Explanation:
    outcome: str
    pathway: str | None  # the pathway's name when eligible
    holds: tuple[str, ...] = ()  # eligible: what holds for the pathway
    clear: tuple[str, ...] = ()  # eligible: the exclusions that do not apply, as what holds
    unmet: tuple[str, ...] = ()  # not eligible: each reason that rules the person out, once
    routes: tuple[RoutesReasons, ...] = ()  # not eligible, no reason shared by every route: each route's own
    awaited: tuple[str, ...] = ()  # needs review: the labels of the facts awaited
    facts: tuple[AuditFact, ...] = ()
    criteria: tuple[AuditCriterion, ...] = ()


def _once(sentences: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for s in sentences if s))


def _what_holds(criterion: CompiledCriterion, facts: Mapping[str, Any], language: str) -> list[str]:
    """The criterion's ``holds`` sentence, or else the facts it read, in words ("Stage: On the street")."""
    if holds := criterion.holds_in(language):
        return [holds]
    return [f"{fact_label(name)}: {describe_fact(name, facts.get(name))}"
            for name in FIELDS if name in criterion.facts]


_PATHWAY_RESULT = {"met": _l("Met"), "unmet": _l("Not met"), "unknown": _l("Not known: a fact is missing")}
_EXCLUSION_RESULT = {"met": _l("Does not apply"), "unmet": _l("Applies: rules the person out"),
                     "unknown": _l("Not known: a fact is missing")}


def explain(policy: CompiledPolicy, *, outcome: str, pathway: str | None, results: Sequence[Mapping[str, Any]],
            missing: Sequence[str], facts: Mapping[str, Any], language: str = ENGLISH) -> Explanation:
    """Explain a decision (its outcome, pathway, stored ``results``, ``missing``
    facts and fact snapshot) decided under ``policy``, its sentences in ``language``."""
    names = {p.id: p.name_in(language) for p in policy.pathways}
    exclusions = {c.id: c for c in policy.exclusions}
    criteria = {(p.id, c.id): c for p in policy.pathways for c in p.criteria}
    audit_facts = tuple(AuditFact(field.label, describe_fact(name, facts.get(name))) for name, field in FIELDS.items())

    def compiled(r: Mapping[str, Any]) -> CompiledCriterion | None:
        return exclusions.get(r["criterion"]) if r["pathway"] is None \
            else criteria.get((r["pathway"], r["criterion"]))

    def reason(r: Mapping[str, Any]) -> str:
        return found.reason_in(language) if (found := compiled(r)) else str(r["reason"])

    def said(r: Mapping[str, Any]) -> str:
        if r["result"] == "unmet":
            return reason(r)
        return (found.holds_in(language) or "") if (found := compiled(r)) and r["result"] == "met" else ""

    audit = tuple(
        AuditCriterion(r["criterion"],
                       names.get(r["pathway"], r["pathway"]) if r["pathway"] else gettext("Every pathway"),
                       str((_PATHWAY_RESULT if r["pathway"] else _EXCLUSION_RESULT)[r["result"]]), said(r))
        for r in results)
    base = Explanation(outcome, names.get(pathway) if pathway else None, facts=audit_facts, criteria=audit)

    if outcome == "eligible" and pathway is not None:
        chosen = policy.pathway(pathway)
        holds = [s for c in (chosen.criteria if chosen else ()) for s in _what_holds(c, facts, language)]
        clear = [s for c in policy.exclusions for s in _what_holds(c, facts, language)]
        return replace(base, holds=_once(holds), clear=_once(clear))
    if outcome == "needs_review":
        return replace(base, awaited=_once(fact_label(name) for name in missing))

    ruled_out = [reason(r) for r in results if r["pathway"] is None and r["result"] == "unmet"]
    if ruled_out:
        return replace(base, unmet=_once(ruled_out))
    by_route: dict[str, list[str]] = {p.id: [] for p in policy.pathways}
    for r in results:
        if r["pathway"] is not None and r["result"] == "unmet":
            by_route.setdefault(r["pathway"], []).append(reason(r))
    shared = [reason for reason in _once(s for reasons in by_route.values() for s in reasons)
              if all(reason in reasons for reasons in by_route.values())]
    if shared:
        return replace(base, unmet=tuple(shared))
    return replace(base, routes=tuple(RoutesReasons(names.get(route, route), _once(reasons))
                                    for route, reasons in by_route.items() if reasons))


def explain_decision(policy: CompiledPolicy, decision: Any, language: str = ENGLISH) -> Explanation:
    """``explain`` for a stored ``Decision`` (the policy's own decision, before any override),
    ``policy`` being its policy version compiled: every criterion's result is worked out
    again from the decision's facts on its date."""
    results = results_json(criterion_results(policy, decision.facts, decision.decided_on))
    return explain(policy, outcome=decision.outcome, pathway=decision.pathway, results=results,
                   missing=decision.missing, facts=decision.facts, language=language)
