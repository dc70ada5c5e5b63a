"""The services check the access table themselves: a caller without the right is refused, nothing is written.

Each case below calls one service that changes data (or opens a person's
details) the way a command, a job or a careless door could: with no page in
front of it. Every principal the code's table does not allow for the case's
action is tried, and so are strangers who hold no right there at all (no
actor, a user with no role, force B's admin, another provider's staff, force
B's token, a revoked token). Each must get ``AccessRefused`` and leave the
session and the database as they were: no row added, changed or deleted, no
audit event. The allowed side is what the rest of the suite does every day.
"""

from __future__ import annotations

import tempfile
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale
from sqlalchemy import func, select

from diversion.accounts import access, people, sso
from diversion.accounts import services as accounts
from diversion.accounts.access import ALLOWED, SYSTEM, Action, Actor, Principal
from diversion.accounts.models import ForceMembership, ProviderMembership, ProviderRole, Role, User
from diversion.audit.models import AuditEvent
from diversion.billing import contracts, ledger, payouts
from diversion.billing.models import Contract, LedgerEntry, VatTreatment
from diversion.cases import importer
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import BookedSession, Encounter, Referral, State
from diversion.catalogue import services as catalogue
from diversion.catalogue.models import Offering, Provider
from diversion.eligibility import services as policies
from diversion.eligibility.models import Decision
from diversion.eligibility.views import document_toml
from diversion.errors import AccessRefused
from diversion.extensions import db
from diversion.forces import onboarding
from diversion.forces.services import change_settings, change_status, export_force, sync_tenants
from diversion.jsonapi import tokens
from diversion.jsonapi.tokens import ApiToken, ProviderToken
from diversion.providers import services as providers
from diversion.providers import webhooks
from diversion.tenancy.context import provider_scoped, scoped
from diversion.tenancy.models import ForceStatus, Tenant
from tests.conftest import PASSWORD, TENANTS_DIR, Ref, World, csrf_token, sign_in, started_today

TODAY = datetime.now(UTC).date()
FACTS = {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
         "user_dealer": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
         "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
         "resident_in_force_area": True, "stage": "street", "suitable_for_out_of_court_disposal": True}
STRANGERS = ("nobody", "no_role", "other_force_admin", "other_provider_staff", "other_force_api", "revoked_api")


# ---------------------------------------------------------------- who acts

@dataclass
class Cast:
    """Force A's case work in flight, and the tokens the principals hold (made once per test)."""

    world: World
    decision: uuid.UUID  # eligible, not yet referred
    referral: uuid.UUID  # accepted, to Cranstoun, with a session booked
    session: uuid.UUID  # booked, started an hour ago
    draft: int  # force A's policy draft, by number
    force_token: uuid.UUID
    revoked_token: uuid.UUID
    other_force_token: uuid.UUID
    provider_token: uuid.UUID


def _tenant(world: World) -> Tenant:
    tenant = db.session.get(Tenant, world.a.id)
    assert tenant is not None
    return tenant


def _cranstoun(world: World) -> Provider:
    provider = db.session.get(Provider, world.providers["cranstoun"].id)
    assert provider is not None
    return provider


def _user(world: World, key: str) -> User:
    user = db.session.get(User, world.users[key].id)
    assert user is not None
    return user


def _intake(given_name: str) -> cases.Intake:
    return cases.Intake(Identity("Access", given_name, date(1995, 4, 5)), Contact(), "W1", TODAY, dict(FACTS))


def _cast(app: Flask, world: World) -> Cast:
    """Set the stage as the platform itself (``SYSTEM``), and commit it."""
    with app.app_context():
        admin = accounts.create_user(email="cranstoun-admin@example.org", name="Cranstoun Admin",
                                     password=PASSWORD, actor=SYSTEM)
        db.session.add(ProviderMembership(provider_id=world.providers["cranstoun"].id, user_id=admin.id,
                                          role=ProviderRole.ADMIN))
        world.users["provider_admin"] = Ref(admin.id, email=admin.email)
        with scoped(world.a.id):
            tenant = _tenant(world)
            _, first = cases.record_encounter(tenant, _intake("Robin"), actor=SYSTEM, today=TODAY)
            offering = _offering()
            referral = cases.refer(tenant, first, offering, actor=SYSTEM, today=TODAY)
            cases.transition(tenant, referral, State.ACCEPTED, actor=SYSTEM)
            session, _ = cases.book_session(tenant, referral, starts_at=started_today(),
                                            venue="Digbeth", actor=SYSTEM)
            _, second = cases.record_encounter(tenant, _intake("Sam"), actor=SYSTEM, today=TODAY)
            version = policies.policy_in_force(TODAY)
            assert version is not None
            draft = policies.save_draft(tenant, tomllib.loads(document_toml(version.document)), actor=SYSTEM)
            force_token, _ = tokens.make_force_token(tenant, name="Access", actor=SYSTEM)
            revoked, _ = tokens.make_force_token(tenant, name="Revoked", actor=SYSTEM)
            tokens.revoke_force_token(tenant, revoked, actor=SYSTEM)
        with scoped(world.b.id):
            other = db.session.get(Tenant, world.b.id)
            assert other is not None
            other_token, _ = tokens.make_force_token(other, name="Access", actor=SYSTEM)
        provider_token, _ = tokens.make_provider_token(_cranstoun(world), name="Access", actor=SYSTEM)
        cast = Cast(world, decision=second.id, referral=referral.id, session=session.id, draft=draft.number,
                    force_token=force_token.id, revoked_token=revoked.id, other_force_token=other_token.id,
                    provider_token=provider_token.id)
        db.session.commit()
    return cast


def _actors(cast: Cast) -> dict[str, Actor | None]:
    """Every principal and every stranger, loaded in the session now open."""
    world = cast.world
    with scoped(world.a.id):
        force_token = db.session.get(ApiToken, cast.force_token)
        revoked = db.session.get(ApiToken, cast.revoked_token)
    with scoped(world.b.id):
        other_token = db.session.get(ApiToken, cast.other_force_token)
    with provider_scoped(world.providers["cranstoun"].id):
        provider_token = db.session.get(ProviderToken, cast.provider_token)
    return {
        Principal.FORCE_ADMIN: _user(world, "a_force_admin"),
        Principal.OFFICER: _user(world, "a_officer"),
        Principal.SUPERVISOR: _user(world, "a_supervisor"),
        Principal.PROVIDER_STAFF: _user(world, "provider_staff"),
        Principal.PROVIDER_ADMIN: _user(world, "provider_admin"),
        Principal.PLATFORM_ADMIN: _user(world, "platform_admin"),
        Principal.NATIONAL_LEAD: _user(world, "national_lead"),
        Principal.FORCE_API: force_token,
        Principal.PROVIDER_API: provider_token,
        Principal.SYSTEM: SYSTEM,
        "nobody": None,
        "no_role": _user(world, "no_role"),
        "other_force_admin": _user(world, "b_force_admin"),
        "other_provider_staff": _user(world, "druglink_staff"),
        "other_force_api": other_token,
        "revoked_api": revoked,
    }


# ---------------------------------------------------------------- the services

Call = Callable[[Cast, Any], object]


def _referral(cast: Cast) -> Referral:
    referral = db.session.get(Referral, cast.referral)
    assert referral is not None
    return referral


def _decision(cast: Cast) -> Decision:
    decision = db.session.get(Decision, cast.decision)
    assert decision is not None
    return decision


def _membership(cast: Cast) -> ForceMembership:
    membership = db.session.get(ForceMembership, cast.world.memberships["a_supervisor"].id)
    assert membership is not None
    return membership


def _cranstoun_membership(cast: Cast) -> ProviderMembership:
    membership = db.session.scalar(select(ProviderMembership).where(
        ProviderMembership.user_id == cast.world.users["provider_staff"].id))
    assert membership is not None
    return membership


def _offering() -> Offering:
    offering = db.session.scalar(select(Offering).where(Offering.pathway == "divert"))
    assert offering is not None
    return offering


def _import(cast: Cast, actor: Any) -> object:
    """Import a file of one header row: checked (nothing to refuse there), then refused."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cases.csv"
        path.write_text(importer.template_header() + "\n", encoding="utf-8")
        return importer.import_file(_tenant(cast.world), path, today=TODAY, actor=actor)


SERVICES: dict[Action, Call] = {
    Action.RECORD_ENCOUNTER: lambda c, actor: cases.record_encounter(_tenant(c.world), cases.Intake(
        Identity("Refused", "Alex", date(1990, 1, 2)), Contact(), "W1", TODAY, dict(FACTS)), actor=actor,
        today=TODAY),
    Action.OVERRIDE_DECISION: lambda c, actor: cases.override(
        _tenant(c.world), _decision(c), outcome="not_eligible", pathway=None, reason="Refused", actor=actor),
    Action.REFER: lambda c, actor: cases.refer(_tenant(c.world), _decision(c), _offering(), actor=actor,
                                               today=TODAY),
    Action.MOVE_REFERRAL: lambda c, actor: cases.transition(_tenant(c.world), _referral(c), State.DECLINED,
                                                            actor=actor, reason="Refused"),
    Action.WITHDRAW_REFERRAL: lambda c, actor: cases.move_to(_tenant(c.world), _referral(c), State.WITHDRAWN,
                                                             actor=actor, reason="Refused"),
    Action.BOOK_SESSION: lambda c, actor: cases.book_session(
        _tenant(c.world), _referral(c), starts_at=datetime.now(UTC) + timedelta(days=1), venue="Digbeth",
        actor=actor),
    Action.RECORD_ATTENDANCE: lambda c, actor: cases.record_attendance(
        _tenant(c.world), db.session.get(BookedSession, c.session), attended=True, actor=actor),
    Action.EXPIRE_REFERRALS: lambda c, actor: cases.expire_overdue(_tenant(c.world), today=TODAY + timedelta(days=999),
                                                                   actor=actor),
    Action.IMPORT_CASES: _import,
    Action.EDIT_POLICY: lambda c, actor: policies.discard_draft(
        _tenant(c.world), policies.version(c.draft), actor=actor),
    Action.PUBLISH_POLICY: lambda c, actor: policies.publish(
        _tenant(c.world), policies.version(c.draft), effective_from=TODAY + timedelta(days=1), actor=actor,
        today=TODAY),
    Action.MANAGE_MEMBERS: lambda c, actor: accounts.change_role(_tenant(c.world), _membership(c), Role.OFFICER,
                                                                 actor=actor),
    Action.MANAGE_API_TOKENS: lambda c, actor: tokens.make_force_token(_tenant(c.world), name="Refused",
                                                                       actor=actor),
    Action.MANAGE_OFFERINGS: lambda c, actor: catalogue.withdraw_offering(_tenant(c.world), _offering(),
                                                                          actor=actor),
    Action.MANAGE_SIGN_ON: lambda c, actor: sso.configure_sign_on(
        _tenant(c.world), issuer="https://example.org/idp", client_id="refused", client_secret="refused",
        compulsory=False, new_people="refuse", actor=actor),
    Action.READ_PROVIDER_REFERRALS: lambda c, actor: providers.view_referral(_cranstoun(c.world), _referral(c),
                                                                            actor=actor),
    Action.MANAGE_PROVIDER_TOKENS: lambda c, actor: tokens.make_provider_token(_cranstoun(c.world), name="Refused",
                                                                              actor=actor),
    Action.MANAGE_WEBHOOK: lambda c, actor: webhooks.set_endpoint(_cranstoun(c.world), url="https://example.org/h",
                                                                  actor=actor),
    Action.MANAGE_PROVIDER_PEOPLE: lambda c, actor: people.change_provider_role(
        _cranstoun(c.world), _cranstoun_membership(c), ProviderRole.ADMIN, actor=actor),
    Action.MANAGE_USERS: lambda c, actor: accounts.deactivate_user(_user(c.world, "no_role"), actor=actor),
    Action.EDIT_CATALOGUE: lambda c, actor: catalogue.create_provider({"slug": "refused", "name": "Refused"},
                                                                      actor=actor),
    Action.SYNC_FORCES: lambda c, actor: sync_tenants(TENANTS_DIR, actor=actor),
    Action.CHANGE_FORCE_STATUS: lambda c, actor: change_status(_tenant(c.world), ForceStatus.SUSPENDED, actor=actor),
    Action.ONBOARD_FORCE: lambda c, actor: onboarding.start_draft(onboarding.ForceDetails(
        name="Refused Police", slug="refused", scheme_name="Refused", area="cleveland", languages=["en"],
        completed_code="done", completed_label="Done", not_completed_code="not-done", not_completed_label="Not done",
        not_completed_action="prosecution", brand_colour="#123456"), actor=actor),
    Action.CHANGE_FORCE_SETTINGS: lambda c, actor: change_settings(_tenant(c.world), retention_months=12,
                                                                   brand_colour="#000000", languages=["en"],
                                                                   actor=actor),
    Action.EXPORT_FORCE: lambda c, actor: export_force(_tenant(c.world), actor=actor),
    # The access check comes first: the row, never added to the session, is not looked at.
    Action.CORRECT_LEDGER: lambda c, actor: ledger.reverse(_tenant(c.world), LedgerEntry(tenant_id=c.world.a.id),
                                                           reason="Refused", actor=actor),
    Action.CLOSE_MONTH: lambda c, actor: ledger.charge_monthly_fees(_tenant(c.world), date(2026, 10, 1),
                                                                    actor=actor),
    Action.MANAGE_CONTRACTS: lambda c, actor: contracts.create_contract(_tenant(c.world), contracts.Terms(
        provider_id=c.world.providers["cranstoun"].id, starts_on=TODAY, ends_on=None, monthly_fee_pence=0,
        vat=VatTreatment.EXEMPT, platform_fee_basis_points=0, prices={}), actor=actor),
    Action.MANAGE_PAYOUTS: lambda c, actor: payouts.onboarding_link(
        _cranstoun(c.world), return_url="https://example.org/back", refresh_url="https://example.org/again",
        actor=actor),
}
# Where each service runs: force A's scope, or Cranstoun's (its workspace's pages).
IN_PROVIDER_SCOPE = frozenset({Action.READ_PROVIDER_REFERRALS})


def _refused(action: Action) -> list[str]:
    """Who must be refused ``action``: each principal the code's table leaves out, and the strangers."""
    return [p.value for p in Principal if p not in ALLOWED[action]] + list(STRANGERS)


@pytest.fixture
def cast(app: Flask, world: World) -> Cast:
    return _cast(app, world)


def _written() -> tuple[int, ...]:
    """What the refused call could have written, counted in the open transaction."""
    return tuple(int(db.session.scalar(select(func.count()).select_from(model)) or 0)
                 for model in (AuditEvent, Encounter, Decision, Referral, BookedSession, ApiToken, Offering, Contract))


@pytest.mark.parametrize("action", list(SERVICES), ids=lambda action: action.value)
def test_a_service_refuses_a_caller_without_the_right(app: Flask, cast: Cast, action: Action) -> None:
    refused_by = _refused(action)
    assert set(STRANGERS) < set(refused_by)
    with app.app_context():
        actors = _actors(cast)
        with scoped(cast.world.a.id):
            before = _written()
        for who in refused_by:
            scope = (provider_scoped(cast.world.providers["cranstoun"].id) if action in IN_PROVIDER_SCOPE
                     else scoped(cast.world.a.id))
            with scope, pytest.raises(AccessRefused) as refused:
                SERVICES[action](cast, actors[who])
            assert not db.session.new, who
            assert not db.session.dirty, who
            assert not db.session.deleted, who
            with scoped(cast.world.a.id):
                assert _written() == before, who
            assert refused.value.field == action.value
            assert refused.value.code == 403
            assert refused.value.message.endswith(": your role does not allow it."), refused.value.message


def test_every_refusal_is_said_in_the_readers_language(app: Flask) -> None:
    """Each action's refusal names the action in Welsh to a reader of Welsh, none in English."""
    with app.test_request_context(), force_locale("cy"):
        for action in Action:
            with pytest.raises(AccessRefused) as refused:
                access.require(None, action)
            said = refused.value.message
            assert said.startswith("Ni allwch "), said
            assert said.endswith(": nid yw eich rôl yn caniatáu hyn."), said
            with force_locale("en"):
                english = str(access.WORDS[action])
            assert english not in said, said


def test_every_action_that_a_service_checks_is_tried() -> None:
    """Reading and reviewing are the pages' alone (the audit log's reading too, which on PostgreSQL the
    database also holds to the force in scope or a platform admin, and the national comparison's, which it
    holds to the released figures); every other action has a service that checks it."""
    pages_only = {Action.READ_POLICY, Action.SIMULATE_POLICY, Action.READ_CASES, Action.REVIEW_DECISIONS,
                  Action.READ_FORCE_AUDIT, Action.READ_PLATFORM_AUDIT, Action.READ_BILLING,
                  Action.RECONCILE_BILLING, Action.READ_NATIONAL_FIGURES, Action.READ_FORCE_FIGURES}
    assert set(SERVICES) == set(Action) - pages_only


def test_a_page_answers_a_refusing_service_with_403_and_keeps_nothing(
        app: Flask, client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a service refuse what its page let through, the answer is the 403 page, never a 500."""
    monkeypatch.setattr(access, "may", lambda *_args, **_kwargs: False)
    sign_in(client, world.email("a_officer"))
    page = client.get("/west-midlands/encounters/new")
    assert page.status_code == 200
    today = datetime.now(UTC)
    response = client.post("/west-midlands/encounters/new", data={
        "surname": "Refused", "given_name": "Alex", "date_of_birth": ["1", "2", "1990"], "ethnicity": "W1",
        "offence_on": [str(today.day), str(today.month), str(today.year)], "offence": "possession",
        "substances": ["cannabis"], "drug_class": "B", "personal_use": "yes", "stage": "street",
        "csrf_token": csrf_token(page.text)})
    assert response.status_code == 403
    assert "You cannot do this" in response.text
    assert "You cannot record an encounter in this force" in response.text
    with app.app_context(), scoped(world.a.id):
        assert db.session.scalar(select(func.count()).select_from(Encounter)) == 0


def test_the_api_answers_a_refusing_service_with_a_403_problem(
        app: Flask, client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    with app.app_context(), scoped(world.a.id):
        _row, secret = tokens.make_force_token(_tenant(world), name="Refused", actor=SYSTEM)
        db.session.commit()
    monkeypatch.setattr(access, "may", lambda *_args, **_kwargs: False)
    response = client.post("/api/v1/encounters", headers={"Authorization": f"Bearer {secret}"}, json={
        "person": {"surname": "Refused", "given_name": "Alex", "date_of_birth": "1990-02-01"},
        "ethnicity": "W1", "offence_on": TODAY.isoformat(), "facts": dict(FACTS)})
    assert response.status_code == 403, response.text
    assert response.json == {"errors": [{"field": None, "message":
                                         "You cannot record an encounter in this force: your role does not allow it."}]}
    with app.app_context(), scoped(world.a.id):
        assert db.session.scalar(select(func.count()).select_from(Encounter)) == 0
