"""Daily features computed in DuckDB."""

from gridassets.defs.features.assets import (
    circuit_exposure_features,
    transformer_daily_stats,
    transformer_health_features,
)

assets = [transformer_daily_stats, transformer_health_features, circuit_exposure_features]
asset_checks: list = []
sensors: list = []
schedules: list = []
jobs: list = []
