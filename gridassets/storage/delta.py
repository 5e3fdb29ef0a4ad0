"""The Delta Lake warehouse: one Delta table per asset under `<lake>/<schema>/<table>`.

Many processes write it at once. A partitioned table carries one extra column, `_partition`, the
Dagster partition key of each row (the day, the week, the storm), and is partitioned by it in
Delta; the views that readers see leave it out, so columns, their order and their types are those
of the DuckDB backend. Writing a slice (see `publish`) is one Delta commit:

- the staged rows are audited in an in-memory DuckDB first, exactly as on the DuckDB backend
  (rows outside the partitions written are refused; values are cast to the stored column types,
  a value that does not cast fails; a column the table lacks is added);
- the commit overwrites with the predicate `_partition in (<the keys written>)`: it replaces
  exactly those partitions, and commits of other partitions by other processes go in beside it
  (delta-rs rebases a commit over ones that touched other files);
- a concurrent commit to the same partition is a conflict that delta-rs detects: the write is
  tried again from a fresh snapshot (the latest write replaces the partition, never both), and
  after `CONFLICT_ATTEMPTS` it fails with `PublishConflict`, naming the table and partitions;
- the commit carries its publish record (`gridassets.run_id`, `gridassets.asset` and the rows per
  partition key) in its commit info, atomically with the rows, which is what reconciliation reads.

A writer killed mid-write leaves the table at its last version (the files it wrote and never
committed are removed by `vacuum`, the maintenance job).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb
import pandas as pd
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from gridassets import warehouse
from gridassets.storage import publish as wap
from gridassets.storage import reconcile

PARTITION = "_partition"
CONFLICT_ATTEMPTS = 8
CONFLICT_BASE_DELAY_S = 0.1
# How far back in a table's history a dead run's commits are looked for (the reconciler runs
# within a minute of a death; a busy table commits a few times a minute).
HISTORY_DEPTH = 500
RUN_KEY, ASSET_KEY, ROWS_KEY = "gridassets.run_id", "gridassets.asset", "gridassets.rows"


class LakeDamagedError(warehouse.WarehouseError):
    """A Delta table's log does not load, or names a data file that is gone."""


class PublishConflict(wap.PublishRefused):
    """Another process kept committing the same partitions; nothing of this write was committed."""


class DeltaWarehouse:
    kind = "delta"

    def __init__(self, root: Path | str) -> None:
        self.location = Path(root)

    # --- where tables are ---------------------------------------------------------------------
    def path_of(self, schema: str, table: str) -> Path:
        return self.location / schema / table

    def exists(self) -> bool:
        return bool(self.table_paths())

    def table_paths(self) -> list[tuple[str, str, Path]]:
        """(schema, table, folder) of every Delta table of the lake."""
        if not self.location.is_dir():
            return []
        return [(log.parent.parent.name, log.parent.name, log.parent)
                for log in sorted(self.location.glob("*/*/_delta_log")) if log.is_dir()]

    def tables(self) -> list[str]:
        return [f"{s}.{t}" for s, t, _ in self.table_paths()]

    def probe(self) -> None:
        """Raise LakeDamagedError, naming the table, when a table's log does not load or its
        current snapshot names a data file that is missing (reading it would fail mid-step)."""
        for schema, name, path in self.table_paths():
            try:
                files = DeltaTable(str(path)).file_uris()
            except Exception as exc:  # noqa: BLE001 - delta-rs raises several kinds for a bad log
                raise LakeDamagedError(
                    f"The Delta table {schema}.{name} at {path} cannot be loaded ({exc}). Its "
                    "log (_delta_log) is damaged: restore the folder from a backup or rebuild the "
                    "table by materializing it again after moving the folder aside.", path) from exc
            missing = [f for f in files if not Path(local_path(f)).exists()]
            if missing:
                raise LakeDamagedError(
                    f"The Delta table {schema}.{name} at {path} names {len(missing)} data file(s) "
                    f"that are gone (first: {missing[0]}): restore them from a backup, or move the "
                    "table's folder aside and materialize it again.", path)

    def backup(self, dest: Path) -> int:
        """Copy the lake to `dest` (which must not exist) while writers go on; returns the tables.

        Per table the log is copied before the data files: data files are written before the
        commit that names them and never change, so every file the copied log names is copied
        too (a file committed later is an orphan in the copy, which vacuum removes)."""
        import shutil

        self.probe()
        if dest.exists():
            raise FileExistsError(f"{dest} exists: choose a new folder")
        tables = self.table_paths()
        for schema, name, path in tables:
            target = dest / schema / name
            shutil.copytree(path / "_delta_log", target / "_delta_log")
            shutil.copytree(path, target, ignore=shutil.ignore_patterns("_delta_log"),
                            dirs_exist_ok=True)
        return len(tables)

    def table(self, schema: str, table: str) -> DeltaTable | None:
        try:
            return DeltaTable(str(self.path_of(schema, table)))
        except TableNotFoundError:
            return None

    # --- reading --------------------------------------------------------------------------------
    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection with a view `schema.table` over every table's current snapshot.

        The views live in one in-memory database per process and lake (`_Reader`): opening a
        connection reads only the log entries committed since the last one and rebuilds the
        views of the tables that changed. While another connection of the process is open its
        views are left as they are (its reads stay on one snapshot) and this one gets a
        database of its own."""
        reader = _reader(self.location)
        con, shared = reader.open(self.table_paths())
        try:
            yield con
        finally:
            reader.close(con, shared)

    # --- writing --------------------------------------------------------------------------------
    def publish(self, target: wap.Slice, frame: pd.DataFrame, *, asset: str, run_id: str,
                log: Callable[[str], None] | None = None) -> dict[str, int]:
        frame = warehouse.normalize_frame(frame)
        path = self.path_of(target.schema, target.table)
        with duckdb.connect() as con:
            con.register(wap.STAGED, frame)
            untyped = not wap.is_temporal(con, wap.STAGED, target)
            if target.column is not None:
                wap.refuse_rows_outside(con, target, untyped)
            counts = wap.rows_per_key(con, target, len(frame), untyped)
            metadata = {RUN_KEY: run_id, ASSET_KEY: asset, ROWS_KEY: json.dumps(counts)}
            partitioned = target.column is not None
            for attempt in range(1, CONFLICT_ATTEMPTS + 1):
                stored = self.table(target.schema, target.table)
                select, params, added = _aligned(con, target, stored, frame, log, untyped)
                # The predicate even when there was no table: if another process creates it
                # before this commit, an overwrite without one would delete its partitions.
                predicate = _predicate(target) if partitioned else None
                if added and predicate is not None:
                    # A new column: every stored partition is rewritten in this commit, so that
                    # every live file has the full schema (see `register`). Rare: a new code
                    # version. Its predicate names the partitions it read: a partition another
                    # process adds meanwhile is not deleted, and one it replaces meanwhile is a
                    # conflict (both remove its file), so this write is redone on top of it.
                    rest, rest_params, stored_keys = _rest_of_table(con, target, stored, added)
                    select = f"{rest} union all {select}"
                    params = [*rest_params, *params]
                    predicate = _predicate(target, extra=stored_keys)
                data = con.sql(select, params=params).to_arrow_reader()
                try:
                    # The table object read above, not its path: the commit is checked for
                    # conflicts against everything committed since the snapshot this write read.
                    write_deltalake(
                        stored if stored is not None else str(path), data, mode="overwrite",
                        predicate=predicate,
                        partition_by=[PARTITION] if partitioned and stored is None else None,
                        schema_mode="merge" if stored is not None else None,
                        commit_properties=CommitProperties(custom_metadata=metadata))
                    return counts
                except CommitFailedError as exc:
                    if attempt == CONFLICT_ATTEMPTS:
                        raise PublishConflict(
                            f"{target.name} {', '.join(target.partition_keys) or '(whole table)'}"
                            f": other processes committed the same partitions {attempt} times "
                            f"while this write was being committed ({exc}); nothing of it was "
                            "committed") from exc
                    time.sleep(random.uniform(0, CONFLICT_BASE_DELAY_S * 2 ** attempt))
        raise AssertionError("unreachable")

    def insert_missing(self, table: str, frame: pd.DataFrame, key: str) -> int:
        """Merge: rows whose `key` the table lacks are inserted, in one commit."""
        schema = warehouse.SCHEMA_OF[table]
        frame = warehouse.normalize_frame(frame)
        if frame.empty:
            return 0
        with duckdb.connect() as con:
            con.register(wap.STAGED, frame)
            for attempt in range(1, CONFLICT_ATTEMPTS + 1):
                stored = self.table(schema, table)
                select, params, _ = _aligned(con, wap.Slice(schema, table), stored, frame, None,
                                             False)
                data = con.sql(select, params=params).to_arrow_table()
                try:
                    if stored is None:
                        # Append, not overwrite: a table another process created meanwhile keeps
                        # its rows (at worst a run's alert appears twice; never one lost).
                        write_deltalake(str(self.path_of(schema, table)), data, mode="append")
                        return len(frame)
                    result = (stored.merge(data, predicate=f't."{key}" = s."{key}"',
                                           source_alias="s", target_alias="t")
                              .when_not_matched_insert_all().execute())
                    return int(result.get("num_target_rows_inserted", 0))
                except CommitFailedError:
                    if attempt == CONFLICT_ATTEMPTS:
                        raise
                    time.sleep(random.uniform(0, CONFLICT_BASE_DELAY_S * 2 ** attempt))
        raise AssertionError("unreachable")

    # --- what runs committed ------------------------------------------------------------------
    def publish_log(self, depth: int = HISTORY_DEPTH) -> pd.DataFrame:
        """Every recent publish, from the tables' commit info: asset, partition_key, run_id,
        rows, published_at (the shape of the DuckDB backend's `ops.partition_publishes`)."""
        rows = []
        for _, _, path in self.table_paths():
            for commit in DeltaTable(str(path)).history(depth):
                if RUN_KEY not in commit:
                    continue
                at = datetime.utcfromtimestamp(commit["timestamp"] / 1000)
                for key, n in json.loads(commit.get(ROWS_KEY) or "{}").items():
                    rows.append((commit[ASSET_KEY], key, commit[RUN_KEY], int(n), at))
        return pd.DataFrame(rows, columns=["asset", "partition_key", "run_id", "rows",
                                           "published_at"])

    def published_by_run(self, run_id: str) -> list[reconcile.Published]:
        log = self.publish_log()
        with duckdb.connect() as con:
            con.execute(f"create schema {reconcile.PUBLISHES_SCHEMA}")
            con.register("_publishes", log)
            con.execute(f"create table {reconcile.PUBLISHES_SCHEMA}.{reconcile.PUBLISHES_TABLE} "
                        "as select * from _publishes")
            return reconcile.published_by_run(con, run_id)


class _Reader:
    """The views over one lake's tables in one process, kept current incrementally."""

    def __init__(self) -> None:
        self.db = duckdb.connect()
        # (schema, table) -> the loaded table, its version, and the inode of its log folder (a
        # table deleted and created again, as `warehouse copy --replace` does, is loaded anew).
        self.tables: dict[tuple[str, str], tuple[DeltaTable, int, int]] = {}
        self.open_cursors = 0
        self.lock = threading.Lock()

    def open(self, paths: list[tuple[str, str, Path]]) -> tuple[duckdb.DuckDBPyConnection, bool]:
        """A connection on the current snapshots, and whether it is a cursor of the shared
        database (False: a private one, because another connection is still open)."""
        with self.lock:
            if self.open_cursors:
                private = duckdb.connect()
                for schema, name, path in paths:
                    register(private, schema, name, DeltaTable(str(path)))
                return private, False
            present = {(schema, name) for schema, name, _ in paths}
            for schema, name in [k for k in self.tables if k not in present]:
                self.db.execute(f"drop view if exists {schema}.{name}")  # sql-identifier: a registered table's name
                del self.tables[(schema, name)]
            for schema, name, path in paths:
                cached = self.tables.get((schema, name))
                log_inode = os.stat(path / "_delta_log").st_ino
                if cached is not None and cached[2] != log_inode:
                    cached = None
                if cached is None:
                    table = DeltaTable(str(path))
                else:
                    table = cached[0]
                    table.update_incremental()
                if cached is None or cached[1] != table.version():
                    register(self.db, schema, name, table)
                    self.tables[(schema, name)] = (table, table.version(), log_inode)
            self.open_cursors += 1
            return self.db.cursor(), True

    def close(self, con: duckdb.DuckDBPyConnection, shared: bool) -> None:
        con.close()
        if shared:
            with self.lock:
                self.open_cursors -= 1


_READERS: dict[tuple[int, Path], _Reader] = {}
READERS_KEPT = 4  # lakes whose views a process keeps; the least recently used beyond are closed


def _reader(root: Path) -> _Reader:
    # By process too: a forked child (a Celery worker's pool) must not share its parent's DuckDB.
    key = (os.getpid(), root.resolve())
    reader = _READERS.pop(key, None) or _Reader()
    _READERS[key] = reader  # most recently used last
    for old in list(_READERS)[:-READERS_KEPT]:
        stale = _READERS[old]
        if not stale.open_cursors:
            del _READERS[old]
            stale.db.close()
    return reader


def register(con: duckdb.DuckDBPyConnection, schema: str, name: str, table: DeltaTable) -> None:
    """Make `schema.name` a view over `table`'s current snapshot, without `_partition`.

    The view reads exactly the Parquet files that the snapshot's log names (globbing the folder
    would also read superseded files). Every live file has the table's full schema (a write that
    adds a column rewrites the table, see `publish`), so the files are read without reconciling
    their schemas, which would cost a footer read per file on every connection."""
    fields = [f.name for f in table.schema().fields]
    columns = ", ".join(f'"{c}"' for c in fields if c != PARTITION)
    files = [local_path(uri) for uri in table.file_uris()]
    con.execute(f"create schema if not exists {schema}")  # sql-identifier: a table's schema name
    if files:
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        source = f"read_parquet([{listed}])"
    else:
        # No file yet (only empty writes): an empty table of the same types. A table, not a
        # registered frame, which only the connection that registered it would see.
        source = f"_delta_{schema}_{name}"
        con.register("_delta_empty", pa.schema(table.schema().to_arrow()).empty_table())
        con.execute(f"create or replace table {source} as select * from _delta_empty")  # sql-identifier: _delta_<schema>_<table>
        con.unregister("_delta_empty")
    con.execute(f"create or replace view {schema}.{name} as select {columns} from {source}")  # sql-identifier: names from code; files quoted, a view takes no ?


def local_path(uri: str) -> str:
    """A file of the table as DuckDB opens it. delta-rs gives local files as plain paths whose
    partition folders are percent-encoded on disk (`_partition=2025-06-01-14%3A00`): those are
    taken as they are; only a `file://` URI is decoded."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def _predicate(target: wap.Slice, extra: list[str] = ()) -> str:
    keys = ", ".join("'" + k.replace("'", "''") + "'" for k in [*target.partition_keys, *extra])
    return f"{PARTITION} in ({keys})" if keys else "false"


def _stored_types(con: duckdb.DuckDBPyConnection, stored: DeltaTable) -> list[tuple[str, str]]:
    """(column, DuckDB type) of the stored table, in its order, `_partition` included."""
    con.register("_stored_schema", pa.schema(stored.schema().to_arrow()).empty_table())
    try:
        return [(r[0], r[1]) for r in con.execute("describe _stored_schema").fetchall()]
    finally:
        con.unregister("_stored_schema")


def _aligned(con: duckdb.DuckDBPyConnection, target: wap.Slice, stored: DeltaTable | None,
             frame: pd.DataFrame, log: Callable[[str], None] | None, untyped: bool
             ) -> tuple[str, list, list[tuple[str, str]]]:
    """SQL (and its parameters) selecting the staged rows as the stored table takes them: its
    columns in its order, cast to its types (NULL where the frame lacks one), then the frame's
    new columns, then `_partition`; and the new columns with their types."""
    staged = {r[0]: r[1] for r in con.execute(f"describe select * from {wap.STAGED}").fetchall()}
    selects: list[str] = []
    added: list[tuple[str, str]] = []
    if stored is not None:
        types = [t for t in _stored_types(con, stored) if t[0] != PARTITION]
        for column, kind in types:
            source = f'"{column}"' if column in staged else "null"
            selects.append(f'cast({source} as {kind}) as "{column}"')
        known = {c for c, _ in types}
        for column in frame.columns:
            if column not in known:
                if log:
                    log(f"{target.name}: adding column {column} {staged[column]}")
                selects.append(f'"{column}"')
                added.append((column, staged[column]))
    else:
        for column in frame.columns:
            if untyped and column == target.column:
                selects.append(f'cast("{column}" as timestamp) as "{column}"')
            else:
                selects.append(f'"{column}"')
    params: list = []
    if target.column is not None:
        selects.append(f"{wap.partition_key_sql(target, untyped, params)} as {PARTITION}")
    return f"select {', '.join(selects)} from {wap.STAGED}", params, added  # sql-identifier: quoted columns


def _rest_of_table(con: duckdb.DuckDBPyConnection, target: wap.Slice, stored: DeltaTable,
                   added: list[tuple[str, str]]) -> tuple[str, list, list[str]]:
    """SQL for the stored rows outside the partitions being written, with NULL in the columns
    being added, in the column order of `_aligned`'s select; its parameters; and the partitions
    it covers."""
    con.register("_stored_rows", stored.to_pyarrow_dataset())
    columns = [f'"{c}"' for c, _ in _stored_types(con, stored) if c != PARTITION]
    columns += [f'cast(null as {kind}) as "{c}"' for c, kind in added]
    where, params = "", []
    if target.partition_keys:
        where = f"where {PARTITION} not in (select unnest(?::varchar[]))"
        params = [list(target.partition_keys)]
    stored_keys = [k for (k,) in con.execute(
        f"select distinct {PARTITION} from _stored_rows {where}",  # sql-identifier: ? only
        params).fetchall() if k is not None]
    return (f"select {', '.join(columns)}, {PARTITION} "  # sql-identifier: stored column names
            f"from _stored_rows {where}", params, stored_keys)  # sql-identifier: ? only
