"""A believable demo: accounts for every force and for the platform.

Idempotent: running it again leaves the same accounts, with the password
given this time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy import func, select

from diversion.accounts import services
from diversion.accounts.models import Role, User
from diversion.eligibility import services as eligibility
from diversion.eligibility import synthetic
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant

FORCE_ACCOUNTS = (
    ("admin", Role.FORCE_ADMIN, "Force admin"),
    ("officer", Role.OFFICER, "Officer"),
    ("supervisor", Role.SUPERVISOR, "Supervisor"),
)
PLATFORM_ACCOUNTS = (
    ("platform@diversion.example", Role.PLATFORM_ADMIN, "Platform admin"),
    ("national@diversion.example", Role.NATIONAL_LEAD, "National lead"),
)


def _account(email: str, name: str, password: str) -> User:
    user = services.find_user(email)
    if user is None:
        return services.create_user(email=email, name=name, password=password, actor=None)
    user.password_hash = services.hash_password(password)
    user.active = True
    return user


def seed_demo(*, password: str) -> list[tuple[str, str]]:
    """Create or refresh the demo accounts; returns (email, what it is) pairs.

    Refuses (``AccountError``) a password shorter than the minimum.
    """
    services.hash_password(password)  # refuse a short password before changing anything
    accounts: list[tuple[str, str]] = []
    for email, role, label in PLATFORM_ACCOUNTS:
        user = _account(email, label, password)
        services.grant_platform_role(user, role, actor=None)
        accounts.append((email, label))
    for tenant in db.session.scalars(select(Tenant).order_by(Tenant.slug)):
        with scoped(tenant.id):
            for local, role, label in FORCE_ACCOUNTS:
                email = f"{local}@{tenant.slug}.example"
                user = _account(email, f"{label}, {tenant.name}", password)
                services.add_membership(tenant, user, role, actor=None)
                accounts.append((email, f"{label.lower()}, {tenant.name}"))
    db.session.flush()
    return accounts


def seed_past_decisions(tenant: Tenant, *, today: date, count: int,
                        progress: Callable[[int], None] | None = None) -> int:
    """A year of synthetic past decisions for the force in scope, made with the
    policy in force on each day; skipped when the force already has demo decisions."""
    existing = db.session.scalar(
        select(func.count()).select_from(Decision).where(Decision.source == "demo"))
    if existing:
        return 0
    made = 0
    start = today - timedelta(days=365)
    for case in synthetic.cases(tenant.slug, count, start=start, days=365, seed="demo"):
        try:
            result, version = eligibility.decide_case(case.facts, case.decided_on)
        except eligibility.NoPolicyInForce:
            continue
        eligibility.record_decision(tenant, result, version, ethnicity=case.ethnicity,
                                    actor=None, source="demo")
        made += 1
        if progress is not None and made % 100 == 0:
            progress(100)
    db.session.flush()
    return made
