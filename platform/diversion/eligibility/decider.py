"""A compiled policy as one Python function: the decision, without its explanation.

``engine.decide`` answers from this function; every criterion's result (the
explanation) is worked out from the same facts only when it is asked for.
The function is generated from the policy's rule-engine trees once per
compiled policy, and follows the rules of ``engine`` exactly:

* the facts are checked against the catalogue once: in one expression when
  every field is given and every value fits (the usual case), otherwise by
  ``fields.validate_facts``, which also names every problem it refuses;
* each criterion whose shape ``fastpath`` knows becomes a Python expression
  over local variables (the same operations as its closure); any other
  keeps rule-engine's evaluation (``CompiledCriterion.met``);
* an exclusion that applies settles the case, and a pathway stops at its
  first unmet criterion: nothing after either is evaluated;
* when every fact is known and every criterion is a Python expression (the
  usual case again), no fact can be missing, so the function is just the
  policy's conditions in order, as a person would write it by hand.

The source is made of generated names, fixed words and numbers only: every
value taken from the policy (texts, lists, parameter names, criteria, the
facts each reads) is handed to the function as a constant, never written
into its text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from rule_engine import ast

from diversion.eligibility.fastpath import Unsupported, array_literal, literal
from diversion.eligibility.fields import FIELDS, LARGEST_WHOLE, Kind, validate_facts

if TYPE_CHECKING:
    from diversion.eligibility.compiler import CompiledCriterion, CompiledPolicy


class Verdict(NamedTuple):
    """A decision's parts, in the order the generated function gives them
    (``engine.Assessment`` adds the explanation)."""

    outcome: Literal["eligible", "not_eligible", "needs_review"]
    pathway: str | None
    missing: tuple[str, ...]  # the facts a decision that needs review waits for, sorted
    policy_version: int | None
    policy_hash: str
    decided_on: date
    facts: dict[str, Any]  # the known facts, checked against the catalogue
    policy: CompiledPolicy


# (facts, date, policy version) -> the parts of a ``Verdict``, as a plain tuple
Decider = Callable[[Mapping[str, Any], date, int | None], tuple[Any, ...]]

_OPERATORS = {"eq": "==", "ne": "!=", "ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
_PARAMETER_DAYS = 4096  # dates whose parameters are remembered, before starting again


class _Source:
    """The function's lines, and the constants its text refers to by name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}

    def constant(self, value: Any) -> str:
        name = f"k{len(self.constants)}"
        self.constants[name] = value
        return name

    def add(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)


class _Expressions:
    """rule-engine trees as Python expressions, operation for operation as ``fastpath.closure``.

    A *condition* is an operand whose truth alone counts (a criterion, the
    sides of ``and``/``or``, the operand of ``not``); a *value* is one that
    is compared or looked up, so ``and``/``or`` there give a boolean, as
    their closures do. Raises ``Unsupported`` for any other shape.
    """

    def __init__(self, source: _Source, fields: dict[str, str], parameters: dict[str, str]) -> None:
        self.source = source
        self.fields = fields
        self.parameters = parameters

    def of(self, criterion: CompiledCriterion) -> str:
        """The criterion's expression as a Python condition (true when it matches)."""
        if criterion.fast is None:
            raise Unsupported
        return self.condition(criterion.rule.statement.expression)

    def condition(self, node: Any) -> str:
        if isinstance(node, ast.LogicExpression):
            joiner = " and " if node.type == "and" else " or "
            return f"({self.condition(node.left)}{joiner}{self.condition(node.right)})"
        return self.value(node)

    def value(self, node: Any) -> str:  # noqa: PLR0911 - one branch per node kind
        if isinstance(node, ast.SymbolExpression):
            if node.scope is None and node.name in self.fields:
                return self.fields[node.name]
            if node.scope is None and node.name in self.parameters:
                return self.parameters[node.name]
            raise Unsupported
        if isinstance(node, ast.LogicExpression):
            return f"(True if {self.condition(node)} else False)"
        if isinstance(node, ast.UnaryExpression) and node.type == "not":
            return f"(not {self.condition(node.right)})"
        if isinstance(node, ast.ComparisonExpression | ast.ArithmeticComparisonExpression):
            if node.type not in _OPERATORS or array_literal(node):
                raise Unsupported
            return f"({self.value(node.left)} {_OPERATORS[node.type]} {self.value(node.right)})"
        if isinstance(node, ast.ContainsExpression):
            return f"({self.value(node.member)} in {self.value(node.container)})"
        return self.source.constant(literal(node, frozenset))


def _check_and_bind(source: _Source, fields: dict[str, str]) -> None:
    """Lines that set ``fine`` when ``facts`` is a plain dict with every
    catalogue field, every value fitting it, and bind a local per field."""
    names = list(FIELDS)
    tests = [f"len(facts) == {len(names)}"]
    for name, spec in FIELDS.items():
        local = fields[name]
        if spec.kind is Kind.INT:
            tests.append(f"type({local}) is int")
            if spec.minimum is not None:
                tests.append(f"{local} >= {int(spec.minimum)}")
            tests.append(f"{local} <= {LARGEST_WHOLE}")
        elif spec.kind is Kind.BOOL:
            tests.append(f"type({local}) is bool")
        elif spec.kind is Kind.CHOICE:
            tests.append(f"{local} in {source.constant(frozenset(spec.values))}")
        else:
            tests.append(f"type({local}) is list and {source.constant(frozenset(spec.values))}.issuperset({local})")
    source.add(1, "fine = False")
    source.add(1, "if type(facts) is dict:")
    source.add(2, "try:")
    if len(names) > 1:
        source.add(3, f"{', '.join(fields[name] for name in names)} = {source.constant(itemgetter(*names))}(facts)")
    else:
        source.add(3, f"{fields[names[0]]} = facts[{source.constant(names[0])}]")
    source.add(3, f"fine = {' and '.join(tests)}")
    source.add(2, "except (KeyError, TypeError):")  # a field left out; a value that cannot be looked up
    source.add(3, "fine = False")


def _copy_known(source: _Source, fields: dict[str, str], depth: int) -> None:
    """Lines that make ``known`` as ``validate_facts`` would from facts that are ``fine``:
    a copy, in the same order, each list sorted with each value once."""
    source.add(depth, "known = facts.copy()")
    for name, spec in FIELDS.items():
        if spec.kind is Kind.CHOICES:
            local = fields[name]
            source.add(depth, f"known[{source.constant(name)}] = {local} = "
                              f"{local}[:] if len({local}) < 2 else sorted(set({local}))")


def _parameters(source: _Source, policy: CompiledPolicy,
                parameters: dict[str, str]) -> tuple[Callable[[int], None], str]:
    """Name each parameter of the policy. Returns what adds the lines that bind
    them on the decision's date (none when no parameter ever changes value),
    and the name of every parameter's value by name, once bound."""
    document = policy.document
    if all(len(values) == 1 for values in document.parameters.values()):
        values = document.parameters_on(date.min)
        for name in document.parameters:
            parameters[name] = source.constant(values[name])
        return (lambda _depth: None), source.constant(values)

    remembered: dict[date, dict[str, Any]] = {}

    def parameters_on(day: date) -> dict[str, Any]:
        if len(remembered) >= _PARAMETER_DAYS:
            remembered.clear()
        found = remembered[day] = document.parameters_on(day)
        return found

    for i, name in enumerate(document.parameters):
        parameters[name] = f"p{i}"
    cache, work_out = source.constant(remembered), source.constant(parameters_on)
    keys = {name: source.constant(name) for name in document.parameters}

    def bind(depth: int) -> None:
        source.add(depth, f"values = {cache}.get(on)")
        source.add(depth, "if values is None:")
        source.add(depth + 1, f"values = {work_out}(on)")
        for name, local in parameters.items():
            source.add(depth, f"{local} = values[{keys[name]}]")

    return bind, "values"


def _answer(source: _Source, outcome: str, pathway: str | None = None, missing: str = "()") -> str:
    """A return statement with a decision's parts, in ``Verdict``'s order."""
    name = "None" if pathway is None else source.constant(pathway)
    return f"return {outcome!r}, {name}, {missing}, version, policy_hash, on, known, policy"


def _plain(source: _Source, policy: CompiledPolicy, expressions: _Expressions) -> None:
    """The decision when every fact is known: exclusions, then pathways, each
    stopping at the first condition that settles it."""
    for exclusion in policy.exclusions:
        source.add(2, f"if {expressions.of(exclusion)}:")
        source.add(3, _answer(source, "not_eligible"))
    for pathway in policy.pathways:
        tests = " and ".join(expressions.of(criterion) for criterion in pathway.criteria) or "True"
        source.add(2, f"if {tests}:")
        source.add(3, _answer(source, "eligible", pathway.id))
    source.add(2, _answer(source, "not_eligible"))


def _criterion(source: _Source, expressions: _Expressions, criterion: CompiledCriterion, depth: int, *,
               settled: str, unknown: str, missing: str) -> None:
    """Lines that evaluate one criterion when its facts are known: ``settled``
    when it is unmet (an exclusion: when it applies); ``unknown`` set and the
    facts it waits for added to ``missing`` when it cannot be evaluated."""
    known = " and ".join(f"{expressions.fields[name]} is not None" for name in sorted(criterion.facts))
    if known:
        source.add(depth, f"if {known}:")
        depth += 1
    try:
        test = expressions.of(criterion)
    except Unsupported:
        source.add(depth, f"met = {source.constant(criterion)}.met(thing)")
        source.add(depth, "if met is None:")
        source.add(depth + 1, f"{unknown} = True")
        source.add(depth, "elif not met:")
        source.add(depth + 1, settled)
    else:
        source.add(depth, f"if {test}:" if criterion.exclusion else f"if not {test}:")
        source.add(depth + 1, settled)
    if known:
        source.add(depth - 1, "else:")
        source.add(depth, f"{unknown} = True")
        source.add(depth, f"{missing} = {missing}.union({source.constant(criterion.facts)}.difference(known))")


def _general(source: _Source, policy: CompiledPolicy, expressions: _Expressions) -> None:
    """The decision whatever is known: ``engine``'s rules, step by step."""
    empty = source.constant(frozenset())
    review = _answer(source, "needs_review", missing="tuple(sorted(missing))")
    source.add(1, "blocked = False")
    source.add(1, f"missing = {empty}")
    for exclusion in policy.exclusions:
        _criterion(source, expressions, exclusion, 1, settled=_answer(source, "not_eligible"),
                   unknown="blocked", missing="missing")
    for pathway in policy.pathways:
        source.add(1, "unmet = unknown = False")
        source.add(1, f"waiting = {empty}")
        for i, criterion in enumerate(pathway.criteria):
            if i:
                source.add(1, "if not unmet:")
            _criterion(source, expressions, criterion, 2 if i else 1, settled="unmet = True", unknown="unknown",
                       missing="waiting")
        source.add(1, "if not unmet:")
        source.add(2, "if unknown:")
        source.add(3, "blocked = True")
        source.add(3, "missing = missing.union(waiting)")
        source.add(2, "elif blocked:")
        source.add(3, review)
        source.add(2, "else:")
        source.add(3, _answer(source, "eligible", pathway.id))
    source.add(1, "if blocked:")
    source.add(2, review)
    source.add(1, _answer(source, "not_eligible"))


def generate(policy: CompiledPolicy) -> Decider:
    """``policy`` as one function of (facts, date, policy version) giving a ``Verdict``'s parts.

    The function refuses (``FactsInvalid``, from ``validate_facts``) facts
    that do not fit the catalogue, as ``engine.decide`` does.
    """
    source = _Source()
    fields = {name: f"f{i}" for i, name in enumerate(FIELDS)}
    parameters: dict[str, str] = {}
    expressions = _Expressions(source, fields, parameters)
    bind_parameters, values = _parameters(source, policy, parameters)
    criteria = (*policy.exclusions, *(c for p in policy.pathways for c in p.criteria))
    plain = True
    for criterion in criteria:
        try:
            expressions.of(criterion)
        except Unsupported:
            plain = False

    source.add(0, "def decide(facts, on, version):")
    _check_and_bind(source, fields)
    source.add(1, "if fine:")
    _copy_known(source, fields, 2)
    if plain:
        bind_parameters(2)
        _plain(source, policy, expressions)
    source.add(1, "else:")
    source.add(2, "known = validate_facts(facts)")
    for name in sorted({name for c in criteria for name in c.facts}):
        source.add(2, f"{fields[name]} = known.get({source.constant(name)})")
    bind_parameters(1)
    if not plain:
        source.add(1, f"thing = {{**{values}, **known}}")
    _general(source, policy, expressions)

    namespace: dict[str, Any] = {**source.constants, "validate_facts": validate_facts,
                                 "policy_hash": policy.content_hash, "policy": policy}
    text = "\n".join(source.lines) + "\n"
    code = compile(text, f"<policy {policy.content_hash[:19]}>", "exec")
    exec(code, namespace)  # noqa: S102 - generated from the checked trees; see the module's docstring
    decide: Decider = namespace["decide"]
    decide.__doc__ = text  # the generated source, for whoever reads a decision in a debugger
    return decide
