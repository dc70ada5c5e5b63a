"""Equality monitoring categories, the same for every force.

Ethnicity uses the 16+1 self-defined categories police forces record (the
2011 census groups plus "not stated"); age bands are the ones national
comparisons use. Both are kept with each decision so that the effect of a
policy on each group can be shown (equality impact).
"""

from __future__ import annotations

ETHNICITIES: dict[str, str] = {
    "A1": "Asian or Asian British: Indian",
    "A2": "Asian or Asian British: Pakistani",
    "A3": "Asian or Asian British: Bangladeshi",
    "A9": "Asian or Asian British: any other Asian background",
    "B1": "Black or Black British: Caribbean",
    "B2": "Black or Black British: African",
    "B9": "Black or Black British: any other Black background",
    "M1": "Mixed: White and Black Caribbean",
    "M2": "Mixed: White and Black African",
    "M3": "Mixed: White and Asian",
    "M9": "Mixed: any other mixed background",
    "O1": "Chinese",
    "O9": "Any other ethnic group",
    "W1": "White: British",
    "W2": "White: Irish",
    "W9": "White: any other White background",
    "NS": "Not stated",
}

AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("10-17", 10, 17),
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55+", 55, None),
)
UNKNOWN_BAND = "unknown"


def age_band(age: int | None) -> str:
    """The band an age falls in; ``unknown`` when the age is not known."""
    if age is None:
        return UNKNOWN_BAND
    for name, low, high in AGE_BANDS:
        if age >= low and (high is None or age <= high):
            return name
    return UNKNOWN_BAND
