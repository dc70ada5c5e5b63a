"""A believable demo: accounts for every force and for the platform.

Idempotent: running it again leaves the same accounts, with the password
given this time.
"""

from __future__ import annotations

from sqlalchemy import select

from diversion.accounts import services
from diversion.accounts.models import Role, User
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
