"""The force in scope's past decisions as a simulation reads them: columns of the facts its policy
reads, with what was decided then and each case's monitoring groups, a chunk at a time.

Never every decision at once, never a decision as an object. Two ways to the same columns (the test
suite checks they give the same report):

- **typed** (PostgreSQL, when every criterion of the policy is evaluated on columns): one ``COPY`` of
  a query in which PostgreSQL takes the fields the policy reads out of each decision's packed facts
  itself (``get_byte`` at each field's fixed place, ``packed``; its parallel workers sharing the
  work) and sends each as a fixed-width binary
  number; NumPy reads the rows straight from the bytes, so Python does no work per decision. What was
  decided then, the age band and the ethnicity come as small numbers too: their places in the lists
  they are made from (the outcomes, the pathways of the force's policy versions, the age bands, the
  16+1 ethnicities), read in the same REPEATABLE READ transaction. A decision naming something in
  none of them (never made by the platform) stops the read (``Unlisted``): the simulation then reads
  them all again, parsed.
- **parsed** (SQLite, or a policy with a criterion evaluated case by case with rule-engine, which
  needs the facts' own values): the packed facts, each unpacked in Python and let go at once, keeping
  the fields asked for (``simulation.facts_columns``).

Both read the force in scope's rows alone: the parsed way through the ORM (its guard), the typed way by
naming the force in its query, in a transaction that carries the scope; row-level security holds under
both.
"""

# ruff: noqa: S608 - the typed query is built from the catalogue's places and numbers; every value is a parameter
from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import LargeBinary, select, type_coerce
from sqlalchemy.orm import Session

from diversion.eligibility import packed
from diversion.eligibility.compiler import CompiledPolicy
from diversion.eligibility.fields import FIELDS, Kind
from diversion.eligibility.models import Decision, Outcome, PolicyVersion
from diversion.eligibility.packed import PLACE
from diversion.eligibility.simulation import (
    CHUNK,
    Coded,
    Columns,
    Needs,
    PastChunk,
    column_needs,
    day_numbers,
    facts_columns,
    facts_needed,
)
from diversion.extensions import db
from diversion.monitoring import AGE_BANDS, ETHNICITIES, UNKNOWN_BAND
from diversion.tenancy.context import require_tenant_id

GROUPS = ("outcome", "pathway", "age_band", "ethnicity")  # what was decided then, and the monitoring groups
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"  # then flags (4 bytes) and the header extension's length (4 bytes)
_HEADER = len(_SIGNATURE) + 8
_OTHER = "\x00not in the catalogue"  # a stored choice the catalogue does not know: matches no literal


def chunks(policy: CompiledPolicy, since: date | None, *, size: int = CHUNK,
           typed: bool | None = None) -> Iterator[PastChunk]:
    """The force in scope's decisions from ``since`` on, ``size`` at a time, as columns
    of what ``policy`` reads. ``typed`` chooses the way (by default: typed wherever it can be)."""
    needs = column_needs(policy)
    if typed is None:
        typed = needs is not None and db.session.get_bind().dialect.name == "postgresql"
    if typed:
        if needs is None:
            raise ValueError("this policy has a criterion evaluated case by case: its facts must be parsed")
        return _typed(needs, since, size)
    return _parsed(facts_needed(policy), since, size)


class Unlisted(Exception):  # noqa: N818 - reads as the condition it reports
    """A decision read the typed way names an outcome, a pathway, an age band or an
    ethnicity that is in none of the lists the platform makes them from: read them
    all again, parsed."""


# ---------------------------------------------------------------- parsed

def _parsed(names: Sequence[str], since: date | None, size: int) -> Iterator[PastChunk]:
    """On PostgreSQL one query read through a server-side cursor; elsewhere (SQLite) one
    query per chunk, in the order of the decisions' ids, so that no read is left open
    between chunks (a job writes its progress between them, and SQLite would keep that
    write waiting behind the read)."""
    columns = (type_coerce(Decision.facts, LargeBinary), Decision.decided_on, Decision.outcome, Decision.pathway,
               Decision.age_band, Decision.ethnicity)
    query = select(*columns)
    if since is not None:
        query = query.where(Decision.decided_on >= since)

    def chunk(rows: Sequence[Any]) -> PastChunk:
        documents, days, outcomes, pathways, age_bands, ethnicities = zip(*rows, strict=True)
        return PastChunk(Columns.of(facts_columns(documents, names), day_numbers(days)),
                         Coded.of(list(zip(outcomes, pathways, strict=True))), Coded.of(age_bands),
                         Coded.of(ethnicities))

    if db.session.get_bind().dialect.name == "postgresql":
        for rows in db.session.execute(query.execution_options(yield_per=size)).partitions():
            yield chunk(rows)
        return
    page = query.add_columns(Decision.id).order_by(Decision.id).limit(size)
    after: uuid.UUID | None = None
    while True:
        found = db.session.execute(page.where(Decision.id > after) if after is not None else page).all()
        if not found:
            return
        after = found[-1][-1]
        yield chunk([row[:-1] for row in found])


# ---------------------------------------------------------------- typed

class _Layout:
    """The typed query's columns: each an SQL expression giving a value of fixed width
    (never NULL), its binary format, and how the rows' numbers become ``Columns``."""

    def __init__(self, needs: Needs) -> None:
        self.needs = needs
        self.sql: list[str] = ["(d.decided_on - DATE '0001-01-01' + 1)::int4"]  # the day's ordinal
        self.formats: list[str] = [">i4"]
        for group in GROUPS:  # numbered from 1 in its list; a pathway of none is 0; -1 is in no list
            self.sql.append(f"(CASE WHEN d.{group} IS NULL THEN 0 ELSE coalesce(array_position(%({group})s::text[], "
                            f"d.{group}), -1) END)::int2")
            self.formats.append(">i2")
        for name in needs.fields:  # read from the packed facts' bytes (``packed``), each at its fixed place
            at = PLACE[name].offset
            kind = FIELDS[name].kind
            if kind is Kind.INT:  # 4 bytes, big-endian; -1 not known
                whole = " | ".join(f"(get_byte(d.facts, {at + byte}) << {24 - 8 * byte})" for byte in range(4))
                self._column(f"(CASE WHEN ({whole}) < 0 THEN 'NaN'::float8 ELSE ({whole})::float8 END)", ">f8")
            elif kind is Kind.BOOL:  # 0 not known, 1 no, 2 yes
                self._column(f"CASE get_byte(d.facts, {at}) WHEN 2 THEN 1 WHEN 1 THEN 0 ELSE -1 END::int2", ">i2")
            elif kind is Kind.CHOICE:  # 0 not known, else 1 + its place among the field's values
                self._column(f"get_byte(d.facts, {at})::int2", ">i2")
            else:  # the top bit of the first of two bytes: known
                self._column(f"(get_byte(d.facts, {at}) & {packed.KNOWN >> 8}) <> 0", "?")
        for name, option in needs.memberships:  # bit i of the two bytes: the field's i-th value
            values = FIELDS[name].values
            if option not in values:
                self._column("false", "?")
                continue
            bit = values.index(option)
            at = PLACE[name].offset + (0 if bit >= 8 else 1)
            self._column(f"(get_byte(d.facts, {at}) & {1 << bit % 8}) <> 0", "?")
        fields = [("count", ">i2")]
        for number, form in enumerate(self.formats):
            fields += [(f"length{number}", ">i4"), (f"value{number}", form)]
        self.dtype = np.dtype(fields)
        self.widths = [np.dtype(form).itemsize for form in self.formats]

    def _column(self, expression: str, form: str) -> None:
        self.sql.append(expression)
        self.formats.append(form)

    def query(self, where: str) -> str:
        return f"COPY (SELECT {', '.join(self.sql)} FROM decisions d WHERE {where}) TO STDOUT (FORMAT binary)"

    def rows(self, data: bytes | bytearray) -> npt.NDArray[Any]:
        rows = np.frombuffer(data, dtype=self.dtype)
        if (rows["count"] != len(self.formats)).any() or any(
                (rows[f"length{number}"] != width).any() for number, width in enumerate(self.widths)):
            raise RuntimeError("the simulation's query gave a row out of shape")
        return rows

    def chunk(self, rows: npt.NDArray[Any], groups: dict[str, list[str]]) -> PastChunk:
        size = len(rows)
        codes = {group: rows[f"value{number}"].astype(np.intp) for number, group in enumerate(GROUPS, start=1)}
        if any((codes[group] < (0 if group == "pathway" else 1)).any() for group in GROUPS):
            raise Unlisted
        values: dict[str, Any] = {}
        known: dict[str, npt.NDArray[np.bool_]] = {}
        column = 5
        for name in self.needs.fields:
            field = FIELDS[name]
            numbers = rows[f"value{column}"]
            column += 1
            if field.kind is Kind.INT:
                values[name] = numbers.astype(np.float64)
                known[name] = ~np.isnan(values[name])
            elif field.kind is Kind.BOOL:
                values[name], known[name] = numbers == 1, numbers >= 0
            elif field.kind is Kind.CHOICE:
                names = np.array(["", *field.values, _OTHER], dtype=object)
                values[name] = names[np.where(numbers < 0, len(names) - 1, numbers)]
                known[name] = numbers != 0
            else:
                values[name], known[name] = None, numbers.astype(np.bool_)
        memberships = {pair: rows[f"value{column + number}"].astype(np.bool_)
                       for number, pair in enumerate(self.needs.memberships)}
        columns = Columns(size, values, known, memberships, rows["value0"].astype(np.int64), {})
        pathways: list[str | None] = [None, *groups["pathway"]]
        then = (codes["outcome"] - 1) * len(pathways) + codes["pathway"]
        return PastChunk(columns, Coded(then, [(o, p) for o in groups["outcome"] for p in pathways]),
                         Coded(codes["age_band"] - 1, groups["age_band"]),
                         Coded(codes["ethnicity"] - 1, groups["ethnicity"]))


def _fixed_rows(stream: Iterable[Any], width: int, size: int) -> Iterator[bytes]:
    """The bytes of ``size`` rows at a time (the last chunk fewer) from a binary COPY
    of rows ``width`` bytes long each."""
    buffer = bytearray()
    started = False
    for data in stream:
        buffer += data
        if not started:
            if len(buffer) < _HEADER:
                continue
            if buffer[:len(_SIGNATURE)] != _SIGNATURE:
                raise RuntimeError("not a binary COPY")
            extension = int.from_bytes(buffer[_HEADER - 4:_HEADER], "big")
            if len(buffer) < _HEADER + extension:
                continue
            del buffer[:_HEADER + extension]
            started = True
        while len(buffer) >= width * size:
            yield bytes(buffer[:width * size])
            del buffer[:width * size]
    if not started or len(buffer) % width != 2 or buffer[-2:] != b"\xff\xff":
        raise RuntimeError("the binary COPY ended out of shape")
    if len(buffer) > 2:
        yield bytes(buffer[:-2])


def _typed(needs: Needs, since: date | None, size: int) -> Iterator[PastChunk]:
    layout = _Layout(needs)
    where = "d.tenant_id = %(tenant)s"
    arguments: dict[str, Any] = {"tenant": require_tenant_id()}
    if since is not None:
        where += " AND d.decided_on >= %(since)s"
        arguments["since"] = since
    with Session(db.engine) as session:  # beginning, it writes the scope for row-level security
        connection = session.connection(execution_options={"isolation_level": "REPEATABLE READ",
                                                           "postgresql_readonly": True})
        driver = connection.connection.driver_connection
        if driver is None:
            raise RuntimeError("no connection to the database")
        pathways = {pathway["id"] for document in session.scalars(select(PolicyVersion.document))
                    for pathway in document.get("pathways", ())}
        groups = {"outcome": [outcome.value for outcome in Outcome], "pathway": sorted(pathways),
                  "age_band": [band for band, _low, _high in AGE_BANDS] + [UNKNOWN_BAND],
                  "ethnicity": list(ETHNICITIES)}
        with driver.cursor().copy(layout.query(where), {**arguments, **groups}) as copy:
            for data in _fixed_rows(copy, layout.dtype.itemsize, size):
                yield layout.chunk(layout.rows(data), groups)
