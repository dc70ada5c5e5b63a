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
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from diversion.words import Described


class Kind(enum.StrEnum):
    INT = "int"
    BOOL = "bool"
    CHOICE = "choice"  # one of the allowed values
    CHOICES = "choices"  # a list of allowed values

    @property
    def label(self) -> str:
        return str({
            "int": _l("whole number"), "bool": _l("yes or no"),
            "choice": _l("one of"), "choices": _l("any of"),
        }[self.value])


@dataclass(frozen=True)
class Field(Described):
    """One fact: its name in policies, its label on pages, what it means, and
    for a choice its allowed values (each with its label in ``VALUE_LABELS``)."""

    name: str
    kind: Kind
    title: LazyString  # the label (``label``)
    explanation: LazyString  # what it means (``meaning``)
    values: tuple[str, ...] = ()
    minimum: int | None = None

    def value_label(self, value: str) -> str:
        """How a page names one of this field's values ("mdma": "MDMA")."""
        return str(self.value_title(value))

    def value_title(self, value: str) -> LazyString | str:
        """``value_label`` as a message translated when read (a form's choice, made at import)."""
        return VALUE_LABELS.get(self.name, {}).get(value) or VALUE_LABELS["*"].get(value, value)

    def describe(self, value: Any) -> str:
        """A known value of this fact in words, as a page shows it."""
        if self.kind is Kind.BOOL:
            return str(gettext("Yes") if value else gettext("No"))
        if self.kind is Kind.INT:
            return str(value)
        if self.kind is Kind.CHOICE:
            return self.value_label(value)
        return ", ".join(self.value_label(v) for v in value) if value else gettext("None")

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
VALUE_LABELS: dict[str, dict[str, LazyString]] = {
    "*": {"other": _l("Other")},
    "offence": {
        "possession": _l("Possession"), "possession_with_intent_to_supply": _l("Possession with intent to supply"),
        "supply": _l("Supply"), "cultivation": _l("Cultivation"),
    },
    "substances": {
        "cannabis": _l("Cannabis"), "cocaine": _l("Cocaine"), "crack_cocaine": _l("Crack cocaine"),
        "heroin": _l("Heroin"),
        "mdma": _l("MDMA"), "ketamine": _l("Ketamine"), "amphetamine": _l("Amphetamine"),
        "synthetic_cannabinoid": _l("Synthetic cannabinoid (such as spice)"), "nitrous_oxide": _l("Nitrous oxide"),
    },
    "drug_class": {"A": _l("Class A"), "B": _l("Class B"), "C": _l("Class C")},
    "admission": {
        "admitted": _l("Admitted the offence"),
        "no_comment_sufficient_evidence": _l("No comment, with enough evidence to charge"),
        "denied": _l("Denied the offence"),
    },
    "aggravating_factors": {
        "violence": _l("Violence"), "weapon": _l("A weapon"), "hate_crime": _l("Hate crime"),
        "driving": _l("Driving"), "serious_offence": _l("A serious offence"), "co_accused": _l("Co-accused"),
        "domestic_abuse": _l("Domestic abuse"),
    },
    "stage": {"street": _l("On the street (before arrest)"), "custody": _l("In custody (after arrest)")},
}

FIELDS: dict[str, Field] = {
    field.name: field
    for field in (
        Field("age", Kind.INT, _l("Age"),
              _l("Age in whole years on the date of the offence."), minimum=10),
        Field("offence", Kind.CHOICE, _l("Offence"),
              _l("The drug offence the person is dealt with for."), OFFENCES),
        Field("substances", Kind.CHOICES, _l("Substances found"),
              _l("Every substance found."), SUBSTANCES),
        Field("drug_class", Kind.CHOICE, _l("Drug class"),
              _l("The highest class (Misuse of Drugs Act 1971) among the substances."),
              ("A", "B", "C")),
        Field("personal_use", Kind.BOOL, _l("Quantity for personal use"),
              _l("The quantity is consistent with personal use.")),
        Field("user_dealer", Kind.BOOL, _l("User-dealer"),
              _l("The person sells small amounts to fund their own use (a user-dealer).")),
        Field("admission", Kind.CHOICE, _l("Admission"),
              _l("What the person said: an admission, a no-comment interview with enough evidence to "
              "charge, or a denial."), ("admitted", "no_comment_sufficient_evidence", "denied")),
        Field("under_court_order", Kind.BOOL, _l("Subject to a court order"),
              _l("Subject to a court order, including a suspended sentence or a conditional discharge.")),
        Field("on_bail", Kind.BOOL, _l("On bail for another matter"),
              _l("On bail for another matter.")),
        Field("held_for_court", Kind.BOOL, _l("Held for court"),
              _l("Held in custody to be put before a court.")),
        Field("detained_mental_health_act", Kind.BOOL, _l("Detained under the Mental Health Act"),
              _l("Detained under the Mental Health Act.")),
        Field("previous_diversions", Kind.INT, _l("Earlier diversions"),
              _l("Earlier diversions of this person in this force."), minimum=0),
        Field("previous_non_engagement", Kind.BOOL, _l("Did not engage with an earlier diversion"),
              _l("An earlier diversion in this force ended because the person did not engage.")),
        Field("offence_age_days", Kind.INT, _l("Days since the offence"),
              _l("Days between the offence and the decision."), minimum=0),
        Field("aggravating_factors", Kind.CHOICES, _l("Aggravating factors"),
              _l("Aggravating factors present, if any (none is an empty list)."), AGGRAVATING_FACTORS),
        Field("resident_in_force_area", Kind.BOOL, _l("Lives in the force area"),
              _l("The person lives in the force's area.")),
        Field("stage", Kind.CHOICE, _l("Stage"),
              _l("Where the decision is made: on the street (pre-arrest) or in custody (after arrest)."),
              ("street", "custody")),
        Field("suitable_for_out_of_court_disposal", Kind.BOOL, _l("Suitable for an out-of-court disposal"),
              _l("The offence is one that national guidance allows to be dealt with out of court.")),
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
        return str(gettext("Not known"))
    return field.describe(value) if field else str(value)


class FactsInvalid(ValueError):  # noqa: N818 - reads as the condition it reports
    """Facts that do not fit the catalogue; ``problems`` maps field to problem."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in problems.items()))
        self.problems = problems


def _check(field: Field, value: Any) -> str | None:  # noqa: PLR0911 - one answer per kind
    if field.kind is Kind.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            return str(gettext("must be a whole number, not %(value)r", value=value))
        if field.minimum is not None and value < field.minimum:
            return str(gettext("must be at least %(minimum)s, not %(value)s", minimum=field.minimum, value=value))
        if value > LARGEST_WHOLE:
            return str(gettext("must be at most %(maximum)s, not %(value)s", maximum=LARGEST_WHOLE, value=value))
        return None
    if field.kind is Kind.BOOL:
        return None if isinstance(value, bool) else str(gettext("must be true or false, not %(value)r", value=value))
    if field.kind is Kind.CHOICE:
        if value not in field.values:
            return str(gettext("must be one of %(values)s; not %(value)r", values=", ".join(field.values), value=value))
        return None
    if not isinstance(value, list):
        return str(gettext("must be a list of values from %(values)s; not %(value)r", values=", ".join(field.values),
                       value=value))
    wrong = [item for item in value if item not in field.values]
    if wrong:
        return str(gettext("%(value)r is not one of %(values)s", value=wrong[0], values=", ".join(field.values)))
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
            problems[name] = gettext("is not a field of the national catalogue")
        elif value is None:
            continue
        elif fits(value):
            known[name] = sorted(set(value)) if name in _LISTS else value
        else:
            problems[name] = _check(FIELDS[name], value) or gettext("does not fit")
    if problems:
        raise FactsInvalid(problems)
    return known
