"""The intraday refresh of the load forecast: every hour, the next 24 hours per circuit.

Partition H is an hour (UTC), materialized once it has closed; the hourly schedule runs it ten
minutes later. The day-ahead models stored by `load_forecast_models` are reused with their
parameters (a Kalman filter over the last days, no refit: `gridassets.domain.intraday`), so an hour
costs milliseconds per circuit. Load and temperature come from the warehouse for the days the daily
graph has stored and from the source (the simulator, or what has landed of today's files) for the
last two days before that, cut at the end of hour H.
"""

from datetime import timedelta

import dagster as dg
import pandas as pd

from gridassets import warehouse as wh
from gridassets.defs.audit import audited_output, require_inputs
from gridassets.defs.metadata import frame_schema, markdown_table, preview
from gridassets.defs.partitions import hourly_partitions
from gridassets.defs.policies import DUCKDB_POOL, FORECAST_QUEUE, OWNERS, TRANSIENT_RETRY
from gridassets.defs.resources import FleetSource, Warehouse
from gridassets.domain import intraday
from gridassets.domain.schemas import SPECS
from gridassets.storage import forecasting as forecast_reads

# How old the day-ahead models may be: those of the day before the cutoff's day, or of the day
# before that while the daily graph (01:30 UTC) has not yet stored yesterday's.
MAX_MODEL_AGE_DAYS = 2
SAME_DAY = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)
HISTORY = dg.TimeWindowPartitionMapping(start_offset=-intraday.WINDOW_DAYS,
                                        allow_nonexistent_upstream_partitions=True)
DAYS_BEFORE = dg.TimeWindowPartitionMapping(start_offset=-MAX_MODEL_AGE_DAYS, end_offset=-1,
                                            allow_nonexistent_upstream_partitions=True)


@dg.asset(
    deps=[dg.AssetDep("feeder_load", partition_mapping=HISTORY),
          dg.AssetDep("weather_observations", partition_mapping=HISTORY),
          dg.AssetDep("weather_forecasts", partition_mapping=DAYS_BEFORE),
          dg.AssetDep("load_forecast_models", partition_mapping=DAYS_BEFORE), "circuits"],
    check_specs=[dg.AssetCheckSpec(name, asset="intraday_load_forecast", blocking=True,
                                   description=text) for name, text in intraday.CHECKS.items()],
    group_name="intraday", owners=OWNERS, kinds={"statsmodels", "duckdb"},
    partitions_def=hourly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DUCKDB_POOL, op_tags=FORECAST_QUEUE, retry_policy=TRANSIENT_RETRY, code_version="1",
    metadata={"partition_expr": "cutoff_ts", "schema": "scores"},
)
def intraday_load_forecast(context: dg.AssetExecutionContext, warehouse: Warehouse,
                           fleet: FleetSource):
    """The next 24 hours of load per circuit, re-forecast after every hour from the readings up to
    that hour, with a 90% interval: the day-ahead models' parameters, updated by a Kalman filter."""
    window = context.partition_time_window
    cutoffs = list(pd.date_range(intraday.cutoff_of(window.start),
                                 intraday.cutoff_of(window.end) - pd.Timedelta(hours=1), freq="h"))
    scope = (str(cutoffs[0]) if len(cutoffs) == 1 else f"{cutoffs[0]}..{cutoffs[-1]}")
    first_day, last_day = cutoffs[0].date(), cutoffs[-1].date()
    since = cutoffs[0] - pd.Timedelta(days=intraday.WINDOW_DAYS)
    until = cutoffs[-1] + pd.Timedelta(hours=1)
    with warehouse.connect() as con:
        fitted_by_day = {}
        for day in sorted({c.date() for c in cutoffs}):
            fitted, models_of = forecast_reads.intraday_models(con, pd.Timestamp(day))
            if models_of is None or (day - models_of).days > MAX_MODEL_AGE_DAYS:
                latest = "none are stored" if models_of is None else f"the latest are of {models_of}"
                raise dg.Failure(
                    description=f"intraday_load_forecast {scope}: it updates the day-ahead models "
                                f"of the day before {day} and {latest}: materialize "
                                f"load_forecast_models through {day - timedelta(days=1)} first "
                                "(the daily graph). Nothing was written.",
                    allow_retries=False)
            fitted_by_day[day] = (fitted, models_of)
        # The stored days before the last two must all be there: the filter and the lags use them.
        stored_needed = [first_day - timedelta(days=d)
                         for d in range(intraday.FILTER_DAYS, MAX_MODEL_AGE_DAYS - 1, -1)]
        require_inputs(con, "intraday_load_forecast", stored_needed,
                       {"circuits": None, "feeder_load": "timestamp"})
        circuits = forecast_reads.circuit_zones(con)
        load = forecast_reads.feeder_load_between(con, since, until)
        has_weather = wh.table_exists(con, "weather_observations")
        temperature = (forecast_reads.circuit_temperature_between(con, since, until)
                       if has_weather else None)
        stored = forecast_reads.stored_load_days(con, first_day - timedelta(days=1), last_day)
        forecasted = {day: forecast_reads.latest_forecast_temperature(
            con, since, pd.Timestamp(day) + pd.Timedelta(days=2), models_of)
            for day, (_, models_of) in fitted_by_day.items()}
    # The last days the daily graph has not stored yet: what the source has of them so far.
    arrived, waiting = [], []
    for day in pd.date_range(first_day - timedelta(days=1), last_day).date:
        if day in stored:
            continue
        frames = {name: fleet.raw_so_far(SPECS[name], day)
                  for name in ("feeder_load", "weather_observations")}
        if frames["feeder_load"] is None:
            waiting.append(day)
            continue
        arrived.append(day)
        load = pd.concat([load, _load_rows(frames["feeder_load"], "load_mw")], ignore_index=True)
        if temperature is not None and frames["weather_observations"] is not None:
            temperature = pd.concat([temperature, _by_circuit(frames["weather_observations"],
                                                              circuits)], ignore_index=True)
    ids = sorted(circuits["circuit_id"].astype(str))
    frames, outcomes = [], {}
    for cutoff in cutoffs:
        fitted, models_of = fitted_by_day[cutoff.date()]
        frame = intraday.forecast_intraday(
            load, cutoff, fitted, temperature=temperature,
            forecast_temperature=forecasted[cutoff.date()], models_of=models_of, circuits=ids)
        for name, outcome in intraday.audit(frame, ids, cutoff).items():
            if name not in outcomes or not outcome.passed:
                outcomes[name] = outcome
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    last = frame[frame["cutoff_ts"] == cutoffs[-1]]
    methods = last.groupby("method")["circuit_id"].nunique().to_dict()
    notes = last[last["note"] != ""].drop_duplicates("circuit_id")[["circuit_id", "method", "note"]]
    models_of = sorted({str(m) for _, m in fitted_by_day.values()})
    yield from audited_output("intraday_load_forecast", frame, outcomes, scope=scope, metadata={
        "dagster/column_schema": frame_schema(frame),
        "models_of": ", ".join(models_of),
        "circuits_by_method": dg.MetadataValue.json(methods),
        "next_hour_fleet_mw": round(float(last.loc[last["horizon_h"] == 1, "load_mw"].sum()), 1),
        "read_from_source": ", ".join(map(str, arrived)) or "none (all from the warehouse)",
        "not_arrived": ", ".join(map(str, waiting)) or "none",
        "notes": dg.MetadataValue.md("none" if notes.empty else markdown_table(notes, max_rows=20)),
        "preview": preview(last[["circuit_id", "target_ts", "horizon_h", "load_mw", "lower_mw",
                                 "upper_mw", "method"]]),
    })


def _load_rows(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """The columns the forecast reads (the warehouse read's shape)."""
    return frame[["circuit_id", "timestamp", value]]


def _by_circuit(weather: pd.DataFrame, circuits: pd.DataFrame) -> pd.DataFrame:
    """The zone's observed temperature per circuit (the shape of the warehouse read)."""
    return circuits.merge(weather[["zone", "timestamp", "temp_c"]], on="zone")[
        ["circuit_id", "timestamp", "temp_c"]]


intraday_job = dg.define_asset_job(
    "intraday_refresh", selection=[intraday_load_forecast],
    description="Re-forecast the next 24 hours of every circuit from the readings up to the last "
                "closed hour.")
intraday_schedule = dg.build_schedule_from_partitioned_job(
    intraday_job, name="intraday_load_forecast_hourly", minute_of_hour=10,
    default_status=dg.DefaultScheduleStatus.STOPPED, owners=OWNERS,
    description="Ten minutes past every hour: the hour that just closed. Off until switched on "
                "(it needs the daily graph's models of the day before).")
