"""A referral's steps packed in its row: every step read back exactly as it was written, in a form that
stays put, in a few bytes a step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diversion.accounts.access import CaseSystem
from diversion.cases.models import PackedSteps, State, Transition, Why
from diversion.cases.steps import STATES, SYSTEMS, WHYS, Unpackable, pack, step_key, unpack

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Version 1, as referrals' steps were packed: renumbering a code moves what stored steps mean.
VERSION_1 = ((None, "offered", "accepted", "declined", "booked", "attended", "missed", "completed", "not_completed",
              "withdrawn"),
             (None, "offered", "accepted", "booked", "attended", "did_not_attend", "all_attended", "deadline_passed",
              "imported"),
             (None, "force", "provider"))


def test_the_codes_stay_as_stored_steps_were_packed() -> None:
    assert (STATES, WHYS, SYSTEMS) == VERSION_1
    assert set(STATES[1:]) == {state.value for state in State}
    assert set(WHYS[1:]) == {why.value for why in Why}
    assert set(SYSTEMS[1:]) == {system.value for system in CaseSystem}


def _round_trip(steps: tuple[Transition, ...]) -> tuple[Transition, ...] | None:
    column = PackedSteps()
    return column.process_result_value(column.process_bind_param(steps, None), None)  # type: ignore[arg-type]


_moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),  # noqa: DTZ001 - naive bounds
                        timezones=st.just(UTC))
_details = st.one_of(
    st.none(),
    st.builds(lambda at, venue: {"starts_at": at.isoformat(), "venue": venue}, _moments, st.text(max_size=40)),
    st.dictionaries(st.sampled_from(["file", "row", "sessions", "deadline", "ending", "missed", "allowed"]),
                    st.one_of(st.integers(-10**12, 10**12), st.text(max_size=20)), min_size=1, max_size=4))
_step = st.builds(
    Transition, from_state=st.one_of(st.none(), st.sampled_from(State)), to_state=st.sampled_from(State),
    occurred_at=_moments, actor_id=st.one_of(st.none(), st.integers(1, 2**40)),
    by_system=st.one_of(st.none(), st.sampled_from(CaseSystem)), reason=st.text(max_size=60),
    why=st.one_of(st.none(), st.sampled_from(Why)), why_details=_details,
    key=st.one_of(st.none(), st.uuids()))


@settings(deadline=None, max_examples=300)
@given(st.lists(_step, max_size=12))
def test_any_steps_come_back_as_they_went_in(steps: list[Transition]) -> None:
    assert _round_trip(tuple(steps)) == tuple(steps)


def test_a_chain_of_steps_in_a_few_bytes_each() -> None:
    """An imported referral's seven steps: the details said once, each state left implied by the step before."""
    start = datetime(2024, 3, 2, 12, tzinfo=UTC)
    imported = {"file": "history.csv", "row": 1234}
    steps: list[Transition] = [Transition(None, State.OFFERED, start, 7, None, "", Why.IMPORTED, imported)]
    for number, (to, why) in enumerate([(State.ACCEPTED, Why.IMPORTED), (State.BOOKED, Why.BOOKED),
                                        (State.ATTENDED, Why.ATTENDED), (State.BOOKED, Why.BOOKED),
                                        (State.ATTENDED, Why.ATTENDED), (State.COMPLETED, Why.IMPORTED)]):
        at = start + timedelta(days=30, seconds=number)
        details = imported if why is Why.IMPORTED else {"starts_at": at.isoformat(), "venue": ""}
        steps.append(Transition(steps[-1].to_state, to, at, 7, None, "", why, details))
    packed = pack(steps)
    assert len(packed) <= 100
    assert _round_trip(tuple(steps)) == tuple(steps)


def test_a_step_has_its_key_from_its_referral_and_place_or_the_one_it_kept() -> None:
    referral = uuid.uuid4()
    kept = uuid.uuid4()
    assert step_key(referral, 0) == step_key(referral, 0) != step_key(referral, 1)
    assert step_key(referral, 3, kept) == kept
    step = Transition(None, State.OFFERED, EPOCH, referral_id=referral, position=2)
    assert step.id == step_key(referral, 2)
    with pytest.raises(ValueError, match="its referral"):
        _ = Transition(None, State.OFFERED, EPOCH).id


@pytest.mark.parametrize("data", [bytes([2]), bytes([1, 0x10]), bytes([1, 0xF0, 0, 0]), bytes([1, 0x10, 0x20, 0, 9])])
def test_what_pack_did_not_write_is_refused(data: bytes) -> None:
    with pytest.raises(Unpackable):
        unpack(data)


def test_no_steps_are_no_bytes_to_read() -> None:
    assert unpack(b"") == []
    assert unpack(pack([])) == []
