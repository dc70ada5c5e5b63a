"""A believable demo: accounts for every force, every provider and the platform.

Provider staff sign in as ``staff@<provider-slug>.example`` (e.g.
``staff@cranstoun.example``, serving West Midlands and Thames Valley) and
find the referrals the demo case work sent to their provider; each
provider's admin, ``admin@<provider-slug>.example``, also manages its API
tokens and webhook endpoint.

Idempotent: running it again leaves the same accounts, with the password
given this time.

The demo fills the forces that are open with a policy in force over all its
case work (``demo_forces``); any other force in the database (one a platform
admin is setting up in the console, one suspended, one whose first policy
came into force since) is passed over and left exactly as it is.
"""

from __future__ import annotations

import csv
import random
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from diversion.accounts import services
from diversion.accounts.access import SYSTEM, Actor
from diversion.accounts.models import ProviderMembership, ProviderRole, Role, User
from diversion.cases import importer, rules
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity
from diversion.cases.models import DEMO, IMPORTED, Encounter, Referral, State
from diversion.catalogue.models import Course, Offering, Provider
from diversion.db import LONDON, utcnow
from diversion.eligibility import services as eligibility
from diversion.eligibility import synthetic
from diversion.eligibility.compiler import CompiledPolicy
from diversion.eligibility.engine import decide
from diversion.eligibility.fields import FactsInvalid
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.listing import PER_PAGE
from diversion.providers.services import forces_served
from diversion.tenancy.context import acting_for_provider, provider_scoped, scoped
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.words import WELSH

# Each account: the local part of its address, its role, what the account list calls it, and the given
# name of the made-up person who holds it (their surname is their organisation's, ``_surname``).
FORCE_ACCOUNTS = (
    ("admin", Role.FORCE_ADMIN, "Force admin", "Alex"),
    ("officer", Role.OFFICER, "Officer", "Sam"),
    ("supervisor", Role.SUPERVISOR, "Supervisor", "Jo"),
)
PLATFORM_ACCOUNTS = (
    ("platform@diversion.example", Role.PLATFORM_ADMIN, "Platform admin", "Morgan Reid"),
    ("national@diversion.example", Role.NATIONAL_LEAD, "National lead", "Rowan Price"),
)
PROVIDER_ACCOUNTS = (
    ("staff", ProviderRole.STAFF, "Provider staff", "Robin"),
    ("admin", ProviderRole.ADMIN, "Provider admin", "Kit"),
)
STAFF_SURNAMES = ("Ahmed", "Bennett", "Chowdhury", "Davies", "Ellis", "Fraser", "Gill", "Hughes", "Iqbal",
                  "Jenkins", "Kaur", "Lloyd", "Mensah", "Novak", "Owusu", "Pryce", "Quinn", "Rees")


def _surname(slug: str) -> str:
    """The surname of a made-up organisation's demo people: the same for its slug on every run."""
    return STAFF_SURNAMES[zlib.crc32(slug.encode()) % len(STAFF_SURNAMES)]


def _account(email: str, name: str, password: str) -> User:
    user = services.find_user(email)
    if user is None:
        return services.create_user(email=email, name=name, password=password, actor=SYSTEM)
    user.password_hash = services.hash_password(password)
    user.active = True
    user.name = name
    return user


@dataclass(frozen=True)
class DemoForces:
    """The forces the demo fills, by address, and those it passes over, each with why."""

    filled: list[Tenant] = field(default_factory=list)
    passed_over: list[tuple[Tenant, str]] = field(default_factory=list)


def demo_forces(*, today: date) -> DemoForces:
    """Which forces the demo fills: those open (active) whose policy is in force from the first day
    of the demo's case work (``case_work_window``) on, since every case it records is decided with
    the policy in force on its day. Every other force is passed over, with why: one being set up in
    the console (a draft, which takes no cases and whose first force admin the platform admin
    invites), one suspended, and one whose first policy came into force later (a force opened in
    the console today). Refuses nothing."""
    start = case_work_window(today)[0]
    forces = DemoForces()
    for tenant in db.session.scalars(select(Tenant).order_by(Tenant.slug)):
        if tenant.status is ForceStatus.DRAFT:
            forces.passed_over.append((tenant, "being set up in the console"))
        elif tenant.status is ForceStatus.SUSPENDED:
            forces.passed_over.append((tenant, "suspended"))
        elif eligibility.published_policy_of(tenant, start) is None:
            forces.passed_over.append((tenant, f"no policy in force on {start.isoformat()}, when the demo's "
                                               "case work starts"))
        else:
            forces.filled.append(tenant)
    return forces


def seed_demo(*, password: str, forces: list[Tenant]) -> list[tuple[str, str]]:
    """Create or refresh the demo accounts: the platform's, those of each of ``forces`` (the
    forces the demo fills, ``demo_forces``) and every provider's; returns (email, what it is) pairs.

    Refuses (``AccountError``) a password shorter than the minimum.
    """
    services.hash_password(password)  # refuse a short password before changing anything
    accounts: list[tuple[str, str]] = []
    for email, role, label, name in PLATFORM_ACCOUNTS:
        user = _account(email, name, password)
        services.grant_platform_role(user, role, actor=SYSTEM)
        accounts.append((email, label))
    for tenant in forces:
        with scoped(tenant.id):
            for local, role, label, given in FORCE_ACCOUNTS:
                email = f"{local}@{tenant.slug}.example"
                user = _account(email, f"{given} {_surname(tenant.slug)}", password)
                services.add_membership(tenant, user, role, actor=SYSTEM)
                accounts.append((email, f"{label.lower()}, {tenant.name}"))
    for provider in db.session.scalars(select(Provider).order_by(Provider.slug)):
        with provider_scoped(provider.id):
            served = ", ".join(t.name for t in forces_served(provider)) or "no force yet"
        for local, provider_role, label, given in PROVIDER_ACCOUNTS:
            email = f"{local}@{provider.slug}.example"
            user = _account(email, f"{given} {_surname(provider.slug)}", password)
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
        select(func.count()).select_from(Decision).where(Decision.source == DEMO))
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
                                    actor=SYSTEM, source=DEMO)
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
WELSH_VENUE = "Canolfan gymunedol / Community hub"  # where a force works in Welsh too: its name in both


def case_work_window(today: date) -> tuple[date, date]:
    """The days the demo's referrals are made on: from the first day of the month before last (so
    that the last two calendar months both have billable events) to three days ago."""
    first = today.replace(day=1)
    before_last = (first - timedelta(days=1)).replace(day=1)
    return (before_last - timedelta(days=1)).replace(day=1), today - timedelta(days=3)


WORKING_HOURS = (time(9), time(17))  # when the demo's people work, in London, on a weekday
SLOT = timedelta(minutes=30)  # their steps and sessions fall on the hour or the half hour


def working_slots(after: datetime, until: datetime) -> list[datetime]:
    """Every half hour (``SLOT``) of ``WORKING_HOURS`` on a weekday, in London, after ``after`` and not
    after ``until``, earliest first."""
    slots: list[datetime] = []
    day = after.astimezone(LONDON).date()
    opens, closes = (hours.hour * 60 + hours.minute for hours in WORKING_HOURS)
    while day <= until.astimezone(LONDON).date():
        if day.weekday() < 5:  # Monday to Friday
            for minutes in range(opens, closes + 1, SLOT.seconds // 60):
                moment = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=LONDON)
                if after < moment <= until:
                    slots.append(moment)
        day += timedelta(days=1)
    return slots


def step_times(offered_at: datetime, steps: int, *, limit: datetime) -> list[datetime]:
    """When each of ``steps`` steps after an offer at ``offered_at`` happens, in working hours
    (``working_slots``): about two days apart, or closer when ``limit`` (the referral's deadline, or
    now) comes sooner; always increasing, never past ``limit``. Where fewer working half hours than
    steps are left before ``limit``, the steps are spread evenly up to it, whatever the hour."""
    slots = working_slots(offered_at, min(limit, offered_at + timedelta(days=2) * (steps + 1)))
    if len(slots) < steps:
        slots = working_slots(offered_at, limit)
    if len(slots) < steps:
        gap = (limit - offered_at) / (steps + 1)
        return [offered_at + gap * (number + 1) for number in range(steps)]
    if len(slots) == steps:
        return slots
    return [slots[(number + 1) * len(slots) // (steps + 1)] for number in range(steps)]


def session_start(booked_at: datetime, held_by: datetime | None, *, deadline: date) -> datetime:
    """When a session booked at ``booked_at`` (a working half hour, ``step_times``) starts: an hour
    (else half an hour) before its attendance is recorded at ``held_by``, on that day and after the
    booking (at ``held_by`` itself when neither is); one not yet attended starts at the first working
    half hour two days after the booking, or the last one by the ``deadline`` (never before the booking).
    Always on a weekday, on the hour or half hour, within ``WORKING_HOURS`` (in London)."""
    if held_by is not None:
        opens = datetime.combine(held_by.astimezone(LONDON).date(), WORKING_HOURS[0], tzinfo=LONDON)
        return next((held_by - before for before in (2 * SLOT, SLOT)
                     if held_by - before > booked_at and held_by - before >= opens), held_by)
    later = working_slots(booked_at + timedelta(days=2), datetime.combine(deadline, WORKING_HOURS[1], tzinfo=LONDON))
    if later:
        return later[0]
    return (working_slots(booked_at, datetime.combine(deadline, WORKING_HOURS[1], tzinfo=LONDON)) or [booked_at])[-1]


def seed_case_work(tenant: Tenant, *, today: date, per_state: int = 3) -> int:
    """People, encounters and referrals in every state for the force in scope,
    some overdue, some needing review; skipped when the force has cases of its own
    already (an imported history, ``seed_history``, is not its own case work).

    The referrals are made on days spread evenly over ``case_work_window``, and
    each step of each one happens on its own later day (``step_times``), announced
    as news: every month of the window has referral events, billed on their dates."""
    if db.session.scalar(select(func.count()).select_from(Encounter).where(Encounter.source != IMPORTED)):
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
    # The force's demo officer records and refers (the platform itself where the demo made no accounts).
    officer: Actor = services.find_user(f"officer@{tenant.slug}.example") or SYSTEM
    # Each provider's demo staff member moves its referrals on (the platform where the demo made no accounts).
    found: dict[int, User | None] = {}

    def staff(provider_id: int) -> User | None:
        if provider_id not in found:
            found[provider_id] = _provider_staff(provider_id)
        return found[provider_id]

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
        encounter, decision = cases.record_encounter(tenant, intake, actor=officer, today=case.decided_on,
                                                     source=DEMO)
        # Recorded on its day, as the referral that follows is made on it (``cases.refer``'s ``at``).
        encounter.recorded_at = decision.decided_at = datetime.combine(case.decided_on, time(8, 30), tzinfo=LONDON)
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
        referral = cases.refer(tenant, decision, offering, actor=officer, today=case.decided_on, at=offered_at)
        path = rules.path_to(target, sessions=referral.sessions_required, via=VIA.get(target))
        limit = min(datetime.combine(referral.deadline, WORKING_HOURS[1], tzinfo=LONDON), now - timedelta(hours=1))
        _take_steps(tenant, referral, path, times=step_times(offered_at, len(path), limit=limit),
                    officer=officer, staff=staff, reason=REASONS.get(target, ""))
        made += 1
    return made


def _provider_staff(provider_id: int) -> User | None:
    """The demo's staff member of a provider (``staff@<provider-slug>.example``, ``seed_demo``), if it has one."""
    provider = db.session.get(Provider, provider_id)
    user = services.find_user(f"staff@{provider.slug}.example") if provider is not None else None
    if user is None or db.session.scalar(select(ProviderMembership.id).where(
            ProviderMembership.provider_id == provider_id, ProviderMembership.user_id == user.id)) is None:
        return None
    return user


def _take_steps(tenant: Tenant, referral: Referral, path: tuple[State, ...], *, times: list[datetime],
                officer: Actor, staff: Callable[[int], User | None], reason: str) -> None:
    """Take a demo referral along ``path``, each step at its time (``step_times``) and made by whoever
    makes it in real work: a withdrawal by the force's officer, every other step by the provider's
    staff member (``staff``, in the provider's workspace scope, as its pages act), the platform where
    the demo has no such account. Each booked session starts at ``session_start``; ``reason`` is the
    last step's. A session's venue is named in Welsh too where the force works in Welsh (``WELSH_VENUE``).
    Refuses what the case services refuse."""
    venue = WELSH_VENUE if WELSH in tenant.languages else VENUE
    for index, step in enumerate(path):
        held_by = times[index + 1] if index + 1 < len(path) and path[index + 1] in (
            State.ATTENDED, State.MISSED, State.NOT_COMPLETED) else None
        starts = session_start(times[index], held_by, deadline=referral.deadline)
        said = reason if index == len(path) - 1 else ""
        person = staff(referral.provider_id) if step is not State.WITHDRAWN else None
        if person is None:
            cases.take_path(tenant, referral, (step,), actor=officer if step is State.WITHDRAWN else SYSTEM,
                            reason=said, session_at=starts, venue=venue, times=(times[index],))
            continue
        with acting_for_provider(referral.provider_id, tenant.id, person.id):
            cases.take_path(tenant, referral, (step,), actor=person, reason=said, session_at=starts, venue=venue,
                            times=(times[index],))


# ---------------------------------------------------------------- the force's history, imported

# Enough of every list for three pages (``listing.PER_PAGE`` a page) in every force: its review queue, and
# cases and referrals in every state; the history is long enough for the national comparison to show
# released figures (hundreds of referrals a force) and full 12-month reoffending windows.
BACKLOG = 3 * PER_PAGE + 1
BACKLOG_DAYS = 180  # how far back decisions still waiting for review go
HISTORY_DAYS = 900  # how far back the imported history goes: about two and a half years
HISTORY_CASES = 1_100  # synthetic cases spread over it, of which the import takes the decided ones
MET_AGAIN = 0.2  # how often a case not referred is a person referred before, met again
BACKLOG_FILE = "demo-history-{slug}.csv"
UNKNOWN_AT_REVIEW = ("stage", "personal_use")  # the facts a review item waits for


def _cell(value: Any) -> str:
    """A fact as the import file writes it (``cases.importer``): empty when not known."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return importer.LIST_SEPARATOR.join(value) if value else importer.NO_VALUES
    return str(value)


# How made-up past referrals went. Each force completes its own share of them (``completion_share``),
# between these two (Thames Valley's pilot: about half of those offered), so that the national
# comparison has differences to show; the rest were refused, not completed or withdrawn, in these
# proportions. Half of those still within their deadline are still open.
COMPLETING = (0.45, 0.8)
NOT_COMPLETING = {State.DECLINED: 3, State.NOT_COMPLETED: 5, State.WITHDRAWN: 2}
STILL_OPEN = 0.5
OPEN_STATES = tuple(state for state in State if state.is_open)


def completion_share(seed: str) -> float:
    """The share of a force's made-up referrals that end completed (``COMPLETING``), drawn from
    ``seed``: the same seed, the same share."""
    return random.Random(f"completing:{seed}").uniform(*COMPLETING)  # noqa: S311 - made-up data, not secrets


def backlog_state(rng: random.Random, decided_on: date, deadline_days: int, *, sessions: int, today: date,
                  completing: float) -> tuple[State, date | None, int]:
    """The state an imported referral reached, the day it got there and the sessions attended before
    it ended unfinished: an open one now and then while its deadline is more than a week off (an open
    one is not overdue, ``STILL_OPEN``), a final one otherwise, completed at the force's rate
    (``completing``); never later than yesterday, and sessions (booked, attended, completed) held by
    the deadline. One that ended unfinished attended any number short of the course's ``sessions``
    (some people stop coming, others never come)."""
    deadline = decided_on + timedelta(days=deadline_days)
    if deadline > today + timedelta(days=7) and rng.random() < STILL_OPEN:
        state = rng.choice(OPEN_STATES)
    elif rng.random() < completing:
        state = State.COMPLETED
    else:
        state = rng.choices(tuple(NOT_COMPLETING), weights=tuple(NOT_COMPLETING.values()))[0]
    if state is State.OFFERED:
        return state, None, 0
    last = min(today - timedelta(days=1), deadline)
    if state.is_open:  # on its way: moved a little after the offer
        last = min(last, decided_on + timedelta(days=14))
    reached_on = decided_on + timedelta(days=rng.randint(min(1, (last - decided_on).days),
                                                         max((last - decided_on).days, 0)))
    return state, reached_on, rng.randrange(sessions) if state in rules.ENDED_UNFINISHED else 0


def _backlog_referral(rng: random.Random, offerings: list[Offering], referred: Counter[int], *,
                      policy: CompiledPolicy, pathway_id: str, decided_on: date, wanted: int,
                      today: date, completing: float) -> dict[str, str] | None:
    """The referral cells of an eligible row: to an offering whose provider still wants referrals
    (``referred`` counts them), in a state its deadline allows (``backlog_state``); None when none."""
    choices = [o for o in offerings if referred[o.course.provider_id] < wanted]
    pathway = policy.pathway(pathway_id)
    if not choices or pathway is None:
        return None
    offering = choices[referred[choices[0].course.provider_id] % len(choices)]
    state, reached_on, attended = backlog_state(rng, decided_on, pathway.deadline_days,
                                                sessions=offering.course.sessions, today=today, completing=completing)
    referred[offering.course.provider_id] += 1
    return {"course": offering.course.slug, "referral_state": state.value,
            "referral_outcome_on": reached_on.isoformat() if reached_on else "",
            "sessions_attended": str(attended) if attended else ""}


def _met_again(rng: random.Random, diverted: list[tuple[tuple[str, str, date], str, date]],
               on: date) -> tuple[tuple[str, str, date], str] | None:
    """Now and then (``MET_AGAIN``), someone referred at least a month before ``on``, met again: the
    import finds them by name and date of birth (their earlier diversion may count against them now,
    so such a case takes no referral). (name, ethnicity), or None."""
    earlier = [person for person in diverted if person[2] <= on - timedelta(days=30)]
    if not earlier or rng.random() >= MET_AGAIN:
        return None
    name, ethnicity, _ = rng.choice(earlier)
    return name, ethnicity


class _Backlog:
    """The rows of a force's history file, made up one pass at a time (``backlog_rows``)."""

    def __init__(self, tenant: Tenant, today: date) -> None:
        self.tenant, self.today = tenant, today
        self.rng = random.Random(f"history:{tenant.slug}")  # noqa: S311 - made-up data, not secrets
        self.completing = completion_share(tenant.slug)
        self.end = case_work_window(today)[1]
        self.offerings: dict[str, list[Offering]] = {}
        for offering in db.session.scalars(select(Offering).join(Course, Course.id == Offering.course_id)
                                           .where(Offering.withdrawn_at.is_(None), Course.retired_at.is_(None))
                                           .order_by(Course.slug)):
            self.offerings.setdefault(offering.pathway, []).append(offering)
        self.referred: Counter[int] = Counter({o.course.provider_id: 0 for os in self.offerings.values() for o in os})
        self.rows: list[dict[str, str]] = []
        self.names: set[tuple[str, str, date]] = set()
        self.diverted: list[tuple[tuple[str, str, date], str, date]] = []  # (name, ethnicity, decided on)
        self.policies = eligibility.PoliciesInForce()

    def cases(self, days: int, count: int, seed: str) -> Iterator[synthetic.SyntheticCase]:
        start = self.today - timedelta(days=days)
        return synthetic.cases(self.tenant.slug, count, start=start, days=(self.end - start).days + 1, seed=seed)

    def decided(self, case: synthetic.SyntheticCase, *,
                for_review: bool) -> tuple[tuple[str, str, date], dict[str, Any], CompiledPolicy, Any] | None:
        """A new person for the case, and (the facts the file gives, the policy, its decision), decided as
        the import will; two facts left out of a case meant for review. None where the made-up name is
        taken or no policy decides the case."""
        born = case.decided_on - timedelta(days=365 * case.facts["age"] + self.rng.randrange(365))
        name = (self.rng.choice(SURNAMES), self.rng.choice(GIVEN_NAMES), born)
        if name in self.names:
            return None
        left_out = (*rules.DERIVED_FACTS, *(UNKNOWN_AT_REVIEW if for_review else ()))
        facts = {k: v for k, v in case.facts.items() if k not in left_out}
        known = {**facts, "age": rules.age_on(born, case.decided_on), "offence_age_days": 0,
                 "previous_diversions": 0, "previous_non_engagement": False}
        if (policy := self.policies.on(case.decided_on)) is None:
            return None
        try:
            decision = decide(policy[1], known, case.decided_on, version=policy[0].number)
        except FactsInvalid:
            return None
        self.names.add(name)
        return name, facts, policy[1], decision

    def add(self, name: tuple[str, str, date], ethnicity: str, case: synthetic.SyntheticCase, facts: dict[str, Any],
            referral: dict[str, str] | None = None) -> None:
        self.rows.append({"surname": name[0], "given_name": name[1], "date_of_birth": name[2].isoformat(),
                          "ethnicity": ethnicity, "phone": f"07700 9{self.rng.randrange(10**5):05d}",
                          "offence_on": case.decided_on.isoformat(), "decided_on": case.decided_on.isoformat(),
                          **{column: _cell(facts.get(column)) for column in importer.FACT_COLUMNS},
                          **(referral or {})})
        if referral is not None:
            self.diverted.append((name, ethnicity, case.decided_on))

    def referral(self, case: synthetic.SyntheticCase, policy: CompiledPolicy, decision: Any,
                 wanted: int) -> dict[str, str] | None:
        """The referral cells of an eligible case, to a provider with fewer than ``wanted``."""
        if decision.outcome != "eligible" or decision.pathway not in self.offerings:
            return None
        return _backlog_referral(self.rng, self.offerings[decision.pathway], self.referred, policy=policy,
                                 pathway_id=decision.pathway, decided_on=case.decided_on, wanted=wanted,
                                 today=self.today, completing=self.completing)

    def history(self) -> None:
        """Every case of ``HISTORY_DAYS``: the eligible referred, the rest as decided, and now and
        then someone referred before met again."""
        for case in self.cases(HISTORY_DAYS, HISTORY_CASES, "history"):
            if (found := self.decided(case, for_review=False)) is None:
                continue
            name, facts, policy, decision = found
            if decision.outcome == "not_eligible":
                self.add(*(_met_again(self.rng, self.diverted, case.decided_on) or (name, case.ethnicity)),
                         case, facts)
            elif (referral := self.referral(case, policy, decision, HISTORY_CASES)) is not None:
                self.add(name, case.ethnicity, case, facts, referral)

    def top_up(self, wanted: int) -> None:
        """More referred cases, until every provider the force works with has ``wanted``."""
        for case in self.cases(HISTORY_DAYS, 20_000, "top-up"):
            if all(count >= wanted for count in self.referred.values()):
                return
            if (found := self.decided(case, for_review=False)) is not None:
                name, facts, policy, decision = found
                if (referral := self.referral(case, policy, decision, wanted)) is not None:
                    self.add(name, case.ethnicity, case, facts, referral)

    def reviews(self, wanted: int) -> None:
        """``wanted`` recent cases waiting for review: two facts the officer did not know."""
        count = 0
        for case in self.cases(BACKLOG_DAYS, 20 * wanted, "review"):
            if count >= wanted:
                return
            found = self.decided(case, for_review=True)
            if found is not None and found[3].outcome == "needs_review":
                self.add(found[0], case.ethnicity, case, found[1])
                count += 1


def backlog_rows(tenant: Tenant, *, today: date, wanted: int = BACKLOG) -> list[dict[str, str]]:
    """The rows of an import file (``cases.importer``) of the force in scope's history over
    ``HISTORY_DAYS``, in date order: made-up people, each decided with the policy in force on the
    day (as the import decides them); every eligible case referred to an offering of its pathway,
    in a state its deadline allows, and more until every provider has ``wanted`` referrals; the
    cases found not eligible; people referred before met again (``MET_AGAIN``), so that
    reoffending can be counted; and ``wanted`` decisions of the last ``BACKLOG_DAYS`` waiting for
    review (two facts not known). Refuses nothing: a case no policy decides is left out."""
    backlog = _Backlog(tenant, today)
    backlog.history()
    backlog.top_up(wanted)
    backlog.reviews(wanted)
    return sorted(backlog.rows, key=lambda row: row["decided_on"])


def seed_history(tenant: Tenant, *, today: date, directory: Path, wanted: int = BACKLOG) -> int:
    """Import the force in scope's history (``backlog_rows``) as a force joining the platform
    imports its records (``cases.importer``: every decision and every step through the
    rulebook, written in batches); returns the rows imported. Skipped when the force already
    has imported cases. Refuses (``ImportInvalid``) what the import refuses."""
    if db.session.scalar(select(func.count()).select_from(Decision).where(Decision.source == IMPORTED)):
        return 0
    rows = backlog_rows(tenant, today=today, wanted=wanted)
    if not rows:
        return 0
    path = directory / BACKLOG_FILE.format(slug=tenant.slug)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=importer.COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    try:
        report = importer.import_file(tenant, path, today=today, actor=SYSTEM)
    finally:
        path.unlink(missing_ok=True)
    return report.rows
