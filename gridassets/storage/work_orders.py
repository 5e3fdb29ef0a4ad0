"""What the daily work orders read from the warehouse: the transformers whose health index asks
for an inspection, and the orders stored for a day (the day before's, to carry over).

Functions take a DuckDB connection on which every table is visible as `schema.table` and return
frames; they write nothing. Which orders exist is the domain's (`gridassets.domain.work_orders`).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from gridassets import warehouse


def transformers_in_bands(con: duckdb.DuckDBPyConnection, start, end, bands: Sequence[str]
                          ) -> pd.DataFrame:
    """The transformer_risk rows of days in [start, end) whose health index is one of `bands`."""
    return con.execute(
        f"select * from {warehouse.qualified('transformer_risk')} where date >= ? and date < ? "
        f"and health_index in ({', '.join('?' for _ in bands)}) order by date, transformer_id",
        [start, end, *bands]).fetchdf()


def orders_of(con: duckdb.DuckDBPyConnection, day) -> pd.DataFrame:
    """The work orders stored for `day`, by priority; an empty frame when there are none (or no
    orders were ever stored)."""
    if not warehouse.table_exists(con, "work_orders"):
        return pd.DataFrame()
    start = pd.Timestamp(day)
    return con.execute(
        f"select * from {warehouse.qualified('work_orders')} where date >= ? and date < ? "
        "order by priority", [start, start + pd.Timedelta(days=1)]).fetchdf()
