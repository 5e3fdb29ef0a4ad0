"""What the day-ahead load forecast and its backtest read from the warehouse: the circuits and
their zones, hourly feeder load and zone temperature over a window, each circuit's model as the
latest stored day before a forecast left it, and the stored forecasts of a range of issue days.

Functions take a DuckDB connection on which every table is visible as `schema.table` and return
frames or values; they write nothing. The forecasting and the scoring are the domain's
(`gridassets.domain.forecasting`, `gridassets.domain.backtest`).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from gridassets import warehouse
from gridassets.domain import forecasting
from gridassets.domain.integrity import CIRCUIT, QUARANTINE_DAY


def circuit_zones(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """circuit_id, zone of every circuit."""
    return con.execute(
        f"select circuit_id, zone from {warehouse.qualified('circuits')}").fetchdf()


def feeder_load_between(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp,
                        *, compact: bool = False) -> pd.DataFrame:
    """circuit_id, timestamp, load_mw of the hours in [start, end), less the circuit-days whose
    feeder load telemetry_integrity quarantined (the models see a gap, as for a lost day); with
    `compact`, circuit_id is a categorical (`warehouse.fetch_compact`), for a long window of a
    large fleet."""
    sql = (f"select circuit_id, timestamp, load_mw from {warehouse.qualified('feeder_load')} f "
           "where timestamp >= ? and timestamp < ?")
    params: list = [start, end]
    if warehouse.table_exists(con, "telemetry_integrity"):
        sql += (f" and not exists (select 1 from {warehouse.qualified('telemetry_integrity')} q "
                "where q.flagged and q.device_type = ? and q.quarantine = ? "
                "and q.device_id = f.circuit_id and q.date = cast(f.timestamp as date) "
                "and q.date >= ? and q.date < ?)")
        params += [CIRCUIT, QUARANTINE_DAY, pd.Timestamp(start).normalize(), end]
    if compact:
        return warehouse.fetch_compact(con, sql, params)
    return con.execute(sql, params).fetchdf()


def circuit_temperature_between(con: duckdb.DuckDBPyConnection, start: pd.Timestamp,
                                end: pd.Timestamp) -> pd.DataFrame:
    """circuit_id, timestamp, temp_c: the observed temperature of each circuit's zone in the hours
    of [start, end), circuit_id a categorical (`warehouse.fetch_compact`)."""
    return warehouse.fetch_compact(
        con, f"select c.circuit_id, w.timestamp, w.temp_c "
             f"from {warehouse.qualified('weather_observations')} w "
             f"join {warehouse.qualified('circuits')} c on c.zone = w.zone "
             "where w.timestamp >= ? and w.timestamp < ?", [start, end])


def circuit_forecast_temperature_between(con: duckdb.DuckDBPyConnection, start: pd.Timestamp,
                                         end: pd.Timestamp) -> pd.DataFrame | None:
    """circuit_id, timestamp, temp_c: for each hour of [start, end), the temperature the weather
    forecast issued at the end of the day before forecast for the circuit's zone (lead 1-24 h);
    None when no forecast is stored."""
    if not warehouse.table_exists(con, "weather_forecasts"):
        return None
    return warehouse.fetch_compact(
        con, f"select c.circuit_id, f.valid_ts as timestamp, f.temp_c "
             f"from {warehouse.qualified('weather_forecasts')} f "
             f"join {warehouse.qualified('circuits')} c on c.zone = f.zone "
             "where f.lead_h <= 24 and f.valid_ts >= ? and f.valid_ts < ?", [start, end])


def model_state_before(con: duckdb.DuckDBPyConnection, first: pd.Timestamp
                       ) -> tuple[dict[str, forecasting.FittedModel], object]:
    """Each circuit's model as the latest stored day before `first` left it (normally the day
    before), and that day; ({}, None) when none is stored (every circuit is fitted from scratch).
    A model from a later day is never read: it would leak later data into the forecast."""
    if not warehouse.table_exists(con, "load_forecast_models"):
        return {}, None
    table = warehouse.qualified("load_forecast_models")
    day = con.execute(f"select max(issue_date) from {table} where issue_date < ?",  # sql-identifier: qualified() above
                      [first.date()]).fetchall()[0][0]
    if day is None:
        return {}, None
    rows = con.execute(f"select circuit_id, model_json from {table} where issue_date = ?",  # sql-identifier: qualified() above
                       [day]).fetchall()
    return {cid: forecasting.FittedModel.from_json(text) for cid, text in rows}, day


def first_forecast_issue(con: duckdb.DuckDBPyConnection):
    """The first issue day of the stored load forecasts (None when the table holds no rows)."""
    return con.execute(
        f"select min(issue_date) from {warehouse.qualified('load_forecast')}").fetchall()[0][0]


def forecasts_issued(con: duckdb.DuckDBPyConnection, columns: Sequence[str], start, end
                     ) -> pd.DataFrame:
    """The stored load forecasts (`columns`, names from code) issued on days in [start, end)."""
    return con.execute(
        f"select {', '.join(columns)} "  # sql-identifier: column names from code
        f"from {warehouse.qualified('load_forecast')} "
        "where issue_date >= ? and issue_date < ?",
        [start, end]).fetchdf()


def latest_forecast_temperature(con: duckdb.DuckDBPyConnection, start: pd.Timestamp,
                                end: pd.Timestamp, issued_through) -> pd.DataFrame | None:
    """circuit_id, timestamp, temp_c: for each hour of [start, end), the temperature of the
    circuit's zone in the latest weather forecast issued before the hour's day and no later than
    the day `issued_through` (day-ahead in history; up to two days ahead past `issued_through`);
    None when no forecast is stored."""
    if not warehouse.table_exists(con, "weather_forecasts"):
        return None
    return warehouse.fetch_compact(
        con, f"select c.circuit_id, f.valid_ts as timestamp, f.temp_c "
             f"from {warehouse.qualified('weather_forecasts')} f "
             f"join {warehouse.qualified('circuits')} c on c.zone = f.zone "
             "where f.valid_ts >= ? and f.valid_ts < ? and f.issue_date <= ? "
             "and f.issue_date < cast(f.valid_ts as date) "
             "qualify row_number() over (partition by c.circuit_id, f.valid_ts "
             "order by f.issue_date desc) = 1", [start, end, issued_through])


def intraday_models(con: duckdb.DuckDBPyConnection, cutoff: pd.Timestamp
                    ) -> tuple[dict[str, forecasting.FittedModel], object]:
    """The day-ahead models an intraday forecast with `cutoff` starts from: those stored for the
    latest day before the cutoff's day, and that day (({}, None) when none is stored)."""
    return model_state_before(con, cutoff.normalize())


def stored_load_days(con: duckdb.DuckDBPyConnection, first, last) -> set:
    """The days in [first, last] with feeder_load rows in the warehouse."""
    if not warehouse.table_exists(con, "feeder_load"):
        return set()
    rows = con.execute(
        f"select distinct cast(timestamp as date) from {warehouse.qualified('feeder_load')} "
        "where timestamp >= ? and timestamp < ?",
        [pd.Timestamp(first), pd.Timestamp(last) + pd.Timedelta(days=1)]).fetchall()
    return {r[0] for r in rows}


def day_ahead_in_force(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp
                       ) -> pd.DataFrame:
    """circuit_id, target_ts, load_mw: the stored day-ahead forecast of each hour in [start, end)."""
    return con.execute(
        f"select circuit_id, target_ts, load_mw from {warehouse.qualified('load_forecast')} "
        "where target_ts >= ? and target_ts < ?", [start, end]).fetchdf()
