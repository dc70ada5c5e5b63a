"""The force home page: its counts come from COUNT queries (as many statements for thirty referrals as for
one) and each count links to its list, filtered."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from diversion.cases.models import Referral, State
from diversion.extensions import db
from diversion.tenancy.context import scoped
from tests.conftest import World, sign_in, statements_of
from tests.providers.conftest import Made, make_referral, today


def _overdue(app: Flask, made: Made, state: State = State.ACCEPTED) -> None:
    with app.app_context(), scoped(made.tenant_id):
        db.session.execute(update(Referral).where(Referral.id == made.id)
                           .values(state=state, deadline=today() - timedelta(days=2)))
        db.session.commit()


def test_the_counts_are_counted_not_loaded_and_link_to_their_lists(app: Flask, client: FlaskClient,
                                                                   world: World) -> None:
    late = make_referral(app, "west-midlands", "cranstoun-divert", "Latecomer", "07700 900808")
    _overdue(app, late)
    sign_in(client, world.email("a_supervisor"))
    one, page = statements_of(app, client, "/west-midlands/")
    assert "<strong>1 referral</strong> open past its deadline" in page
    assert 'href="/west-midlands/referrals?state=accepted"' in page
    assert "overdue=yes" in page  # "see them" opens the list of the overdue, not the whole list
    assert "<strong>0 decisions</strong> waiting for a supervisor" in page
    for number in range(29):
        made = make_referral(app, "west-midlands", "cranstoun-divert", f"Person{number}", "07700 900100")
        if number % 2:
            _overdue(app, made)
        if number % 3 == 0:
            _overdue(app, made, State.COMPLETED)  # closed: past its deadline, but not overdue
    thirty, page = statements_of(app, client, "/west-midlands/")
    assert "<strong>10 referrals</strong> open past their deadline" in page  # 1 + the 9 odd numbers not divisible by 3
    assert thirty == one


def test_a_count_past_the_cap_says_more_than(app: Flask, client: FlaskClient, world: World, monkeypatch) -> None:
    for number in range(3):
        _overdue(app, make_referral(app, "west-midlands", "cranstoun-divert", f"Late{number}", "07700 900100"))
    monkeypatch.setattr("diversion.listing.COUNT_CAP", 2)
    sign_in(client, world.email("a_supervisor"))
    page = client.get("/west-midlands/").text
    assert "<strong>More than 2 referrals</strong> open past their deadline" in page
    assert ">More than 2</span>" in page  # the accepted ones' figure
    monkeypatch.setattr("diversion.listing.COUNT_CAP", 3)
    page = client.get("/west-midlands/").text
    assert "<strong>3 referrals</strong> open past their deadline" in page
