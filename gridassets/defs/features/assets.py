"""Daily features, computed by SQL inside DuckDB from the raw tables.

Each refuses to run on a day its inputs do not cover (naming what to materialize first) and audits
its rows before they replace the stored partition."""

import dagster as dg
import pandas as pd

from gridassets.defs.audit import audited_output, require_inputs, scope_of
from gridassets.defs.metadata import frame_schema, partition_days, preview
from gridassets.defs.partitions import daily_partitions
from gridassets.defs.policies import DAILY_BACKFILL, DUCKDB_POOL, OWNERS, TRANSIENT_RETRY
from gridassets.defs.resources import Warehouse
from gridassets.domain import audits, features
from gridassets.storage import features as feature_sql

# A day's trailing windows read the 29 days before it; missing ones (the start of history) are
# simply absent, and `history_days` says how many the window had.
TRAILING_30 = dg.TimeWindowPartitionMapping(
    start_offset=-(features.WINDOW_DAYS - 1), allow_nonexistent_upstream_partitions=True
)
PREVIOUS_2 = dg.TimeWindowPartitionMapping(start_offset=-2, allow_nonexistent_upstream_partitions=True)

COMMON = dict(
    group_name="features",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    partitions_def=daily_partitions,
    backfill_policy=DAILY_BACKFILL,
    pool=DUCKDB_POOL,
    retry_policy=TRANSIENT_RETRY,
    code_version="1",
)


def _range(context: dg.AssetExecutionContext):
    days = partition_days(context)
    return days[0], days[-1] + pd.Timedelta(days=1).to_pytimedelta()


def _days(context: dg.AssetExecutionContext):
    return partition_days(context)


def _checks(asset: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec("rows", asset=asset, blocking=True,
                              description="Every day of the partition has rows, one per "
                                          "entity and day.")]


def _output(asset: str, frame: pd.DataFrame, days, key: list[str], **extra):
    """The audited write of a feature table (write-audit-publish)."""
    return audited_output(asset, frame, {"rows": audits.check_rows(frame, key, days)},
                          scope=scope_of(days), metadata={
        "dagster/column_schema": frame_schema(frame), "days": len(days),
        "rows_per_day": round(len(frame) / max(len(days), 1), 1), "preview": preview(frame),
        **extra,
    })


@dg.asset(
    deps=["transformer_telemetry", "weather_observations", "transformers", "circuits",
          "telemetry_integrity"],
    metadata={"partition_expr": "date", "schema": "features"},
    check_specs=_checks("transformer_daily_stats"),
    **COMMON,
)
def transformer_daily_stats(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Each transformer's day in numbers: loading, top-oil rise over ambient, hot spot and gases,
    without the readings telemetry_integrity quarantined."""
    start, end = _range(context)
    days = _days(context)
    with warehouse.connect() as con:
        require_inputs(con, "transformer_daily_stats", days, {
            "transformers": None, "circuits": None, "transformer_telemetry": "timestamp",
            "telemetry_integrity": "date"})
        frame = feature_sql.transformer_daily_stats(con, start, end)
    yield from _output("transformer_daily_stats", frame, days, ["transformer_id", "date"])


@dg.asset(
    ins={"transformer_daily_stats": dg.AssetIn(partition_mapping=TRAILING_30, dagster_type=dg.Nothing)},
    deps=["transformers", "transformer_failures"],
    metadata={"partition_expr": "date", "schema": "features"},
    check_specs=_checks("transformer_health_features"),
    **COMMON,
)
def transformer_health_features(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Transformer health over trailing weeks: thermal index, gas levels and trends, age, loading."""
    start, end = _range(context)
    days = _days(context)
    with warehouse.connect() as con:
        require_inputs(con, "transformer_health_features", days, {
            "transformers": None, "transformer_daily_stats": "date"})
        frame = feature_sql.transformer_health_features(con, start, end)
    yield from _output(
        "transformer_health_features", frame, days, ["transformer_id", "date"],
        gas_monitored_share=float(frame["has_gas_monitor"].mean()) if len(frame) else 0.0)


@dg.asset(
    ins={
        "weather_observations": dg.AssetIn(partition_mapping=PREVIOUS_2, dagster_type=dg.Nothing),
        "transformer_health_features": dg.AssetIn(dagster_type=dg.Nothing),
    },
    deps=["feeder_load", "circuits", "telemetry_integrity"],
    metadata={"partition_expr": "date", "schema": "features"},
    check_specs=_checks("circuit_exposure_features"),
    **COMMON,
)
def circuit_exposure_features(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Each circuit's day of exposure: wind and rain in its zone, trees, asset condition, loading."""
    start, end = _range(context)
    days = _days(context)
    with warehouse.connect() as con:
        require_inputs(con, "circuit_exposure_features", days, {
            "circuits": None, "weather_observations": "timestamp",
            "transformer_health_features": "date", "telemetry_integrity": "date"})
        frame = feature_sql.circuit_exposure_features(con, start, end)
    yield from _output("circuit_exposure_features", frame, days, ["circuit_id", "date"],
                       max_gust_mph=float(frame["peak_gust_mph"].max()) if len(frame) else 0.0)
