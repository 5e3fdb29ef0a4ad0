"""The settings resource: one object that every resource and asset resolves its settings from."""

from __future__ import annotations

import dagster as dg

from gridassets.settings import Settings


class GridSettings(dg.ConfigurableResource):
    """Deployment settings. Unset fields come from GRIDASSETS_* environment variables, then
    defaults."""

    source: str | None = None
    data_dir: str | None = None
    backend: str | None = None
    duckdb_path: str | None = None
    seed: int | None = None
    n_circuits: int | None = None
    n_transformers: int | None = None
    alerts_dir: str | None = None
    alert_webhook: str | None = None
    storm_state_max_age_days: int | None = None

    def resolve(self) -> Settings:
        return Settings.from_env(
            source=self.source, data_dir=self.data_dir, backend=self.backend,
            duckdb_path=self.duckdb_path, seed=self.seed, n_circuits=self.n_circuits, n_transformers=self.n_transformers,
            alerts_dir=self.alerts_dir, alert_webhook=self.alert_webhook,
            storm_state_max_age_days=self.storm_state_max_age_days,
        )
