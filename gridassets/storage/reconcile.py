"""What a run published to the warehouse, from the publish log `ops.partition_publishes`.

Every write of a slice commits, in the same transaction as its rows, one row per partition key in
`ops.partition_publishes (asset, partition_key, run_id, rows, published_at)` (see
`gridassets/storage/publish.py`; unpartitioned writes use partition_key ''). A run killed after
that commit and before Dagster stored its materialization leaves partitions that hold the run's rows
while Dagster does not know it; comparing this log with the run's events finds them. Reading only:
nothing here writes the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

PUBLISHES_SCHEMA, PUBLISHES_TABLE = "ops", "partition_publishes"


@dataclass(frozen=True)
class Published:
    """One (asset, partition) a run published, as its last publish of it left it."""

    asset: str
    partition_key: str  # '' for an unpartitioned asset
    rows: int
    published_at: datetime
    # Another run published the same partition later: the stored rows are that run's.
    superseded: bool


def has_publish_log(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [PUBLISHES_SCHEMA, PUBLISHES_TABLE],
    ).fetchall()[0][0])


def published_by_run(con: duckdb.DuckDBPyConnection, run_id: str) -> list[Published]:
    """Every (asset, partition) that `run_id` committed, with the rows of its last publish of it
    (a retried step publishes twice) and whether a later publish by another run replaced it."""
    if not has_publish_log(con):
        return []
    rows = con.execute(
        f"""
        with mine as (
            select asset, partition_key,
                   arg_max(rows, published_at) as rows, max(published_at) as published_at
            from {PUBLISHES_SCHEMA}.{PUBLISHES_TABLE}
            where run_id = ?
            group by asset, partition_key
        )
        select m.asset, m.partition_key, m.rows, m.published_at,
               exists (select 1 from {PUBLISHES_SCHEMA}.{PUBLISHES_TABLE} p
                       where p.asset = m.asset and p.partition_key = m.partition_key
                         and p.run_id <> ? and p.published_at > m.published_at) as superseded
        from mine m
        order by m.asset, m.partition_key
        """,
        [run_id, run_id],
    ).fetchall()
    return [Published(asset=a, partition_key=k or "", rows=int(n), published_at=t,
                      superseded=bool(s)) for a, k, n, t, s in rows]
