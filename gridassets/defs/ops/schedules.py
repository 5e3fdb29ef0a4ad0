"""Schedules that keep the graph current.

After each UTC day closes (and landing files have had time to arrive), one run materializes that
day's partition of the whole daily graph; the registry is refreshed just before it, and the weekly
models train early on Monday, after Sunday's data is in and before Monday's scores need them.
"""

import dagster as dg

from gridassets.defs.policies import OWNERS

DAILY_GROUPS = ("raw", "integrity", "features", "forecasting", "scores")

fleet_job = dg.define_asset_job(
    "fleet_registry", selection=dg.AssetSelection.groups("fleet"),
    description="Refresh the registry of circuits and transformers.",
)
daily_job = dg.define_asset_job(
    "daily_graph", selection=dg.AssetSelection.groups(*DAILY_GROUPS),
    description="One day of the daily graph: raw data, telemetry integrity, features, load "
                "forecast, scores and list.",
)
weekly_models_job = dg.define_asset_job(
    "weekly_models", selection=dg.AssetSelection.groups("models"),
    description="Train the week's models and decide whether they serve.",
)

fleet_schedule = dg.ScheduleDefinition(
    name="fleet_registry_daily", job=fleet_job, cron_schedule="0 1 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="01:00 UTC: the registry, before the day's graph reads it.",
)
daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_job, name="daily_graph_after_day_closes", hour_of_day=1, minute_of_hour=30,
    default_status=dg.DefaultScheduleStatus.RUNNING, owners=OWNERS,
    description="01:30 UTC: yesterday's partition of the daily graph.",
)
weekly_schedule = dg.build_schedule_from_partitioned_job(
    weekly_models_job, name="weekly_models_monday", day_of_week=1, hour_of_day=3,
    minute_of_hour=0, default_status=dg.DefaultScheduleStatus.RUNNING, owners=OWNERS,
    description="Monday 03:00 UTC, after Sunday's partition: the models of the new week.",
)
