"""The one Definitions object of gridassets (`dagster ... -m gridassets.definitions`).

Each area of the graph (gridassets/defs/<area>/) lists its own assets, checks, sensors, schedules
and jobs in its __init__; this module only collects them.
"""

import dagster as dg

from gridassets.defs import features, fleet, forecasting, models, ops, raw, scores, storms
from gridassets.defs.resources import build_resources

AREAS = (fleet, raw, features, models, forecasting, scores, storms, ops)

defs = dg.Definitions(
    assets=[a for area in AREAS for a in area.assets],
    asset_checks=[c for area in AREAS for c in area.asset_checks],
    sensors=[s for area in AREAS for s in area.sensors],
    schedules=[s for area in AREAS for s in area.schedules],
    jobs=[j for area in AREAS for j in area.jobs],
    resources=build_resources(),
    # DuckDB has one writer anyway, and a process per step costs ~1.5 s on small machines.
    executor=dg.in_process_executor,
)
