"""Daily risk scores, the prioritized circuit list and the work orders it gives crews."""

import dagster as dg

from gridassets.defs.scores.assets import (
    circuit_outage_risk,
    prioritized_circuits,
    transformer_risk,
    vegetation_risk,
)
from gridassets.defs.scores.work_orders import work_orders

defs = dg.Definitions(
    assets=[transformer_risk, circuit_outage_risk, vegetation_risk, prioritized_circuits,
            work_orders]
)
