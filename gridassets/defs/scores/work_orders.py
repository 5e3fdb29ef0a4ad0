"""The daily work orders: the day's scores turned into work that crews take, carried from day to
day (rules and columns in `gridassets.domain.work_orders` and docs/work-orders.md)."""

from datetime import timedelta

import dagster as dg
import pandas as pd

from gridassets.defs.audit import audited_output, require_inputs, scope_of
from gridassets.defs.metadata import frame_schema, partition_days, preview
from gridassets.defs.resources import GridSettings, Warehouse
from gridassets.defs.scores.assets import COMMON, NOTHING
from gridassets.domain import work_orders as orders
from gridassets.domain.export import write_atomic_csv
from gridassets.storage import inputs
from gridassets.storage import scores as score_reads
from gridassets.storage import work_orders as order_reads

# The orders of the day before, whose open orders carry over.
DAY_BEFORE = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1,
                                           allow_nonexistent_upstream_partitions=True)
PREVIEW = ["priority", "order_id", "status", "crew", "task", "customer_minutes_7d"]


@dg.asset(
    ins={"prioritized_circuits": dg.AssetIn(**NOTHING),
         "transformer_risk": dg.AssetIn(**NOTHING),
         "work_orders": dg.AssetIn(partition_mapping=DAY_BEFORE, **NOTHING)},
    deps=["circuits"],
    kinds={"duckdb", "csv"},
    metadata={"partition_expr": "date", "schema": "scores"},
    check_specs=[dg.AssetCheckSpec(
        "orders", asset="work_orders", blocking=True,
        description="Per day: order ids unique, priorities 1..N by customer-minutes, every "
                    "order new or carried over as its open_since says, with task, location "
                    "and reason.")],
    **COMMON,
)
def work_orders(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: GridSettings):
    """The day's work orders for crews: an inspection for each transformer in HI4 or HI5 and the
    work each circuit at the top of the list needs, new or carried over from the day before."""
    days = partition_days(context)
    scope = scope_of(days)
    before = days[0] - timedelta(days=1)
    start, end = pd.Timestamp(before), pd.Timestamp(days[-1]) + pd.Timedelta(days=1)
    with warehouse.connect() as con:
        require_inputs(con, "work_orders", days, {
            "circuits": None, "transformer_risk": "date", "prioritized_circuits": "date"})
        circuits = score_reads.circuits(con)
        transformers = order_reads.transformers_in_bands(con, start, end, orders.ORDER_BANDS)
        lists = score_reads.day_slice(con, "prioritized_circuits", start, end)
        previous = order_reads.orders_of(con, before)
        listed_before = bool(inputs.days_present(con, "prioritized_circuits", "date", [before]))
    try:
        if previous.empty and listed_before:
            _refuse_a_gap(scope, before, transformers, lists, circuits)
        per_day = orders.work_orders_over(days, transformers, lists, circuits, previous)
    except ValueError as exc:
        raise dg.Failure(description=f"work_orders {scope}: {exc}. Nothing was written.",
                         allow_retries=False) from exc
    frame = pd.concat(per_day, ignore_index=True)
    last, last_previous = per_day[-1], per_day[-2] if len(per_day) > 1 else previous
    closed = orders.closed_orders(last_previous, last)
    outputs = settings.resolve().outputs_dir / "work_orders"
    yield from audited_output("work_orders", frame, {"orders": orders.audit(frame, days)},
                              scope=scope, metadata={
        "dagster/column_schema": frame_schema(frame, orders.COLUMNS),
        "csv": dg.MetadataValue.path(str(outputs / f"{days[-1].isoformat()}.csv")),
        "orders": len(last),
        "new_orders": int((last["status"] == orders.NEW).sum()),
        "carried_over_orders": int((last["status"] == orders.CARRIED_OVER).sum()),
        "closed_orders": len(closed),
        "by_kind": dg.MetadataValue.json(orders.counts(last)),
        "preview": preview(last[PREVIEW]),
    })
    # Exported only once the orders are published: refused orders leave the last CSV in place.
    for day, day_orders in zip(days, per_day):
        write_atomic_csv(orders.csv_frame(day_orders), outputs / f"{day.isoformat()}.csv")


def _refuse_a_gap(scope: str, before, transformers: pd.DataFrame, lists: pd.DataFrame,
                  circuits: pd.DataFrame) -> None:
    """Fail when the day before had a list that asks for work but no stored orders: its open
    orders and the days they were opened would be lost, and every order would look new."""
    ts = pd.Timestamp(before)
    asked = orders.build_work_orders(ts, transformers[transformers["date"] == ts],
                                     lists[lists["date"] == ts], circuits)
    if len(asked):
        raise dg.Failure(
            description=f"work_orders {scope}: no work_orders for {before}, whose list asks for "
                        f"{len(asked)} order(s): materialize work_orders for {before} first (an "
                        "order carried over keeps the day it was opened). Nothing was written.",
            metadata={"missing_inputs": "work_orders"}, allow_retries=False)
