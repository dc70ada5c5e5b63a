"""The catalogue file: the real courses of SCHEMES, every problem named by place, nothing half-applied."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import func, select

from diversion.accounts.access import SYSTEM
from diversion.accounts.models import User
from diversion.catalogue import services as catalogue
from diversion.catalogue.files import read_catalogue
from diversion.catalogue.models import Course, Offering, Provider
from diversion.cli import main
from diversion.eligibility import services as policies
from diversion.eligibility.views import document_toml
from diversion.extensions import db
from diversion.forces.files import ForceFilesInvalid, read_force_files
from diversion.forces.services import sync_tenants
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import TENANTS_DIR, World


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "tenants"
    shutil.copytree(TENANTS_DIR, folder)
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _sync(app: Flask, folder: Path) -> object:
    return CliRunner().invoke(main, ["tenants", "sync", "--folder", str(folder)],
                              obj=ScriptInfo(create_app=lambda: app))


def test_the_real_courses_carry_the_schemes_facts() -> None:
    found, problems = read_catalogue(TENANTS_DIR)
    assert problems == []
    assert found is not None
    courses = {c.slug: c for c in found.courses}
    dep = courses["avon-dep-session"]
    assert (dep.format, dep.sessions, dep.session_minutes, dep.min_age, dep.areas) == (
        "group", 1, 210, 18, ["avon-and-somerset"])
    cymru = courses["checkpoint-cymru-course"]
    assert set(cymru.languages) == {"en", "cy"}
    assert cymru.session_minutes == 240
    assert set(cymru.kinds) == {"deferred_prosecution", "user_dealer"}
    assert courses["durham-checkpoint-contract"].format == "contract"
    assert courses["druglink-adult-course"].sessions == 4  # an assessment then three sessions
    assert (courses["cranstoun-divert-youth"].min_age, courses["cranstoun-divert-youth"].max_age) == (10, 17)
    assert courses["thames-valley-youth-sessions"].max_age == 17
    assert {"west-midlands", "west-mercia", "warwickshire", "thames-valley"} == set(courses["cranstoun-divert"].areas)


def test_every_force_offering_fits_its_pathway() -> None:
    _catalogue, forces = read_force_files(TENANTS_DIR)  # raises if any offering does not fit
    offered = {(f.slug, o.course, o.pathway) for f in forces for o in f.offerings}
    assert ("north-wales", "checkpoint-cymru-course", "user-dealer") in offered
    thames = next(f for f in forces if f.slug == "thames-valley")
    assert thames.offerings[0].venues == ["Berkshire"]


def test_every_problem_is_named_by_file_entry_and_field(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "catalogue.toml"
    _edit(path, 'areas = ["avon-and-somerset"]', 'areas = ["avon"]')
    _edit(path, 'languages = ["cy", "en"]', 'languages = ["cy", "fr"]')
    _edit(path, 'format = "group"\nsessions = 1', 'format = "lecture"\nsessions = 0')
    _edit(path, "max_age = 17\nlanguages", "max_age = 9\nlanguages")
    with pytest.raises(ForceFilesInvalid) as raised:
        read_force_files(folder)
    found = {f"{p.key}: {p.message}" for p in raised.value.problems}
    assert all(p.path.name == "catalogue.toml" for p in raised.value.problems)
    keys = {key.split(":")[0] for key in found}
    assert {"courses[avon-dep-session].areas", "courses[checkpoint-cymru-course].languages",
            "courses[avon-dep-session].format", "courses[avon-dep-session].sessions",
            "courses[cranstoun-divert-youth].max_age"} <= keys
    assert any("'avon' is not a police force area" in f for f in found)
    assert any("unknown language 'fr'" in f for f in found)


def test_an_offering_that_does_not_fit_is_refused_by_place(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder / "west-midlands.toml", 'course = "cranstoun-divert-youth"\npathway = "divert-youth"',
          'course = "cranstoun-divert-youth"\npathway = "divert"')
    _edit(folder / "durham.toml", 'course = "durham-checkpoint-contract"', 'course = "avon-dep-session"')
    with pytest.raises(ForceFilesInvalid) as raised:
        read_force_files(folder)
    found = [str(p) for p in raised.value.problems]
    assert found == [
        "durham.toml: offerings[avon-dep-session].pathway: 'checkpoint' cannot take this course: "
        "The course does not serve this force's area.",
        "west-midlands.toml: offerings[cranstoun-divert-youth].pathway: 'divert' cannot take this course: "
        "The course does not serve the pathway's kind (Adult drug education).",
    ]


def test_a_bad_catalogue_changes_nothing_and_the_command_says_why(app: Flask, tmp_path: Path) -> None:
    assert _sync(app, TENANTS_DIR).exit_code == 0
    with app.app_context():
        before = db.session.scalar(select(Course.title).where(Course.slug == "avon-dep-session"))
    folder = _copy(tmp_path)
    path = folder / "catalogue.toml"
    _edit(path, 'title = "Drug Education Programme group session"', 'title = "Renamed in the file"')
    _edit(path, 'session_minutes = 240', 'session_minutes = "four hours"')
    result = _sync(app, folder)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "Nothing was changed" in result.output
    assert re.search(r"catalogue\.toml: courses\[checkpoint-cymru-course\]\.session_minutes: .*integer",
                     result.output)
    with app.app_context():
        assert db.session.scalar(select(Course.title).where(Course.slug == "avon-dep-session")) == before


def test_a_sync_that_fails_late_leaves_nothing_behind(app: Flask, world: World, tmp_path: Path) -> None:
    """A refusal after the catalogue was written (a draft blocks the policy) rolls everything back."""
    with app.app_context(), scoped(world.b.id):
        durham = db.session.get(Tenant, world.b.id)
        version = policies.versions()[0]
        policies.save_draft(durham, tomllib.loads(document_toml(version.document)), actor=SYSTEM, note="open")
        db.session.commit()
    folder = _copy(tmp_path)
    _edit(folder / "catalogue.toml", 'title = "Drug Education Programme group session"', 'title = "Late change"')
    _edit(folder / "durham.toml", 'name = "Checkpoint: 4-month contract"', 'name = "Checkpoint (changed)"')
    result = _sync(app, folder)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "Nothing was changed" in result.output
    with app.app_context():
        assert db.session.scalar(select(Course.title).where(Course.slug == "avon-dep-session")) != "Late change"


def test_the_file_updates_rows_until_the_console_changes_them(app: Flask, world: World, tmp_path: Path) -> None:
    with app.app_context():
        admin = db.session.get(User, world.users["platform_admin"].id)
        dep = db.session.scalar(select(Course).where(Course.slug == "avon-dep-session"))
        catalogue.update_course(dep, {**_course_data(dep), "title": "DEP (console)"}, actor=admin)
        db.session.commit()
    folder = _copy(tmp_path)
    path = folder / "catalogue.toml"
    _edit(path, 'title = "Drug Education Programme group session"', 'title = "DEP (file)"')
    _edit(path, 'title = "Drug education course for adults"', 'title = "Adult course (file)"')
    with app.app_context():
        report = sync_tenants(folder, actor=SYSTEM)
        db.session.commit()
        titles = dict(db.session.execute(select(Course.slug, Course.title)).all())
        assert titles["avon-dep-session"] == "DEP (console)"  # the console's edit stands
        assert titles["druglink-adult-course"] == "Adult course (file)"  # untouched rows follow the file
        assert (report.catalogue_changes, report.catalogue_kept) == (1, 1)
        assert db.session.scalar(select(func.count()).select_from(Provider)) == 6


def test_sync_brings_offerings_local_details_in(app: Flask, world: World) -> None:
    with app.app_context(), scoped(db.session.scalar(select(Tenant.id).where(Tenant.slug == "thames-valley"))):
        offering = db.session.scalar(select(Offering).join(Course).where(
            Offering.pathway == "adult-course", Course.slug == "druglink-adult-course"))
        assert offering is not None
        assert offering.venues == "Berkshire"
        assert "body-worn video" in offering.notes


def _course_data(course: Course) -> dict[str, object]:
    return {name: getattr(course, name) for name in catalogue.COURSE_FIELDS if name != "provider"} | {
        "provider": course.provider.slug}
