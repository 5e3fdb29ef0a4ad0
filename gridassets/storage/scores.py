"""What the daily risk scores and the prioritized list read from the warehouse: a day range of a
daily table, the registry tables, the year of outages and failures behind a day, the peak of each
day-ahead forecast; and for the command line, the top of a stored list and the size of every
table.

Functions take a DuckDB connection on which every table is visible as `schema.table` and return
frames or values; they write nothing. Table and column names come from code, never from data. The
scoring and ranking are the domain's (`gridassets.domain.risk`,
`gridassets.domain.prioritization`).
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from gridassets import warehouse
from gridassets.domain import models


def day_slice(con: duckdb.DuckDBPyConnection, table: str, start, end, column: str = "date"
              ) -> pd.DataFrame:
    """Every row of the graph's `table` whose `column` lies in [start, end), in order."""
    return con.execute(
        f"select * from {warehouse.qualified(table)} where {column} >= ? and {column} < ? "  # sql-identifier: a time column named in code
        f"order by all", [start, end]).fetchdf()


def circuits(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The circuit registry."""
    return con.execute(f"select * from {warehouse.qualified('circuits')}").fetchdf()


def circuit_lengths(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """circuit_id, length_km of every circuit."""
    return con.execute(
        f"select circuit_id, length_km from {warehouse.qualified('circuits')}").fetchdf()


def transformers(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The transformer registry."""
    return con.execute(f"select * from {warehouse.qualified('transformers')}").fetchdf()


def environmental_outages(con: duckdb.DuckDBPyConnection, start, end) -> pd.DataFrame:
    """Outages of an environmental cause (`models.ENVIRONMENT_CAUSES`) starting in [start, end)."""
    return con.execute(
        f"select * from {warehouse.qualified('outage_events')} where start_ts >= ? "
        "and start_ts < ? and cause in (select unnest(?::varchar[]))",
        [start, end, list(models.ENVIRONMENT_CAUSES)]).fetchdf()


def equipment_outages(con: duckdb.DuckDBPyConnection, start, end) -> pd.DataFrame:
    """Outages of cause 'equipment' starting in [start, end)."""
    return con.execute(
        f"select * from {warehouse.qualified('outage_events')} "
        "where cause = 'equipment' and start_ts >= ? and start_ts < ?", [start, end]).fetchdf()


def transformer_failures(con: duckdb.DuckDBPyConnection, start, end) -> pd.DataFrame:
    """failed_at, circuit_id of every transformer failure in [start, end)."""
    return con.execute(
        f"select f.failed_at, x.circuit_id from {warehouse.qualified('transformer_failures')} f "
        f"join {warehouse.qualified('transformers')} x using (transformer_id) "
        "where f.failed_at >= ? and f.failed_at < ?", [start, end]).fetchdf()


def first_load_timestamp(con: duckdb.DuckDBPyConnection):
    """The first hour of feeder load (None when there is none)."""
    return con.execute(
        f"select min(timestamp) from {warehouse.qualified('feeder_load')}").fetchall()[0][0]


def forecast_peaks(con: duckdb.DuckDBPyConnection, start, end) -> pd.DataFrame:
    """issue_date, circuit_id, forecast_peak_mw and the interval (lower_mw, upper_mw) at that
    peak hour, of the day-ahead forecasts issued on days in [start, end); an empty frame when no
    forecast was ever stored."""
    if not warehouse.table_exists(con, "load_forecast"):
        return pd.DataFrame()
    return con.execute(
        f"select issue_date, circuit_id, arg_max(load_mw, load_mw) as forecast_peak_mw, "
        f"arg_max(lower_mw, load_mw) as lower_mw, arg_max(upper_mw, load_mw) as upper_mw "
        f"from {warehouse.qualified('load_forecast')} where issue_date >= ? and issue_date < ? "
        f"group by all", [start, end]).fetchdf()



def top_of_list(con: duckdb.DuckDBPyConnection, day: date, n: int) -> list[tuple]:
    """The first `n` rows of the day's prioritized list, by rank: rank, circuit_id, the priority
    score and its components, customers, reason and the two model versions."""
    return con.execute(
        f"select rank, circuit_id, priority_score, outage_score, transformer_score, "
        f"vegetation_score, loading_score, customers, reason, outage_model_version, "
        f"maintenance_model_version from {warehouse.qualified('prioritized_circuits')} "
        "where date = ? order by rank limit ?", [day, n]).fetchall()


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The number of rows of every table of the graph that exists."""
    return {t: con.execute(f"select count(*) from {warehouse.qualified(t)}").fetchall()[0][0]
            for t in warehouse.SCHEMA_OF if warehouse.table_exists(con, t)}


def outage_component_outcomes(con: duckdb.DuckDBPyConnection, first, last) -> pd.DataFrame:
    """Per day d of circuit_outage_risk in [first, last]: the customer-minutes the fleet's outage
    component predicted for d+1..d+7 (`predicted`) and those that outages of an environmental
    cause starting then cost (`realized`). Only days whose seven days are over by `last`."""
    sql = f"""
    with p as (
        select date, sum(risk_customer_minutes_7d) as predicted
        from {warehouse.qualified('circuit_outage_risk')}
        where date >= ? and date + interval 7 day <= ?
        group by date
    ), e as (
        select start_ts, customers_affected * datediff('minute', start_ts, end_ts) as cm
        from {warehouse.qualified('outage_events')}
        where cause in (select unnest(?::varchar[])) and end_ts is not null
          and start_ts >= ? and start_ts < ?
    )
    select p.date, p.predicted,
           (select coalesce(sum(cm), 0) from e where e.start_ts >= p.date + interval 1 day
                                               and e.start_ts < p.date + interval 8 day) as realized
    from p order by p.date
    """
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    causes = list(models.ENVIRONMENT_CAUSES)
    return con.execute(sql, [first, last, causes, first, last + pd.Timedelta(days=1)]).fetchdf()
