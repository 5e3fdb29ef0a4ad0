"""The warehouse reads behind `make evaluate`: what the graph stored (scores, lists, forecasts,
registry versions) and what happened afterwards (failures, outages, load).

Functions take a DuckDB connection on which every table is visible as `schema.table` and return
frames or values; they write nothing. The figures are computed by `gridassets.evaluation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import pandas as pd

from gridassets import warehouse
from gridassets.domain import models


def last_load_timestamp(con: duckdb.DuckDBPyConnection):
    """The latest hour of feeder load (None when there is none)."""
    return con.execute(
        f"select max(timestamp) from {warehouse.qualified('feeder_load')}").fetchall()[0][0]


def feature_span(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """The first and last day of circuit exposure features (None when there are none)."""
    if not warehouse.table_exists(con, "circuit_exposure_features"):
        return None
    lo, hi = con.execute(
        f"select min(date), max(date) from {warehouse.qualified('circuit_exposure_features')}"
    ).fetchall()[0]
    return None if lo is None else (pd.Timestamp(lo).date(), pd.Timestamp(hi).date())


def scored_failures(con: duckdb.DuckDBPyConnection, up_to: pd.Timestamp) -> pd.DataFrame:
    """Each transformer-day scored up to `up_to` (date, transformer_id, p_fail_30d) and whether
    the unit failed within the next HORIZON_DAYS days (`failed`)."""
    return con.execute(f"""
        select r.date, r.transformer_id, r.p_fail_30d, count(f.transformer_id) > 0 as failed
        from {warehouse.qualified('transformer_risk')} r
        left join {warehouse.qualified('transformer_failures')} f
               on f.transformer_id = r.transformer_id
              and f.failed_at >= r.date + interval 1 day
              and f.failed_at < r.date + interval {models.HORIZON_DAYS + 1} day
        where r.date <= ?
        group by all
    """, [up_to]).fetchdf()


def outage_score_days(con: duckdb.DuckDBPyConnection) -> pd.Series:
    """The days with circuit outage scores, in order."""
    return con.execute(
        f"select distinct date from {warehouse.qualified('circuit_outage_risk')} order by 1"
    ).fetchdf()["date"]


def prioritized_lists(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(f"select * from {warehouse.qualified('prioritized_circuits')}").fetchdf()


def outage_probabilities(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """date, circuit_id, p_outage_7d and the climatological customer-minutes of every scored
    circuit-day."""
    return con.execute(
        f"select date, circuit_id, p_outage_7d, risk_customer_minutes_7d_climatology "
        f"from {warehouse.qualified('circuit_outage_risk')}").fetchdf()


def worst_transformer_probabilities(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """date, circuit_id and the highest p_fail_30d among the circuit's transformers that day."""
    return con.execute(
        f"select date, circuit_id, max(p_fail_30d) as p_fail_30d "
        f"from {warehouse.qualified('transformer_risk')} group by all").fetchdf()


def trim_index(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """date, circuit_id and canopy x years since trim (5 years when never trimmed)."""
    return con.execute(
        f"select date, circuit_id, tree_canopy_pct * coalesce(years_since_trim, 5) as trim_index "
        f"from {warehouse.qualified('vegetation_risk')}").fetchdf()


def customer_minutes_lost(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """circuit_id, start_ts and customer-minutes of every outage that has ended."""
    return con.execute(
        f"select circuit_id, start_ts, customers_affected * "
        f"date_diff('second', start_ts, end_ts) / 60.0 as customer_minutes "
        f"from {warehouse.qualified('outage_events')} where end_ts is not null").fetchdf()


def weekly_outage_totals(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per scored day d: the fleet's expected outages of d+1..d+7 from the forecast and from
    climatology, and the outages of an environmental cause that then started (only days whose
    week is in the data)."""
    return con.execute(f"""
        with p as (
            select date, sum(expected_outages_7d) as forecast,
                   sum(expected_outages_7d_climatology) as climatology
            from {warehouse.qualified('circuit_outage_risk')} group by date
        ), e as (
            select start_ts from {warehouse.qualified('outage_events')}
             where cause in (select unnest(?::varchar[]))
        )
        select p.date, p.forecast, p.climatology,
               (select count(*) from e where e.start_ts >= p.date + interval 1 day
                                         and e.start_ts < p.date + interval 8 day) as realized
        from p
        where p.date + interval 8 day <= (select max(start_ts) from e)
        order by p.date""", [list(models.ENVIRONMENT_CAUSES)]).fetchdf()


def registry_versions(con: duckdb.DuckDBPyConnection, specs: Sequence[models.ModelSpec]
                      ) -> pd.DataFrame:
    """Every trained version of the models (name, week, version, status, holdout metrics)."""
    parts = []
    for spec in specs:
        if warehouse.table_exists(con, spec.name):
            parts.append(con.execute(
                f"select model_name, week_start, version, status, roc_auc, pr_auc, brier "
                f"from {warehouse.qualified(spec.name)} order by week_start").fetchdf())
    return pd.concat(parts) if parts else pd.DataFrame()


def scored_forecasts(con: duckdb.DuckDBPyConnection, columns: Sequence[str]
                     ) -> pd.DataFrame | None:
    """The stored load forecasts (`columns`, names from code) of hours whose load is known;
    None when no forecast was ever stored."""
    if not warehouse.table_exists(con, "load_forecast"):
        return None
    return con.execute(
        f"select {', '.join(columns)} "  # sql-identifier: column names from code
        f"from {warehouse.qualified('load_forecast')} "
        f"where target_ts <= (select max(timestamp) from {warehouse.qualified('feeder_load')})"
    ).fetchdf()


def feeder_load_since(con: duckdb.DuckDBPyConnection, first: pd.Timestamp) -> pd.DataFrame:
    """circuit_id, timestamp, load_mw of every hour from `first` on."""
    return con.execute(
        f"select circuit_id, timestamp, load_mw from {warehouse.qualified('feeder_load')} "
        "where timestamp >= ?", [first]).fetchdf()
