"""Materialize parts of the graph from Python, exactly as `dagster asset materialize` does.

Runs go to the Dagster instance of DAGSTER_HOME (the project's `.dagster_home` under make), so
they show in the UI's run history and lineage like runs started there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from gridassets.defs.ops import recovery

REPO_ROOT = Path(__file__).resolve().parent.parent


def instance() -> dg.DagsterInstance:
    """The instance of DAGSTER_HOME; the project's own `.dagster_home` when that is unset."""
    if not os.environ.get("DAGSTER_HOME"):
        home = REPO_ROOT / ".dagster_home"
        if (home / "dagster.yaml").is_file():
            os.environ["DAGSTER_HOME"] = str(home)
        else:
            return dg.DagsterInstance.ephemeral()
    return dg.DagsterInstance.get()


def materialize(
    defs: dg.Definitions,
    select: str | Sequence[str],
    *,
    partition: str | None = None,
    start: str | None = None,
    end: str | None = None,
    dagster_instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    """Materialize the selected assets for one partition, a range in one run, or unpartitioned.

    `log_level` is the console's; the run's full event log is stored in the instance either way."""
    selection = dg.AssetSelection.from_coercible(
        select.split(",") if isinstance(select, str) else list(select)
    )
    repo = defs.get_repository_def()
    keys = selection.resolve(repo.asset_graph)
    job = repo.get_implicit_job_def_for_assets(keys)
    if job is None:
        raise ValueError(f"{select}: the selected assets do not share one partitions definition")
    tags: dict[str, str] = {}
    if start is not None:
        tags = {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end or start}
    # Like job.execute_in_process, but with the graph's run worker executor (which Dagster's
    # execute_in_process would replace): the run is tagged with this process, dead runs are reaped.
    return recovery.execute_in_process(
        job,
        instance=dagster_instance or instance(),
        asset_selection=list(keys),
        partition_key=partition,
        tags=tags,
        raise_on_error=raise_on_error,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )


def chunks(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """Split [start, end] (inclusive) into consecutive ranges of at most `days` days."""
    out = []
    first = start
    while first <= end:
        last = min(first + timedelta(days=days - 1), end)
        out.append((first, last))
        first = last + timedelta(days=1)
    return out


FLEET = "circuits,transformers"
RAW = ("transformer_telemetry,feeder_load,weather_observations,outage_events,transformer_failures,"
       "weather_forecasts")
# Telemetry integrity comes first: features leave out the readings it quarantines.
SIGNALS = "telemetry_signals"
JUDGED_FEATURES = ("telemetry_integrity,transformer_daily_stats,transformer_health_features,"
                   "circuit_exposure_features")
FEATURES = f"{SIGNALS},{JUDGED_FEATURES}"
INTEGRITY_MODEL = "integrity_model"
MODELS = f"maintenance_model,outage_model,{INTEGRITY_MODEL}"
# The anomaly model of a week learns from the signals of the 5 weeks before it.
INTEGRITY_MODEL_HISTORY_DAYS = 35
SCORES = ("load_forecast,load_forecast_models,load_forecast_backtest,transformer_risk,"
          "circuit_outage_risk,vegetation_risk,prioritized_circuits,work_orders")
# History is built in chunks so that memory stays bounded whatever the window and the fleet: a run
# covers at most CHUNK_DAYS days and about CHUNK_DEVICE_DAYS transformer-days (31 days at 20,000
# transformers, 7 at 200,000).
CHUNK_DAYS = 31
CHUNK_DEVICE_DAYS = 1_400_000


def chunk_days(transformers: int | None = None) -> int:
    """Days per run for a fleet of `transformers` (the configured fleet by default)."""
    if transformers is None:
        from gridassets.settings import Settings

        transformers = Settings.from_env().n_transformers
    return max(1, min(CHUNK_DAYS, CHUNK_DEVICE_DAYS // max(transformers, 1)))


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def build_daily_graph(defs: dg.Definitions, start: date, end: date, score_start: date,
                      dagster_instance: dg.DagsterInstance, on_step=None) -> None:
    """Materialize the whole daily graph: fleet, raw and features over [start, end], the weekly
    models of the weeks from score_start to end, and the scores over [score_start, end].

    `on_step(label, seconds)` is called after each run."""
    import time

    def step(label: str, select: str, **kw) -> None:
        t0 = time.monotonic()
        materialize(defs, select, dagster_instance=dagster_instance, log_level="WARNING", **kw)
        if on_step:
            on_step(label, time.monotonic() - t0)

    step("fleet registry", FLEET)
    per_run = chunk_days()
    for group, select in (("raw data", RAW), ("telemetry signals", SIGNALS)):
        for first, last in chunks(start, end, per_run):
            step(f"{group} {first}..{last}", select, start=first.isoformat(), end=last.isoformat())
    # The integrity verdicts of the history already have the anomaly model where one can be
    # trained (the first weeks are judged by the rules alone).
    first_week = monday(start + timedelta(days=INTEGRITY_MODEL_HISTORY_DAYS + 6))
    if first_week <= monday(end):
        step(f"integrity model, weeks {first_week}..{monday(end)}", INTEGRITY_MODEL,
             start=first_week.isoformat(), end=monday(end).isoformat())
    for first, last in chunks(start, end, per_run):
        step(f"integrity and features {first}..{last}", JUDGED_FEATURES, start=first.isoformat(),
             end=last.isoformat())
    step(f"models, weeks {monday(score_start)}..{monday(end)}", "maintenance_model,outage_model",
         start=monday(score_start).isoformat(), end=monday(end).isoformat())
    step(f"scores {score_start}..{end}", SCORES, start=score_start.isoformat(), end=end.isoformat())
