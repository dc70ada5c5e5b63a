"""Referral events: every change of a referral's state, announced inside the transaction that makes it.

Referrals move through one function (``cases.services``; the import writes
history in bulk), and other features care about every move: the
provider's feed and webhooks (``providers.feed``) now, the billing ledger
next. They subscribe to ``referrals_moved``; ``cases`` never imports them.
A move is announced before its transaction commits, so what a listener
writes commits, or rolls back, with the move itself.

One signal, whose payload is a batch of moves: a page or an API call
announces a batch of one; the import, the demo and generated national data
announce thousands at once, and every listener handles a batch. Moves
marked ``history`` happened in the past (an import): listeners record them
(the feed gives them their place) but do not treat them as news (no
webhook, nothing to bill).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from blinker import Namespace

from diversion.cases.models import State
from diversion.tenancy.models import Tenant

_signals = Namespace()
# Sent by the force (``Tenant``) the referrals are in, with ``moves`` and ``history``.
referrals_moved = _signals.signal("referrals-moved")


@dataclass(frozen=True, slots=True)
class Moved:
    """One move of one referral: the step it took, and what a listener needs without reading it back."""

    referral_id: uuid.UUID
    provider_id: int
    pathway: str
    came_from: State | None  # None: the referral was just offered
    to: State
    transition_id: uuid.UUID
    occurred_at: datetime
    # The day the case was decided (by its decision in force), when the mover has it in hand: the
    # month its figures count in. None: listeners that need it look it up.
    decided_on: date | None = None


def announce(tenant: Tenant, moves: Sequence[Moved], *, history: bool = False) -> None:
    """Tell every listener of ``moves`` in ``tenant``, in the caller's transaction, with the
    force in scope. ``history``: moves of the past (an import), not news.

    The listeners are called in a fixed order, by module and name (a signal alone calls them in no
    set order): what they write goes to the database the same way in every process, in as many
    statements."""
    if moves:
        for listener in sorted(referrals_moved.receivers_for(tenant), key=_named):
            listener(tenant, moves=moves, history=history)


def _named(listener: object) -> tuple[str, str]:
    return getattr(listener, "__module__", ""), getattr(listener, "__qualname__", "")
