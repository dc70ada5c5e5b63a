"""Onboarding a force in the console (``forces.onboarding`` and ``/admin/forces/...``):
each step's refusals, resuming, discarding and finishing, and a draft that
is closed to its members and takes no cases."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select

from diversion.accounts import access
from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM, Action
from diversion.accounts.invitations import ForceInvitation
from diversion.accounts.models import ForceMembership, Role, User
from diversion.accounts.sso import ForceSignOn
from diversion.audit.models import AuditEvent
from diversion.billing.models import Contract
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.catalogue.models import Course, Offering, Provider
from diversion.eligibility import services as policies
from diversion.eligibility.compiler import PolicyInvalid
from diversion.eligibility.models import PolicyStatus, PolicyVersion
from diversion.errors import AccessRefused
from diversion.extensions import db
from diversion.forces import onboarding
from diversion.forces.files import RESERVED_SLUGS
from diversion.forces.onboarding import ForceDetails, OnboardingError, TaskStatus
from diversion.jsonapi import tokens as api_tokens
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, NonCompletionAction, Tenant
from tests.conftest import PASSWORD, World, post_form, sign_in

CLEVELAND = ForceDetails(
    name="Cleveland Police", slug="cleveland", scheme_name="Checkpoint Cleveland", area="cleveland",
    languages=["en"], completed_code="outcome-22", completed_label="No further action (Outcome 22)",
    not_completed_code="prosecution", not_completed_label="Prosecution resumes",
    not_completed_action="prosecution", brand_colour="#00558C",
)
CLEVELAND_COURSES = ("cleveland-navigator-contract", "cranstoun-cleveland-education")
FACTS = {"offence": "possession", "substances": ["cannabis"], "drug_class": "B", "personal_use": True,
         "user_dealer": False, "admission": "admitted", "under_court_order": False, "on_bail": False,
         "held_for_court": False, "detained_mental_health_act": False, "aggravating_factors": [],
         "resident_in_force_area": True, "stage": "custody", "suitable_for_out_of_court_disposal": True}


def today() -> date:
    return datetime.now(UTC).date()


def admin(world: World) -> User:
    user = db.session.get(User, world.users["platform_admin"].id)
    assert user is not None
    return user


def force(slug: str) -> Tenant:
    found = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    assert found is not None
    return found


def course_ids(*slugs: str) -> list[int]:
    return [db.session.scalar(select(Course.id).where(Course.slug == slug)) for slug in slugs]


def start(world: World, details: ForceDetails = CLEVELAND) -> Tenant:
    return onboarding.start_draft(details, actor=admin(world))


def set_up(world: World, *, finish: bool = False) -> int:
    """Cleveland through every step (inside an app context); committed; returns its id."""
    tenant = start(world)
    with scoped(tenant.id, world.users["platform_admin"].id):
        onboarding.copy_policy(tenant, force("durham"), actor=admin(world), today=today())
        onboarding.set_offerings(tenant, {("checkpoint", c) for c in course_ids(*CLEVELAND_COURSES)},
                                 actor=admin(world))
        onboarding.invite_first_admin(tenant, email="chief@cleveland.example", name="Chief Admin",
                                      actor=admin(world))
        if finish:
            onboarding.finish(tenant, actor=admin(world), today=today())
    db.session.commit()
    return tenant.id


def audit_actions(database: Any) -> list[tuple[str, int | None]]:
    """Every audit event's action and force, read past row-level security (the app role sees one force's)."""
    engine = create_engine(database.inspector_url)
    with engine.connect() as connection:
        table = AuditEvent.__table__
        rows = connection.execute(select(table.c.action, table.c.tenant_id).order_by(table.c.occurred_at)).all()
    engine.dispose()
    return [(row.action, row.tenant_id) for row in rows]


# ---------------------------------------------------------------- details

def test_starting_makes_a_draft_force_with_the_details(app: Flask, database: Any, world: World) -> None:
    with app.app_context():
        tenant = start(world)
        db.session.commit()
        assert tenant.status is ForceStatus.DRAFT
        assert (tenant.slug, tenant.name, tenant.scheme_name, tenant.area) == (
            "cleveland", "Cleveland Police", "Checkpoint Cleveland", "cleveland")
        assert tenant.brand_colour == "#00558c"
        assert tenant.not_completed_action is NonCompletionAction.PROSECUTION
        assert [d.slug for d in onboarding.drafts()] == ["cleveland"]
        tenant_id = tenant.id
    assert ("tenant.draft_started", tenant_id) in audit_actions(database)


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"slug": "Cleveland Police"}, "slug", "lower-case letters"),
    ({"slug": "admin"}, "slug", "^‘admin’ is one of the platform’s own addresses: choose another address.$"),
    ({"slug": "durham"}, "slug", "already has the address"),
    ({"name": "durham constabulary"}, "name", "A force is already called durham constabulary"),
    ({"name": "  "}, "name", "cannot be empty"),
    ({"name": "x" * 201}, "name", "200 characters or fewer"),
    ({"area": ""}, "area", "Choose the force area"),
    ({"area": "atlantis"}, "area", "not a police force area"),
    ({"languages": []}, "languages", "at least one language"),
    ({"languages": ["fr"]}, "languages", "unknown language"),
    ({"languages": ["en", "en"]}, "languages", "listed twice"),
    ({"brand_colour": "blue"}, "brand_colour", "#1d70b8"),
    ({"completed_code": ""}, "completed_code", "cannot be empty"),
    ({"not_completed_label": ""}, "not_completed_label", "cannot be empty"),
    ({"not_completed_action": "fine"}, "not_completed_action", "choose one of the answers"),
])
def test_details_are_checked_by_the_force_files_rules(app: Flask, world: World, change: dict[str, Any],
                                                      field: str, words: str) -> None:
    with app.app_context():
        with pytest.raises(OnboardingError, match=words) as refused:
            start(world, replace(CLEVELAND, **change))
        assert refused.value.field == field
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Tenant).where(Tenant.slug != "durham")
                                 .where(Tenant.status == ForceStatus.DRAFT)) == 0


def test_every_first_part_of_the_platforms_addresses_is_reserved(app: Flask) -> None:
    first_parts = {rule.rule.split("/")[1] for rule in app.url_map.iter_rules()} - {"", "<tenant>"}
    assert first_parts <= RESERVED_SLUGS


def test_only_a_platform_admin_or_the_platform_starts_a_draft(app: Flask, world: World) -> None:
    with app.app_context():
        for key in ("a_force_admin", "national_lead", "no_role"):
            with pytest.raises(AccessRefused):
                onboarding.start_draft(CLEVELAND, actor=db.session.get(User, world.users[key].id))
        assert onboarding.start_draft(CLEVELAND, actor=SYSTEM).status is ForceStatus.DRAFT


def test_details_change_but_not_the_address(app: Flask, world: World) -> None:
    with app.app_context():
        tenant = start(world)
        with scoped(tenant.id):
            changed = onboarding.change_details(tenant, replace(CLEVELAND, slug="elsewhere", languages=["en", "cy"],
                                                                scheme_name="Checkpoint"), actor=admin(world))
        assert sorted(changed) == ["languages", "scheme_name"]
        assert (tenant.slug, tenant.languages) == ("cleveland", ["en", "cy"])


# ---------------------------------------------------------------- the first policy

def test_a_copied_policy_is_the_sources_and_stays_a_draft_until_the_force_opens(app: Flask, world: World) -> None:
    with app.app_context():
        tenant = start(world)
        templates = onboarding.policy_templates(tenant, today=today())
        assert {t.force.slug for t in templates} == {"west-midlands", "durham", "thames-valley",
                                                    "avon-and-somerset", "north-wales"}
        durham = next(t for t in templates if t.force.slug == "durham")
        with scoped(tenant.id):
            version = onboarding.copy_policy(tenant, durham.force, actor=admin(world), today=today())
            assert version.status is PolicyStatus.DRAFT
            assert version.content_hash == durham.version.content_hash
            assert onboarding.policy_state(tenant, today=today()).ready
            assert policies.policy_in_force(today()) is None
            # Publishing in the policy console waits for the force to open.
            with pytest.raises(policies.PolicyError, match="published when the force opens"):
                policies.publish(tenant, version, effective_from=today(), actor=admin(world), today=today())
            tasks = {t.key: t.status for t in onboarding.progress(tenant, today=today())}
        assert tasks == {"details": TaskStatus.COMPLETED, "policy": TaskStatus.COMPLETED,
                         "offerings": TaskStatus.NOT_STARTED, "sign_on": TaskStatus.OPTIONAL,
                         "first_admin": TaskStatus.NOT_STARTED}


def test_a_blank_policy_passes_its_tests_and_names_every_catalogue_field(app: Flask, world: World) -> None:
    from diversion.eligibility.fields import FIELDS

    with app.app_context():
        tenant = start(world)
        with scoped(tenant.id):
            version = onboarding.blank_policy(tenant, actor=admin(world), today=today())
            assert set(version.document["test_defaults"]) == set(FIELDS)
            assert onboarding.policy_state(tenant, today=today()).ready


def test_a_policy_that_fails_its_tests_leaves_the_step_in_progress(app: Flask, world: World) -> None:
    with app.app_context():
        tenant = start(world)
        with scoped(tenant.id):
            version = onboarding.blank_policy(tenant, actor=admin(world), today=today())
            broken = dict(version.document)
            broken["tests"] = [{"name": "wrong", "facts": {"age": 17}, "expect": "eligible",
                                "pathway": "adult-education"}]
            policies.save_draft(tenant, broken, actor=admin(world))  # as the policy console would
            task = next(t for t in onboarding.progress(tenant, today=today()) if t.key == "policy")
            assert task.status is TaskStatus.IN_PROGRESS
            assert "tests do not pass" in task.hint


def test_a_force_that_works_in_welsh_starts_from_any_policy_and_opens_once_it_has_its_welsh(
        app: Flask, world: World) -> None:
    with app.app_context():
        tenant = start(world, replace(CLEVELAND, languages=["en", "cy"]))
        with scoped(tenant.id):
            for version in (onboarding.copy_policy(tenant, force("west-midlands"), actor=admin(world), today=today()),
                            onboarding.blank_policy(tenant, actor=admin(world), today=today())):
                assert version.status is PolicyStatus.DRAFT
            state = onboarding.policy_state(tenant, today=today())
            assert not state.failing
            assert not state.ready
            assert state.welsh_missing.startswith("6 sentences have no Welsh, among them the policy’s summary.")
            task = next(t for t in onboarding.progress(tenant, today=today()) if t.key == "policy")
            assert task.status is TaskStatus.IN_PROGRESS
            assert "Add it in the policy console" in task.hint
            assert "_cy" not in task.hint
            # Publishing (as opening does) says what is missing, in words.
            with pytest.raises(policies.PolicyError) as refused:
                policies.publish(tenant, state.version, effective_from=today(), actor=admin(world),  # type: ignore[arg-type]
                                 today=today(), opening=True)
            assert "the policy’s summary" in refused.value.message
            assert "_cy" not in refused.value.message
            # With its Welsh, the step is done.
            onboarding.copy_policy(tenant, force("north-wales"), actor=admin(world), today=today())
            assert onboarding.policy_state(tenant, today=today()).ready


def test_an_open_force_that_works_in_welsh_still_saves_no_draft_without_its_welsh(app: Flask, world: World) -> None:
    with app.app_context():
        north_wales = force("north-wales")
        english = policies.published_policy_of(force("west-midlands"), today())
        assert english is not None
        with scoped(north_wales.id), pytest.raises(PolicyInvalid):
            policies.save_draft(north_wales, dict(english.document), actor=SYSTEM)


def test_copying_refuses_a_force_without_a_policy_and_the_draft_itself(app: Flask, world: World) -> None:
    with app.app_context():
        tenant = start(world)
        other = onboarding.start_draft(replace(CLEVELAND, slug="other-draft", name="Other Police"),
                                       actor=admin(world))
        with scoped(tenant.id):
            for source in (other, tenant):
                with pytest.raises(OnboardingError, match="no policy in force") as refused:
                    onboarding.copy_policy(tenant, source, actor=admin(world), today=today())
                assert refused.value.field == "template"


# ---------------------------------------------------------------- offerings

def test_offerings_are_courses_that_fit_the_policys_pathways_in_the_area(app: Flask, world: World) -> None:
    with app.app_context():
        tenant = start(world)
        with scoped(tenant.id):
            with pytest.raises(OnboardingError, match="first policy first"):
                onboarding.set_offerings(tenant, {("checkpoint", 1)}, actor=admin(world))
            onboarding.copy_policy(tenant, force("durham"), actor=admin(world), today=today())
            [(pathway, fitting)] = onboarding.offering_choices(tenant)
            assert pathway.id == "checkpoint"
            assert sorted(c.slug for c in fitting) == sorted(CLEVELAND_COURSES)
            durham_course, = course_ids("durham-checkpoint-contract")
            refusals = [
                (set(), "at least one course"),
                ({("divert", course_ids(CLEVELAND_COURSES[0])[0])}, "pathways of the force's policy"),
                ({("checkpoint", 999_999)}, "from the catalogue"),
                ({("checkpoint", durham_course)}, "does not serve this force's area"),
            ]
            for chosen, words in refusals:
                with pytest.raises(OnboardingError, match=words):
                    onboarding.set_offerings(tenant, chosen, actor=admin(world))
            both = {("checkpoint", c) for c in course_ids(*CLEVELAND_COURSES)}
            assert len(onboarding.set_offerings(tenant, both, actor=admin(world))) == 2
            one = {("checkpoint", course_ids(CLEVELAND_COURSES[0])[0])}
            assert [o.course.slug for o in onboarding.set_offerings(tenant, one, actor=admin(world))] == [
                CLEVELAND_COURSES[0]]
            assert onboarding.offered() == one


def test_a_new_policy_drops_offerings_for_pathways_it_lacks(app: Flask, world: World) -> None:
    with app.app_context():
        tenant = start(world)
        with scoped(tenant.id):
            onboarding.copy_policy(tenant, force("durham"), actor=admin(world), today=today())
            onboarding.set_offerings(tenant, {("checkpoint", c) for c in course_ids(*CLEVELAND_COURSES)},
                                     actor=admin(world))
            onboarding.blank_policy(tenant, actor=admin(world), today=today())
            assert onboarding.offered() == set()


# ---------------------------------------------------------------- single sign-on, the first force admin

def test_single_sign_on_is_optional_and_checked_as_the_force_settings_are(app: Flask, world: World) -> None:
    from diversion.accounts import sso

    with app.app_context():
        tenant = start(world)
        with scoped(tenant.id):
            settings = {"issuer": "https://example.org/cleveland", "client_id": "platform",
                        "client_secret": "s3cret", "compulsory": False, "new_people": "refuse"}
            for change, field in (({"issuer": "https://127.0.0.1/"}, "issuer"), ({"client_id": ""}, "client_id"),
                                  ({"client_secret": None}, "client_secret"), ({"new_people": "chief"}, "new_people")):
                with pytest.raises(sso.SignOnError) as refused:
                    onboarding.set_sign_on(tenant, actor=admin(world), **{**settings, **change})
                assert refused.value.field == field
            onboarding.set_sign_on(tenant, actor=admin(world), **settings)
            assert sso.client_secret(sso.sign_on_of(tenant)) == "s3cret"
            task = next(t for t in onboarding.progress(tenant, today=today()) if t.key == "sign_on")
            assert (task.status, task.required) == (TaskStatus.COMPLETED, False)


def test_the_first_admin_is_invited_and_the_link_works_once_the_force_opens(app: Flask, world: World) -> None:
    from diversion.accounts import invitations

    with app.app_context():
        tenant = start(world)
        with scoped(tenant.id):
            with pytest.raises(accounts.AccountError) as refused:
                onboarding.invite_first_admin(tenant, email="not an address", name="Chief", actor=admin(world))
            assert refused.value.field == "email"
            invitation, token = onboarding.invite_first_admin(tenant, email="chief@cleveland.example",
                                                              name="Chief Admin", actor=admin(world))
            assert invitation.role is Role.FORCE_ADMIN
            assert invitation.token_hash == invitations.hash_token(token)
            assert onboarding.first_admins() == ["Chief Admin (chief@cleveland.example)"]
            task = next(t for t in onboarding.progress(tenant, today=today()) if t.key == "first_admin")
            assert task.status is TaskStatus.COMPLETED
            assert invitations.open_force_invitation(token) is not None


# ---------------------------------------------------------------- finishing and discarding

def test_finishing_refuses_a_draft_with_a_step_left(app: Flask, world: World) -> None:
    with app.app_context():
        tenant = start(world)
        with scoped(tenant.id):
            with pytest.raises(OnboardingError, match="Finish every step first") as refused:
                onboarding.finish(tenant, actor=admin(world), today=today())
            assert refused.value.field == "policy"
            onboarding.copy_policy(tenant, force("durham"), actor=admin(world), today=today())
            with pytest.raises(OnboardingError, match="choose the courses offered") as refused:
                onboarding.finish(tenant, actor=admin(world), today=today())
            assert refused.value.field == "offerings"
            assert "invite the first force admin (not started)" in refused.value.message
            assert "single sign-on" not in refused.value.message  # optional
            onboarding.set_offerings(tenant, {("checkpoint", course_ids(CLEVELAND_COURSES[0])[0])},
                                     actor=admin(world))
            with pytest.raises(OnboardingError, match="invite the first force admin") as refused:
                onboarding.finish(tenant, actor=admin(world), today=today())
            assert refused.value.field == "first_admin"
        assert tenant.status is ForceStatus.DRAFT


def test_finishing_publishes_the_policy_and_opens_the_force_audited(app: Flask, database: Any,
                                                                    world: World) -> None:
    with app.app_context():
        tenant_id = set_up(world, finish=True)
        tenant = db.session.get(Tenant, tenant_id)
        assert tenant is not None
        assert tenant.status is ForceStatus.ACTIVE
        with scoped(tenant_id):
            version = policies.policy_in_force(today())
            assert version is not None
            assert version.effective_from == today()
            assert version.content_hash == policies.published_policy_of(force("durham"), today()).content_hash
        assert onboarding.drafts() == []
        with pytest.raises(OnboardingError, match="not being set up"):
            onboarding.finish(tenant, actor=admin(world), today=today())
    actions = audit_actions(database)
    assert ("tenant.status_changed", tenant_id) in actions
    assert ("tenant.onboarded", tenant_id) in actions
    assert ("policy.published", tenant_id) in actions


def test_discarding_deletes_the_draft_and_everything_it_has(app: Flask, database: Any, world: World) -> None:
    with app.app_context():
        tenant_id = set_up(world)
        tenant = db.session.get(Tenant, tenant_id)
        with scoped(tenant_id):
            officer = accounts.create_user(email="cleveland-officer@example.org", name="Cleveland Officer",
                                           password=PASSWORD, actor=SYSTEM)
            accounts.add_membership(tenant, officer, Role.OFFICER, actor=SYSTEM)
            api_tokens.make_force_token(tenant, name="Cleveland system", actor=SYSTEM)
            onboarding.set_sign_on(tenant, issuer="https://example.org/cleveland", client_id="platform",
                                   client_secret="s3cret", compulsory=True, new_people="officer", actor=admin(world))
            onboarding.discard(tenant, actor=admin(world))
        db.session.commit()
        assert db.session.get(Tenant, tenant_id) is None
        with scoped(tenant_id):
            for model in (PolicyVersion, Offering, ForceMembership, api_tokens.ApiToken, ForceInvitation,
                          ForceSignOn):
                assert db.session.scalar(select(func.count()).select_from(model)) == 0
        # The person keeps their account; the address is free again.
        assert accounts.find_user("cleveland-officer@example.org") is not None
        assert start(world).slug == "cleveland"
    actions = audit_actions(database)
    assert ("tenant.discarded", tenant_id) in actions
    assert ("tenant.draft_started", tenant_id) in actions  # the log keeps the discarded force's events


def test_discarding_refuses_a_force_that_has_opened(app: Flask, world: World) -> None:
    with app.app_context():
        durham = force("durham")
        with scoped(durham.id), pytest.raises(OnboardingError, match="Suspend it instead"):
            onboarding.discard(durham, actor=admin(world))
        tenant_id = set_up(world, finish=True)
        opened = db.session.get(Tenant, tenant_id)
        with scoped(tenant_id), pytest.raises(OnboardingError, match="only a force being set up"):
            onboarding.discard(opened, actor=admin(world))
        with pytest.raises(AccessRefused):
            onboarding.discard(opened, actor=db.session.get(User, world.users["a_force_admin"].id))


# ---------------------------------------------------------------- a draft is closed and takes no cases

def _officer_of(app: Flask, tenant_id: int) -> str:
    with app.app_context(), scoped(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        user = accounts.create_user(email="cleveland-officer@example.org", name="Cleveland Officer",
                                    password=PASSWORD, actor=SYSTEM)
        accounts.add_membership(tenant, user, Role.OFFICER, actor=SYSTEM)
        db.session.commit()
        return user.email


def test_a_draft_is_closed_to_its_members_and_takes_no_cases(app: Flask, client: FlaskClient,
                                                             world: World) -> None:
    with app.app_context():
        tenant_id = set_up(world)
    email = _officer_of(app, tenant_id)
    sign_in(client, email)
    for page in ("/cleveland/", "/cleveland/encounters/new", "/cleveland/referrals"):
        answer = client.get(page)
        assert answer.status_code == 403, page
        assert "being set up" in answer.text
    # Whatever the door, the case service refuses a draft force.
    with app.app_context(), scoped(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        intake = cases.Intake(Identity("Case", "Robin", date(1990, 2, 3)), Contact(), "W1", today(), dict(FACTS))
        with pytest.raises(cases.CaseError, match="takes no cases") as refused:
            cases.record_encounter(tenant, intake, actor=SYSTEM, today=today())
        assert refused.value.field == "force"
        _token, secret = api_tokens.make_force_token(tenant, name="Cleveland system", actor=SYSTEM)
        db.session.commit()
    answer = app.test_client().post("/api/v1/encounters", headers={"Authorization": f"Bearer {secret}"}, json={
        "person": {"surname": "Case", "given_name": "Robin", "date_of_birth": "1990-02-03"},
        "contact": {}, "ethnicity": "W1", "offence_on": today().isoformat(), "facts": FACTS})
    # The API refuses a token of a force that is not open before any service runs.
    assert answer.status_code == 401, answer.text
    with app.app_context(), scoped(tenant_id):
        assert db.session.scalar(select(func.count()).select_from(cases.Encounter)) == 0


def test_the_platform_admin_sets_up_a_draft_through_its_own_pages(app: Flask, client: FlaskClient,
                                                                  world: World) -> None:
    """While the force is a draft, a platform admin is its force admin: the policy console opens."""
    with app.app_context():
        tenant = start(world)
        with scoped(tenant.id):
            onboarding.blank_policy(tenant, actor=admin(world), today=today())
        db.session.commit()
    sign_in(client, world.email("platform_admin"))
    for page in ("/cleveland/", "/cleveland/policy/", "/cleveland/policy/draft", "/cleveland/members/"):
        assert client.get(page).status_code == 200, page
    # Durham has opened: its pages are its members' only.
    assert client.get("/durham/policy/").status_code == 404
    with app.app_context():
        platform_admin = admin(world)
        cleveland, durham = force("cleveland"), force("durham")
        with scoped(cleveland.id):
            assert access.may(platform_admin, Action.EDIT_POLICY, tenant_id=cleveland.id)
            # A force admin of another force is not made one here.
            other = db.session.get(User, world.users["b_force_admin"].id)
            assert not access.may(other, Action.EDIT_POLICY, tenant_id=cleveland.id)
        with scoped(durham.id):
            assert not access.may(platform_admin, Action.EDIT_POLICY, tenant_id=durham.id)


# ---------------------------------------------------------------- the pages

DETAILS_FORM = {
    "name": "Cleveland Police", "slug": "cleveland", "scheme_name": "Checkpoint Cleveland", "area": "cleveland",
    "languages": ["en"], "completed_code": "outcome-22", "completed_label": "No further action (Outcome 22)",
    "not_completed_code": "prosecution", "not_completed_label": "Prosecution resumes",
    "not_completed_action": "prosecution", "brand_colour": "#00558c",
}


def submit(client: FlaskClient, url: str, data: dict[str, Any]) -> Any:
    return post_form(client, url, url, data)


def error_links(html: str) -> list[str]:
    """The targets of the error summary's links."""
    summary = html.split('govuk-error-summary__list', 1)[1].split("</ul>", 1)[0]
    return re.findall(r'href="(#[^"]+)"', summary)


@pytest.fixture
def admin_client(client: FlaskClient, world: World) -> FlaskClient:
    sign_in(client, world.email("platform_admin"))
    return client


def test_the_details_page_shows_every_problem_in_place_and_makes_nothing(app: Flask, admin_client: FlaskClient,
                                                                        world: World) -> None:
    page = admin_client.get("/admin/forces/new")
    assert page.status_code == 200
    assert "Cleveland" in page.text  # the 43 areas, by name
    bad = {**DETAILS_FORM, "name": "", "slug": "Cleveland Police", "area": "", "languages": [],
           "brand_colour": "blue", "not_completed_action": ""}
    answer = submit(admin_client, "/admin/forces/new", bad)
    assert answer.status_code == 400
    assert error_links(answer.text) == ["#name", "#slug", "#area", "#languages", "#not_completed_action",
                                        "#brand_colour"]
    assert "Use lower-case letters, digits and single hyphens only" in answer.text
    # What only the service knows is shown in place too.
    for slug, words in (("admin", "‘admin’ is one of the platform’s own addresses: choose another address."),
                        ("durham", "already has the address")):
        answer = submit(admin_client, "/admin/forces/new", {**DETAILS_FORM, "slug": slug})
        assert answer.status_code == 400
        assert error_links(answer.text) == ["#slug"]
        assert words in answer.text
    with app.app_context():
        assert onboarding.drafts() == []


def test_a_force_may_give_its_name_in_welsh(app: Flask, admin_client: FlaskClient) -> None:
    made = submit(admin_client, "/admin/forces/new", {**DETAILS_FORM, "name_cy": "Heddlu Cleveland"})
    assert made.status_code == 302
    with app.app_context():
        assert (force("cleveland").name_in("cy"), force("cleveland").name_in("en")) == \
            ("Heddlu Cleveland", "Cleveland Police")
    assert 'value="Heddlu Cleveland"' in admin_client.get("/admin/forces/cleveland/setup/details").text


def test_a_force_is_set_up_page_by_page(app: Flask, admin_client: FlaskClient, world: World) -> None:
    made = submit(admin_client, "/admin/forces/new", DETAILS_FORM)
    assert made.status_code == 302
    assert made.headers["Location"] == "/admin/forces/cleveland/setup/"
    tasks = admin_client.get("/admin/forces/cleveland/setup/")
    assert tasks.status_code == 200
    assert "govuk-task-list" in tasks.text
    assert "Not yet started" in tasks.text
    assert "Cannot start yet" in tasks.text
    # Opening too soon is refused, in place.
    early = post_form(admin_client, "/admin/forces/cleveland/setup/", "/admin/forces/cleveland/setup/finish")
    assert early.status_code == 400
    assert error_links(early.text) == ["#task-list-2-status"]
    # The policy: nothing chosen, then Durham's.
    policy_url = "/admin/forces/cleveland/setup/policy"
    page = admin_client.get(policy_url)
    assert "A copy of Durham Constabulary's policy" in page.text
    refused = submit(admin_client, policy_url, {})
    assert refused.status_code == 400
    assert error_links(refused.text) == ["#template"]
    assert submit(admin_client, policy_url, {"template": "copy:nowhere"}).status_code == 400
    assert submit(admin_client, policy_url, {"template": "copy:durham"}).status_code == 302
    # The offerings: none, a made-up value, then both Cleveland courses.
    offerings_url = "/admin/forces/cleveland/setup/offerings"
    page = admin_client.get(offerings_url)
    with app.app_context():
        ids = course_ids(*CLEVELAND_COURSES)
    assert all(f'value="checkpoint:{i}"' in page.text for i in ids)
    assert "durham-checkpoint-contract" not in page.text
    for data in ({}, {"offerings": ["checkpoint:x"]}):
        refused = submit(admin_client, offerings_url, data)
        assert refused.status_code == 400
        assert error_links(refused.text) == ["#offerings"]
    chosen = submit(admin_client, offerings_url, {"offerings": [f"checkpoint:{i}" for i in ids]})
    assert chosen.status_code == 302
    assert "2 courses are offered" in admin_client.get(chosen.headers["Location"]).text
    # The details can change, checked again.
    details_url = "/admin/forces/cleveland/setup/details"
    assert 'value="Checkpoint Cleveland"' in admin_client.get(details_url).text
    refused = submit(admin_client, details_url, {**DETAILS_FORM, "brand_colour": "#12345"})
    assert refused.status_code == 400
    assert error_links(refused.text) == ["#brand_colour"]
    assert submit(admin_client, details_url, {**DETAILS_FORM, "scheme_name": "Checkpoint"}).status_code == 302
    # The first force admin (the page itself: test_the_first_admins_link_is_shown_once).
    with app.app_context():
        tenant = force("cleveland")
        with scoped(tenant.id):
            onboarding.invite_first_admin(tenant, email="chief@cleveland.example", name="Chief Admin",
                                          actor=admin(world))
        db.session.commit()
    # Open it.
    opened = post_form(admin_client, "/admin/forces/cleveland/setup/", "/admin/forces/cleveland/setup/finish")
    assert opened.status_code == 302
    assert "Cleveland Police is open" in admin_client.get("/admin/").text
    with app.app_context():
        tenant = force("cleveland")
        assert (tenant.status, tenant.scheme_name) == (ForceStatus.ACTIVE, "Checkpoint")
    # An opened force has no set-up pages any more.
    assert admin_client.get("/admin/forces/cleveland/setup/").status_code == 404


def test_a_blank_policy_is_written_in_the_policy_console(app: Flask, admin_client: FlaskClient,
                                                        world: World) -> None:
    submit(admin_client, "/admin/forces/new", DETAILS_FORM)
    chosen = submit(admin_client, "/admin/forces/cleveland/setup/policy", {"template": "blank"})
    assert chosen.status_code == 302
    assert chosen.headers["Location"] == "/cleveland/policy/draft"
    editor = admin_client.get("/cleveland/policy/draft")
    assert editor.status_code == 200
    assert "adult-education" in editor.text
    assert "published when the force opens" in editor.text


def test_a_force_that_works_in_welsh_copies_an_english_policy_and_is_told_what_welsh_to_add(
        app: Flask, admin_client: FlaskClient, world: World) -> None:
    submit(admin_client, "/admin/forces/new", {**DETAILS_FORM, "languages": ["en", "cy"]})
    policy_url = "/admin/forces/cleveland/setup/policy"
    chosen = submit(admin_client, policy_url, {"template": "copy:west-midlands"})
    assert chosen.status_code == 302
    said = html.unescape(admin_client.get(chosen.headers["Location"]).text)
    assert "Cleveland Police works in Welsh:" in said
    assert "have no Welsh, among them the policy’s summary" in said
    assert "_cy" not in said
    page = html.unescape(admin_client.get(policy_url).text)
    assert "Add it in the policy console" in page
    editor = html.unescape(admin_client.get("/cleveland/policy/draft").text)
    assert "needs its Welsh beside the English before it is published" in editor
    blank = submit(admin_client, policy_url, {"template": "blank"})
    assert (blank.status_code, blank.headers["Location"]) == (302, "/cleveland/policy/draft")
    opened = post_form(admin_client, "/admin/forces/cleveland/setup/", "/admin/forces/cleveland/setup/finish")
    assert opened.status_code == 400
    assert "_cy" not in opened.text


def test_the_policy_console_leads_back_to_the_set_up_before_a_policy_is_chosen(
        app: Flask, admin_client: FlaskClient, world: World) -> None:
    submit(admin_client, "/admin/forces/new", DETAILS_FORM)
    editor = admin_client.get("/cleveland/policy/draft")
    assert editor.status_code == 200
    assert 'href="/admin/forces/cleveland/setup/"' in editor.text
    assert "Back to the set-up" in editor.text


def test_a_pathway_no_course_fits_is_left_without_one_and_the_force_still_opens(
        app: Flask, admin_client: FlaskClient, world: World) -> None:
    submit(admin_client, "/admin/forces/new", DETAILS_FORM)
    # No course fits the blank policy's pathway in Cleveland.
    submit(admin_client, "/admin/forces/cleveland/setup/policy", {"template": "blank"})
    offerings_url = "/admin/forces/cleveland/setup/offerings"
    page = html.unescape(admin_client.get(offerings_url).text)
    assert "Adult drug education</h2>" in page  # its name, not its kind's same words again
    assert "(Adult drug education)" not in page
    assert "so it is left without one" in page
    assert 'href="/admin/catalogue/courses/new"' in page
    assert "Ask for one" not in page
    saved = submit(admin_client, offerings_url, {})
    assert saved.status_code == 302
    tasks = html.unescape(admin_client.get(saved.headers["Location"]).text)
    assert "No course is offered: none in the catalogue fits the policy’s pathways." in tasks
    with app.app_context():
        tenant = force("cleveland")
        with scoped(tenant.id):
            step = next(t for t in onboarding.progress(tenant, today=today()) if t.key == "offerings")
            assert step.status is TaskStatus.COMPLETED
            onboarding.invite_first_admin(tenant, email="chief@cleveland.example", name="Chief Admin",
                                          actor=admin(world))
        db.session.commit()
    opened = post_form(admin_client, "/admin/forces/cleveland/setup/", "/admin/forces/cleveland/setup/finish")
    assert opened.status_code == 302


def test_leaving_keeps_the_draft_to_resume_or_discard(app: Flask, admin_client: FlaskClient,
                                                      world: World) -> None:
    submit(admin_client, "/admin/forces/new", DETAILS_FORM)
    console = admin_client.get("/admin/")
    assert "Forces being set up" in console.text
    assert 'href="/admin/forces/cleveland/setup/"' in console.text
    assert 'href="/admin/forces/cleveland/discard"' in console.text
    confirm = admin_client.get("/admin/forces/cleveland/discard")
    assert confirm.status_code == 200
    assert "cannot be undone" in confirm.text
    gone = post_form(admin_client, "/admin/forces/cleveland/discard", "/admin/forces/cleveland/discard")
    assert gone.status_code == 302
    assert "The draft of Cleveland Police is discarded" in admin_client.get("/admin/").text
    assert admin_client.get("/admin/forces/cleveland/setup/").status_code == 404
    # An opened force is refused, and stays.
    refused = post_form(admin_client, "/admin/", "/admin/forces/durham/discard")
    assert refused.status_code == 302
    assert "only a force being set up can be discarded" in admin_client.get("/admin/").text
    with app.app_context():
        assert force("durham").status is ForceStatus.ACTIVE
    assert admin_client.get("/admin/forces/durham/discard").status_code == 404


def test_the_first_admins_link_is_shown_once(app: Flask, admin_client: FlaskClient, world: World) -> None:
    submit(admin_client, "/admin/forces/new", DETAILS_FORM)
    admin_url = "/admin/forces/cleveland/setup/first-admin"
    refused = submit(admin_client, admin_url, {"name": "", "email": "chief"})
    assert refused.status_code == 400
    assert error_links(refused.text) == ["#name", "#email"]  # both mistakes at once, not one after the other
    refused = submit(admin_client, admin_url, {"name": "Chief Admin", "email": "chief@"})
    assert refused.status_code == 400
    assert error_links(refused.text) == ["#email"]
    invited = submit(admin_client, admin_url, {"name": "Chief Admin", "email": "chief@cleveland.example"})
    assert invited.status_code == 200
    found = re.search(r'data-testid="invitation-link">([^<]+)<', invited.text)
    assert found is not None
    link = found.group(1)
    assert "/cleveland/invitation/" in link
    token = link.rsplit("/", 1)[1]
    assert token not in admin_client.get(admin_url).text
    tasks = admin_client.get("/admin/forces/cleveland/setup/").text
    assert token not in tasks
    assert "Chief Admin (chief@cleveland.example)" in tasks


def test_single_sign_on_is_set_on_its_page_and_the_secret_never_shown(app: Flask, admin_client: FlaskClient,
                                                                      world: World) -> None:
    submit(admin_client, "/admin/forces/new", DETAILS_FORM)
    # Single sign-on, optional: refused in place, then saved.
    sign_on_url = "/admin/forces/cleveland/setup/sign-on"
    refused = submit(admin_client, sign_on_url, {"issuer": "https://127.0.0.1/", "client_id": "platform",
                                                 "client_secret": "s3cret", "new_people": "refuse"})
    assert refused.status_code == 400
    assert error_links(refused.text) == ["#issuer"]
    assert submit(admin_client, sign_on_url, {"issuer": "https://example.org/cleveland", "client_id": "platform",
                                              "client_secret": "s3cret", "new_people": "refuse"}).status_code == 302
    assert "s3cret" not in admin_client.get(sign_on_url).text


def test_the_sign_on_step_shows_the_redirect_address_and_speaks_of_a_saved_secret_once_one_is(
        app: Flask, admin_client: FlaskClient, world: World) -> None:
    submit(admin_client, "/admin/forces/new", DETAILS_FORM)
    sign_on_url = "/admin/forces/cleveland/setup/sign-on"
    page = admin_client.get(sign_on_url).text
    found = re.search(r'data-testid="redirect-address"><code class="app-code">([^<]+)<', page)
    assert found is not None
    assert found.group(1) == "http://localhost/cleveland/sign-in/sso/callback"
    assert "keep the one already saved" not in page
    assert submit(admin_client, sign_on_url, {"issuer": "https://example.org/cleveland", "client_id": "platform",
                                              "client_secret": "s3cret", "new_people": "refuse"}).status_code == 302
    assert "keep the one already saved" in admin_client.get(sign_on_url).text


def test_the_courses_step_warns_of_a_provider_the_force_has_no_contract_with(
        app: Flask, admin_client: FlaskClient, world: World) -> None:
    """Offering is never refused for it; the step says which providers' courses would earn them nothing, and
    leads to the contract for the pair."""
    with app.app_context():
        tenant_id = set_up(world)
        cranstoun = db.session.scalar(select(Provider).where(Provider.slug == "cranstoun"))
        assert cranstoun is not None
        provider_id = cranstoun.id
    page = html.unescape(admin_client.get("/admin/forces/cleveland/setup/offerings").text)
    warning = "Cleveland Police offers courses of Cranstoun but has no contract with it in force today"
    assert warning in page
    assert 'href="/admin/billing/contracts/cleveland/new?provider=cranstoun"' in page
    with app.app_context(), scoped(tenant_id):
        db.session.add(Contract(tenant_id=tenant_id, provider_id=provider_id, starts_on=date(2021, 1, 1)))
        db.session.commit()
    page = html.unescape(admin_client.get("/admin/forces/cleveland/setup/offerings").text)
    assert warning not in page
    assert page.count('data-testid="no-contract"') == 1  # the other provider's course is still uncontracted
