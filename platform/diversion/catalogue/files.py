"""The shared catalogue in ``tenants/catalogue.toml``: providers and their courses."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from diversion.tenancy.files import SLUG_PATTERN, FileProblem, Text, location_of

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=63)]
CATALOGUE_FILE = "catalogue.toml"


class ProviderEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Slug
    name: Text


class CourseEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Slug
    provider: Slug
    title: Text
    sessions: int = Field(ge=1, le=50)
    description: Annotated[str, StringConstraints(max_length=2000)] = ""


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


def read_catalogue(folder: Path) -> tuple[CatalogueFile | None, list[FileProblem]]:
    """The catalogue file, or every problem in it (no file: an empty catalogue)."""
    path = folder / CATALOGUE_FILE
    if not path.exists():
        return CatalogueFile(), []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        return None, [FileProblem(path, "(syntax)", str(error))]
    try:
        catalogue = CatalogueFile.model_validate(data)
    except ValidationError as error:
        return None, [FileProblem(path, location_of(item["loc"], data), item["msg"].removeprefix("Value error, "))
                      for item in error.errors()]
    providers = {p.slug for p in catalogue.providers}
    problems = [FileProblem(path, f"courses[{c.slug}].provider", f"no provider {c.provider!r} in this file")
                for c in catalogue.courses if c.provider not in providers]
    return (None, problems) if problems else (catalogue, [])
