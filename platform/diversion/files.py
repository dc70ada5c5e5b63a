"""What the platform's TOML files (``tenants/*.toml``) share: an address, a
line of text, and reading a file against its schema with every problem
named by its file, its place and what is wrong."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, StringConstraints, ValidationError

from diversion.inputs import BadSyntax, InputRefused, checked_text, load_toml

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"

# The length is checked after the spaces are stripped (a blank is refused),
# then the characters (``Line``'s check).
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                 AfterValidator(checked_text)]

FileModel = TypeVar("FileModel", bound=BaseModel)  # what a TOML file is read as


@dataclass(frozen=True)
class FileProblem:
    path: Path
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.key}: {self.message}"


def listed_once(values: list[str], what: str) -> list[str]:
    """``values`` as they are; refused (``ValueError``) when one is listed twice (``what`` names one)."""
    if len(set(values)) != len(values):
        raise ValueError(f"{what} is listed twice")
    return values


def known_languages(values: list[str], known: Collection[str]) -> list[str]:
    """Language codes as they are; refused (``ValueError``): a code not in ``known``, or one listed twice."""
    unknown = [code for code in values if code not in known]
    if unknown:
        raise ValueError(f"unknown language {unknown[0]!r}; use {' or '.join(known)}")
    return listed_once(values, "a language")


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
