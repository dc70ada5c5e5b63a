"""Believable synthetic cases for the demo and the benchmarks.

The shape follows what the schemes report: most people are found with
cannabis (nine in ten in West Midlands), most are young adults, a minority
are under 18, and stop and search brings more young Black people into the
figures than their share of the population. Seeded: the same seed gives the
same cases.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from typing import Any

# (substance, class, weight)
SUBSTANCES = (
    ("cannabis", "B", 880), ("cocaine", "A", 60), ("mdma", "A", 18), ("ketamine", "B", 14),
    ("nitrous_oxide", "C", 10), ("crack_cocaine", "A", 5), ("heroin", "A", 5),
    ("amphetamine", "B", 4), ("synthetic_cannabinoid", "B", 3), ("other", "C", 1),
)
OFFENCES = (("possession", 860), ("possession_with_intent_to_supply", 50), ("supply", 30),
            ("cultivation", 30), ("other", 30))
ETHNICITY = (("W1", 690), ("W9", 50), ("W2", 10), ("B1", 45), ("B2", 45), ("B9", 15), ("M1", 30),
             ("M2", 8), ("M3", 8), ("M9", 8), ("A1", 20), ("A2", 30), ("A3", 8), ("A9", 8),
             ("O1", 3), ("O9", 7), ("NS", 15))
AGGRAVATING = (("violence", 25), ("weapon", 15), ("hate_crime", 5), ("driving", 20),
               ("serious_offence", 8), ("co_accused", 20), ("domestic_abuse", 7))
# Street (pre-arrest) schemes meet people on the street; the others in custody.
STREET_SHARE = {"west-midlands": 0.9, "thames-valley": 0.85}
DEFAULT_STREET_SHARE = 0.15
# Facts an officer sometimes has not got yet, so that some decisions need review.
OFTEN_MISSING = ("admission", "previous_diversions", "resident_in_force_area", "personal_use")


@dataclass(frozen=True)
class SyntheticCase:
    facts: dict[str, Any]
    decided_on: date
    ethnicity: str


class _Weighted:
    """Rows drawn by their weights (each row's last item) as ``random.choices`` draws one (the same
    row for the same state of the generator), with the running totals worked out once, not per draw:
    a national demo draws tens of millions."""

    def __init__(self, table: tuple[tuple[Any, ...], ...]) -> None:
        self.table = table
        self.totals = list(accumulate(row[-1] for row in table))
        self.total = self.totals[-1] + 0.0
        self.last = len(table) - 1

    def __call__(self, rng: random.Random) -> tuple[Any, ...]:
        return self.table[bisect(self.totals, rng.random() * self.total, 0, self.last)]


_SUBSTANCE, _OFFENCE, _ETHNICITY, _AGGRAVATING = map(_Weighted, (SUBSTANCES, OFFENCES, ETHNICITY, AGGRAVATING))
_PREVIOUS = _Weighted(((0, 85), (1, 11), (2, 3), (3, 1)))
_ADMISSION = _Weighted((("admitted", 80), ("no_comment_sufficient_evidence", 12), ("denied", 8)))
_RECENT = _Weighted(((0, 92), (1, 8)))  # within a fortnight, or older


def _age(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.12:
        return rng.randint(12, 17)
    if roll < 0.62:
        return rng.randint(18, 25)
    if roll < 0.87:
        return rng.randint(26, 35)
    return rng.randint(36, 64)


def case(rng: random.Random, street_share: float, on: date) -> SyntheticCase:
    """One case with believable facts."""
    substance, drug_class, _ = _SUBSTANCE(rng)
    offence = _OFFENCE(rng)[0]
    dealing = offence in ("possession_with_intent_to_supply", "supply")
    street = rng.random() < street_share
    previous = _PREVIOUS(rng)[0]
    facts: dict[str, Any] = {
        "age": _age(rng),
        "offence": offence,
        "substances": [substance],
        "drug_class": drug_class,
        "personal_use": (rng.random() < 0.95) if not dealing else (rng.random() < 0.1),
        "user_dealer": dealing and rng.random() < 0.4,
        "admission": _ADMISSION(rng)[0],
        "under_court_order": rng.random() < 0.06,
        "on_bail": rng.random() < 0.05,
        "held_for_court": (not street) and rng.random() < 0.02,
        "detained_mental_health_act": (not street) and rng.random() < 0.005,
        "previous_diversions": previous,
        "previous_non_engagement": previous > 0 and rng.random() < 0.3,
        "offence_age_days": 0 if street else (rng.randint(0, 14), rng.randint(15, 150))[_RECENT(rng)[0]],
        "aggravating_factors": [_AGGRAVATING(rng)[0]] if rng.random() < 0.1 else [],
        "resident_in_force_area": rng.random() < 0.92,
        "stage": "street" if street else "custody",
        "suitable_for_out_of_court_disposal": (not dealing) and rng.random() < 0.95,
    }
    if rng.random() < 0.03:
        facts[rng.choice(OFTEN_MISSING)] = None
    # Stop and search falls more on young Black people: over-represent them among the young.
    ethnicity = _ETHNICITY(rng)[0]
    if facts["age"] < 25 and rng.random() < 0.06:
        ethnicity = rng.choice(("B1", "B2", "M1"))
    return SyntheticCase(facts, on, ethnicity)


def cases(slug: str, count: int, *, start: date, days: int, seed: int | str) -> Iterator[SyntheticCase]:
    """``count`` cases spread over ``days`` days from ``start``, in date order."""
    rng = random.Random(f"{seed}:{slug}")  # noqa: S311 - made-up data, not secrets
    street_share = STREET_SHARE.get(slug, DEFAULT_STREET_SHARE)
    dates = sorted(start + timedelta(days=rng.randrange(days)) for _ in range(count))
    for on in dates:
        yield case(rng, street_share, on)
