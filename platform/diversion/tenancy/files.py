"""Force definitions in ``tenants/<slug>.toml``: the schema and its reader.

A file is checked whole before anything is applied; an error names the file,
the key and the problem. Sections still to come (policy, offerings, billing)
are accepted as tables so that files can carry them ahead of their features.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from diversion.inputs import BadSyntax, InputRefused, Line, load_toml, planned_date_problem

if TYPE_CHECKING:
    from diversion.catalogue.files import CatalogueFile

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
LANGUAGES = ("en", "cy")
# Files in the folder that are not forces.
NOT_FORCES = frozenset({"catalogue"})

Text = Annotated[Line, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

FileModel = TypeVar("FileModel", bound=BaseModel)  # what a TOML file is read as


class NonCompletionAction(enum.StrEnum):
    """What a force does when a diverted person does not complete."""

    NO_FURTHER_ACTION = "no_further_action"
    PROSECUTION = "prosecution"
    CHARGE_BY_POSTAL_REQUISITION = "charge_by_postal_requisition"
    COURT = "court"


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    label: Text


class NonCompletionOutcome(Outcome):
    action: NonCompletionAction


class Outcomes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    completed: Outcome
    not_completed: NonCompletionOutcome


class OfferingEntry(BaseModel):
    """A course from the shared catalogue that serves one of the force's pathways,
    with the force's own details: where it runs, whom to call to book, notes."""

    model_config = ConfigDict(extra="forbid")

    course: Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=63)]
    pathway: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    venues: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]] = Field(
        default=[], max_length=20)
    booking_contact: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    notes: Annotated[str, StringConstraints(max_length=1000)] = ""

    @field_validator("venues")
    @classmethod
    def _fits(cls, venues: list[str]) -> list[str]:
        if len("\n".join(venues)) > 1000:
            raise ValueError("the venues must be 1000 characters or fewer in all")
        return venues


class ForceFile(BaseModel):
    """The validated content of one force's file."""

    model_config = ConfigDict(extra="forbid")

    slug: Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=63)]
    name: Text
    scheme_name: Text
    languages: list[str] = Field(min_length=1)
    brand_colour: str
    outcomes: Outcomes
    policy: dict[str, Any] | None = None
    offerings: list[OfferingEntry] = []
    billing: dict[str, Any] | None = None

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        unknown = [code for code in value if code not in LANGUAGES]
        if unknown:
            raise ValueError(f"unknown language {unknown[0]!r}; use {' or '.join(LANGUAGES)}")
        if len(set(value)) != len(value):
            raise ValueError("a language is listed twice")
        return value

    @field_validator("brand_colour")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError(f"must be a colour written like #1d70b8, not {value!r}")
        return value.lower()

    def settings(self) -> dict[str, Any]:
        """What the force row keeps beyond its columns (the policy has its own table)."""
        return self.model_dump(mode="json", include={"outcomes", "billing"}, exclude_none=True)


@dataclass(frozen=True)
class FileProblem:
    path: Path
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.key}: {self.message}"


class ForceFilesInvalid(ValueError):  # noqa: N818 - reads as the condition it reports
    """Raised with every problem found in the folder; nothing is applied."""

    def __init__(self, problems: list[FileProblem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def location_of(loc: tuple[int | str, ...], data: Any) -> str:
    """A readable key for a validation error: ids or slugs instead of list indexes."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            label = (node.get("id") or node.get("slug") or node.get("course")) if isinstance(node, dict) else None
            parts.append(f"[{label or part + 1}]")
        else:
            node = node.get(part) if isinstance(node, dict) else None
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(file)"


def read_validated(path: Path, model: type[FileModel]) -> tuple[FileModel | None, list[FileProblem]]:
    """A TOML file read as ``model``, or its problems: unreadable, bad syntax,
    or every field that does not validate, each named by its place."""
    try:
        data = load_toml(path.read_text(encoding="utf-8"), what="file")
    except BadSyntax as error:
        return None, [FileProblem(path, "(syntax)", str(error))]
    except InputRefused as error:
        return None, [FileProblem(path, error.place or "(file)", error.problem)]
    except (OSError, UnicodeDecodeError) as error:
        return None, [FileProblem(path, "(file)", f"cannot be read: {error}")]
    try:
        return model.model_validate(data), []
    except ValidationError as error:
        return None, [
            FileProblem(path, location_of(item["loc"], data), item["msg"].removeprefix("Value error, "))
            for item in error.errors()
        ]


def read_force_file(path: Path) -> tuple[ForceFile | None, list[FileProblem]]:
    """Parse and validate one file, returning the force or its problems."""
    force, problems = read_validated(path, ForceFile)
    if force is None:
        return None, problems
    if force.slug != path.stem:
        return None, [FileProblem(path, "slug", f"is {force.slug!r} but the file is named {path.name}")]
    problems = _check_policy(path, force.policy) if force.policy is not None else []
    return (None, problems) if problems else (force, [])


def split_policy(raw: dict[str, Any]) -> tuple[date | None, dict[str, Any]]:
    """A file's ``[policy]`` table: its ``effective_from`` and the policy document."""
    document = dict(raw)
    effective_from = document.pop("effective_from", None)
    return effective_from if isinstance(effective_from, date) else None, document


def _check_policy(path: Path, raw: dict[str, Any]) -> list[FileProblem]:
    """The policy must compile and pass its own tests before a sync may publish it."""
    from diversion.eligibility.compiler import PolicyInvalid, compile_cached
    from diversion.eligibility.engine import run_tests

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
    return [
        FileProblem(path, f"policy.tests[{outcome.name}]", "; ".join(outcome.problems))
        for outcome in run_tests(policy, default_on=datetime.now(UTC).date())
        if not outcome.passed
    ]


def _check_offerings(path: Path, force: ForceFile, catalogue: CatalogueFile) -> list[FileProblem]:
    """Each offering names a catalogue course and a pathway of the force's policy,
    once, and the course fits the pathway (``catalogue.files.misfit``)."""
    from diversion.catalogue.files import misfit

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
        elif course is not None and (why := misfit(course, force=force.slug, kind=kinds[entry.pathway])):
            problems.append(FileProblem(path, f"{where}.pathway", f"{entry.pathway!r} cannot take this course: {why}"))
        if (entry.course, entry.pathway) in seen:
            problems.append(FileProblem(path, where, f"offers this course for {entry.pathway!r} twice"))
        seen.add((entry.course, entry.pathway))
    return problems


def read_force_files(folder: Path) -> tuple[CatalogueFile, list[ForceFile]]:
    """The catalogue and every force file in ``folder``; refuses the lot if any file is bad."""
    from diversion.catalogue.files import read_catalogue

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
