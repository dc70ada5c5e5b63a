"""explain(): a decision in the force's own words, for that pathway only; labels from the catalogue."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from diversion.eligibility.compiler import CompiledPolicy, PolicyInvalid, compile_policy
from diversion.eligibility.engine import Assessment, decide
from diversion.eligibility.explain import Explanation, explain
from diversion.eligibility.fields import FIELDS, VALUE_LABELS, Kind, describe_fact, fact_label
from tests.eligibility.test_forces import FORCES, ON, adult, policy


def _explained(compiled: CompiledPolicy, facts: dict[str, Any]) -> tuple[Assessment, Explanation]:
    decision = decide(compiled, facts, ON)
    return decision, explain(compiled, outcome=decision.outcome, pathway=decision.pathway,
                             results=decision.results_json(), missing=decision.missing, facts=decision.facts)


def _main_text(explanation: Explanation) -> str:
    """Everything the page shows outside the audit details."""
    return " ".join([*explanation.holds, *explanation.clear, *explanation.unmet, *explanation.awaited,
                     *(f"{r.pathway} {' '.join(r.reasons)}" for r in explanation.routes)])


def test_an_eligible_adult_in_west_midlands_hears_nothing_of_the_youth_route() -> None:
    decision, explanation = _explained(policy("west-midlands"), adult(age=28))
    assert decision.outcome == "eligible"
    assert explanation.pathway == "DIVERT (adults)"
    assert explanation.holds == ("Dealt with on the street, before arrest.", "The offence is possession.",
                                 "The quantity is for personal use.", "Aged 18 or over on the date of the offence.")
    assert "No violence, weapon or serious offence." in explanation.clear
    text = _main_text(explanation)
    assert "young person" not in text.lower()
    assert "Under 18" not in text
    assert "divert" not in text  # no criterion or pathway ids
    # The youth route's rules are there for the audit only.
    youth = [c for c in explanation.criteria if c.pathway == "DIVERT young person's route"]
    assert youth
    assert {c.result for c in youth} >= {"Not met"}


def test_what_holds_falls_back_to_the_facts_a_criterion_read() -> None:
    raw = copy.deepcopy(policy("west-midlands").document.model_dump(mode="json", by_alias=True))
    for pathway in raw["pathways"]:
        for criterion in pathway["criteria"]:
            criterion.pop("holds", None)
    _, explanation = _explained(compile_policy(raw), adult(age=28))
    assert "Stage: On the street (before arrest)" in explanation.holds
    assert "Age: 28" in explanation.holds
    assert "Quantity for personal use: Yes" in explanation.holds


def test_not_eligible_gives_each_shared_reason_once_and_no_other_routes_rules() -> None:
    _, explanation = _explained(policy("west-midlands"), adult(stage="custody"))
    assert explanation.outcome == "not_eligible"
    # Both routes fail for being in custody: said once; the youth route's age rule is not shown to an adult.
    assert explanation.unmet == ("DIVERT is a pre-arrest scheme: it is offered on the street, not in custody.",)
    assert explanation.routes == ()


def test_an_exclusion_that_applies_rules_the_person_out_and_reads_so() -> None:
    _, explanation = _explained(policy("west-midlands"), adult(aggravating_factors=["weapon", "violence"]))
    assert explanation.unmet == ("Violence, a weapon or a serious offence takes the case out of DIVERT.",)
    aggravated = next(c for c in explanation.criteria if c.criterion == "aggravated")
    assert (aggravated.pathway, aggravated.result) == ("Every pathway", "Applies: rules the person out")
    supply = next(c for c in explanation.criteria if c.criterion == "supply")
    assert supply.result == "Does not apply"


def test_routes_that_fail_for_different_reasons_are_each_named() -> None:
    # North Wales: a denial fails both routes alike (said once); an offence unsuitable out of court,
    # by someone who is not a user-dealer, fails each route for a reason of its own (each named).
    _, explanation = _explained(policy("north-wales"), adult(stage="custody", suitable_for_out_of_court_disposal=False,
                                                             user_dealer=False, admission="denied"))
    assert explanation.outcome == "not_eligible"
    assert explanation.unmet == ("Needs an admission or enough evidence to charge.",)
    _, explanation = _explained(policy("north-wales"), adult(stage="custody", suitable_for_out_of_court_disposal=False))
    assert explanation.unmet == ()
    assert [r.pathway for r in explanation.routes] == ["Checkpoint Cymru: 4-month contract",
                                                       "User-dealer pathway (post-arrest)"]
    assert explanation.routes[1].reasons == ("Only for user-dealers.",)


def test_needs_review_names_the_facts_awaited_by_their_labels() -> None:
    facts = adult()
    del facts["aggravating_factors"], facts["personal_use"]
    _, explanation = _explained(policy("west-midlands"), facts)
    assert explanation.outcome == "needs_review"
    assert explanation.awaited == ("Aggravating factors", "Quantity for personal use")
    rows = {f.label: f.value for f in explanation.facts}
    assert rows["Aggravating factors"] == "Not known"
    assert rows["Substances found"] == "Cannabis"
    assert rows["Stage"] == "On the street (before arrest)"


@pytest.mark.parametrize("slug", FORCES)
def test_every_criterion_of_every_force_says_what_holds(slug: str) -> None:
    compiled = policy(slug)
    for criterion in (*compiled.exclusions, *(c for p in compiled.pathways for c in p.criteria)):
        assert criterion.holds, (slug, criterion.id)
        assert criterion.holds != criterion.reason


def test_a_holds_sentence_that_repeats_the_reason_is_refused() -> None:
    raw = copy.deepcopy(policy("west-midlands").document.model_dump(mode="json", by_alias=True))
    criterion = raw["pathways"][0]["criteria"][0]
    criterion["holds"] = criterion["reason"]
    with pytest.raises(PolicyInvalid) as refused:
        compile_policy(raw)
    assert "says the same as the reason" in str(refused.value.problems[0])


def test_a_document_without_holds_keeps_its_hash() -> None:
    raw = copy.deepcopy(policy("west-midlands").document.model_dump(mode="json", by_alias=True))
    for pathway in raw["pathways"]:
        for criterion in pathway["criteria"]:
            criterion.pop("holds", None)
    for exclusion in raw["exclusions"]:
        exclusion.pop("holds", None)
    assert "holds" not in compile_policy(raw).document.canonical_json()


def test_every_field_and_value_has_its_own_label() -> None:
    for name, field in FIELDS.items():
        assert field.label, name
        for value in field.values:
            assert field.value_label(value) != value, (name, value)
    assert FIELDS["substances"].value_label("mdma") == "MDMA"
    assert FIELDS["aggravating_factors"].value_label("co_accused") == "Co-accused"
    assert fact_label("detained_mental_health_act") == "Detained under the Mental Health Act"
    assert describe_fact("drug_class", "A") == "Class A"
    assert describe_fact("aggravating_factors", []) == "None"
    assert describe_fact("substances", None) == "Not known"
    assert describe_fact("personal_use", False) == "No"
    assert set(VALUE_LABELS) - {"*"} <= {n for n, f in FIELDS.items() if f.kind in (Kind.CHOICE, Kind.CHOICES)}
