"""The write-audit-publish write: the one way a table slice of the warehouse is replaced.

The caller hands over the staged rows (a frame that the asset's audits, its blocking checks, have
passed) and the partitions they belong to. `publish` then, in one DuckDB transaction:

1. refuses rows outside the partitions being written (they would never be deleted on a rewrite);
2. creates the table on first use, or adds a column the stored table lacks;
3. deletes the partitions' old rows and inserts the new ones by column name (a value that does not
   cast to the stored column's type fails the insert);
4. records the publish, one row per partition key, in `ops.partition_publishes`, so that a process
   killed after the commit but before Dagster recorded the materialization can be reconciled.

Anything that fails rolls the whole transaction back: the stored slice is byte-for-byte what it
was. No Dagster here: the IO manager (`gridassets/defs/io_manager.py`) resolves the slice from the
run and calls this.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from gridassets import warehouse

PUBLISHES = "ops.partition_publishes"
STAGED = "_gridassets_staged"  # the staged frame, registered on a connection


class PublishRefused(ValueError):
    """The staged rows cannot replace the slice; nothing was written."""


@dataclass(frozen=True)
class PartitionWindow:
    """One partition key and the half-open time window [start, end) its rows lie in."""

    key: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Slice:
    """What a write replaces: a whole table, the rows of some time partitions (`windows`), or the
    rows whose partition column equals one of some keys (`keys`: storms, by storm id)."""

    schema: str
    table: str
    column: str | None = None  # the partition column; None: the whole (unpartitioned) table
    windows: tuple[PartitionWindow, ...] = ()
    keys: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def partition_keys(self) -> list[str]:
        return [w.key for w in self.windows] or list(self.keys)

    def where(self, cast: bool = False) -> tuple[str, list]:
        """SQL condition (with ? placeholders) selecting the slice's rows, and its parameters.

        `cast` compares the partition column as a timestamp: for a relation where it is not one
        (an empty frame's column of unknown type arrives as text)."""
        if self.column is None:
            return "true", []
        col = f'"{self.column}"'
        if self.windows:
            col = f"cast({col} as timestamp)" if cast else col
            parts = " or ".join(f"({col} >= ? and {col} < ?)" for _ in self.windows)
            return f"({parts})", [v for w in self.windows for v in (w.start, w.end)]
        if self.keys:
            return f"({col} in ({', '.join('?' for _ in self.keys)}))", list(self.keys)
        return "false", []


def publish(con: duckdb.DuckDBPyConnection, target: Slice, frame: pd.DataFrame, *, asset: str,
            run_id: str, log: Callable[[str], None] | None = None) -> dict[str, int]:
    """Replace `target` with `frame` in one transaction and record the publish.

    Returns the rows written per partition key ('' for an unpartitioned table). Raises
    PublishRefused for rows outside the slice; a DuckDB error for a value the stored column cannot
    hold. Either way nothing is written.
    """
    frame = warehouse.normalize_frame(frame)
    with warehouse.transaction(con):
        con.execute(f"create schema if not exists {target.schema}").fetchall()  # sql-identifier: the target's schema
        con.register(STAGED, frame)
        try:
            staged_cast = not is_temporal(con, STAGED, target)
            if target.column is not None:
                refuse_rows_outside(con, target, staged_cast)
            _prepare_table(con, target, frame, log, staged_cast)
            where, params = target.where(cast=not is_temporal(con, target.name, target))
            con.execute(f"delete from {target.name} where {where}", params).fetchall()  # sql-identifier: target table, ?-condition
            con.execute(f"insert into {target.name} by name select * from {STAGED}").fetchall()  # sql-identifier: the target table
            counts = rows_per_key(con, target, len(frame), staged_cast)
            _record(con, asset, run_id, counts)
        finally:
            # After a failed statement the transaction is aborted and refuses even this; the
            # rollback that follows drops the registration anyway.
            with contextlib.suppress(duckdb.Error):
                con.unregister(STAGED)
    return counts


def is_temporal(con, relation: str, target: Slice) -> bool:
    """Whether the partition column of `relation` is a date or timestamp (or there is none)."""
    if target.column is None or not target.windows:
        return True
    kind = con.execute(f'describe select "{target.column}" from {relation}').fetchall()[0][1]  # sql-identifier: column and relation from code
    return kind.startswith(("TIMESTAMP", "DATE"))


def refuse_rows_outside(con, target: Slice, cast: bool) -> None:
    where, params = target.where(cast)
    outside = con.execute(
        f"select count(*) from {STAGED} where not coalesce({where}, false)", params  # sql-identifier: a ?-condition
    ).fetchall()[0][0]
    if outside:
        keys = target.partition_keys
        keys = ", ".join(keys[:3]) + ("..." if len(keys) > 3 else "")
        raise PublishRefused(
            f"{outside} row(s) for {target.name} fall outside the partition being written "
            f"({keys}) or have no {target.column}; nothing was written")


def _prepare_table(con, target: Slice, frame: pd.DataFrame, log, cast: bool) -> None:
    existing = warehouse.table_columns(con, target.schema, target.table)
    if not existing:
        # A first write of no rows carries no type for the partition column: store a timestamp.
        select = (f'select * replace (cast("{target.column}" as timestamp) as "{target.column}")'
                  if cast else "select *")
        con.execute(f"create table {target.name} as {select} from {STAGED} limit 0").fetchall()  # sql-identifier: target table, select from code
        return
    # A column the code now writes and the stored table lacks is added (older rows get NULL)
    # inside this same transaction, so a new version of an asset can write into a table built
    # by the previous one.
    types = {row[0]: row[1] for row in con.execute(f"describe select * from {STAGED}").fetchall()}
    for column in [c for c in frame.columns if c not in existing]:
        if log:
            log(f"{target.name}: adding column {column} {types[column]}")
        con.execute(f'alter table {target.name} add column "{column}" {types[column]}').fetchall()  # sql-identifier: a new column of the staged frame and its type


def rows_per_key(con, target: Slice, total: int, cast: bool) -> dict[str, int]:
    """Rows of the staged frame per partition key of `target` ('' for an unpartitioned table),
    zero for a key with none; one query however many partitions are written."""
    if target.column is None:
        return {"": total}
    counts = dict.fromkeys(target.partition_keys, 0)
    if total:
        params: list = []
        key = partition_key_sql(target, cast, params)
        counts.update({k: int(n) for k, n in con.execute(
            f"select {key} as k, count(*) from {STAGED} group by k", params).fetchall()  # sql-identifier: partition key expression, ? only
            if k is not None})
    return counts


def partition_key_sql(target: Slice, cast: bool, params: list) -> str:
    """SQL for the partition key (text) of a row of `target`, appending its parameters."""
    col = f'"{target.column}"'
    if target.windows:
        col = f"cast({col} as timestamp)" if cast else col
        cases = []
        for w in target.windows:
            cases.append(f"when {col} >= ? and {col} < ? then ?")
            params.extend([w.start, w.end, w.key])
        return f"cast(case {' '.join(cases)} end as varchar)"
    return f"cast({col} as varchar)"


def _record(con, asset: str, run_id: str, counts: dict[str, int]) -> None:
    con.execute(f"create schema if not exists {PUBLISHES.split('.')[0]}").fetchall()
    con.execute(
        f"create table if not exists {PUBLISHES} (asset varchar, partition_key varchar, "
        "run_id varchar, rows bigint, published_at timestamp)").fetchall()
    if not counts:
        return  # a slice of no partitions (a table created empty) published no partition
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).to_pydatetime()
    con.executemany(f"insert into {PUBLISHES} values (?, ?, ?, ?, ?)",
                    [[asset, key, run_id, int(n), now] for key, n in counts.items()])


def publishes(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """What one run published (asset, partition_key, rows, published_at); empty if nothing."""
    if not warehouse.table_columns(con, *PUBLISHES.split(".")):
        return pd.DataFrame(columns=["asset", "partition_key", "rows", "published_at"])
    return con.execute(
        f"select asset, partition_key, rows, published_at from {PUBLISHES} where run_id = ? "
        "order by asset, partition_key", [run_id]).fetchdf()
