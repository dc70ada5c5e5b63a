"""A referral's step keeps what the platform said of it as a code and its details, not an English sentence.

``referral_transitions`` gains ``why`` (``cases.models.Why``) and ``why_details``
(JSON); pages draw the sentence in the reader's language. The sentences the
platform wrote before are read back into codes: "Offered after the decision",
"Accepted by the provider", "All 4 sessions attended", "Deadline passed on
...", "Imported from historic records (file, row n)", and the booked,
attended and did-not-attend sentences, whose venue is taken from the
referral's own session at that minute so that a venue holding ": " is read
right, with any note kept as the step's ``reason`` (the person's words). A
reason that is none of these was typed by a person and stays as it is.
Imported sessions' venue, once "Not recorded (imported: ...)", becomes empty
(the step's imported details name the file and row). The downgrade writes
the English sentences back.

Revision ID: 511c990d9bb9
Revises: 4d6072162e95
Create Date: 2026-12-03 22:10:00.000000

"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from diversion.db import LONDON, UTCDateTime
from diversion.tenancy import rls

# revision identifiers, used by Alembic.
revision = '511c990d9bb9'
down_revision = '4d6072162e95'
branch_labels = None
depends_on = None

BATCH = 5000
TABLES = ("referral_transitions", "referral_sessions")
IMPORTED_VENUE = re.compile(r"Not recorded \(imported(: .*, row \d+)?\)")  # the downgrade writes it shorter
FIXED = {"Offered after the decision": "offered", "Accepted by the provider": "accepted"}
ALL_ATTENDED = re.compile(r"All (\d+) sessions attended")
DEADLINE_PASSED = re.compile(r"Deadline passed on (\d{1,2} [A-Z][a-z]+ \d{4})")
IMPORTED = re.compile(r"Imported from historic records \((.*), row (\d+)\)")
SESSION = re.compile(r"(Session booked for|Attended the session of|Did not attend the session of) "
                     r"(\d{1,2} [A-Z][a-z]+ \d{4} \d{2}:\d{2}) at (.*)", re.DOTALL)
SESSION_WHY = {"Session booked for": "booked", "Attended the session of": "attended",
               "Did not attend the session of": "did_not_attend"}
ENDS = ". The referral ends: "
TOO_MANY = re.compile(r"(\d+) sessions missed, more than the (\d+) the force allows")
PAST_DEADLINE = re.compile(r"the deadline, (\d{1,2} [A-Z][a-z]+ \d{4}), has passed")
# Written in LIKE so that only the platform's sentences are read back, a batch at a time.
LIKELY = ("All % sessions attended", "Deadline passed on %", "Imported from historic records (%",
          "Session booked for %", "Attended the session of %", "Did not attend the session of %")

steps = sa.table("referral_transitions", sa.column("id", sa.Uuid), sa.column("referral_id", sa.Uuid),
                 sa.column("reason", sa.String), sa.column("why", sa.String),
                 sa.column("why_details", sa.JSON(none_as_null=True)))
sessions = sa.table("referral_sessions", sa.column("referral_id", sa.Uuid), sa.column("starts_at", UTCDateTime()),
                    sa.column("venue", sa.String))
Venues = dict[tuple[Any, datetime], list[tuple[datetime, str]]]


@contextmanager
def _every_force() -> Iterator[sa.Connection]:
    """The connection, with row-level security lifted from the two tables on PostgreSQL (the
    owner is bound by FORCE ROW LEVEL SECURITY too, and no force is in scope here)."""
    connection = op.get_bind()
    postgresql = rls.is_postgresql(connection)
    if postgresql:
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    try:
        yield connection
    finally:
        if postgresql:
            for table in TABLES:
                op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
                op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def _day(text: str) -> str:
    return datetime.strptime(text, "%d %B %Y").date().isoformat()  # noqa: DTZ007 - a day, no time


def _minute(text: str) -> datetime:
    """A London wall-clock minute as written in a sentence, in UTC."""
    return datetime.strptime(text, "%d %B %Y %H:%M").replace(tzinfo=LONDON).astimezone(UTC)


def _ending(text: str) -> dict[str, Any] | None:
    if text == "the force allows no missed session":
        return {"ending": "none_allowed"}
    if found := TOO_MANY.fullmatch(text):
        return {"ending": "too_many_missed", "missed": int(found[1]), "allowed": int(found[2])}
    if found := PAST_DEADLINE.fullmatch(text):
        return {"ending": "deadline", "deadline": _day(found[1])}
    return None


def _session_step(found: re.Match[str], venues: Venues, referral_id: Any) -> tuple[str, dict[str, Any], str] | None:
    """A booked or attendance sentence as its code, details and the note a person added: the
    session is the referral's own at that minute whose venue the sentence goes on with."""
    rest = found[3]
    session = next(((starts_at, venue) for starts_at, venue in venues.get((referral_id, _minute(found[2])), [])
                    if rest.startswith(venue)), None)
    if session is None:
        return None
    starts_at, venue = session
    rest = rest[len(venue):]
    details: dict[str, Any] = {"starts_at": starts_at.isoformat(),
                               "venue": "" if IMPORTED_VENUE.fullmatch(venue) else venue}
    if ENDS in rest:
        rest, ending = rest.rsplit(ENDS, 1)
        if (ends := _ending(ending)) is None:
            return None
        details |= ends
    if rest and not rest.startswith(": "):
        return None
    return SESSION_WHY[found[1]], details, rest[2:]


def _read(reason: str, referral_id: Any, venues: Venues) -> tuple[str, dict[str, Any] | None, str] | None:
    """The code, details and remaining words of a sentence the platform wrote; None for a person's words."""
    if reason in FIXED:
        return FIXED[reason], None, ""
    if found := ALL_ATTENDED.fullmatch(reason):
        return "all_attended", {"sessions": int(found[1])}, ""
    if found := DEADLINE_PASSED.fullmatch(reason):
        return "deadline_passed", {"deadline": _day(found[1])}, ""
    if found := IMPORTED.fullmatch(reason):
        return "imported", {"file": found[1], "row": int(found[2])}, ""
    if found := SESSION.fullmatch(reason):
        return _session_step(found, venues, referral_id)
    return None


def _venues(connection: sa.Connection, referral_ids: set[Any]) -> Venues:
    """These referrals' sessions (when they start, where), by referral and starting minute (UTC)."""
    venues: Venues = {}
    for row in connection.execute(sa.select(sessions.c.referral_id, sessions.c.starts_at, sessions.c.venue)
                                  .where(sessions.c.referral_id.in_(referral_ids))):
        starts_at = row.starts_at.astimezone(UTC)
        venues.setdefault((row.referral_id, starts_at.replace(second=0, microsecond=0)), []).append(
            (starts_at, row.venue))
    return venues


def upgrade():
    op.add_column('referral_transitions', sa.Column('why', sa.String(length=20), nullable=True))
    op.add_column('referral_transitions', sa.Column('why_details', sa.JSON(), nullable=True))
    with _every_force() as connection:
        written = sa.or_(steps.c.reason.in_(list(FIXED)), *(steps.c.reason.like(pattern) for pattern in LIKELY))
        after = None
        while True:
            query = sa.select(steps.c.id, steps.c.referral_id, steps.c.reason).where(written) \
                .order_by(steps.c.id).limit(BATCH)
            rows = connection.execute(query.where(steps.c.id > after) if after is not None else query).all()
            if not rows:
                break
            after = rows[-1].id
            venues = _venues(connection, {row.referral_id for row in rows if SESSION.match(row.reason)})
            values = [{"key": row.id, "why": read[0], "details": read[1], "words": read[2]}
                      for row in rows if (read := _read(row.reason, row.referral_id, venues)) is not None]
            if values:
                connection.execute(sa.update(steps).where(steps.c.id == sa.bindparam("key")).values(
                    why=sa.bindparam("why"), why_details=sa.bindparam("details"), reason=sa.bindparam("words")),
                    values)
        connection.execute(sa.update(sessions).where(sessions.c.venue.like("Not recorded (imported%"))
                           .values(venue=""))


def downgrade():
    from diversion.cases.models import Why, told

    with _every_force() as connection:
        after = None
        while True:
            query = sa.select(steps.c.id, steps.c.reason, steps.c.why, steps.c.why_details) \
                .where(steps.c.why.is_not(None)).order_by(steps.c.id).limit(BATCH)
            rows = connection.execute(query.where(steps.c.id > after) if after is not None else query).all()
            if not rows:
                break
            after = rows[-1].id
            connection.execute(sa.update(steps).where(steps.c.id == sa.bindparam("key")).values(
                reason=sa.bindparam("said")),
                [{"key": row.id, "said": told(Why(row.why), row.why_details, row.reason)[:1000]} for row in rows])
        connection.execute(sa.update(sessions).where(sessions.c.venue == "").values(venue="Not recorded (imported)"))
    op.drop_column('referral_transitions', 'why_details')
    op.drop_column('referral_transitions', 'why')
