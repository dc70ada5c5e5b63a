"""Who may do what: one table of actions and principals, read by pages and services alike.

An *action* is a thing that changes data or reads data a person would not
want shown to anyone (case work, a provider's referrals, the members of a
force). A *principal* is who asks: a force role (force admin, officer,
supervisor) in the force at hand, a provider role (staff, admin) in the
provider at hand, a platform role (platform admin, national lead), an API
token (a force system's, a provider system's), or the platform itself
(``SYSTEM``: the command line, the demo, the importer and the jobs).

``ALLOWED`` is the table. Pages check it before their view runs (a 403
page), and every service that changes data checks it again for its
``actor`` (``require``), so that no door (a page, the API, a command, a job)
can skip it: a caller without the right is refused with ``AccessRefused``
before anything is written. The national lead appears in one line alone,
reading the national comparison's figures: aggregates only, never a person.

One principal is not held through a stored role: while a force is a draft
(being set up, ``forces.onboarding``), a platform admin is its force admin,
so that the one who sets it up can write its first policy in the policy
console, choose its offerings and invite its first people, through the
force's own pages and services. The moment the force opens, only its
members are its force admins (``setting_up``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, Union

from flask import abort, g
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_login import current_user, login_required
from sqlalchemy import select

from diversion.accounts.models import ForceMembership, ProviderMembership, ProviderRole, Role, User
from diversion.errors import AccessRefused
from diversion.extensions import db
from diversion.tenancy.models import ForceStatus, Tenant

if TYPE_CHECKING:
    from diversion.jsonapi.tokens import ApiToken, ProviderToken

F = TypeVar("F", bound=Callable[..., Any])


class Principal(enum.StrEnum):
    """Who asks for an action."""

    FORCE_ADMIN = "force_admin"
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    PROVIDER_STAFF = "provider_staff"
    PROVIDER_ADMIN = "provider_admin"
    PLATFORM_ADMIN = "platform_admin"
    NATIONAL_LEAD = "national_lead"
    FORCE_API = "force_api"  # a force system's bearer token
    PROVIDER_API = "provider_api"  # a provider system's bearer token
    SYSTEM = "system"  # the platform itself: command line, demo, importer, jobs


class Action(enum.StrEnum):
    """What a principal may be allowed to do."""

    # A force's eligibility policy.
    READ_POLICY = "read_policy"
    EDIT_POLICY = "edit_policy"  # save, test or discard a draft
    PUBLISH_POLICY = "publish_policy"
    SIMULATE_POLICY = "simulate_policy"  # replays the force's past cases
    # Case work.
    RECORD_ENCOUNTER = "record_encounter"
    READ_CASES = "read_cases"  # people, decisions, referrals of the force
    REVIEW_DECISIONS = "review_decisions"
    OVERRIDE_DECISION = "override_decision"
    REFER = "refer"
    MOVE_REFERRAL = "move_referral"  # accept, decline, complete, not completed
    WITHDRAW_REFERRAL = "withdraw_referral"  # the force's decision alone
    BOOK_SESSION = "book_session"
    RECORD_ATTENDANCE = "record_attendance"
    EXPIRE_REFERRALS = "expire_referrals"
    IMPORT_CASES = "import_cases"
    # A force's own set-up.
    MANAGE_MEMBERS = "manage_members"
    MANAGE_API_TOKENS = "manage_api_tokens"
    MANAGE_OFFERINGS = "manage_offerings"
    CHANGE_FORCE_SETTINGS = "change_force_settings"  # retention, brand colour, languages
    EXPORT_FORCE = "export_force"  # the force's file, downloaded
    READ_FORCE_AUDIT = "read_force_audit"  # who saw or changed what in the force
    MANAGE_SIGN_ON = "manage_sign_on"  # the force's single sign-on settings
    # A provider's work and set-up.
    READ_PROVIDER_REFERRALS = "read_provider_referrals"
    MANAGE_PROVIDER_TOKENS = "manage_provider_tokens"
    MANAGE_WEBHOOK = "manage_webhook"
    MANAGE_PROVIDER_PEOPLE = "manage_provider_people"  # invite, change roles, remove
    MANAGE_PAYOUTS = "manage_payouts"  # the provider's Stripe connected account
    # Billing.
    READ_BILLING = "read_billing"  # contracts, statements: a force's, a provider's, or all
    MANAGE_CONTRACTS = "manage_contracts"
    CORRECT_LEDGER = "correct_ledger"  # reverse a ledger row, with a reason
    CLOSE_MONTH = "close_month"  # lock a month, bill it on Stripe
    RECONCILE_BILLING = "reconcile_billing"  # ledger, invoice lines and payments compared
    # The platform.
    MANAGE_USERS = "manage_users"  # accounts, platform roles, a member added to any force
    EDIT_CATALOGUE = "edit_catalogue"  # providers and courses
    SYNC_FORCES = "sync_forces"  # forces written from their files
    CHANGE_FORCE_STATUS = "change_force_status"  # open, suspend or reopen a force
    ONBOARD_FORCE = "onboard_force"  # set up a new force as a draft, finish it, or discard it
    READ_PLATFORM_AUDIT = "read_platform_audit"  # every force's events, sign-ins, console changes
    # The national comparison: released aggregates only.
    READ_NATIONAL_FIGURES = "read_national_figures"  # every force's figures
    READ_FORCE_FIGURES = "read_force_figures"  # the force's own, against every force's


FORCE_STAFF = frozenset({Principal.OFFICER, Principal.SUPERVISOR})
FORCE_MEMBERS = FORCE_STAFF | {Principal.FORCE_ADMIN}
PROVIDER_PEOPLE = frozenset({Principal.PROVIDER_STAFF, Principal.PROVIDER_ADMIN})
SYSTEM_ONLY = frozenset({Principal.SYSTEM})

ALLOWED: Mapping[Action, frozenset[Principal]] = {
    Action.READ_POLICY: FORCE_MEMBERS,
    Action.EDIT_POLICY: frozenset({Principal.FORCE_ADMIN, Principal.SYSTEM}),
    Action.PUBLISH_POLICY: frozenset({Principal.FORCE_ADMIN, Principal.SYSTEM}),
    Action.SIMULATE_POLICY: frozenset({Principal.FORCE_ADMIN, Principal.SYSTEM}),
    Action.RECORD_ENCOUNTER: FORCE_STAFF | {Principal.FORCE_API, Principal.SYSTEM},
    Action.READ_CASES: FORCE_MEMBERS | {Principal.FORCE_API, Principal.SYSTEM},
    Action.REVIEW_DECISIONS: frozenset({Principal.SUPERVISOR}),
    Action.OVERRIDE_DECISION: frozenset({Principal.SUPERVISOR}),
    Action.REFER: FORCE_STAFF | {Principal.FORCE_API, Principal.SYSTEM},
    Action.MOVE_REFERRAL: FORCE_STAFF | PROVIDER_PEOPLE | {Principal.FORCE_API, Principal.PROVIDER_API,
                                                           Principal.SYSTEM},
    Action.WITHDRAW_REFERRAL: FORCE_STAFF | {Principal.FORCE_API, Principal.SYSTEM},
    Action.BOOK_SESSION: FORCE_STAFF | PROVIDER_PEOPLE | {Principal.FORCE_API, Principal.PROVIDER_API,
                                                          Principal.SYSTEM},
    Action.RECORD_ATTENDANCE: FORCE_STAFF | PROVIDER_PEOPLE | {Principal.FORCE_API, Principal.PROVIDER_API,
                                                               Principal.SYSTEM},
    Action.EXPIRE_REFERRALS: SYSTEM_ONLY,
    Action.IMPORT_CASES: SYSTEM_ONLY,
    Action.MANAGE_MEMBERS: frozenset({Principal.FORCE_ADMIN, Principal.SYSTEM}),
    Action.MANAGE_API_TOKENS: frozenset({Principal.FORCE_ADMIN, Principal.SYSTEM}),
    Action.MANAGE_OFFERINGS: frozenset({Principal.FORCE_ADMIN, Principal.SYSTEM}),
    Action.CHANGE_FORCE_SETTINGS: frozenset({Principal.FORCE_ADMIN, Principal.PLATFORM_ADMIN, Principal.SYSTEM}),
    Action.EXPORT_FORCE: frozenset({Principal.FORCE_ADMIN, Principal.PLATFORM_ADMIN, Principal.SYSTEM}),
    Action.READ_FORCE_AUDIT: frozenset({Principal.FORCE_ADMIN, Principal.PLATFORM_ADMIN}),
    Action.MANAGE_SIGN_ON: frozenset({Principal.FORCE_ADMIN, Principal.PLATFORM_ADMIN, Principal.SYSTEM}),
    Action.READ_PROVIDER_REFERRALS: PROVIDER_PEOPLE | {Principal.PROVIDER_API},
    Action.MANAGE_PROVIDER_TOKENS: frozenset({Principal.PROVIDER_ADMIN, Principal.SYSTEM}),
    Action.MANAGE_WEBHOOK: frozenset({Principal.PROVIDER_ADMIN, Principal.SYSTEM}),
    Action.MANAGE_PROVIDER_PEOPLE: frozenset({Principal.PROVIDER_ADMIN, Principal.SYSTEM}),
    Action.MANAGE_PAYOUTS: frozenset({Principal.PROVIDER_ADMIN, Principal.SYSTEM}),
    Action.READ_BILLING: frozenset({Principal.FORCE_ADMIN, Principal.PROVIDER_ADMIN, Principal.PLATFORM_ADMIN,
                                    Principal.SYSTEM}),
    Action.MANAGE_CONTRACTS: frozenset({Principal.PLATFORM_ADMIN, Principal.SYSTEM}),
    Action.CORRECT_LEDGER: frozenset({Principal.PLATFORM_ADMIN}),
    Action.CLOSE_MONTH: frozenset({Principal.PLATFORM_ADMIN, Principal.SYSTEM}),
    Action.RECONCILE_BILLING: frozenset({Principal.PLATFORM_ADMIN, Principal.SYSTEM}),
    Action.MANAGE_USERS: frozenset({Principal.PLATFORM_ADMIN, Principal.SYSTEM}),
    Action.EDIT_CATALOGUE: frozenset({Principal.PLATFORM_ADMIN, Principal.SYSTEM}),
    Action.SYNC_FORCES: SYSTEM_ONLY,
    Action.CHANGE_FORCE_STATUS: frozenset({Principal.PLATFORM_ADMIN, Principal.SYSTEM}),
    Action.ONBOARD_FORCE: frozenset({Principal.PLATFORM_ADMIN, Principal.SYSTEM}),
    Action.READ_PLATFORM_AUDIT: frozenset({Principal.PLATFORM_ADMIN}),
    Action.READ_NATIONAL_FIGURES: frozenset({Principal.NATIONAL_LEAD, Principal.PLATFORM_ADMIN, Principal.SYSTEM}),
    Action.READ_FORCE_FIGURES: frozenset({Principal.FORCE_ADMIN}),
}

# What the refusal says, by action: "You cannot <this>."
WORDS: Mapping[Action, LazyString] = {
    Action.READ_POLICY: _l("read this force's policy"),
    Action.EDIT_POLICY: _l("change this force's policy"),
    Action.PUBLISH_POLICY: _l("publish this force's policy"),
    Action.SIMULATE_POLICY: _l("simulate this force's policy on its past cases"),
    Action.RECORD_ENCOUNTER: _l("record an encounter in this force"),
    Action.READ_CASES: _l("see this force's cases"),
    Action.REVIEW_DECISIONS: _l("review this force's decisions"),
    Action.OVERRIDE_DECISION: _l("override a decision in this force"),
    Action.REFER: _l("refer in this force"),
    Action.MOVE_REFERRAL: _l("move this referral on"),
    Action.WITHDRAW_REFERRAL: _l("withdraw this referral"),
    Action.BOOK_SESSION: _l("book a session of this referral"),
    Action.RECORD_ATTENDANCE: _l("record attendance for this referral"),
    Action.EXPIRE_REFERRALS: _l("end overdue referrals"),
    Action.IMPORT_CASES: _l("import case records"),
    Action.MANAGE_MEMBERS: _l("manage this force's members"),
    Action.MANAGE_API_TOKENS: _l("manage this force's API tokens"),
    Action.MANAGE_OFFERINGS: _l("manage this force's courses"),
    Action.CHANGE_FORCE_SETTINGS: _l("change this force's settings"),
    Action.EXPORT_FORCE: _l("download this force's configuration"),
    Action.READ_FORCE_AUDIT: _l("see this force's audit log"),
    Action.MANAGE_SIGN_ON: _l("change this force's single sign-on"),
    Action.READ_PROVIDER_REFERRALS: _l("see this provider's referrals"),
    Action.MANAGE_PROVIDER_TOKENS: _l("manage this provider's API tokens"),
    Action.MANAGE_WEBHOOK: _l("manage this provider's webhook"),
    Action.MANAGE_PROVIDER_PEOPLE: _l("manage this provider's people"),
    Action.MANAGE_PAYOUTS: _l("set up this provider's payouts"),
    Action.READ_BILLING: _l("see these contracts and statements"),
    Action.MANAGE_CONTRACTS: _l("change billing contracts"),
    Action.CORRECT_LEDGER: _l("correct the ledger"),
    Action.CLOSE_MONTH: _l("close a billing month"),
    Action.RECONCILE_BILLING: _l("reconcile billing"),
    Action.MANAGE_USERS: _l("manage user accounts"),
    Action.EDIT_CATALOGUE: _l("change the course catalogue"),
    Action.SYNC_FORCES: _l("write forces from their files"),
    Action.CHANGE_FORCE_STATUS: _l("open, suspend or reopen a force"),
    Action.ONBOARD_FORCE: _l("set up a new force"),
    Action.READ_PLATFORM_AUDIT: _l("see the platform's audit log"),
    Action.READ_NATIONAL_FIGURES: _l("see the national comparison"),
    Action.READ_FORCE_FIGURES: _l("see this force's figures"),
}


@dataclass(frozen=True)
class System:
    """The platform acting on its own (a command, the demo, an import, a job): no person."""

    name: str

    @property
    def person(self) -> None:
        return None


SYSTEM = System("system")

# Who can be the actor of a service: a person, a system's token, or the platform itself.
Actor: TypeAlias = Union[User, "ApiToken", "ProviderToken", System]


def allows(principals: Iterable[Principal], *actions: Action) -> bool:
    """True when one of ``principals`` may do one of ``actions``."""
    held = frozenset(principals)
    return any(ALLOWED[action] & held for action in actions)


def for_role(role: Role | ProviderRole) -> Principal:
    """The principal a stored role makes its holder."""
    if isinstance(role, ProviderRole):
        return Principal.PROVIDER_ADMIN if role is ProviderRole.ADMIN else Principal.PROVIDER_STAFF
    return Principal(role.value)


def setting_up(user: User, tenant_id: int | None) -> bool:
    """Whether ``user`` is a platform admin and the force ``tenant_id`` a draft:
    then they act as its force admin (see the module's docstring)."""
    if tenant_id is None or not user.active or Role.PLATFORM_ADMIN not in user.platform_roles:
        return False
    tenant = db.session.get(Tenant, tenant_id)
    return tenant is not None and tenant.status is ForceStatus.DRAFT


def _user_principals(user: User, tenant_id: int | None, provider_id: int | None) -> Iterator[frozenset[Principal]]:
    """A user's principals, cheapest first: platform roles, then the provider's, then the force's."""
    if not user.active:
        return
    yield frozenset(for_role(role) for role in user.platform_roles)
    if setting_up(user, tenant_id):
        yield frozenset({Principal.FORCE_ADMIN})
    if provider_id is not None:
        role = db.session.scalar(select(ProviderMembership.role).where(
            ProviderMembership.user_id == user.id, ProviderMembership.provider_id == provider_id))
        if role is not None:
            yield frozenset({for_role(ProviderRole(role))})
    if tenant_id is not None:
        yield frozenset(for_role(role) for role in db.session.scalars(select(ForceMembership.role).where(
            ForceMembership.user_id == user.id, ForceMembership.tenant_id == tenant_id)))


def principals_of(actor: Actor | None, *, tenant_id: int | None = None,
                  provider_id: int | None = None) -> Iterator[frozenset[Principal]]:
    """What ``actor`` is, for work in the force ``tenant_id`` and/or on the provider ``provider_id``.

    A token is its system's principal in its own force or provider only, and
    none once revoked; a user is a principal through a role held there (or on
    the platform), and none once deactivated; no actor is nothing.
    """
    if actor is None:
        return
    if isinstance(actor, System):
        yield SYSTEM_ONLY
    elif isinstance(actor, User):
        yield from _user_principals(actor, tenant_id, provider_id)
    elif actor.revoked_at is None:
        force = getattr(actor, "tenant_id", None)  # a force system's token; else a provider system's
        if force is not None:
            if tenant_id in (None, force):
                yield frozenset({Principal.FORCE_API})
        elif provider_id in (None, getattr(actor, "provider_id", None)):
            yield frozenset({Principal.PROVIDER_API})


def may(actor: Actor | None, *actions: Action, tenant_id: int | None = None, provider_id: int | None = None) -> bool:
    """True when ``actor`` may do one of ``actions`` in that force and/or for that provider."""
    return any(allows(held, *actions) for held in principals_of(actor, tenant_id=tenant_id, provider_id=provider_id))


def require(actor: Actor | None, *actions: Action, tenant_id: int | None = None,
            provider_id: int | None = None) -> None:
    """Refuse (``AccessRefused``) an actor who may do none of ``actions`` there; nothing is written."""
    if not may(actor, *actions, tenant_id=tenant_id, provider_id=provider_id):
        raise AccessRefused(actions[0].value, _("You cannot %(action)s: your role does not allow it.",
                                                      action=str(WORDS[actions[0]])))


def user_id_of(actor: Actor | None) -> int | None:
    """The id of the person acting, for the rows that name who did it; None for a system."""
    return actor.id if isinstance(actor, User) else None


class CaseSystem(enum.StrEnum):
    """A case system acting through the API with its token: the force's own, or its provider's."""

    FORCE = "force"
    PROVIDER = "provider"


def case_system_of(actor: Actor | None) -> CaseSystem | None:
    """Whose case system is acting, for the rows that name who did it: None for a person and for
    the platform itself (a nightly job, an import)."""
    if actor is None or isinstance(actor, User | System):
        return None
    return CaseSystem.FORCE if getattr(actor, "tenant_id", None) is not None else CaseSystem.PROVIDER


# ---------------------------------------------------------------- the pages' checks

def _requires(roles: Callable[[], Iterable[Role]], action: Action) -> Callable[[F], F]:
    """Refuse (403) a page to a user whose ``roles()`` (read at each request) do not allow ``action``."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not allows((for_role(role) for role in roles()), action):
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def requires_force_action(action: Action) -> Callable[[F], F]:
    """On a force's page (``tenancy.web.force_blueprint``, which has made sure of a
    membership): refuse (403) a member whose force roles do not allow ``action``."""
    return _requires(lambda: g.force_roles, action)


def force_may(action: str) -> bool:
    """For a force's templates: whether the member's force roles allow ``action`` (by its value)."""
    return allows((for_role(role) for role in g.get("force_roles", ())), Action(action))


def requires_force_or_platform_action(action: Action) -> Callable[[F], F]:
    """On a force's page open to platform admins too (``force_blueprint(..., platform_admins=True)``):
    refuse (403) a user whose force roles and platform roles together do not allow ``action``."""
    return _requires(lambda: g.force_roles | current_user.platform_roles, action)


def requires_platform_action(action: Action) -> Callable[[F], F]:
    """On a platform page: sign-in first; then refuse (403) a user whose platform roles do not allow ``action``."""

    def decorate(view: F) -> F:
        checked: F = login_required(_requires(lambda: current_user.platform_roles, action)(view))
        return checked

    return decorate


def provider_role_allows(role: ProviderRole | None, action: Action) -> bool:
    """For a provider's pages: whether a role held there (None: none) allows ``action``."""
    return role is not None and allows({for_role(role)}, action)
