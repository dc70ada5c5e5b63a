"""Simulation: run a policy over many past cases at once and show what changes.

Each criterion's rule-engine expression is translated once into operations on
columns (NumPy arrays, one per catalogue field), so a million cases take
seconds, not the minutes a case-by-case loop would. An expression the
translation does not cover is evaluated case by case with rule-engine
itself, so every valid policy can be simulated. The outcome logic is the
same as ``engine.decide``; the test suite checks the two agree case by case.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
from rule_engine import ast

from diversion.eligibility.compiler import CompiledCriterion, CompiledPolicy
from diversion.eligibility.fastpath import Unsupported, literal
from diversion.eligibility.fields import FIELDS, Kind

Bools = npt.NDArray[np.bool_]
NOT_ELIGIBLE, ELIGIBLE, NEEDS_REVIEW = 0, 1, 2
CHUNK = 100_000


@dataclass
class Columns:
    """Past cases as columns: each field's values and whether each is known."""

    size: int
    values: dict[str, Any]
    known: dict[str, Bools]
    memberships: dict[tuple[str, str], Bools]
    days: npt.NDArray[np.int64]
    rows: Sequence[Mapping[str, Any]]

    @classmethod
    def build(cls, facts: Sequence[Mapping[str, Any]], days: Sequence[date]) -> Columns:
        size = len(facts)
        values: dict[str, Any] = {}
        known: dict[str, Bools] = {}
        memberships: dict[tuple[str, str], Bools] = {}
        for name, spec in FIELDS.items():
            raw = [row.get(name) for row in facts]
            known[name] = np.fromiter((v is not None for v in raw), dtype=np.bool_, count=size)
            if spec.kind is Kind.INT:
                values[name] = np.fromiter((np.nan if v is None else v for v in raw), dtype=np.float64, count=size)
            elif spec.kind is Kind.BOOL:
                values[name] = np.fromiter((bool(v) for v in raw), dtype=np.bool_, count=size)
            elif spec.kind is Kind.CHOICE:
                values[name] = np.array(["" if v is None else v for v in raw], dtype=object)
            else:
                for option in spec.values:
                    memberships[name, option] = np.fromiter(
                        (v is not None and option in v for v in raw), dtype=np.bool_, count=size)
                values[name] = None
        day_numbers = np.fromiter((d.toordinal() for d in days), dtype=np.int64, count=size)
        return cls(size, values, known, memberships, day_numbers, facts)


class _Translator:
    """Evaluates an expression tree over columns; parameters are dated per case."""

    def __init__(self, columns: Columns, parameters: dict[str, Any]) -> None:
        self.columns = columns
        self.parameters = parameters

    def value(self, node: Any) -> Any:  # noqa: PLR0911 - one branch per node kind
        c = self.columns
        if isinstance(node, ast.SymbolExpression):
            if node.name in self.parameters:
                return self.parameters[node.name]
            spec = FIELDS[node.name]
            if spec.kind is Kind.CHOICES:
                raise Unsupported
            return c.values[node.name]
        if isinstance(node, ast.LogicExpression):
            left, right = self.value(node.left), self.value(node.right)
            return left & right if node.type == "and" else left | right
        if isinstance(node, ast.UnaryExpression) and node.type == "not":
            return ~np.asarray(self.value(node.right), dtype=np.bool_)
        if isinstance(node, ast.ComparisonExpression | ast.ArithmeticComparisonExpression):
            return self._compare(node.type, self.value(node.left), self.value(node.right))
        if isinstance(node, ast.ContainsExpression):
            return self._contains(node)
        return literal(node, list)

    @staticmethod
    def _compare(kind: str, left: Any, right: Any) -> Any:
        operations: dict[str, Callable[[Any, Any], Any]] = {
            "eq": np.equal, "ne": np.not_equal, "ge": np.greater_equal, "gt": np.greater,
            "le": np.less_equal, "lt": np.less,
        }
        if kind not in operations:
            raise Unsupported
        return np.asarray(operations[kind](left, right), dtype=np.bool_)

    def _contains(self, node: Any) -> Any:
        container, member = node.container, node.member
        if isinstance(container, ast.SymbolExpression) and container.name in FIELDS \
                and isinstance(member, ast.StringExpression):
            return self.columns.memberships[container.name, member.value]
        if isinstance(container, ast.ArrayExpression) and isinstance(member, ast.SymbolExpression) \
                and member.name in FIELDS and FIELDS[member.name].kind is not Kind.CHOICES:
            return np.isin(self.columns.values[member.name], literal(container, list))
        raise Unsupported


def _dated_parameters(policy: CompiledPolicy, columns: Columns) -> dict[str, Any]:
    """Each parameter as a value per case, taken on that case's own date."""
    found: dict[str, Any] = {}
    for name, dated in policy.document.parameters.items():
        ordered = sorted(dated, key=lambda d: d.from_)
        values = [d.value for d in ordered]
        if isinstance(values[0], list):
            raise Unsupported
        if len(ordered) == 1:
            found[name] = values[0]
            continue
        starts = np.array([d.from_.toordinal() for d in ordered[1:]], dtype=np.int64)
        index = np.searchsorted(starts, columns.days, side="right")
        found[name] = np.array(values, dtype=object if isinstance(values[0], str) else None)[index]
    return found


def _criterion(criterion: CompiledCriterion, columns: Columns, translator: _Translator | None,
               parameters_on: Callable[[int], dict[str, Any]]) -> tuple[Bools, Bools]:
    """(known, met) for every case."""
    known = np.ones(columns.size, dtype=np.bool_)
    for name in criterion.facts:
        known &= columns.known[name]
    try:
        if translator is None:
            raise Unsupported
        matched = np.broadcast_to(np.asarray(translator.value(criterion.rule.statement.expression),
                                             dtype=np.bool_), (columns.size,))
    except Unsupported:
        met = np.zeros(columns.size, dtype=np.bool_)
        for i in np.flatnonzero(known).tolist():
            row = {k: v for k, v in columns.rows[i].items() if v is not None}
            answer = criterion.met({**parameters_on(int(columns.days[i])), **row})
            if answer is None:
                known[i] = False
            else:
                met[i] = answer
        return known, met & known
    met = ~matched if criterion.exclusion else matched
    return known, met & known


@dataclass
class Evaluated:
    outcome: npt.NDArray[np.int8]
    pathway: npt.NDArray[np.int16]  # index into policy.pathways, -1 for none
    blocking: dict[tuple[str | None, str], int]  # (pathway, criterion) -> cases where unmet


def evaluate(policy: CompiledPolicy, columns: Columns) -> Evaluated:
    """Every case's outcome under ``policy``: the rules of ``engine.decide`` on columns."""
    try:
        translator: _Translator | None = _Translator(columns, _dated_parameters(policy, columns))
    except Unsupported:
        translator = None

    def parameters_on(day: int) -> dict[str, Any]:
        return policy.document.parameters_on(date.fromordinal(day))

    blocking: dict[tuple[str | None, str], int] = {}

    def judged(criteria: Iterable[CompiledCriterion], pathway: str | None) -> tuple[Bools, Bools]:
        any_unmet = np.zeros(columns.size, dtype=np.bool_)
        any_unknown = np.zeros(columns.size, dtype=np.bool_)
        for criterion in criteria:
            known, met = _criterion(criterion, columns, translator, parameters_on)
            unmet = known & ~met
            blocking[pathway, criterion.id] = int(unmet.sum())
            any_unmet |= unmet
            any_unknown |= ~known
        return any_unmet, any_unknown

    excluded, exclusion_unknown = judged(policy.exclusions, None)
    outcome = np.full(columns.size, NOT_ELIGIBLE, dtype=np.int8)
    chosen = np.full(columns.size, -1, dtype=np.int16)
    searching = ~excluded
    blocked = exclusion_unknown & searching  # something earlier could not be decided
    for index, pathway in enumerate(policy.pathways):
        unmet, unknown = judged(pathway.criteria, pathway.id)
        fits = searching & ~unmet & ~unknown
        take = fits & ~blocked
        outcome[take] = ELIGIBLE
        chosen[take] = index
        review = fits & blocked
        outcome[review] = NEEDS_REVIEW
        searching &= ~fits
        blocked |= searching & ~unmet & unknown
    outcome[searching & blocked] = NEEDS_REVIEW
    return Evaluated(outcome, chosen, blocking)


@dataclass(frozen=True)
class PastCase:
    """What a simulation needs of a past decision."""

    facts: Mapping[str, Any]
    decided_on: date
    outcome: str
    pathway: str | None
    age_band: str
    ethnicity: str


@dataclass
class GroupChange:
    group: str
    cases: int
    eligible_before: int
    eligible_after: int

    @property
    def change(self) -> int:
        return self.eligible_after - self.eligible_before


@dataclass
class Report:
    cases: int
    changed: int
    table: dict[str, Counter[str]] = field(default_factory=dict)  # old label -> new label -> count
    blocking: list[tuple[str | None, str, str, int]] = field(default_factory=list)
    by_age_band: list[GroupChange] = field(default_factory=list)
    by_ethnicity: list[GroupChange] = field(default_factory=list)

    @property
    def new_labels(self) -> list[str]:
        return sorted({label for row in self.table.values() for label in row})


def label(outcome: str, pathway: str | None) -> str:
    return f"eligible: {pathway}" if outcome == "eligible" and pathway else outcome


def simulate(policy: CompiledPolicy, cases: Sequence[PastCase], *,
             progress: Callable[[int], None] | None = None) -> Report:
    """Run ``policy`` over ``cases`` and compare with what was decided then."""
    codes = {NOT_ELIGIBLE: "not_eligible", ELIGIBLE: "eligible", NEEDS_REVIEW: "needs_review"}
    pathway_ids = [p.id for p in policy.pathways]
    reasons: dict[tuple[str | None, str], str] = {(None, c.id): c.reason for c in policy.exclusions}
    reasons.update({(p.id, c.id): c.reason for p in policy.pathways for c in p.criteria})
    report = Report(cases=len(cases), changed=0)
    blocking: Counter[tuple[str | None, str]] = Counter()
    age: dict[str, list[int]] = {}
    ethnicity: dict[str, list[int]] = {}
    for start in range(0, len(cases), CHUNK):
        chunk = cases[start:start + CHUNK]
        columns = Columns.build([c.facts for c in chunk], [c.decided_on for c in chunk])
        result = evaluate(policy, columns)
        blocking.update(result.blocking)
        for case, code, index in zip(chunk, result.outcome.tolist(), result.pathway.tolist(), strict=True):
            old = label(case.outcome, case.pathway)
            new = label(codes[code], pathway_ids[index] if index >= 0 else None)
            report.table.setdefault(old, Counter())[new] += 1
            report.changed += old != new
            for groups, key in ((age, case.age_band), (ethnicity, case.ethnicity)):
                tally = groups.setdefault(key, [0, 0, 0])
                tally[0] += 1
                tally[1] += case.outcome == "eligible"
                tally[2] += code == ELIGIBLE
        if progress is not None:
            progress(len(chunk))
    report.blocking = sorted(
        ((pathway, criterion, reasons[pathway, criterion], count)
         for (pathway, criterion), count in blocking.items() if count),
        key=lambda item: -item[3],
    )
    report.by_age_band = [GroupChange(k, *v) for k, v in sorted(age.items())]
    report.by_ethnicity = [GroupChange(k, *v) for k, v in sorted(ethnicity.items())]
    return report
