"""A force's lifecycle: synced forces are active; a force that is not active
closes its pages to its members, but not to the platform admin."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import create_engine, select

from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import Role, User
from diversion.audit.models import AuditEvent
from diversion.cli import main
from diversion.extensions import db
from diversion.forces.services import ForceError, change_status
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, NonCompletionAction, Tenant
from tests.conftest import World, sign_in


def _force(slug: str) -> Tenant:
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    assert tenant is not None
    return tenant


def _suspend(app: Flask, slug: str) -> None:
    with app.app_context():
        change_status(_force(slug), ForceStatus.SUSPENDED, actor=SYSTEM)
        db.session.commit()


def test_synced_forces_are_active_with_their_area_and_outcome_codes(app: Flask, world: World) -> None:
    with app.app_context():
        durham = _force("durham")
        assert durham.status is ForceStatus.ACTIVE
        assert durham.area == "durham"
        assert (durham.completed_code, durham.completed_label) == ("outcome-22", "No further action (Outcome 22)")
        assert (durham.not_completed_code, durham.not_completed_label) == ("prosecution", "Prosecution resumes")
        assert durham.not_completed_action is NonCompletionAction.PROSECUTION
        assert "outcomes" not in durham.settings


def test_a_status_change_is_recorded_and_a_pointless_one_refused(app: Flask, database, world: World) -> None:
    with app.app_context():
        durham = _force("durham")
        with pytest.raises(ForceError, match="already active") as already:
            change_status(durham, ForceStatus.ACTIVE, actor=SYSTEM)
        assert already.value.field == "status"
        with pytest.raises(ForceError, match="suspend it instead"):
            change_status(durham, ForceStatus.DRAFT, actor=SYSTEM)
        change_status(durham, ForceStatus.SUSPENDED, actor=SYSTEM)
        db.session.commit()
    # Read as the owner: the app role sees only a force's own audit rows.
    engine = create_engine(database.inspector_url)
    with engine.connect() as connection:
        details = connection.scalars(select(AuditEvent.__table__.c.details)
                                     .where(AuditEvent.__table__.c.action == "tenant.status_changed")).all()
    engine.dispose()
    # Durham's three members are signed out (see tests/forces/test_console.py).
    assert details == [{"from": "active", "to": "suspended", "sessions_ended": 3}]


def test_a_suspended_force_closes_its_pages_to_its_members(app: Flask, client, world: World) -> None:
    _suspend(app, "west-midlands")
    sign_in(client, world.email("a_officer"))
    home = client.get("/west-midlands/")
    assert home.status_code == 403
    assert "closed for now" in home.text
    assert client.get("/west-midlands/referrals").status_code == 403
    # Another force's pages are untouched, and to its members the closed
    # force is still not there at all.
    other_client = app.test_client()
    sign_in(other_client, world.email("b_officer"))
    assert other_client.get("/durham/").status_code == 200
    other = other_client.get("/west-midlands/")
    assert other.status_code == 404
    assert "closed" not in other.text


def test_a_draft_force_says_it_is_being_set_up(app: Flask, client, world: World) -> None:
    with app.app_context():
        _force("durham").status = ForceStatus.DRAFT
        db.session.commit()
    sign_in(client, world.email("b_force_admin"))
    page = client.get("/durham/members/")
    assert page.status_code == 403
    assert "being set up" in page.text


def test_the_platform_admin_still_sees_a_closed_force(app: Flask, client, world: World) -> None:
    with app.app_context():
        tenant = _force("west-midlands")
        admin = db.session.get(User, world.users["platform_admin"].id)
        assert admin is not None
        with scoped(tenant.id):
            accounts.add_membership(tenant, admin, Role.FORCE_ADMIN, actor=SYSTEM)
        db.session.commit()
    _suspend(app, "west-midlands")
    sign_in(client, world.email("platform_admin"))
    assert client.get("/west-midlands/").status_code == 200
    console = client.get("/admin/")
    assert "Suspended" in console.text


def test_cli_moves_a_force_and_refuses_a_pointless_move(app: Flask, world: World) -> None:
    from flask.cli import ScriptInfo

    runner = CliRunner()
    info = ScriptInfo(create_app=lambda: app)
    done = runner.invoke(main, ["tenants", "status", "durham", "suspended"], obj=info)
    assert done.exit_code == 0, done.output
    assert "durham: suspended" in done.output
    again = runner.invoke(main, ["tenants", "status", "durham", "suspended"], obj=info)
    assert again.exit_code == 1
    assert "Nothing was changed. Durham Constabulary is already suspended." in again.output
    with app.app_context():
        assert _force("durham").status is ForceStatus.SUSPENDED
