"""The warehouse behind the storage layer: the embedded DuckDB file or the Delta Lake folder.

`open_warehouse(settings)` gives the one chosen by `GRIDASSETS_WAREHOUSE`. Both answer the same
four questions, so nothing above this module knows which is in use:

- `connect()`: a DuckDB connection on which every stored table is a relation named
  `schema.table`. On the DuckDB file these are its tables; on Delta they are views over the
  current snapshot of each table, read through its Delta log when the connection opens (a later
  commit by another process is seen by the next connection). Reads are SQL on this connection.
- `publish(target, frame, ...)`: the write-audit-publish write of one table slice (see
  `gridassets/storage/publish.py`): the audited rows replace exactly the partitions written, in one
  DuckDB transaction or one Delta commit, and the publish is recorded for reconciliation.
- `insert_missing(table, frame, key)`: add the rows whose key the table lacks (an ops table that
  several writers append to: the run-failure alerts).
- `published_by_run(run_id)`: what a run committed, from the publish record that its commits carry.

Writes go through these methods only: a write on the connection of the Delta backend would land in
a process's memory, so its relations are views and such a write fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import duckdb
import pandas as pd

from gridassets import warehouse
from gridassets.settings import Settings
from gridassets.storage import publish as wap
from gridassets.storage import reconcile


class Warehouse(Protocol):
    kind: str
    location: Path

    def connect(self, read_only: bool = False
                ) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...

    def publish(self, target: wap.Slice, frame: pd.DataFrame, *, asset: str, run_id: str,
                log: Callable[[str], None] | None = None) -> dict[str, int]: ...

    def insert_missing(self, table: str, frame: pd.DataFrame, key: str) -> int: ...

    def published_by_run(self, run_id: str) -> list[reconcile.Published]: ...

    def tables(self) -> list[str]: ...

    def exists(self) -> bool: ...

    def probe(self) -> None: ...


class DuckDBWarehouse:
    """The embedded file: one writer process at a time (the `duckdb` pool queues them)."""

    kind = "duckdb"

    def __init__(self, path: Path | str, lock_attempts: int = warehouse.LOCK_ATTEMPTS,
                 memory_limit: str | None = None) -> None:
        self.location = Path(path)
        self.lock_attempts = lock_attempts
        self.memory_limit = memory_limit

    def exists(self) -> bool:
        return self.location.exists()

    def probe(self) -> None:
        """Raise WarehouseCorruptError when the file is damaged: the run-start probe, which checks
        a big file's data blocks a slice per run (see `storage/health.py`)."""
        from gridassets.storage.health import RUN_PROBE_BYTES, probe_warehouse

        probe_warehouse(self.location, budget_bytes=RUN_PROBE_BYTES)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.location, read_only=read_only,
                               attempts=self.lock_attempts) as con:
            if self.memory_limit:
                # a setting of the process's DuckDB instance of the file, the same for every
                # connection that comes through here
                con.execute("set memory_limit = ?", [self.memory_limit])
            yield con

    def publish(self, target: wap.Slice, frame: pd.DataFrame, *, asset: str, run_id: str,
                log: Callable[[str], None] | None = None) -> dict[str, int]:
        with self.connect() as con:
            return wap.publish(con, target, frame, asset=asset, run_id=run_id, log=log)

    def insert_missing(self, table: str, frame: pd.DataFrame, key: str) -> int:
        with self.connect() as con:
            present: set = set()
            if warehouse.table_exists(con, table):
                present = {r for (r,) in con.execute(
                    f'select "{key}" from {warehouse.qualified(table)}').fetchall()}  # sql-identifier: a key column named in code
            missing = frame[~frame[key].isin(present)]
            if missing.empty:
                return 0
            return warehouse.replace_rows(con, table, missing, where=f'list_contains(?, "{key}")',
                                          params=[list(missing[key])])

    def published_by_run(self, run_id: str) -> list[reconcile.Published]:
        with warehouse.connect(self.location, read_only=True, attempts=1) as con:
            return reconcile.published_by_run(con, run_id)

    def tables(self) -> list[str]:
        if not self.exists():
            return []
        with self.connect(read_only=True) as con:
            return [f"{s}.{t}" for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_type = 'BASE TABLE' order by 1, 2").fetchall()]


def open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse `settings` choose (GRIDASSETS_WAREHOUSE)."""
    if settings.backend == "delta":
        from gridassets.storage.delta import DeltaWarehouse

        return DeltaWarehouse(settings.lake_dir)
    return DuckDBWarehouse(settings.warehouse, memory_limit=settings.duckdb_memory)
