"""Settings of a gridassets deployment, read from environment variables with defaults.

Every command (make targets, the Dagster CLI, the UI, tests) goes through `Settings.from_env`, so a user
can point any of them at another data folder. Nothing here reads the environment at import time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

SOURCES = ("synthetic", "landing")
# Where tables live: the embedded DuckDB file (one writer process at a time) or Delta Lake tables
# under <data dir>/lake that many processes write at once (see gridassets/storage/).
BACKENDS = ("duckdb", "delta")
# How runs execute: every step in the run's own process with the instance in .dagster_home
# (embedded), or steps on Celery workers, the instance in PostgreSQL and the Delta warehouse
# (scaleout: gridassets/scaleout/, deploy/scaleout/dagster.yaml).
MODES = ("embedded", "scaleout")

# name of the environment variable -> (field, parser)
ENV_VARS: dict[str, str] = {
    "GRIDASSETS_SOURCE": "source",
    "GRIDASSETS_DATA_DIR": "data_dir",
    "GRIDASSETS_WAREHOUSE": "backend",
    "GRIDASSETS_MODE": "mode",
    "GRIDASSETS_CELERY_BROKER": "celery_broker",
    "GRIDASSETS_CELERY_BACKEND": "celery_backend",
    "GRIDASSETS_CELERY_REDELIVER_S": "celery_redeliver_s",
    "GRIDASSETS_BACKFILL_DAYS": "backfill_days",
    "GRIDASSETS_DUCKDB": "duckdb_path",
    "GRIDASSETS_SEED": "seed",
    "GRIDASSETS_CIRCUITS": "n_circuits",
    "GRIDASSETS_TRANSFORMERS": "n_transformers",
    "GRIDASSETS_ALERTS_DIR": "alerts_dir",
    "GRIDASSETS_ALERT_WEBHOOK": "alert_webhook",
    "GRIDASSETS_STORM_STATE_MAX_AGE_DAYS": "storm_state_max_age_days",
    "GRIDASSETS_START_DATE": "start_date",
    "GRIDASSETS_STEP_PROCESSES": "step_processes",
    "GRIDASSETS_DUCKDB_MEMORY": "duckdb_memory",
}


_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?\s*([KMGT]i?B)", re.IGNORECASE)


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Paths are as given (relative paths are relative to the working folder)."""

    source: str = "synthetic"
    data_dir: Path = Path("data")
    backend: str = "duckdb"
    duckdb_path: Path | None = None
    seed: int = 7
    n_circuits: int = 40
    n_transformers: int = 2000
    alerts_dir: Path | None = None
    alert_webhook: str | None = None
    # How many days older than a storm's latest alert the circuit state may be before the storm
    # list says it is stale (it is still produced: planners need it either way).
    storm_state_max_age_days: int = 2
    # The first day of the daily partitions (and of the hourly and weekly ones): the earliest
    # history the graph can hold. The last daily partition is always yesterday (UTC).
    start_date: date = date(2024, 1, 1)
    # The most memory DuckDB takes for one process's warehouse queries; a join or sort beyond it
    # spills to `warehouse.duckdb.tmp` instead (a large utility's day of telemetry: 4.1 GB
    # unbounded, 2.2 GB at 2GB, 7 % slower). DuckDB's own default is 80 % of the machine.
    duckdb_memory: str = "2GB"
    mode: str = "embedded"
    # Scale-out only: the Celery broker and result store (Redis URLs), how long a step's task may
    # stay unacknowledged before the broker hands it to another worker (a worker that died with
    # it: longer than the slowest step, or a slow step would run twice), and how many days one run
    # of a backfill takes.
    celery_broker: str | None = None
    celery_backend: str | None = None
    celery_redeliver_s: int = 1800
    backfill_days: int = 4
    # Processes one step may share its per-circuit work among (the load forecast's circuits);
    # None: the machine's cores when embedded, 1 in scale-out (the workers share the machine).
    step_processes: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SettingsError(
                f"GRIDASSETS_MODE must be one of {', '.join(MODES)}; got {self.mode!r}"
            )
        if self.mode == "scaleout":
            if self.backend != "delta":
                raise SettingsError(
                    "GRIDASSETS_MODE=scaleout needs GRIDASSETS_WAREHOUSE=delta (many workers "
                    f"write at once; DuckDB allows one writer process); got {self.backend!r}")
            if not self.celery_broker:
                raise SettingsError(
                    "GRIDASSETS_MODE=scaleout needs GRIDASSETS_CELERY_BROKER, the Redis URL of the "
                    "Celery broker (e.g. redis://127.0.0.1:6379/0)")
        if self.celery_redeliver_s < 5:
            raise SettingsError("GRIDASSETS_CELERY_REDELIVER_S must be at least 5 (seconds); "
                                f"got {self.celery_redeliver_s}")
        if self.step_processes is not None and self.step_processes < 1:
            raise SettingsError("GRIDASSETS_STEP_PROCESSES must be at least 1; "
                                f"got {self.step_processes}")
        if self.backfill_days < 1:
            raise SettingsError(f"GRIDASSETS_BACKFILL_DAYS must be at least 1; got {self.backfill_days}")
        if self.source not in SOURCES:
            raise SettingsError(
                f"GRIDASSETS_SOURCE must be one of {', '.join(SOURCES)}; got {self.source!r}"
            )
        if self.backend not in BACKENDS:
            raise SettingsError(
                f"GRIDASSETS_WAREHOUSE must be one of {', '.join(BACKENDS)}; got {self.backend!r}"
            )
        if self.n_circuits < 1:
            raise SettingsError(f"GRIDASSETS_CIRCUITS must be at least 1; got {self.n_circuits}")
        if self.n_transformers < self.n_circuits:
            raise SettingsError(
                "GRIDASSETS_TRANSFORMERS must be at least GRIDASSETS_CIRCUITS "
                f"({self.n_circuits}); got {self.n_transformers}"
            )
        if not _MEMORY.fullmatch(self.duckdb_memory.strip()):
            raise SettingsError("GRIDASSETS_DUCKDB_MEMORY must be an amount of memory such as "
                                f"2GB, 1500MB or 8GiB; got {self.duckdb_memory!r}")
        if self.storm_state_max_age_days < 0:
            raise SettingsError("GRIDASSETS_STORM_STATE_MAX_AGE_DAYS must be 0 or more (days); "
                                f"got {self.storm_state_max_age_days}")

    @property
    def processes(self) -> int:
        """How many processes a step may use (GRIDASSETS_STEP_PROCESSES, or its default)."""
        if self.step_processes is not None:
            return self.step_processes
        return 1 if self.scaleout else max(1, len(os.sched_getaffinity(0)))

    @property
    def warehouse(self) -> Path:
        """The DuckDB file: GRIDASSETS_DUCKDB, else <data dir>/warehouse.duckdb."""
        return self.duckdb_path or self.data_dir / "warehouse.duckdb"

    @property
    def lake_dir(self) -> Path:
        """The Delta warehouse (GRIDASSETS_WAREHOUSE=delta): <data dir>/lake/<schema>/<table>."""
        return self.data_dir / "lake"

    @property
    def warehouse_location(self) -> Path:
        """What the chosen backend stores tables in: the DuckDB file or the lake folder."""
        return self.lake_dir if self.backend == "delta" else self.warehouse

    @property
    def scaleout(self) -> bool:
        return self.mode == "scaleout"

    @property
    def celery_results(self) -> str | None:
        """The Celery result store: GRIDASSETS_CELERY_BACKEND, else the broker's Redis."""
        return self.celery_backend or self.celery_broker

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def alerts_root(self) -> Path:
        """Holds inbox/, processed/ and rejected/ (GRIDASSETS_ALERTS_DIR, else <data dir>/alerts)."""
        return self.alerts_dir or self.data_dir / "alerts"

    @property
    def ops_dir(self) -> Path:
        return self.data_dir / "ops"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `environ` (default: the process environment), then explicit overrides.

        Raises SettingsError naming the variable when a value cannot be parsed.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var, field in ENV_VARS.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            values[field] = _parse(var, field, raw.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        # Scale-out runs on the Delta warehouse; it need not be named twice.
        if values.get("mode") == "scaleout":
            values.setdefault("backend", "delta")
        for field in ("data_dir", "duckdb_path", "alerts_dir"):
            if values.get(field) is not None:
                values[field] = Path(values[field])
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _parse(var: str, field: str, raw: str) -> Any:
    if field in ("seed", "n_circuits", "n_transformers", "storm_state_max_age_days",
                 "celery_redeliver_s", "backfill_days", "step_processes"):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{var} must be an integer; got {raw!r}") from None
    if field == "start_date":
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise SettingsError(f"{var} must be a date (YYYY-MM-DD); got {raw!r}") from None
    return raw
