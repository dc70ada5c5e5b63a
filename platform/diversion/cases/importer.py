"""Importing a force's historic encounters and referrals from a CSV file (onboarding).

One row per historic encounter: the person, the offence and decision dates,
every fact of the national catalogue an officer would give, and optionally
the referral that followed and the state it reached. The columns are
described in the README ("Importing historic cases").

Two passes over the file, both streaming, so that a file of millions of rows
never sits in memory:

1. ``check_file`` reads every row and collects every problem as (row,
   column, problem); header problems too. It also works out the decisions
   the import will make (the policy in force on each decision date, the age,
   the person's earlier diversions in the file and in the force), so that a
   referral the policy would not allow is reported here, with every other
   problem, and not halfway through the import. Those decisions are made in
   batches on columns, as a simulation makes them, with each policy compiled
   once. Nothing is written.
2. ``import_checked`` reads the file again and writes it in batches: the
   same people (found by name key, else PNC key, as an officer's intake
   finds them), decisions made with the same compiled policies and derived
   facts as ``record_encounter`` makes them, and each referral written with
   every step of a legal path to its state, dated as it happened. Each
   batch's unmet criteria are worked out on columns, and the batch goes to
   the database on the bulk path (``tenancy.bulk``: COPY into a temporary
   table and one ``INSERT ... SELECT`` per table on PostgreSQL, in a thread
   while the next batch is worked out), not one service call at a time: an
   import of a million rows is an onboarding job of minutes, not hours.
   Should a row still be refused there (a decision that differs from the
   check's), it raises ``ImportInvalid`` and the caller rolls everything
   back.

Neither pass commits: the command does, once, at the end.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import select

from diversion.accounts.access import Action, require, user_id_of
from diversion.audit.services import record
from diversion.cases import rules
from diversion.cases.events import Moved, announce
from diversion.cases.identity import Contact, Identity, person_keys, seal, seal_contact, search_keys
from diversion.cases.models import (
    FINAL_STATES,
    IMPORTED,
    Attendance,
    BookedSession,
    Encounter,
    Person,
    Referral,
    State,
    Transition,
    Why,
)
from diversion.cases.references import take_references
from diversion.cases.rules import DERIVED_FACTS, Intake
from diversion.cases.steps import step_key
from diversion.catalogue.models import Course, Offering
from diversion.db import new_id
from diversion.eligibility import services as eligibility
from diversion.eligibility.compiler import CompiledPathway, CompiledPolicy
from diversion.eligibility.engine import Assessment, decide
from diversion.eligibility.fields import FIELDS, Kind
from diversion.eligibility.models import Decision
from diversion.eligibility.services import InForce
from diversion.eligibility.simulation import ELIGIBLE, Columns, evaluate
from diversion.errors import ProblemsFound
from diversion.extensions import db
from diversion.inputs import case_date_problem, text_problem
from diversion.monitoring import ETHNICITIES
from diversion.tenancy.bulk import Batches, collecting_rarely, fresh_plans
from diversion.tenancy.models import Tenant
from diversion.words import counted

if TYPE_CHECKING:
    from diversion.accounts.access import Actor

PERSON_COLUMNS = ("surname", "given_name", "date_of_birth", "pnc_id", "ethnicity", "phone", "email", "address")
DATE_COLUMNS = ("offence_on", "decided_on")
FACT_COLUMNS = tuple(name for name in FIELDS if name not in DERIVED_FACTS)
REFERRAL_COLUMNS = ("course", "referral_state", "referral_outcome_on", "sessions_attended")
COLUMNS = PERSON_COLUMNS + DATE_COLUMNS + FACT_COLUMNS + REFERRAL_COLUMNS
OPTIONAL_COLUMNS = frozenset({"pnc_id", "phone", "email", "address", *REFERRAL_COLUMNS})
TEXT_COLUMNS = ("surname", "given_name", "pnc_id", "phone", "email", "address")
LIST_SEPARATOR = ";"
NO_VALUES = "none"  # an empty list (no aggravating factors), which is not the same as unknown
TRUE_WORDS = frozenset({"true", "yes"})
FALSE_WORDS = frozenset({"false", "no"})
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Historic events are dated, not timed: midday UTC is the same day in London all year.
MIDDAY = time(12, 0, tzinfo=UTC)
# A referral in these states had sessions booked (and attended), on its outcome date.
SESSION_STATES = frozenset({State.BOOKED, State.ATTENDED, State.MISSED, State.COMPLETED})
PROGRESS_EVERY = 100
WRITE_BATCH = 2_000  # rows written together
DECIDE_BATCH = 20_000  # referral rows decided together, on columns
# Where a service's refusal points, as a column of the file.
FIELD_COLUMNS = {"policy": "decided_on", "decision": "course", "offering": "course", "state": "referral_state",
                 "reason": "referral_state"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file: the row as a spreadsheet numbers it (the
    header is row 1), the column (None for the whole row or file), and what."""

    row: int
    column: str | None
    problem: str

    def __str__(self) -> str:
        if not self.row:  # the file as a whole
            return self.problem
        return f"row {self.row}, {self.column}: {self.problem}" if self.column else f"row {self.row}: {self.problem}"


class ImportInvalid(ProblemsFound[Problem]):
    """The file cannot be imported; ``problems`` lists every problem found."""

    @staticmethod
    def summary(problems: list[Any]) -> str:
        """The message: how many problems, and the first (a file may hold thousands)."""
        return f"{counted(len(problems), 'problem')}, e.g. {problems[0]}" if problems else "no problems"


@dataclass(frozen=True)
class CheckedFile:
    """A file ``check_file`` found importable, and what it holds."""

    path: Path
    sha256: str
    rows: int
    tenant_id: int
    today: date


@dataclass
class ImportReport:
    rows: int = 0
    new_people: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    referrals: Counter[State] = field(default_factory=Counter)

    def details(self) -> dict[str, Any]:
        """What the import recorded, as its audit event keeps it."""
        return {"new_people": self.new_people, "decisions": dict(self.decisions),
                "referrals": {state.value: count for state, count in self.referrals.items()}}


@dataclass(frozen=True, slots=True)
class Row:
    """One row read and checked: an intake, its decision date and the referral, if any."""

    number: int
    intake: Intake
    decided_on: date
    course: str | None
    state: State | None
    ended_on: date | None
    attended: int = 0  # sessions attended before a referral ended unfinished (``rules.ENDED_UNFINISHED``)


# ---------------------------------------------------------------- reading the file


class _Reading(io.RawIOBase):
    """The file's bytes, hashed and counted as they pass (progress; a file changed between passes)."""

    def __init__(self, raw: BinaryIO, progress: Callable[[int], None] | None) -> None:
        super().__init__()
        self._raw = raw
        self._progress = progress
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.digest.update(data)
        if self._progress is not None and size:
            self._progress(size)
        return size


class _Unreadable(Exception):  # noqa: N818 - reads as the condition it reports
    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.message = message


def _lines(binary: BinaryIO) -> Iterator[str]:
    """The file's lines as text. Decoded one by one (UTF-8 allows it), so that a
    byte that is not UTF-8 is reported in its own row; a leading BOM (Excel's
    "CSV UTF-8") is dropped."""
    for number, line in enumerate(binary):
        yield (line[len(codecs.BOM_UTF8):] if number == 0 and line.startswith(codecs.BOM_UTF8) else line).decode()


def _records(reading: _Reading) -> Iterator[tuple[int, list[str]]]:
    """(row number, values) of every record, the header being row 1; blank rows are skipped."""
    number = 0
    try:
        for number, values in enumerate(csv.reader(_lines(io.BufferedReader(reading, 1 << 16)), strict=True),
                                         start=1):
            if values and any(value.strip() for value in values):
                yield number, values
    except UnicodeDecodeError as error:
        raise _Unreadable(number + 1, f"not UTF-8 text ({error.reason}); save the file as CSV UTF-8") from error
    except csv.Error as error:
        raise _Unreadable(number + 1, f"cannot be read as CSV: {error}") from error


def _header(values: list[str]) -> tuple[dict[str, int], list[Problem]]:
    problems: list[Problem] = []
    index: dict[str, int] = {}
    for position, raw in enumerate(values):
        name = raw.strip().lower()
        if name in index:
            problems.append(Problem(1, name, "this column appears twice"))
        elif name in DERIVED_FACTS:
            problems.append(Problem(1, name, "this fact is worked out by the platform; leave the column out"))
        elif name not in COLUMNS:
            problems.append(Problem(1, name or f"column {position + 1}", "not a column of the import file"))
        else:
            index[name] = position
    problems += [Problem(1, name, "this column is missing") for name in COLUMNS
                 if name not in index and name not in OPTIONAL_COLUMNS]
    return index, problems


# ---------------------------------------------------------------- one row


def _date(text: str) -> date | str:
    if not ISO_DATE.fullmatch(text):
        return f"must be a date as YYYY-MM-DD, not {text!r}"
    try:
        return date.fromisoformat(text)
    except ValueError:
        return f"{text!r} is not a real date"


_ALLOWED = {name: {value.lower(): value for value in spec.values} for name, spec in FIELDS.items()}


def _fact(name: str, text: str) -> tuple[Any, str | None]:  # noqa: PLR0911 - one answer per kind
    """(value, problem) of one fact column; an empty cell is unknown (None)."""
    if not text:
        return None, None
    spec = FIELDS[name]
    if spec.kind is Kind.BOOL:
        word = text.lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS, None
        return None, f"must be true, false, yes or no (or empty when not known), not {text!r}"
    if spec.kind is Kind.INT:
        try:
            number = int(text)
        except ValueError:
            return None, f"must be a whole number, not {text!r}"
        if spec.minimum is not None and number < spec.minimum:
            return None, f"must be at least {spec.minimum}, not {number}"
        return number, None
    allowed = _ALLOWED[name]
    if spec.kind is Kind.CHOICE:
        if text.lower() in allowed:
            return allowed[text.lower()], None
        return None, f"must be one of {', '.join(spec.values)}, not {text!r}"
    if text.lower() == NO_VALUES:
        return [], None
    items = [item.strip() for item in text.split(LIST_SEPARATOR) if item.strip()]
    wrong = [item for item in items if item.lower() not in allowed]
    if wrong:
        return None, (f"{wrong[0]!r} is not one of {', '.join(spec.values)} "
                      f"(separate values with '{LIST_SEPARATOR}'; write '{NO_VALUES}' for none)")
    return sorted({allowed[item.lower()] for item in items}), None


class _Cells:
    """One row's cells by column name, and the problems found in them."""

    def __init__(self, number: int, values: list[str], index: dict[str, int]) -> None:
        self.number = number
        self._values = values
        self._index = index
        self.problems: list[Problem] = []

    def __getitem__(self, name: str) -> str:
        position = self._index.get(name)
        return self._values[position].strip() if position is not None else ""

    def refuse(self, column: str, problem: str) -> None:
        self.problems.append(Problem(self.number, column, problem))

    def date(self, name: str, *, required: bool) -> date | None:
        text = self[name]
        if not text:
            if required:
                self.refuse(name, f"enter the {name.replace('_', ' ')} as YYYY-MM-DD")
            return None
        parsed = _date(text)
        if isinstance(parsed, str):
            self.refuse(name, parsed)
            return None
        return parsed


def _facts(cells: _Cells) -> dict[str, Any]:
    """The known facts; an empty cell leaves its fact out (unknown)."""
    facts: dict[str, Any] = {}
    for name in FACT_COLUMNS:
        value, problem = _fact(name, cells[name])
        if problem:
            cells.refuse(name, problem)
        elif value is not None:
            facts[name] = value
    return facts


def _intake(cells: _Cells, today: date) -> tuple[Intake, date] | None:
    """The intake and decision date, refused as ``record_encounter`` would refuse them (``rules``)."""
    texts = {name: cells[name] for name in TEXT_COLUMNS}
    contact = Contact(texts["phone"], texts["email"], texts["address"])
    born = cells.date("date_of_birth", required=True)
    offence_on = cells.date("offence_on", required=True)
    decided_on = cells.date("decided_on", required=True)
    ethnicity = cells["ethnicity"].upper()
    if ethnicity not in ETHNICITIES:
        cells.refuse("ethnicity", f"must be one of the 16+1 codes ({', '.join(ETHNICITIES)}; NS when not "
                                  f"stated), not {cells['ethnicity']!r}")
    facts = _facts(cells)
    if born is None or offence_on is None or decided_on is None:
        broken = rules.texts_broken(texts["surname"], texts["given_name"], texts["pnc_id"], contact)
        intake = None
    else:
        identity = Identity(texts["surname"], texts["given_name"], born, texts["pnc_id"] or None)
        intake = Intake(identity, contact, ethnicity, offence_on, facts)
        broken = [b for b in rules.intake_broken(intake, decided_on=decided_on, today=today)
                  if b.field != "ethnicity"]  # the cell's own problem is said above
    for found in broken:
        cells.refuse(found.field, found.problem)
    if cells.problems or intake is None or decided_on is None:
        return None
    return intake, decided_on


def _referral(cells: _Cells, decided_on: date | None,
              today: date) -> tuple[str | None, State | None, date | None, int]:
    """(course, state, outcome date, sessions attended) of the row's referral; None, None, None, 0
    when there is none."""
    course = cells["course"] or None
    state_text = cells["referral_state"].lower()
    state: State | None = None
    if state_text:
        try:
            state = State(state_text)
        except ValueError:
            cells.refuse("referral_state", f"must be one of {', '.join(s.value for s in State)}, not {state_text!r}")
    if course and not state_text:
        cells.refuse("referral_state", "give the state the referral reached (offered, completed, ...)")
    if state_text and not course:
        cells.refuse("course", "give the course the person was referred to, or leave the referral columns empty")
    ended_on = cells.date("referral_outcome_on", required=False)
    if state is not None and state in FINAL_STATES and not cells["referral_outcome_on"]:
        cells.refuse("referral_outcome_on", f"give the date the referral became {state.value} (YYYY-MM-DD)")
    if ended_on is not None:
        if not course:
            cells.refuse("referral_outcome_on", "a referral outcome date needs a referral (course and referral_state)")
        elif decided_on and ended_on < decided_on:
            cells.refuse("referral_outcome_on", f"is before the decision date ({decided_on.isoformat()})")
        elif problem := case_date_problem(ended_on, today):
            cells.refuse("referral_outcome_on", problem)
    attended = _attended(cells, state)
    if course is None or state is None:
        return None, None, None, 0
    return course, state, ended_on, attended


def _attended(cells: _Cells, state: State | None) -> int:
    """The sessions attended before the referral ended unfinished (0 when the cell is empty).
    Refuses a value that is not a whole number, and one for a referral that did not end
    unfinished (a completed one attended every session; an open one is at its state)."""
    text = cells["sessions_attended"]
    if not text:
        return 0
    if not text.isdigit() or not text.isascii():
        cells.refuse("sessions_attended", f"must be a whole number of sessions, such as 2, not {text!r}")
        return 0
    if state not in rules.ENDED_UNFINISHED:
        cells.refuse("sessions_attended", "give it only for a referral that ended not_completed or withdrawn; "
                                          "leave it empty for any other state")
        return 0
    return int(text)


def parse_row(number: int, values: list[str], index: dict[str, int], *,
              today: date) -> tuple[Row | None, list[Problem]]:
    """Read one row: the row (None when its intake part is wrong) and every problem in it.

    Refuses what the intake would refuse (a missing name, a date of birth
    that is not before the offence or makes the person under 10, an offence
    after the decision date, a decision date after today, an unknown
    ethnicity or fact value) and an incomplete or impossible referral.
    """
    if len(values) != len(index):
        return None, [Problem(number, None, f"has {len(values)} values; the header names {len(index)} columns")]
    cells = _Cells(number, values, index)
    for name, position in index.items():  # the texts of the intake are the rulebook's (``_intake``)
        if name not in TEXT_COLUMNS and (problem := text_problem(values[position])):
            cells.refuse(name, problem)
    intake = _intake(cells, today)
    referral = _referral(cells, intake[1] if intake else None, today)
    if intake is None:
        return None, cells.problems
    return Row(number, intake[0], intake[1], *referral), cells.problems


# ---------------------------------------------------------------- checking the whole file


@dataclass(frozen=True, slots=True)
class _Match:
    """Whom a row's identity is: the person already known (None when new), and
    the row's keys, short (to follow people) and whole (to write)."""

    found: int | None
    name: int
    pnc: int | None
    name_key: bytes
    pnc_key: bytes | None

    @property
    def person(self) -> int:
        """The short key the person is followed under from this row on."""
        return self.found if self.found is not None else self.name


class _Replay:
    """What the import will decide, worked out without writing anything.

    People are followed as ``record_encounter`` finds them (by name key,
    else by PNC key) with their referrals' states, so that a person's
    earlier diversions count as they will when the rows are recorded in
    order. Keys are kept as 64-bit prefixes to keep a million people small;
    the import itself uses the whole keys.
    """

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.policies = eligibility.PoliciesInForce()
        self.pending: list[tuple[Row, dict[str, Any], InForce]] = []  # rows whose referral awaits a decision
        self.offerings: dict[str, dict[str, Offering]] = {}
        for offering, slug in db.session.execute(select(Offering, Course.slug).join(Course)):
            self.offerings.setdefault(slug, {})[offering.pathway] = offering
        self.courses = set(db.session.scalars(select(Course.slug)))
        self.names: set[int] = set()
        self.pnc_owner: dict[int, int] = {}
        self.has_pnc: set[int] = set()
        self.history: dict[int, list[tuple[date, State]]] = {}
        # Each person's latest offence in the file and its row, packed in one
        # number (day << 32 | row): a million people stay small.
        self.latest: dict[int, int] = {}
        # Each person's record, by the short key they are followed under (the import's new people too).
        self.person_ids: dict[int, uuid.UUID] = {}
        ids: dict[uuid.UUID, int] = {}
        for person_id, name_key, pnc_key in db.session.execute(select(Person.id, Person.name_key, Person.pnc_key)):
            ids[person_id] = self._known(name_key, pnc_key)
            self.person_ids[ids[person_id]] = person_id
        for person_id, offence_on, state in db.session.execute(
                select(Referral.person_id, Encounter.offence_on, Referral.state)
                .join(Encounter, Encounter.id == Referral.encounter_id)):
            self.history.setdefault(ids[person_id], []).append((offence_on, state))

    @staticmethod
    def _short(key: bytes) -> int:
        return int.from_bytes(key[:8])

    def _known(self, name_key: bytes, pnc_key: bytes | None) -> int:
        person = self._short(name_key)
        self.names.add(person)
        if pnc_key is not None:
            self.pnc_owner.setdefault(self._short(pnc_key), person)
            self.has_pnc.add(person)
        return person

    def person(self, identity: Identity) -> _Match:
        """The person this identity is, if known (in the force or earlier in the file), and its keys."""
        name_key, pnc_key = person_keys(self.tenant.slug, identity)
        name, pnc = self._short(name_key), (self._short(pnc_key) if pnc_key else None)
        found = name if name in self.names else (self.pnc_owner.get(pnc) if pnc is not None else None)
        return _Match(found, name, pnc, name_key, pnc_key)

    def remember(self, match: _Match, row: Row) -> None:
        """The person as recorded after this row (and its referral's state)."""
        person = match.person
        self.names.add(person)
        if match.pnc is not None and person not in self.has_pnc:
            self.has_pnc.add(person)
            self.pnc_owner.setdefault(match.pnc, person)
        if row.state is not None:
            self.history.setdefault(person, []).append((row.intake.offence_on, row.state))
        packed = row.intake.offence_on.toordinal() << 32 | row.number
        if self.latest.get(person, 0) >> 32 <= packed >> 32:
            self.latest[person] = packed

    def out_of_order(self, row: Row, found: int | None) -> Problem | None:
        """A referral that an earlier row of the same person, for a later offence, would not count."""
        packed = self.latest.get(found) if found is not None else None
        if row.state is None or packed is None or packed >> 32 <= row.intake.offence_on.toordinal():
            return None
        latest, number = date.fromordinal(packed >> 32), packed & 0xFFFFFFFF
        return Problem(row.number, "offence_on",
                       f"is before the offence of row {number} ({latest.isoformat()}) of the same person: "
                       "put each person's rows in date order, so that this referral counts as an earlier one "
                       "when that row is decided")

    def no_policy(self, row: Row) -> Problem:
        first = min((v.effective_from for v in self.policies.versions if v.effective_from), default=None)
        since = f"; the first takes effect on {first.isoformat()}" if first else ""
        return Problem(row.number, "decided_on",
                       f"{self.tenant.name} has no published policy in force on {row.decided_on.isoformat()}{since}")

    def facts(self, row: Row, found: int | None) -> dict[str, Any]:
        """The row's facts with the derived ones, as ``record_encounter`` works them out (``rules``)."""
        earlier = [state for on, state in self.history.get(found, ()) if on <= row.intake.offence_on] \
            if found is not None else []
        return {**row.intake.facts, **rules.derived_facts(row.intake, decided_on=row.decided_on, earlier=earlier)}

    def queue(self, row: Row, found: int | None) -> Problem | None:
        """Take the row's decision into account: refused at once when no policy
        is in force; otherwise decided with the rest of its batch by ``settle``."""
        in_force = self.policies.on(row.decided_on)
        if in_force is None:
            return self.no_policy(row)
        if row.course is None:
            return None  # any decision may be recorded; only a referral depends on it
        if row.course not in self.courses:
            return Problem(row.number, "course", f"no course {row.course!r} in the catalogue")
        self.pending.append((row, self.facts(row, found), in_force))
        return None

    def settle(self) -> list[Problem]:
        """Decide the queued rows, a batch per policy version, on columns (as a
        simulation does, with the same rules as ``decide``); the referrals the
        decisions do not allow."""
        problems: list[Problem] = []
        by_version: dict[uuid.UUID, list[tuple[Row, dict[str, Any], InForce]]] = {}
        for item in self.pending:
            by_version.setdefault(item[2][0].id, []).append(item)
        self.pending = []
        for items in by_version.values():
            version, policy = items[0][2]
            result = evaluate(policy, Columns.build([facts for _, facts, _ in items],
                                                    [row.decided_on for row, _, _ in items]))
            for (row, facts, _), code, index in zip(items, result.outcome.tolist(), result.pathway.tolist(),
                                                    strict=True):
                if code == ELIGIBLE:
                    problem = self.offered(row, policy.pathways[index].id)
                else:  # the whole decision, for its reasons
                    problem = self.refused(row, decide(policy, facts, row.decided_on, version=version.number))
                if problem is not None:
                    problems.append(problem)
        return problems

    def refused(self, row: Row, decision: Assessment) -> Problem | None:
        if decision.outcome == "eligible" and decision.pathway is not None:
            return self.offered(row, decision.pathway)
        why = (f"needs review (missing: {', '.join(decision.missing)})"
               if decision.outcome == "needs_review" else "is not eligible")
        return Problem(row.number, "course",
                       f"the decision {why} under policy v{decision.policy_version} in force on "
                       f"{row.decided_on.isoformat()}; only an eligible decision can lead to a referral")

    def offered(self, row: Row, pathway: str) -> Problem | None:
        """Refuses a course the force does not offer for the row's pathway, as many sessions
        attended as the course has (or more) by a referral that ended unfinished, and sessions
        (which a referral booked, attended or completed had, or one that ended after attending
        some) after the referral's deadline, as booking one would refuse them."""
        offered = self.offerings.get(row.course or "", {})
        if pathway not in offered:
            pathways = ", ".join(sorted(offered)) or "no pathway"
            return Problem(row.number, "course",
                           f"{self.tenant.name} does not offer {row.course!r} for the {pathway!r} "
                           f"pathway this row is eligible for (it offers it for: {pathways})")
        sessions = offered[pathway].course.sessions
        if row.attended >= sessions:
            return Problem(row.number, "sessions_attended",
                           f"is {row.attended}, but {row.course!r} has {sessions} session{'s' * (sessions != 1)}: "
                           f"a referral that attended every one is completed")
        in_force = self.policies.on(row.decided_on)
        found = in_force[1].pathway(pathway) if in_force is not None else None
        held = row.ended_on or row.decided_on
        if found is not None and (row.state in SESSION_STATES or row.attended) \
                and held > (deadline := row.decided_on + timedelta(days=found.deadline_days)):
            return Problem(row.number, "referral_outcome_on",
                           f"is after the referral's deadline ({deadline.isoformat()}): its sessions were held by then")
        return None


def _rows_again(reading: _Reading, *, today: date) -> Iterator[Row]:
    """The rows of a checked file, read again; refuses (``ImportInvalid``) one that no longer reads."""
    records = _records(reading)
    try:
        _, header = next(records)
        index, _ = _header(header)
        for number, values in records:
            row, problems = parse_row(number, values, index, today=today)
            if row is None or problems:
                raise ImportInvalid(problems or [Problem(number, None, "changed since the file was checked")])
            yield row
    except (_Unreadable, StopIteration) as error:
        raise ImportInvalid([Problem(0, None, "the file changed since it was checked")]) from error


def read_rows(path: Path, *, today: date) -> Iterator[Row]:
    """The rows of a file ``check_file`` accepted, read one by one (nothing is written).

    Refuses (``ImportInvalid``) a row that does not read after all (the file changed).
    """
    with path.open("rb") as raw:
        yield from _rows_again(_Reading(raw, None), today=today)


def check_file(tenant: Tenant, path: Path, *, today: date,
               progress: Callable[[int], None] | None = None) -> CheckedFile:
    """Read the whole file and refuse it (``ImportInvalid``, every problem with
    its row and column) if anything in it would be refused; writes nothing.

    Must run with ``tenant`` in scope. ``progress`` receives bytes read.
    """
    problems: list[Problem] = []
    rows = 0
    with path.open("rb") as raw, collecting_rarely():
        reading = _Reading(raw, progress)
        records = _records(reading)
        try:
            first = next(records, None)
            if first is None:
                raise ImportInvalid([Problem(1, None, "the file is empty: the first row must name the columns")])
            index, header_problems = _header(first[1])
            if header_problems:
                raise ImportInvalid(header_problems)
            replay = _Replay(tenant)
            for number, values in records:
                rows += 1
                row, found_problems = parse_row(number, values, index, today=today)
                problems += found_problems
                if row is None:
                    continue
                match = replay.person(row.intake.identity)
                problems += filter(None, (replay.out_of_order(row, match.found), replay.queue(row, match.found)))
                replay.remember(match, row)
                if len(replay.pending) >= DECIDE_BATCH:
                    problems += replay.settle()
            problems += replay.settle()
        except _Unreadable as error:
            problems.append(Problem(error.row, None, error.message))
    if not rows and not problems:
        problems.append(Problem(2, None, "the file has no rows after the header"))
    if problems:
        raise ImportInvalid(sorted(problems, key=lambda problem: problem.row))
    return CheckedFile(path, reading.digest.hexdigest(), rows, tenant.id, today)


# ---------------------------------------------------------------- importing


def _at(day: date) -> datetime:
    return datetime.combine(day, MIDDAY)


def imported_details(label: str, number: int) -> dict[str, Any]:
    """The details of an imported step (``Why.IMPORTED``): the file and the row it came from."""
    return {"file": label, "row": number}


# Where an imported session took place: the file does not say (pages read it as not recorded).
IMPORTED_VENUE = ""


class _Writer:
    """Turns checked rows into the rows an intake, a decision and a referral
    would write, and writes them a batch at a time (multi-row INSERTs, in the
    order the foreign keys need).

    A person met again keeps one record, with the latest contact details and
    ethnicity, as ``record_encounter`` keeps them. A referral is written
    with every step of the legal path to its state (``PATHS``): the offer on
    the decision date, the later steps on the outcome date, a second apart
    so that they keep their order.
    """

    def __init__(self, tenant: Tenant, replay: _Replay, report: ImportReport, *, actor: Actor,
                 label: str) -> None:
        self.tenant = tenant
        self.replay = replay
        self.report = report
        self.actor_id = user_id_of(actor)
        self.label = label
        self.batches = Batches(db.session)
        self.people: dict[uuid.UUID, dict[str, Any]] = {}
        self.changed_people: dict[uuid.UUID, tuple[bytes, str, bytes | None]] = {}  # contact, ethnicity, PNC key
        self.encounters: list[dict[str, Any]] = []
        self.years: list[int] = []  # of each queued encounter's decision: its reference's year
        self.decisions: list[dict[str, Any]] = []
        self.judged: list[tuple[CompiledPolicy, dict[str, Any], date]] = []  # each decision's policy, facts, day
        self.referrals: list[dict[str, Any]] = []
        self.sessions: list[dict[str, Any]] = []
        self.moves: list[Moved] = []  # each imported referral's last move, announced at the end

    def add(self, row: Row) -> None:
        """Decide the row and queue what it writes; refuses (``ImportInvalid``)
        a row whose decision no longer allows its referral."""
        replay = self.replay
        match = replay.person(row.intake.identity)
        in_force = replay.policies.on(row.decided_on)
        if in_force is None:
            raise ImportInvalid([replay.no_policy(row)])
        version, policy = in_force
        assessment = decide(policy, replay.facts(row, match.found), row.decided_on, version=version.number)
        person_id = self._person(match, row)
        encounter_id = new_id()
        self.encounters.append({
            "id": encounter_id, "person_id": person_id, "offence_on": row.intake.offence_on,
            "recorded_by_id": self.actor_id, "facts": row.intake.facts, "source": IMPORTED,
            "reference": None, "outcome": assessment.outcome, "pathway": assessment.pathway})
        self.years.append(row.decided_on.year)
        # Its unmet criteria are worked out with the whole batch's, on columns (``_explain``).
        self.decisions.append(rules.decision_values(self.tenant, assessment, version, ethnicity=row.intake.ethnicity,
                                                    actor_id=self.actor_id, source=IMPORTED,
                                                    encounter_id=encounter_id, unmet=[]))
        self.judged.append((policy, assessment.facts, row.decided_on))
        self.report.decisions[assessment.outcome] += 1
        if row.course is not None and row.state is not None:
            problem = replay.refused(row, assessment)
            pathway = policy.pathway(assessment.pathway or "")
            if problem is not None or pathway is None:
                raise ImportInvalid([problem or Problem(row.number, "course", "the decision has no pathway")])
            self._referral(row, row.state, replay.offerings[row.course][pathway.id], pathway,
                           encounter_id=encounter_id, person_id=person_id)
        replay.remember(match, row)

    def _person(self, match: _Match, row: Row) -> uuid.UUID:
        contact = seal_contact(row.intake.contact)
        ethnicity = row.intake.ethnicity
        if match.found is None:
            person_id = new_id()
            self.replay.person_ids[match.name] = person_id
            search_key, birth_key = search_keys(self.tenant.slug, row.intake.identity.surname,
                                                row.intake.identity.date_of_birth)
            self.people[person_id] = {
                "id": person_id, "name_key": match.name_key, "pnc_key": match.pnc_key,
                "search_key": search_key, "birth_key": birth_key,
                "identity_sealed": seal(row.intake.identity), "contact_sealed": contact, "ethnicity": ethnicity}
            self.report.new_people += 1
            return person_id
        person_id = self.replay.person_ids[match.found]
        waiting = self.people.get(person_id)
        if waiting is not None:  # met earlier in this batch: not written yet
            waiting.update(contact_sealed=contact, ethnicity=ethnicity, pnc_key=waiting["pnc_key"] or match.pnc_key)
        else:
            self.changed_people[person_id] = (contact, ethnicity, match.pnc_key)
        return person_id

    def _referral(self, row: Row, reached: State, offering: Offering, pathway: CompiledPathway, *,
                  encounter_id: uuid.UUID, person_id: uuid.UUID) -> None:
        referral = rules.referral_values(
            tenant=self.tenant, encounter_id=encounter_id, person_id=person_id, offering_id=offering.id,
            provider_id=offering.course.provider_id, pathway=pathway.id, deadline_days=pathway.deadline_days,
            sessions=offering.course.sessions, offered_on=row.decided_on)
        referral_id = referral["id"]
        imported = (Why.IMPORTED, imported_details(self.label, row.number))
        at = _at(row.decided_on)
        steps: list[tuple[State | None, State, datetime, tuple[Why, dict[str, Any]]]] = [
            (None, State.OFFERED, at, imported)]
        ended = _at(row.ended_on or row.decided_on)
        state, attended = State.OFFERED, 0
        for step in rules.path_to(reached, sessions=offering.course.sessions, attended=row.attended):
            ended += timedelta(seconds=1)
            said = imported
            if step is State.BOOKED:  # a session, as booking one writes it
                self.sessions.append({"id": new_id(), "referral_id": referral_id, "starts_at": ended,
                                      "venue": IMPORTED_VENUE, "booked_by_id": self.actor_id, "attendance": None,
                                      "attendance_recorded_at": None, "attendance_recorded_by_id": None})
                said = (Why.BOOKED, rules.session_details(ended, IMPORTED_VENUE))
            elif step in (State.ATTENDED, State.MISSED):  # attendance at it, as recording it writes it
                attended_it = step is State.ATTENDED
                self.sessions[-1].update(
                    attendance=Attendance.ATTENDED if attended_it else Attendance.DID_NOT_ATTEND,
                    attendance_recorded_at=ended, attendance_recorded_by_id=self.actor_id)
                said = (Why.ATTENDED if attended_it else Why.DID_NOT_ATTEND,
                        rules.session_details(self.sessions[-1]["starts_at"], IMPORTED_VENUE))
            steps.append((state, step, ended, said))
            state, attended = step, attended + (step is State.ATTENDED)
        code, label = rules.outcome_of(self.tenant, state) if state in FINAL_STATES else (None, None)
        written = tuple(Transition(came_from, to, when, self.actor_id, None, "", why, details)
                        for came_from, to, when, (why, details) in steps)
        last = written[-1]
        referral.update(state=state, sessions_attended=attended, outcome_code=code, outcome_label=label,
                        created_at=at, updated_at=last.occurred_at, steps=written,
                        completed_at=last.occurred_at if state is State.COMPLETED else None)
        self.referrals.append(referral)
        self.moves.append(Moved(referral_id, offering.course.provider_id, pathway.id, last.from_state, state,
                                step_key(referral_id, len(written) - 1), last.occurred_at))
        self.report.referrals[state] += 1

    def flush(self) -> None:
        """Hand the batch to ``batches`` (``tenancy.bulk``): people first, then what
        refers to them. The database takes it in while the next batch is worked out."""
        session = db.session
        self.batches.wait()  # the session is ours again
        fresh_plans(session)  # the tables have grown since the last batch
        if self.changed_people:
            changed = session.scalars(select(Person).where(Person.id.in_(self.changed_people))).all()
            for person in changed:
                person.contact_sealed, person.ethnicity, pnc_key = self.changed_people[person.id]
                person.pnc_key = person.pnc_key or pnc_key
            session.flush()
            for person in changed:
                session.expunge(person)
        self._give_references()
        self._explain()
        self.batches.write([(Person, list(self.people.values())), (Encounter, self.encounters),
                            (Decision, self.decisions), (Referral, self.referrals), (BookedSession, self.sessions)])
        self.people, self.changed_people = {}, {}
        self.encounters, self.decisions, self.referrals, self.sessions = [], [], [], []
        self.years, self.judged = [], []

    def _explain(self) -> None:
        """Each queued decision's unmet criteria, worked out on columns a policy version at a
        time (``simulation.evaluate``, proven equal to ``decide``'s on random cases)."""
        by_policy: dict[int, list[int]] = {}
        for index, (policy, _, _) in enumerate(self.judged):
            by_policy.setdefault(id(policy), []).append(index)
        for indexes in by_policy.values():
            policy = self.judged[indexes[0]][0]
            result = evaluate(policy, Columns.build([self.judged[i][1] for i in indexes],
                                                    [self.judged[i][2] for i in indexes]), explain=True)
            for index, unmet in zip(indexes, result.unmet or (), strict=True):
                self.decisions[index]["unmet"] = unmet

    def _give_references(self) -> None:
        """Each queued encounter's reference, for its decision's year, taken a
        year's worth at a time and in the file's order."""
        by_year: dict[int, list[dict[str, Any]]] = {}
        for encounter, year in zip(self.encounters, self.years, strict=True):
            by_year.setdefault(year, []).append(encounter)
        for year, encounters in by_year.items():
            for encounter, reference in zip(encounters, take_references(self.tenant, year, len(encounters)),
                                            strict=True):
                encounter["reference"] = reference

    def announce(self) -> None:
        """Announce every imported referral, as history (``cases.events``): its
        provider's feed gives it its place, so that the provider's systems learn
        of it, but no webhook goes: an import is history, not news. Done last,
        so that the providers' feed counters, locked from then until the import
        commits, hold up their other changes only for the end of the import."""
        for start in range(0, len(self.moves), WRITE_BATCH):
            announce(self.tenant, self.moves[start:start + WRITE_BATCH], history=True)

    def __len__(self) -> int:
        return len(self.encounters)


def import_rows(tenant: Tenant, rows: Iterable[Row], *, actor: Actor, label: str,
                progress: Callable[[int], None] | None = None) -> ImportReport:
    """Record ``rows`` in order, in the caller's transaction (never commits): rows ``check_file``
    accepted, or rows made up valid (``national_demo``). ``label`` names where they came from in
    each step's reason; ``progress`` receives rows recorded.

    Refuses (``AccessRefused``) an actor other than the platform itself, first; and
    (``ImportInvalid``) a row whose decision does not allow its referral, after which the caller
    must roll back. Records no audit event: the caller says what was imported.
    """
    require(actor, Action.IMPORT_CASES, tenant_id=tenant.id)
    report = ImportReport()
    writer = _Writer(tenant, _Replay(tenant), report, actor=actor, label=label)
    pending = 0
    with collecting_rarely():
        try:
            for row in rows:
                writer.add(row)
                if len(writer) >= WRITE_BATCH:
                    writer.flush()
                report.rows += 1
                pending += 1
                if progress is not None and pending == PROGRESS_EVERY:
                    progress(pending)
                    pending = 0
            writer.flush()
        finally:
            writer.batches.close()  # the last batch in (or its failure raised), before anything else
        if progress is not None and pending:
            progress(pending)
        writer.announce()
    return report


def import_checked(tenant: Tenant, checked: CheckedFile, *, actor: Actor,
                   progress: Callable[[int], None] | None = None) -> ImportReport:
    """Record every row of a checked file (``import_rows``), in the caller's transaction (never commits).

    Refuses (``ImportInvalid``) a file that changed since it was checked and
    a row whose referral its decision no longer allows (a policy published
    in between); the caller must then roll back. ``progress`` receives rows
    imported. One audit event records the import: the file, its hash and
    what it held; every row written says it came from an import. Refuses
    (``AccessRefused``) an actor other than the platform itself, first.
    """
    require(actor, Action.IMPORT_CASES, tenant_id=tenant.id)
    if checked.tenant_id != tenant.id:
        raise ValueError("the file was checked for another force")
    with checked.path.open("rb") as raw:
        reading = _Reading(raw, None)
        report = import_rows(tenant, _rows_again(reading, today=checked.today), actor=actor, label=checked.path.name,
                             progress=progress)
    if reading.digest.hexdigest() != checked.sha256:
        raise ImportInvalid([Problem(0, None, "the file changed while it was imported")])
    record("cases.imported", actor=actor, tenant_id=tenant.id, object_type="import", object_id=checked.sha256[:16],
           details={"file": checked.path.name, "sha256": checked.sha256, "rows": report.rows,
                    **report.details()})
    return report


def import_file(tenant: Tenant, path: Path, *, today: date, actor: Actor,
                progress: Callable[[int], None] | None = None) -> ImportReport:
    """Check the whole file, then import it (the caller commits or rolls back). Refuses
    (``AccessRefused``) an actor other than the platform itself before reading it."""
    require(actor, Action.IMPORT_CASES, tenant_id=tenant.id)
    return import_checked(tenant, check_file(tenant, path, today=today), actor=actor, progress=progress)


def template_header() -> str:
    """The header row of an import file, every column in the documented order."""
    return ",".join(COLUMNS)
