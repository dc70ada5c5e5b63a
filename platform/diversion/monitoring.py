"""Equality monitoring categories, the same for every force.

Ethnicity uses the 16+1 self-defined categories police forces record (the
2011 census groups plus "not stated"); age bands are the ones national
comparisons use. Both are kept with each decision so that the effect of a
policy on each group can be shown (equality impact).
"""

from __future__ import annotations

from diversion.forms import LazyText
from diversion.forms import lazy_gettext as _l

# Each category's name, in the reader's language when read (Welsh: the 2011 census's Welsh form).
ETHNICITIES: dict[str, LazyText] = {
    "A1": _l("Asian or Asian British: Indian"),
    "A2": _l("Asian or Asian British: Pakistani"),
    "A3": _l("Asian or Asian British: Bangladeshi"),
    "A9": _l("Asian or Asian British: any other Asian background"),
    "B1": _l("Black or Black British: Caribbean"),
    "B2": _l("Black or Black British: African"),
    "B9": _l("Black or Black British: any other Black background"),
    "M1": _l("Mixed: White and Black Caribbean"),
    "M2": _l("Mixed: White and Black African"),
    "M3": _l("Mixed: White and Asian"),
    "M9": _l("Mixed: any other mixed background"),
    "O1": _l("Chinese"),
    "O9": _l("Any other ethnic group"),
    "W1": _l("White: British"),
    "W2": _l("White: Irish"),
    "W9": _l("White: any other White background"),
    "NS": _l("Not stated"),
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
