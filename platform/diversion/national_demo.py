"""The national-scale demo: every territorial force of England and Wales, five years of case work.

``diversion demo --scale national`` adds a made-up force for each police
force area of England and Wales that has no force file (each a copy of one
of the real forces' files, its policy and offerings included, named "(demo)"),
then makes up each force's history and records it on the import's bulk path
(``cases.importer.import_rows``: every decision made with the force's own
policy in force on the day, every referral written with every step of its
path), a force at a time (the command runs several processes side by side). Encounters are shared
among the forces by the people living in each area; a person is now and then
met again, so that reoffending can be counted. Seeded: the same seed and size
give the same history. A force that already holds imported cases is left as
it is.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import func, select

from diversion.accounts.access import SYSTEM
from diversion.audit.services import record
from diversion.cases import importer, rules
from diversion.cases.identity import Contact, Identity
from diversion.cases.importer import Row
from diversion.cases.models import IMPORTED, State
from diversion.catalogue.models import Course, Offering
from diversion.catalogue.vocabulary import AREAS
from diversion.demo import GIVEN_NAMES, SURNAMES, backlog_state, completion_share
from diversion.eligibility import services as eligibility
from diversion.eligibility import synthetic
from diversion.eligibility.compiler import CompiledPolicy
from diversion.eligibility.engine import decide
from diversion.eligibility.fields import FactsInvalid
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.forces.files import NOT_FORCES
from diversion.tenancy.models import Tenant

ENCOUNTERS = 5_000_000
YEARS = 5
LABEL = "national demo"  # where the made-up rows say they came from
# The forces a made-up force copies, in turn: English ones, whose files are in English alone.
TEMPLATES = ("west-midlands", "thames-valley", "durham", "avon-and-somerset")
# People living in each area, in thousands, roughly (mid-2020s estimates); the City of London
# counted by its many visitors rather than its few residents.
PEOPLE = {
    "avon-and-somerset": 1_780, "bedfordshire": 700, "cambridgeshire": 900, "cheshire": 1_100,
    "city-of-london": 100, "cleveland": 570, "cumbria": 500, "derbyshire": 1_060, "devon-and-cornwall": 1_800,
    "dorset": 780, "durham": 650, "dyfed-powys": 520, "essex": 1_880, "gloucestershire": 650,
    "greater-manchester": 2_900, "gwent": 600, "hampshire": 2_000, "hertfordshire": 1_200, "humberside": 940,
    "kent": 1_880, "lancashire": 1_540, "leicestershire": 1_110, "lincolnshire": 770, "merseyside": 1_430,
    "metropolitan": 8_900, "norfolk": 920, "north-wales": 700, "north-yorkshire": 830, "northamptonshire": 790,
    "northumbria": 1_470, "nottinghamshire": 1_170, "south-wales": 1_340, "south-yorkshire": 1_410,
    "staffordshire": 1_140, "suffolk": 770, "surrey": 1_210, "sussex": 1_720, "thames-valley": 2_470,
    "warwickshire": 600, "west-mercia": 1_310, "west-midlands": 2_940, "west-yorkshire": 2_360, "wiltshire": 730,
}
MET_AGAIN = 0.12  # how often an encounter is a person diverted before, met again
REMEMBERED = 5_000  # the people diverted who may be met again, kept at random (a reservoir)
WITH_PHONE = 0.7  # the share of people who gave a phone number


def shares(total: int) -> dict[str, int]:
    """``total`` encounters shared among the areas by the people living in each (at least one each)."""
    people = sum(PEOPLE.values())
    return {area: max(1, round(total * count / people)) for area, count in PEOPLE.items()}


def national_folder(source: Path, target: Path, *, taken: Collection[str] = ()) -> list[str]:
    """Write into ``target`` the force files of ``source`` and the catalogue, and a made-up force
    for every area with no force: a copy of a template force (``TEMPLATES``, in turn) under the
    area's address, with the area added to the courses it offers. An area whose address is in
    ``taken`` (a force the demo passes over, such as one being set up in the console there) gets
    none: syncing a file there would change that force. Returns the made-up forces."""
    files = {path.stem: tomllib.loads(path.read_text()) for path in sorted(source.glob("*.toml"))}
    catalogue = files.pop("catalogue")
    courses = {course["slug"]: course for course in catalogue.get("courses", [])}
    covered = {force.get("area", slug) for slug, force in files.items() if slug not in NOT_FORCES} | set(taken)
    made = []
    for number, area in enumerate(sorted(set(AREAS) - covered)):
        force = dict(files[TEMPLATES[number % len(TEMPLATES)]])
        force.update(slug=area, name=f"{AREAS[area]} (demo)", area=area, languages=["en"])
        force.pop("sign_on", None)
        for offering in force.get("offerings", []):
            courses[offering["course"]]["areas"].append(area)
        files[area] = force
        made.append(area)
    target.mkdir(parents=True, exist_ok=True)
    for slug, content in {**files, "catalogue": catalogue}.items():
        (target / f"{slug}.toml").write_text(tomli_w.dumps(content))
    return made


# course, state reached, the day it was, sessions attended before it ended unfinished
_Referral = tuple[str | None, State | None, date | None, int]


@dataclass
class _Person:
    identity: Identity
    ethnicity: str
    referred_on: date


class _History:
    """The made-up history of the force in scope, one row at a time (``rows``)."""

    def __init__(self, tenant: Tenant, *, count: int, start: date, today: date, seed: str) -> None:
        self.tenant, self.count, self.start, self.today = tenant, count, start, today
        self.seed = f"national:{seed}:{tenant.slug}"
        self.rng = random.Random(self.seed)  # noqa: S311 - made-up data, not secrets
        self.completing = completion_share(self.seed)
        self.offerings: dict[str, list[tuple[str, int]]] = {}  # the courses (and their sessions) of each pathway
        for pathway, course, sessions in db.session.execute(
                select(Offering.pathway, Course.slug, Course.sessions).join(Course, Course.id == Offering.course_id)
                .where(Offering.withdrawn_at.is_(None), Course.retired_at.is_(None)).order_by(Course.slug)):
            self.offerings.setdefault(pathway, []).append((course, sessions))
        self.policies = eligibility.PoliciesInForce()
        self.names: set[int] = set()
        self.diverted: list[_Person] = []
        self.seen = 0  # people diverted so far (the reservoir's draw)

    def rows(self) -> Iterator[Row]:
        """Every row, in date order; cases no policy decides (before the first) are left out."""
        days = (self.today - self.start).days
        for number, case in enumerate(synthetic.cases(self.tenant.slug, self.count, start=self.start, days=days,
                                                      seed=self.seed), start=2):
            found = self.policies.on(case.decided_on)
            if found is None:
                continue
            facts = {name: value for name, value in case.facts.items() if name not in rules.DERIVED_FACTS}
            again = self._met_again(case.decided_on)
            if again is not None:  # their earlier diversion may count now: no referral
                yield self._row(number, (again.identity, again.ethnicity), case.decided_on, facts)
                continue
            identity = self._new_person(case.decided_on, case.facts["age"])
            referral = self._referral(found[1], identity, facts, case.decided_on)
            yield self._row(number, (identity, case.ethnicity), case.decided_on, facts, referral)
            if referral[0] is not None:
                self._remember(_Person(identity, case.ethnicity, case.decided_on))

    def _row(self, number: int, person: tuple[Identity, str], on: date, facts: dict[str, Any],
             referral: _Referral = (None, None, None, 0)) -> Row:
        phone = f"07700 9{self.rng.randrange(10**5):05d}" if self.rng.random() < WITH_PHONE else ""
        return Row(number, rules.Intake(person[0], Contact(phone=phone), person[1], on, facts), on, *referral)

    def _new_person(self, on: date, age: int) -> Identity:
        """Someone not met before in the force (a name and date of birth no one else has)."""
        while True:
            born = on - timedelta(days=365 * age + self.rng.randrange(365))
            identity = Identity(self.rng.choice(SURNAMES), self.rng.choice(GIVEN_NAMES), born)
            key = hash((identity.surname, identity.given_name, born))
            if key not in self.names:
                self.names.add(key)
                return identity

    def _referral(self, policy: CompiledPolicy, identity: Identity, facts: dict[str, Any], on: date) -> _Referral:
        """(course, state, day it was reached, sessions attended) of a new person's case where it is
        eligible and the force offers its pathway, as the import will decide it; None, None, None, 0
        otherwise."""
        known = {**facts, "age": rules.age_on(identity.date_of_birth, on), "offence_age_days": 0,
                 "previous_diversions": 0, "previous_non_engagement": False}
        try:
            decision = decide(policy, known, on)
        except FactsInvalid:
            return None, None, None, 0
        offered = self.offerings.get(decision.pathway or "")
        pathway = policy.pathway(decision.pathway or "")
        if decision.outcome != "eligible" or not offered or pathway is None:
            return None, None, None, 0
        course, sessions = offered[self.rng.randrange(len(offered))]
        return course, *backlog_state(self.rng, on, pathway.deadline_days, sessions=sessions, today=self.today,
                                      completing=self.completing)

    def _met_again(self, on: date) -> _Person | None:
        if not self.diverted or self.rng.random() >= MET_AGAIN:
            return None
        person = self.diverted[self.rng.randrange(len(self.diverted))]
        return person if person.referred_on <= on - timedelta(days=30) else None

    def _remember(self, person: _Person) -> None:
        self.seen += 1
        if len(self.diverted) < REMEMBERED:
            self.diverted.append(person)
        elif (slot := self.rng.randrange(self.seen)) < REMEMBERED:
            self.diverted[slot] = person


def seed_force(tenant: Tenant, *, count: int, today: date, seed: str,
               progress: Callable[[int], None] | None = None) -> int:
    """Make up and record the history of ``tenant`` (in scope): ``count`` cases over ``YEARS``
    years to ``today``; returns the rows recorded (0 when the force already holds imported
    cases). Records one audit event, as an import does. Never commits."""
    if db.session.scalar(select(func.count()).select_from(Decision).where(Decision.source == IMPORTED)):
        return 0
    start = today - timedelta(days=365 * YEARS)
    history = _History(tenant, count=count, start=start, today=today, seed=seed)
    report = importer.import_rows(tenant, history.rows(), actor=SYSTEM, label=LABEL, progress=progress)
    record("cases.imported", actor=SYSTEM, tenant_id=tenant.id, object_type="import", object_id=LABEL,
           details={"generated": LABEL, "seed": seed, "rows": report.rows, **report.details()})
    return report.rows
