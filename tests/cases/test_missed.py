"""Where a missed session takes a referral: back to waiting for a booking, or to its end."""

from __future__ import annotations

from datetime import date

import pytest

from diversion.cases import rules
from diversion.cases.models import TRANSITIONS, State, ending_sentence
from diversion.tenancy.models import Tenant

DEADLINE = date(2027, 3, 31)


@pytest.mark.parametrize(("missed", "allowed", "on", "to", "why"), [
    (1, 1, date(2027, 3, 1), State.MISSED, ""),
    (1, 1, DEADLINE, State.MISSED, ""),  # on the deadline day a session can still be booked
    (2, 1, date(2027, 3, 1), State.NOT_COMPLETED, "2 sessions missed, more than the 1 the force allows"),
    (3, 2, date(2027, 3, 1), State.NOT_COMPLETED, "3 sessions missed, more than the 2 the force allows"),
    (1, 0, date(2027, 3, 1), State.NOT_COMPLETED, "the force allows no missed session"),
    (1, 1, date(2027, 4, 1), State.NOT_COMPLETED, "the deadline, 31 March 2027, has passed"),
])
def test_a_miss_waits_for_a_rebooking_until_the_allowance_or_the_deadline(
        missed: int, allowed: int, on: date, to: State, why: str) -> None:
    reached, ending = rules.after_missing(missed, allowed=allowed, deadline=DEADLINE, on=on)
    assert (reached, ending_sentence(ending)) == (to, why)


@pytest.mark.parametrize(("settings", "allowed"), [
    ({}, 1), ({"missed_sessions_allowed": 3}, 3), ({"missed_sessions_allowed": 0}, 0),
    ({"missed_sessions_allowed": "2"}, 1), ({"missed_sessions_allowed": 99}, 1), ({"missed_sessions_allowed": True}, 1),
])
def test_the_force_setting_is_read_with_a_default_of_one(settings: dict[str, object], allowed: int) -> None:
    assert rules.missed_sessions_allowed(Tenant(settings=settings)) == allowed


def test_a_missed_referral_is_open_rebookable_and_reached_only_through_a_booking() -> None:
    assert State.MISSED.is_open
    assert State.MISSED.label == "Missed a session"
    assert TRANSITIONS[State.MISSED] >= {State.BOOKED, State.NOT_COMPLETED, State.WITHDRAWN}
    assert rules.path_to(State.MISSED, sessions=2) == (State.ACCEPTED, State.BOOKED, State.MISSED)
    assert rules.move_broken(State.ACCEPTED, State.MISSED, reason="", sessions_attended=0,
                             sessions_required=2) is not None
    assert State.MISSED in rules.DIVERTED_STATES
    assert State.MISSED not in rules.NOT_ENGAGED_STATES


def test_a_referral_ended_unfinished_after_sessions_attended_goes_through_each_of_them() -> None:
    assert rules.path_to(State.WITHDRAWN, sessions=3, attended=1) == (
        State.ACCEPTED, State.BOOKED, State.ATTENDED, State.WITHDRAWN)
    for goal, attended in ((State.COMPLETED, 1), (State.NOT_COMPLETED, 3), (State.BOOKED, 1)):
        with pytest.raises(ValueError, match="cannot have attended"):
            rules.path_to(goal, sessions=3, attended=attended)
