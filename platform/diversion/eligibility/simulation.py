"""Simulation: run a policy over many past decisions at once and show what changes.

Past decisions are read in chunks (``PastChunk``) of columns: only the facts
the policy's criteria read, each one NumPy array (``Columns``), with the
outcome then, the age band and the ethnicity of each case. Each criterion's
rule-engine expression is translated once into operations on columns, so a
chunk of thousands of cases is decided in a few array operations per
criterion. An expression the translation does not cover is evaluated case by
case with rule-engine itself, so every valid policy can be simulated. The
outcome logic is the same as ``engine.decide``; the test suite checks the two
agree case by case. The report is counted chunk by chunk (``Tally``): a
simulation holds one chunk at a time, whatever the number of decisions.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
from rule_engine import ast

from diversion.eligibility.compiler import CompiledCriterion, CompiledPolicy
from diversion.eligibility.engine import unmet_id
from diversion.eligibility.fastpath import Unsupported, literal
from diversion.eligibility.fields import FIELDS, Kind
from diversion.eligibility.packed import unpack_facts

Bools = npt.NDArray[np.bool_]
NOT_ELIGIBLE, ELIGIBLE, NEEDS_REVIEW = 0, 1, 2
OUTCOMES = {NOT_ELIGIBLE: "not_eligible", ELIGIBLE: "eligible", NEEDS_REVIEW: "needs_review"}
CHUNK = 10_000  # cases per chunk: a few MB of Python objects at a time, and arrays long enough to be quick
_BOOLS = {True: 1, False: 0, None: -1}


class _Memberships(dict[tuple[str, str], Bools]):
    """Whether each case's list (a field of several choices) holds an option:
    worked out for the (field, option) pairs a policy asks about, when it first asks."""

    def __init__(self, raw: Mapping[str, Sequence[Any]], size: int) -> None:
        super().__init__()
        self._raw = raw
        self._size = size

    def __missing__(self, key: tuple[str, str]) -> Bools:
        name, option = key
        found = np.fromiter((v is not None and option in v for v in self._raw[name]), dtype=np.bool_,
                            count=self._size)
        self[key] = found
        return found


def day_numbers(days: Sequence[date]) -> npt.NDArray[np.int64]:
    return np.fromiter(map(date.toordinal, days), dtype=np.int64, count=len(days))


@dataclass
class Columns:
    """Cases as columns: each field's values and whether each is known.

    ``raw`` keeps each field's values as given (None when unknown), for the
    criteria evaluated case by case and the memberships asked for."""

    size: int
    values: dict[str, Any]
    known: dict[str, Bools]
    memberships: Mapping[tuple[str, str], Bools]
    days: npt.NDArray[np.int64]
    raw: Mapping[str, Sequence[Any]]

    @classmethod
    def build(cls, facts: Sequence[Mapping[str, Any]], days: Sequence[date]) -> Columns:
        """Every catalogue field of ``facts`` (one mapping per case, decided on ``days``)."""
        return cls.of({name: [row.get(name) for row in facts] for name in FIELDS}, day_numbers(days))

    @classmethod
    def of(cls, raw: Mapping[str, Sequence[Any]], days: npt.NDArray[np.int64]) -> Columns:
        """The fields of ``raw`` (each catalogue field named there: its value for each case,
        None when unknown), the cases decided on ``days`` (day numbers)."""
        size = len(days)
        values: dict[str, Any] = {}
        known: dict[str, Bools] = {}
        for name, column in raw.items():
            kind = FIELDS[name].kind
            if kind is Kind.INT:
                numbers = np.array(column, dtype=np.float64).reshape(size)  # None is NaN
                values[name], known[name] = numbers, ~np.isnan(numbers)
            elif kind is Kind.BOOL:
                try:
                    codes = np.fromiter(map(_BOOLS.__getitem__, column), dtype=np.int8, count=size)
                except (KeyError, TypeError):  # not a stored boolean: as ``bool`` reads it
                    codes = np.fromiter((-1 if v is None else int(bool(v)) for v in column), dtype=np.int8,
                                        count=size)
                values[name], known[name] = codes == 1, codes >= 0
            elif kind is Kind.CHOICE:
                texts = np.fromiter(column, dtype=object, count=size)
                known[name] = texts != None  # noqa: E711 - NumPy: each item compared
                texts[~known[name]] = ""
                values[name] = texts
            else:
                known[name] = np.fromiter(column, dtype=object, count=size) != None  # noqa: E711 - each item
                values[name] = None
        return cls(size, values, known, _Memberships(raw, size), days, raw)

    def facts(self, i: int) -> dict[str, Any]:
        """Case ``i``'s known facts, as ``decide`` checks them (each list sorted)."""
        found: dict[str, Any] = {}
        for name, column in self.raw.items():
            value = column[i]
            if value is not None:
                found[name] = sorted(value) if FIELDS[name].kind is Kind.CHOICES else value
        return found


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
            answer = criterion.met({**parameters_on(int(columns.days[i])), **columns.facts(i)})
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
    # With ``explain``: each case's unmet criteria by id (``unmet_id``), in the order
    # of ``criterion_results``: what a stored decision keeps (``Assessment.unmet_ids``).
    unmet: list[list[str]] | None = None


def evaluate(policy: CompiledPolicy, columns: Columns, *, explain: bool = False) -> Evaluated:
    """Every case's outcome under ``policy``: the rules of ``engine.decide`` on columns;
    with ``explain``, every case's unmet criteria too (every criterion judged, none skipped)."""
    try:
        translator: _Translator | None = _Translator(columns, _dated_parameters(policy, columns))
    except Unsupported:
        translator = None

    def parameters_on(day: int) -> dict[str, Any]:
        return policy.document.parameters_on(date.fromordinal(day))

    blocking: dict[tuple[str | None, str], int] = {}
    named: list[list[str]] | None = [[] for _ in range(columns.size)] if explain else None

    def judged(criteria: Iterable[CompiledCriterion], pathway: str | None) -> tuple[Bools, Bools]:
        any_unmet = np.zeros(columns.size, dtype=np.bool_)
        any_unknown = np.zeros(columns.size, dtype=np.bool_)
        for criterion in criteria:
            known, met = _criterion(criterion, columns, translator, parameters_on)
            unmet = known & ~met
            blocking[pathway, criterion.id] = int(unmet.sum())
            if named is not None:
                name = unmet_id(pathway, criterion.id)
                for case in np.flatnonzero(unmet).tolist():
                    named[case].append(name)
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
    return Evaluated(outcome, chosen, blocking, named)


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

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON, to be kept (``from_json`` reads it back)."""
        return {
            "cases": self.cases, "changed": self.changed,
            "table": {old: dict(row) for old, row in self.table.items()},
            "blocking": [list(item) for item in self.blocking],
            "by_age_band": [[g.group, g.cases, g.eligible_before, g.eligible_after] for g in self.by_age_band],
            "by_ethnicity": [[g.group, g.cases, g.eligible_before, g.eligible_after] for g in self.by_ethnicity],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        return cls(
            cases=data["cases"], changed=data["changed"],
            table={old: Counter(row) for old, row in data["table"].items()},
            blocking=[(pathway, criterion, reason, count) for pathway, criterion, reason, count in data["blocking"]],
            by_age_band=[GroupChange(*group) for group in data["by_age_band"]],
            by_ethnicity=[GroupChange(*group) for group in data["by_ethnicity"]],
        )


def label(outcome: str, pathway: str | None) -> str:
    """How a report keeps an outcome, with its pathway when eligible: "eligible: divert",
    "needs_review" (ids, for the report kept as JSON; ``naming.Names.label`` says it for people)."""
    return f"eligible: {pathway}" if outcome == "eligible" and pathway else outcome


def unlabel(kept: str) -> tuple[str, str | None]:
    """The outcome and the pathway (None without one) of a ``label``."""
    outcome, _, pathway = kept.partition(": ")
    return outcome, pathway or None


def facts_needed(policy: CompiledPolicy) -> tuple[str, ...]:
    """The catalogue fields the policy's criteria read, in catalogue order."""
    read = {name for criterion in (*policy.exclusions, *(c for p in policy.pathways for c in p.criteria))
            for name in criterion.facts}
    return tuple(name for name in FIELDS if name in read)


@dataclass(frozen=True)
class Needs:
    """The columns a policy is evaluated on: the fields its criteria read, and
    for a field of several choices, the options a criterion looks for in it."""

    fields: tuple[str, ...]
    memberships: tuple[tuple[str, str], ...]


class _Asked(dict[tuple[str, str], Bools]):
    def __missing__(self, key: tuple[str, str]) -> Bools:
        found = self[key] = np.zeros(0, dtype=np.bool_)
        return found


def column_needs(policy: CompiledPolicy) -> Needs | None:
    """The columns ``policy`` is evaluated on; None when a criterion of it is
    evaluated case by case with rule-engine, which needs the facts' own values."""
    empty = Columns.of({name: [] for name in FIELDS}, np.zeros(0, dtype=np.int64))
    asked = _Asked()
    empty.memberships = asked
    try:
        translator = _Translator(empty, _dated_parameters(policy, empty))
        for criterion in (*policy.exclusions, *(c for p in policy.pathways for c in p.criteria)):
            translator.value(criterion.rule.statement.expression)
    except Unsupported:
        return None
    return Needs(facts_needed(policy), tuple(sorted(asked)))


def facts_columns(documents: Iterable[bytes], names: Sequence[str]) -> dict[str, Sequence[Any]]:
    """The fields ``names`` of each case's facts, given packed (``packed``): a column per field.

    Each is unpacked and let go at once, keeping only the values
    asked for (a field left out is None, unknown)."""
    unpack = unpack_facts
    picked = [tuple(map(unpack(document).get, names)) for document in documents]
    return dict(zip(names, zip(*picked, strict=True) if picked else [()] * len(names), strict=True))


Key = TypeVar("Key", bound=Hashable)


class _Codes(dict[Key, int]):
    """A number for each value, given in the order values are first seen."""

    def __missing__(self, key: Key) -> int:
        code = self[key] = len(self)
        return code

    def of(self, values: Iterable[Key], size: int) -> npt.NDArray[np.intp]:
        return np.fromiter(map(self.__getitem__, values), dtype=np.intp, count=size)


@dataclass(frozen=True)
class Coded(Generic[Key]):
    """A value for each case, as a number for each case and the values the numbers stand for."""

    codes: npt.NDArray[np.intp]
    values: Sequence[Key]

    @classmethod
    def of(cls, items: Sequence[Key]) -> Coded[Key]:
        found: _Codes[Key] = _Codes()
        codes = found.of(items, len(items))
        return cls(codes, list(found))


@dataclass(frozen=True)
class PastChunk:
    """Some past decisions as a simulation reads them: the facts it needs as columns,
    what was decided then (outcome, pathway) and each case's monitoring groups."""

    columns: Columns
    then: Coded[tuple[str, str | None]]
    age_band: Coded[str]
    ethnicity: Coded[str]


def chunks_of(cases: Sequence[PastCase], names: Sequence[str] = tuple(FIELDS), *,
              size: int = CHUNK) -> Iterator[PastChunk]:
    """``cases`` as chunks of columns (their fields ``names``)."""
    for start in range(0, len(cases), size):
        part = cases[start:start + size]
        raw = {name: [case.facts.get(name) for case in part] for name in names}
        yield PastChunk(Columns.of(raw, day_numbers([case.decided_on for case in part])),
                        Coded.of([(case.outcome, case.pathway) for case in part]),
                        Coded.of([case.age_band for case in part]), Coded.of([case.ethnicity for case in part]))


def _bincount(codes: npt.NDArray[np.intp], length: int, weights: Bools | None = None) -> list[int]:
    counted = np.bincount(codes, weights=weights, minlength=length)
    return [int(n) for n in counted.tolist()]


class Tally:
    """A simulation's report, counted a chunk at a time: outcomes then and now,
    the criteria that block, and eligibility by age band and by ethnicity."""

    def __init__(self, policy: CompiledPolicy) -> None:
        self.policy = policy
        self.cases = 0
        self.blocking: Counter[tuple[str | None, str]] = Counter()
        self.then: _Codes[tuple[str, str | None]] = _Codes()  # (outcome, pathway) decided then
        self.pairs: Counter[tuple[int, int]] = Counter()  # (code then, outcome now + 3 * (pathway now + 1))
        self.groups: dict[str, _Codes[str]] = {"age_band": _Codes(), "ethnicity": _Codes()}
        self.counts: dict[str, list[list[int]]] = {"age_band": [], "ethnicity": []}  # [cases, before, after]

    def add(self, chunk: PastChunk, result: Evaluated) -> None:
        size = chunk.columns.size
        if not size:
            return
        self.cases += size
        self.blocking.update(result.blocking)
        then = self._codes(self.then, chunk.then)
        now = result.outcome.astype(np.intp) + 3 * (result.pathway.astype(np.intp) + 1)
        width = 3 * (len(self.policy.pathways) + 1)
        pairs = np.bincount(then * width + now)
        for key in np.flatnonzero(pairs).tolist():
            self.pairs[divmod(key, width)] += int(pairs[key])
        was_eligible = np.array([outcome == "eligible" for outcome, _ in self.then], dtype=np.bool_)[then]
        is_eligible = result.outcome == ELIGIBLE
        for name, coded in (("age_band", chunk.age_band), ("ethnicity", chunk.ethnicity)):
            codes = self._codes(self.groups[name], coded)
            length = len(self.groups[name])
            rows = self.counts[name]
            rows.extend([0, 0, 0] for _ in range(length - len(rows)))
            for counted, column in zip((_bincount(codes, length), _bincount(codes, length, was_eligible),
                                        _bincount(codes, length, is_eligible)), range(3), strict=True):
                for row, n in zip(rows, counted, strict=True):
                    row[column] += n

    @staticmethod
    def _codes(known: _Codes[Key], coded: Coded[Key]) -> npt.NDArray[np.intp]:
        """The chunk's numbers for ``coded``, as the tally numbers the same values."""
        return np.array([known[value] for value in coded.values], dtype=np.intp)[coded.codes]

    def report(self) -> Report:
        pathway_ids = [p.id for p in self.policy.pathways]
        reasons: dict[tuple[str | None, str], str] = {(None, c.id): c.reason for c in self.policy.exclusions}
        reasons.update({(p.id, c.id): c.reason for p in self.policy.pathways for c in p.criteria})
        then_labels = [label(outcome, pathway) for outcome, pathway in self.then]
        report = Report(cases=self.cases, changed=0)
        for (then, now), count in sorted(self.pairs.items()):
            pathway, outcome = divmod(now, 3)
            old = then_labels[then]
            new = label(OUTCOMES[outcome], pathway_ids[pathway - 1] if pathway else None)
            report.table.setdefault(old, Counter())[new] += count
            report.changed += count if old != new else 0
        report.blocking = sorted(
            ((pathway, criterion, reasons[pathway, criterion], count)
             for (pathway, criterion), count in self.blocking.items() if count),
            key=lambda item: -item[3],
        )
        report.by_age_band = self._changes("age_band")
        report.by_ethnicity = self._changes("ethnicity")
        return report

    def _changes(self, name: str) -> list[GroupChange]:
        counts = self.counts[name]
        ordered = sorted(self.groups[name].items(), key=lambda item: str(item[0]))
        return [GroupChange(str(group), *counts[code]) for group, code in ordered if counts[code][0]]


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Reading a million rows makes millions of small objects, none in a cycle
    (rows, tuples, the parsed facts): the cycle collector would walk every live
    object of the process over and over for nothing. Reference counting frees them."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def replay(policy: CompiledPolicy, chunks: Iterable[PastChunk], *,
           progress: Callable[[int], None] | None = None) -> Report:
    """Run ``policy`` over past decisions, a chunk at a time, and compare with what was decided then.
    ``progress`` is told how many cases each chunk held once it is counted."""
    tally = Tally(policy)
    with _no_cycle_collection():
        for chunk in chunks:
            tally.add(chunk, evaluate(policy, chunk.columns))
            if progress is not None:
                progress(chunk.columns.size)
    return tally.report()


def simulate(policy: CompiledPolicy, cases: Sequence[PastCase], *,
             progress: Callable[[int], None] | None = None) -> Report:
    """Run ``policy`` over ``cases`` and compare with what was decided then."""
    return replay(policy, chunks_of(cases, facts_needed(policy)), progress=progress)
