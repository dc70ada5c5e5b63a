"""The audit log records sign-ins, sign-outs, failures and every service change."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text

from diversion.audit.models import AuditEvent
from tests.conftest import World, post_form, sign_in


def _events(database) -> list[dict]:
    """Every event, whatever its force (the app role sees only its force's)."""
    engine = create_engine(database.inspector_url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(AuditEvent.__table__).order_by(AuditEvent.occurred_at)
        ).mappings().all()
    engine.dispose()
    return [dict(row) for row in rows]


def test_sign_in_sign_out_and_failure_are_recorded(database, client, world: World) -> None:
    sign_in(client, "nobody@example.org", "whatever-password")
    sign_in(client, world.email("a_officer"), "wrong-password")
    sign_in(client, world.email("a_officer"))
    post_form(client, "/west-midlands/", "/sign-out")
    events = [e for e in _events(database) if e["action"].startswith("auth.")]
    assert [e["action"] for e in events] == [
        "auth.sign_in_failed", "auth.sign_in_failed", "auth.signed_in", "auth.signed_out",
    ]
    assert events[0]["actor_email"] == "nobody@example.org"
    assert events[0]["actor_id"] is None
    officer_id = world.users["a_officer"].id
    assert events[1]["actor_email"] == world.email("a_officer")
    assert events[2]["actor_id"] == officer_id
    assert events[3]["actor_id"] == officer_id
    assert all(e["occurred_at"] is not None and e["ip_address"] == "127.0.0.1" for e in events)


def test_membership_changes_carry_actor_force_object_and_time(database, client, world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    membership = world.memberships["a_supervisor"]
    post_form(client, "/west-midlands/members/", f"/west-midlands/members/{membership.id}/remove")
    removed = [e for e in _events(database) if e["action"] == "membership.removed"]
    assert len(removed) == 1
    event = removed[0]
    assert event["actor_id"] == world.users["a_force_admin"].id
    assert event["tenant_id"] == world.a.id
    assert event["object_type"] == "membership"
    assert event["object_id"] == str(membership.id)
    assert event["details"]["role"] == "supervisor"


def test_a_force_reads_only_its_own_audit_rows(app: Flask, world: World) -> None:
    from diversion.extensions import db
    from diversion.tenancy.context import scoped

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("row-level security is PostgreSQL's; SQLite has no app role")
        with scoped(world.a.id):
            tenants = set(db.session.scalars(select(AuditEvent.tenant_id)))
        assert tenants == {world.a.id}
        with scoped(None):
            assert db.session.execute(text("SELECT count(*) FROM audit_events")).scalar() == 0
