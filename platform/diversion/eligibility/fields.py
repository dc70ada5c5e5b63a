"""The national field catalogue: the typed case facts every policy is written over.

One catalogue for all forces, so that decisions can be compared across forces
and one force's policy can be run over another force's cases. A policy may
only refer to these fields (and its own parameters); a decision's facts may
only carry these fields, with these types and values.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rule_engine


class Kind(enum.StrEnum):
    INT = "int"
    BOOL = "bool"
    CHOICE = "choice"  # one of the allowed values
    CHOICES = "choices"  # a list of allowed values

    @property
    def label(self) -> str:
        return {
            "int": "whole number", "bool": "yes or no",
            "choice": "one of", "choices": "any of",
        }[self.value]


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    meaning: str
    values: tuple[str, ...] = ()
    minimum: int | None = None

    @property
    def rule_type(self) -> Any:
        """The rule-engine type this field has in a policy expression."""
        return {
            Kind.INT: rule_engine.DataType.FLOAT,
            Kind.BOOL: rule_engine.DataType.BOOLEAN,
            Kind.CHOICE: rule_engine.DataType.STRING,
            Kind.CHOICES: rule_engine.DataType.ARRAY(rule_engine.DataType.STRING),
        }[self.kind]


OFFENCES = ("possession", "possession_with_intent_to_supply", "supply", "cultivation", "other")
SUBSTANCES = (
    "cannabis", "cocaine", "crack_cocaine", "heroin", "mdma", "ketamine", "amphetamine",
    "synthetic_cannabinoid", "nitrous_oxide", "other",
)
AGGRAVATING_FACTORS = (
    "violence", "weapon", "hate_crime", "driving", "serious_offence", "co_accused", "domestic_abuse",
)

FIELDS: dict[str, Field] = {
    field.name: field
    for field in (
        Field("age", Kind.INT, "Age in whole years on the date of the offence.", minimum=10),
        Field("offence", Kind.CHOICE, "The drug offence the person is dealt with for.", OFFENCES),
        Field("substances", Kind.CHOICES, "Every substance found.", SUBSTANCES),
        Field("drug_class", Kind.CHOICE, "The highest class (Misuse of Drugs Act 1971) among the substances.",
              ("A", "B", "C")),
        Field("personal_use", Kind.BOOL, "The quantity is consistent with personal use."),
        Field("user_dealer", Kind.BOOL,
              "The person sells small amounts to fund their own use (a user-dealer)."),
        Field("admission", Kind.CHOICE,
              "What the person said: an admission, a no-comment interview with enough evidence to "
              "charge, or a denial.", ("admitted", "no_comment_sufficient_evidence", "denied")),
        Field("under_court_order", Kind.BOOL,
              "Subject to a court order, including a suspended sentence or a conditional discharge."),
        Field("on_bail", Kind.BOOL, "On bail for another matter."),
        Field("held_for_court", Kind.BOOL, "Held in custody to be put before a court."),
        Field("detained_mental_health_act", Kind.BOOL, "Detained under the Mental Health Act."),
        Field("previous_diversions", Kind.INT,
              "Earlier diversions of this person in this force.", minimum=0),
        Field("previous_non_engagement", Kind.BOOL,
              "An earlier diversion in this force ended because the person did not engage."),
        Field("offence_age_days", Kind.INT,
              "Days between the offence and the decision.", minimum=0),
        Field("aggravating_factors", Kind.CHOICES,
              "Aggravating factors present (an empty list when there are none).", AGGRAVATING_FACTORS),
        Field("resident_in_force_area", Kind.BOOL, "The person lives in the force's area."),
        Field("stage", Kind.CHOICE,
              "Where the decision is made: on the street (pre-arrest) or in custody (after arrest).",
              ("street", "custody")),
        Field("suitable_for_out_of_court_disposal", Kind.BOOL,
              "The offence is one that national guidance allows to be dealt with out of court."),
    )
}


class FactsInvalid(ValueError):  # noqa: N818 - reads as the condition it reports
    """Facts that do not fit the catalogue; ``problems`` maps field to problem."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in problems.items()))
        self.problems = problems


def _check(field: Field, value: Any) -> str | None:  # noqa: PLR0911 - one answer per kind
    if field.kind is Kind.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number, not {value!r}"
        if field.minimum is not None and value < field.minimum:
            return f"must be at least {field.minimum}, not {value}"
        return None
    if field.kind is Kind.BOOL:
        return None if isinstance(value, bool) else f"must be true or false, not {value!r}"
    if field.kind is Kind.CHOICE:
        if value not in field.values:
            return f"must be one of {', '.join(field.values)}; not {value!r}"
        return None
    if not isinstance(value, list):
        return f"must be a list of values from {', '.join(field.values)}; not {value!r}"
    wrong = [item for item in value if item not in field.values]
    if wrong:
        return f"{wrong[0]!r} is not one of {', '.join(field.values)}"
    return None


def validate_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The facts that are known, checked against the catalogue.

    A field given as ``None`` (or left out) is unknown. Refuses
    (``FactsInvalid``, naming every field at fault) an unknown field or a
    value of the wrong type or outside the allowed values.
    """
    problems: dict[str, str] = {}
    known: dict[str, Any] = {}
    for name, value in facts.items():
        field = FIELDS.get(name)
        if field is None:
            problems[name] = "is not a field of the national catalogue"
            continue
        if value is None:
            continue
        problem = _check(field, value)
        if problem:
            problems[name] = problem
        else:
            known[name] = sorted(value) if field.kind is Kind.CHOICES else value
    if problems:
        raise FactsInvalid(problems)
    return known
