"""The `diversion` command, run as an installed console script would be."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import func, select

from diversion.accounts import services
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ForceMembership, Role, User
from diversion.audit.models import AuditEvent
from diversion.catalogue.models import Course, Provider
from diversion.cli import main
from diversion.db import TENANT_SCOPED, Base
from diversion.extensions import db
from diversion.forces import onboarding
from diversion.providers import services as providers
from diversion.tenancy.context import provider_scoped, scoped
from diversion.tenancy.models import ForceStatus, Tenant
from tests.demo_checks import check_demo


def _run(app: Flask, *args: str):
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def test_demo_creates_every_documented_account_idempotently(app: Flask) -> None:
    assert _run(app, "tenants", "sync").exit_code == 0
    first = _run(app, "demo", "--past-decisions", "40")
    assert first.exit_code == 0, first.output
    second = _run(app, "demo", "--password", "another-demo-password", "--past-decisions", "40")
    assert second.exit_code == 0, second.output
    with app.app_context():
        # The demo agrees with itself, and has three pages of every list in every force.
        check_demo(today=datetime.now(UTC).date(), now=datetime.now(UTC))
        slugs = list(db.session.scalars(select(Tenant.slug)))
        assert len(slugs) == 5
        expected = {"platform@diversion.example", "national@diversion.example"}
        for slug in slugs:
            expected |= {f"{who}@{slug}.example" for who in ("admin", "officer", "supervisor")}
        expected |= {f"{who}@{slug}.example" for slug in db.session.scalars(select(Provider.slug))
                     for who in ("staff", "admin")}
        assert set(db.session.scalars(select(User.email))) == expected
        for email in expected:
            assert email in first.output
        assert "demo-password-1" in first.output
        # The second run's password is the one that works now.
        assert services.authenticate("officer@durham.example", "another-demo-password")
        assert services.authenticate("officer@durham.example", "demo-password-1") is None
        platform = services.find_user("platform@diversion.example")
        assert platform is not None
        assert Role.PLATFORM_ADMIN in platform.platform_roles
        durham = db.session.scalar(select(Tenant).where(Tenant.slug == "durham"))
        assert durham is not None
        with scoped(durham.id):
            roles = db.session.execute(
                select(User.email, ForceMembership.role).join(User)
            ).all()
            assert sorted((e, r.value) for e, r in roles) == [
                ("admin@durham.example", "force_admin"),
                ("officer@durham.example", "officer"),
                ("supervisor@durham.example", "supervisor"),
            ]
            assert db.session.scalar(select(func.count()).select_from(ForceMembership)) == 3
        assert "staff@cranstoun.example" in first.output
        assert "provider staff, Cranstoun (serves Thames Valley Police, West Midlands Police)" in first.output
        cranstoun = db.session.scalar(select(Provider).where(Provider.slug == "cranstoun"))
        staff = services.find_user("staff@cranstoun.example")
        assert cranstoun is not None
        assert staff is not None
        assert services.authenticate("staff@cranstoun.example", "another-demo-password") is not None
        # Demo case work sent referrals to Cranstoun from both forces it serves, and only from those.
        with provider_scoped(cranstoun.id, staff.id):
            listed = providers.referrals(cranstoun, providers.ReferralFilter())
            assert {tenant.slug for _, tenant in listed} == {"west-midlands", "thames-valley"}


CLEVELAND = onboarding.ForceDetails(
    name="Cleveland Police", slug="cleveland", scheme_name="Checkpoint Cleveland", area="cleveland",
    languages=["en"], completed_code="outcome-22", completed_label="No further action (Outcome 22)",
    not_completed_code="prosecution", not_completed_label="Prosecution resumes",
    not_completed_action="prosecution", brand_colour="#00558c",
)


def _force(slug: str) -> Tenant:
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    assert tenant is not None
    return tenant


def _rows_of(tenant: Tenant) -> dict[str, object]:
    """How many rows the force has in each of its tables (those it has rows in) and events in the audit
    log, and when it last changed."""
    with scoped(tenant.id):
        counts = {table.name: db.session.scalar(select(func.count()).select_from(table)
                                                .where(table.c.tenant_id == tenant.id))
                  for table in Base.metadata.sorted_tables if table.info.get(TENANT_SCOPED)}
        counts["audit_events"] = db.session.scalar(select(func.count()).select_from(AuditEvent)
                                                   .where(AuditEvent.tenant_id == tenant.id))
    return {name: count for name, count in counts.items() if count} | {"updated": tenant.updated_at}


def test_demo_passes_over_a_force_being_set_up_in_the_console_and_one_opened_since(app: Flask) -> None:
    """A platform admin set up Cleveland in the console (its policy copied, its courses chosen, not
    yet published): the demo fills the other forces and leaves Cleveland exactly as it is. Once
    opened today, Cleveland still has no policy in force over the demo's case work: passed over again."""
    assert _run(app, "tenants", "sync").exit_code == 0
    today = datetime.now(UTC).date()
    with app.app_context():
        draft = onboarding.start_draft(CLEVELAND, actor=SYSTEM)
        with scoped(draft.id):
            onboarding.copy_policy(draft, _force("durham"), actor=SYSTEM, today=today)
            onboarding.set_offerings(draft, {("checkpoint", course.id) for course in db.session.scalars(select(Course))
                                             if "cleveland" in course.areas}, actor=SYSTEM)
        db.session.commit()
        before = _rows_of(draft)
        assert before["policy_versions"] == 1
        assert before["offerings"] == 2
        assert before["audit_events"]

    first = _run(app, "demo", "--past-decisions", "10")
    assert first.exit_code == 0, first.output
    assert "Passed over Cleveland Police (/cleveland/), left as it is: being set up in the console." in first.output
    assert "@cleveland.example" not in first.output
    with app.app_context():
        draft = _force("cleveland")
        assert draft.status is ForceStatus.DRAFT
        assert _rows_of(draft) == before  # no member, decision, case, contract or audit event added
        assert services.find_user("admin@cleveland.example") is None
        with scoped(draft.id):
            first_admin = onboarding.progress(draft, today=today)[-1]
            assert first_admin.key == "first_admin"
            assert first_admin.status is onboarding.TaskStatus.NOT_STARTED
        # The forces synced from their files are filled as ever.
        west_midlands = _force("west-midlands")
        assert services.find_user("admin@west-midlands.example") is not None
        assert _rows_of(west_midlands)["encounters"] > 0

        with scoped(draft.id):
            onboarding.invite_first_admin(draft, email="first-admin@cleveland.example", name="First Admin",
                                          actor=SYSTEM)
            onboarding.finish(draft, actor=SYSTEM, today=today)
        db.session.commit()
        opened = _rows_of(draft)

    again = _run(app, "demo", "--past-decisions", "10")
    assert again.exit_code == 0, again.output
    assert "Passed over Cleveland Police (/cleveland/), left as it is: no policy in force on" in again.output
    with app.app_context():
        assert _rows_of(_force("cleveland")) == opened
        assert services.find_user("admin@cleveland.example") is None


def test_demo_refuses_a_short_password(app: Flask) -> None:
    result = _run(app, "demo", "--password", "short")
    assert result.exit_code != 0
    assert "--password" in result.output
    assert "at least 12 characters" in result.output


def test_the_console_script_is_installed() -> None:
    import shutil
    import subprocess

    from diversion.config import REPO_ROOT

    script = REPO_ROOT / ".venv" / "bin" / "diversion"
    path = str(script) if script.exists() else shutil.which("diversion")
    assert path, "the diversion console script is not installed"
    out = subprocess.run([path, "--help"], capture_output=True, text=True, check=True,
                         env={"DIVERSION_ENV": "test", "PATH": "/usr/bin:/bin"}).stdout
    for command in ("run", "db", "tenants", "demo"):
        assert f"  {command}" in out
