"""The IO manager of the graph: every DataFrame output goes to the warehouse through
`gridassets.storage.publish`, one transaction per write.

An asset hands its output over only after its blocking checks have passed on those rows (the
assets audit before they yield; see `gridassets/defs/audit.py`), so what reaches this IO manager is
the audited staging frame, and the stored slice is replaced by it or left untouched. Assets read
their inputs with SQL through the `warehouse` resource; `load_input` is for a DataFrame input
declared the ordinary way.
"""


import dagster as dg
import pandas as pd

from gridassets.defs.config import GridSettings
from gridassets.storage import backend, publish


def target_slice(context: dg.OutputContext | dg.InputContext) -> publish.Slice:
    """The table and partitions an output (or input) context refers to."""
    metadata = context.definition_metadata or {}
    if isinstance(context, dg.InputContext) and context.upstream_output is not None:
        metadata = context.upstream_output.definition_metadata or metadata
    key = context.asset_key.path
    schema = metadata.get("schema") or (key[-2] if len(key) > 1 else "main")
    table = key[-1]
    if not context.has_asset_partitions:
        return publish.Slice(schema, table)
    column = metadata.get("partition_expr")
    if not column:
        raise dg.DagsterInvariantViolationError(
            f"{context.asset_key.to_user_string()} is partitioned but has no partition_expr "
            "metadata: the warehouse cannot tell which rows a partition holds")
    keys = list(context.asset_partition_keys)
    partitions_def = context.asset_partitions_def
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        windows = []
        for k in keys:
            w = partitions_def.time_window_for_partition_key(k)
            windows.append(publish.PartitionWindow(k, _naive_utc(w.start), _naive_utc(w.end)))
        return publish.Slice(schema, table, column, windows=tuple(windows))
    return publish.Slice(schema, table, column, keys=tuple(keys))


def _naive_utc(ts):
    return pd.Timestamp(ts).tz_convert("UTC").tz_localize(None).to_pydatetime()


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Stores DataFrame assets as tables of the warehouse (the DuckDB file or Delta tables),
    write-audit-publish."""

    settings: GridSettings

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: the warehouse stores "
                            f"DataFrames, got {type(obj).__name__}")
        target = target_slice(context)
        store = backend.open_warehouse(self.settings.resolve())
        counts = store.publish(target, obj, asset=context.asset_key.to_user_string(),
                               run_id=context.run_id, log=context.log.warning)
        rows = sum(counts.values())
        context.add_output_metadata({
            ("dagster/partition_row_count" if context.has_asset_partitions
             else "dagster/row_count"): rows,
            "storage": store.kind,
            "table": target.name,
        })

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        target = target_slice(context)
        where, params = target.where()
        with backend.open_warehouse(self.settings.resolve()).connect(read_only=True) as con:
            return con.execute(f"select * from {target.name} where {where}", params).fetchdf()  # sql-identifier: the asset's table and ?-condition
