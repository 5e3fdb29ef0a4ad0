"""What the storm assets read from the warehouse: a storm's alerts and outage risk, the circuits,
the latest day of circuit state and of transformer risk, and the year of outages behind a day.

Functions take a DuckDB connection on which every table is visible as `schema.table` and return
frames; they write nothing. A table the warehouse does not hold yet reads as an empty frame: the
assets fail naming what to materialize first. The storm scoring and ranking are the domain's
(`gridassets.domain.storm_risk`).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from gridassets import warehouse
from gridassets.domain import models
from gridassets.storage import scores


def storm_alerts(con: duckdb.DuckDBPyConnection, storm_id: str) -> pd.DataFrame:
    """The storm's storm_alerts rows."""
    if not warehouse.table_exists(con, "storm_alerts"):
        return pd.DataFrame()
    return con.execute(f"select * from {warehouse.qualified('storm_alerts')} where storm_id = ?",
                       [storm_id]).fetchdf()


def circuits(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The circuit registry."""
    return scores.circuits(con) if warehouse.table_exists(con, "circuits") else pd.DataFrame()


def latest_circuit_state(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The circuit exposure features of the latest day they hold."""
    if not warehouse.table_exists(con, "circuit_exposure_features"):
        return pd.DataFrame()
    features = warehouse.qualified("circuit_exposure_features")
    return con.execute(f"select * from {features} where date = "  # sql-identifier: qualified() above
                       f"(select max(date) from {features})").fetchdf()  # sql-identifier: qualified() above


def environmental_outages_since(con: duckdb.DuckDBPyConnection, start: pd.Timestamp
                                ) -> pd.DataFrame:
    """Outages of an environmental cause (`models.ENVIRONMENT_CAUSES`) starting at `start` or
    later."""
    causes = models.ENVIRONMENT_CAUSES
    return con.execute(
        f"select * from {warehouse.qualified('outage_events')} where start_ts >= ? and cause in "
        f"({', '.join('?' for _ in causes)})",
        [start, *causes]).fetchdf()


def storm_outage_risk(con: duckdb.DuckDBPyConnection, storm_id: str) -> pd.DataFrame:
    """The storm's storm_outage_risk rows."""
    if not warehouse.table_exists(con, "storm_outage_risk"):
        return pd.DataFrame()
    return con.execute(
        f"select * from {warehouse.qualified('storm_outage_risk')} where storm_id = ?",
        [storm_id]).fetchdf()


def latest_transformer_risk(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The transformer risk of the latest day scored."""
    if not warehouse.table_exists(con, "transformer_risk"):
        return pd.DataFrame()
    table = warehouse.qualified("transformer_risk")
    return con.execute(
        f"select * from {table} where date = (select max(date) from {table})").fetchdf()  # sql-identifier: qualified() above
