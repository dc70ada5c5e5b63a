"""The shared catalogue in ``tenants/catalogue.toml``: providers and their courses.

The same schemas check the file and the platform admin console, so a course
means the same thing wherever it was written. The file is checked whole:
every problem is named with its place (``courses[avon-dep-session].areas``)
and nothing is applied while any remains.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Protocol

from flask_babel import gettext as _
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from diversion.catalogue.vocabulary import (
    AREAS,
    COURSE_LANGUAGES,
    KINDS,
    OLDEST_AGE,
    YOUNGEST_AGE,
    CourseFormat,
    Delivery,
    PathwayKind,
    ages_overlap,
)
from diversion.files import SLUG_PATTERN, FileProblem, Text, known_languages, listed_once, read_validated
from diversion.words import WELSH

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=63)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
CATALOGUE_FILE = "catalogue.toml"
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
WEBSITE = re.compile(r"https://[^\s/$.?#][^\s]*")


def known_area(value: str) -> str:
    """A police force area's address as it is; refused (``ValueError``) when it names none."""
    if value not in AREAS:
        raise ValueError(f"{value!r} is not a police force area of England and Wales "
                         "(use its address, e.g. 'west-midlands')")
    return value


class ProviderEntry(BaseModel):
    """A provider: ``website`` an https address, ``contact_email`` an address; both optional."""

    model_config = ConfigDict(extra="forbid")

    slug: Slug
    name: Text
    website: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    contact_email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] = ""

    @field_validator("website")
    @classmethod
    def _website(cls, value: str) -> str:
        if value and not WEBSITE.fullmatch(value):
            raise ValueError("must be a web address starting https://")
        return value

    @field_validator("contact_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if value and not EMAIL.fullmatch(value):
            raise ValueError("must be an email address, like referrals@example.org")
        return value


class CourseEntry(BaseModel):
    """A course. Refused: an unknown kind, format, delivery mode, language or
    area; a list that is empty or names something twice; ages outside 10 to
    120 or a lower age above the upper one; a course offered in Welsh without
    its Welsh title (``title_cy``; and ``description_cy`` where it has a
    description), and Welsh for a course not offered in Welsh."""

    model_config = ConfigDict(extra="forbid")

    slug: Slug
    provider: Slug
    title: Text
    kinds: list[PathwayKind] = Field(min_length=1)
    format: CourseFormat
    sessions: int = Field(ge=1, le=50)
    session_minutes: int = Field(ge=10, le=480)
    delivery: list[Delivery] = Field(min_length=1)
    min_age: int = Field(ge=YOUNGEST_AGE, le=OLDEST_AGE)
    max_age: int | None = Field(default=None, ge=YOUNGEST_AGE, le=OLDEST_AGE)
    languages: list[str] = Field(min_length=1)
    areas: list[str] = Field(min_length=1)
    description: Description = ""
    title_cy: Text | None = Field(default=None, validate_default=True)
    description_cy: Description | None = Field(default=None, validate_default=True)

    @field_validator("kinds", "delivery")
    @classmethod
    def _no_repeats(cls, values: list[str]) -> list[str]:
        return listed_once(values, "a value")

    @field_validator("languages")
    @classmethod
    def _languages(cls, values: list[str]) -> list[str]:
        return known_languages(values, COURSE_LANGUAGES)

    @field_validator("areas")
    @classmethod
    def _areas(cls, values: list[str]) -> list[str]:
        return listed_once([known_area(value) for value in values], "an area")

    @model_validator(mode="after")
    def _ages_in_order(self) -> CourseEntry:
        if self.max_age is not None and self.max_age < self.min_age:
            raise ValueError("max_age must not be below min_age")
        return self

    @field_validator("title_cy", "description_cy")
    @classmethod
    def _welsh_where_offered_in_welsh(cls, value: str | None, info: ValidationInfo) -> str | None:
        offered = WELSH in (info.data.get("languages") or [])
        if value and not offered:
            raise ValueError("only a course offered in Welsh has Welsh: add Welsh (cy) to its languages, "
                             "or leave this out")
        if offered and not value:
            if info.field_name == "title_cy":
                raise ValueError("enter the Welsh title: the course is offered in Welsh")
            if info.data.get("description"):
                raise ValueError("enter the description in Welsh: the course is offered in Welsh")
        return value


class OfferingEntry(BaseModel):
    """A course from the shared catalogue that serves one of a force's pathways,
    with the force's own details: where it runs, whom to call to book, notes.
    Written under ``[[offerings]]`` in the force's file."""

    model_config = ConfigDict(extra="forbid")

    course: Slug
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


class CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: list[ProviderEntry] = []
    courses: list[CourseEntry] = []

    @field_validator("providers", "courses")
    @classmethod
    def _unique(cls, entries: list[ProviderEntry] | list[CourseEntry]) -> list[ProviderEntry] | list[CourseEntry]:
        seen: set[str] = set()
        for entry in entries:
            if entry.slug in seen:
                raise ValueError(f"{entry.slug!r} appears twice")
            seen.add(entry.slug)
        return entries


class CourseLike(Protocol):
    """What ``misfit`` reads of a course: a catalogue row or a file entry."""

    @property
    def kinds(self) -> Sequence[str]: ...
    @property
    def min_age(self) -> int: ...
    @property
    def max_age(self) -> int | None: ...
    @property
    def areas(self) -> Sequence[str]: ...


def misfit(course: CourseLike, *, area: str, kind: str | None) -> str | None:
    """Why ``course`` cannot serve a pathway of ``kind`` in a force of ``area``, or None when it can.

    The rule is in ``catalogue.vocabulary``: the force's area must be served;
    a pathway that names a kind needs a course of that kind whose ages meet
    the kind's age band. Retirement is checked by the services.
    """
    if area not in course.areas:
        return str(_("The course does not serve this force's area."))
    if kind is None:
        return None
    wanted = PathwayKind(kind)
    if wanted not in course.kinds:
        return str(_("The course does not serve the pathway's kind (%(kind)s).", kind=KINDS[wanted].label))
    if not ages_overlap(course.min_age, course.max_age, wanted):
        band = KINDS[wanted]
        return str(_("The course's ages do not meet the pathway's (%(band)s: %(low)s to %(high)s).",
                     band=band.label, low=band.min_age, high=band.max_age))
    return None


def read_catalogue(folder: Path) -> tuple[CatalogueFile | None, list[FileProblem]]:
    """The catalogue file, or every problem in it (no file: an empty catalogue)."""
    path = folder / CATALOGUE_FILE
    if not path.exists():
        return CatalogueFile(), []
    catalogue, problems = read_validated(path, CatalogueFile)
    if catalogue is None:
        return None, problems
    providers = {p.slug for p in catalogue.providers}
    problems = [FileProblem(path, f"courses[{c.slug}].provider", f"no provider {c.provider!r} in this file")
                for c in catalogue.courses if c.provider not in providers]
    return (None, problems) if problems else (catalogue, [])
