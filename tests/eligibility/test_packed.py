"""A decision's facts packed: every value of the catalogue kept exactly, in a layout that stays put."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diversion.eligibility.fields import FIELDS, LARGEST_WHOLE, Kind
from diversion.eligibility.packed import PLACE, SIZE, Unpackable, pack_facts, unpack_facts

# Layout 1, as stored decisions were packed: changing the catalogue's fields or the order of a
# field's values moves what old rows mean, and needs a new layout (and a migration) instead.
LAYOUT_1 = (
    ("age", 1, ()), ("offence", 5, ("possession", "possession_with_intent_to_supply", "supply", "cultivation",
                                    "other")),
    ("substances", 6, ("cannabis", "cocaine", "crack_cocaine", "heroin", "mdma", "ketamine", "amphetamine",
                       "synthetic_cannabinoid", "nitrous_oxide", "other")),
    ("drug_class", 8, ("A", "B", "C")), ("personal_use", 9, ()), ("user_dealer", 10, ()),
    ("admission", 11, ("admitted", "no_comment_sufficient_evidence", "denied")), ("under_court_order", 12, ()),
    ("on_bail", 13, ()), ("held_for_court", 14, ()), ("detained_mental_health_act", 15, ()),
    ("previous_diversions", 16, ()), ("previous_non_engagement", 20, ()), ("offence_age_days", 21, ()),
    ("aggravating_factors", 25, ("violence", "weapon", "hate_crime", "driving", "serious_offence", "co_accused",
                                 "domestic_abuse")),
    ("resident_in_force_area", 27, ()), ("stage", 28, ("street", "custody")),
    ("suitable_for_out_of_court_disposal", 29, ()),
)


def test_the_layout_stays_as_stored_decisions_were_packed() -> None:
    assert [(name, place.offset, place.field.values) for name, place in PLACE.items()] == list(LAYOUT_1)
    assert SIZE == 30


def _value(name: str) -> st.SearchStrategy[Any]:
    field = FIELDS[name]
    if field.kind is Kind.INT:
        return st.integers(field.minimum or 0, LARGEST_WHOLE)
    if field.kind is Kind.BOOL:
        return st.booleans()
    if field.kind is Kind.CHOICE:
        return st.sampled_from(field.values)
    return st.lists(st.sampled_from(field.values), unique=True).map(sorted)


@given(st.fixed_dictionaries({}, optional={name: _value(name) for name in FIELDS}))
def test_known_facts_come_back_as_they_were_kept(facts: dict[str, Any]) -> None:
    packed = pack_facts(facts)
    assert len(packed) == SIZE
    assert unpack_facts(packed) == facts


def test_nothing_known_and_every_list_empty_are_different() -> None:
    assert unpack_facts(pack_facts({})) == {}
    assert unpack_facts(pack_facts({"substances": [], "aggravating_factors": []})) == {
        "substances": [], "aggravating_factors": []}


@pytest.mark.parametrize("facts", [{"shoe_size": 9}, {"age": -1}, {"age": 2 ** 31}, {"age": True},
                                   {"stage": "garden"}, {"substances": ["tea"]}, {"personal_use": 1}])
def test_what_the_catalogue_does_not_allow_is_refused(facts: dict[str, Any]) -> None:
    with pytest.raises(Unpackable):
        pack_facts(facts)


@pytest.mark.parametrize("data", [b"", bytes(SIZE), b"\x01" * (SIZE + 1)])
def test_bytes_that_are_not_packed_facts_are_refused(data: bytes) -> None:
    with pytest.raises(Unpackable):
        unpack_facts(data)
