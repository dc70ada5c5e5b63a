"""Force files: validated whole, then applied idempotently."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from diversion.accounts.access import SYSTEM
from diversion.cli import main
from diversion.extensions import db
from diversion.forces.files import ForceFilesInvalid, read_force_files
from diversion.forces.services import sync_tenants
from diversion.tenancy.models import Tenant
from tests.conftest import TENANTS_DIR

FORCES = {"west-midlands", "thames-valley", "durham", "avon-and-somerset", "north-wales"}


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "tenants"
    shutil.copytree(TENANTS_DIR, folder)
    return folder


def test_the_five_forces_are_valid() -> None:
    catalogue, found = read_force_files(TENANTS_DIR)
    forces = {force.slug: force for force in found}
    assert {c.slug for c in catalogue.courses} >= {o.course for f in found for o in f.offerings}
    assert set(forces) == FORCES
    assert forces["north-wales"].languages == ["en", "cy"]
    assert forces["avon-and-somerset"].outcomes.not_completed.action == "charge_by_postal_requisition"
    assert forces["west-midlands"].outcomes.not_completed.action == "no_further_action"
    assert forces["durham"].outcomes.not_completed.action == "prosecution"


def test_sync_is_idempotent(app: Flask) -> None:
    with app.app_context():
        first = sync_tenants(TENANTS_DIR, actor=SYSTEM)
        db.session.commit()
        second = sync_tenants(TENANTS_DIR, actor=SYSTEM)
        db.session.commit()
        assert set(first.created) == FORCES
        assert set(second.unchanged) == FORCES
        assert not second.created
        assert not second.updated
        assert db.session.scalar(select(func.count()).select_from(Tenant)) == 5


def test_a_changed_file_updates_its_force(app: Flask, tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    with app.app_context():
        sync_tenants(folder, actor=SYSTEM)
        path = folder / "durham.toml"
        path.write_text(path.read_text().replace('scheme_name = "Checkpoint"', 'scheme_name = "Checkpoint Plus"'))
        report = sync_tenants(folder, actor=SYSTEM)
        assert report.updated == ["durham"]
        durham = db.session.scalar(select(Tenant).where(Tenant.slug == "durham"))
        assert durham is not None
        assert durham.scheme_name == "Checkpoint Plus"


@pytest.mark.parametrize(
    ("file", "old", "new", "key", "problem"),
    [
        ("durham.toml", 'brand_colour = "#5b2a86"', 'brand_colour = "purple"', "brand_colour", "#1d70b8"),
        ("north-wales.toml", 'languages = ["en", "cy"]', 'languages = ["en", "fr"]',
         "languages", "unknown language 'fr'"),
        ("durham.toml", 'action = "prosecution"', 'action = "caution"',
         "outcomes.not_completed.action", "Input should be"),
        ("durham.toml", 'name = "Durham Constabulary"', 'nmae = "Durham Constabulary"', "nmae", "Extra inputs"),
        ("durham.toml", 'slug = "durham"', 'slug = "durham-police"', "slug", "file is named durham.toml"),
        ("durham.toml", 'name = "Durham Constabulary"', 'name = "Durham', "(syntax)", ""),
        ("durham.toml", 'expression = "age >= adult_age"', 'expression = "age >= adult_agee"',
         "policy.pathways[checkpoint].criteria[adult].expression", "unknown field 'adult_agee'"),
        ("durham.toml", 'value = 92 }', 'value = 30 }',
         "policy.tests[offence 92 days old is within three months]", "expected eligible, got not_eligible"),
        ("durham.toml", "effective_from = 2015-04-01", "", "policy.effective_from", "must be a date"),
    ],
)
def test_a_bad_file_is_named_with_key_and_problem_and_nothing_applies(
    app: Flask, tmp_path: Path, file: str, old: str, new: str, key: str, problem: str
) -> None:
    folder = _copy(tmp_path)
    path = folder / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    with app.app_context():
        with pytest.raises(ForceFilesInvalid) as caught:
            sync_tenants(folder, actor=SYSTEM)
        messages = [str(p) for p in caught.value.problems]
        assert any(m.startswith(f"{file}: {key}: ") and problem in m for m in messages), messages
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Tenant)) == 0


def test_cli_sync_reports_problems_and_exits_non_zero(app: Flask, tmp_path: Path, monkeypatch) -> None:
    folder = _copy(tmp_path)
    (folder / "thames-valley.toml").write_text('slug = "thames-valley"\n')
    runner = CliRunner()
    result = runner.invoke(main, ["tenants", "sync", "--folder", str(folder)],
                           obj=_script_info(app))
    assert result.exit_code == 1
    assert "Nothing was changed" in result.output
    assert "thames-valley.toml: name: Field required" in result.output
    ok = runner.invoke(main, ["tenants", "sync"], obj=_script_info(app))
    assert ok.exit_code == 0, ok.output
    assert "created: avon-and-somerset, durham, north-wales, thames-valley, west-midlands" in ok.output


def _script_info(app: Flask):
    from flask.cli import ScriptInfo

    return ScriptInfo(create_app=lambda: app)
