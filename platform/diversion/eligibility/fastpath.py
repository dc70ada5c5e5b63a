"""Plain Python closures for the common shapes of a criterion.

rule-engine checks and parses every expression; evaluating its tree for
each case is the slow part of a decision. The shapes policies are made of
(comparisons, ``in``, ``and``, ``or``, ``not`` over fields, parameters and
literals) are turned here into nested Python functions once, at compile
time. Anything else keeps rule-engine's own evaluation. The test suite
checks both paths give the same answers on random cases.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from rule_engine import ast

Check = Callable[[dict[str, Any]], Any]
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt,
}


class Unsupported(Exception):  # noqa: N818 - internal signal: keep rule-engine's evaluation
    """A shape this module (or the column evaluation of ``simulation``) does not evaluate."""


def literal(node: Any, array: Callable[[Iterator[Any]], Any]) -> Any:
    """The value of a literal: a number, a string, a boolean, or an array of them,
    its items gathered by ``array`` (a set to look up, a list for numpy)."""
    if isinstance(node, ast.FloatExpression):
        return float(node.value) if isinstance(node.value, Decimal) else node.value
    if isinstance(node, ast.StringExpression | ast.BooleanExpression):
        return node.value
    if isinstance(node, ast.ArrayExpression):
        return array(literal(item, array) for item in node.value)
    raise Unsupported


def array_literal(comparison: Any) -> bool:
    """Whether a comparison has a written list on a side: rule-engine compares
    lists item by item, in order, which the set a written list becomes here does not."""
    return isinstance(comparison.left, ast.ArrayExpression) or isinstance(comparison.right, ast.ArrayExpression)


def closure(node: Any) -> Check:  # noqa: PLR0911 - one branch per node kind
    """A function of the case's facts and parameters equal to ``node``'s value."""
    if isinstance(node, ast.SymbolExpression):
        if node.scope is not None:  # rule-engine's own symbols ($today...): not in the case's facts
            raise Unsupported
        name = node.name
        return lambda thing: thing[name]
    if isinstance(node, ast.LogicExpression):
        left, right = closure(node.left), closure(node.right)
        if node.type == "and":
            return lambda thing: bool(left(thing)) and bool(right(thing))
        return lambda thing: bool(left(thing)) or bool(right(thing))
    if isinstance(node, ast.UnaryExpression) and node.type == "not":
        inner = closure(node.right)
        return lambda thing: not inner(thing)
    if isinstance(node, ast.ComparisonExpression | ast.ArithmeticComparisonExpression):
        if node.type not in COMPARE or array_literal(node):
            raise Unsupported
        compare, left, right = COMPARE[node.type], closure(node.left), closure(node.right)
        return lambda thing: compare(left(thing), right(thing))
    if isinstance(node, ast.ContainsExpression):
        container, member = closure(node.container), closure(node.member)
        return lambda thing: member(thing) in container(thing)
    value = literal(node, frozenset)
    return lambda _thing: value


def fast_check(rule: Any) -> Check | None:
    try:
        return closure(rule.statement.expression)
    except Unsupported:
        return None
