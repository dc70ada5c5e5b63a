"""Compiling a policy: every expression against the typed catalogue, once, on save.

Expressions are written in the ``rule-engine`` language. They are compiled
with a typed context built from the national field catalogue and the
policy's own parameters, so an unknown field, a type mismatch or a syntax
error is refused when the policy is loaded or saved, with the pathway, the
criterion and the position, and never surfaces at decision time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import rule_engine
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from pydantic import ValidationError
from rule_engine.parser import Parser

from diversion.eligibility.decider import Decider, generate
from diversion.eligibility.document import PolicyDocument, location, shape_said
from diversion.eligibility.fastpath import Check, fast_check
from diversion.eligibility.fields import FIELDS
from diversion.errors import ProblemsFound
from diversion.words import in_language


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy: where (pathway, criterion, column) and what."""

    place: str
    message: str
    pathway: str | None = None
    criterion: str | None = None
    position: int | None = None  # 1-based column in the expression

    def __str__(self) -> str:
        where = self.place + (f", column {self.position}" if self.position else "")
        return f"{where}: {self.message}"


class PolicyInvalid(ProblemsFound[PolicyProblem]):
    """A policy that does not compile; ``problems`` lists every problem found."""


@dataclass(frozen=True)
class Welsh:
    """A policy sentence's Welsh, where the policy gives it."""

    reason: str | None = None
    holds: str | None = None
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class CompiledCriterion:
    id: str
    reason: str
    expression: str
    rule: rule_engine.Rule
    facts: frozenset[str]  # the catalogue fields it reads
    exclusion: bool = False
    fast: Check | None = None  # the same expression as a Python closure, when it has a plain shape
    holds: str | None = None  # what is true when met, in plain English (an exclusion: when it does not apply)
    welsh: Welsh = field(default_factory=Welsh)

    def reason_in(self, language: str) -> str:
        return in_language(self.reason, self.welsh.reason, language)

    def holds_in(self, language: str) -> str | None:
        return in_language(self.holds, self.welsh.holds, language)

    def met(self, thing: dict[str, Any]) -> bool | None:
        """True when the person meets it (for an exclusion: is not excluded).

        None when the expression cannot be evaluated for this case (say, the
        first of an empty list of substances): the case then goes to review.
        """
        try:
            matched = bool(self.fast(thing)) if self.fast is not None else bool(self.rule.matches(thing))
        except rule_engine.EngineError:
            return None
        return not matched if self.exclusion else matched


@dataclass(frozen=True)
class CompiledPathway:
    id: str
    name: str
    description: str
    sessions: int
    deadline_days: int
    criteria: tuple[CompiledCriterion, ...]
    welsh: Welsh = field(default_factory=Welsh)

    def name_in(self, language: str) -> str:
        return in_language(self.name, self.welsh.name, language)

    def description_in(self, language: str) -> str:
        return in_language(self.description, self.welsh.description, language)


@dataclass(frozen=True)
class CompiledPolicy:
    document: PolicyDocument
    content_hash: str
    exclusions: tuple[CompiledCriterion, ...]
    pathways: tuple[CompiledPathway, ...]
    parameter_names: frozenset[str] = field(default_factory=frozenset)
    # The policy as one Python function of (facts, date, version): ``decider``.
    decider: Decider = field(init=False, repr=False, compare=False)
    _by_id: dict[str, CompiledPathway] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decider", generate(self))
        object.__setattr__(self, "_by_id", {p.id: p for p in self.pathways})

    def pathway(self, pathway_id: str) -> CompiledPathway | None:
        return self._by_id.get(pathway_id)


def _parameter_type(value: Any) -> Any:
    if isinstance(value, bool):
        return rule_engine.DataType.BOOLEAN
    if isinstance(value, int):
        return rule_engine.DataType.FLOAT
    if isinstance(value, str):
        return rule_engine.DataType.STRING
    return rule_engine.DataType.ARRAY(rule_engine.DataType.STRING)


def _first_position(expression: str, word: str) -> int | None:
    match = re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", expression)
    return match.start() + 1 if match else None


_TYPE_NAMES = {"FLOAT": _l("a number"), "STRING": _l("text"), "BOOLEAN": _l("yes or no"), "ARRAY": _l("a list"),
               "TRUE": _l("yes or no"), "FALSE": _l("yes or no"), "NULL": _l("nothing"),
               "DATETIME": _l("a date and time"), "TIMEDELTA": _l("a length of time"), "MAPPING": _l("a table")}


def _type_name(name: str) -> str:
    said = _TYPE_NAMES.get(name)
    return str(said) if said is not None else name.lower()


def _describe(token: Any, types: dict[str, Any]) -> str:
    if token.type == "SYMBOL":
        kind = types.get(token.value)
        return str(_("%(thing)s is %(kind)s", thing=repr(token.value),
                     kind=_type_name(kind.name) if kind else _("unknown")))
    return str(_("%(thing)s is %(kind)s", thing=str(token.value), kind=_type_name(token.type)))


def _mismatch(expression: str, context: rule_engine.Context, types: dict[str, Any]) -> tuple[int | None, str]:
    """Where a type mismatch is, and what clashes: the first operator whose two
    neighbours cannot go together.

    rule-engine reports the mismatch without a place, so each binary
    operator is re-compiled with just its two neighbouring tokens.
    """
    lexer = Parser()._lexer.clone()
    lexer.input(expression)
    tokens = list(iter(lexer.token, None))
    operand = {"SYMBOL", "FLOAT", "STRING", "TRUE", "FALSE", "NULL"}
    for before, op, after in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if before.type in operand and after.type in operand and op.type not in operand:
            snippet = expression[before.lexpos:after.lexpos + len(str(after.value))]
            try:
                rule_engine.Rule(snippet, context=context)
            except rule_engine.EngineError:
                return int(op.lexpos) + 1, _("%(left)s and %(right)s: %(operator)r cannot join them",
                                             left=_describe(before, types), right=_describe(after, types),
                                             operator=op.value)
    return None, _("the parts of the expression do not fit together")


def _never_equal(node: Any) -> bool:
    """rule-engine lets ``==`` compare a number with text (always false): refuse that."""
    if isinstance(node, rule_engine.ast.ComparisonExpression):
        left, right = node.left.result_type, node.right.result_type
        undefined = rule_engine.DataType.UNDEFINED
        if undefined not in (left, right) and not rule_engine.DataType.is_compatible(left, right):
            return True
    return any(
        _never_equal(getattr(node, child))
        for child in ("left", "right", "container", "member", "condition", "case_true", "case_false")
        if getattr(node, child, None) is not None
    )


def _tokens(expression: str) -> list[Any]:
    lexer = Parser()._lexer.clone()
    lexer.input(expression)
    return list(iter(lexer.token, None))


def _token_type(token: Any, types: dict[str, Any]) -> str | None:
    if token.type == "SYMBOL":
        kind = types.get(token.value)
        return str(kind.name) if kind is not None else None
    return {"FLOAT": "FLOAT", "STRING": "STRING", "TRUE": "BOOLEAN", "FALSE": "BOOLEAN"}.get(token.type)


def _equality_clash(expression: str, types: dict[str, Any]) -> tuple[int | None, str]:
    tokens = _tokens(expression)
    for before, op, after in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if op.type in ("EQ", "NE"):
            left, right = _token_type(before, types), _token_type(after, types)
            if left and right and left != right:
                return int(op.lexpos) + 1, _("%(left)s and %(right)s", left=_describe(before, types),
                                             right=_describe(after, types))
    return None, _("it compares values of different types")


def _compile_one(
    expression: str, context: rule_engine.Context, used: set[str], types: dict[str, Any],
) -> tuple[rule_engine.Rule | None, str | None, int | None]:
    used.clear()
    try:
        rule = rule_engine.Rule(expression, context=context)
    except rule_engine.RuleSyntaxError as error:
        return None, _syntax_said(error, expression), \
            error.token.lexpos + 1 if error.token is not None else len(expression) + 1
    except rule_engine.SymbolResolutionError as error:
        name = error.symbol_name
        if suggestion := getattr(error, "suggestion", None):
            said = _("unknown field %(name)r: not in the national catalogue nor a parameter "
                     "(did you mean %(suggestion)s?)", name=name, suggestion=suggestion)
        else:
            said = _("unknown field %(name)r: not in the national catalogue nor a parameter", name=name)
        return None, said, _first_position(expression, name)
    except rule_engine.EngineError:
        position, detail = _mismatch(expression, context, types)
        return None, _("type mismatch: %(detail)s", detail=detail), position
    if _never_equal(rule.statement.expression):
        position, detail = _equality_clash(expression, types)
        return None, _("type mismatch: %(detail)s, so it is never equal", detail=detail), position
    result = rule.statement.expression.result_type
    if not rule_engine.DataType.is_compatible(result, rule_engine.DataType.BOOLEAN):
        return None, _("must be a yes-or-no condition, not %(kind)s", kind=_type_name(result.name)), 1
    return rule, None, None


def _syntax_said(error: rule_engine.RuleSyntaxError, expression: str) -> str:
    """What rule-engine's syntax error means, in the reader's language: where the expression
    stops making sense, or the character or reserved word it cannot read."""
    if illegal := re.search(r"illegal character ('.*')", error.message):
        return str(_("syntax error: the character %(character)s cannot be used", character=illegal.group(1)))
    if reserved := re.search(r"the (\S+) keyword is reserved", error.message):
        return str(_("syntax error: %(word)r is a reserved word", word=reserved.group(1)))
    if error.token is None:
        return str(_("syntax error: the expression ends before it is complete"))
    return str(_("syntax error: %(text)r is not expected here", text=str(error.token.value)))


def compile_policy(raw: dict[str, Any] | PolicyDocument) -> CompiledPolicy:
    """Check a policy's shape and compile every expression.

    Refuses (``PolicyInvalid`` listing every problem, each with its pathway,
    criterion and column where it has one): a malformed document, an unknown
    field, a parameter that shadows a field, a type mismatch, a syntax error,
    an expression that is not a condition, and test cases with unknown facts.
    """
    if isinstance(raw, PolicyDocument):
        document = raw
    else:
        try:
            document = PolicyDocument.model_validate(raw)
        except ValidationError as error:
            raise PolicyInvalid([
                PolicyProblem(location(tuple(item["loc"]), raw), shape_said(item))
                for item in error.errors()
            ]) from None
    problems: list[PolicyProblem] = []
    parameter_names = set(document.parameters)
    for name in sorted(parameter_names & set(FIELDS)):
        problems.append(PolicyProblem(f"parameters.{name}", _("has the name of a catalogue field")))

    types = {name: f.rule_type for name, f in FIELDS.items()}
    types.update({name: _parameter_type(values[0].value) for name, values in document.parameters.items()})
    used: set[str] = set()
    resolve: Callable[[str], Any] = rule_engine.type_resolver_from_dict(types)

    def recording_resolver(name: str) -> Any:
        used.add(name)
        return resolve(name)

    context = rule_engine.Context(type_resolver=recording_resolver, default_timezone="UTC")

    def build(place: str, pathway: str | None, criterion_id: str, expression: str, reason: str, *,
              exclusion: bool, holds: str | None, welsh: Welsh) -> CompiledCriterion | None:
        rule, message, position = _compile_one(expression, context, used, types)
        if rule is None:
            problems.append(PolicyProblem(place, message or "", pathway, criterion_id, position))
            return None
        if holds is not None and holds.casefold() == reason.casefold():
            problems.append(PolicyProblem(place.rsplit(".", 1)[0] + ".holds",
                                          _("says the same as the reason: say what is true when it is met"),
                                          pathway, criterion_id))
            return None
        if welsh.holds is not None and holds is None:
            problems.append(PolicyProblem(place.rsplit(".", 1)[0] + ".holds_cy",
                                          _("gives the Welsh of a holds sentence that is not there: add holds"),
                                          pathway, criterion_id))
            return None
        return CompiledCriterion(criterion_id, reason, expression, rule, frozenset(used - parameter_names),
                                 exclusion, fast_check(rule), holds, welsh)

    exclusions = tuple(
        c for e in document.exclusions
        if (c := build(f"exclusions[{e.id}].excluded_if", None, e.id, e.excluded_if, e.reason,
                       exclusion=True, holds=e.holds, welsh=Welsh(e.reason_cy, e.holds_cy)))
    )
    pathways = []
    for p in document.pathways:
        criteria = tuple(
            c for cr in p.criteria
            if (c := build(f"pathways[{p.id}].criteria[{cr.id}].expression", p.id, cr.id,
                           cr.expression, cr.reason, exclusion=False, holds=cr.holds,
                           welsh=Welsh(cr.reason_cy, cr.holds_cy)))
        )
        pathways.append(CompiledPathway(p.id, p.name, p.description, p.sessions, p.deadline_days, criteria,
                                        Welsh(name=p.name_cy, description=p.description_cy)))
    for case in document.tests:
        unknown = sorted(set(case.facts) - set(FIELDS)) + sorted(set(document.test_defaults) - set(FIELDS))
        if unknown:
            problems.append(PolicyProblem(f"tests[{case.name}].facts",
                                          _("unknown field %(name)r: not in the national catalogue",
                                            name=unknown[0])))
    if problems:
        raise PolicyInvalid(problems)
    return CompiledPolicy(document, document.content_hash(), exclusions, tuple(pathways),
                          frozenset(parameter_names))


@dataclass(frozen=True)
class _Untranslated:
    """A sentence of a policy given in English without its Welsh: where (its place, pathway,
    criterion), which part of the policy it is (summary, name, description, reason, holds) and its English."""

    place: str
    part: str
    english: str
    pathway: str | None = None
    criterion: str | None = None


def _untranslated(document: PolicyDocument) -> list[_Untranslated]:
    found = []

    def check(place: str, part: str, english: str | None, welsh: str | None, *, pathway: str | None = None,
              criterion: str | None = None) -> None:
        if english and not welsh:
            found.append(_Untranslated(f"{place}_cy", part, english, pathway, criterion))

    check("summary", "summary", document.summary.strip(), document.summary_cy)
    for e in document.exclusions:
        check(f"exclusions[{e.id}].reason", "reason", e.reason, e.reason_cy, criterion=e.id)
        check(f"exclusions[{e.id}].holds", "holds", e.holds, e.holds_cy, criterion=e.id)
    for p in document.pathways:
        check(f"pathways[{p.id}].name", "name", p.name, p.name_cy, pathway=p.id)
        check(f"pathways[{p.id}].description", "description", p.description, p.description_cy, pathway=p.id)
        for c in p.criteria:
            where = f"pathways[{p.id}].criteria[{c.id}]"
            check(f"{where}.reason", "reason", c.reason, c.reason_cy, pathway=p.id, criterion=c.id)
            check(f"{where}.holds", "holds", c.holds, c.holds_cy, pathway=p.id, criterion=c.id)
    return found


def welsh_missing(document: PolicyDocument) -> list[PolicyProblem]:
    """What a policy lacks in Welsh, for a force that works in Welsh as well as English: each
    pathway's name (and description, where it has one), and each reason and holds sentence,
    must have its Welsh beside it (``name_cy``, ``reason_cy``...), and so must the policy's summary.
    Empty when nothing is missing."""
    message = _("is missing: the force works in Welsh, so this needs its Welsh beside the English")
    return [PolicyProblem(u.place, message, u.pathway, u.criterion) for u in _untranslated(document)]


def welsh_missing_words(document: PolicyDocument) -> list[str]:
    """What ``welsh_missing`` finds, each named in words for a reader who never sees the
    policy's file (the policy's summary, the name of a pathway, a reason quoted...)."""
    names = {p.id: p.name for p in document.pathways}
    said = []
    for u in _untranslated(document):
        if u.part == "summary":
            said.append(_("the policy’s summary"))
        elif u.part == "name":
            said.append(_("the name of the pathway ‘%(name)s’", name=u.english))
        elif u.part == "description":
            said.append(_("the description of the pathway ‘%(name)s’", name=names.get(u.pathway or "", "")))
        elif u.part == "reason":
            said.append(_("the reason ‘%(sentence)s’", sentence=u.english))
        else:
            said.append(_("the sentence ‘%(sentence)s’", sentence=u.english))
    return said


def welsh_missing_said(document: PolicyDocument) -> str:
    """How many sentences of the policy have no Welsh, and the first of them, in a sentence
    ("" when none lacks it)."""
    said = welsh_missing_words(document)
    if not said:
        return ""
    return str(ngettext("%(num)s sentence has no Welsh: %(first)s.",
                        "%(num)s sentences have no Welsh, among them %(first)s.", len(said), first=said[0]))


@lru_cache(maxsize=256)
def _compile_json(text: str) -> CompiledPolicy:
    return compile_policy(json.loads(text))


def compile_cached(raw: dict[str, Any]) -> CompiledPolicy:
    """``compile_policy`` remembered by content: a compiled policy never changes."""
    return _compile_json(json.dumps(raw, sort_keys=True, default=str))


# Compiled policies by the content hash their stored versions keep: a version known by its hash
# needs neither its document read nor the document hashed again.
_BY_HASH: dict[str, CompiledPolicy] = {}
_BY_HASH_LIMIT = 256


def compile_stored(content_hash: str, document: Callable[[], dict[str, Any]]) -> CompiledPolicy:
    """The compiled policy of a stored version whose content hash is ``content_hash``;
    ``document`` (which may read it from the database) is called only the first time."""
    policy = _BY_HASH.get(content_hash)
    if policy is None:
        policy = compile_cached(document())
        if policy.content_hash == content_hash:
            if len(_BY_HASH) >= _BY_HASH_LIMIT:
                _BY_HASH.clear()
            _BY_HASH[content_hash] = policy
    return policy
