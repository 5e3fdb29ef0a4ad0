"""Which days of an input table are in the warehouse: asked before an output is computed, so no
score, forecast or list is ever written from missing inputs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import duckdb

from gridassets import warehouse


def days_present(con: duckdb.DuckDBPyConnection, table: str, column: str,
                 days: Sequence[date]) -> set[date]:
    """The days of `days` on which `table` has at least one row (by its time `column`)."""
    if not days or not warehouse.table_exists(con, table):
        return set()
    first, last = min(days), max(days) + timedelta(days=1)
    rows = con.execute(
        f'select distinct cast("{column}" as date) from {warehouse.qualified(table)} '  # sql-identifier: a time column named in code
        f'where "{column}" >= ? and "{column}" < ?', [first, last]).fetchall()  # sql-identifier: a time column named in code
    return {r[0] for r in rows} & set(days)


def row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Rows of an unpartitioned table; 0 when it does not exist."""
    if not warehouse.table_exists(con, table):
        return 0
    return con.execute(f"select count(*) from {warehouse.qualified(table)}").fetchall()[0][0]
