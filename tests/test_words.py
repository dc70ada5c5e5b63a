"""words: counts and articles in words, from one place."""

from __future__ import annotations

import pytest

from diversion.accounts.models import Role
from diversion.words import article, counted, plural


@pytest.mark.parametrize(("number", "noun", "said"), [
    (0, "encounter", "0 encounters"), (1, "encounter", "1 encounter"), (2, "encounter", "2 encounters"),
    (1, "person", "1 person"), (3, "person", "3 people"), (2, "criterion", "2 criteria"),
    (2, "delivery", "2 deliveries"), (2, "day", "2 days"), (2, "mismatch", "2 mismatches"),
    (2, "test case", "2 test cases"), (1200, "referral", "1,200 referrals"), (2, "ledger row", "2 ledger rows"),
])
def test_counted(number: int, noun: str, said: str) -> None:
    assert counted(number, noun) == said


def test_a_plural_given_wins_and_capitals_stay() -> None:
    assert counted(2, "cactus", "cacti") == "2 cacti"
    assert plural("Person") == "People"


@pytest.mark.parametrize(("word", "said"), [
    ("officer", "an officer"), ("supervisor", "a supervisor"), ("admin", "an admin"), ("user", "a user"),
    ("hour", "an hour"), ("force admin", "a force admin"), ("unit", "a unit"),
])
def test_article(word: str, said: str) -> None:
    assert article(word) == said


def test_every_role_reads_right_in_a_sentence() -> None:
    for role in Role:
        said = role.with_article
        assert said.endswith(role.label.lower().split()[-1])
        assert said == article(said.split(" ", 1)[1])
    assert Role.OFFICER.with_article == "an officer"
    assert Role.PROVIDER_STAFF.with_article == "a member of provider staff"
