"""Resources: settings read once from the environment, the warehouse, and the fleet's data source."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg
import duckdb
import pandas as pd

from gridassets.defs.config import GridSettings
from gridassets.defs.io_manager import WarehouseIOManager
from gridassets.domain import landing
from gridassets.domain.schemas import SPECS, TableSpec
from gridassets.settings import Settings
from gridassets.storage import backend

if TYPE_CHECKING:
    from gridassets.domain.fleet import FleetConfig, FleetSimulator


class Warehouse(dg.ConfigurableResource):
    """The warehouse every asset reads (GRIDASSETS_WAREHOUSE: the DuckDB file or the Delta lake).

    `connect()` yields a DuckDB connection on which every stored table is `schema.table`; writes
    go through the IO manager (`gridassets/storage/`), never through this connection."""

    settings: GridSettings

    @property
    def store(self) -> backend.Warehouse:
        return backend.open_warehouse(self.settings.resolve())

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.store.connect() as con:
            yield con


@functools.lru_cache(maxsize=4)
def _simulator(config: FleetConfig) -> FleetSimulator:
    from gridassets.domain.fleet import FleetSimulator

    return FleetSimulator(config)


@functools.lru_cache(maxsize=2)
def _synthetic_day(config: FleetConfig, day: date) -> dict[str, pd.DataFrame]:
    # The five raw assets of one day share their generation: in one run it happens once.
    return _simulator(config).raw_day(day)


class FleetSource(dg.ConfigurableResource):
    """Where fleet and raw data come from: the synthetic simulator or the landing folder."""

    settings: GridSettings

    def _config(self, s: Settings) -> FleetConfig:
        from gridassets.domain.fleet import FleetConfig

        return FleetConfig(seed=s.seed, n_circuits=s.n_circuits, n_transformers=s.n_transformers)

    def describe(self) -> str:
        s = self.settings.resolve()
        if s.source == "landing":
            return f"landing files in {s.landing_dir}"
        return (f"synthetic fleet (seed {s.seed}, {s.n_circuits} circuits, "
                f"{s.n_transformers} transformers)")

    def registry(self, table: str) -> pd.DataFrame:
        """circuits or transformers. Raises LandingError for a missing or malformed file."""
        s = self.settings.resolve()
        if s.source == "landing":
            return landing.read_registry(SPECS[table], s.landing_dir)
        sim = _simulator(self._config(s))
        return sim.circuits() if table == "circuits" else sim.transformers()

    def raw(self, spec: TableSpec, day: date, entities: int | None = None) -> pd.DataFrame:
        """One UTC day of a raw table. Raises LandingError for a missing or malformed file, or
        for a landing file with far more rows than `entities` (the registry's count of what the
        table covers) can produce in a day: it is refused before it is read whole."""
        s = self.settings.resolve()
        if s.source == "landing":
            limit = None if entities is None else landing.row_limit(spec, entities)
            read = landing.read_forecast if spec.valid_days else landing.read_daily
            return read(spec, s.landing_dir, day, max_rows=limit)
        return _synthetic_day(self._config(s), day)[spec.name].copy()

    def raw_so_far(self, spec: TableSpec, day: date, entities: int | None = None
                   ) -> pd.DataFrame | None:
        """What has arrived of a raw table's current day, for the intraday refresh: as `raw`,
        but None when the day's landing file is not there yet (a file that is there and bad still
        raises LandingError)."""
        s = self.settings.resolve()
        if s.source == "landing" and not landing.has_daily_file(s.landing_dir, spec, day):
            return None
        return self.raw(spec, day, entities)

    def zones(self) -> set[str]:
        """The forecast zones our circuits are in (read from the source, not the warehouse, so the
        alert sensor never contends for the DuckDB lock)."""
        return set(self.registry("circuits")["zone"].astype(str))

    def simulator(self) -> FleetSimulator | None:
        """The simulator behind synthetic mode (for evaluation against its ground truth)."""
        s = self.settings.resolve()
        return None if s.source == "landing" else _simulator(self._config(s))


def build_resources(settings: GridSettings | None = None) -> dict[str, Any]:
    """The resources of the graph, all reading one settings object (default: the environment)."""
    settings = settings or GridSettings()
    return {
        "settings": settings,
        "warehouse": Warehouse(settings=settings),
        "fleet": FleetSource(settings=settings),
        "io_manager": WarehouseIOManager(settings=settings),
    }
