"""Operations: run-failure alerts. Definitions of this area; definitions.py collects these lists."""

from gridassets.defs.ops.sensors import run_failure_alerts

assets: list = []
asset_checks: list = []
sensors: list = [run_failure_alerts]
schedules: list = []
jobs: list = []
