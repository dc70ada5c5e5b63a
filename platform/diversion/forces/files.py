"""A force's file, ``tenants/<slug>.toml``: its schema, its reader and its writer.

Reading checks a file whole before anything is applied; every problem names
the file, the key and what is wrong. The eligibility policy must compile
and pass its own tests, and each offering must name a course of the
catalogue that fits the pathway. ``[billing]`` is accepted as a table, kept
as written, ahead of its feature. Writing (``dump_force_file``) gives back
a file that reads as the same force.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from diversion.accounts.sso import MAX_CLIENT_ID_LENGTH, MAX_ISSUER_LENGTH, NEW_PEOPLE, REFUSE
from diversion.catalogue.files import CatalogueFile, OfferingEntry, known_area, misfit, read_catalogue
from diversion.eligibility.compiler import PolicyInvalid, compile_cached, welsh_missing
from diversion.eligibility.document import split_policy
from diversion.eligibility.engine import run_tests
from diversion.errors import ProblemsFound
from diversion.files import SLUG_PATTERN, FileProblem, Text, known_languages, read_validated
from diversion.inputs import planned_date_problem
from diversion.tenancy.models import NonCompletionAction, Tenant
from diversion.words import LANGUAGES, WELSH

RETENTION = Tenant.RETENTION_BOUNDS
# Files in the folder that are not forces.
NOT_FORCES = frozenset({"catalogue"})
# Addresses a force cannot take: the first part of the platform's own
# addresses (``/admin/``, ``/provider/``, ``/api/v1/``...), today's and those
# the design keeps for later (``/national/``). A test holds every first part
# of the app's routes to this list.
RESERVED_SLUGS = frozenset({
    "admin", "api", "billing", "catalogue", "healthz", "national", "provider", "sign-in", "sign-out", "static",
})


def address_problem(slug: str) -> str | None:
    """Why ``slug`` cannot be a force's address (its shape, or a reserved one), or None."""
    if not re.fullmatch(SLUG_PATTERN, slug) or len(slug) > 63:
        return "must be lower-case letters, digits and single hyphens, 63 characters at most"
    if slug in RESERVED_SLUGS:
        return f"{slug!r} is one of the platform's own addresses; choose another"
    return None


class OutcomeCode(BaseModel):
    """The code a force records on a case when a referral ends, and what it means."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    label: Text
    label_cy: Text | None = None  # the label in Welsh, for a force that works in Welsh


class NonCompletionCode(OutcomeCode):
    action: NonCompletionAction


class OutcomeCodes(BaseModel):
    """``[outcomes.completed]`` and ``[outcomes.not_completed]``."""

    model_config = ConfigDict(extra="forbid")

    completed: OutcomeCode
    not_completed: NonCompletionCode

    @field_validator("not_completed")
    @classmethod
    def _codes_differ(cls, value: NonCompletionCode, info: ValidationInfo) -> NonCompletionCode:
        completed = info.data.get("completed")
        if completed is not None and completed.code == value.code:
            raise ValueError("must differ from the code on completion: a case's outcome is told by its code")
        return value


class SignOnEntry(BaseModel):
    """``[sign_on]``: the force's single sign-on, without its client secret.

    The secret is never written to a file nor read from one (a file that
    carries one is refused: an unknown key); after a sync that makes the
    sign-on anew, it is entered once at the force's sign-on settings."""

    model_config = ConfigDict(extra="forbid")

    issuer: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ISSUER_LENGTH)]
    client_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=MAX_CLIENT_ID_LENGTH)]
    compulsory: StrictBool = False
    new_people: str = REFUSE

    @field_validator("new_people")
    @classmethod
    def _known_choice(cls, value: str) -> str:
        if value not in NEW_PEOPLE:
            raise ValueError(f"must be one of {', '.join(NEW_PEOPLE)}, not {value!r}")
        return value


class ForceFile(BaseModel):
    """The validated content of one force's file."""

    model_config = ConfigDict(extra="forbid")

    slug: str
    name: Text
    name_cy: Text | None = None  # the force's name in Welsh, where it gives one
    scheme_name: Text
    languages: list[str] = Field(min_length=1)
    brand_colour: str
    area: str | None = None
    # How long the force keeps its case records, in months (see Tenant.retention_months).
    retention_months: StrictInt | None = Field(default=None, ge=RETENTION[0], le=RETENTION[1])
    outcomes: OutcomeCodes
    policy: dict[str, Any] | None = None
    offerings: list[OfferingEntry] = []
    billing: dict[str, Any] | None = None
    sign_on: SignOnEntry | None = None

    @field_validator("slug")
    @classmethod
    def _address(cls, value: str) -> str:
        if problem := address_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        return known_languages(value, LANGUAGES)

    @field_validator("brand_colour")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError(f"must be a colour written like #1d70b8, not {value!r}")
        return value.lower()

    @field_validator("area")
    @classmethod
    def _known_area(cls, value: str | None) -> str | None:
        return None if value is None else known_area(value)

    @model_validator(mode="after")
    def _area_by_default(self) -> ForceFile:
        """A file that names no area covers the area with the force's address."""
        if self.area is None:
            self.area = self.slug
        return self


class ForceFilesInvalid(ProblemsFound[FileProblem]):
    """Raised with every problem found in the folder; nothing is applied."""


def read_force_file(path: Path) -> tuple[ForceFile | None, list[FileProblem]]:
    """Parse and validate one file, returning the force or its problems."""
    force, problems = read_validated(path, ForceFile)
    if force is None:
        return None, problems
    if force.slug != path.stem:
        return None, [FileProblem(path, "slug", f"is {force.slug!r} but the file is named {path.name}")]
    problems = _check_policy(path, force.policy, force.languages) if force.policy is not None else []
    return (None, problems) if problems else (force, [])


def _check_policy(path: Path, raw: dict[str, Any], languages: list[str]) -> list[FileProblem]:
    """The policy must compile and pass its own tests before a sync may publish it; and give
    every sentence in Welsh too where the force works in Welsh (``welsh_missing``)."""
    effective_from, document = split_policy(raw)
    if effective_from is None:
        return [FileProblem(path, "policy.effective_from", "must be a date such as 2021-04-01")]
    if problem := planned_date_problem(effective_from, datetime.now(UTC).date()):
        return [FileProblem(path, "policy.effective_from", problem)]
    try:
        policy = compile_cached(document)
    except PolicyInvalid as error:
        return [FileProblem(path, f"policy.{p.place}", p.message + (f" (column {p.position})" if p.position else ""))
                for p in error.problems]
    if WELSH in languages and (untranslated := welsh_missing(policy.document)):
        return [FileProblem(path, f"policy.{p.place}", p.message) for p in untranslated]
    return [
        FileProblem(path, f"policy.tests[{outcome.name}]", "; ".join(outcome.problems))
        for outcome in run_tests(policy, default_on=datetime.now(UTC).date())
        if not outcome.passed
    ]


def _check_offerings(path: Path, force: ForceFile, catalogue: CatalogueFile) -> list[FileProblem]:
    """Each offering names a catalogue course and a pathway of the force's policy,
    once, and the course fits the pathway (``catalogue.files.misfit``)."""
    courses = {c.slug: c for c in catalogue.courses}
    kinds = {p.get("id"): p.get("kind") for p in (force.policy or {}).get("pathways", [])}
    problems = []
    seen: set[tuple[str, str]] = set()
    for entry in force.offerings:
        where = f"offerings[{entry.course}]"
        course = courses.get(entry.course)
        if course is None:
            problems.append(FileProblem(path, f"{where}.course", "is not a course in catalogue.toml"))
        if entry.pathway not in kinds:
            problems.append(FileProblem(path, f"{where}.pathway",
                                        f"{entry.pathway!r} is not a pathway of this force's policy"))
        elif course is not None and (why := misfit(course, area=force.area or force.slug, kind=kinds[entry.pathway])):
            problems.append(FileProblem(path, f"{where}.pathway", f"{entry.pathway!r} cannot take this course: {why}"))
        if (entry.course, entry.pathway) in seen:
            problems.append(FileProblem(path, where, f"offers this course for {entry.pathway!r} twice"))
        seen.add((entry.course, entry.pathway))
    return problems


def read_force_files(folder: Path) -> tuple[CatalogueFile, list[ForceFile]]:
    """The catalogue and every force file in ``folder``; refuses the lot if any file is bad."""
    paths = sorted(p for p in folder.glob("*.toml") if p.stem not in NOT_FORCES)
    if not paths:
        raise ForceFilesInvalid([FileProblem(folder, "(folder)", "holds no force files")])
    catalogue, problems = read_catalogue(folder)
    forces: list[ForceFile] = []
    for path in paths:
        force, found = read_force_file(path)
        problems.extend(found)
        if force is not None:
            problems.extend(_check_offerings(path, force, catalogue) if catalogue else [])
            forces.append(force)
    if problems or catalogue is None:
        raise ForceFilesInvalid(problems)
    return catalogue, forces


def dump_force_file(force: ForceFile) -> str:
    """The text of the force's file: read back, it gives the same force.

    Keys left at their defaults are left out, and so is the area when it is
    the force's address (what a file that names none covers).
    """
    data = force.model_dump(mode="python", exclude_defaults=True)
    if data.get("area") == force.slug:
        del data["area"]
    return tomli_w.dumps(data, multiline_strings=True)


def write_force_file(force: ForceFile, folder: Path) -> Path:
    """Write ``<folder>/<slug>.toml`` (replacing a file of that name) and return its path."""
    path = folder / f"{force.slug}.toml"
    path.write_text(dump_force_file(force), encoding="utf-8")
    return path
