"""What telemetry integrity reads from the warehouse: a day's readings per device against the days
before, the hourly series its clock and balance checks compare, the device's references from its
earlier signals, and the flags that keep readings out of features and models.

Functions take a DuckDB connection on which every table is visible as `schema.table` and return
frames; they write nothing. The checks and thresholds are the domain's
(`gridassets.domain.integrity`).
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from gridassets.domain.features import LOSS_RATIO_R, OIL_EXPONENT_N
from gridassets.domain.integrity import (
    FEEDER_REPEAT_SCALE,
    LOAD_REPEAT_SCALE,
    OIL_REPEAT_SCALE_C,
    RECENT_DAYS,
    RECENT_MAX_AGE_DAYS,
    REFERENCE_DAYS,
    REPEAT_DAYS,
    SPREAD_MIN_HOURS,
)
from gridassets.warehouse import qualified, table_exists


def _ts(day: date) -> pd.Timestamp:
    return pd.Timestamp(day)


def transformer_day(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """Per transformer reporting on `day`: hours, load and oil statistics, the thermal index, and
    its closest earlier day among the REPEAT_DAYS before, both channels and the oil alone."""
    sql = f"""
    with today as (
        select t.transformer_id, hour(t.timestamp) as h, t.load_pct, t.oil_temp_c,
               coalesce(t.ambient_temp_c, w.temp_c) as ambient_c
        from {qualified("transformer_telemetry")} t
        left join {qualified("transformers")} x using (transformer_id)
        left join {qualified("circuits")} c on c.circuit_id = x.circuit_id
        left join {qualified("weather_observations")} w
               on w.zone = c.zone and w.timestamp = t.timestamp
        where t.timestamp >= ? and t.timestamp < ?
    ),
    -- the repeat comparison needs the readings alone, without the joins that give the ambient
    readings as (
        select transformer_id, hour(timestamp) as h, load_pct, oil_temp_c
        from {qualified("transformer_telemetry")}
        where timestamp >= ? and timestamp < ?
    ),
    past as (
        select transformer_id, cast(timestamp as date) as past_day, hour(timestamp) as h,
               load_pct, oil_temp_c
        from {qualified("transformer_telemetry")}
        where timestamp >= ? and timestamp < ?
    ),
    stats as (
        select transformer_id, count(*) as hours,
               avg(load_pct) as load_mean_pct, min(load_pct) as load_min_pct,
               max(load_pct) as load_max_pct, avg(oil_temp_c) as oil_mean_c,
               max(oil_temp_c) - min(oil_temp_c) as oil_spread_c,
               avg(oil_temp_c - ambient_c)
                 / power(({LOSS_RATIO_R} * avg(power(load_pct / 100, 2)) + 1)
                         / ({LOSS_RATIO_R} + 1), {OIL_EXPONENT_N}) as thermal_index_c
        from today group by transformer_id
    ),
    pairs as (
        select t.transformer_id, p.past_day,
               avg(abs(t.load_pct - p.load_pct)) / greatest(avg(t.load_pct), 1) as d_load,
               avg(abs(t.oil_temp_c - p.oil_temp_c)) as d_oil
        from readings t join past p using (transformer_id, h)
        group by t.transformer_id, p.past_day
        having count(*) >= 20
    ),
    ranked as (
        -- equally close days (to 1e-9: sums in parallel differ in their last bits) go to the
        -- latest, so that a rerun names the same day
        select *, greatest(d_load / {LOAD_REPEAT_SCALE}, d_oil / {OIL_REPEAT_SCALE_C}) as d_all,
               (round(d_all, 9), -epoch(past_day)) as all_rank,
               (round(d_oil, 9), -epoch(past_day)) as oil_rank
        from pairs
    ),
    best as (
        select transformer_id,
               min(d_all) as repeat_all,
               arg_min(past_day, all_rank) as repeat_all_day,
               100 * arg_min(d_load, all_rank) as repeat_all_load_pct,
               arg_min(d_oil, all_rank) as repeat_all_oil_c,
               min(d_oil) / {OIL_REPEAT_SCALE_C} as repeat_oil,
               arg_min(past_day, oil_rank) as repeat_oil_day,
               min(d_oil) as repeat_oil_c
        from ranked group by transformer_id
    )
    select s.*, s.load_max_pct - s.load_min_pct as load_spread_pct,
           (s.load_max_pct - s.load_min_pct) / greatest(s.load_mean_pct, 1) as load_spread_rel,
           b.* exclude (transformer_id)
    from stats s left join best b using (transformer_id)
    """
    start, end = _ts(day), _ts(day) + pd.Timedelta(days=1)
    return con.execute(sql, [start, end, start, end, start - pd.Timedelta(days=REPEAT_DAYS),
                             start]).fetchdf()


def expected_transformers(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """Every registry transformer with its circuit, whether it reported in the 3 days before
    `day`, and whether a failure of it is on record from 3 days before to the end of `day`."""
    start = _ts(day)
    sql = f"""
    select x.transformer_id as device_id, x.circuit_id,
           exists (select 1 from {qualified("transformer_telemetry")} t
                   where t.transformer_id = x.transformer_id
                     and t.timestamp >= ? and t.timestamp < ?) as reported_before,
           exists (select 1 from {qualified("transformer_failures")} f
                   where f.transformer_id = x.transformer_id
                     and f.failed_at >= ? and f.failed_at < ?) as failed_recently
    from {qualified("transformers")} x
    order by x.transformer_id
    """
    return con.execute(sql, [start - pd.Timedelta(days=3), start, start - pd.Timedelta(days=3),
                             start + pd.Timedelta(days=1)]).fetchdf()


def hourly_transformer_load(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """transformer_id, circuit_id, h, kva (load_pct x rating) of every reading of `day`."""
    start = _ts(day)
    return con.execute(f"""
        select t.transformer_id, x.circuit_id, hour(t.timestamp) as h,
               t.load_pct / 100 * x.rating_kva as kva
        from {qualified("transformer_telemetry")} t
        join {qualified("transformers")} x using (transformer_id)
        where t.timestamp >= ? and t.timestamp < ?
        order by t.transformer_id, h
    """, [start, start + pd.Timedelta(days=1)]).fetchdf()


def feeder_day(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """Per circuit and hour of `day`: the feeder's load, the kVA its reporting transformers
    carry, how many reported (in service) and their rating, the circuit's registered rating; and per circuit
    its closest earlier day of feeder load among the REPEAT_DAYS before."""
    start = _ts(day)
    sql = f"""
    with f as (
        select circuit_id, hour(timestamp) as h, timestamp, load_mw
        from {qualified("feeder_load")} where timestamp >= ? and timestamp < ?
    ),
    tx as (
        select x.circuit_id, t.timestamp, sum(t.load_pct / 100 * x.rating_kva) as kva,
               count(*) as units, sum(x.rating_kva) as rating_present
        from {qualified("transformer_telemetry")} t
        join {qualified("transformers")} x using (transformer_id)
        -- a unit out of service (no load) counts as not reporting: the rest stand for it
        where t.timestamp >= ? and t.timestamp < ? and t.load_pct > 0
        group by x.circuit_id, t.timestamp
    ),
    registry as (
        select circuit_id, sum(rating_kva) as rating_all, count(*) as units_all
        from {qualified("transformers")} group by circuit_id
    ),
    past as (
        select circuit_id, cast(timestamp as date) as past_day, hour(timestamp) as h, load_mw
        from {qualified("feeder_load")} where timestamp >= ? and timestamp < ?
    ),
    pairs as (
        select f.circuit_id, p.past_day,
               avg(abs(f.load_mw - p.load_mw)) / greatest(avg(abs(f.load_mw)), 1e-6) as d_load
        from f join past p using (circuit_id, h)
        group by f.circuit_id, p.past_day having count(*) >= 20
    ),
    best as (
        select circuit_id, min(d_load) / {FEEDER_REPEAT_SCALE} as repeat_all,
               arg_min(past_day, (round(d_load, 9), -epoch(past_day))) as repeat_all_day,
               100 * min(d_load) as repeat_all_load_pct
        from pairs group by circuit_id
    )
    select f.circuit_id, f.h, f.load_mw, tx.kva, tx.units, tx.rating_present, r.rating_all,
           r.units_all, b.repeat_all, b.repeat_all_day, b.repeat_all_load_pct
    from f
    left join tx on tx.circuit_id = f.circuit_id and tx.timestamp = f.timestamp
    left join registry r on r.circuit_id = f.circuit_id
    left join best b on b.circuit_id = f.circuit_id
    order by f.circuit_id, f.h
    """
    end = start + pd.Timedelta(days=1)
    return con.execute(sql, [start, end, start, end, start - pd.Timedelta(days=REPEAT_DAYS),
                             start]).fetchdf()


def circuit_ids(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(f"select circuit_id from {qualified('circuits')} "
                       "order by circuit_id").fetchdf()


# Signals of the days of a run not yet published: a temporary table of the run's connection.
PENDING_SIGNALS = "pending_signals"


def clear_pending(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"drop table if exists temp.{PENDING_SIGNALS}")


def _has_pending(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "select count(*) from duckdb_tables() where temporary and table_name = ?",
        [PENDING_SIGNALS]).fetchall()[0][0])


def stage_pending(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    """Add `frame` (a day's signals, of `signals_frame`'s column types) to the pending signals."""
    if not len(frame):
        return
    con.register("staged_signals", frame)
    try:
        if _has_pending(con):
            con.execute(f"insert into temp.{PENDING_SIGNALS} by name select * from staged_signals")
        else:
            con.execute(f"create temp table {PENDING_SIGNALS} as select * from staged_signals")
    finally:
        con.unregister("staged_signals")


def pending(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The pending signals, in the order they were staged."""
    if not _has_pending(con):
        return pd.DataFrame()
    return con.execute(f"select * from temp.{PENDING_SIGNALS}").fetchdf()


def references(con: duckdb.DuckDBPyConnection, day: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From the signals of the REFERENCE_DAYS before `day` (stored, and pending: earlier days of
    the same run, not yet stored), on the days each device's checks passed: per transformer the
    median thermal index since its last failure (and on how many days), the same over its last
    RECENT_DAYS such days within RECENT_MAX_AGE_DAYS (and how many), and its median oil and
    load spreads over the days it reported at least SPREAD_MIN_HOURS hours (and how many); per
    circuit the median balance ratio and hour-to-hour spread."""
    sources = []
    if table_exists(con, "telemetry_signals"):
        sources.append(f"select * from {qualified('telemetry_signals')}")
    if _has_pending(con):
        sources.append(f"select * from temp.{PENDING_SIGNALS}")
    if not sources:
        return (pd.DataFrame(columns=["device_id", "thermal_reference_c", "reference_days",
                                      "thermal_recent_c", "recent_days", "oil_spread_ref_c",
                                      "load_spread_ref", "spread_days"]),
                pd.DataFrame(columns=["device_id", "balance_ratio_ref", "balance_sd_ref",
                                      "reference_days"]))
    signals = " union all by name ".join(sources)
    start = _ts(day)
    first = start - pd.Timedelta(days=REFERENCE_DAYS)
    recent = start - pd.Timedelta(days=RECENT_MAX_AGE_DAYS)
    tx = con.execute(f"""
        with s as ({signals}),  -- sql-identifier: selects of tables named in code
        normal as (
            select s.device_id, s.date, s.hours, s.thermal_index_c, s.oil_spread_c,
                   s.load_spread_rel,
                   row_number() over (partition by s.device_id order by s.date desc) as back
            from s
            where s.device_type = 'transformer' and s.date >= ? and s.date < ? and s.thermal_ok
              and s.hours > 0
              and not exists (select 1 from {qualified("transformer_failures")} f
                              where f.transformer_id = s.device_id
                                and f.failed_at >= s.date and f.failed_at < ?)
        )
        select device_id, median(thermal_index_c) as thermal_reference_c,
               count(thermal_index_c) as reference_days,
               median(thermal_index_c) filter (where back <= {RECENT_DAYS} and date >= ?)
                   as thermal_recent_c,
               count(thermal_index_c) filter (where back <= {RECENT_DAYS} and date >= ?)
                   as recent_days,
               median(oil_spread_c) filter (where hours >= {SPREAD_MIN_HOURS})
                   as oil_spread_ref_c,
               median(load_spread_rel) filter (where hours >= {SPREAD_MIN_HOURS})
                   as load_spread_ref,
               count(*) filter (where hours >= {SPREAD_MIN_HOURS}) as spread_days
        from normal
        group by device_id
    """, [first, start, start, recent, recent]).fetchdf()
    circuits = con.execute(f"""
        with s as ({signals})  -- sql-identifier: selects of tables named in code
        select device_id, median(balance_ratio) as balance_ratio_ref,
               median(balance_sd) as balance_sd_ref, count(*) as reference_days
        from s
        where device_type = 'circuit' and date >= ? and date < ? and balance_ok
          and balance_ratio is not null
        group by device_id
    """, [first, start]).fetchdf()
    return tx, circuits


def signals_between(con: duckdb.DuckDBPyConnection, start, end) -> pd.DataFrame:
    """The telemetry_signals rows of days in [start, end)."""
    return con.execute(
        f"select * from {qualified('telemetry_signals')} where date >= ? and date < ? "
        "order by date, device_type, device_id", [_ts(start), _ts(end)]).fetchdf()


def integrity_rows(con: duckdb.DuckDBPyConnection, start, end, *, flagged_only: bool = True
                   ) -> pd.DataFrame:
    """The telemetry_integrity rows of days in [start, end) (the flagged ones by default)."""
    if not table_exists(con, "telemetry_integrity"):
        return pd.DataFrame(columns=["device_type", "device_id", "circuit_id", "date", "check",
                                     "score", "flagged", "reason", "quarantine"])
    return con.execute(
        f"select * from {qualified('telemetry_integrity')} where date >= ? and date < ? "
        "and (flagged or not ?) order by date, device_type, device_id, \"check\"",
        [_ts(start), _ts(end), flagged_only]).fetchdf()


def model_signals(con: duckdb.DuckDBPyConnection, start, end) -> pd.DataFrame:
    """The transformer signals of days in [start, end) for the anomaly model."""
    return con.execute(
        f"select * from {qualified('telemetry_signals')} where device_type = 'transformer' "
        "and hours > 0 and date >= ? and date < ? order by date, device_id",
        [_ts(start), _ts(end)]).fetchdf()


def first_signal_day(con: duckdb.DuckDBPyConnection) -> date | None:
    if not table_exists(con, "telemetry_signals"):
        return None
    first = con.execute(f"select min(date) from {qualified('telemetry_signals')}").fetchall()[0][0]
    return None if first is None else pd.Timestamp(first).date()


