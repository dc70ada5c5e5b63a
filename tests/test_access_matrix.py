"""Who may use which route: one table, the spec, checked against the app.

``ROUTES`` below is written from the design (DESIGN.md, "Who uses it"), not
from the app's own checks: for every (endpoint, method) the app serves, it
says how to build a URL and which principals are *allowed*, with the answer
they get. Every other principal is *denied*:

- anonymous: a redirect to ``/sign-in?next=<the page asked for>``;
- signed in, on a page of force A, without a membership in force A: 404,
  the same answer as for a force that does not exist (layer 4 of isolation);
- signed in otherwise (a member without the role, a platform page): 403;
- on the API (``/api/v1``), anyone: 401 in JSON, since only a force
  system's bearer token opens it and a web session, any session, does not;
- provider staff of another provider, on a page of one of this provider's
  referrals (``/provider/...``): 404, the same answer as for no referral.

A denied answer never carries data (other users' email addresses, the
forces' names, a foreign force's colour) and a denied action changes
nothing; an allowed action has its effect. POSTs carry a valid CSRF token,
so a denial is about access, never about CSRF (that answer would be 400).
``test_every_route_is_in_the_table`` fails when the app gains a route that
has no line here: add the line with the feature.

``ACTIONS`` below is the same design for the services: which principals may
do each action, API tokens (a force system's, a provider system's), the
national lead and the platform itself (``system``: commands, the demo, the
importer, jobs) included. The code's table (``diversion.accounts.access``)
must equal it, action by action.
"""

from __future__ import annotations

import json
import tomllib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from sqlalchemy import func, select

from diversion.accounts import access, invitations, sso
from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.invitations import ForceInvitation, ProviderInvitation
from diversion.accounts.models import ForceMembership, ProviderMembership, ProviderRole, Role, User
from diversion.billing import contracts as billing_contracts
from diversion.billing.models import Contract, EventKind, LedgerEntry, Price, VatTreatment
from diversion.billing.months import month_key, month_of
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import Encounter, Referral, State
from diversion.catalogue import services as catalogue
from diversion.catalogue.models import Course, Offering, Provider
from diversion.db import LONDON
from diversion.eligibility import runs as simulation_runs
from diversion.eligibility import services as policies
from diversion.eligibility.models import Decision, SimulationRun
from diversion.eligibility.views import document_toml
from diversion.extensions import db
from diversion.forces import onboarding
from diversion.insights.models import InsightFigure, InsightForce, InsightTable
from diversion.jsonapi import tokens as api_tokens
from diversion.jsonapi import tokens as provider_tokens
from diversion.jsonapi.tokens import ApiToken, ProviderToken
from diversion.providers import services as providers
from diversion.providers import webhooks
from diversion.providers.models import WebhookDelivery, WebhookEndpoint
from diversion.tenancy.context import provider_scoped, scoped
from diversion.tenancy.models import ForceStatus, Tenant
from tests.conftest import PASSWORD, World, csrf_token, sign_in, started_today

# principal -> the user of the `world` fixture who plays it (None: not signed in)
PRINCIPALS: dict[str, str | None] = {
    "anonymous": None,
    "platform_admin": "platform_admin",
    "force_admin": "a_force_admin",
    "officer": "a_officer",
    "supervisor": "a_supervisor",
    "provider_staff": "provider_staff",  # Cranstoun, which serves force A
    "druglink_staff": "druglink_staff",  # Druglink, which does not
    "national_lead": "national_lead",
    "other_force_admin": "b_force_admin",  # force B's admin, on force A's URLs
    "no_role": "no_role",
}
EVERYONE = frozenset(PRINCIPALS)
SIGNED_IN = EVERYONE - {"anonymous"}
PLATFORM_ADMIN = frozenset({"platform_admin"})
FORCE_A_MEMBERS = frozenset({"force_admin", "officer", "supervisor"})
FORCE_A_ADMIN = frozenset({"force_admin"})
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})

NEW_MEMBER = "new-member@example.org"
FORCE_NAMES = ("West Midlands", "Durham")
FORCE_COLOURS = {"west-midlands": "#1f3f8f", "durham": "#5b2a86"}


@dataclass(frozen=True)
class Allowed:
    """What an allowed principal gets: a status and, for a redirect, where to."""

    status: int
    location: str | None = None


OK = Allowed(200)


def redirect(location: str) -> Allowed:
    return Allowed(302, location)


def allow(principals: frozenset[str], answer: Allowed) -> dict[str, Allowed]:
    return dict.fromkeys(principals, answer)


# Observed after the request, given (app, world, the principal's client, the
# principal's user key or None): True when the action took effect.
Effect = Callable[[Flask, World, FlaskClient, "str | None"], bool]
Setup = Callable[[Flask, World], None]
Data = Callable[[Flask, World], dict[str, str | list[str]]]


@dataclass(frozen=True)
class Route:
    endpoint: str
    method: str
    url: Callable[[World], str]
    allowed: dict[str, Allowed]  # everyone else is denied
    force_page: bool = False  # under /<tenant>/: a non-member gets 404
    api: bool = False  # under /api/v1: no bearer token, so 401 for every principal
    provider_page: bool = False  # one referral under /provider: another provider's staff get 404
    data: Data = field(default=lambda _app, _w: {})
    setup: Setup | None = None  # state the request needs (e.g. a draft to publish)
    effect: Effect | None = None  # allowed: must happen; denied: must not
    shows: Callable[[World], list[str]] = field(default=lambda _w: [])  # allowed page shows

    @property
    def key(self) -> tuple[str, str]:
        return (self.endpoint, self.method)


# ---------------------------------------------------------------- state and effects

def _user_active(app: Flask, world: World, key: str) -> bool:
    with app.app_context():
        user = db.session.get(User, world.users[key].id)
        assert user is not None
        return user.active


def _deactivate_b_supervisor(app: Flask, world: World) -> None:
    with app.app_context():
        user = db.session.get(User, world.users["b_supervisor"].id)
        assert user is not None
        user.active = False
        db.session.commit()


def _new_member_added(app: Flask, world: World, _client: FlaskClient, _who: str | None) -> bool:
    with app.app_context():
        user = accounts.find_user(NEW_MEMBER)
        if user is None:
            return False
        with scoped(world.a.id):
            return db.session.scalar(
                select(ForceMembership).where(ForceMembership.user_id == user.id)
            ) is not None


def _supervisor_became_officer(app: Flask, world: World, _client: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        membership = db.session.get(ForceMembership, world.memberships["a_supervisor"].id)
        assert membership is not None
        return membership.role is Role.OFFICER


def _membership_removed(app: Flask, world: World, _client: FlaskClient,
                        _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        return db.session.get(ForceMembership, world.memberships["a_supervisor"].id) is None


def _force_status(app: Flask, world: World) -> str:
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        return tenant.status.value


NATIONAL_READERS = frozenset({"national_lead", "platform_admin"})


def _released(app: Flask, world: World) -> None:
    """Released figures of 2025 for force A and for every force (written as the refresh would leave
    them, without the counting): 40 referred, 20 of them completed."""
    now = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    with app.app_context():
        db.session.add(InsightForce(force_id=world.a.id, name=world.a.name, computed_at=now, hours_saved=60,
                                    cost_per_hour=3_800))
        db.session.add(InsightForce(force_id=world.b.id, name=world.b.name, computed_at=now, hours_saved=60,
                                    cost_per_hour=3_800))  # none of its figures released
        for area in (world.a.id, None):
            for measure, value in (("cases", 80), ("referred", 40), ("completed", 20)):
                table = InsightTable(force_id=area, measure=measure, breakdown="all", year=2025, months=12,
                                     fingerprint="-", computed_at=now)
                db.session.add(table)
                db.session.flush()
                db.session.add_all([InsightFigure(table_id=table.id, category="all", period=period, value=value)
                                    for period in ("2025", "2025-Q4")])
        db.session.commit()


def _police_time_set(app: Flask, world: World, _client: FlaskClient, _who: str | None) -> bool:
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        return tenant.settings.get("police_hours_saved_per_referral") == 45


def _suspend_force_a(app: Flask, world: World) -> None:
    """Force A suspended, its members' sessions left as they are (the
    service would end them: then every member would be asked to sign in)."""
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        tenant.status = ForceStatus.SUSPENDED
        db.session.commit()


def _retention_set(app: Flask, world: World, _client: FlaskClient, _who: str | None) -> bool:
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        return tenant.retention_months == 84


def _scheme_renamed(app: Flask, world: World, _client: FlaskClient, _who: str | None) -> bool:
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        return tenant.scheme_name == "DIVERT Plus"


def _names_form(_app: Flask, w: World) -> dict[str, str]:
    return {"name": w.a.name, "name_cy": "", "scheme_name": "DIVERT Plus", "completed_code": "outcome-22",
            "completed_label": "Outcome 22", "not_completed_code": "prosecution",
            "not_completed_label": "Prosecution resumes", "not_completed_action": "prosecution"}


def _signed_in_as(client: FlaskClient) -> str | None:
    page = client.get("/").text
    marker = "Signed in as <strong>"
    if marker not in page:
        return None
    return page.split(marker, 1)[1].split("</strong>", 1)[0]


def _signed_out(app: Flask, world: World, client: FlaskClient, who: str | None) -> bool:
    """The principal had a session and it has ended everywhere (version bumped)."""
    if who is None:
        return False  # nobody to sign out
    with app.app_context():
        user = db.session.get(User, world.users[who].id)
        assert user is not None
        version = user.session_version
    return _signed_in_as(client) is None and version > 1


def _today() -> datetime:
    return datetime.now(UTC)


def _policy_toml(app: Flask, world: World) -> str:
    """Force A's policy in force, as the TOML its admin edits."""
    with app.app_context(), scoped(world.a.id):
        version = policies.policy_in_force(_today().date())
        assert version is not None, "force A has no policy in force"
        return document_toml(version.document)


DRAFT_NOTE = "saved by the access matrix"


def _save_draft(app: Flask, world: World) -> None:
    raw = tomllib.loads(_policy_toml(app, world))
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        policies.save_draft(tenant, raw, actor=SYSTEM, note=DRAFT_NOTE)
        db.session.commit()


def _our_draft(app: Flask, world: World) -> str:
    """What became of the draft saved by ``_save_draft``: draft, published or gone."""
    with app.app_context(), scoped(world.a.id):
        found = [v for v in policies.versions() if v.note == DRAFT_NOTE]
        assert len(found) <= 1
        if not found:
            return "gone"
        return "published" if found[0].is_published else "draft"


def _draft_saved(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        return policies.current_draft() is not None


def _draft_published(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    return _our_draft(app, world) == "published"


def _draft_discarded(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    return _our_draft(app, world) == "gone"


def _tomorrow(_app: Flask, _world: World) -> dict[str, str | list[str]]:
    day = _today().date() + timedelta(days=1)
    return {"effective_from": [str(day.day), str(day.month), str(day.year)]}


def _policy(path: str) -> Callable[[World], str]:
    return lambda w: f"/{w.a.slug}/policy{path}"


TOKEN: dict[str, str] = {}  # the API token made by a case's setup


def _make_token(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        token, _secret = api_tokens.make_force_token(db.session.get(Tenant, world.a.id), name="Matrix", actor=SYSTEM)
        TOKEN["id"] = str(token.id)
        db.session.commit()


def _token_made(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    return _count(app, world, ApiToken) == 1


def _token_revoked(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        return db.session.get(ApiToken, uuid.UUID(TOKEN["id"])).revoked_at is not None


# ---------------------------------------------------------------- catalogue state
CATALOGUE: dict[str, str] = {}  # ids found or made by a case's setup; "0" before it runs
MATRIX_COURSE = {"slug": "matrix-course", "provider": "cranstoun", "title": "Matrix drug awareness",
                 "kinds": ["adult_education"], "format": "group", "sessions": 1, "session_minutes": 120,
                 "delivery": ["online"], "min_age": 18, "max_age": None, "languages": ["en"],
                 "areas": ["west-midlands"], "description": ""}


def _catalogue_ids(app: Flask, world: World) -> None:
    with app.app_context():
        provider = db.session.scalar(select(Provider).where(Provider.slug == "druglink"))
        course = db.session.scalar(select(Course).where(Course.slug == "druglink-adult-course"))
        CATALOGUE.update(provider=str(provider.id), course=str(course.id))
        with scoped(world.a.id):
            offering = db.session.scalar(select(Offering).where(Offering.pathway == "divert"))
            CATALOGUE["offering"] = str(offering.id)


def _retire_course(app: Flask, world: World) -> None:
    _catalogue_ids(app, world)
    with app.app_context():
        course = db.session.get(Course, int(CATALOGUE["course"]))
        course.retired_at = datetime.now(UTC)
        db.session.commit()


def _add_matrix_course(app: Flask, world: World) -> None:
    with app.app_context():
        admin = db.session.get(User, world.users["platform_admin"].id)
        CATALOGUE["new_course"] = str(catalogue.create_course(MATRIX_COURSE, actor=admin).id)
        db.session.commit()


def _course(app: Flask) -> Course:
    course = db.session.get(Course, int(CATALOGUE["course"]))
    assert course is not None
    return course


def _provider_added(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context():
        return db.session.scalar(select(Provider).where(Provider.slug == "matrix-provider")) is not None


def _provider_renamed(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context():
        return db.session.get(Provider, int(CATALOGUE["provider"])).name == "Druglink (renamed)"


def _course_added(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context():
        return db.session.scalar(select(Course).where(Course.slug == "matrix-course")) is not None


def _course_renamed(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context():
        return _course(app).title == "Adult course (renamed)"


def _course_retired(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context():
        return _course(app).is_retired


def _course_reinstated(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context():
        return not _course(app).is_retired


def _course_form(title: str) -> Data:
    def data(_app: Flask, _w: World) -> dict[str, str | list[str]]:
        return {"slug": "matrix-course", "provider": "druglink", "title": title, "kinds": ["adult_education"],
                "format": "group", "sessions": "4", "session_minutes": "90", "delivery": ["in_person"],
                "min_age": "18", "languages": ["en"], "areas": ["thames-valley"], "description": "From the matrix"}
    return data


def _offering(app: Flask, world: World) -> Offering:
    offering = db.session.get(Offering, uuid.UUID(CATALOGUE["offering"]))
    assert offering is not None
    return offering


def _offering_added(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        return db.session.scalar(select(Offering).where(Offering.course_id == int(CATALOGUE["new_course"]))) is not None


def _offering_changed(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        return _offering(app, world).booking_contact == "0121 000 0000"


def _offering_withdrawn(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        return _offering(app, world).withdrawn_at is not None


def _admin_catalogue(path: str) -> Callable[[World], str]:
    return lambda w: f"/admin/catalogue{path.format(**{'provider': '0', 'course': '0', **CATALOGUE})}"


# ---------------------------------------------------------------- onboarding state
MATRIX_FORCE = "matrix-force"  # a draft made by a case's setup
MATRIX_DETAILS = {"name": "Matrix Police", "scheme_name": "Matrix scheme", "area": "cleveland", "languages": ["en"],
                  "completed_code": "outcome-22", "completed_label": "No further action",
                  "not_completed_code": "prosecution", "not_completed_label": "Prosecution resumes",
                  "not_completed_action": "prosecution", "brand_colour": "#123456"}


def _matrix_force(app: Flask) -> Tenant | None:
    return db.session.scalar(select(Tenant).where(Tenant.slug == MATRIX_FORCE))


def _start_matrix_draft(app: Flask, world: World, *, ready: bool = False) -> None:
    """A draft force (with, when ``ready``, Durham's policy and a Cleveland course: every step done)."""
    with app.app_context():
        tenant = onboarding.start_draft(onboarding.ForceDetails(slug=MATRIX_FORCE, **MATRIX_DETAILS), actor=SYSTEM)
        if ready:
            durham = db.session.scalar(select(Tenant).where(Tenant.slug == "durham"))
            course = db.session.scalar(select(Course.id).where(Course.slug == "cleveland-navigator-contract"))
            with scoped(tenant.id):
                onboarding.copy_policy(tenant, durham, actor=SYSTEM, today=_today().date())
                onboarding.set_offerings(tenant, {("checkpoint", course)}, actor=SYSTEM)
                onboarding.invite_first_admin(tenant, email="matrix-admin@example.org", name="Matrix Admin",
                                              actor=SYSTEM)
            CATALOGUE["cleveland_course"] = str(course)
        db.session.commit()


def _ready_matrix_draft(app: Flask, world: World) -> None:
    _start_matrix_draft(app, world, ready=True)


def _matrix(check: Callable[[Tenant | None], bool]) -> Effect:
    def effect(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
        with app.app_context():
            tenant = _matrix_force(app)
            if tenant is None:
                return check(None)
            with scoped(tenant.id):
                return check(tenant)
    return effect


_matrix_draft_made = _matrix(lambda t: t is not None)
_matrix_draft_renamed = _matrix(lambda t: t is not None and t.scheme_name == "Matrix scheme (renamed)")
_matrix_draft_has_policy = _matrix(lambda t: t is not None and policies.current_draft() is not None)
_matrix_draft_offers_two = _matrix(lambda t: t is not None and len(onboarding.offered()) == 2)
_matrix_draft_signs_on = _matrix(lambda t: t is not None and sso.sign_on_of(t) is not None)
_matrix_draft_invited = _matrix(lambda t: t is not None and onboarding.first_admins() == ["Chief (chief@example.org)"])
_matrix_draft_opened = _matrix(lambda t: t is not None and t.status is ForceStatus.ACTIVE)
_matrix_draft_discarded = _matrix(lambda t: t is None)


def _course_id(app: Flask, slug: str) -> int:
    with app.app_context():
        return int(db.session.scalar(select(Course.id).where(Course.slug == slug)))


SIMULATION: dict[str, str] = {}  # the run made by a case's setup


def _simulation_run(app: Flask, world: World) -> None:
    """A West Midlands simulation of Durham's policy, asked for by the platform (not yet made)."""
    with app.app_context():
        durham = db.session.get(Tenant, world.b.id)
        version = policies.published_policy_of(durham, _today().date())
        with scoped(world.a.id):
            run = simulation_runs.start(db.session.get(Tenant, world.a.id), policies.compiled(version),
                                        force="Durham Constabulary", number=version.number, since=None,
                                        decisions=0, actor=SYSTEM)
            SIMULATION["run"] = str(run.id)
            db.session.commit()


def _simulation_started(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    return _count(app, world, SimulationRun) == 1


def _setup(path: str) -> Callable[[World], str]:
    return lambda _w: f"/admin/forces/{MATRIX_FORCE}{path}"


# ---------------------------------------------------------------- the spec

# ---------------------------------------------------------------- case work state
FORCE_A_STAFF = frozenset({"officer", "supervisor"})
SUPERVISOR = frozenset({"supervisor"})
CASE: dict[str, str] = {}  # ids made by a case's setup; NO_ID before it runs
NO_ID = str(uuid.UUID(int=0))
CASE_FACTS = {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
              "user_dealer": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
              "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
              "resident_in_force_area": True, "stage": "street", "suitable_for_out_of_court_disposal": True}


def _record_case(app: Flask, world: World) -> None:
    """An eligible West Midlands case, recorded through the service."""
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        with scoped(world.a.id):
            _, decision = cases.record_encounter(tenant, cases.Intake(
                Identity("Case", "Robin", date(1996, 2, 3)), Contact(), "W1", _today().date(), dict(CASE_FACTS)),
                actor=SYSTEM, today=_today().date())
            offering = db.session.scalar(select(Offering).where(Offering.pathway == "divert"))
            CASE.update(decision=str(decision.id), encounter=str(decision.encounter_id), offering=str(offering.id))
        db.session.commit()


def _record_waiting_case(app: Flask, world: World) -> None:
    """A West Midlands case whose decision waits for personal use (recorded by a force system:
    no officer recorded it, so only a supervisor may give the fact)."""
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        with scoped(world.a.id):
            facts = {k: v for k, v in CASE_FACTS.items() if k != "personal_use"}
            _, decision = cases.record_encounter(tenant, cases.Intake(
                Identity("Case", "Robin", date(1996, 2, 3)), Contact(), "W1", _today().date(), facts),
                actor=SYSTEM, today=_today().date())
            assert decision.outcome == "needs_review"
            CASE.update(decision=str(decision.id), encounter=str(decision.encounter_id))
        db.session.commit()


def _decided_again(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        return db.session.get(Decision, uuid.UUID(CASE["decision"])).superseded_by_id is not None


def _record_referral(app: Flask, world: World) -> None:
    _record_case(app, world)
    with app.app_context(), scoped(world.a.id):
        decision = db.session.get(Decision, uuid.UUID(CASE["decision"]))
        offering = db.session.get(Offering, uuid.UUID(CASE["offering"]))
        referral = cases.refer(db.session.get(Tenant, world.a.id), decision, offering, actor=SYSTEM,
                               today=_today().date())
        CASE["referral"] = str(referral.id)
        db.session.commit()


def _intake_form(_app: Flask, _world: World) -> dict[str, str | list[str]]:
    today = _today()
    return {"surname": "Intake", "given_name": "Alex", "date_of_birth": ["1", "2", "1990"], "ethnicity": "W1",
            "offence_on": [str(today.day), str(today.month), str(today.year)], "offence": "possession",
            "substances": ["cannabis"], "drug_class": "B", "personal_use": "yes", "stage": "street"}


def _count(app: Flask, world: World, model: type) -> int:
    with app.app_context(), scoped(world.a.id):
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def _encounter_recorded(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    return _count(app, world, Encounter) == 1


def _decision_overridden(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        return db.session.get(Decision, uuid.UUID(CASE["decision"])).override_reason is not None


def _referred(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    return _count(app, world, Referral) == 1


def _referral_accepted(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        return db.session.get(Referral, uuid.UUID(CASE["referral"])).state is State.ACCEPTED


# ---------------------------------------------------------------- provider workspace state
CRANSTOUN_STAFF = frozenset({"provider_staff"})
PROVIDER_STAFF = frozenset({"provider_staff", "druglink_staff"})


@contextmanager
def _as_cranstoun(app: Flask, world: World) -> Iterator[tuple[Provider, User, Referral]]:
    """Force A's referral (to Cranstoun), in Cranstoun's scope, with its staff user."""
    with app.app_context(), provider_scoped(world.providers["cranstoun"].id, world.users["provider_staff"].id):
        provider = db.session.get(Provider, world.providers["cranstoun"].id)
        staff = db.session.get(User, world.users["provider_staff"].id)
        referral = providers.find_referral(provider, uuid.UUID(CASE["referral"]))
        assert provider is not None
        assert staff is not None
        assert referral is not None
        yield provider, staff, referral
        db.session.commit()


def _accepted_referral(app: Flask, world: World) -> None:
    _record_referral(app, world)
    with _as_cranstoun(app, world) as (_provider, staff, referral):
        providers.accept(referral, actor=staff)


def _booked_session(app: Flask, world: World) -> None:
    _accepted_referral(app, world)
    with _as_cranstoun(app, world) as (_provider, staff, referral):
        booked = providers.book_session(referral, starts_at=started_today(), venue="Digbeth",
                                        actor=staff)
        CASE["session"] = str(booked.id)


def _every_session_attended(app: Flask, world: World) -> None:
    _accepted_referral(app, world)
    with _as_cranstoun(app, world) as (_provider, staff, referral):
        while referral.sessions_attended < referral.sessions_required:
            booked = providers.book_session(referral, starts_at=started_today(), venue="Digbeth",
                                            actor=staff)
            providers.record_attendance(booked, attended=True, actor=staff)


def _referral_in(state: State) -> Effect:
    def effect(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
        with app.app_context(), scoped(world.a.id):
            return db.session.get(Referral, uuid.UUID(CASE["referral"])).state is state
    return effect


def _earlier_today(_app: Flask, _world: World) -> dict[str, str | list[str]]:
    """A session earlier today in London: passed, and not before the case's offence (today's)."""
    started = started_today().astimezone(LONDON)
    return {"day": [str(started.day), str(started.month), str(started.year)], "time": f"{started:%H:%M}",
            "venue": "Digbeth"}
# ---------------------------------------------------------------- provider integrations
CRANSTOUN_ADMIN = frozenset({"provider_staff"})  # made an admin of Cranstoun by the setup
PROVIDER: dict[str, str] = {}  # ids made by a case's setup
INTEGRATIONS = "/provider/integrations/"


def _cranstoun(app: Flask) -> Provider:
    provider = db.session.scalar(select(Provider).where(Provider.slug == "cranstoun"))
    assert provider is not None
    return provider


def _provider_admin(app: Flask, world: World) -> None:
    """The provider_staff principal (staff of Cranstoun, which serves force A) becomes its admin."""
    with app.app_context():
        membership = db.session.scalar(select(ProviderMembership).where(
            ProviderMembership.provider_id == _cranstoun(app).id,
            ProviderMembership.user_id == world.users["provider_staff"].id))
        assert membership is not None
        membership.role = ProviderRole.ADMIN
        db.session.commit()


def _provider_token(app: Flask, world: World) -> None:
    _provider_admin(app, world)
    with app.app_context():
        token, _secret = provider_tokens.make_provider_token(_cranstoun(app), name="Matrix", actor=SYSTEM)
        PROVIDER["token"] = str(token.id)
        db.session.commit()


def _provider_endpoint(app: Flask, world: World) -> None:
    _provider_admin(app, world)
    with app.app_context():
        endpoint, _secret = webhooks.set_endpoint(_cranstoun(app), url="https://example.org/hooks", actor=SYSTEM)
        PROVIDER["sealed"] = endpoint.secret_sealed
        db.session.commit()


def _endpoint(app: Flask) -> WebhookEndpoint | None:
    with app.app_context(), provider_scoped(_cranstoun(app).id):
        return db.session.scalar(select(WebhookEndpoint))


def _provider_token_made(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), provider_scoped(_cranstoun(app).id):
        return db.session.scalar(select(func.count()).select_from(ProviderToken)) == 1


def _provider_token_revoked(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), provider_scoped(_cranstoun(app).id):
        return db.session.get(ProviderToken, uuid.UUID(PROVIDER["token"])).revoked_at is not None


def _endpoint_set(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    return _endpoint(app) is not None


def _secret_rotated(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    endpoint = _endpoint(app)
    return endpoint is not None and endpoint.secret_sealed != PROVIDER["sealed"]


def _endpoint_removed(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    return _endpoint(app) is None


def _endpoint_and_referral(app: Flask, world: World) -> None:
    """Cranstoun's endpoint, after force A sent it a referral (a test event names one)."""
    _record_referral(app, world)
    _provider_endpoint(app, world)


def _test_event_queued(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        return db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.event == "webhook.test")) is not None

# ---------------------------------------------------------------- invitations and people
INVITED: dict[str, str] = {}  # tokens and ids made by a case's setup
MATRIX_STAFF = "matrix-staff@example.org"  # a second person at Cranstoun, made by a case's setup


def _invite_to_a(app: Flask, world: World) -> None:
    with app.test_request_context(), scoped(world.a.id):
        invitation, token = invitations.invite_to_force(db.session.get(Tenant, world.a.id), email=NEW_MEMBER,
                                                        name="New Member", role=Role.OFFICER, actor=SYSTEM)
        INVITED.update(force_token=token, force_id=str(invitation.id))
        db.session.commit()


def _invite_to_cranstoun(app: Flask, world: World) -> None:
    with app.test_request_context():
        invitation, token = invitations.invite_to_provider(_cranstoun(app), email=NEW_MEMBER, name="New Member",
                                                           role=ProviderRole.STAFF, actor=SYSTEM)
        INVITED.update(provider_token=token, provider_id=str(invitation.id))
        db.session.commit()


def _admin_with_invitation(app: Flask, world: World) -> None:
    _provider_admin(app, world)
    _invite_to_cranstoun(app, world)


def _admin_with_staff(app: Flask, world: World) -> None:
    """Cranstoun's admin (the provider_staff principal) and a second person on its staff."""
    _provider_admin(app, world)
    with app.app_context():
        staff = accounts.create_user(email=MATRIX_STAFF, name="Matrix Staff", password=PASSWORD, actor=SYSTEM)
        membership = ProviderMembership(provider_id=_cranstoun(app).id, user_id=staff.id)
        db.session.add(membership)
        db.session.flush()
        INVITED["membership"] = str(membership.id)
        db.session.commit()


def _force_invitation_to_new_member(app: Flask, world: World) -> ForceInvitation | None:
    with app.app_context(), scoped(world.a.id):
        return db.session.scalar(select(ForceInvitation).where(ForceInvitation.email == NEW_MEMBER))


def _invited_to_a(role: Role) -> Effect:
    def effect(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
        found = _force_invitation_to_new_member(app, world)
        return found is not None and found.role is role
    return effect


def _force_invitation_withdrawn(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    return _force_invitation_to_new_member(app, world) is None


def _provider_invitation(app: Flask) -> ProviderInvitation | None:
    with app.app_context():
        return db.session.scalar(select(ProviderInvitation).where(ProviderInvitation.email == NEW_MEMBER))


def _invited_to_cranstoun(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    return _provider_invitation(app) is not None


def _provider_invitation_withdrawn(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    return _provider_invitation(app) is None


def _matrix_staff(app: Flask) -> ProviderMembership | None:
    with app.app_context():
        return db.session.get(ProviderMembership, uuid.UUID(INVITED.get("membership", NO_ID)))


def _matrix_staff_made_admin(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    found = _matrix_staff(app)
    return found is not None and found.role is ProviderRole.ADMIN


def _matrix_staff_removed(app: Flask, _w: World, _c: FlaskClient, _who: str | None) -> bool:
    return _matrix_staff(app) is None


def _new_account(_app: Flask, _w: World) -> dict[str, str | list[str]]:
    return {"name": "New Member", "password": PASSWORD, "confirm": PASSWORD}


def _people(path: str) -> Callable[[World], str]:
    return lambda w: f"/provider/people/{path.format(**{'provider_id': NO_ID, 'membership': NO_ID, **INVITED})}"



# ---------------------------------------------------------------- billing statements
BILLED: dict[str, str] = {}  # the ledger row made by a case's setup


def _this_month() -> str:
    return month_key(month_of(_today()))


def _billed(app: Flask, world: World) -> None:
    """A contract of force A with Cranstoun, then a referral accepted by Cranstoun: one ledger row this month."""
    with app.app_context(), scoped(world.a.id):
        contract = Contract(tenant_id=world.a.id, provider_id=world.providers["cranstoun"].id,
                            starts_on=date(2000, 1, 1))
        db.session.add(contract)
        db.session.flush()
        db.session.add(Price(tenant_id=world.a.id, contract_id=contract.id, kind=EventKind.REFERRAL_ACCEPTED,
                             pathway="divert", unit_pence=7000))
        db.session.commit()
    _accepted_referral(app, world)
    with app.app_context(), scoped(world.a.id):
        BILLED["entry"] = str(db.session.scalars(select(LedgerEntry.id)).one())


def _billed_for_its_admin(app: Flask, world: World) -> None:
    _billed(app, world)
    _provider_admin(app, world)


def _reversed(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        return db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.reverses_id.is_not(None))) == 1


def _statement(prefix: str, suffix: str = "") -> Callable[[World], str]:
    return lambda _w: f"{prefix}/{_this_month()}{suffix}"


def _reverse_url(_w: World) -> str:
    return f"/admin/billing/west-midlands/cranstoun/{_this_month()}/rows/{BILLED.get('entry', NO_ID)}/reverse"
# ---------------------------------------------------------------- billing: contracts
CONTRACT: dict[str, str] = {}  # the contract made by a case's setup
CONTRACTS = "/admin/billing/contracts/"


def _contract_form(app: Flask, world: World) -> dict[str, str | list[str]]:
    return {"provider": str(world.providers["cranstoun"].id), "starts_on": ["1", "1", "2026"], "vat": "exempt",
            "platform_fee": "2.5", "price_referral_accepted_divert": "70", "notes": "Matrix figures"}


def _make_contract(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        made = billing_contracts.create_contract(tenant, billing_contracts.Terms(
            provider_id=_cranstoun(app).id, starts_on=date(2026, 1, 1), ends_on=None, monthly_fee_pence=0,
            vat=VatTreatment.EXEMPT, platform_fee_basis_points=0, prices={}), actor=SYSTEM)
        CONTRACT["id"] = str(made.id)
        db.session.commit()


def _admin_with_contract(app: Flask, world: World) -> None:
    _provider_admin(app, world)
    _make_contract(app, world)


def _contracts(app: Flask, world: World) -> list[Contract]:
    with app.app_context(), scoped(world.a.id):
        return list(db.session.scalars(select(Contract)))


def _contract_made(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    return [c.notes for c in _contracts(app, world)] == ["Matrix figures"]


def _contract_changed(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    return [c.platform_fee_basis_points for c in _contracts(app, world)] == [250]


def _contract(path: str) -> Callable[[World], str]:
    return lambda w: path.format(id=CONTRACT.get("id", NO_ID))


EVERYONE_BUT_ANONYMOUS_IS_ANOTHER_ACCOUNT = allow(SIGNED_IN, Allowed(403))


def _sign_on_set(app: Flask, world: World, _c: FlaskClient, _who: str | None) -> bool:
    with app.app_context(), scoped(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        assert tenant is not None
        return sso.sign_on_of(tenant) is not None


SIGN_ON = "/west-midlands/settings/sign-on"


ROUTES: tuple[Route, ...] = (
    # Public: the assets, the start page, the health check, signing in.
    Route("static", "GET", lambda w: "/static/build/app.css", allow(EVERYONE, OK)),
    Route("public.start", "GET", lambda w: "/", allow(EVERYONE, OK)),
    Route("public.health", "GET", lambda w: "/healthz", allow(EVERYONE, OK)),
    Route("accounts.sign_in", "GET", lambda w: "/sign-in", allow(EVERYONE, OK)),
    Route(
        # The officer lands on their own force's home (``accounts.views.landing``).
        "accounts.sign_in", "POST", lambda w: "/sign-in", allow(EVERYONE, redirect("/west-midlands/")),
        data=lambda _app, w: {"email": w.email("a_officer"), "password": PASSWORD},
        effect=lambda _app, w, client, _who: _signed_in_as(client) == w.email("a_officer"),
    ),
    # Single sign-on through a force's provider: open to all (force A has none set up here: 404;
    # a callback this browser did not start: 400). Its settings: the force's admin.
    Route("sso.start", "GET", lambda w: "/west-midlands/sign-in/sso", allow(EVERYONE, Allowed(404))),
    Route("sso.callback", "GET", lambda w: "/west-midlands/sign-in/sso/callback?code=x&state=y",
          allow(EVERYONE, Allowed(400))),
    # Stripe's webhook: open to all, no session, no CSRF; only a valid signature admits an event, so a
    # post without one is refused alike for everyone (400), whoever is signed in.
    Route("billing_webhooks.stripe_webhook", "POST", lambda w: "/billing/stripe/webhook",
          allow(EVERYONE, Allowed(400))),
    # Billing's reconciliation: the platform admins.
    Route("billing_reconciliation.reconciliation", "GET", lambda w: "/admin/billing/reconciliation?month=2026-11",
          allow(PLATFORM_ADMIN, OK), shows=lambda _w: ["Reconciliation", "November 2026", "No mismatches"]),
    Route("sso.settings", "GET", lambda w: SIGN_ON, allow(FORCE_A_ADMIN, OK), force_page=True,
          shows=lambda w: [w.a.name, "Single sign-on"]),
    Route("sso.settings", "POST", lambda w: SIGN_ON, allow(FORCE_A_ADMIN, redirect(SIGN_ON)), force_page=True,
          data=lambda _a, _w: {"issuer": "https://example.org/idp", "client_id": "matrix-app",
                               "client_secret": "matrix-secret", "new_people": "refuse"},
          effect=_sign_on_set),
    # Anyone signed in may sign out.
    Route(
        "accounts.sign_out", "POST", lambda w: "/sign-out",
        allow(SIGNED_IN, redirect("/sign-in")), effect=_signed_out,
    ),
    # Platform admin console: platform admins only.
    Route(
        "admin.index", "GET", lambda w: "/admin/", allow(PLATFORM_ADMIN, OK),
        shows=lambda w: list(FORCE_NAMES),
    ),
    Route("admin.add_member", "GET", lambda w: "/admin/members/new", allow(PLATFORM_ADMIN, OK),
          shows=lambda w: list(FORCE_NAMES)),
    Route(
        "admin.add_member", "POST", lambda w: "/admin/members/new",
        allow(PLATFORM_ADMIN, redirect("/admin/")),
        data=lambda _app, w: {"force": w.a.slug, "email": NEW_MEMBER, "name": "New Member",
                              "password": PASSWORD, "role": "officer"},
        effect=_new_member_added,
    ),
    # A force's configuration, lifecycle, settings and audit: the platform admins in the console; the
    # force's own admins (and the platform admins) on the force's settings and audit pages.
    Route("console.export", "GET", lambda w: "/admin/forces/west-midlands/export", allow(PLATFORM_ADMIN, OK),
          shows=lambda _w: ['slug = "west-midlands"']),
    Route("console.suspend", "GET", lambda w: "/admin/forces/west-midlands/suspend", allow(PLATFORM_ADMIN, OK),
          shows=lambda w: [f"Suspend {w.a.name}?"]),
    Route("console.suspend", "POST", lambda w: "/admin/forces/west-midlands/suspend",
          allow(PLATFORM_ADMIN, redirect("/admin/")),
          effect=lambda app, w, _c, _who: _force_status(app, w) == "suspended"),
    Route("console.reactivate", "POST", lambda w: "/admin/forces/west-midlands/reactivate",
          allow(PLATFORM_ADMIN, redirect("/admin/")), setup=_suspend_force_a,
          effect=lambda app, w, _c, _who: _force_status(app, w) == "active"),
    Route("console.audit", "GET", lambda w: "/admin/audit/", allow(PLATFORM_ADMIN, OK),
          shows=lambda _w: ["Audit log of the platform", "Account created"]),
    Route("console.audit_download", "GET", lambda w: "/admin/audit/events.csv", allow(PLATFORM_ADMIN, OK),
          shows=lambda w: ["What happened", "Signed in", w.email("platform_admin")]),
    Route("settings.index", "GET", lambda w: f"/{w.a.slug}/settings/", allow(FORCE_A_ADMIN | PLATFORM_ADMIN, OK),
          force_page=True, shows=lambda w: [f"Settings of {w.a.name}"]),
    Route("settings.index", "POST", lambda w: f"/{w.a.slug}/settings/",
          allow(FORCE_A_ADMIN | PLATFORM_ADMIN, redirect("/west-midlands/settings/")), force_page=True,
          data=lambda _a, _w: {"retention_months": "84", "brand_colour": "#1f3f8f", "languages": ["en"]},
          effect=_retention_set),
    Route("settings.names", "GET", lambda w: f"/{w.a.slug}/settings/names",
          allow(FORCE_A_ADMIN | PLATFORM_ADMIN, OK), force_page=True, shows=lambda _w: ["Names and outcome codes"]),
    Route("settings.names", "POST", lambda w: f"/{w.a.slug}/settings/names",
          allow(FORCE_A_ADMIN | PLATFORM_ADMIN, redirect("/west-midlands/settings/")), force_page=True,
          data=_names_form, effect=_scheme_renamed),
    Route("settings.export", "GET", lambda w: f"/{w.a.slug}/settings/export",
          allow(FORCE_A_ADMIN | PLATFORM_ADMIN, OK), force_page=True, shows=lambda _w: ['slug = "west-midlands"']),
    Route("force_audit.index", "GET", lambda w: f"/{w.a.slug}/audit/", allow(FORCE_A_ADMIN | PLATFORM_ADMIN, OK),
          force_page=True, shows=lambda w: [f"Audit log of {w.a.name}", "Member added"]),
    Route("force_audit.download", "GET", lambda w: f"/{w.a.slug}/audit/events.csv",
          allow(FORCE_A_ADMIN | PLATFORM_ADMIN, OK), force_page=True,
          shows=lambda w: ["Member added", w.users["a_officer"].name]),
    # A force's pages: its members; its members list: its force admin.
    Route(
        "force.home", "GET", lambda w: f"/{w.a.slug}/", allow(FORCE_A_MEMBERS, OK),
        force_page=True, shows=lambda w: [w.a.name],
    ),
    Route(
        "members.index", "GET", lambda w: f"/{w.a.slug}/members/", allow(FORCE_A_ADMIN, OK),
        force_page=True,
        shows=lambda w: [w.a.name, *(w.email(k) for k in ("a_officer", "a_supervisor"))],
    ),
    Route(
        "members.change_role", "GET", lambda w: f"/{w.a.slug}/members/{w.memberships['a_supervisor'].id}/role",
        allow(FORCE_A_ADMIN, OK), force_page=True, shows=lambda w: [w.email("a_supervisor")],
    ),
    Route(
        "members.change_role", "POST", lambda w: f"/{w.a.slug}/members/{w.memberships['a_supervisor'].id}/role",
        allow(FORCE_A_ADMIN, redirect("/west-midlands/members/")), force_page=True,
        data=lambda _app, _w: {"role": "officer"}, effect=_supervisor_became_officer,
    ),
    Route(
        "members.remove", "GET", lambda w: f"/{w.a.slug}/members/{w.memberships['a_supervisor'].id}/remove",
        allow(FORCE_A_ADMIN, OK), force_page=True,
        shows=lambda w: [f"Remove A Supervisor from {w.a.name}?", w.email("a_supervisor")],
    ),
    Route(
        "members.remove", "POST",
        lambda w: f"/{w.a.slug}/members/{w.memberships['a_supervisor'].id}/remove",
        allow(FORCE_A_ADMIN, redirect("/west-midlands/members/")), force_page=True,
        effect=_membership_removed,
    ),
    # Invitations: the link is the authority, for anyone who has it. Without an account for the invited
    # address, they make one and are signed in; signed in as another account, they are told to sign out (403).
    Route("invitations.accept", "GET", lambda w: f"/west-midlands/invitation/{INVITED.get('force_token', 'x')}",
          allow(EVERYONE, OK), setup=_invite_to_a, shows=lambda w: [w.a.name]),
    Route("invitations.accept", "POST", lambda w: f"/west-midlands/invitation/{INVITED.get('force_token', 'x')}",
          {**EVERYONE_BUT_ANONYMOUS_IS_ANOTHER_ACCOUNT, "anonymous": redirect("/west-midlands/")},
          setup=_invite_to_a, data=_new_account),
    Route("provider_invitations.accept", "GET",
          lambda w: f"/provider/invitation/{INVITED.get('provider_token', 'x')}", allow(EVERYONE, OK),
          setup=_invite_to_cranstoun, shows=lambda _w: ["Cranstoun"]),
    Route("provider_invitations.accept", "POST",
          lambda w: f"/provider/invitation/{INVITED.get('provider_token', 'x')}",
          {**EVERYONE_BUT_ANONYMOUS_IS_ANOTHER_ACCOUNT, "anonymous": redirect("/provider/")},
          setup=_invite_to_cranstoun, data=_new_account),
    # A force admin invites to the force and withdraws invitations.
    Route("members.invite", "GET", lambda w: f"/{w.a.slug}/members/invite", allow(FORCE_A_ADMIN, OK),
          force_page=True, shows=lambda w: [w.a.name]),
    Route("members.invite", "POST", lambda w: f"/{w.a.slug}/members/invite", allow(FORCE_A_ADMIN, OK),
          force_page=True, data=lambda _a, _w: {"name": "New Member", "email": NEW_MEMBER, "role": "supervisor"},
          effect=_invited_to_a(Role.SUPERVISOR), shows=lambda w: ["/west-midlands/invitation/", NEW_MEMBER]),
    Route("members.withdraw_invitation", "GET",
          lambda w: f"/{w.a.slug}/members/invitations/{INVITED.get('force_id', NO_ID)}/withdraw",
          allow(FORCE_A_ADMIN, OK), force_page=True, setup=_invite_to_a,
          shows=lambda _w: ["Withdraw the invitation to New Member?", NEW_MEMBER]),
    Route("members.withdraw_invitation", "POST",
          lambda w: f"/{w.a.slug}/members/invitations/{INVITED.get('force_id', NO_ID)}/withdraw",
          allow(FORCE_A_ADMIN, redirect("/west-midlands/members/")), force_page=True, setup=_invite_to_a,
          effect=_force_invitation_withdrawn),
    # A provider's admins manage its people (the provider_staff principal is made Cranstoun's admin).
    Route("provider_people.index", "GET", _people(""), allow(CRANSTOUN_ADMIN, OK), setup=_admin_with_staff,
          shows=lambda w: ["Cranstoun", w.email("provider_staff"), MATRIX_STAFF]),
    Route("provider_people.invite", "GET", _people("invite"), allow(CRANSTOUN_ADMIN, OK), setup=_provider_admin,
          shows=lambda _w: ["Cranstoun"]),
    Route("provider_people.invite", "POST", _people("invite"), allow(CRANSTOUN_ADMIN, OK), setup=_provider_admin,
          data=lambda _a, _w: {"name": "New Member", "email": NEW_MEMBER, "role": "staff"},
          effect=_invited_to_cranstoun, shows=lambda _w: ["/provider/invitation/", NEW_MEMBER]),
    Route("provider_people.withdraw_invitation", "GET", _people("invitations/{provider_id}/withdraw"),
          allow(CRANSTOUN_ADMIN, OK), setup=_admin_with_invitation,
          shows=lambda _w: ["Withdraw the invitation to New Member?", NEW_MEMBER]),
    Route("provider_people.withdraw_invitation", "POST", _people("invitations/{provider_id}/withdraw"),
          allow(CRANSTOUN_ADMIN, redirect("/provider/people/")), setup=_admin_with_invitation,
          effect=_provider_invitation_withdrawn),
    Route("provider_people.change_role", "GET", _people("{membership}/role"), allow(CRANSTOUN_ADMIN, OK),
          setup=_admin_with_staff, shows=lambda _w: [MATRIX_STAFF]),
    Route("provider_people.change_role", "POST", _people("{membership}/role"),
          allow(CRANSTOUN_ADMIN, redirect("/provider/people/")), setup=_admin_with_staff,
          data=lambda _a, _w: {"role": "admin"}, effect=_matrix_staff_made_admin),
    Route("provider_people.remove", "GET", _people("{membership}/remove"), allow(CRANSTOUN_ADMIN, OK),
          setup=_admin_with_staff, shows=lambda _w: ["Remove Matrix Staff from Cranstoun?", MATRIX_STAFF]),
    Route("provider_people.remove", "POST", _people("{membership}/remove"),
          allow(CRANSTOUN_ADMIN, redirect("/provider/people/")), setup=_admin_with_staff,
          effect=_matrix_staff_removed),
    # Platform admins: every account, and the admins of forces and providers invited.
    Route("admin_people.index", "GET", lambda w: "/admin/people/", allow(PLATFORM_ADMIN, OK),
          shows=lambda w: [u.email for u in w.users.values()]),
    Route("admin_people.deactivate", "GET", lambda w: f"/admin/people/{w.users['b_supervisor'].id}/deactivate",
          allow(PLATFORM_ADMIN, OK), shows=lambda w: ["Deactivate B Supervisor?", w.email("b_supervisor")]),
    Route("admin_people.deactivate", "POST", lambda w: f"/admin/people/{w.users['b_supervisor'].id}/deactivate",
          allow(PLATFORM_ADMIN, redirect("/admin/people/")),
          effect=lambda app, w, _c, _who: not _user_active(app, w, "b_supervisor")),
    Route("admin_people.reactivate", "POST", lambda w: f"/admin/people/{w.users['b_supervisor'].id}/reactivate",
          allow(PLATFORM_ADMIN, redirect("/admin/people/")), setup=_deactivate_b_supervisor,
          effect=lambda app, w, _c, _who: _user_active(app, w, "b_supervisor")),
    Route("admin_people.invite", "GET", lambda w: "/admin/people/invite", allow(PLATFORM_ADMIN, OK),
          shows=lambda _w: [*FORCE_NAMES, "Cranstoun"]),
    Route("admin_people.invite", "POST", lambda w: "/admin/people/invite", allow(PLATFORM_ADMIN, OK),
          data=lambda _a, w: {"organisation": f"force:{w.a.slug}", "name": "New Member", "email": NEW_MEMBER},
          effect=_invited_to_a(Role.FORCE_ADMIN), shows=lambda _w: ["/west-midlands/invitation/"]),
    # The monthly close: platform admins start it and watch it (a month not ended yet is refused).
    Route("billing_close.index", "GET", lambda w: "/admin/billing/close/", allow(PLATFORM_ADMIN, OK),
          shows=lambda _w: [*FORCE_NAMES]),
    Route("billing_close.index", "POST", lambda w: "/admin/billing/close/", allow(PLATFORM_ADMIN, Allowed(400)),
          data=lambda _a, _w: {"month": "2999-01", "force": ""}, shows=lambda _w: ["has not ended yet"]),
    # Asked first (GET), then queued (POST; a month not ended yet is not one to close, so the matrix
    # queues nothing: a job left in the queue would run in a later test).
    Route("billing_close.confirm", "GET", lambda w: "/admin/billing/close/2026-10?force=west-midlands",
          allow(PLATFORM_ADMIN, OK), shows=lambda _w: ["Close October 2026 for West Midlands Police?"]),
    Route("billing_close.confirm", "POST", lambda w: "/admin/billing/close/2999-01?force=west-midlands",
          allow(PLATFORM_ADMIN, Allowed(404))),
    # A provider's payouts: its admins only (without Stripe set up, starting says so and changes nothing).
    Route("billing_payouts.index", "GET", lambda w: "/provider/billing/payouts/", allow(CRANSTOUN_ADMIN, OK),
          setup=_provider_admin, shows=lambda _w: ["Cranstoun", "Not set up"]),
    Route("billing_payouts.start", "POST", lambda w: "/provider/billing/payouts/",
          allow(CRANSTOUN_ADMIN, redirect("/provider/billing/payouts/")), setup=_provider_admin),
    # The force's eligibility policy: every member reads it (officers decide
    # with it); only the force admin drafts, tests, publishes and simulates.
    Route("policy.in_force", "GET", _policy("/"), allow(FORCE_A_MEMBERS, OK),
          force_page=True, shows=lambda w: [w.a.name]),
    Route("policy.show_version", "GET", _policy("/versions/1"), allow(FORCE_A_MEMBERS, OK),
          force_page=True, shows=lambda w: [w.a.name]),
    Route("policy.fields", "GET", _policy("/fields"), allow(FORCE_A_MEMBERS, OK),
          force_page=True),
    Route("policy.versions", "GET", _policy("/versions"), allow(FORCE_A_MEMBERS, OK),
          force_page=True),
    Route("policy.diff", "GET", _policy("/versions/diff?from=1&to=1"),
          allow(FORCE_A_MEMBERS, OK), force_page=True),
    Route("policy.draft", "GET", _policy("/draft"), allow(FORCE_A_ADMIN, OK), force_page=True),
    Route(
        "policy.draft", "POST", _policy("/draft"),
        allow(FORCE_A_ADMIN, redirect("/west-midlands/policy/draft")), force_page=True,
        data=lambda app, w: {"document": _policy_toml(app, w), "note": "tightened"},
        effect=_draft_saved,
    ),
    Route("policy.test_draft", "POST", _policy("/draft/test"), allow(FORCE_A_ADMIN, OK),
          force_page=True, setup=_save_draft),
    Route(
        "policy.publish", "POST", _policy("/draft/publish"),
        allow(FORCE_A_ADMIN, redirect("/west-midlands/policy/versions")), force_page=True,
        setup=_save_draft, data=_tomorrow, effect=_draft_published,
    ),
    Route("policy.discard", "GET", _policy("/draft/discard"), allow(FORCE_A_ADMIN, OK), force_page=True,
          setup=_save_draft, shows=lambda _w: ["Discard draft version", DRAFT_NOTE]),
    Route(
        "policy.discard", "POST", _policy("/draft/discard"),
        allow(FORCE_A_ADMIN, redirect("/west-midlands/policy/")), force_page=True,
        setup=_save_draft, effect=_draft_discarded,
    ),
    Route("policy.simulate", "GET", _policy("/simulate"), allow(FORCE_A_ADMIN, OK),
          force_page=True),
    Route("policy.start_simulation", "POST", _policy("/simulate/runs"), allow(FORCE_A_ADMIN, Allowed(302)),
          force_page=True, data=lambda _a, _w: {"source": "force:durham"}, effect=_simulation_started),
    Route("policy.simulation_run", "GET",
          lambda w: f"/{w.a.slug}/policy/simulate/runs/{SIMULATION.get('run', NO_ID)}", allow(FORCE_A_ADMIN, OK),
          force_page=True, setup=_simulation_run, shows=lambda _w: ["Durham Constabulary version 1"]),
    # Case work (issue 4): officers and supervisors record and refer; supervisors review and
    # override; the force admin reads cases and referrals.
    Route("cases.intake", "GET", lambda w: "/west-midlands/encounters/new", allow(FORCE_A_STAFF, OK),
          force_page=True),
    Route("cases.intake", "POST", lambda w: "/west-midlands/encounters/new",
          allow(FORCE_A_STAFF, Allowed(302)), force_page=True, data=_intake_form, effect=_encounter_recorded),
    Route("cases.decision", "GET", lambda w: f"/west-midlands/decisions/{CASE.get('decision', NO_ID)}",
          allow(FORCE_A_MEMBERS, OK), force_page=True, setup=_record_case),
    Route("cases.override", "POST", lambda w: f"/west-midlands/decisions/{CASE.get('decision', NO_ID)}/override",
          allow(SUPERVISOR, Allowed(302)), force_page=True, setup=_record_case,
          data=lambda _a, _w: {"outcome": "not_eligible", "reason": "Seen by a supervisor"},
          effect=_decision_overridden),
    Route("cases.refer", "POST", lambda w: f"/west-midlands/decisions/{CASE.get('decision', NO_ID)}/referrals",
          allow(FORCE_A_STAFF, Allowed(302)), force_page=True, setup=_record_case,
          data=lambda _a, _w: {"offering": CASE["offering"]}, effect=_referred),
    Route("cases.review", "GET", lambda w: "/west-midlands/review", allow(SUPERVISOR, OK), force_page=True),
    # Giving the facts a decision waits for (issue 13): a supervisor, or the officer who recorded
    # the case (here a force system did, so the officer is refused: 403).
    Route("cases.add_facts", "GET", lambda w: f"/west-midlands/decisions/{CASE.get('decision', NO_ID)}/facts",
          allow(SUPERVISOR, OK), force_page=True, setup=_record_waiting_case, shows=lambda _w: ["Robin Case"]),
    Route("cases.add_facts", "POST", lambda w: f"/west-midlands/decisions/{CASE.get('decision', NO_ID)}/facts",
          allow(SUPERVISOR, Allowed(302)), force_page=True, setup=_record_waiting_case,
          data=lambda _a, _w: {"personal_use": "yes"}, effect=_decided_again),
    Route("cases.case", "GET", lambda w: f"/west-midlands/cases/{CASE.get('encounter', NO_ID)}",
          allow(FORCE_A_MEMBERS, OK), force_page=True, setup=_record_case, shows=lambda _w: ["Robin Case"]),
    Route("cases.move", "POST", lambda w: f"/west-midlands/referrals/{CASE.get('referral', NO_ID)}/transitions",
          allow(FORCE_A_STAFF, Allowed(302)), force_page=True, setup=_record_referral,
          data=lambda _a, _w: {"to": "accepted"}, effect=_referral_accepted),
    Route("cases.book", "POST", lambda w: f"/west-midlands/referrals/{CASE.get('referral', NO_ID)}/sessions",
          allow(FORCE_A_STAFF, Allowed(302)), force_page=True, setup=_accepted_referral, data=_earlier_today,
          effect=_referral_in(State.BOOKED)),
    Route("cases.attendance", "POST", lambda w: f"/west-midlands/sessions/{CASE.get('session', NO_ID)}/attendance",
          allow(FORCE_A_STAFF, Allowed(302)), force_page=True, setup=_booked_session,
          data=lambda _a, _w: {"attendance": "attended", "confirm": "y"}, effect=_referral_in(State.ATTENDED)),
    Route("cases.referrals", "GET", lambda w: "/west-midlands/referrals", allow(FORCE_A_MEMBERS, OK),
          force_page=True),
    Route("case_list.index", "GET", lambda w: "/west-midlands/cases/", allow(FORCE_A_MEMBERS, OK),
          force_page=True, setup=_record_case, shows=lambda _w: ["Robin Case"]),
    # API tokens: the force admin's. The API itself answers a bearer token only, so no
    # principal here (all with a web session or none) gets past 401, even with rows to see.
    Route("api_tokens.index", "GET", lambda w: "/west-midlands/api-tokens/", allow(FORCE_A_ADMIN, OK),
          force_page=True, shows=lambda w: [w.a.name]),
    Route("api_tokens.create", "POST", lambda w: "/west-midlands/api-tokens/", allow(FORCE_A_ADMIN, OK),
          force_page=True, data=lambda _a, _w: {"name": "Custody records"}, effect=_token_made,
          shows=lambda _w: ["dvt.west-midlands."]),
    Route("api_tokens.revoke", "GET", lambda w: f"/west-midlands/api-tokens/{TOKEN.get('id', NO_ID)}/revoke",
          allow(FORCE_A_ADMIN, OK), force_page=True, setup=_make_token),
    Route("api_tokens.revoke", "POST", lambda w: f"/west-midlands/api-tokens/{TOKEN.get('id', NO_ID)}/revoke",
          allow(FORCE_A_ADMIN, redirect("/west-midlands/api-tokens/")), force_page=True, setup=_make_token,
          effect=_token_revoked),
    Route("api.openapi_document", "GET", lambda w: "/api/v1/openapi.json", allow(EVERYONE, OK)),
    Route("api.record_encounter", "POST", lambda w: "/api/v1/encounters", {}, api=True,
          effect=_encounter_recorded),
    Route("api.get_encounter", "GET", lambda w: f"/api/v1/encounters/{CASE.get('encounter', NO_ID)}", {},
          api=True, setup=_record_case),
    Route("api.get_decision", "GET", lambda w: f"/api/v1/decisions/{CASE.get('decision', NO_ID)}", {},
          api=True, setup=_record_case),
    Route("api.refer", "POST", lambda w: f"/api/v1/decisions/{CASE.get('decision', NO_ID)}/referrals", {},
          api=True, setup=_record_case, data=lambda _a, _w: {"offering_id": CASE["offering"]}, effect=_referred),
    Route("api.list_referrals", "GET", lambda w: "/api/v1/referrals", {}, api=True, setup=_record_referral),
    Route("api.get_referral", "GET", lambda w: f"/api/v1/referrals/{CASE.get('referral', NO_ID)}", {},
          api=True, setup=_record_referral),
    Route("api.move_referral", "POST", lambda w: f"/api/v1/referrals/{CASE.get('referral', NO_ID)}/transitions",
          {}, api=True, setup=_record_referral, data=lambda _a, _w: {"to": "accepted"},
          effect=_referral_accepted),
    Route("api.list_offerings", "GET", lambda w: "/api/v1/offerings", {}, api=True),
    # The provider workspace: provider staff, each seeing their own provider's referrals; a referral's
    # pages and actions: its provider's staff only (force A's referral goes to Cranstoun).
    Route("provider.referrals", "GET", lambda w: "/provider/", allow(PROVIDER_STAFF, OK), setup=_record_referral),
    Route("provider.referral", "GET", lambda w: f"/provider/referrals/{CASE.get('referral', NO_ID)}",
          allow(CRANSTOUN_STAFF, OK), provider_page=True, setup=_record_referral,
          shows=lambda _w: ["Robin Case", "West Midlands Police"]),
    Route("provider.accept", "POST", lambda w: f"/provider/referrals/{CASE.get('referral', NO_ID)}/accept",
          allow(CRANSTOUN_STAFF, Allowed(302)), provider_page=True, setup=_record_referral,
          effect=_referral_in(State.ACCEPTED)),
    Route("provider.decline", "POST", lambda w: f"/provider/referrals/{CASE.get('referral', NO_ID)}/decline",
          allow(CRANSTOUN_STAFF, Allowed(302)), provider_page=True, setup=_record_referral,
          data=lambda _a, _w: {"reason": "No places before the deadline"}, effect=_referral_in(State.DECLINED)),
    Route("provider.book", "POST", lambda w: f"/provider/referrals/{CASE.get('referral', NO_ID)}/sessions",
          allow(CRANSTOUN_STAFF, Allowed(302)), provider_page=True, setup=_accepted_referral, data=_earlier_today,
          effect=_referral_in(State.BOOKED)),
    Route("provider.attendance", "POST", lambda w: f"/provider/sessions/{CASE.get('session', NO_ID)}/attendance",
          allow(CRANSTOUN_STAFF, Allowed(302)), provider_page=True, setup=_booked_session,
          data=lambda _a, _w: {"attendance": "attended", "confirm": "y"}, effect=_referral_in(State.ATTENDED)),
    Route("provider.complete", "POST", lambda w: f"/provider/referrals/{CASE.get('referral', NO_ID)}/complete",
          allow(CRANSTOUN_STAFF, Allowed(302)), provider_page=True, setup=_every_session_attended,
          data=lambda _a, _w: {"confirm": "y"}, effect=_referral_in(State.COMPLETED)),
    Route("provider.switch", "POST", lambda w: "/provider/organisation", allow(PROVIDER_STAFF, redirect("/provider/")),
          data=lambda _a, w: {"provider": str(w.providers["cranstoun"].id)}),
    # Provider integrations: the provider's admins manage its tokens and webhook endpoint (the
    # provider_staff principal is made an admin of Cranstoun by each case's setup). The provider API
    # answers a provider's bearer token only: no session opens it.
    Route("provider_integrations.index", "GET", lambda w: INTEGRATIONS, allow(CRANSTOUN_ADMIN, OK),
          setup=_provider_admin, shows=lambda _w: ["Cranstoun"]),
    Route("provider_integrations.create_token", "POST", lambda w: f"{INTEGRATIONS}tokens", allow(CRANSTOUN_ADMIN, OK),
          setup=_provider_admin, data=lambda _a, _w: {"token-name": "Case management"},
          effect=_provider_token_made, shows=lambda _w: ["dvp.cranstoun."]),
    Route("provider_integrations.revoke_token", "GET",
          lambda w: f"{INTEGRATIONS}tokens/{PROVIDER.get('token', NO_ID)}/revoke",
          allow(CRANSTOUN_ADMIN, OK), setup=_provider_token),
    Route("provider_integrations.revoke_token", "POST",
          lambda w: f"{INTEGRATIONS}tokens/{PROVIDER.get('token', NO_ID)}/revoke",
          allow(CRANSTOUN_ADMIN, redirect(INTEGRATIONS)), setup=_provider_token, effect=_provider_token_revoked),
    Route("provider_integrations.set_webhook", "POST", lambda w: f"{INTEGRATIONS}webhook", allow(CRANSTOUN_ADMIN, OK),
          setup=_provider_admin, data=lambda _a, _w: {"webhook-url": "https://example.org/hooks"},
          effect=_endpoint_set, shows=lambda _w: ["dvwh_"]),
    Route("provider_integrations.rotate_secret", "POST", lambda w: f"{INTEGRATIONS}webhook/secret",
          allow(CRANSTOUN_ADMIN, OK), setup=_provider_endpoint, effect=_secret_rotated, shows=lambda _w: ["dvwh_"]),
    Route("provider_integrations.test_event", "POST", lambda w: f"{INTEGRATIONS}webhook/test",
          allow(CRANSTOUN_ADMIN, redirect(INTEGRATIONS)), setup=_endpoint_and_referral, effect=_test_event_queued),
    Route("provider_integrations.remove_webhook", "POST", lambda w: f"{INTEGRATIONS}webhook/remove",
          allow(CRANSTOUN_ADMIN, redirect(INTEGRATIONS)), setup=_provider_endpoint, effect=_endpoint_removed),
    Route("provider_api.feed", "GET", lambda w: "/api/v1/provider/referrals", {}, api=True,
          setup=_record_referral),
    Route("provider_api.get_referral", "GET", lambda w: f"/api/v1/provider/referrals/{CASE.get('referral', NO_ID)}",
          {}, api=True, setup=_record_referral),
    Route("provider_api.move_referral", "POST",
          lambda w: f"/api/v1/provider/referrals/{CASE.get('referral', NO_ID)}/transitions", {}, api=True,
          setup=_record_referral, data=lambda _a, _w: {"to": "accepted"}, effect=_referral_accepted),
    # The shared catalogue: platform admins manage providers and courses.
    Route("catalogue_admin.index", "GET", _admin_catalogue("/"), allow(PLATFORM_ADMIN, OK),
          shows=lambda _w: ["Checkpoint Cymru education course (Welsh and English)", "Druglink"]),
    Route("catalogue_admin.new_provider", "GET", _admin_catalogue("/providers/new"), allow(PLATFORM_ADMIN, OK)),
    Route("catalogue_admin.new_provider", "POST", _admin_catalogue("/providers/new"),
          allow(PLATFORM_ADMIN, redirect("/admin/catalogue/")),
          data=lambda _a, _w: {"slug": "matrix-provider", "name": "Matrix provider"}, effect=_provider_added),
    Route("catalogue_admin.edit_provider", "GET", _admin_catalogue("/providers/{provider}"),
          allow(PLATFORM_ADMIN, OK), setup=_catalogue_ids, shows=lambda _w: ["Druglink"]),
    Route("catalogue_admin.edit_provider", "POST", _admin_catalogue("/providers/{provider}"),
          allow(PLATFORM_ADMIN, redirect("/admin/catalogue/")), setup=_catalogue_ids,
          data=lambda _a, _w: {"name": "Druglink (renamed)"}, effect=_provider_renamed),
    Route("catalogue_admin.new_course", "GET", _admin_catalogue("/courses/new"), allow(PLATFORM_ADMIN, OK)),
    Route("catalogue_admin.new_course", "POST", _admin_catalogue("/courses/new"),
          allow(PLATFORM_ADMIN, redirect("/admin/catalogue/")), data=_course_form("Matrix course"),
          effect=_course_added),
    Route("catalogue_admin.edit_course", "GET", _admin_catalogue("/courses/{course}"), allow(PLATFORM_ADMIN, OK),
          setup=_catalogue_ids, shows=lambda _w: ["Drug education course for adults"]),
    Route("catalogue_admin.edit_course", "POST", _admin_catalogue("/courses/{course}"),
          allow(PLATFORM_ADMIN, redirect("/admin/catalogue/")), setup=_catalogue_ids,
          data=_course_form("Adult course (renamed)"), effect=_course_renamed),
    Route("catalogue_admin.retire_course", "POST", _admin_catalogue("/courses/{course}/retire"),
          allow(PLATFORM_ADMIN, redirect("/admin/catalogue/")), setup=_catalogue_ids, effect=_course_retired),
    Route("catalogue_admin.reinstate_course", "POST", _admin_catalogue("/courses/{course}/reinstate"),
          allow(PLATFORM_ADMIN, redirect("/admin/catalogue/")), setup=_retire_course, effect=_course_reinstated),
    # A force's offerings: its force admin.
    Route("offerings.index", "GET", lambda w: "/west-midlands/offerings/", allow(FORCE_A_ADMIN, OK),
          force_page=True, shows=lambda w: [w.a.name, "DIVERT: assessment and drug education"]),
    Route("offerings.new", "GET", lambda w: "/west-midlands/offerings/new?pathway=divert", allow(FORCE_A_ADMIN, OK),
          force_page=True, setup=_add_matrix_course, shows=lambda _w: ["Matrix drug awareness"]),
    Route("offerings.new", "POST", lambda w: "/west-midlands/offerings/new",
          allow(FORCE_A_ADMIN, redirect("/west-midlands/offerings/")), force_page=True, setup=_add_matrix_course,
          data=lambda _a, _w: {"pathway": "divert", "course": CATALOGUE["new_course"], "venues": "Digbeth"},
          effect=_offering_added),
    Route("offerings.edit", "GET", lambda w: f"/west-midlands/offerings/{CATALOGUE.get('offering', NO_ID)}",
          allow(FORCE_A_ADMIN, OK), force_page=True, setup=_catalogue_ids,
          shows=lambda _w: ["DIVERT: assessment and drug education"]),
    Route("offerings.edit", "POST", lambda w: f"/west-midlands/offerings/{CATALOGUE.get('offering', NO_ID)}",
          allow(FORCE_A_ADMIN, redirect("/west-midlands/offerings/")), force_page=True, setup=_catalogue_ids,
          data=lambda _a, _w: {"booking_contact": "0121 000 0000"}, effect=_offering_changed),
    Route("offerings.withdraw", "GET",
          lambda w: f"/west-midlands/offerings/{CATALOGUE.get('offering', NO_ID)}/withdraw",
          allow(FORCE_A_ADMIN, OK), force_page=True, setup=_catalogue_ids,
          shows=lambda _w: ["Withdraw DIVERT: assessment and drug education?"]),
    Route("offerings.withdraw", "POST",
          lambda w: f"/west-midlands/offerings/{CATALOGUE.get('offering', NO_ID)}/withdraw",
          allow(FORCE_A_ADMIN, redirect("/west-midlands/offerings/")), force_page=True, setup=_catalogue_ids,
          effect=_offering_withdrawn),
    # Billing contracts: platform admins manage them; a force's admins and a provider's admins read their own.
    Route("contracts_admin.index", "GET", lambda w: CONTRACTS, allow(PLATFORM_ADMIN, OK), setup=_make_contract,
          shows=lambda _w: ["West Midlands Police and Cranstoun", "1 contract"]),
    Route("contracts_admin.choose_force", "GET", lambda w: f"{CONTRACTS}new", allow(PLATFORM_ADMIN, OK),
          shows=lambda _w: ["West Midlands Police"]),
    Route("contracts_admin.new", "GET", lambda w: f"{CONTRACTS}west-midlands/new", allow(PLATFORM_ADMIN, OK),
          shows=lambda _w: ["Cranstoun", "Referral accepted"]),
    Route("contracts_admin.new", "POST", lambda w: f"{CONTRACTS}west-midlands/new", allow(PLATFORM_ADMIN, Allowed(302)),
          data=_contract_form, effect=_contract_made),
    Route("contracts_admin.show", "GET", _contract(CONTRACTS + "west-midlands/{id}"), allow(PLATFORM_ADMIN, OK),
          setup=_make_contract, shows=lambda _w: ["Change this contract", "Cranstoun"]),
    Route("contracts_admin.edit", "GET", _contract(CONTRACTS + "west-midlands/{id}/edit"), allow(PLATFORM_ADMIN, OK),
          setup=_make_contract, shows=lambda _w: ["Change the contract with Cranstoun"]),
    Route("contracts_admin.edit", "POST", _contract(CONTRACTS + "west-midlands/{id}/edit"),
          allow(PLATFORM_ADMIN, Allowed(302)), setup=_make_contract, data=_contract_form, effect=_contract_changed),
    Route("force_contracts.force_index", "GET", lambda w: "/west-midlands/billing/contracts/", allow(FORCE_A_ADMIN, OK),
          force_page=True, setup=_make_contract, shows=lambda _w: ["Cranstoun"]),
    Route("force_contracts.force_show", "GET", _contract("/west-midlands/billing/contracts/{id}"),
          allow(FORCE_A_ADMIN, OK), force_page=True, setup=_make_contract, shows=lambda _w: ["Cranstoun"]),
    Route("provider_contracts.provider_index", "GET", lambda w: "/provider/billing/contracts/",
          allow(CRANSTOUN_ADMIN, OK), setup=_admin_with_contract, shows=lambda _w: ["West Midlands Police"]),
    Route("provider_contracts.provider_show", "GET", _contract("/provider/billing/contracts/{id}"),
          allow(CRANSTOUN_ADMIN, OK), setup=_admin_with_contract, shows=lambda _w: ["West Midlands Police"]),
    # Onboarding a force: platform admins only.
    Route("onboarding.new", "GET", lambda w: "/admin/forces/new", allow(PLATFORM_ADMIN, OK),
          shows=lambda _w: ["Cleveland"]),
    Route("onboarding.new", "POST", lambda w: "/admin/forces/new",
          allow(PLATFORM_ADMIN, redirect(f"/admin/forces/{MATRIX_FORCE}/setup/")),
          data=lambda _a, _w: {"slug": MATRIX_FORCE, **MATRIX_DETAILS}, effect=_matrix_draft_made),
    Route("onboarding.tasks", "GET", _setup("/setup/"), allow(PLATFORM_ADMIN, OK), setup=_start_matrix_draft,
          shows=lambda _w: ["Matrix Police", "govuk-task-list"]),
    Route("onboarding.details", "GET", _setup("/setup/details"), allow(PLATFORM_ADMIN, OK),
          setup=_start_matrix_draft, shows=lambda _w: ["Matrix scheme"]),
    Route("onboarding.details", "POST", _setup("/setup/details"),
          allow(PLATFORM_ADMIN, redirect(f"/admin/forces/{MATRIX_FORCE}/setup/")), setup=_start_matrix_draft,
          data=lambda _a, _w: {**MATRIX_DETAILS, "scheme_name": "Matrix scheme (renamed)"},
          effect=_matrix_draft_renamed),
    Route("onboarding.policy", "GET", _setup("/setup/policy"), allow(PLATFORM_ADMIN, OK),
          setup=_start_matrix_draft, shows=lambda _w: ["Durham Constabulary"]),
    Route("onboarding.policy", "POST", _setup("/setup/policy"),
          allow(PLATFORM_ADMIN, redirect(f"/admin/forces/{MATRIX_FORCE}/setup/")), setup=_start_matrix_draft,
          data=lambda _a, _w: {"template": "copy:durham"}, effect=_matrix_draft_has_policy),
    Route("onboarding.offerings", "GET", _setup("/setup/offerings"), allow(PLATFORM_ADMIN, OK),
          setup=_ready_matrix_draft, shows=lambda _w: ["Cleveland, example"]),
    Route("onboarding.offerings", "POST", _setup("/setup/offerings"),
          allow(PLATFORM_ADMIN, redirect(f"/admin/forces/{MATRIX_FORCE}/setup/")), setup=_ready_matrix_draft,
          data=lambda app, _w: {"offerings": [f"checkpoint:{CATALOGUE['cleveland_course']}",
                                              f"checkpoint:{_course_id(app, 'cranstoun-cleveland-education')}"]},
          effect=_matrix_draft_offers_two),
    Route("onboarding.sign_on", "GET", _setup("/setup/sign-on"), allow(PLATFORM_ADMIN, OK),
          setup=_start_matrix_draft, shows=lambda _w: ["Single sign-on"]),
    Route("onboarding.sign_on", "POST", _setup("/setup/sign-on"),
          allow(PLATFORM_ADMIN, redirect(f"/admin/forces/{MATRIX_FORCE}/setup/")), setup=_start_matrix_draft,
          data=lambda _a, _w: {"issuer": "https://example.org/matrix", "client_id": "platform",
                               "client_secret": "s3cret", "new_people": "refuse"}, effect=_matrix_draft_signs_on),
    Route("onboarding.first_admin", "GET", _setup("/setup/first-admin"), allow(PLATFORM_ADMIN, OK),
          setup=_start_matrix_draft, shows=lambda _w: ["The first force admin"]),
    Route("onboarding.first_admin", "POST", _setup("/setup/first-admin"), allow(PLATFORM_ADMIN, OK),
          setup=_start_matrix_draft, data=lambda _a, _w: {"name": "Chief", "email": "chief@example.org"},
          effect=_matrix_draft_invited),
    Route("onboarding.finish", "POST", _setup("/setup/finish"), allow(PLATFORM_ADMIN, redirect("/admin/")),
          setup=_ready_matrix_draft, effect=_matrix_draft_opened),
    Route("onboarding.discard", "GET", _setup("/discard"), allow(PLATFORM_ADMIN, OK), setup=_start_matrix_draft,
          shows=lambda _w: ["Matrix Police"]),
    Route("onboarding.discard", "POST", _setup("/discard"), allow(PLATFORM_ADMIN, redirect("/admin/")),
          setup=_start_matrix_draft, effect=_matrix_draft_discarded),
    # Billing statements: a force's admins (its own), a provider's admins (its own, every force it serves),
    # the platform's admins (every force; they alone reverse a ledger row).
    Route("force_billing.index", "GET", lambda w: "/west-midlands/billing/", allow(FORCE_A_ADMIN, OK), force_page=True,
          setup=_billed, shows=lambda _w: ["Cranstoun", "£70.00"]),
    Route("force_billing.statement", "GET", _statement("/west-midlands/billing/cranstoun"), allow(FORCE_A_ADMIN, OK),
          force_page=True, setup=_billed, shows=lambda _w: ["Referral accepted, DIVERT (adults)", "£70.00"]),
    Route("force_billing.download", "GET", _statement("/west-midlands/billing/cranstoun", ".csv"),
          allow(FORCE_A_ADMIN, OK), force_page=True, setup=_billed,
          shows=lambda _w: ["Paid to the provider after the platform fee,70.00"]),
    Route("provider_billing.index", "GET", lambda w: "/provider/billing/", allow(CRANSTOUN_ADMIN, OK),
          setup=_billed_for_its_admin, shows=lambda w: [w.a.name, "£70.00"]),
    Route("provider_billing.statement", "GET", _statement("/provider/billing/west-midlands"),
          allow(CRANSTOUN_ADMIN, OK), setup=_billed_for_its_admin,
          shows=lambda _w: ["Referral accepted, DIVERT (adults)"]),
    Route("provider_billing.download", "GET", _statement("/provider/billing/west-midlands", ".csv"),
          allow(CRANSTOUN_ADMIN, OK), setup=_billed_for_its_admin,
          shows=lambda _w: ["Paid to the provider after the platform fee,70.00"]),
    Route("admin_billing.index", "GET", lambda w: "/admin/billing/", allow(PLATFORM_ADMIN, OK), setup=_billed,
          shows=lambda w: [*FORCE_NAMES, "Cranstoun"]),
    Route("admin_billing.statement", "GET", _statement("/admin/billing/west-midlands/cranstoun"),
          allow(PLATFORM_ADMIN, OK), setup=_billed, shows=lambda _w: ["Referral accepted, DIVERT (adults)", "Reverse"]),
    Route("admin_billing.download", "GET", _statement("/admin/billing/west-midlands/cranstoun", ".csv"),
          allow(PLATFORM_ADMIN, OK), setup=_billed,
          shows=lambda _w: ["Paid to the provider after the platform fee,70.00"]),
    Route("admin_billing.reverse", "GET", _reverse_url, allow(PLATFORM_ADMIN, OK), setup=_billed,
          shows=lambda _w: ["Reverse a ledger row", "£70.00"]),
    Route("admin_billing.reverse", "POST", _reverse_url,
          allow(PLATFORM_ADMIN, Allowed(302)), setup=_billed,
          data=lambda _a, _w: {"reason": "Accepted by mistake"}, effect=_reversed),
    # The national comparison: national leads and platform admins read every force's released figures; a
    # force's admins their own force's, against every force's (and set its assumptions for police time).
    Route("national.index", "GET", lambda _w: "/national/", allow(NATIONAL_READERS, OK), setup=_released,
          shows=lambda w: ["National comparison", "All forces", w.a.name]),
    Route("national.metric", "GET", lambda _w: "/national/completion", allow(NATIONAL_READERS, OK),
          setup=_released, shows=lambda w: ["Completion by force, 2025", w.a.name, "50%"]),
    Route("national.funnel_svg", "GET", lambda _w: "/national/completion/funnel.svg", allow(NATIONAL_READERS, OK),
          setup=_released, shows=lambda _w: ["<svg"]),
    Route("national.trend_svg", "GET", lambda _w: "/national/completion/trend.svg", allow(NATIONAL_READERS, OK),
          setup=_released, shows=lambda _w: ["<svg"]),
    Route("national.compare", "GET", lambda w: f"/national/compare?first={w.a.id}&second={w.b.id}",
          allow(NATIONAL_READERS, OK), setup=_released, shows=lambda w: [f"{w.a.name} and {w.b.name}, 2025"]),
    Route("national.equality", "GET", lambda _w: "/national/equality", allow(NATIONAL_READERS, OK),
          setup=_released, shows=lambda _w: ["Referral rate by ethnic group, All forces, 2025"]),
    Route("force_insights.force_index", "GET", lambda w: f"/{w.a.slug}/insights/", allow(FORCE_A_ADMIN, OK),
          force_page=True, setup=_released, shows=lambda w: [f"{w.a.name}: figures", "All forces"]),
    Route("force_insights.force_metric", "GET", lambda w: f"/{w.a.slug}/insights/completion",
          allow(FORCE_A_ADMIN, OK), force_page=True, setup=_released, shows=lambda w: [w.a.name, "50%"]),
    Route("force_insights.force_funnel_svg", "GET", lambda w: f"/{w.a.slug}/insights/completion/funnel.svg",
          allow(FORCE_A_ADMIN, OK), force_page=True, setup=_released, shows=lambda _w: ["<svg"]),
    Route("force_insights.force_trend_svg", "GET", lambda w: f"/{w.a.slug}/insights/completion/trend.svg",
          allow(FORCE_A_ADMIN, OK), force_page=True, setup=_released, shows=lambda _w: ["<svg"]),
    Route("force_insights.assumptions", "GET", lambda w: f"/{w.a.slug}/insights/assumptions",
          allow(FORCE_A_ADMIN, OK), force_page=True, shows=lambda _w: ["Police time saved", "6.0"]),
    Route("force_insights.assumptions", "POST", lambda w: f"/{w.a.slug}/insights/assumptions",
          allow(FORCE_A_ADMIN, redirect("/west-midlands/insights/")), force_page=True,
          data=lambda _a, _w: {"hours": "4.5", "cost": "41.00"}, effect=_police_time_set),
)


# ---------------------------------------------------------------- the actions, as the design gives them
# Force staff record, refer and work referrals; the supervisor alone reviews and overrides; the force admin
# owns the policy, the members, the force's tokens and courses and reads every case. Provider staff work
# their provider's referrals (never withdraw one: that is the force's decision); the provider's admins also
# manage its tokens and webhook. A force system's token does what an officer does through the API; a
# provider system's token what provider staff do. Platform admins manage accounts and the catalogue. The
# national lead compares aggregates and never sees a person: reading the national figures alone (as platform
# admins may, and a force admin the force's own). The platform itself (system) syncs forces, imports, expires
# overdue referrals, seeds the demo, exports the national figures; it never opens a provider's referrals.
FORCE_STAFF = {"officer", "supervisor"}
PROVIDER_SIDE = {"provider_staff", "provider_admin", "provider_api"}
ACTIONS: dict[str, set[str]] = {
    "read_policy": {"force_admin", "officer", "supervisor"},
    "edit_policy": {"force_admin", "system"},
    "publish_policy": {"force_admin", "system"},
    "simulate_policy": {"force_admin", "system"},
    "record_encounter": FORCE_STAFF | {"force_api", "system"},
    "read_cases": FORCE_STAFF | {"force_admin", "force_api", "system"},
    "review_decisions": {"supervisor"},
    "override_decision": {"supervisor"},
    "refer": FORCE_STAFF | {"force_api", "system"},
    "move_referral": FORCE_STAFF | PROVIDER_SIDE | {"force_api", "system"},
    "withdraw_referral": FORCE_STAFF | {"force_api", "system"},
    "book_session": FORCE_STAFF | PROVIDER_SIDE | {"force_api", "system"},
    "record_attendance": FORCE_STAFF | PROVIDER_SIDE | {"force_api", "system"},
    "expire_referrals": {"system"},
    "import_cases": {"system"},
    "manage_members": {"force_admin", "system"},
    "manage_api_tokens": {"force_admin", "system"},
    "manage_offerings": {"force_admin", "system"},
    "change_force_settings": {"force_admin", "platform_admin", "system"},
    "export_force": {"force_admin", "platform_admin", "system"},
    "read_force_audit": {"force_admin", "platform_admin"},
    "manage_sign_on": {"force_admin", "platform_admin", "system"},
    "read_provider_referrals": PROVIDER_SIDE,
    "manage_provider_tokens": {"provider_admin", "system"},
    "manage_webhook": {"provider_admin", "system"},
    "manage_provider_people": {"provider_admin", "system"},
    "manage_payouts": {"provider_admin", "system"},
    "read_billing": {"force_admin", "provider_admin", "platform_admin", "system"},
    "manage_contracts": {"platform_admin", "system"},
    "correct_ledger": {"platform_admin"},
    "close_month": {"platform_admin", "system"},
    "reconcile_billing": {"platform_admin", "system"},
    "manage_users": {"platform_admin", "system"},
    "edit_catalogue": {"platform_admin", "system"},
    "sync_forces": {"system"},
    "change_force_status": {"platform_admin", "system"},
    "onboard_force": {"platform_admin", "system"},
    "read_platform_audit": {"platform_admin"},
    "read_national_figures": {"national_lead", "platform_admin", "system"},
    "read_force_figures": {"force_admin"},
}
TABLE_PRINCIPALS = {"force_admin", "officer", "supervisor", "provider_staff", "provider_admin", "platform_admin",
                    "national_lead", "force_api", "provider_api", "system"}


def test_the_code_names_the_same_actions_and_principals() -> None:
    assert {action.value for action in access.Action} == set(ACTIONS)
    assert {principal.value for principal in access.Principal} == TABLE_PRINCIPALS
    assert set().union(*ACTIONS.values()) <= TABLE_PRINCIPALS


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_the_codes_table_equals_the_design(action: str) -> None:
    assert {principal.value for principal in access.ALLOWED[access.Action(action)]} == ACTIONS[action]


def test_the_national_lead_may_do_nothing_that_shows_a_person() -> None:
    assert {action for action, allowed in ACTIONS.items() if "national_lead" in allowed} == {"read_national_figures"}


# ---------------------------------------------------------------- tests

class _SharedBytecode(BytecodeCache):
    """Compiled templates shared by this module's apps (one app per case).

    Keyed by Jinja on the template's name and a checksum of its source, so a
    changed template is compiled again; only the compiling is saved.
    """

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


_BYTECODE = _SharedBytecode()


@pytest.fixture(autouse=True)
def _compile_templates_once(app: Flask) -> None:
    app.jinja_env.bytecode_cache = _BYTECODE


def test_every_route_is_in_the_table(app: Flask) -> None:
    served = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - IGNORED_METHODS
    }
    declared = [route.key for route in ROUTES]
    assert len(declared) == len(set(declared)), "a route is declared twice"
    missing = served - set(declared)
    assert not missing, f"routes with no line in the access table: {sorted(missing)}"
    stale = set(declared) - served
    assert not stale, f"lines in the access table for routes the app lacks: {sorted(stale)}"
    for route in ROUTES:
        assert set(route.allowed) <= EVERYONE, route.key


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.endpoint}-{r.method}")
def test_each_url_reaches_its_endpoint(app: Flask, world: World, route: Route) -> None:
    path = urlsplit(route.url(world)).path
    endpoint, _args = app.url_map.bind("localhost").match(path, method=route.method)
    assert endpoint == route.endpoint


def _denied_secrets(world: World, principal: str) -> list[str]:
    """What a denied answer must not contain."""
    own = PRINCIPALS[principal]
    secrets = [ref.email for key, ref in world.users.items() if key != own]
    secrets += [NEW_MEMBER, *FORCE_NAMES, FORCE_COLOURS["durham"]]
    if principal not in FORCE_A_MEMBERS:  # a member's 403 page may keep its force's colour
        secrets.append(FORCE_COLOURS["west-midlands"])
    return secrets


def _assert_denied(route: Route, principal: str, *, url: str, status: int,
                   location: str | None, body: str) -> None:
    if route.api:
        assert status == 401, body[:500]
        assert json.loads(body) == {"errors": [
            {"field": None, "message": "Send a valid API token: Authorization: Bearer <token>."}]}
    elif principal == "anonymous":
        assert status == 302
        assert location is not None
        parts = urlsplit(location)
        assert parts.path == "/sign-in"
        assert parse_qs(parts.query)["next"] == [url]
    elif (route.force_page and principal not in FORCE_A_MEMBERS) or \
            (route.provider_page and principal in PROVIDER_STAFF):
        assert status == 404, body[:500]
        assert "Page not found" in body
    else:
        assert status == 403, body[:500]
        assert "You cannot do this" in body


CASES = [pytest.param(route, principal, id=f"{route.endpoint}-{route.method}-{principal}")
         for route in ROUTES for principal in PRINCIPALS]


@pytest.mark.parametrize(("route", "principal"), CASES)
def test_access(app: Flask, client: FlaskClient, world: World, route: Route,
                principal: str) -> None:
    user_key = PRINCIPALS[principal]
    if user_key is not None:
        assert sign_in(client, world.email(user_key)).status_code == 302
        assert _signed_in_as(client) == world.email(user_key)
    if route.setup is not None:
        route.setup(app, world)
    url = route.url(world)
    if route.method == "GET":
        response = client.get(url)
    else:
        # Any page's token is the session's token: /sign-in is open to all.
        token = csrf_token(client.get("/sign-in").text)
        response = client.post(url, data={**route.data(app, world), "csrf_token": token})
    body = response.get_data(as_text=True)
    response.close()
    # Allowed or denied, no answer but a static asset may be stored (diversion.web.forbid_storing).
    if route.endpoint == "static":
        assert "no-store" not in response.headers.get("Cache-Control", "")
    else:
        assert response.headers.get("Cache-Control") == "no-store"
    expected = route.allowed.get(principal)
    if expected is not None:
        assert response.status_code == expected.status, body[:500]
        if expected.location is not None:
            assert response.headers["Location"] == expected.location
        for text in route.shows(world):
            assert text in body
    else:
        _assert_denied(route, principal, url=url, status=response.status_code,
                       location=response.headers.get("Location"), body=body)
        for secret in _denied_secrets(world, principal):
            assert secret not in body, f"denied answer shows {secret!r}"
    if route.effect is not None:
        assert route.effect(app, world, client, user_key) is (expected is not None)


def test_a_token_from_the_sign_in_page_is_the_sessions_token(
    app: Flask, client: FlaskClient, world: World
) -> None:
    """Why the table may take its CSRF token from /sign-in, and why a denial is not CSRF."""
    sign_in(client, world.email("platform_admin"))
    target = f"/admin/people/{world.users['no_role'].id}/deactivate"
    assert client.post(target).status_code == 400  # no token: refused before anything
    other = app.test_client()
    foreign = csrf_token(other.get("/sign-in").text)
    assert client.post(target, data={"csrf_token": foreign}).status_code == 400
    assert _user_active(app, world, "no_role")
    token = csrf_token(client.get("/sign-in").text)
    assert client.post(target, data={"csrf_token": token}).status_code == 302
    assert not _user_active(app, world, "no_role")
    # Anonymous too: the CSRF check comes first (400), the sign-in redirect after.
    anonymous = app.test_client()
    remove = f"/west-midlands/members/{world.memberships['a_officer'].id}/remove"
    assert anonymous.post(remove).status_code == 400
    token = csrf_token(anonymous.get("/sign-in").text)
    assert anonymous.post(remove, data={"csrf_token": token}).status_code == 302
