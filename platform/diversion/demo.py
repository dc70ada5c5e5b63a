"""A believable demo: accounts for every force, every provider and the platform.

Provider staff sign in as ``staff@<provider-slug>.example`` (e.g.
``staff@cranstoun.example``, serving West Midlands and Thames Valley) and
find the referrals the demo case work sent to their provider; each
provider's admin, ``admin@<provider-slug>.example``, also manages its API
tokens and webhook endpoint.

Idempotent: running it again leaves the same accounts, with the password
given this time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select

from diversion.accounts import services
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import ProviderMembership, ProviderRole, Role, User
from diversion.cases import rules
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import Referral, State
from diversion.catalogue.models import Course, Offering, Provider
from diversion.db import LONDON, utcnow
from diversion.eligibility import services as eligibility
from diversion.eligibility import synthetic
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.providers.services import forces_served
from diversion.tenancy.context import provider_scoped, scoped
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
PROVIDER_ACCOUNTS = (
    ("staff", ProviderRole.STAFF, "Provider staff"),
    ("admin", ProviderRole.ADMIN, "Provider admin"),
)


def _account(email: str, name: str, password: str) -> User:
    user = services.find_user(email)
    if user is None:
        return services.create_user(email=email, name=name, password=password, actor=SYSTEM)
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
        services.grant_platform_role(user, role, actor=SYSTEM)
        accounts.append((email, label))
    for tenant in db.session.scalars(select(Tenant).order_by(Tenant.slug)):
        with scoped(tenant.id):
            for local, role, label in FORCE_ACCOUNTS:
                email = f"{local}@{tenant.slug}.example"
                user = _account(email, f"{label}, {tenant.name}", password)
                services.add_membership(tenant, user, role, actor=SYSTEM)
                accounts.append((email, f"{label.lower()}, {tenant.name}"))
    for provider in db.session.scalars(select(Provider).order_by(Provider.slug)):
        with provider_scoped(provider.id):
            served = ", ".join(t.name for t in forces_served(provider)) or "no force yet"
        for local, provider_role, label in PROVIDER_ACCOUNTS:
            email = f"{local}@{provider.slug}.example"
            user = _account(email, f"{label}, {provider.name}", password)
            membership = db.session.scalar(select(ProviderMembership).where(
                ProviderMembership.provider_id == provider.id, ProviderMembership.user_id == user.id))
            if membership is None:
                db.session.add(ProviderMembership(provider_id=provider.id, user_id=user.id, role=provider_role))
            else:
                membership.role = provider_role
            accounts.append((email, f"{label.lower()}, {provider.name} (serves {served})"))
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
        cases.record_decision(tenant, result, version, ethnicity=case.ethnicity,
                                    actor=SYSTEM, source="demo")
        made += 1
        if progress is not None and made % 100 == 0:
            progress(100)
    db.session.flush()
    return made


GIVEN_NAMES = ("Jordan", "Aisha", "Callum", "Priya", "Kieran", "Grace", "Tomasz", "Chloe", "Reece", "Amara",
               "Liam", "Sofia", "Ethan", "Zainab", "Owen", "Megan", "Dylan", "Hannah", "Tyler", "Niamh")
SURNAMES = ("Walker", "Hussain", "Evans", "Patel", "Roberts", "Okafor", "Nowak", "Hughes", "Begum", "Jones",
            "Taylor", "Williams", "Khan", "Davies", "Campbell", "Murphy", "Lewis", "Ahmed", "Clarke", "Wright")
# Each demo referral is taken to one of these states, so that every state shows up on every page; a
# referral not completed missed a booked session and was not rebooked, and one withdrawn had been accepted.
TARGETS = tuple(State)
VIA = {State.NOT_COMPLETED: State.MISSED, State.WITHDRAWN: State.ACCEPTED}
REASONS = {State.NOT_COMPLETED: "Missed a session and did not come back to book another",
           State.WITHDRAWN: "Charged for another matter"}
VENUE = "Community hub"


def case_work_window(today: date) -> tuple[date, date]:
    """The days the demo's referrals are made on: from the first day of the month before last (so
    that the last two calendar months both have billable events) to three days ago."""
    first = today.replace(day=1)
    before_last = (first - timedelta(days=1)).replace(day=1)
    return (before_last - timedelta(days=1)).replace(day=1), today - timedelta(days=3)


def step_times(offered_at: datetime, steps: int, *, limit: datetime) -> list[datetime]:
    """When each of ``steps`` steps after an offer at ``offered_at`` happens: two days apart, or closer
    when ``limit`` (the referral's deadline, or now) comes sooner; always increasing, never past ``limit``."""
    gap = min(timedelta(days=2), (limit - offered_at) / (steps + 1))
    return [offered_at + gap * (number + 1) for number in range(steps)]


def seed_case_work(tenant: Tenant, *, today: date, per_state: int = 3) -> int:
    """People, encounters and referrals in every state for the force in scope,
    some overdue, some needing review; skipped when the force has referrals.

    The referrals are made on days spread evenly over ``case_work_window``, and
    each step of each one happens on its own later day (``step_times``), announced
    as news: every month of the window has referral events, billed on their dates."""
    if db.session.scalar(select(func.count()).select_from(Referral)):
        return 0
    rng = random.Random(f"case-work:{tenant.slug}")  # noqa: S311 - made-up data, not secrets
    made = 0
    # Every state in turn, so that each part of the window sees every kind of step.
    wanted = [state for _ in range(per_state) for state in TARGETS]
    total = len(wanted)
    reviews = 2  # cases whose decision waits for a supervisor
    start, end = case_work_window(today)
    days = (end - start).days + 1
    now = utcnow()
    # Most open referrals are within their deadline, the oldest past it.
    stream = synthetic.cases(tenant.slug, 4000, start=start, days=days, seed="case-work")
    for case in stream:
        if not wanted:
            break
        if case.decided_on < start + timedelta(days=days * made // total) and reviews <= 0:
            continue  # wait for the next referral's day
        identity = Identity(rng.choice(SURNAMES), rng.choice(GIVEN_NAMES),
                            case.decided_on - timedelta(days=365 * case.facts["age"] + rng.randrange(365)))
        facts = {k: v for k, v in case.facts.items() if k not in rules.DERIVED_FACTS}
        if reviews > 0:
            # The officer did not yet know where it happened or the quantity.
            for unknown in ("stage", "personal_use"):
                facts.pop(unknown)
        contact = Contact(phone=f"07700 9{rng.randrange(10**5):05d}")
        intake = rules.Intake(identity, contact, case.ethnicity, case.decided_on, facts)
        _, decision = cases.record_encounter(tenant, intake, actor=SYSTEM, today=case.decided_on, source="demo")
        if decision.outcome == "needs_review":
            reviews -= 1
            continue
        if decision.final_pathway is None:
            continue
        offerings = db.session.scalars(select(Offering).join(Course, Course.id == Offering.course_id)
                                       .where(Offering.pathway == decision.final_pathway).order_by(Course.slug)).all()
        if not offerings:
            continue
        # Where a pathway has several providers, each gets some of the referrals.
        offering = offerings[made % len(offerings)]
        target = wanted.pop(0)
        offered_at = datetime.combine(case.decided_on, time(9), tzinfo=LONDON)
        referral = cases.refer(tenant, decision, offering, actor=SYSTEM, today=case.decided_on, at=offered_at)
        path = rules.path_to(target, sessions=referral.sessions_required, via=VIA.get(target))
        limit = min(datetime.combine(referral.deadline, time(17), tzinfo=LONDON), now - timedelta(hours=1))
        times = step_times(offered_at, len(path), limit=limit)
        cases.take_path(tenant, referral, path, actor=SYSTEM, reason=REASONS.get(target, ""),
                        session_at=limit, venue=VENUE, times=times)
        made += 1
    return made
