"""What the forecast-driven scores read about the weather: the hourly forecast issued on a day, the
errors past forecasts turned out to have (each forecast day against what was observed), and the
observed rain of recent days.

Functions take a DuckDB connection on which every table is visible as `schema.table` and return
frames; they write nothing. A missing `weather_forecasts` table reads as no forecast (empty
frames): the scores then fall back and say so.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd

from gridassets import warehouse

FORECAST_COLUMNS = ["issue_date", "zone", "valid_ts", "lead_h", "temp_c", "wind_speed_mph",
                    "wind_gust_mph", "precip_mm"]


def hourly_forecast(con: duckdb.DuckDBPyConnection, issue: date) -> pd.DataFrame:
    """The forecast issued at the end of `issue`, one row per zone and hour, in order."""
    if not warehouse.table_exists(con, "weather_forecasts"):
        return pd.DataFrame(columns=FORECAST_COLUMNS)
    return con.execute(
        f"select {', '.join(FORECAST_COLUMNS)} from {warehouse.qualified('weather_forecasts')} "
        "where issue_date = ? order by zone, valid_ts", [issue]).fetchdf()


def forecast_errors(con: duckdb.DuckDBPyConnection, first_issue: date, last_issue: date
                    ) -> pd.DataFrame:
    """Per past issue day in [first_issue, last_issue], zone and lead day (1 = the day after the
    issue) whose whole day was forecast and observed: the observed peak gust over the forecast
    one (`gust_ratio`), observed minus forecast rain of the day (`precip_diff_mm`) and mean
    temperature (`temp_diff_c`)."""
    if not warehouse.table_exists(con, "weather_forecasts"):
        return pd.DataFrame(columns=["issue_date", "zone", "lead_day", "gust_ratio",
                                     "precip_diff_mm", "temp_diff_c"])
    sql = f"""
    with f as (
        select issue_date, zone, cast(valid_ts as date) as day,
               max(wind_gust_mph) as gust, sum(precip_mm) as precip, avg(temp_c) as temp,
               count(*) as hours
        from {warehouse.qualified('weather_forecasts')}
        where issue_date >= ? and issue_date <= ?
        group by all
    ), o as (
        select zone, cast(timestamp as date) as day,
               max(wind_gust_mph) as gust, sum(precip_mm) as precip, avg(temp_c) as temp,
               count(*) as hours
        from {warehouse.qualified('weather_observations')}
        where timestamp >= ? and timestamp < ?
        group by all
    )
    select f.issue_date, f.zone, datediff('day', f.issue_date, f.day) as lead_day,
           o.gust / greatest(f.gust, 1.0) as gust_ratio,
           o.precip - f.precip as precip_diff_mm,
           o.temp - f.temp as temp_diff_c
    from f join o on o.zone = f.zone and o.day = f.day
    where f.hours = 24 and o.hours = 24
    order by f.issue_date, f.zone, lead_day
    """
    lo = pd.Timestamp(first_issue)
    hi = pd.Timestamp(last_issue) + pd.Timedelta(days=9)
    return con.execute(sql, [first_issue, last_issue, lo, hi]).fetchdf()


def observed_daily_precip(con: duckdb.DuckDBPyConnection, first: date, last: date
                          ) -> pd.DataFrame:
    """zone, date, precip_mm: the observed rain of each day in [first, last]."""
    return con.execute(
        f"select zone, cast(timestamp as date) as date, sum(precip_mm) as precip_mm "
        f"from {warehouse.qualified('weather_observations')} where timestamp >= ? and timestamp < ? "
        "group by all order by all",
        [pd.Timestamp(first), pd.Timestamp(last) + timedelta(days=1)]).fetchdf()


def latest_forecast(con: duckdb.DuckDBPyConnection, zones: list[str], issued_by,
                    start, end) -> pd.DataFrame:
    """The hours in [start, end) of `zones` from the latest forecast issued by `issued_by` (its
    issue day ended by then): zone, valid_ts, issue_date, temp_c, wind_speed_mph, wind_gust_mph,
    precip_mm. Empty when there is none."""
    columns = ["zone", "valid_ts", "issue_date", "temp_c", "wind_speed_mph", "wind_gust_mph",
               "precip_mm"]
    if not zones or not warehouse.table_exists(con, "weather_forecasts"):
        return pd.DataFrame(columns=columns)
    table = warehouse.qualified("weather_forecasts")
    return con.execute(
        f"with latest as (select zone, max(issue_date) as issue_date from {table} "  # sql-identifier: qualified
        f"where zone in ({', '.join('?' for _ in zones)}) "
        "and issue_date + interval 1 day <= ? group by zone) "
        f"select {', '.join('f.' + c for c in columns)} from {table} f "  # sql-identifier: code
        "join latest using (zone, issue_date) where f.valid_ts >= ? and f.valid_ts < ? "
        "order by f.zone, f.valid_ts",
        [*zones, pd.Timestamp(issued_by), pd.Timestamp(start), pd.Timestamp(end)]).fetchdf()
