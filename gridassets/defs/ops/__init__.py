"""Operations: run-failure alerts."""

import dagster as dg

from gridassets.defs.ops.sensors import run_failure_alerts

defs = dg.Definitions(sensors=[run_failure_alerts])
