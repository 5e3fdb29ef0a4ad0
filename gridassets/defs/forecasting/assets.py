"""Day-ahead load forecasts per circuit, and the state of each circuit's forecasting model."""

from datetime import timedelta

import dagster as dg
import pandas as pd

from gridassets import warehouse as wh
from gridassets.defs.metadata import (
    frame_schema,
    markdown_table,
    partition_days,
    png_markdown,
    preview,
)
from gridassets.defs.partitions import daily_partitions
from gridassets.defs.policies import DAILY_FRESHNESS, DUCKDB_POOL, OWNERS, TRANSIENT_RETRY
from gridassets.defs.resources import Warehouse
from gridassets.domain import backtest, forecasting

CONFIG = forecasting.ForecastConfig()
BACKTEST_DAYS = 28
# A forecast issued on D reads the load and temperature of the window before D (lags included).
HISTORY = dg.TimeWindowPartitionMapping(start_offset=-(CONFIG.window_days - 1),
                                        allow_nonexistent_upstream_partitions=True)
INPUTS = [dg.AssetDep("feeder_load", partition_mapping=HISTORY),
          dg.AssetDep("weather_observations", partition_mapping=HISTORY), "circuits"]


@dg.multi_asset(
    outs={
        "load_forecast": dg.AssetOut(
            group_name="forecasting", owners=OWNERS,
            kinds={"statsmodels", "duckdb"}, freshness_policy=DAILY_FRESHNESS, code_version="1",
            description="Tomorrow's hourly load per circuit with a 90% interval, issued at the end "
                        "of each day, with the method and parameters that produced each row.",
            metadata={"partition_expr": "issue_date", "schema": "scores"},
        ),
        "load_forecast_models": dg.AssetOut(
            group_name="forecasting", owners=OWNERS,
            kinds={"statsmodels", "duckdb"}, code_version="1",
            description="Each circuit's forecasting model after the day's forecast: parameters, "
                        "when they were fitted, the last refit decision and interval offsets.",
            metadata={"partition_expr": "issue_date", "schema": "models"},
        ),
    },
    deps=INPUTS,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DUCKDB_POOL,
    retry_policy=TRANSIENT_RETRY,
)
def load_forecast(context: dg.AssetExecutionContext, warehouse: Warehouse):
    days = partition_days(context)
    first, last = pd.Timestamp(days[0]), pd.Timestamp(days[-1])
    since = first - pd.Timedelta(days=CONFIG.window_days)
    with warehouse.connect() as con:
        circuits = con.execute(f"select circuit_id, zone from {wh.qualified('circuits')}").fetchdf()
        window = [since, last + pd.Timedelta(days=1)]
        load = wh.fetch_compact(
            con, f"select circuit_id, timestamp, load_mw from {wh.qualified('feeder_load')} "
                 "where timestamp >= ? and timestamp < ?", window)
        temperature = wh.fetch_compact(
            con, f"select c.circuit_id, w.timestamp, w.temp_c "
                 f"from {wh.qualified('weather_observations')} w "
                 f"join {wh.qualified('circuits')} c on c.zone = w.zone "
                 "where w.timestamp >= ? and w.timestamp < ?", window)
        fitted = _state_before(con, first)
    ids = sorted(circuits["circuit_id"].astype(str))
    forecasts, states = [], []
    for day in days:
        frame, fitted = forecasting.forecast_day_ahead(
            load, day, temperature=temperature, fitted=fitted, circuits=ids, config=CONFIG)
        forecasts.append(frame)
        states.append(_state_rows(fitted, day))
    frame = pd.concat(forecasts, ignore_index=True)
    state = pd.concat(states, ignore_index=True)
    last_day = frame[frame["issue_date"] == frame["issue_date"].max()]
    methods = last_day.groupby("method")["circuit_id"].nunique().to_dict()
    yield dg.Output(frame, output_name="load_forecast", metadata={
        "dagster/column_schema": frame_schema(frame),
        "interval_level": CONFIG.interval_level,
        "circuits_by_method": dg.MetadataValue.json(methods),
        "substituted_circuits": int(last_day.groupby("circuit_id")["substituted"].any().sum()),
        "notes": dg.MetadataValue.md(markdown_table(
            last_day[last_day["substituted"]].drop_duplicates("circuit_id")[
                ["circuit_id", "method", "note"]], max_rows=20) or "none"),
        "preview": preview(last_day[["circuit_id", "target_ts", "load_mw", "lower_mw",
                                     "upper_mw", "method"]]),
    })
    refits = int((state["fitted_on"] == state["issue_date"]).sum())
    yield dg.Output(state, output_name="load_forecast_models", metadata={
        "dagster/column_schema": frame_schema(state), "refits": refits,
        "preview": preview(state.drop(columns=["model_json"])),
    })


def _state_before(con, first: pd.Timestamp) -> dict[str, forecasting.FittedModel]:
    """Each circuit's model as the previous day's forecast left it (none: fit from scratch)."""
    if not wh.table_exists(con, "load_forecast_models"):
        return {}
    rows = con.execute(
        f"select circuit_id, model_json from {wh.qualified('load_forecast_models')} "
        "where issue_date = ?", [(first - timedelta(days=1)).date()]).fetchall()
    return {cid: forecasting.FittedModel.from_json(text) for cid, text in rows}


def _state_rows(fitted: dict[str, forecasting.FittedModel], day) -> pd.DataFrame:
    return pd.DataFrame([
        {"circuit_id": cid, "issue_date": day, "method": m.method, "fitted_on": m.fitted_on,
         "train_end": m.train_end, "checked_on": m.checked_on,
         "guard": str(m.guard.get("decision", "")) if isinstance(m.guard, dict) else "",
         "model_json": m.to_json()}
        for cid, m in sorted(fitted.items())
    ], columns=["circuit_id", "issue_date", "method", "fitted_on", "train_end", "checked_on",
                "guard", "model_json"])


@dg.asset(
    ins={"load_forecast": dg.AssetIn(
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-BACKTEST_DAYS, end_offset=-1, allow_nonexistent_upstream_partitions=True),
        dagster_type=dg.Nothing)},
    deps=["feeder_load"],
    group_name="forecasting", owners=OWNERS, kinds={"duckdb", "pandas"},
    partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DUCKDB_POOL, retry_policy=TRANSIENT_RETRY, code_version="1",
    metadata={"partition_expr": "date", "schema": "scores"},
)
def load_forecast_backtest(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """How good the day-ahead forecasts of the last four weeks were, per circuit and overall:
    MAPE, RMSE and interval coverage against the previous-day and previous-week naive forecasts."""
    rows, last = [], None
    with warehouse.connect() as con:
        for day in partition_days(context):
            # Forecasts issued on D-28 .. D-1 target D-27 .. D: every target is known by D's end.
            first_issue = pd.Timestamp(day) - pd.Timedelta(days=BACKTEST_DAYS)
            forecasts = con.execute(
                f"select {', '.join(backtest.SCORED_COLUMNS)} from {wh.qualified('load_forecast')} "
                "where issue_date >= ? and issue_date < ?",
                [first_issue.date(), day]).fetchdf()
            if forecasts.empty:
                continue
            load = con.execute(
                f"select circuit_id, timestamp, load_mw from {wh.qualified('feeder_load')} "
                "where timestamp >= ? and timestamp < ?",
                [first_issue - pd.Timedelta(days=8), pd.Timestamp(day) + pd.Timedelta(days=1)]
            ).fetchdf()
            last = backtest.score(forecasts, load, CONFIG.interval_level)
            per = last.per_circuit.copy()
            overall = {k: v for k, v in last.overall.items() if k in per.columns}
            per = pd.concat([per, pd.DataFrame([{**overall, "circuit_id": "ALL"}])],
                            ignore_index=True)
            per.insert(0, "date", pd.Timestamp(day))
            rows.append(per)
    if last is None:
        # The first days of forecasting have nothing to look back on yet: not an error.
        context.log.warning("no stored day-ahead forecasts issued in the four weeks before "
                            f"{partition_days(context)[-1]} to score yet")
        return dg.Output(pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"),
                                       "circuit_id": pd.Series(dtype=object)}),
                         metadata={"origins": 0, "note": "no forecasts to score yet"})
    frame = pd.concat(rows, ignore_index=True)
    biggest = last.forecasts.groupby("circuit_id")["actual_mw"].mean().idxmax()
    recent = last.forecasts[last.forecasts["target_ts"]
                            >= last.forecasts["target_ts"].max() - pd.Timedelta(days=7)]
    actuals = recent[["circuit_id", "target_ts", "actual_mw"]].rename(
        columns={"target_ts": "timestamp", "actual_mw": "load_mw"})
    o = last.overall
    return dg.Output(frame, metadata={
        "dagster/column_schema": frame_schema(frame),
        "mape_pct": o["mape"], "mape_prev_day_pct": o["mape_prev_day"],
        "mape_prev_week_pct": o["mape_prev_week"], "rmse_mw": o["rmse"],
        "coverage_pct": o["coverage"], "interval_level": CONFIG.interval_level,
        "skill_vs_prev_day": o["skill_prev_day"], "origins": len(last.origins),
        "forecast_vs_actual": png_markdown(
            backtest.plot_forecast(recent, actuals, biggest),
            f"{biggest}: forecast, 90% interval and actual, last 7 days"),
        "per_circuit": dg.MetadataValue.md(markdown_table(
            last.per_circuit[["circuit_id", "mape", "mape_prev_day", "mape_prev_week",
                              "coverage", "skill_prev_day"]], max_rows=15)),
    })
