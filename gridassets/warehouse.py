"""The DuckDB warehouse: where each table lives, one way to connect, and transactions.

DuckDB lets one process write a file at a time. Connections here retry a held lock with exponential
backoff and jitter (another run may be finishing), and every write that replaces rows does its
delete and insert in one transaction, so a table slice is either fully replaced or untouched.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
    "transformer_daily_stats": "features",
    "transformer_health_features": "features",
    "circuit_exposure_features": "features",
    "model_registry": "models",
    "maintenance_model": "models",
    "outage_model": "models",
    "load_forecast_models": "models",
    "transformer_risk": "scores",
    "circuit_outage_risk": "scores",
    "vegetation_risk": "scores",
    "load_forecast": "scores",
    "load_forecast_backtest": "scores",
    "prioritized_circuits": "scores",
    "storm_alerts": "storms",
    "storm_outage_risk": "storms",
    "storm_priority_circuits": "storms",
    "run_failures": "ops",
}

LOCK_ATTEMPTS = 10
LOCK_BASE_DELAY_S = 0.2
LOCK_MAX_DELAY_S = 8.0


class WarehouseLockedError(RuntimeError):
    """Another process held the DuckDB file for longer than the retries allow."""


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

    Raises WarehouseLockedError after `attempts` tries, naming the file and what to do.
    """
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    delay = LOCK_BASE_DELAY_S
    for attempt in range(1, attempts + 1):
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc) or attempt == attempts:
                if _is_lock_error(exc):
                    raise WarehouseLockedError(
                        f"{path} is locked by another process ({exc}). Another run or a program "
                        "with the file open (a notebook, the duckdb CLI) holds it; close it, or "
                        "let the run finish. Runs launched through Dagster queue on the 'duckdb' "
                        "pool instead of colliding."
                    ) from exc
                raise
            # Full jitter: concurrent waiters spread out instead of retrying in lockstep.
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, LOCK_MAX_DELAY_S)
    try:
        yield con
    finally:
        con.close()


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
                con.execute(f"create table {name} as select * from _replace_rows_frame limit 0").fetchall()
            con.execute(f"delete from {name}" + (f" where {where}" if where else ""),
                        list(params)).fetchall()
            con.execute(f"insert into {name} by name select * from _replace_rows_frame").fetchall()
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
