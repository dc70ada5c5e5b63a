"""The `diversion` command, run as an installed console script would be."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import func, select

from diversion.accounts import services
from diversion.accounts.models import ForceMembership, Role, User
from diversion.catalogue.models import Provider
from diversion.cli import main
from diversion.extensions import db
from diversion.providers import services as providers
from diversion.tenancy.context import provider_scoped, scoped
from diversion.tenancy.models import Tenant
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
