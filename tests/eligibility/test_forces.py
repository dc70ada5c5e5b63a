"""The five forces' policies: their own tests, and cases written from the schemes' facts."""

from __future__ import annotations

import tomllib
from datetime import date
from typing import Any

import pytest

from diversion.eligibility.compiler import CompiledPolicy, compile_policy
from diversion.eligibility.document import split_policy
from diversion.eligibility.engine import decide, run_tests
from tests.conftest import TENANTS_DIR

FORCES = ("west-midlands", "thames-valley", "durham", "avon-and-somerset", "north-wales")
ON = date(2026, 6, 1)


def policy(slug: str) -> CompiledPolicy:
    raw = tomllib.loads((TENANTS_DIR / f"{slug}.toml").read_text())["policy"]
    return compile_policy(split_policy(raw)[1])


def adult(**changes: Any) -> dict[str, Any]:
    """A 30-year-old found with a little cannabis, nothing else against them."""
    facts: dict[str, Any] = {
        "age": 30, "offence": "possession", "substances": ["cannabis"], "drug_class": "B",
        "personal_use": True, "user_dealer": False, "admission": "admitted", "under_court_order": False,
        "on_bail": False, "held_for_court": False, "detained_mental_health_act": False,
        "previous_diversions": 0, "previous_non_engagement": False, "offence_age_days": 1,
        "aggravating_factors": [], "resident_in_force_area": True, "stage": "street",
        "suitable_for_out_of_court_disposal": True,
    }
    facts.update(changes)
    return facts


@pytest.mark.parametrize("slug", FORCES)
def test_each_force_policy_passes_its_own_tests(slug: str) -> None:
    compiled = policy(slug)
    outcomes = run_tests(compiled, default_on=ON)
    assert len(outcomes) >= 7
    assert [o.name for o in outcomes if not o.passed] == []
    # Every pathway and every exclusion is exercised by some test case.
    reached = {o.decision.pathway for o in outcomes if o.decision}
    assert reached >= {p.id for p in compiled.pathways}
    blocked = {r.criterion for o in outcomes if o.decision for r in o.decision.unmet if r.pathway is None}
    assert blocked >= {e.id for e in compiled.exclusions}


# Cases written from SCHEMES.md that the policies' own tests do not contain.
SCHEME_CASES = [
    # West Midlands: any class, young people too; dealing prosecuted.
    ("west-midlands", adult(age=15, substances=["mdma"], drug_class="A"), "eligible", "divert-youth", []),
    ("west-midlands", adult(offence="supply", personal_use=False), "not_eligible", None, ["supply"]),
    ("west-midlands", adult(previous_diversions=3), "eligible", "divert", []),
    # Thames Valley: youth at most twice, supply means prosecution.
    ("thames-valley", adult(age=14, previous_diversions=0), "eligible", "youth", []),
    ("thames-valley", adult(age=17, previous_diversions=3), "not_eligible", None, ["at-most-twice"]),
    ("thames-valley", adult(offence="possession_with_intent_to_supply", personal_use=False),
     "not_eligible", None, ["supply", "larger-amount"]),
    # Durham: user-dealer in custody; three months; held under the Mental Health Act.
    ("durham", adult(stage="custody", offence="possession_with_intent_to_supply", user_dealer=True,
                     personal_use=False, substances=["crack_cocaine"], drug_class="A"),
     "eligible", "checkpoint", []),
    ("durham", adult(stage="custody", offence_age_days=120), "not_eligible", None, ["offence-too-old"]),
    ("durham", adult(stage="custody", age=19, resident_in_force_area=False, admission="denied"),
     "not_eligible", None, ["resident", "admission"]),
    # Avon and Somerset: any history, but once only; youth go elsewhere.
    ("avon-and-somerset", adult(stage="custody", under_court_order=True), "eligible", "dep", []),
    ("avon-and-somerset", adult(stage="custody", age=16), "not_eligible", None, ["adult"]),
    ("avon-and-somerset", adult(stage="custody", previous_diversions=2), "not_eligible", None, ["once-only"]),
    # North Wales: post-arrest user-dealers; bail excludes.
    ("north-wales", adult(stage="custody", user_dealer=True, offence="supply", personal_use=False,
                          suitable_for_out_of_court_disposal=False), "eligible", "user-dealer", []),
    ("north-wales", adult(stage="custody", user_dealer=True, on_bail=True), "not_eligible", None, ["on-bail"]),
    ("north-wales", adult(stage="street"), "not_eligible", None, ["after-arrest"]),
]


@pytest.mark.parametrize(("slug", "facts", "outcome", "pathway", "unmet"), SCHEME_CASES)
def test_cases_from_the_schemes(slug: str, facts: dict[str, Any], outcome: str, pathway: str | None,
                                unmet: list[str]) -> None:
    decision = decide(policy(slug), facts, ON)
    assert (decision.outcome, decision.pathway) == (outcome, pathway), decision.as_json()
    reasons = {r.criterion: r.reason for r in decision.unmet}
    for criterion in unmet:
        assert criterion in reasons
        assert reasons[criterion]  # a plain-English reason comes with it


def test_the_same_case_is_decided_differently_by_different_forces() -> None:
    street_adult = adult()
    outcomes = {slug: decide(policy(slug), street_adult, ON).pathway for slug in FORCES}
    assert outcomes == {"west-midlands": "divert", "thames-valley": "adult-course", "durham": None,
                        "avon-and-somerset": None, "north-wales": None}
