"""Every action the platform records has words of its own in the audit log (in English
and in Welsh), not the code it is stored as; and the log's words follow the reader's language."""

from __future__ import annotations

import ast
from pathlib import Path

from flask import Flask

import diversion
from diversion.accounts.models import Role
from diversion.audit.reading import ACTIONS, action_words, details_words, object_words
from diversion.cases.models import State

PLATFORM = Path(diversion.__file__).parent
# The codes recorded by an f-string, by the f-string as the source writes it.
SPELLED: dict[str, set[str]] = {
    "referral.{to.value}": {f"referral.{state.value}" for state in State},
    "{kind}.created": {"provider.created", "course.created"},
    "{kind}.updated": {"provider.updated", "course.updated", "offering.updated"},
}


def _codes(argument: ast.expr) -> set[str]:
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return {argument.value}
    if isinstance(argument, ast.IfExp):
        return _codes(argument.body) | _codes(argument.orelse)
    if isinstance(argument, ast.JoinedStr):
        spelled = "".join(part.value if isinstance(part, ast.Constant) else "{" + ast.unparse(part.value) + "}"
                          for part in argument.values if isinstance(part, ast.Constant | ast.FormattedValue))
        assert spelled in SPELLED, f"an action recorded as {spelled}: name its codes in SPELLED"
        return SPELLED[spelled]
    return set()


def recorded_actions() -> set[str]:
    """Every action code the platform's source records: ``record("...")`` (a string, a choice
    of two, or an f-string named in ``SPELLED``) and ``viewed(tenant, "...")``."""
    found: set[str] = set()
    for path in PLATFORM.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "record" and node.args:
                found |= _codes(node.args[0])
            elif name == "viewed" and len(node.args) > 1:
                found |= _codes(node.args[1])
    return found


def test_every_recorded_action_has_its_words() -> None:
    recorded = recorded_actions()
    assert {"auth.signed_in", "case.viewed", "referral.not_completed", "course.updated"} <= recorded
    assert sorted(recorded - set(ACTIONS)) == []


def test_the_log_is_in_the_readers_language(app: Flask) -> None:
    with app.test_request_context("/", headers={"Accept-Language": "cy"}):
        assert object_words("tenant") == "Heddlu"
        assert "Medi" in details_words({"starts_at": "2026-09-25T10:00:00+01:00"})  # September
        assert action_words("no.such_action") != "No such action"
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert action_words("case.viewed") == "Case viewed (name and contact details shown)"
        assert action_words("no.such_action") == "Action recorded as no.such_action"
        assert details_words({"role": Role.FORCE_ADMIN.value, "contact_details_shown": True}) == \
            "role: force admin; contact details shown: yes"
        assert details_words({"why": "deadline_passed", "reason": "typed by an officer"}) == \
            "why: deadline passed; reason: typed by an officer"
