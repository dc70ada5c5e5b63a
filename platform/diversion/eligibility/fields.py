"""The national field catalogue: the typed case facts every policy is written over.

One catalogue for all forces, so that decisions can be compared across forces
and one force's policy can be run over another force's cases. A policy may
only refer to these fields (and its own parameters); a decision's facts may
only carry these fields, with these types and values.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
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
    """One fact: its name in policies, its label on pages, what it means, and
    for a choice its allowed values (each with its label in ``VALUE_LABELS``)."""

    name: str
    kind: Kind
    label: str
    meaning: str
    values: tuple[str, ...] = ()
    minimum: int | None = None

    def value_label(self, value: str) -> str:
        """How a page names one of this field's values ("mdma": "MDMA")."""
        return VALUE_LABELS.get(self.name, {}).get(value) or VALUE_LABELS["*"].get(value, value)

    def describe(self, value: Any) -> str:
        """A known value of this fact in words, as a page shows it."""
        if self.kind is Kind.BOOL:
            return "Yes" if value else "No"
        if self.kind is Kind.INT:
            return str(value)
        if self.kind is Kind.CHOICE:
            return self.value_label(value)
        return ", ".join(self.value_label(v) for v in value) if value else "None"

    @property
    def rule_type(self) -> Any:
        """The rule-engine type this field has in a policy expression."""
        return {
            Kind.INT: rule_engine.DataType.FLOAT,
            Kind.BOOL: rule_engine.DataType.BOOLEAN,
            Kind.CHOICE: rule_engine.DataType.STRING,
            Kind.CHOICES: rule_engine.DataType.ARRAY(rule_engine.DataType.STRING),
        }[self.kind]


LARGEST_WHOLE = 2 ** 31 - 1  # a whole-number fact is kept in 4 bytes (``packed``)

OFFENCES = ("possession", "possession_with_intent_to_supply", "supply", "cultivation", "other")
SUBSTANCES = (
    "cannabis", "cocaine", "crack_cocaine", "heroin", "mdma", "ketamine", "amphetamine",
    "synthetic_cannabinoid", "nitrous_oxide", "other",
)
AGGRAVATING_FACTORS = (
    "violence", "weapon", "hate_crime", "driving", "serious_offence", "co_accused", "domestic_abuse",
)

# How pages name the allowed values: one table for the intake form, the
# decision page and every other page that shows facts. "*" holds the values
# shared by several fields; a field's own entry wins.
VALUE_LABELS: dict[str, dict[str, str]] = {
    "*": {"other": "Other"},
    "offence": {
        "possession": "Possession", "possession_with_intent_to_supply": "Possession with intent to supply",
        "supply": "Supply", "cultivation": "Cultivation",
    },
    "substances": {
        "cannabis": "Cannabis", "cocaine": "Cocaine", "crack_cocaine": "Crack cocaine", "heroin": "Heroin",
        "mdma": "MDMA", "ketamine": "Ketamine", "amphetamine": "Amphetamine",
        "synthetic_cannabinoid": "Synthetic cannabinoid (such as spice)", "nitrous_oxide": "Nitrous oxide",
    },
    "drug_class": {"A": "Class A", "B": "Class B", "C": "Class C"},
    "admission": {
        "admitted": "Admitted the offence",
        "no_comment_sufficient_evidence": "No comment, with enough evidence to charge",
        "denied": "Denied the offence",
    },
    "aggravating_factors": {
        "violence": "Violence", "weapon": "A weapon", "hate_crime": "Hate crime", "driving": "Driving",
        "serious_offence": "A serious offence", "co_accused": "Co-accused", "domestic_abuse": "Domestic abuse",
    },
    "stage": {"street": "On the street (before arrest)", "custody": "In custody (after arrest)"},
}

FIELDS: dict[str, Field] = {
    field.name: field
    for field in (
        Field("age", Kind.INT, "Age",
              "Age in whole years on the date of the offence.", minimum=10),
        Field("offence", Kind.CHOICE, "Offence",
              "The drug offence the person is dealt with for.", OFFENCES),
        Field("substances", Kind.CHOICES, "Substances found",
              "Every substance found.", SUBSTANCES),
        Field("drug_class", Kind.CHOICE, "Drug class",
              "The highest class (Misuse of Drugs Act 1971) among the substances.",
              ("A", "B", "C")),
        Field("personal_use", Kind.BOOL, "Quantity for personal use",
              "The quantity is consistent with personal use."),
        Field("user_dealer", Kind.BOOL, "User-dealer",
              "The person sells small amounts to fund their own use (a user-dealer)."),
        Field("admission", Kind.CHOICE, "Admission",
              "What the person said: an admission, a no-comment interview with enough evidence to "
              "charge, or a denial.", ("admitted", "no_comment_sufficient_evidence", "denied")),
        Field("under_court_order", Kind.BOOL, "Subject to a court order",
              "Subject to a court order, including a suspended sentence or a conditional discharge."),
        Field("on_bail", Kind.BOOL, "On bail for another matter",
              "On bail for another matter."),
        Field("held_for_court", Kind.BOOL, "Held for court",
              "Held in custody to be put before a court."),
        Field("detained_mental_health_act", Kind.BOOL, "Detained under the Mental Health Act",
              "Detained under the Mental Health Act."),
        Field("previous_diversions", Kind.INT, "Earlier diversions",
              "Earlier diversions of this person in this force.", minimum=0),
        Field("previous_non_engagement", Kind.BOOL, "Did not engage with an earlier diversion",
              "An earlier diversion in this force ended because the person did not engage."),
        Field("offence_age_days", Kind.INT, "Days since the offence",
              "Days between the offence and the decision.", minimum=0),
        Field("aggravating_factors", Kind.CHOICES, "Aggravating factors",
              "Aggravating factors present, if any (none is an empty list).", AGGRAVATING_FACTORS),
        Field("resident_in_force_area", Kind.BOOL, "Lives in the force area",
              "The person lives in the force's area."),
        Field("stage", Kind.CHOICE, "Stage",
              "Where the decision is made: on the street (pre-arrest) or in custody (after arrest).",
              ("street", "custody")),
        Field("suitable_for_out_of_court_disposal", Kind.BOOL, "Suitable for an out-of-court disposal",
              "The offence is one that national guidance allows to be dealt with out of court."),
    )
}


def fact_label(name: str) -> str:
    """A fact's label on pages (its name, should a stored decision carry one no longer in the catalogue)."""
    field = FIELDS.get(name)
    return field.label if field else name


def describe_fact(name: str, value: Any) -> str:
    """A fact's value in words; ``None`` (or left out) is "Not known"."""
    field = FIELDS.get(name)
    if value is None:
        return "Not known"
    return field.describe(value) if field else str(value)


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
        if value > LARGEST_WHOLE:
            return f"must be at most {LARGEST_WHOLE}, not {value}"
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


def _fits(field: Field) -> Callable[[Any], bool]:
    """A quick test of a value, true exactly when ``_check`` finds no problem with it."""
    values, minimum = field.values, field.minimum
    if field.kind is Kind.INT:
        return lambda value: (type(value) is int or (isinstance(value, int) and not isinstance(value, bool))) \
            and (minimum is None or not value < minimum) and not value > LARGEST_WHOLE
    if field.kind is Kind.BOOL:
        return lambda value: type(value) is bool
    if field.kind is Kind.CHOICE:
        return lambda value: value in values
    return lambda value: isinstance(value, list) and all(item in values for item in value)


_FITS = {name: _fits(field) for name, field in FIELDS.items()}
_LISTS = frozenset(name for name, field in FIELDS.items() if field.kind is Kind.CHOICES)


def validate_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The facts that are known, checked against the catalogue.

    A field given as ``None`` (or left out) is unknown; a list of values is a
    set (sorted, each value once). Refuses
    (``FactsInvalid``, naming every field at fault) an unknown field or a
    value of the wrong type or outside the allowed values.
    """
    problems: dict[str, str] = {}
    known: dict[str, Any] = {}
    for name, value in facts.items():
        fits = _FITS.get(name)
        if fits is None:
            problems[name] = "is not a field of the national catalogue"
        elif value is None:
            continue
        elif fits(value):
            known[name] = sorted(set(value)) if name in _LISTS else value
        else:
            problems[name] = _check(FIELDS[name], value) or "does not fit"
    if problems:
        raise FactsInvalid(problems)
    return known
