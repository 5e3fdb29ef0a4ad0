"""Daily features, computed as SQL inside DuckDB over the raw and fleet tables.

Three tables, each keyed by day; every feature of day t uses data up to the end of day t only:

- `transformer_daily_stats`: one row per transformer-day, from that day's hourly telemetry (plus the
  zone's air temperature where the unit has no ambient sensor). Reads one day of telemetry, so its
  cost does not grow with history.
- `transformer_health_features`: trailing 7- and 30-day windows over the daily stats: loading,
  a thermal index (top-oil rise over ambient, normalized by the rise the IEEE C57.91 exponential
  model expects at the day's loading, so it is comparable across load levels), dissolved gases and
  their trends, age, and days since the unit was last replaced.
- `circuit_exposure_features`: one row per circuit-day: weather exposure of the circuit's zone,
  vegetation (canopy, years since trim, line length), the condition of its transformers, and
  loading against capacity.

Readings that `telemetry_integrity` flagged are quarantined here: a flagged device-day whose
quarantine is `device_day` contributes nothing (a transformer's stats, a feeder's load), one whose
quarantine is `oil_temperature` contributes no top-oil or hot-spot values (the load and gases stay).

Functions take a DuckDB connection on which every table is visible as `schema.table` and a
half-open day range [start, end), and return a frame; they write nothing. Table names come from
`gridassets.warehouse.qualified`; values are always bound parameters. The windows, thresholds and
IEEE constants are the domain's (`gridassets.domain.features`).
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd

from gridassets.domain.features import (
    GUST_THRESHOLDS_MPH,
    H2_TREND_PPM_PER_DAY,
    LOSS_RATIO_R,
    OIL_EXPONENT_N,
    RECENT_DAYS,
    THERMAL_RATIO_WARNING,
    WINDOW_DAYS,
)
from gridassets.domain.integrity import CIRCUIT, QUARANTINE_DAY, QUARANTINE_OIL, TRANSFORMER
from gridassets.warehouse import qualified, table_exists


def _quarantine(con: duckdb.DuckDBPyConnection, device_type: str | None) -> tuple[str, list]:
    """The flagged device-days of telemetry_integrity as a query of (device_id, date, whole,
    oil) and its parameters: `whole` keeps every reading of that day out, `oil` the top-oil and
    hot-spot readings. Without the table (a warehouse built before integrity), or without a
    `device_type`, nothing is."""
    if device_type is None or not table_exists(con, "telemetry_integrity"):
        return ("select null::varchar as device_id, null::date as date, false as whole, "
                "false as oil where false"), []
    return (f"""select device_id, cast(date as date) as date,
                       bool_or(quarantine = ?) as whole, bool_or(quarantine = ?) as oil
                from {qualified("telemetry_integrity")}
                where flagged and device_type = ? and date >= ? and date < ?
                group by device_id, cast(date as date)""",
            [QUARANTINE_DAY, QUARANTINE_OIL, device_type])


def transformer_daily_stats(con: duckdb.DuckDBPyConnection, start: date, end: date, *,
                            quarantine: bool = True) -> pd.DataFrame:
    """Per transformer-day aggregates of hourly telemetry for days in [start, end), without the
    readings telemetry_integrity quarantined (a flagged day's readings, or its oil temperatures).
    `quarantine=False` keeps every reading, as before integrity existed (the evaluation measures
    what the quarantine changes)."""
    kept_out, q_params = _quarantine(con, TRANSFORMER if quarantine else None)
    sql = f"""
    with q as ({kept_out}),  -- sql-identifier: _quarantine's query, ? placeholders only
    tel as (
        select t.transformer_id,
               cast(t.timestamp as date) as date,
               t.load_pct,
               case when coalesce(q.oil, false) then null else t.oil_temp_c end as oil_temp_c,
               coalesce(t.ambient_temp_c, w.temp_c) as ambient_c,
               case when coalesce(q.oil, false) then null else t.hot_spot_temp_c end
                   as hot_spot_temp_c,
               t.h2_ppm, t.c2h2_ppm, t.c2h4_ppm
        from {qualified("transformer_telemetry")} t
        left join {qualified("transformers")} x using (transformer_id)
        left join {qualified("circuits")} c on c.circuit_id = x.circuit_id
        left join {qualified("weather_observations")} w
               on w.zone = c.zone and w.timestamp = t.timestamp
        left join q on q.device_id = t.transformer_id and q.date = cast(t.timestamp as date)
        where t.timestamp >= ? and t.timestamp < ? and not coalesce(q.whole, false)
    )
    select transformer_id,
           date,
           count(*) as hours,
           avg(load_pct) as load_mean_pct,
           max(load_pct) as load_peak_pct,
           count(*) filter (where load_pct > 100) as overload_hours,
           avg(oil_temp_c) as oil_mean_c,
           max(oil_temp_c) as oil_max_c,
           avg(ambient_c) as ambient_mean_c,
           avg(oil_temp_c - ambient_c) as oil_rise_mean_c,
           avg(oil_temp_c - ambient_c)
               / power(({LOSS_RATIO_R} * avg(power(load_pct / 100, 2)) + 1) / ({LOSS_RATIO_R} + 1),
                       {OIL_EXPONENT_N}) as thermal_index_c,
           max(hot_spot_temp_c) as hot_spot_max_c,
           avg(h2_ppm) as h2_ppm,
           avg(c2h2_ppm) as c2h2_ppm,
           avg(c2h4_ppm) as c2h4_ppm
    from tel
    group by transformer_id, date
    order by transformer_id, date
    """
    q_range = [start, end] if q_params else []
    return con.execute(sql, [*q_params, *q_range, _ts(start), _ts(end)]).fetchdf()


def transformer_health_features(con: duckdb.DuckDBPyConnection, start: date, end: date
                                ) -> pd.DataFrame:
    """Trailing-window health features per transformer-day for days in [start, end).

    Reads the daily stats of [start - 29 days, end) only, so the cost of a day does not grow with
    the length of the history.
    """
    first = start - timedelta(days=WINDOW_DAYS - 1)
    w30 = (f"partition by transformer_id order by date "
           f"range between interval {WINDOW_DAYS - 1} days preceding and current row")
    w7 = (f"partition by transformer_id order by date "
          f"range between interval {RECENT_DAYS - 1} days preceding and current row")
    sql = f"""
    with s as (
        select *, datediff('day', date '2000-01-01', date) as day_no
        from {qualified("transformer_daily_stats")}
        where date >= ? and date < ?
    ),
    win as (
        select transformer_id, date,
               count(*) over w30 as history_days,
               avg(load_mean_pct) over w30 as load_mean_30d_pct,
               max(load_peak_pct) over w30 as load_peak_30d_pct,
               sum(overload_hours) over w30 as overload_hours_30d,
               avg(thermal_index_c) over w7 as thermal_index_7d_c,
               avg(thermal_index_c) over w30 as thermal_index_30d_c,
               regr_slope(thermal_index_c, day_no) over w30 as thermal_trend_30d,
               max(oil_max_c) over w7 as oil_max_7d_c,
               max(hot_spot_max_c) over w7 as hot_spot_max_7d_c,
               avg(h2_ppm) over w7 as h2_7d_ppm,
               regr_slope(h2_ppm, day_no) over w30 as h2_trend_30d,
               avg(c2h2_ppm) over w7 as c2h2_7d_ppm,
               regr_slope(c2h2_ppm, day_no) over w30 as c2h2_trend_30d,
               avg(c2h4_ppm) over w7 as c2h4_7d_ppm,
               regr_slope(c2h4_ppm, day_no) over w30 as c2h4_trend_30d,
               count(h2_ppm) over w30 > 0 as has_gas_monitor
        from s
        window w30 as ({w30}), w7 as ({w7})  -- sql-identifier: window frames built above from constants
    )
    select win.transformer_id,
           win.date,
           x.circuit_id,
           x.rating_kva,
           year(win.date) - x.install_year as age_years,
           win.* exclude (transformer_id, date),
           win.thermal_index_7d_c / nullif(win.thermal_index_30d_c, 0) as thermal_ratio,
           -- a failure before the day means the unit was replaced: it is new since then
           (select datediff('day', max(f.failed_at), win.date + interval 1 day)
              from {qualified("transformer_failures")} f
             where f.transformer_id = win.transformer_id
               and f.failed_at < win.date + interval 1 day) as days_since_replacement
    from win
    join {qualified("transformers")} x using (transformer_id)
    where win.date >= ? and win.date < ?
    order by win.transformer_id, win.date
    """
    return con.execute(sql, [first, end, start, end]).fetchdf()


def circuit_exposure_features(con: duckdb.DuckDBPyConnection, start: date, end: date
                              ) -> pd.DataFrame:
    """Per circuit-day exposure: weather, vegetation, transformer condition and loading."""
    g1, g2 = GUST_THRESHOLDS_MPH
    quarantine, q_params = _quarantine(con, CIRCUIT)
    sql = f"""
    with w as (
        select zone, cast(timestamp as date) as date,
               max(wind_gust_mph) as peak_gust_mph,
               max(wind_speed_mph) as max_wind_mph,
               count(*) filter (where wind_gust_mph >= {g1}) as hours_gust_over_{g1},  -- sql-identifier: GUST_THRESHOLDS_MPH, from code
               count(*) filter (where wind_gust_mph >= {g2}) as hours_gust_over_{g2},  -- sql-identifier: GUST_THRESHOLDS_MPH, from code
               sum(precip_mm) as precip_mm,
               min(temp_c) as temp_min_c,
               max(temp_c) as temp_max_c
        from {qualified("weather_observations")}
        where timestamp >= ? and timestamp < ?
        group by zone, date
    ),
    w3 as (
        select *, sum(precip_mm) over (partition by zone order by date
                  range between interval 2 days preceding and current row) as precip_72h_mm
        from w
    ),
    q as ({quarantine}),  -- sql-identifier: _quarantine's query, ? placeholders only
    l as (
        select f.circuit_id, cast(f.timestamp as date) as date, max(f.load_mw) as peak_load_mw,
               avg(f.load_mw) as mean_load_mw
        from {qualified("feeder_load")} f
        left join q on q.device_id = f.circuit_id and q.date = cast(f.timestamp as date)
        where f.timestamp >= ? and f.timestamp < ? and not coalesce(q.whole, false)
        group by f.circuit_id, cast(f.timestamp as date)
    ),
    h as (
        select circuit_id, date,
               count(*) as n_transformers,
               avg(age_years) as transformer_mean_age_years,
               avg(case when age_years >= 40 then 1.0 else 0.0 end) as transformer_share_over_40y,
               max(thermal_ratio) as transformer_max_thermal_ratio,
               count(*) filter (where thermal_ratio >= {THERMAL_RATIO_WARNING}
                                   or h2_trend_30d >= {H2_TREND_PPM_PER_DAY})
                   as transformers_with_warnings,
               max(load_peak_30d_pct) as transformer_max_load_30d_pct
        from {qualified("transformer_health_features")}
        where date >= ? and date < ?
        group by circuit_id, date
    )
    select c.circuit_id,
           w3.date,
           c.zone,
           c.customers,
           c.critical_customers,
           c.length_km,
           c.tree_canopy_pct,
           case when c.last_trim_date is null then null
                when w3.date < c.last_trim_date then null
                else datediff('day', c.last_trim_date, w3.date) / 365.25 end as years_since_trim,
           w3.* exclude (zone, date),
           l.peak_load_mw,
           l.mean_load_mw,
           l.peak_load_mw / c.capacity_mw as peak_loading,
           h.* exclude (circuit_id, date)
    from {qualified("circuits")} c
    join w3 on w3.zone = c.zone
    left join l on l.circuit_id = c.circuit_id and l.date = w3.date
    left join h on h.circuit_id = c.circuit_id and h.date = w3.date
    where w3.date >= ? and w3.date < ?
    order by c.circuit_id, w3.date
    """
    weather_from = start - timedelta(days=2)
    q_range = [start, end] if q_params else []
    return con.execute(
        sql, [_ts(weather_from), _ts(end), *q_params, *q_range, _ts(start), _ts(end), start, end,
              start, end]
    ).fetchdf()


def _ts(day: date) -> pd.Timestamp:
    return pd.Timestamp(day)
