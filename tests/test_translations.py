"""The Welsh catalogue is complete: every string marked for translation is in it, and each has
Welsh that is neither empty, nor fuzzy, nor the English unchanged, with the same placeholders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from diversion.config import REPO_ROOT
from diversion.words import COUNTED

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
        # A count has its English in two forms and its Welsh in six (zero, one, two, few, many, other).
        englishes = tuple(message.id) if isinstance(message.id, tuple | list) else (message.id,)
        welshes = tuple(message.string) if isinstance(message.string, tuple | list) else (message.string,)
        english = str(englishes[0])
        if not all(str(welsh or "").strip() for welsh in welshes):
            problems.append(f"no Welsh: {english!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {english!r}")
        elif all(welsh in englishes for welsh in welshes) and english not in same:
            problems.append(f"the English unchanged: {english!r}")
        elif any(sorted(PLACEHOLDER.findall(welsh)) != sorted(PLACEHOLDER.findall(english)) for welsh in welshes):
            problems.append(f"placeholders differ: {english!r}")
    assert problems == []


def test_a_count_has_every_welsh_form() -> None:
    with WELSH.open("rb") as po:
        catalogue = read_po(po)
    assert catalogue.num_plurals == 6
    counts = [message for message in catalogue if message.pluralizable]
    assert counts, "no count is marked for translation"
    assert [m.id for m in counts if len(m.string) != catalogue.num_plurals] == []


def test_every_noun_counted_on_a_page_is_counted_in_welsh() -> None:
    """Each ``counted('noun')`` in the templates and the code has its plural message."""
    used = set()
    noun = re.compile(r"(?:counted|capped|total_text|count)\((?:[^,()]+, )?['\"]([a-z ]+)['\"]")
    for path in (REPO_ROOT / "platform" / "diversion").rglob("*"):
        if path.suffix in {".html", ".py"}:
            used |= set(noun.findall(path.read_text()))
    assert used, "no counted noun found: the pattern is out of date"
    assert used - set(COUNTED) == set()
