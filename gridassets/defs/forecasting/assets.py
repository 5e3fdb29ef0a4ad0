"""Day-ahead load forecasts per circuit, and the state of each circuit's forecasting model."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pandas as pd

from gridassets import warehouse as wh
from gridassets.defs.audit import require_inputs, scope_of
from gridassets.defs.metadata import (
    check_result,
    frame_schema,
    markdown_table,
    partition_days,
    per_partition,
    png_markdown,
    preview,
)
from gridassets.defs.partitions import daily_partitions
from gridassets.defs.policies import (
    DAILY_BACKFILL,
    DAILY_FRESHNESS,
    DEPLOYMENT,
    DUCKDB_POOL,
    FORECAST_QUEUE,
    OWNERS,
    TRANSIENT_RETRY,
)
from gridassets.defs.resources import Warehouse
from gridassets.domain import backtest, forecasting
from gridassets.domain.schemas import LOAD_FORECAST
from gridassets.storage import forecasting as forecast_reads

CONFIG = forecasting.ForecastConfig()
BACKTEST_DAYS = 28
FORECAST = dg.AssetKey("load_forecast")
MODELS = dg.AssetKey("load_forecast_models")
# A forecast issued on D reads the load and temperature of the window before D (lags included).
HISTORY = dg.TimeWindowPartitionMapping(start_offset=-(CONFIG.window_days - 1),
                                        allow_nonexistent_upstream_partitions=True)
# It also starts from each circuit's model as the day before left it (the latest stored
# load_forecast_models before D); which one it read is in the metadata of both outputs. That is
# declared as load_forecast_models depending on its own day before, so that a backfill split into
# runs (scale-out) makes its days in order, never day D before D-1's models are stored. (Declared
# on the models only: the forecast of D comes from the same computation as the models of D, and
# a dependency of the forecast on the models of D-1 would make the backfill daemon run one day
# per run.)
DAY_BEFORE = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1,
                                           allow_nonexistent_upstream_partitions=True)
INPUTS = [dg.AssetDep("feeder_load", partition_mapping=HISTORY),
          dg.AssetDep("weather_observations", partition_mapping=HISTORY),
          dg.AssetDep("weather_forecasts", partition_mapping=HISTORY), "circuits",
          dg.AssetDep("load_forecast_models", partition_mapping=DAY_BEFORE)]
_SOURCES = {dg.AssetKey("feeder_load"), dg.AssetKey("weather_observations"),
            dg.AssetKey("weather_forecasts"), dg.AssetKey("circuits")}
INTERNAL_DEPS = {"load_forecast": _SOURCES, "load_forecast_models": _SOURCES | {MODELS}}


@dg.multi_asset(
    outs={
        "load_forecast": dg.AssetOut(
            group_name="forecasting", owners=OWNERS, is_required=False,
            kinds={"statsmodels", "duckdb"}, freshness_policy=DAILY_FRESHNESS, code_version="2",
            description="Tomorrow's hourly load per circuit with a 90% interval, issued at the end "
                        "of each day, with the method, inputs and parameters behind each row.",
            metadata={"partition_expr": "issue_date", "schema": "scores"},
        ),
        "load_forecast_models": dg.AssetOut(
            group_name="forecasting", owners=OWNERS, is_required=False,
            kinds={"statsmodels", "duckdb"}, code_version="2",
            description="Each circuit's forecasting model after the day's forecast: parameters, "
                        "when they were fitted, the last refit decision and interval offsets.",
            metadata={"partition_expr": "issue_date", "schema": "models"},
        ),
    },
    check_specs=[
        *[dg.AssetCheckSpec(name, asset=FORECAST, blocking=True, description=text)
          for name, text in forecasting.FORECAST_CHECKS.items()],
        *[dg.AssetCheckSpec(name, asset=MODELS, blocking=True, description=text)
          for name, text in forecasting.MODEL_CHECKS.items()],
    ],
    deps=INPUTS,
    internal_asset_deps=INTERNAL_DEPS,
    partitions_def=daily_partitions,
    backfill_policy=DAILY_BACKFILL,
    pool=DUCKDB_POOL,
    op_tags=FORECAST_QUEUE,
    retry_policy=TRANSIENT_RETRY,
    # One computation makes both (the forecast and the model it leaves), but either may be
    # materialized alone; an output that is not selected is not written. Not in scale-out: the
    # backfill daemon would put the two in runs of their own (the models depend on themselves,
    # the forecast on them) and compute every day's forecast twice.
    can_subset=not DEPLOYMENT.scaleout,
)
def load_forecast(context: dg.AssetExecutionContext, warehouse: Warehouse):
    days = partition_days(context)
    first, last = pd.Timestamp(days[0]), pd.Timestamp(days[-1])
    since = first - pd.Timedelta(days=CONFIG.window_days)
    selected = context.selected_asset_keys
    scope = scope_of(days)
    with warehouse.connect() as con:
        # A utility may have no weather feed at all: then the forecast uses load alone. Where the
        # weather is kept, a missing day of it is a missing input, not a reason to drop it.
        has_weather = wh.table_exists(con, "weather_observations")
        require_inputs(con, "load_forecast", days, {
            "circuits": None, "feeder_load": "timestamp",
            **({"weather_observations": "timestamp"} if has_weather else {})})
        circuits = forecast_reads.circuit_zones(con)
        until = last + pd.Timedelta(days=1)
        load = forecast_reads.feeder_load_between(con, since, until, compact=True)
        temperature = forecasted = None
        if has_weather:
            temperature = forecast_reads.circuit_temperature_between(con, since, until)
            # the target day's forecast temperature was issued at the end of the issue day
            forecasted = forecast_reads.circuit_forecast_temperature_between(
                con, since, until + pd.Timedelta(days=1))
        fitted, state_day = forecast_reads.model_state_before(con, first)
    ids = sorted(circuits["circuit_id"].astype(str))
    forecasts, states = [], []
    for day in days:
        frame, fitted = forecasting.forecast_day_ahead(
            load, day, temperature=temperature, fitted=fitted, circuits=ids, config=CONFIG,
            forecast_temperature=forecasted, processes=DEPLOYMENT.processes)
        forecasts.append(frame)
        states.append(_state_rows(fitted, day))
    frame = pd.concat(forecasts, ignore_index=True)
    state = pd.concat(states, ignore_index=True)

    audits = {}
    if FORECAST in selected:
        audits[FORECAST] = forecasting.audit_forecasts(frame, ids, days)
    if MODELS in selected:
        audits[MODELS] = forecasting.audit_models(state, frame)
    results = yield from _audited(context, audits, scope)

    state_text = _state_text(state_day, len(fitted), first.date(), days[-1], MODELS in selected)
    if MODELS not in selected:
        context.log.warning(f"load_forecast {scope}: {state_text}")
    if MODELS in selected:
        refits = int((state["fitted_on"] == state["issue_date"]).sum())
        yield dg.Output(state, output_name="load_forecast_models", metadata={
            "dagster/column_schema": frame_schema(state), "refits": refits,
            "model_state": state_text,
            "preview": preview(state.drop(columns=["model_json"])),
        })
    if FORECAST in selected:
        last_day = frame[frame["issue_date"] == frame["issue_date"].max()]
        methods = last_day.groupby("method")["circuit_id"].nunique().to_dict()
        inputs = last_day.groupby("inputs")["circuit_id"].nunique().to_dict()
        yield dg.Output(frame, output_name="load_forecast", metadata={
            "dagster/column_schema": frame_schema(frame, LOAD_FORECAST),
            "interval_level_pct": round(100 * CONFIG.interval_level),
            "circuits_by_method": dg.MetadataValue.json(methods),
            "circuits_by_inputs": dg.MetadataValue.json(inputs),
            "temperature": ("observed temperature of each circuit's zone (weather_observations)"
                            if has_weather else
                            "none: there is no weather_observations table, so every forecast is "
                            "made from load history alone (inputs = load)"),
            "model_state": state_text,
            "substituted_circuits": int(last_day.groupby("circuit_id")["substituted"].any().sum()),
            "notes": dg.MetadataValue.md(markdown_table(
                last_day[last_day["substituted"]].drop_duplicates("circuit_id")[
                    ["circuit_id", "method", "note"]], max_rows=20) or "none"),
            "preview": preview(last_day[["circuit_id", "target_ts", "load_mw", "lower_mw",
                                         "upper_mw", "method", "inputs"]]),
        })
    yield from results


def _audited(context: dg.AssetExecutionContext, audits: dict, scope: str
             ) -> Iterator[dg.AssetCheckResult]:
    """Judge the staged rows. A failed check yields the results and stops the step (naming the
    check) before anything is written; otherwise the results are returned, to be yielded after
    the outputs so that they attach to the new materializations."""
    results, refused = [], []
    for key, outcomes in audits.items():
        for name, outcome in outcomes.items():
            if dg.AssetCheckKey(key, name) in context.selected_asset_check_keys:
                results.append(check_result(name, outcome, asset_key=key))
            if not outcome.passed:
                refused.append(f"{key.to_user_string()} check '{name}' failed: {outcome.summary}")
    if refused:
        yield from results
        raise dg.Failure(
            description=f"{scope}: {'; '.join(refused)}. {NOTHING_WRITTEN}",
            allow_retries=False)
    return results


NOTHING_WRITTEN = "Nothing was written: the stored rows are as they were."


def _state_text(state_day, n_models: int, first, last, stored: bool) -> str:
    day_before = first - timedelta(days=1)
    if state_day is None:
        read = f"no model stored before {first}: every circuit was fitted from scratch"
    elif state_day == day_before:
        read = f"started from the models load_forecast_models stored for {state_day}"
    else:
        read = (f"started from the models load_forecast_models stored for {state_day}, the "
                f"latest before {first} ({day_before} has none)")
    if stored:
        return f"{read}; stores the {n_models} model(s) after {last}"
    return (f"{read}; load_forecast_models is not selected, so this run does not store the "
            f"models after {last} (materialize load_forecast_models for them)")


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
    check_specs=[dg.AssetCheckSpec(name, asset="load_forecast_backtest", blocking=True,
                                   description=text)
                 for name, text in backtest.BACKTEST_CHECKS.items()],
    group_name="forecasting", owners=OWNERS, kinds={"duckdb", "pandas"},
    partitions_def=daily_partitions, backfill_policy=DAILY_BACKFILL,
    pool=DUCKDB_POOL, retry_policy=TRANSIENT_RETRY, code_version="2",
    metadata={"partition_expr": "date", "schema": "scores"},
)
def load_forecast_backtest(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """How good the day-ahead forecasts of the last four weeks were, per circuit and overall:
    MAPE, RMSE and interval coverage against the previous-day and previous-week naive forecasts."""
    days = partition_days(context)
    rows, last, scored, unscored, numbers = [], None, [], [], {}
    with warehouse.connect() as con:
        stored = wh.table_exists(con, "load_forecast")
        first_stored = None
        if stored:
            first_stored = forecast_reads.first_forecast_issue(con)
        for day in days:
            # Forecasts issued on D-28 .. D-1 target D-27 .. D: every target is known by D's end.
            first_issue = pd.Timestamp(day) - pd.Timedelta(days=BACKTEST_DAYS)
            forecasts = pd.DataFrame()
            if stored:
                forecasts = forecast_reads.forecasts_issued(
                    con, backtest.SCORED_COLUMNS, first_issue.date(), day)
            if forecasts.empty:
                if first_stored is not None and first_stored < day:
                    # Forecasts were stored before the four weeks: the gap is missing input.
                    raise dg.Failure(
                        description=f"load_forecast_backtest {day}: no load_forecast issued "
                                    f"{first_issue.date()}..{day - timedelta(days=1)} to score "
                                    f"(forecasts are stored from {first_stored}): materialize "
                                    f"load_forecast for those days first. {NOTHING_WRITTEN}",
                        allow_retries=False)
                # The first days of forecasting have nothing to look back on yet: not an error.
                unscored.append(day)
                continue
            # The day's actuals: without them the newest targets would silently go unscored.
            require_inputs(con, "load_forecast_backtest", [day], {"feeder_load": "timestamp"})
            load = forecast_reads.feeder_load_between(
                con, first_issue - pd.Timedelta(days=8), pd.Timestamp(day) + pd.Timedelta(days=1))
            last = backtest.score(forecasts, load, CONFIG.interval_level)
            numbers[day.isoformat()] = _day_numbers(last.overall, len(last.origins))
            per = last.per_circuit.copy()
            overall = {k: v for k, v in last.overall.items() if k in per.columns}
            per = pd.concat([per, pd.DataFrame([{**overall, "circuit_id": "ALL"}])],
                            ignore_index=True)
            per.insert(0, "date", pd.Timestamp(day))
            rows.append(per)
            scored.append(day)
    frame = (pd.concat(rows, ignore_index=True) if rows else
             pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"),
                           "circuit_id": pd.Series(dtype=object)}))
    results = yield from _audited(context, {dg.AssetKey("load_forecast_backtest"):
                                            backtest.audit_backtest(frame, scored)},
                                  scope_of(days))
    if last is None:
        context.log.warning("no stored day-ahead forecasts issued in the four weeks before "
                            f"{days[-1]} to score yet")
        yield dg.Output(frame, metadata={
            "origins": 0, "note": "no forecasts to score yet (the start of forecast history)"})
        yield from results
        return
    biggest = last.forecasts.groupby("circuit_id")["actual_mw"].mean().idxmax()
    recent = last.forecasts[last.forecasts["target_ts"]
                            >= last.forecasts["target_ts"].max() - pd.Timedelta(days=7)]
    actuals = recent[["circuit_id", "target_ts", "actual_mw"]].rename(
        columns={"target_ts": "timestamp", "actual_mw": "load_mw"})
    # Each day's figures on its own partition (the Plots tab draws one point a day).
    per_partition(context, numbers)
    yield dg.Output(frame, metadata={
        "dagster/column_schema": frame_schema(frame),
        "interval_level_pct": round(100 * CONFIG.interval_level),
        "days_before_forecast_history": ", ".join(map(str, unscored)) or "none",
        "forecast_vs_actual": png_markdown(
            backtest.plot_forecast(recent, actuals, biggest),
            f"{biggest}: forecast, 90% interval and actual, last 7 days"),
        "per_circuit": dg.MetadataValue.md(markdown_table(
            last.per_circuit[["circuit_id", "mape", "mape_prev_day", "mape_prev_week",
                              "coverage", "skill_prev_day"]], max_rows=15)),
    })
    yield from results


def _day_numbers(overall: dict, origins: int) -> dict:
    """The fleet's figures of one day's backtest, named with their units."""
    return {"mape_pct": overall["mape"], "mape_prev_day_pct": overall["mape_prev_day"],
            "mape_prev_week_pct": overall["mape_prev_week"], "rmse_mw": overall["rmse"],
            "coverage_pct": overall["coverage"], "skill_vs_prev_day": overall["skill_prev_day"],
            "origins": origins}
