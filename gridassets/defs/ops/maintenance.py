"""The weekly upkeep of the warehouse (see `gridassets/storage/maintenance.py`)."""

import dagster as dg
import pandas as pd

from gridassets.defs.metadata import markdown_table
from gridassets.defs.policies import DUCKDB_POOL
from gridassets.defs.resources import Warehouse
from gridassets.storage import maintenance


@dg.op(
    description="Delta: compact small files, checkpoint the log and vacuum files no snapshot of "
                "the last week names, table by table. DuckDB: checkpoint the file.",
    pool=DUCKDB_POOL,
)
def maintain_warehouse(context: dg.OpExecutionContext, warehouse: Warehouse) -> dg.Output:
    store = warehouse.store
    done = maintenance.maintain(store, log=context.log.info)
    frame = pd.DataFrame([vars(u) for u in done])
    metadata = {"backend": store.kind, "location": str(store.location),
                "tables": len(done),
                "files_vacuumed": int(frame["files_vacuumed"].sum()) if len(frame) else 0,
                "files_compacted": int(frame["files_compacted"].sum()) if len(frame) else 0}
    if len(frame):
        metadata["upkeep"] = dg.MetadataValue.md(markdown_table(frame, max_rows=60))
    return dg.Output(None, metadata=metadata)


@dg.job(description="Upkeep of the warehouse: compaction and vacuum of the Delta tables, or a "
                    "checkpoint of the DuckDB file.", tags={"team": "grid-analytics"})
def warehouse_maintenance():
    maintain_warehouse()


maintenance_schedule = dg.ScheduleDefinition(
    name="warehouse_maintenance_weekly", job=warehouse_maintenance, cron_schedule="0 5 * * 0",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Sunday 05:00 UTC, when no daily or weekly run is due: compaction and vacuum.",
)
