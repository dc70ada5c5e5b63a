"""The one place that puts counts and articles into words: "1 encounter", "3 people", "an officer".

Templates use the ``counted`` filter (``{{ n | counted('encounter') }}``) and
``article`` (``{{ role | article }}``); Python code (flash messages, captions
built in views) calls the functions.
"""

from __future__ import annotations

# Plurals that do not follow the rules below.
IRREGULAR = {
    "person": "people", "criterion": "criteria", "child": "children", "analysis": "analyses",
    "was": "were", "is": "are", "has": "have",
}
# Words that start with a vowel letter but not a vowel sound, or the other way about.
A_NOT_AN = ("user", "use", "uni", "one", "eu")
AN_NOT_A = ("hour", "honest", "nhs", "fcr")


def plural(noun: str) -> str:
    """The plural of an English noun (or of the last word of a phrase: "course place": "course places")."""
    head, _, last = noun.rpartition(" ")
    lower = last.lower()
    if lower in IRREGULAR:
        word = IRREGULAR[lower]
        word = word.capitalize() if last[:1].isupper() else word
    elif lower.endswith("y") and lower[-2:-1] not in tuple("aeiou"):
        word = last[:-1] + "ies"
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        word = last + "es"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def counted(number: int, noun: str, many: str | None = None) -> str:
    """``number`` with ``noun`` agreeing: "1 encounter", "2 encounters", "1,200 people".

    ``many`` gives the plural where ``plural`` would get it wrong.
    """
    return f"{number:,} {noun if number == 1 else many or plural(noun)}"


def article(word: str) -> str:
    """``word`` with "a" or "an" before it, by how it sounds: "an officer", "a user", "an hour"."""
    lower = word.lower()
    if lower.startswith(AN_NOT_A):
        return f"an {word}"
    if lower.startswith(A_NOT_AN):
        return f"a {word}"
    return f"{'an' if lower[:1] in tuple('aeiou') else 'a'} {word}"
