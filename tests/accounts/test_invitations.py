"""Invitations as services: who may invite whom, a token shown once and kept as
a hash only, a link that works once and for seven days."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import Engine, Insert, select, text
from sqlalchemy import event as sqlalchemy_event

from diversion.accounts import invitations
from diversion.accounts.access import SYSTEM
from diversion.accounts.invitations import ForceInvitation, ProviderInvitation
from diversion.accounts.models import ForceMembership, ProviderMembership, ProviderRole, Role, User
from diversion.accounts.services import AccountError
from diversion.audit.models import AuditEvent
from diversion.catalogue.models import Provider
from diversion.db import utcnow
from diversion.errors import AccessRefused
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World

NEWCOMER = "newcomer@example.org"


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    with app.test_request_context():
        yield
        db.session.rollback()


def _user(world: World, key: str) -> User:
    user = db.session.get(User, world.users[key].id)
    assert user is not None
    return user


def _force(world: World, which: str = "a") -> Tenant:
    tenant = db.session.get(Tenant, getattr(world, which).id)
    assert tenant is not None
    return tenant


def _provider(slug: str) -> Provider:
    provider = db.session.scalar(select(Provider).where(Provider.slug == slug))
    assert provider is not None
    return provider


def _make_cranstoun_admin(world: World) -> User:
    user = _user(world, "provider_staff")
    membership = db.session.scalar(select(ProviderMembership).where(ProviderMembership.user_id == user.id))
    assert membership is not None
    membership.role = ProviderRole.ADMIN
    db.session.flush()
    return user


def _stored_values(table: str) -> list[str]:
    """Every value of every row of ``table``, as text (what a copy of the database would show)."""
    rows = db.session.execute(text(f"SELECT * FROM {table}")).all()
    return [str(value) for row in rows for value in row]


_CARRIED_ACTION = re.compile(r"row\d+_action")


@pytest.fixture
def audited() -> Iterator[list[str]]:
    """The actions audited during the test, as they are written: events outside any force
    are read by no force (row-level security), so they are caught on their way in."""
    actions: list[str] = []

    def caught(_connection: object, statement: object, _multi: object, params: dict[str, object],
               *_rest: object) -> None:
        # An event is sent alone (its action bound as ``action``) or with other rows, in a statement of
        # their own or one that carries them (``row<number>_action``, ``tenancy.bulk``); no other
        # table has a column of that name.
        if isinstance(params, dict):
            actions.extend(str(value) for name, value in params.items()
                           if _CARRIED_ACTION.fullmatch(name) or (name == "action" and isinstance(statement, Insert)))

    sqlalchemy_event.listen(Engine, "after_execute", caught)
    yield actions
    sqlalchemy_event.remove(Engine, "after_execute", caught)


def test_a_force_admin_invites_and_only_the_hash_is_kept(world: World, ctx: None) -> None:
    with scoped(world.a.id):
        invitation, token = invitations.invite_to_force(
            _force(world), email=" Newcomer@Example.org ", name="  New   Comer ", role=Role.OFFICER,
            actor=_user(world, "a_force_admin"))
        assert len(token) >= 40
        assert invitation.email == NEWCOMER
        assert invitation.name == "New Comer"
        assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert invitation.invited_by_id == world.users["a_force_admin"].id
        assert timedelta(days=6, hours=23) < invitation.expires_at - utcnow() <= timedelta(days=7)
        stored = _stored_values("force_invitations")
        assert invitation.token_hash in stored
        assert not any(token in value for value in stored)
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invitation.created"))
        assert event is not None
        assert event.tenant_id == world.a.id
        assert event.actor_id == world.users["a_force_admin"].id
        assert event.details["email"] == NEWCOMER
        assert event.details["role"] == "officer"
        assert not any(token in str(value) for value in event.details.values())


def test_an_invitation_is_opened_in_its_own_force_only(world: World, ctx: None) -> None:
    with scoped(world.a.id):
        invitation, token = invitations.invite_to_force(_force(world), email=NEWCOMER, name="New Comer",
                                                        role=Role.OFFICER, actor=SYSTEM)
        assert invitations.open_force_invitation(token) is invitation
        assert invitations.open_force_invitation(token + "x") is None
        assert invitations.open_force_invitation("") is None
        assert invitations.open_force_invitation("é" * 20) is None
    with scoped(world.b.id):
        assert invitations.open_force_invitation(token) is None
        assert invitations.find_force_invitation(token) is None


def test_taking_up_gives_the_role_once(world: World, ctx: None) -> None:
    newcomer = User(email=NEWCOMER, name="New Comer", password_hash=None)
    db.session.add(newcomer)
    db.session.flush()
    with scoped(world.a.id):
        invitation, token = invitations.invite_to_force(_force(world), email=NEWCOMER, name="New Comer",
                                                        role=Role.SUPERVISOR, actor=_user(world, "a_force_admin"))
        membership = invitations.take_up_force_invitation(invitation, newcomer)
        assert membership.role is Role.SUPERVISOR
        assert membership.tenant_id == world.a.id
        assert invitation.used_at is not None
        assert invitation.used_by_id == newcomer.id
        assert invitations.open_force_invitation(token) is None
        assert invitations.find_force_invitation(token) is invitation
        with pytest.raises(AccountError, match="used or has expired"):
            invitations.take_up_force_invitation(invitation, newcomer)
        actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == newcomer.id)))
        assert actions == {"invitation.taken_up", "membership.added"}
        roles = db.session.scalars(select(ForceMembership.role).where(ForceMembership.user_id == newcomer.id)).all()
        assert roles == [Role.SUPERVISOR]
    with scoped(world.b.id):
        assert db.session.scalar(select(ForceMembership).where(ForceMembership.user_id == newcomer.id)) is None


def test_an_expired_invitation_opens_nothing(world: World, ctx: None) -> None:
    with scoped(world.a.id):
        invitation, token = invitations.invite_to_force(_force(world), email=NEWCOMER, name="New Comer",
                                                        role=Role.OFFICER, actor=SYSTEM)
        invitation.expires_at = utcnow() - timedelta(seconds=1)
        db.session.flush()
        assert invitations.open_force_invitation(token) is None
        found = invitations.find_force_invitation(token)
        assert found is not None
        assert found.expired
        with pytest.raises(AccountError):
            invitations.take_up_force_invitation(invitation, _user(world, "no_role"))


def test_a_deactivated_account_cannot_take_one_up(world: World, ctx: None) -> None:
    person = _user(world, "no_role")
    person.active = False
    with scoped(world.a.id):
        invitation, _token = invitations.invite_to_force(_force(world), email=person.email, name=person.name,
                                                         role=Role.OFFICER, actor=SYSTEM)
        with pytest.raises(AccountError, match="deactivated"):
            invitations.take_up_force_invitation(invitation, person)
        assert invitation.used_at is None


def test_inviting_again_replaces_the_earlier_link(world: World, ctx: None) -> None:
    with scoped(world.a.id):
        _first, old = invitations.invite_to_force(_force(world), email=NEWCOMER, name="New Comer",
                                                  role=Role.OFFICER, actor=SYSTEM)
        second, new = invitations.invite_to_force(_force(world), email=NEWCOMER, name="New Comer",
                                                  role=Role.SUPERVISOR, actor=SYSTEM)
        assert invitations.open_force_invitation(old) is None
        assert invitations.open_force_invitation(new) is second
        assert list(invitations.pending_force_invitations(_force(world))) == [second]


@pytest.mark.parametrize(("actor", "force", "role", "refusal"), [
    ("a_officer", "a", Role.OFFICER, AccessRefused),
    ("a_supervisor", "a", Role.OFFICER, AccessRefused),
    ("b_force_admin", "a", Role.OFFICER, AccessRefused),  # another force's admin
    ("provider_staff", "a", Role.OFFICER, AccessRefused),
    ("national_lead", "a", Role.FORCE_ADMIN, AccessRefused),
    ("no_role", "a", Role.FORCE_ADMIN, AccessRefused),
    ("a_force_admin", "a", Role.PLATFORM_ADMIN, AccountError),  # not a force role
    ("a_force_admin", "a", Role.NATIONAL_LEAD, AccountError),
    ("platform_admin", "a", Role.OFFICER, AccountError),  # the platform invites admins only
])
def test_who_may_invite_whom_to_a_force(world: World, ctx: None, actor: str, force: str, role: Role,
                                        refusal: type[Exception]) -> None:
    tenant_id = getattr(world, force).id
    with scoped(tenant_id):
        with pytest.raises(refusal):
            invitations.invite_to_force(_force(world, force), email=NEWCOMER, name="New Comer", role=role,
                                        actor=_user(world, actor))
        assert db.session.scalar(select(ForceInvitation)) is None


def test_a_platform_admin_invites_a_forces_admin(world: World, ctx: None) -> None:
    with scoped(world.b.id):
        invitation, token = invitations.invite_to_force(_force(world, "b"), email=NEWCOMER, name="New Comer",
                                                        role=Role.FORCE_ADMIN, actor=_user(world, "platform_admin"))
        assert invitations.open_force_invitation(token) is invitation


@pytest.mark.parametrize(("email", "name", "field"), [
    ("not-an-address", "New Comer", "email"),
    ("", "New Comer", "email"),
    (NEWCOMER, "   ", "name"),
    (NEWCOMER, "x" * 201, "name"),
])
def test_bad_input_names_the_field_and_keeps_nothing(world: World, ctx: None, email: str, name: str,
                                                     field: str) -> None:
    with scoped(world.a.id):
        with pytest.raises(AccountError) as refused:
            invitations.invite_to_force(_force(world), email=email, name=name, role=Role.OFFICER,
                                        actor=_user(world, "a_force_admin"))
        assert refused.value.field == field
        assert db.session.scalar(select(ForceInvitation)) is None


def test_a_member_is_not_invited_to_the_role_they_hold(world: World, ctx: None) -> None:
    with scoped(world.a.id):
        with pytest.raises(AccountError, match="already an officer"):
            invitations.invite_to_force(_force(world), email=world.email("a_officer"), name="A Officer",
                                        role=Role.OFFICER, actor=_user(world, "a_force_admin"))
        # An officer is not invited to be a supervisor: the force admin changes their role instead.
        with pytest.raises(AccountError, match="already a member of West Midlands Police, as an officer") as refused:
            invitations.invite_to_force(_force(world), email=world.email("a_officer"), name="A Officer",
                                        role=Role.SUPERVISOR, actor=_user(world, "a_force_admin"))
        assert refused.value.field == "email"
        assert "use Change role" in refused.value.message
        # A force admin's role is held beside a casework role: either may be invited to the other.
        invitations.invite_to_force(_force(world), email=world.email("a_officer"), name="A Officer",
                                    role=Role.FORCE_ADMIN, actor=_user(world, "a_force_admin"))
        invitations.invite_to_force(_force(world), email=world.email("a_force_admin"), name="A Force Admin",
                                    role=Role.SUPERVISOR, actor=_user(world, "a_force_admin"))


def test_a_withdrawn_invitation_opens_nothing(world: World, ctx: None) -> None:
    with scoped(world.a.id):
        invitation, token = invitations.invite_to_force(_force(world), email=NEWCOMER, name="New Comer",
                                                        role=Role.OFFICER, actor=SYSTEM)
        with pytest.raises(AccessRefused):
            invitations.withdraw_force_invitation(_force(world), invitation, actor=_user(world, "a_officer"))
        invitations.withdraw_force_invitation(_force(world), invitation, actor=_user(world, "a_force_admin"))
        assert invitations.find_force_invitation(token) is None
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invitation.withdrawn")) is not None


# ---------------------------------------------------------------- providers

def test_a_provider_admin_invites_staff_and_the_link_works_once(world: World, ctx: None,
                                                                audited: list[str]) -> None:
    admin = _make_cranstoun_admin(world)
    cranstoun = _provider("cranstoun")
    invitation, token = invitations.invite_to_provider(cranstoun, email=NEWCOMER, name="New Comer",
                                                       role=ProviderRole.STAFF, actor=admin)
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not any(token in value for value in _stored_values("provider_invitations"))
    assert invitations.open_provider_invitation(token) is invitation
    newcomer = User(email=NEWCOMER, name="New Comer", password_hash=None)
    db.session.add(newcomer)
    db.session.flush()
    membership = invitations.take_up_provider_invitation(invitation, newcomer)
    assert membership.provider_id == cranstoun.id
    assert membership.role is ProviderRole.STAFF
    assert invitations.open_provider_invitation(token) is None
    with pytest.raises(AccountError):
        invitations.take_up_provider_invitation(invitation, newcomer)
    actions = set(audited)
    assert {"provider_invitation.created", "provider_invitation.taken_up", "provider_membership.added"} <= actions


@pytest.mark.parametrize(("actor", "slug", "role", "refusal"), [
    ("provider_staff", "cranstoun", ProviderRole.STAFF, AccessRefused),  # staff, not admin
    ("druglink_staff", "cranstoun", ProviderRole.ADMIN, AccessRefused),
    ("a_force_admin", "cranstoun", ProviderRole.STAFF, AccessRefused),
    ("national_lead", "cranstoun", ProviderRole.ADMIN, AccessRefused),
    ("platform_admin", "cranstoun", ProviderRole.STAFF, AccountError),  # the platform invites admins only
])
def test_who_may_invite_whom_to_a_provider(world: World, ctx: None, actor: str, slug: str, role: ProviderRole,
                                           refusal: type[Exception]) -> None:
    with pytest.raises(refusal):
        invitations.invite_to_provider(_provider(slug), email=NEWCOMER, name="New Comer", role=role,
                                       actor=_user(world, actor))
    assert db.session.scalar(select(ProviderInvitation)) is None


def test_a_platform_admin_invites_a_providers_first_admin(world: World, ctx: None) -> None:
    druglink = _provider("druglink")
    invitation, token = invitations.invite_to_provider(druglink, email=NEWCOMER, name="New Comer",
                                                       role=ProviderRole.ADMIN, actor=_user(world, "platform_admin"))
    assert invitations.open_provider_invitation(token) is invitation
    assert invitation.provider.name == druglink.name


def test_a_provider_admin_cannot_invite_someone_who_works_there(world: World, ctx: None) -> None:
    admin = _make_cranstoun_admin(world)
    with pytest.raises(AccountError, match="already works for"):
        invitations.invite_to_provider(_provider("cranstoun"), email=admin.email, name=admin.name,
                                       role=ProviderRole.STAFF, actor=admin)


def test_a_new_account_from_a_link(world: World, ctx: None) -> None:
    with scoped(world.a.id):
        invitation, _token = invitations.invite_to_force(_force(world), email=NEWCOMER, name="New Comer",
                                                         role=Role.OFFICER, actor=SYSTEM)
        with pytest.raises(AccountError) as short:
            invitations.account_from_invitation(invitation, name="New Comer", password="short")
        assert short.value.field == "password"
        user = invitations.account_from_invitation(invitation, name="New Comer", password="a-long-enough-password")
        assert user.email == NEWCOMER
        with pytest.raises(AccountError, match="sign in"):
            invitations.account_from_invitation(invitation, name="Someone Else", password="a-long-enough-password")
