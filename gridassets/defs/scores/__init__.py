"""Daily risk scores and the prioritized circuit list."""

from gridassets.defs.scores.assets import (
    circuit_outage_risk,
    prioritized_circuits,
    transformer_risk,
    vegetation_risk,
)

assets = [transformer_risk, circuit_outage_risk, vegetation_risk, prioritized_circuits]
asset_checks: list = []
sensors: list = []
schedules: list = []
jobs: list = []
