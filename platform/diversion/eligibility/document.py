"""The policy document: what a force writes under ``[policy]``, kept as JSON.

A document has dated parameters, exclusions that apply to every pathway,
ordered pathways of named criteria, and the test cases the policy must pass
before it can be published. This module checks its shape; ``compiler``
checks its expressions against the field catalogue.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from diversion.catalogue.vocabulary import PathwayKind
from diversion.inputs import EARLIEST_CASE_DATE, YEARS_AHEAD, latest_future_date
from diversion.words import in_language

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$", max_length=63)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
ParameterValue = int | bool | str | list[str]
Outcome = Literal["eligible", "not_eligible", "needs_review"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatedValue(_Strict):
    """A parameter's value from a date on (until the next one starts)."""

    from_: date = Field(alias="from")
    value: ParameterValue


Welsh = Field(default=None, exclude_if=lambda value: value is None)


class Criterion(_Strict):
    """A condition a person must meet; ``reason`` says why, in plain English,
    when not; ``holds`` (optional) says in plain English what is true when it
    is met, for the decision page of an eligible person ("Aged 18 or over.").
    Left out, it is not stored, so older documents keep their hash.

    ``reason_cy`` and ``holds_cy`` are the same in Welsh, for a force that works in
    Welsh too (``compiler.welsh_missing`` requires them there); left out, not stored."""

    id: Identifier
    expression: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    reason: Text
    holds: Text | None = Field(default=None, exclude_if=lambda value: value is None)
    reason_cy: Text | None = Welsh
    holds_cy: Text | None = Welsh


class Exclusion(_Strict):
    """A condition that rules a person out of every pathway: ``reason`` says
    why when it applies; ``holds`` (optional, as for a criterion) what is true
    when it does not ("No supply or dealing.")."""

    id: Identifier
    excluded_if: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    reason: Text
    holds: Text | None = Field(default=None, exclude_if=lambda value: value is None)
    reason_cy: Text | None = Welsh
    holds_cy: Text | None = Welsh


class Pathway(_Strict):
    """A route a person can be diverted to. ``kind`` (optional) is its national
    pathway kind (``catalogue.vocabulary.PathwayKind``): it decides which
    catalogue courses may serve the pathway and lets schemes be compared.
    Left out, it is not stored, so older documents keep their hash.

    ``sessions`` is what the policy expects a course of the pathway to take, for
    reading only: a referral takes its course's sessions (``Course.sessions``),
    since one pathway may be served by courses of different lengths. Kept so
    that published documents keep their hash. ``deadline_days`` runs from the
    day of each referral. ``name_cy`` and ``description_cy``: the same in Welsh
    (as for a criterion's ``reason_cy``)."""

    id: Identifier
    name: Text
    kind: PathwayKind | None = Field(default=None, exclude_if=lambda value: value is None)
    description: str = ""
    name_cy: Text | None = Welsh
    description_cy: Text | None = Welsh
    sessions: int = Field(ge=1, le=50)
    deadline_days: int = Field(ge=1, le=730)
    criteria: list[Criterion] = Field(min_length=1)

    def name_in(self, language: str) -> str:
        """The name in ``language`` ("cy" or "en"), where the policy gives it; else the English."""
        return in_language(self.name, self.name_cy, language)

    @model_validator(mode="after")
    def _unique_criteria(self) -> Pathway:
        _refuse_duplicates([c.id for c in self.criteria], _("pathway %(pathway)s: criterion", pathway=self.id))
        return self


class TestCase(_Strict):
    """A case the policy must decide as expected before it can be published."""

    name: Text
    facts: dict[str, Any]
    on: date | None = None
    expect: Outcome
    pathway: Identifier | None = None
    unmet: list[Identifier] = []  # criteria that must be among the unmet ones
    missing: list[str] = []  # facts that must be reported missing
    unknown: list[str] = []  # default facts to leave out of this case (TOML has no null)

    def all_facts(self, defaults: dict[str, Any]) -> dict[str, Any]:
        facts = {**defaults, **self.facts}
        for name in self.unknown:
            facts.pop(name, None)
        return facts

    @model_validator(mode="after")
    def _pathway_only_when_eligible(self) -> TestCase:
        if (self.expect == "eligible") != (self.pathway is not None):
            raise ValueError(_("give a pathway exactly when the expected outcome is eligible"))
        return self


class PolicyDocument(_Strict):
    summary: str = ""
    summary_cy: str | None = Welsh  # the summary in Welsh, for a force that works in Welsh
    parameters: dict[Identifier, list[DatedValue]] = {}
    exclusions: list[Exclusion] = []
    pathways: list[Pathway] = Field(min_length=1)
    test_defaults: dict[str, Any] = {}
    tests: list[TestCase] = []

    @field_validator("pathways")
    @classmethod
    def _unique_pathways(cls, pathways: list[Pathway]) -> list[Pathway]:
        _refuse_duplicates([p.id for p in pathways], _("pathway"))
        return pathways

    @field_validator("exclusions")
    @classmethod
    def _unique_exclusions(cls, exclusions: list[Exclusion]) -> list[Exclusion]:
        _refuse_duplicates([e.id for e in exclusions], _("exclusion"))
        return exclusions

    @field_validator("parameters")
    @classmethod
    def _dated_consistently(cls, parameters: dict[str, list[DatedValue]]) -> dict[str, list[DatedValue]]:
        for name, values in parameters.items():
            if not values:
                raise ValueError(_("parameter %(name)s has no value", name=name))
            _refuse_duplicates([v.from_.isoformat() for v in values], _("parameter %(name)s: date", name=name))
            latest = latest_future_date(datetime.now(UTC).date())
            for dated in values:
                if dated.from_ < EARLIEST_CASE_DATE:
                    raise ValueError(_("parameter %(name)s: the date %(date)s must be on or after %(earliest)s",
                                       name=name, date=dated.from_.isoformat(),
                                       earliest=EARLIEST_CASE_DATE.isoformat()))
                if dated.from_ > latest:
                    raise ValueError(_("parameter %(name)s: the date %(date)s must be no later than %(latest)s "
                                       "(%(years)s years from today)", name=name, date=dated.from_.isoformat(),
                                       latest=latest.isoformat(), years=YEARS_AHEAD))
            if len({type(v.value) for v in values}) > 1:
                raise ValueError(_("parameter %(name)s changes type between dates", name=name))
        return parameters

    @field_validator("tests")
    @classmethod
    def _known_pathways(cls, tests: list[TestCase], info: ValidationInfo) -> list[TestCase]:
        pathway_ids = {p.id for p in info.data.get("pathways", [])}
        for case in tests:
            if case.pathway is not None and case.pathway not in pathway_ids:
                raise ValueError(_("test %(test)r expects unknown pathway %(pathway)r", test=case.name,
                                   pathway=case.pathway))
        return tests

    def parameters_on(self, day: date) -> dict[str, ParameterValue]:
        """Each parameter's value in force on ``day`` (its earliest value before the first date)."""
        found: dict[str, ParameterValue] = {}
        for name, values in self.parameters.items():
            ordered = sorted(values, key=lambda v: v.from_)
            current = ordered[0].value
            for dated in ordered:
                if dated.from_ <= day:
                    current = dated.value
            found[name] = current
        return found

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False)

    def content_hash(self) -> str:
        return "sha256:" + hashlib.sha256(self.canonical_json().encode()).hexdigest()


def _refuse_duplicates(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for identifier in ids:
        if identifier in seen:
            raise ValueError(_("%(what)s %(id)r appears twice", what=what, id=identifier))
        seen.add(identifier)


# What is wrong with a document's shape, said in the reader's language, by the kind of error
# pydantic found (its ``ctx`` fills the placeholders); a kind not listed keeps pydantic's English.
_SHAPE_SAID = {
    "missing": _l("is required"),
    "extra_forbidden": _l("is not part of a policy: check its spelling"),
    "string_type": _l("must be text"),
    "string_too_short": _l("must not be empty"),
    "string_too_long": _l("must be %(max_length)s characters or fewer"),
    "string_pattern_mismatch": _l("must start with a small letter and hold only small letters, digits, - and _"),
    "int_type": _l("must be a whole number"),
    "int_parsing": _l("must be a whole number"),
    "int_from_float": _l("must be a whole number"),
    "bool_type": _l("must be true or false"),
    "bool_parsing": _l("must be true or false"),
    "greater_than_equal": _l("must be %(ge)s or more"),
    "less_than_equal": _l("must be %(le)s or less"),
    "too_short": _l("must have at least %(min_length)s"),
    "list_type": _l("must be a list"),
    "dict_type": _l("must be a table"),
    "model_type": _l("must be a table"),
    "model_attributes_type": _l("must be a table"),
    "date_type": _l("must be a date, like 2026-04-01"),
    "date_parsing": _l("must be a date, like 2026-04-01"),
    "date_from_datetime_parsing": _l("must be a date, like 2026-04-01"),
    "date_from_datetime_inexact": _l("must be a date, like 2026-04-01"),
    "literal_error": _l("must be one of %(expected)s"),
    "enum": _l("must be one of %(expected)s"),
}


def shape_said(item: ErrorDetails) -> str:
    """What one of pydantic's errors about a document says, in the reader's language: a
    check of the document's own (a ``ValueError``) as it said it, pydantic's kinds from
    ``_SHAPE_SAID``."""
    context = item.get("ctx") or {}
    if item["type"] == "value_error":
        return str(context.get("error", item["msg"]))
    said = _SHAPE_SAID.get(item["type"])
    if said is None:
        return item["msg"]
    return str(said) % {key: str(value) for key, value in context.items()}


def location(loc: tuple[int | str, ...], document: dict[str, Any]) -> str:
    """A readable place for a validation error: pathway and criterion ids, not indexes."""
    parts: list[str] = []
    node: Any = document
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            label = node.get("id") or node.get("name") if isinstance(node, dict) else None
            parts.append(f"[{label}]" if label else f"[{part + 1}]")
        else:
            node = node.get(part) if isinstance(node, dict) else None
            parts.append(("." if parts else "") + str(part))
    return re.sub(r"\.\[", "[", "".join(parts)) or "(policy)"


def split_policy(raw: dict[str, Any]) -> tuple[date | None, dict[str, Any]]:
    """A force file's ``[policy]`` table: its ``effective_from`` and the policy document."""
    document = dict(raw)
    effective_from = document.pop("effective_from", None)
    return effective_from if isinstance(effective_from, date) else None, document
