"""Upkeep of the warehouse: what the weekly `warehouse_maintenance` job runs.

Delta: every rewrite of a partition leaves the files it replaced on disk (older snapshots still
name them), and every commit adds a file to the log. Per table, the job
1. compacts small files of a partition into larger ones (`optimize.compact`; one commit, which
   a concurrent write of the same partition makes fail: that table is then left for next week);
2. writes a checkpoint of the log and removes log entries past the log's retention (30 days);
3. vacuums: deletes the data files that no snapshot younger than `retention_hours` names, and the
   files of writers killed before their commit. A reader of an older snapshot than that could
   lose files under it: no read lasts a week.

DuckDB: a checkpoint (the WAL into the file) is all there is to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gridassets.storage import backend

# Delta's own default: files superseded more than a week ago can go.
RETENTION_HOURS = 7 * 24


@dataclass(frozen=True)
class TableUpkeep:
    table: str
    version_before: int
    version_after: int
    files_compacted: int  # files removed by compaction (replaced by fewer, larger ones)
    files_vacuumed: int  # files deleted from disk
    note: str = ""


def maintain(store: backend.Warehouse, retention_hours: int = RETENTION_HOURS,
             log: Callable[[str], None] = lambda _: None) -> list[TableUpkeep]:
    """Compact, checkpoint and vacuum every table (Delta), or checkpoint the file (DuckDB)."""
    if store.kind == "duckdb":
        if store.exists():
            with store.connect() as con:
                con.execute("checkpoint").fetchall()
            log(f"{store.location}: checkpointed")
        return []
    from deltalake import DeltaTable
    from deltalake.exceptions import CommitFailedError

    done = []
    for schema, name, path in store.table_paths():
        table = DeltaTable(str(path))
        before = table.version()
        note = ""
        compacted = 0
        try:
            metrics = table.optimize.compact()
            compacted = int(metrics.get("numFilesRemoved", 0))
        except CommitFailedError as exc:
            note = f"compaction skipped: a concurrent write ({exc})"
        table.update_incremental()
        table.create_checkpoint()
        table.cleanup_metadata()
        removed = table.vacuum(retention_hours=retention_hours, dry_run=False,
                               enforce_retention_duration=False)
        upkeep = TableUpkeep(f"{schema}.{name}", before, table.version(), compacted,
                             len(removed), note)
        log(f"{upkeep.table}: version {before} -> {upkeep.version_after}, {compacted} files "
            f"compacted, {len(removed)} files vacuumed" + (f"; {note}" if note else ""))
        done.append(upkeep)
    return done
