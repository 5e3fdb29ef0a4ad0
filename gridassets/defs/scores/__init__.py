"""Daily risk scores and the prioritized circuit list."""

import dagster as dg

from gridassets.defs.scores.assets import (
    circuit_outage_risk,
    prioritized_circuits,
    transformer_risk,
    vegetation_risk,
)

defs = dg.Definitions(
    assets=[transformer_risk, circuit_outage_risk, vegetation_risk, prioritized_circuits]
)
