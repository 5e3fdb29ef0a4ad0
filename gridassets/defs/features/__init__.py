"""Daily features computed in DuckDB."""

import dagster as dg

from gridassets.defs.features.assets import (
    circuit_exposure_features,
    transformer_daily_stats,
    transformer_health_features,
)

defs = dg.Definitions(
    assets=[transformer_daily_stats, transformer_health_features, circuit_exposure_features]
)
