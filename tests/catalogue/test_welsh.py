"""Courses offered in Welsh carry their Welsh title and description; nothing else claims Welsh."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from pydantic import ValidationError

from diversion.catalogue.files import CourseEntry
from diversion.catalogue.models import Course
from diversion.words import ENGLISH, WELSH
from tests.conftest import TENANTS_DIR


def _course(**changes: Any) -> dict[str, Any]:
    entry = {"slug": "night-course", "provider": "cranstoun", "title": "Night course", "kinds": ["adult_education"],
             "format": "group", "sessions": 2, "session_minutes": 90, "delivery": ["in_person"], "min_age": 18,
             "languages": ["en"], "areas": ["north-wales"], "description": "Two evenings."}
    return {**entry, **changes}


def test_every_course_of_the_catalogue_offered_in_welsh_has_its_welsh() -> None:
    courses = tomllib.loads((TENANTS_DIR / "catalogue.toml").read_text())["courses"]
    welsh = [CourseEntry.model_validate(course) for course in courses if WELSH in course["languages"]]
    assert [course.slug for course in welsh] == ["checkpoint-cymru-course"]
    assert welsh[0].title_cy == "Cwrs addysg Checkpoint Cymru (Cymraeg a Saesneg)"


def test_a_course_offered_in_welsh_without_its_welsh_title_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"title_cy\n.*enter the Welsh title"):
        CourseEntry.model_validate(_course(languages=["en", "cy"]))
    with pytest.raises(ValidationError, match=r"description_cy\n.*enter the description in Welsh"):
        CourseEntry.model_validate(_course(languages=["en", "cy"], title_cy="Cwrs nos"))
    entry = CourseEntry.model_validate(_course(languages=["en", "cy"], title_cy="Cwrs nos",
                                               description_cy="Dwy noson."))
    assert (entry.title_cy, entry.description_cy) == ("Cwrs nos", "Dwy noson.")


def test_welsh_for_a_course_not_offered_in_welsh_is_refused() -> None:
    with pytest.raises(ValidationError, match="add Welsh \\(cy\\) to its languages"):
        CourseEntry.model_validate(_course(title_cy="Cwrs nos"))


def test_a_course_reads_in_welsh_where_it_has_welsh_and_in_english_otherwise() -> None:
    welsh = Course(title="Night course", description="Two evenings.", title_cy="Cwrs nos", description_cy="Dwy noson.",
                   languages=["en", "cy"])
    english = Course(title="Night course", description="Two evenings.", languages=["en"])
    assert (welsh.title_in(WELSH), welsh.description_in(WELSH)) == ("Cwrs nos", "Dwy noson.")
    assert welsh.title_in(ENGLISH) == "Night course"
    assert english.title_in(WELSH) == "Night course"
    assert welsh.offered_in_welsh
    assert not english.offered_in_welsh
