"""Operations: schedules, run-failure alerts, recovery from runs whose process died, and the
warehouse's upkeep."""

import dagster as dg

from gridassets.defs.ops.schedules import (
    daily_job,
    daily_schedule,
    fleet_job,
    fleet_schedule,
    weekly_models_job,
    weekly_schedule,
)
from gridassets.defs.ops.maintenance import maintenance_schedule, warehouse_maintenance
from gridassets.defs.ops.recovery import dead_run_reaper
from gridassets.defs.ops.sensors import run_failure_alerts

defs = dg.Definitions(
    sensors=[run_failure_alerts, dead_run_reaper],
    schedules=[fleet_schedule, daily_schedule, weekly_schedule, maintenance_schedule],
    jobs=[fleet_job, daily_job, weekly_models_job, warehouse_maintenance],
)
