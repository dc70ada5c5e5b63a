"""What people type reaches every page as text, never as markup.

The GOV.UK macros output a cell's or a summary value's ``html`` as it is, so
whatever a template puts there must already be escaped. The first test puts
a marker that closes an attribute and opens a script into every value that
can reach a page (names, titles, venues, notes, reasons, token names, a
person's identity and contact details...), as far as each field accepts it,
reads every page back as a principal who may see it, and checks that the
marker only ever appears escaped, once (escaped twice would show the
entities on the page). The second reads the templates themselves: an
``html`` value may only be a literal, a macro's output or a variable set by
a ``{% set %}`` block, never markup put together with ``~``.
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from jinja2 import nodes
from markupsafe import escape
from sqlalchemy import select

from diversion.accounts import invitations
from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ProviderMembership, ProviderRole, Role, User
from diversion.billing import contracts
from diversion.billing.models import EventKind, LedgerEntry, VatTreatment
from diversion.billing.months import month_key, month_of
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.catalogue import services as catalogue
from diversion.catalogue.models import Course, Provider
from diversion.eligibility import runs as simulation_runs
from diversion.eligibility import services as policies
from diversion.eligibility.models import Decision
from diversion.eligibility.views import document_toml
from diversion.extensions import db
from diversion.forces import onboarding
from diversion.insights import services as insights
from diversion.jsonapi import tokens as api_tokens
from diversion.jsonapi import tokens as provider_tokens
from diversion.providers import services as providers
from diversion.providers import webhooks
from diversion.tenancy.context import provider_scoped, scoped
from diversion.tenancy.models import Tenant
from tests.conftest import PASSWORD, World, csrf_token, sign_in, started_today

# Closes a double-quoted attribute and opens a script: harmless only if escaped.
MARK = '"><script>alert(1)</script>'
TEMPLATES = Path(__file__).resolve().parent.parent / "platform" / "diversion" / "templates"
FACTS = {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
         "user_dealer": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
         "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
         "resident_in_force_area": True, "stage": "street", "suitable_for_out_of_court_disposal": True}
# Pages with nothing a person types on them, or not HTML.
# Single sign-on's start and callback redirect, or refuse with fixed words: no value of a force's to show.
NOT_READ = {"static", "public.health", "console.export", "settings.export", "console.audit_download",
            "force_audit.download", "sso.start", "sso.callback", "force_billing.download", "provider_billing.download",
            "admin_billing.download",
            # Charts: images, whose texts matplotlib writes escaped as XML.
            "national.funnel_svg", "national.trend_svg", "force_insights.force_funnel_svg",
            "force_insights.force_trend_svg"}
NOT_READ_PREFIXES = ("api.", "provider_api.")


def marked(label: str) -> str:
    return f"{label} {MARK}"


def marked_email(label: str) -> str:
    """An address the validator accepts, with what markup needs escaped (no quotes or brackets allowed)."""
    return f"{label}.o'hara&co@example.org"


def shown(value: str) -> str:
    """``value`` as a page must show it: escaped once."""
    return str(escape(value))


@dataclass
class Seeded:
    """Ids of what ``seed`` made, and the users who read the pages."""

    users: dict[str, str] = field(default_factory=dict)  # key -> email
    ids: dict[str, Any] = field(default_factory=dict)


def _edit(document: dict[str, Any], pathway: str, criterion: str, reason: str, holds: str | None = None) -> None:
    found = next(p for p in document["pathways"] if p["id"] == pathway)
    changed = next(c for c in found["criteria"] if c["id"] == criterion)
    changed["reason"] = reason
    if holds is not None:
        changed["holds"] = holds


@dataclass
class _Seeding:
    """What the seeding steps share."""

    seeded: Seeded
    tenant: Tenant
    provider: Provider
    users: dict[str, User]
    today: date


def _people(world: World, seeded: Seeded, today: date) -> _Seeding:
    """Marked users in every role, and marked force names (force files take any text there)."""
    tenant = db.session.get(Tenant, world.a.id)
    other = db.session.get(Tenant, world.b.id)
    provider = db.session.scalar(select(Provider).where(Provider.slug == "cranstoun"))
    assert tenant is not None
    assert other is not None
    assert provider is not None
    tenant.scheme_name = marked("scheme")
    other.name = marked("other-force")
    users: dict[str, User] = {}
    for key in ("force-admin", "officer", "supervisor", "provider-admin"):
        users[key] = accounts.create_user(email=marked_email(key), name=marked(key), password=PASSWORD, actor=SYSTEM)
        seeded.users[key] = users[key].email
    with scoped(tenant.id):
        for key, role in (("force-admin", Role.FORCE_ADMIN), ("officer", Role.OFFICER),
                          ("supervisor", Role.SUPERVISOR)):
            seeded.ids[f"{key}-membership"] = accounts.add_membership(tenant, users[key], role, actor=SYSTEM).id
    db.session.add(ProviderMembership(provider_id=provider.id, user_id=users["provider-admin"].id,
                                      role=ProviderRole.ADMIN))
    seeded.ids["provider"] = provider.id
    seeded.ids["provider-admin-user"] = users["provider-admin"].id
    return _Seeding(seeded, tenant, provider, users, today)


def _catalogue(s: _Seeding, world: World) -> None:
    """The provider (Cranstoun) renamed, a marked course, the provider's token and webhook endpoint."""
    platform_admin = db.session.get(User, world.users["platform_admin"].id)
    assert platform_admin is not None
    catalogue.update_provider(s.provider, {"name": marked("provider"), "website": f"https://example.org/{MARK}",
                                           "contact_email": f"{MARK}@example.org"}, actor=platform_admin)
    course = catalogue.create_course({
        "slug": "escaping-course", "provider": s.provider.slug, "title": marked("course"),
        "kinds": ["adult_education"], "format": "group", "sessions": 1, "session_minutes": 120,
        "delivery": ["online"], "min_age": 18, "max_age": None, "languages": ["en"], "areas": ["west-midlands"],
        "description": marked("description")}, actor=platform_admin)
    s.seeded.ids["course"] = course.id
    webhooks.set_endpoint(s.provider, url=f"https://example.org/hooks/{MARK}", actor=s.users["provider-admin"])
    s.seeded.ids["provider_token"] = provider_tokens.make_provider_token(
        s.provider, name=marked("provider-token"), actor=s.users["provider-admin"])[0].id


def _policy(s: _Seeding) -> None:
    """Version 2 in force from today, every text of it marked (ids have a pattern), and a draft after it."""
    in_force = policies.policy_in_force(s.today)
    assert in_force is not None
    s.seeded.ids["first_version"] = in_force.number
    document = tomllib.loads(document_toml(in_force.document))
    document["summary"] = marked("summary")
    divert = next(p for p in document["pathways"] if p["id"] == "divert")
    divert["name"] = marked("pathway")
    divert["description"] = marked("pathway-description")
    _edit(document, "divert", "pre-arrest", marked("criterion"), marked("criterion-holds"))
    document["exclusions"][0]["reason"] = marked("exclusion")
    document["tests"][0]["name"] = marked("test-case")
    admin = s.users["force-admin"]
    version = policies.save_draft(s.tenant, document, actor=admin, note=marked("note"))
    policies.publish(s.tenant, version, effective_from=s.today, actor=admin, today=s.today)
    s.seeded.ids["version"] = version.number
    draft = copy.deepcopy(document)
    _edit(draft, "divert", "possession", marked("draft-criterion"))
    policies.save_draft(s.tenant, draft, actor=admin, note=marked("draft-note"))


def _cases(s: _Seeding) -> None:
    """The marked course offered with marked details; marked people, decided each way, one referred."""
    course = db.session.get(Course, s.seeded.ids["course"])
    assert course is not None
    offering = catalogue.add_offering(s.tenant, course, "divert", catalogue.LocalDetails(
        venues=[marked("venue-one"), marked("venue-two")], booking_contact=marked("booking"),
        notes=marked("notes")), actor=s.users["force-admin"], today=s.today)
    s.seeded.ids["offering"] = offering.id
    s.seeded.ids["force_token"] = api_tokens.make_force_token(s.tenant, name=marked("force-token"),
                                                               actor=s.users["force-admin"])[0].id

    def encounter(label: str, **facts: Any) -> Decision:
        _, decision = cases.record_encounter(s.tenant, cases.Intake(
            Identity(marked(f"{label}-surname"), marked(f"{label}-given"), date(1990, 4, 5)),
            # A phone number is at most 40 characters: its label is short.
            Contact(phone=marked(f"{label[:3]}-ph"), email=marked(f"{label}-email"),
                    address=marked(f"{label}-address")),
            "W1", s.today - timedelta(days=1), {**FACTS, **facts}), actor=s.users["officer"], today=s.today)
        return decision

    referred = encounter("referred")
    referral = cases.refer(s.tenant, referred, offering, actor=s.users["officer"], today=s.today,
                           reason=marked("refer-reason"))
    eligible = encounter("eligible")  # not referred: its page offers the courses
    custody = encounter("custody", stage="custody")
    waiting = encounter("waiting", personal_use=None)
    overridden = encounter("overridden", personal_use=None)
    assert [d.final_outcome for d in (referred, eligible, custody, waiting, overridden)] == \
        ["eligible", "eligible", "not_eligible", "needs_review", "needs_review"]
    cases.override(s.tenant, overridden, outcome="not_eligible", pathway=None, reason=marked("override"),
                   actor=s.users["supervisor"])
    s.seeded.ids.update(referred_case=referred.encounter_id, referred=referred.id, referral=referral.id,
                        eligible=eligible.id, custody=custody.id, waiting=waiting.id, overridden=overridden.id)


def _provider_work(s: _Seeding) -> None:
    """The provider accepts the referral, books a marked session and records attendance with a note."""
    staff = s.users["provider-admin"]
    with provider_scoped(s.provider.id, staff.id):
        referral = providers.find_referral(s.provider, s.seeded.ids["referral"])
        assert referral is not None
        providers.accept(referral, actor=staff, reason=marked("accept-reason"))
        booked = providers.book_session(referral, starts_at=started_today(),
                                        venue=marked("session-venue"), actor=staff)
        providers.record_attendance(booked, attended=True, actor=staff, note=marked("attendance-note"))


def _contract(s: _Seeding) -> None:
    """A contract between the force and the (marked) provider, priced on the (marked) pathway, with marked notes."""
    made = contracts.create_contract(s.tenant, contracts.Terms(
        provider_id=s.provider.id, starts_on=s.today, ends_on=None, monthly_fee_pence=0, vat=VatTreatment.EXEMPT,
        platform_fee_basis_points=250, prices={(EventKind.REFERRAL_ACCEPTED, "divert"): 7000},
        notes=marked("contract-notes")), actor=SYSTEM)
    s.seeded.ids["contract"] = made.id


def _simulation(s: _Seeding) -> None:
    """The draft simulated in the background (its job's work, done here): its page shows the marked reasons."""
    draft = policies.current_draft()
    assert draft is not None
    run = simulation_runs.start(s.tenant, policies.compiled(draft), force=None, number=draft.number,
                                since=None, decisions=5, actor=s.users["force-admin"])
    db.session.commit()  # asked for, as the page's request commits it
    simulation_runs.replay(run)
    s.seeded.ids["simulation"] = run.id


DRAFT = "escaping-draft"


def _draft_force(s: _Seeding, world: World) -> None:
    """A force being set up, its texts marked, with West Midlands' (marked) policy, the marked
    course offered and a marked first admin invited."""
    platform_admin = db.session.get(User, world.users["platform_admin"].id)
    details = onboarding.ForceDetails(
        name=marked("draft-force"), slug=DRAFT, scheme_name=marked("draft-scheme"), area="west-midlands",
        languages=["en"], completed_code="done", completed_label=marked("completed-label"),
        not_completed_code="not-done", not_completed_label=marked("not-completed-label"),
        not_completed_action="prosecution", brand_colour="#123456")
    draft = onboarding.start_draft(details, actor=platform_admin)
    with scoped(draft.id):
        onboarding.copy_policy(draft, s.tenant, actor=platform_admin, today=s.today)
        onboarding.set_offerings(draft, {("divert", s.seeded.ids["course"])}, actor=platform_admin)
        onboarding.invite_first_admin(draft, email=marked_email("first-admin"), name=marked("first-admin"),
                                      actor=platform_admin)


def _invitations(s: _Seeding) -> None:
    """A marked person invited to the force and to the provider (their links kept for the pages)."""
    with scoped(s.tenant.id):
        invitation, token = invitations.invite_to_force(s.tenant, email=marked_email("invitee"),
                                                        name=marked("invitee"), role=Role.OFFICER, actor=SYSTEM)
    s.seeded.ids["force_invitation"] = token
    s.seeded.ids["force_invitation_id"] = invitation.id
    provider_invitation, token = invitations.invite_to_provider(
        s.provider, email=marked_email("provider-invitee"), name=marked("provider-invitee"),
        role=ProviderRole.STAFF, actor=s.users["provider-admin"])
    s.seeded.ids["provider_invitation"] = token
    s.seeded.ids["provider_invitation_id"] = provider_invitation.id
    s.seeded.ids["provider-admin-membership"] = db.session.scalar(select(ProviderMembership.id).where(
        ProviderMembership.user_id == s.users["provider-admin"].id))


def seed(app: Flask, world: World) -> Seeded:
    """Marked values in every field that reaches a page, each through its own service."""
    seeded = Seeded()
    with app.app_context():
        s = _people(world, seeded, datetime.now(UTC).date())
        _catalogue(s, world)
        with scoped(s.tenant.id):
            _policy(s)
            _cases(s)
            _contract(s)
        db.session.commit()
        with scoped(s.tenant.id):
            _simulation(s)
        db.session.commit()
        _provider_work(s)
        with scoped(s.tenant.id):  # the provider's acceptance, billed under the contract
            seeded.ids["ledger-row"] = db.session.scalars(select(LedgerEntry.id)).one()
        seeded.ids["provider-slug"] = s.provider.slug
        _invitations(s)
        db.session.commit()
        _draft_force(s, world)
        db.session.commit()
        # The national comparison, counted: the forces' (marked) names on its pages.
        insights.refresh_all(db.session(), today=datetime.now(UTC).date(), now=datetime.now(UTC))
        db.session.commit()
    return seeded


def pages(world: World, s: Seeded) -> list[tuple[str | None, str, list[str]]]:
    """(who reads it, the page, the marked values it must show)."""
    a = f"/{world.a.slug}"
    ids = s.ids
    provider, month = ids["provider-slug"], month_key(month_of(datetime.now(UTC)))
    person = ["referred-surname", "referred-given", "ref-ph", "referred-email", "referred-address"]
    policy = ["summary", "pathway", "pathway-description", "criterion", "criterion-holds", "exclusion"]
    return [
        (None, "/", []),
        (None, "/sign-in", []),
        ("platform_admin", "/admin/", ["scheme", "other-force"]),
        ("platform_admin", "/admin/catalogue/", ["provider", "course"]),
        ("platform_admin", f"/admin/catalogue/providers/{ids['provider']}", ["provider"]),
        ("platform_admin", "/admin/catalogue/providers/new", []),
        ("platform_admin", f"/admin/catalogue/courses/{ids['course']}", ["course", "description"]),
        ("platform_admin", "/admin/catalogue/courses/new", ["provider"]),
        ("force-admin", f"{a}/", ["scheme"]),
        ("force-admin", f"{a}/members/", ["force-admin", "officer", "supervisor", "invitee"]),
        ("force-admin", f"{a}/members/invite", ["scheme"]),
        (None, f"{a}/invitation/{ids['force_invitation']}", ["invitee"]),
        (None, f"/provider/invitation/{ids['provider_invitation']}", ["provider-invitee", "provider"]),
        ("platform_admin", "/admin/people/", ["force-admin", "officer", "supervisor", "provider-admin", "provider"]),
        ("platform_admin", f"/admin/people/{ids['provider-admin-user']}/deactivate", ["provider-admin", "provider"]),
        ("platform_admin", "/admin/people/invite", ["other-force", "provider"]),
        ("force-admin", f"{a}/members/{ids['officer-membership']}/role", ["officer"]),
        ("force-admin", f"{a}/members/{ids['officer-membership']}/remove", ["officer"]),
        ("platform_admin", "/admin/members/new", ["other-force"]),
        ("force-admin", f"{a}/offerings/",
         ["course", "provider", "venue-one", "venue-two", "booking", "notes", "pathway"]),
        ("force-admin", f"{a}/offerings/{ids['offering']}", ["venue-one", "venue-two", "booking", "notes"]),
        ("force-admin", f"{a}/offerings/new?pathway=divert", ["pathway"]),
        ("force-admin", f"{a}/offerings/{ids['offering']}/withdraw", ["course", "provider", "pathway"]),
        ("force-admin", f"{a}/members/invitations/{ids['force_invitation_id']}/withdraw", ["invitee", "scheme"]),
        ("force-admin", f"{a}/api-tokens/", ["force-token", "force-admin"]),
        ("force-admin", f"{a}/api-tokens/{ids['force_token']}/revoke", ["force-token"]),
        ("force-admin", f"{a}/settings/sign-on", []),
        ("force-admin", f"{a}/policy/", policy),
        ("force-admin", f"{a}/policy/versions", ["note", "draft-note"]),
        ("force-admin", f"{a}/policy/versions/{ids['version']}", policy),
        ("force-admin", f"{a}/policy/versions/diff?from={ids['first_version']}&to={ids['version'] + 1}",
         ["criterion", "draft-criterion", "exclusion", "pathway"]),
        ("force-admin", f"{a}/policy/draft", []),  # the TOML has its own quoting: read, and checked as a whole
        ("force-admin", f"{a}/policy/draft/discard", ["draft-note"]),
        ("force-admin", f"{a}/policy/fields", []),
        ("force-admin", f"{a}/policy/simulate?source=draft", ["criterion", "other-force"]),
        ("force-admin", f"{a}/policy/simulate/runs/{ids['simulation']}", ["criterion"]),
        ("force-admin", f"{a}/referrals", ["course", "referred-surname", "referred-given"]),
        ("officer", f"{a}/cases/", ["referred-surname", "referred-given"]),
        ("officer", f"{a}/encounters/new", []),
        ("officer", f"{a}/cases/{ids['referred_case']}",
         [*person, "course", "provider", "session-venue", "refer-reason", "accept-reason", "attendance-note",
          "officer", "provider-admin"]),
        ("officer", f"{a}/decisions/{ids['referred']}", ["pathway", "criterion-holds"]),
        ("officer", f"{a}/decisions/{ids['eligible']}", ["pathway", "criterion-holds", "course"]),
        ("officer", f"{a}/decisions/{ids['custody']}", ["criterion"]),
        ("supervisor", f"{a}/decisions/{ids['overridden']}", ["override", "pathway"]),
        ("supervisor", f"{a}/review", []),
        ("supervisor", f"{a}/decisions/{ids['waiting']}/facts", []),
        ("provider-admin", "/provider/", ["provider", "course"]),
        ("provider-admin", f"/provider/referrals/{ids['referral']}",
         [*person, "course", "provider", "session-venue", "accept-reason", "attendance-note", "provider-admin"]),
        ("provider-admin", "/provider/integrations/", ["provider", "provider-token"]),
        ("provider-admin", f"/provider/integrations/tokens/{ids['provider_token']}/revoke",
         ["provider", "provider-token"]),
        ("platform_admin", "/admin/forces/new", []),
        ("platform_admin", f"/admin/forces/{DRAFT}/setup/", ["draft-force", "draft-scheme", "first-admin"]),
        ("platform_admin", f"/admin/forces/{DRAFT}/setup/details",
         ["draft-force", "draft-scheme", "completed-label", "not-completed-label"]),
        ("platform_admin", f"/admin/forces/{DRAFT}/setup/policy", ["draft-force", "other-force", "pathway"]),
        ("platform_admin", f"/admin/forces/{DRAFT}/setup/offerings", ["draft-force", "course", "provider", "pathway"]),
        ("platform_admin", f"/admin/forces/{DRAFT}/setup/sign-on", ["draft-force"]),
        ("platform_admin", f"/admin/forces/{DRAFT}/setup/first-admin", ["draft-force", "first-admin"]),
        ("platform_admin", f"/admin/forces/{DRAFT}/discard", ["draft-force"]),
        ("provider-admin", "/provider/people/", ["provider", "provider-admin", "provider-invitee"]),
        ("provider-admin", "/provider/people/invite", ["provider"]),
        ("provider-admin", f"/provider/people/invitations/{ids['provider_invitation_id']}/withdraw",
         ["provider", "provider-invitee"]),
        ("provider-admin", f"/provider/people/{ids['provider-admin-membership']}/role", ["provider", "provider-admin"]),
        ("provider-admin", f"/provider/people/{ids['provider-admin-membership']}/remove",
         ["provider", "provider-admin"]),
        ("force-admin", f"{a}/settings/", ["scheme"]),
        ("force-admin", f"{a}/settings/names", ["scheme"]),
        ("force-admin", f"{a}/audit/", []),
        ("force-admin", f"{a}/audit/?action=api_token", ["force-token"]),
        ("platform_admin", "/admin/audit/?action=provider_token", ["provider-token"]),
        ("platform_admin", f"/admin/forces/{world.a.slug}/suspend", []),
        ("platform_admin", "/admin/billing/contracts/", ["provider"]),
        ("platform_admin", "/admin/billing/contracts/new", ["other-force", "draft-force"]),
        ("platform_admin", f"/admin/billing/contracts{a}/new", ["provider", "pathway"]),
        ("platform_admin", f"/admin/billing/contracts{a}/{ids['contract']}", ["provider", "pathway", "contract-notes"]),
        ("platform_admin", f"/admin/billing/contracts{a}/{ids['contract']}/edit",
         ["provider", "pathway", "contract-notes"]),
        ("force-admin", f"{a}/billing/contracts/", ["provider"]),
        ("force-admin", f"{a}/billing/contracts/{ids['contract']}", ["provider", "pathway", "contract-notes"]),
        ("provider-admin", "/provider/billing/contracts/", ["provider"]),
        ("provider-admin", f"/provider/billing/contracts/{ids['contract']}", ["provider", "pathway", "contract-notes"]),
        ("platform_admin", "/admin/billing/reconciliation?month=2026-11", ["other-force"]),
        ("force-admin", f"{a}/billing/", ["provider"]),
        ("force-admin", f"{a}/billing/{provider}/{month}", ["provider", "pathway"]),
        ("provider-admin", "/provider/billing/", ["provider"]),
        ("provider-admin", f"/provider/billing/{world.a.slug}/{month}", ["provider", "pathway"]),
        ("provider-admin", "/provider/billing/payouts/", ["provider"]),
        ("platform_admin", f"/admin/billing/?month={month}", ["provider"]),
        ("platform_admin", f"/admin/billing{a}/{provider}/{month}", ["provider", "pathway"]),
        ("platform_admin", f"/admin/billing{a}/{provider}/{month}/rows/{ids['ledger-row']}/reverse",
         ["provider", "pathway"]),
        ("platform_admin", "/admin/billing/close/", ["other-force"]),
        ("platform_admin", "/admin/billing/close/2026-11", ["other-force"]),
        ("platform_admin", f"/admin/billing/close/2026-11?force={world.b.slug}", ["other-force"]),
        ("national_lead", "/national/", ["other-force"]),
        ("national_lead", "/national/completion", ["other-force"]),
        ("national_lead", f"/national/compare?first={world.b.id}&second={world.a.id}", ["other-force"]),
        ("national_lead", f"/national/equality?force={world.b.id}", ["other-force"]),
        ("force-admin", f"{a}/insights/", ["scheme"]),
        ("force-admin", f"{a}/insights/completion", ["scheme"]),
        ("force-admin", f"{a}/insights/assumptions", ["scheme"]),
    ]


def assert_escaped(url: str, page: str) -> None:
    assert "<script>alert(" not in page, f"{url} shows a marker as markup"
    assert "o'hara&co" not in page, f"{url} shows an address unescaped"
    assert "&amp;lt;" not in page, f"{url} escapes a marker twice"
    assert "&amp;#34;" not in page, f"{url} escapes a marker twice"


def test_every_value_reaches_the_pages_escaped(app: Flask, world: World) -> None:
    seeded = seed(app, world)
    clients: dict[str | None, FlaskClient] = {}
    read: set[str] = set()
    adapter = app.url_map.bind("localhost")
    for who, url, labels in pages(world, seeded):
        if who not in clients:
            clients[who] = app.test_client()
            if who is not None:
                email = seeded.users.get(who) or world.email(who)
                assert sign_in(clients[who], email).status_code == 302, who
        response = clients[who].get(url)
        page = response.get_data(as_text=True)
        assert response.status_code == 200, (url, page[:500])
        assert_escaped(url, page)
        for label in labels:
            assert shown(marked(label)) in page, f"{url} does not show {label!r} (escaped once)"
        read.add(adapter.match(url.split("?")[0], method="GET")[0])
        if who is not None and who in seeded.users:
            assert shown(seeded.users[who]) in page  # "signed in as"

    # Pages that answer a form: the draft's test results, a flashed message naming a token.
    admin = clients["force-admin"]
    a = f"/{world.a.slug}"
    tested = admin.post(f"{a}/policy/draft/test", data={"csrf_token": csrf_token(admin.get(f"{a}/policy/draft").text)})
    assert tested.status_code == 200
    assert_escaped("draft test results", tested.text)
    assert shown(marked("test-case")) in tested.text
    tokens_page = admin.get(f"{a}/api-tokens/").text
    revoke = re.search(r'href="([^"]+/revoke)"', tokens_page)
    assert revoke is not None
    asked = admin.get(revoke.group(1))  # the question first
    assert asked.status_code == 200
    assert_escaped("the question before a token is revoked", asked.text)
    assert shown(marked("force-token")) in asked.text
    revoked = admin.post(revoke.group(1), data={"csrf_token": csrf_token(asked.text)},
                         follow_redirects=True)
    assert revoked.status_code == 200
    assert_escaped("a revoked token's message", revoked.text)
    assert shown(marked("force-token")) in revoked.text

    pages_served = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in (rule.methods or set())}
    unread = {e for e in pages_served - read - NOT_READ if not e.startswith(NOT_READ_PREFIXES)}
    assert not unread, f"pages this test does not read: {sorted(unread)}"


# ---------------------------------------------------------------- the templates themselves

def _is_html_key(key: nodes.Node) -> bool:
    return isinstance(key, nodes.Const) and isinstance(key.value, str) and \
        (key.value == "html" or key.value.endswith("Html"))


class _Template:
    """What one template defines: macros it may call, and what each name is set to."""

    def __init__(self, tree: nodes.Template) -> None:
        self.macros = {m.name for m in tree.find_all(nodes.Macro)}
        for imported in tree.find_all(nodes.FromImport):
            self.macros |= {n[1] if isinstance(n, tuple) else n for n in imported.names}
        self.modules = {i.target for i in tree.find_all(nodes.Import)}
        self.assigned: dict[str, list[nodes.Node]] = {}
        for assign in tree.find_all(nodes.Assign):
            if isinstance(assign.target, nodes.Name):
                self.assigned.setdefault(assign.target.name, []).append(assign.node)
        self.blocks = {a.target.name for a in tree.find_all(nodes.AssignBlock) if isinstance(a.target, nodes.Name)}

    def safe(self, node: nodes.Node | None, seen: frozenset[str] = frozenset()) -> bool:
        """True when ``node`` can only be a literal, a macro's output or a set block's (escaped) text.

        Anything else (`~`, `+`, `%`, a filter, a Python function's result,
        a variable from the view) can be a plain string, output unescaped.
        """
        if isinstance(node, nodes.CondExpr):
            return self.safe(node.expr1, seen) and self.safe(node.expr2, seen)
        if isinstance(node, nodes.Call):
            return self._is_macro(node.node)
        if isinstance(node, nodes.Name) and node.name not in seen:
            values = self.assigned.get(node.name, [])
            known = node.name in self.blocks or bool(values)
            return known and all(self.safe(value, seen | {node.name}) for value in values)
        return node is None or isinstance(node, nodes.Const | nodes.Name)

    def _is_macro(self, callee: nodes.Node) -> bool:
        if isinstance(callee, nodes.Getattr):
            return isinstance(callee.node, nodes.Name) and callee.node.name in self.modules
        return isinstance(callee, nodes.Name) and callee.name in self.macros


def test_no_template_builds_html_from_strings(app: Flask) -> None:
    found: list[str] = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        name = path.relative_to(TEMPLATES).as_posix()
        tree = app.jinja_env.parse(path.read_text(encoding="utf-8"), name=name)
        template = _Template(tree)
        for pair in tree.find_all(nodes.Pair):
            if _is_html_key(pair.key) and not template.safe(pair.value):
                found.append(f"{name}:{pair.lineno}")
    assert not found, f"html built from strings (use a macro of _cells.html or a set block): {found}"
