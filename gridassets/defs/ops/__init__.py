"""Operations: schedules and run-failure alerts."""

import dagster as dg

from gridassets.defs.ops.schedules import (
    daily_job,
    daily_schedule,
    fleet_job,
    fleet_schedule,
    weekly_models_job,
    weekly_schedule,
)
from gridassets.defs.ops.sensors import run_failure_alerts

defs = dg.Definitions(
    sensors=[run_failure_alerts],
    schedules=[fleet_schedule, daily_schedule, weekly_schedule],
    jobs=[fleet_job, daily_job, weekly_models_job],
)
