"""The Welsh catalogue is complete: every string marked for translation is in it, and each has
Welsh that is neither empty, nor fuzzy, nor the English unchanged, with the same placeholders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from diversion.config import REPO_ROOT

TRANSLATIONS = REPO_ROOT / "platform" / "diversion" / "translations"
WELSH = TRANSLATIONS / "cy" / "LC_MESSAGES" / "messages.po"
GLOSSARY = REPO_ROOT / "docs" / "welsh-glossary.md"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _extracted(tmp_path: Path) -> set[str]:
    """The strings marked in the code now, extracted as ``make translations`` extracts them."""
    out = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_l",
                    "-k", "lazy_gettext", "--no-location", "--omit-header", "-o", str(out), "."],
                   cwd=REPO_ROOT, check=True, capture_output=True)
    with out.open("rb") as pot:
        return {message.id for message in read_po(pot) if message.id}


def _same_in_welsh() -> set[str]:
    """The words the glossary keeps as they are in both languages."""
    section = GLOSSARY.read_text().split("## The same in Welsh", 1)[1]
    return set(re.findall(r"^- `([^`]+)`", section, re.MULTILINE))


def test_the_catalogue_holds_every_string_marked_in_the_code(tmp_path: Path) -> None:
    with WELSH.open("rb") as po:
        kept = {message.id for message in read_po(po) if message.id}
    marked = _extracted(tmp_path)
    assert marked, "nothing is marked for translation"
    assert marked - kept == set(), "strings marked but not in the catalogue: run make translations"
    assert kept - marked == set(), "strings in the catalogue no longer marked: run make translations"


def test_every_string_has_welsh() -> None:
    with WELSH.open("rb") as po:
        catalogue = read_po(po)
    assert catalogue.locale is not None
    assert str(catalogue.locale) == "cy"
    same = _same_in_welsh()
    problems = []
    for message in catalogue:
        if not message.id:
            continue
        english, welsh = str(message.id), str(message.string or "")
        if not welsh.strip():
            problems.append(f"no Welsh: {english!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {english!r}")
        elif welsh == english and english not in same:
            problems.append(f"the English unchanged: {english!r}")
        elif sorted(PLACEHOLDER.findall(welsh)) != sorted(PLACEHOLDER.findall(english)):
            problems.append(f"placeholders differ: {english!r}")
    assert problems == []
