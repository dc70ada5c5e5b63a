"""A force written out as its file reads back as the same force."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import select

from diversion.accounts.access import SYSTEM
from diversion.cli import main
from diversion.eligibility.compiler import compile_policy
from diversion.eligibility.document import split_policy
from diversion.extensions import db
from diversion.forces.files import ForceFile, dump_force_file, read_force_file, read_force_files, write_force_file
from diversion.forces.services import force_file_of, sync_tenants
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import TENANTS_DIR

SLUGS = sorted(p.stem for p in TENANTS_DIR.glob("*.toml") if p.stem != "catalogue")


def _read(path: Path) -> ForceFile:
    force, problems = read_force_file(path)
    assert problems == []
    assert force is not None
    return force


@pytest.mark.parametrize("slug", SLUGS)
def test_a_force_file_written_out_reads_back_the_same(slug: str, tmp_path: Path) -> None:
    force = _read(TENANTS_DIR / f"{slug}.toml")
    written = write_force_file(force, tmp_path)
    assert written == tmp_path / f"{slug}.toml"
    assert _read(written) == force
    assert "\narea = " not in written.read_text()  # the force's address is its area: left out


def test_an_area_other_than_the_address_is_written_and_read(tmp_path: Path) -> None:
    force = _read(TENANTS_DIR / "durham.toml").model_copy(update={"area": "cleveland"})
    assert 'area = "cleveland"' in dump_force_file(force)
    assert _read(write_force_file(force, tmp_path)).area == "cleveland"


def test_an_unknown_area_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "durham.toml"
    path.write_text((TENANTS_DIR / "durham.toml").read_text().replace(
        'brand_colour = "#5b2a86"', 'brand_colour = "#5b2a86"\narea = "atlantis"'))
    force, problems = read_force_file(path)
    assert force is None
    assert [(p.key, p.message.split(" is not")[0]) for p in problems] == [("area", "'atlantis'")]


def test_a_synced_force_exported_reads_back_as_its_file(app: Flask, tmp_path: Path) -> None:
    shutil.copy(TENANTS_DIR / "catalogue.toml", tmp_path / "catalogue.toml")
    with app.app_context():
        sync_tenants(TENANTS_DIR, actor=SYSTEM)
        db.session.commit()
        for tenant in db.session.scalars(select(Tenant)):
            with scoped(tenant.id):
                write_force_file(force_file_of(tenant), tmp_path)
    _, exported = read_force_files(tmp_path)  # the catalogue, offerings and policies all check
    _, original = read_force_files(TENANTS_DIR)
    assert len(exported) == len(original) == len(SLUGS)
    for again, first in zip(exported, original, strict=True):
        assert again.model_dump(exclude={"policy"}) == first.model_dump(exclude={"policy"})
        assert again.policy is not None
        assert first.policy is not None
        (on, document), (first_on, first_document) = split_policy(again.policy), split_policy(first.policy)
        assert on == first_on
        assert compile_policy(document).content_hash == compile_policy(first_document).content_hash


def test_cli_exports_a_force(app: Flask, tmp_path: Path) -> None:
    with app.app_context():
        sync_tenants(TENANTS_DIR, actor=SYSTEM)
        db.session.commit()
    result = CliRunner().invoke(main, ["tenants", "export", "north-wales", "--folder", str(tmp_path)],
                                obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output
    assert _read(tmp_path / "north-wales.toml").languages == ["en", "cy"]
