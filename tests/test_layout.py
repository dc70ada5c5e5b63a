"""The repository's shape: the `platform/` folder must not shadow Python's module."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from diversion.config import REPO_ROOT


def test_platform_folder_is_not_a_package() -> None:
    assert (REPO_ROOT / "platform" / "diversion" / "__init__.py").is_file()
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()


def test_import_platform_is_the_standard_library_module() -> None:
    # Run from the repository root, where a `platform` package would win.
    out = subprocess.run(
        [sys.executable, "-c", "import platform, uuid; print(platform.__file__); print(platform.python_version())"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(out[0]).resolve().parent == stdlib
    assert out[1] == sys.version.split()[0]


def test_fixed_top_level_layout() -> None:
    for name in ("platform", "tenants", "migrations", "tests", "infra", "pyproject.toml",
                 "README.md", "Makefile", ".ci/run"):
        assert (REPO_ROOT / name).exists(), name


def test_every_module_is_in_the_import_graph() -> None:
    """A folder without ``__init__.py`` is skipped by the import graph that
    ``lint-imports`` checks, so its modules would escape every contract."""
    import grimp

    graph = grimp.build_graph("diversion", exclude_type_checking_imports=True)
    package = REPO_ROOT / "platform" / "diversion"
    on_disk = {
        ".".join(("diversion", *path.relative_to(package).with_suffix("").parts)).removesuffix(".__init__")
        for path in package.rglob("*.py")
    }
    assert on_disk - graph.modules == set()
    assert {"diversion.api", "diversion.api.views"} <= graph.modules

