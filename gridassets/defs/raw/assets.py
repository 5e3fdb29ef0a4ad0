"""Raw daily tables, from the simulator or the landing folder, with blocking quality checks.

The six raw assets differ only in their table contract, so one builder makes them. A partition (or a
single-run range of partitions) is read whole and audited before anything is written
(write-audit-publish, `gridassets/defs/audit.py`): one bad landing file, or rows that fail a
blocking check, fail the run with the file, row, column or check named, and the stored partitions
stay as they were.
"""


import dagster as dg
import pandas as pd

from gridassets.defs.audit import audited_output, scope_of
from gridassets.defs.metadata import partition_days, preview, spec_schema
from gridassets.defs.partitions import daily_partitions
from gridassets.defs.policies import DAILY_BACKFILL, DUCKDB_POOL, OWNERS, TRANSIENT_RETRY
from gridassets.defs.resources import FleetSource
from gridassets.domain import quality
from gridassets.domain.landing import LandingError
from gridassets.domain.schemas import RAW_TABLES, TableSpec

RAW_CHECKS = {
    "schema": "Columns and types as the table contract says; no empty required values.",
    "ranges": "Every value inside its plausible range.",
    "completeness": "24 hourly rows per entity per day and the registry's entities reporting "
                    "(event tables: every id known to the registry).",
    "duplicates": "No two rows share the table's key.",
}

# Which registry column lists the entities a raw table must cover.
EXPECTED_ENTITIES = {
    "transformer_telemetry": ("transformers", "transformer_id"),
    "feeder_load": ("circuits", "circuit_id"),
    "weather_observations": ("circuits", "zone"),
    "outage_events": ("circuits", "circuit_id"),
    "transformer_failures": ("transformers", "transformer_id"),
    "weather_forecasts": ("circuits", "zone"),
}


def audit(spec: TableSpec, frame: pd.DataFrame, days, expected) -> dict[str, quality.CheckOutcome]:
    """The outcome of each blocking check on a raw table's staged rows."""
    return {
        "schema": quality.check_schema(frame, spec),
        "ranges": quality.check_ranges(frame, spec),
        "completeness": quality.check_completeness(
            frame, spec, days, expected,
            allow_unknown=spec.name in ("weather_observations", "weather_forecasts")),
        "duplicates": quality.check_duplicates(frame, spec),
    }


def build_raw_asset(spec: TableSpec) -> dg.AssetsDefinition:
    registry, entity_column = EXPECTED_ENTITIES[spec.name]

    @dg.asset(
        name=spec.name,
        description=spec.description,
        group_name="raw",
        kinds={"duckdb", "pandas"},
        owners=OWNERS,
        partitions_def=daily_partitions,
        backfill_policy=DAILY_BACKFILL,
        metadata={"partition_expr": spec.stored_by, "schema": "raw",
                  "dagster/column_schema": spec_schema(spec)},
        pool=DUCKDB_POOL,
        retry_policy=TRANSIENT_RETRY,
        check_specs=[
            dg.AssetCheckSpec(name, asset=spec.name, blocking=True, description=text)
            for name, text in RAW_CHECKS.items()
        ],
        code_version="1",
    )
    def _raw(context: dg.AssetExecutionContext, fleet: FleetSource):
        days = partition_days(context)
        try:
            expected = set(fleet.registry(registry)[entity_column].astype(str))
            frames = [fleet.raw(spec, day, entities=len(expected)) for day in days]
        except LandingError as exc:
            raise dg.Failure(
                description=str(exc), allow_retries=False,
                metadata={"file": str(exc.path), "row": exc.row or 0, "column": exc.column or ""},
            ) from exc
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=spec.names)
        context.log.info(f"{spec.name}: {len(frame):,} rows for {days[0]}..{days[-1]} "
                         f"from {fleet.describe()}")
        yield from audited_output(
            spec.name, frame, audit(spec, frame, days, expected), scope=scope_of(days),
            metadata={"days": len(days), "source": fleet.describe(), "preview": preview(frame),
                      "rows_per_day": round(len(frame) / max(len(days), 1), 1)})

    return _raw


raw_assets = [build_raw_asset(spec) for spec in RAW_TABLES]
