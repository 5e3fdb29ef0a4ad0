"""The DuckDB warehouse: where each table lives, one way to connect, and transactions.

DuckDB lets one process write a file at a time. Connections here retry a held lock with exponential
backoff and jitter (another run may be finishing), and every write that replaces rows does its
delete and insert in one transaction, so a table slice is either fully replaced or untouched.

Only the lock is retried. Every other DuckDB error that says the file cannot be trusted or written
is classified, at open and while the connection is in use, into an error that names the file and
says what to do: `WarehouseCorruptError` (a checksum failure, a file that is not a DuckDB file, a
truncated file), `WarehouseDiskFullError`, `WarehouseWalError` (a write-ahead log that cannot be
replayed). Corruption also leaves a marker beside the file (`<file>.corrupt`): every later
connection, in this process or another, refuses the file at once instead of writing tables that
happen to be intact, until an operator restores or rebuilds it and deletes the marker.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

# Table -> schema. Schemas follow the layers of the asset graph; tables are found by name.
SCHEMA_OF: dict[str, str] = {
    "circuits": "fleet",
    "transformers": "fleet",
    "transformer_telemetry": "raw",
    "feeder_load": "raw",
    "weather_observations": "raw",
    "outage_events": "raw",
    "transformer_failures": "raw",
    "weather_forecasts": "raw",
    "transformer_daily_stats": "features",
    "transformer_health_features": "features",
    "circuit_exposure_features": "features",
    "telemetry_signals": "integrity",
    "telemetry_integrity": "integrity",
    "integrity_model": "models",
    "model_registry": "models",
    "maintenance_model": "models",
    "outage_model": "models",
    "load_forecast_models": "models",
    "transformer_risk": "scores",
    "circuit_outage_risk": "scores",
    "vegetation_risk": "scores",
    "load_forecast": "scores",
    "intraday_load_forecast": "scores",
    "load_forecast_backtest": "scores",
    "prioritized_circuits": "scores",
    "work_orders": "scores",
    "storm_alerts": "storms",
    "storm_outage_risk": "storms",
    "storm_priority_circuits": "storms",
    "run_failures": "ops",
}

LOCK_ATTEMPTS = 10
LOCK_BASE_DELAY_S = 0.2
LOCK_MAX_DELAY_S = 8.0


# Where the docs say how to restore or rebuild the warehouse.
TROUBLESHOOTING = "docs/operations.md, Troubleshooting"

# DuckDB's single-file layout (storage version 2, checked against DuckDB 2.0.1): three 4 KiB
# headers, then blocks of `block_size` bytes.
FILE_HEADER_BYTES = 3 * 4096


class WarehouseError(duckdb.Error, RuntimeError):
    """The warehouse file cannot be used as it is; the message names it and says what to do.

    A duckdb.Error (each stands for one of DuckDB's, chained as its cause), so code that handles
    DuckDB's errors, such as the run-failure alert's table write, handles these too."""

    def __init__(self, message: str, path: Path | str) -> None:
        super().__init__(message)
        self.path = Path(path)


class WarehouseLockedError(WarehouseError):
    """Another process held the DuckDB file for longer than the retries allow."""


class WarehouseCorruptError(WarehouseError):
    """The file is damaged (a failed checksum, truncated, not a DuckDB file): never write it.

    `finding` is what was found, without the advice around it."""

    def __init__(self, path: Path | str, finding: str) -> None:
        super().__init__(corrupt_message(path, finding), path)
        self.finding = finding


class WarehouseDiskFullError(WarehouseError):
    """The filesystem of the warehouse is full; the failed write was rolled back."""


class WarehouseWalError(WarehouseError):
    """The write-ahead log beside the file cannot be replayed, so DuckDB will not open the file."""


def wal_path(path: Path | str) -> Path:
    return Path(f"{path}.wal")


def corrupt_marker(path: Path | str) -> Path:
    """The file whose presence says the warehouse at `path` was found corrupt."""
    return Path(f"{path}.corrupt")


_WAL_SIGNS = ("replaying wal", "corrupt wal", "wal does not match", "failed to read wal",
              "wal checkpoint iteration", "wal was created")
# Words of DuckDB 2.0's own messages (and of strerror), matched in lower case.
_DISK_FULL_SIGNS = ("no space left on device", "disk quota exceeded", "enospc", "edquot",
                    "not enough space on the disk")
_CORRUPT_SIGNS = ("corrupt database file",              # a block or header failed its checksum
                  "not a valid duckdb database file",   # the main header is damaged, or empty file
                  "could not read enough bytes",        # a block lies past the end: truncated
                  "failed to load metadata pointer")    # the catalog points at garbage


def corrupt_message(path: Path | str, finding: str) -> str:
    return (f"The warehouse {path} is corrupt: {finding}. It is not written to: every step that "
            f"uses this file fails at once (the marker {corrupt_marker(path)} says so). Restore "
            f"the latest backup (`python -m gridassets backup` makes them) or rebuild the "
            f"warehouse ({TROUBLESHOOTING}).")


def classify(exc: BaseException, path: Path | str) -> WarehouseError | None:
    """The warehouse error that a DuckDB (or OS) error on the file at `path` stands for, or None
    when it is none of them (a SQL mistake, a missing table: the caller's own error).

    A pure function of the error's type and text, so that every message DuckDB gives for a
    damaged file, a full disk or a bad WAL is recognized in one place. The lock is
    `_is_lock_error`'s business: `connect` retries it.
    """
    if isinstance(exc, WarehouseError):
        return exc
    path = Path(path)
    text = str(exc)
    low = text.lower()
    if (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or any(
            sign in low for sign in _DISK_FULL_SIGNS):
        return WarehouseDiskFullError(
            f"No space left on the filesystem of the warehouse {path} ({text}). The write that "
            f"failed was rolled back: stored tables are as they were. Free space there (`df -h "
            f"{path.parent}` shows how much; old backups, outputs and run history are candidates) "
            f"and run again ({TROUBLESHOOTING}).", path)
    if any(sign in low for sign in _WAL_SIGNS):
        wal = wal_path(path)
        return WarehouseWalError(
            f"The write-ahead log {wal} cannot be replayed into {path} ({text}): it was written "
            f"by another DuckDB version, for another copy of the file, or it is damaged, and "
            f"DuckDB will not open the warehouse while it is there. Copy both files somewhere "
            f"safe, then move the log aside (`mv {wal} {wal}.stale`): the warehouse opens as of "
            f"its last checkpoint, and what the log held since then must be materialized again "
            f"({TROUBLESHOOTING}).", path)
    if isinstance(exc, duckdb.Error) and any(sign in low for sign in _CORRUPT_SIGNS):
        return WarehouseCorruptError(path, text)
    return None


def _identity(path: Path | str) -> dict[str, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return {"inode": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def mark_corrupt(path: Path | str, finding: str) -> None:
    """Leave the marker that makes every later connection refuse the file as it is now.

    The marker records the file's inode, size and modification time: a file put in its place
    (restored from a backup, rebuilt after `make clean`) is not refused for its predecessor.
    Best effort: a marker that cannot be written must not hide the error being raised. Call it
    once the connection is closed, so that the recorded identity is final.
    """
    marker = corrupt_marker(path)
    identity = _identity(path)
    if _marked_identity(marker) == identity:
        return
    record = {"found_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "finding": finding, "file": identity}
    with contextlib.suppress(OSError):
        marker.write_text(json.dumps(record, indent=1) + "\n")


def _marked_identity(marker: Path) -> dict[str, int] | None:
    try:
        return json.loads(marker.read_text()).get("file")
    except (OSError, ValueError, AttributeError):
        return None


def refuse_if_marked(path: Path | str) -> None:
    """Raise WarehouseCorruptError when this very file was found corrupt earlier.

    A marker about a file that has since been replaced is deleted; one that cannot be read
    counts, to be safe.
    """
    marker = corrupt_marker(path)
    if not marker.exists():
        return
    try:
        record = json.loads(marker.read_text())
        if record.get("file") != _identity(path):
            with contextlib.suppress(OSError):
                marker.unlink()
            return
        finding = f"found earlier, at {record.get('found_at')}: {record.get('finding')}"
    except (OSError, ValueError, AttributeError) as exc:
        finding = f"found earlier; the marker cannot be read ({exc})"
    raise WarehouseCorruptError(path, finding)


def check_size(con: duckdb.DuckDBPyConnection, path: Path | str) -> None:
    """Raise WarehouseCorruptError when the file is shorter than the blocks DuckDB counts as used.

    Costs one pragma and one stat. A file cut short opens as long as its catalog survived, and
    DuckDB then writes new blocks past the end (the file grows again around a hole), so this runs
    before any write. Free blocks may lie past the end; used ones may not.
    """
    row = con.execute(
        "select block_size, total_blocks, free_blocks from pragma_database_size() "
        "where database_name = current_database()").fetchall()
    if not row:
        return
    block_size, total, free = row[0]
    used = total - free
    size = os.stat(path).st_size
    expected = FILE_HEADER_BYTES + used * block_size
    if used > 0 and size < expected:
        raise WarehouseCorruptError(path, (
            f"the file is {size:,} bytes, but {used} blocks of {block_size:,} bytes are in use "
            f"(at least {expected:,} bytes): it was truncated"))


def qualified(table: str) -> str:
    """`schema.table` for a table of the graph (names come from code, never from data)."""
    return f"{SCHEMA_OF[table]}.{table}"


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


@contextmanager
def connect(path: Path | str, *, read_only: bool = False, attempts: int = LOCK_ATTEMPTS
            ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file, retrying a lock held by another process.

    Raises WarehouseLockedError after `attempts` tries, naming the file and what to do. DuckDB
    errors that mean the file cannot be trusted or written, at open or raised by a statement inside
    the block, leave it as WarehouseCorruptError, WarehouseDiskFullError or WarehouseWalError (see
    `classify`), chained to DuckDB's own; every other error leaves unchanged. A file marked
    corrupt is refused before it is opened.
    """
    path = Path(path)
    refuse_if_marked(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    delay = LOCK_BASE_DELAY_S
    for attempt in range(1, attempts + 1):
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as exc:
            if not _is_lock_error(exc) or attempt == attempts:
                if _is_lock_error(exc):
                    raise WarehouseLockedError(
                        f"{path} is locked by another process ({exc}). Another run or a program "
                        "with the file open (a notebook, the duckdb CLI) holds it; close it, or "
                        "let the run finish. Runs launched through Dagster queue on the 'duckdb' "
                        "pool instead of colliding.", path
                    ) from exc
                _raise_classified(exc, path)
                raise
            # Full jitter: concurrent waiters spread out instead of retrying in lockstep.
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, LOCK_MAX_DELAY_S)
    try:
        check_size(con, path)
        yield con
    except duckdb.Error as exc:
        classified = classify(exc, path)
        if isinstance(classified, WarehouseCorruptError):
            # DuckDB 2.0.1 does not abort a transaction on a checksum error: a COMMIT after it
            # persists what the transaction wrote, and on that connection even BEGIN ... ROLLBACK
            # no longer undoes anything (checked). So roll back what may be open, never use the
            # connection again, and keep what it committed before the error (in the WAL) out of
            # the file: no checkpoint when it closes.
            with contextlib.suppress(duckdb.Error):
                con.rollback()
            with contextlib.suppress(duckdb.Error):
                con.execute("pragma disable_checkpoint_on_shutdown").fetchall()
        con.close()
        if classified is None or (classified is exc and exc.path.resolve() != path.resolve()):
            raise  # not ours to classify: a SQL error, or another file's
        _raise_classified(exc, path)
    finally:
        con.close()


def _raise_classified(exc: Exception, path: Path) -> None:
    """Raise the warehouse error `exc` stands for (if any), marking the file when it is corrupt.
    Returns when `exc` is none of them."""
    classified = classify(exc, path)
    if classified is None:
        return
    if isinstance(classified, WarehouseCorruptError):
        mark_corrupt(path, classified.finding)
    if classified is exc:
        raise exc
    raise classified from exc


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema = SCHEMA_OF.get(table, "main")
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(row[0][0])


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows]


def normalize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Datetimes as naive microsecond timestamps, so DuckDB stores TIMESTAMP (not TIMESTAMP_NS or
    TIMESTAMPTZ, which break Dagster's partition WHERE clauses); empty text columns as VARCHAR."""
    out = frame
    for name, dtype in frame.dtypes.items():
        if dtype == object and frame[name].isna().all():
            # DuckDB types an all-empty object column as NULL, which nothing can be inserted into.
            out = out if out is not frame else frame.copy()
            out[name] = frame[name].astype("string")
            continue
        if isinstance(dtype, pd.DatetimeTZDtype):
            out = out if out is not frame else frame.copy()
            out[name] = frame[name].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
        elif pd.api.types.is_datetime64_dtype(dtype) and dtype != "datetime64[us]":
            out = out if out is not frame else frame.copy()
            out[name] = frame[name].astype("datetime64[us]")
    return out


def replace_rows(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame,
                 where: str | None = None, params: Sequence[Any] = ()) -> int:
    """Replace the rows of `table` matching `where` with `frame`, in one transaction.

    `where` is SQL written in code with `?` placeholders for `params`; None replaces the whole
    table. Creates the schema and table on first use. Returns the number of rows inserted.
    """
    name = qualified(table)
    frame = normalize_frame(frame)
    with transaction(con):
        con.execute(f"create schema if not exists {SCHEMA_OF[table]}").fetchall()
        con.register("_replace_rows_frame", frame)
        try:
            if not table_exists(con, table):
                con.execute(f"create table {name} as "  # sql-identifier: qualified(table)
                            "select * from _replace_rows_frame limit 0").fetchall()
            con.execute(f"delete from {name}"  # sql-identifier: qualified(table)
                        + (f" where {where}" if where else ""),  # sql-identifier: ?-condition
                        list(params)).fetchall()
            con.execute(f"insert into {name} by name "  # sql-identifier: qualified(table)
                        "select * from _replace_rows_frame").fetchall()
        finally:
            with contextlib.suppress(duckdb.Error):  # refused in an aborted transaction
                con.unregister("_replace_rows_frame")
    return len(frame)


def query(path: Path | str, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    """Run one parameterized query on the warehouse and return the result as a frame."""
    with connect(path) as con:
        return con.execute(sql, list(params)).fetchdf()


def fetch_compact(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = (),
                  categorical: Sequence[str] = ("circuit_id",)) -> pd.DataFrame:
    """A query's result with the given text columns as pandas categoricals (through Arrow).

    For long tables keyed by a few hundred ids: a year of a fleet's hourly rows holds millions of
    copies of the same ids, which as Python strings cost several times the numbers beside them.
    """
    table = con.sql(sql, params=list(params)).to_arrow_table()
    for name in categorical:
        if name in table.column_names:
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, table.column(name).dictionary_encode())
    return table.to_pandas()
