"""Referral events (``cases.events``): every listener hears each batch of moves, in a fixed order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from diversion.cases.events import Moved, announce, referrals_moved
from diversion.cases.models import State
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World
from tests.providers.conftest import offering_of, provider_ref, refer


def test_listeners_hear_each_batch_in_the_order_of_their_module_and_name(app: Flask, world: World) -> None:
    """Whatever order they were connected in, listeners are called by module and name: the
    platform's own first (billing, insights, providers), as ``diversion`` sorts before ``tests``,
    then these two, ``a_first`` before ``z_last``. A batch of no moves is told to nobody."""
    heard: list[tuple[str, list[Moved], bool]] = []

    def z_last(_sender: Any, *, moves: list[Moved], history: bool) -> None:
        heard.append(("z_last", list(moves), history))

    def a_first(_sender: Any, *, moves: list[Moved], history: bool) -> None:
        heard.append(("a_first", list(moves), history))

    with app.app_context():
        cranstoun = provider_ref("cranstoun")
        offering = offering_of(world.a, cranstoun, "divert")
    referral = refer(app, world.a, offering, surname="Listened")
    move = Moved(referral, cranstoun.id, "divert", State.OFFERED, State.ACCEPTED, uuid.uuid4(), datetime.now(UTC))
    with app.app_context(), scoped(world.a.id), referrals_moved.connected_to(z_last), \
            referrals_moved.connected_to(a_first):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        listeners = sorted(referrals_moved.receivers_for(tenant), key=lambda f: (f.__module__, f.__qualname__))
        assert [f.__module__ for f in listeners[:3]] == ["diversion.billing.ledger", "diversion.insights.services",
                                                        "diversion.providers.feed"]
        announce(tenant, [move], history=True)
        announce(tenant, [])
        db.session.rollback()
    assert heard == [("a_first", [move], True), ("z_last", [move], True)]
