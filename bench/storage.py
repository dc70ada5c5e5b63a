"""What case data costs on disk: every table's total size (heap, indexes and TOAST).

Read through the benchmark database's superuser connection (``inspector_url``),
which row-level security does not bind, so that rows are counted whole.
A table counts as holding case data when a benchmark's work made it grow:
the sizes are taken before and after, and the tables that grew are reported
whole (their size after), so that nothing the work wrote is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import make_url

from tests.databases import TestDatabase

_INDEXES = """
    SELECT i.relname, pg_relation_size(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
    WHERE x.indrelid = %s::regclass ORDER BY pg_relation_size(i.oid) DESC
"""
_SIZES = """
    SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid),
           pg_indexes_size(c.oid), coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind = 'r'
"""


@dataclass(frozen=True)
class TableSize:
    total: int  # heap, indexes and TOAST, in bytes
    heap: int
    indexes: int
    toast: int
    rows: int = 0
    index_sizes: tuple[tuple[str, int], ...] = ()  # each index's size, largest first


def connect(url_text: str) -> psycopg.Connection:
    """An autocommitting psycopg connection to a database URL."""
    url = make_url(url_text)
    return psycopg.connect(f"host={url.host} port={url.port or 5432} user={url.username} dbname={url.database}",
                           autocommit=True)


def table_sizes(database: TestDatabase) -> dict[str, TableSize]:
    """Every table of the database's public schema, by name."""
    with connect(database.inspector_url) as connection:
        return {name: TableSize(total, heap, indexes, toast)
                for name, total, heap, indexes, toast in connection.execute(_SIZES)}


def grown(database: TestDatabase, before: dict[str, TableSize]) -> dict[str, TableSize]:
    """The tables that grew since ``before``, with their sizes now and their rows."""
    now = table_sizes(database)
    tables = {name: size for name, size in now.items() if name in before and size.total > before[name].total}
    with connect(database.inspector_url) as connection:
        return {name: TableSize(size.total, size.heap, size.indexes, size.toast,
                                connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0],  # type: ignore[index]  # noqa: S608 - a table name the catalogue gave
                                tuple(connection.execute(_INDEXES, (name,)).fetchall()))
                for name, size in sorted(tables.items(), key=lambda item: -item[1].total)}


def print_storage(tables: dict[str, TableSize], *, encounters: int) -> None:
    """Each table that grew, the total per 1,000 encounters, and the bytes of a decision row."""
    print("  on disk after the import (heap + indexes + TOAST):")
    for name, size in tables.items():
        per_row = f"{size.total / size.rows:>7,.0f} B/row" if size.rows else ""
        print(f"    {name:<28} {size.total / 1e6:>9,.1f} MB  (heap {size.heap / 1e6:,.1f}, "
              f"indexes {size.indexes / 1e6:,.1f}, TOAST {size.toast / 1e6:,.1f})  {size.rows:>9,} rows {per_row}")
        if size.rows:
            print("      " + ", ".join(f"{index} {bytes_ / size.rows:,.0f}" for index, bytes_ in size.index_sizes)
                  + " B/row")
    total = sum(size.total for size in tables.values())
    print(f"  case data: {total / 1e6:,.1f} MB for {encounters:,} encounters = "
          f"{total / 1e6 / (encounters / 1000):.2f} MB per 1,000 encounters (target under 2 MB)")
    decisions = tables.get("decisions")
    if decisions and decisions.rows:
        print(f"  a decision row: {decisions.total / decisions.rows:,.0f} bytes on disk with its indexes "
              f"(heap {decisions.heap / decisions.rows:,.0f}, indexes {decisions.indexes / decisions.rows:,.0f}, "
              f"TOAST {decisions.toast / decisions.rows:,.0f}; target under 500)")
