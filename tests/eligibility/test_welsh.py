"""Bilingual policies: a force that works in Welsh gives every sentence of its policy in Welsh too;
the decision is explained in the reader's language, and in English where the policy has no Welsh."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from diversion.eligibility.compiler import PolicyInvalid, compile_policy, welsh_missing
from diversion.eligibility.engine import decide
from diversion.eligibility.explain import explain
from diversion.words import ENGLISH, WELSH
from tests.conftest import TENANTS_DIR
from tests.eligibility.test_forces import ON, adult, policy


def _custody_adult(**changes: Any) -> dict[str, Any]:
    return adult(stage="custody", suitable_for_out_of_court_disposal=True, **changes)


def _explained(slug: str, facts: dict[str, Any], language: str) -> Any:
    compiled = policy(slug)
    decision = decide(compiled, facts, ON)
    return explain(compiled, outcome=decision.outcome, pathway=decision.pathway, results=decision.results_json(),
                   missing=decision.missing, facts=decision.facts, language=language)


def test_north_wales_gives_every_sentence_of_its_policy_in_welsh() -> None:
    assert welsh_missing(policy("north-wales").document) == []


def test_an_english_only_policy_lacks_its_welsh_everywhere_it_has_a_sentence() -> None:
    missing = {problem.place for problem in welsh_missing(policy("west-midlands").document)}
    assert "pathways[divert].name_cy" in missing
    assert "pathways[divert].criteria[adult].reason_cy" in missing
    assert "pathways[divert].criteria[adult].holds_cy" in missing
    assert any(place.startswith("exclusions[") and place.endswith("].reason_cy") for place in missing)


def test_one_missing_reason_is_named_with_its_place() -> None:
    raw = copy.deepcopy(policy("north-wales").document.model_dump(mode="json", by_alias=True))
    del raw["pathways"][0]["criteria"][1]["reason_cy"]
    problems = welsh_missing(compile_policy(raw).document)
    assert [(p.place, p.pathway, p.criterion) for p in problems] == [
        ("pathways[checkpoint-cymru].criteria[adult].reason_cy", "checkpoint-cymru", "adult")]
    assert "Welsh" in problems[0].message


def test_a_welsh_holds_without_its_english_is_refused() -> None:
    raw = copy.deepcopy(policy("north-wales").document.model_dump(mode="json", by_alias=True))
    del raw["pathways"][0]["criteria"][0]["holds"]
    with pytest.raises(PolicyInvalid, match=r"criteria\[after-arrest\]\.holds_cy"):
        compile_policy(raw)


def test_welsh_is_kept_apart_so_an_english_policy_keeps_its_hash() -> None:
    raw = tomllib.loads((TENANTS_DIR / "west-midlands.toml").read_text())["policy"]
    raw.pop("effective_from")
    assert "reason_cy" not in str(compile_policy(raw).document.model_dump(mode="json", by_alias=True))


def test_the_decision_is_explained_in_welsh_to_a_welsh_reader() -> None:
    welsh = _explained("north-wales", _custody_adult(), WELSH)
    english = _explained("north-wales", _custody_adult(), ENGLISH)
    assert welsh.outcome == english.outcome == "eligible"
    assert welsh.pathway == "Checkpoint Cymru: contract 4 mis"
    assert english.pathway == "Checkpoint Cymru: 4-month contract"
    assert "18 oed neu hŷn ar ddyddiad y drosedd." in welsh.holds
    assert "Aged 18 or over on the date of the offence." in english.holds
    assert "Ddim ar fechnïaeth am fater arall." in welsh.clear


def test_the_reasons_that_rule_a_person_out_are_in_welsh() -> None:
    welsh = _explained("north-wales", _custody_adult(on_bail=True), WELSH)
    assert welsh.outcome == "not_eligible"
    assert welsh.unmet == ("Wedi'i eithrio: ar fechnïaeth.",)
    young = _explained("north-wales", _custody_adult(age=17), WELSH)
    assert "Mae Checkpoint Cymru ar gyfer pobl 18 oed neu hŷn." in " ".join(
        [*young.unmet, *(reason for route in young.routes for reason in route.reasons)])


def test_a_policy_without_welsh_is_explained_in_english_to_a_welsh_reader() -> None:
    explanation = _explained("west-midlands", adult(age=28), WELSH)
    assert explanation.pathway == "DIVERT (adults)"
    assert "Aged 18 or over on the date of the offence." in explanation.holds
