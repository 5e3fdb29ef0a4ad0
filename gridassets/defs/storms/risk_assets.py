"""Storm outage risk and the crew-staging list, for one storm partition."""

import dagster as dg
import pandas as pd

from gridassets import warehouse as wh
from gridassets.defs.metadata import frame_schema, markdown_table
from gridassets.defs.partitions import storm_partitions
from gridassets.defs.policies import DUCKDB_POOL, OWNERS, TRANSIENT_RETRY
from gridassets.defs.resources import GridSettings, Warehouse
from gridassets.defs.storms import store
from gridassets.domain import models, prioritization, risk, storm_risk, training
from gridassets.domain.export import write_atomic_csv
from gridassets.domain.registry import NoServingModelError

# The storm is scored with the latest day the warehouse holds: the newest state and models.
LATEST = dg.LastPartitionMapping()
COMMON = dict(
    partitions_def=storm_partitions,
    group_name="storms",
    owners=OWNERS,
    pool=DUCKDB_POOL,
    retry_policy=TRANSIENT_RETRY,
    metadata={"schema": "storms", "partition_expr": "storm_id"},
    code_version="1",
)


def _storm_alerts(con, storm_id: str) -> pd.DataFrame:
    return con.execute(f"select * from {wh.qualified('storm_alerts')} where storm_id = ?",
                       [storm_id]).fetchdf()


@dg.asset(
    ins={"storm_alerts": dg.AssetIn(dagster_type=dg.Nothing)},
    deps=[dg.AssetDep("circuit_exposure_features", partition_mapping=LATEST),
          dg.AssetDep("outage_model", partition_mapping=LATEST),
          dg.AssetDep("outage_events", partition_mapping=LATEST), "circuits"],
    kinds={"duckdb", "scikitlearn"},
    **COMMON,
)
def storm_outage_risk(context: dg.AssetExecutionContext, warehouse: Warehouse,
                      settings: GridSettings):
    """Expected outages, customers interrupted and customer-minutes per affected circuit under
    the storm's forecast wind and rain, from the outage model."""
    storm_id = context.partition_key
    with warehouse.connect() as con:
        alerts = _storm_alerts(con, storm_id)
        conditions = store.current_zone_conditions(alerts)
        circuits = con.execute(f"select * from {wh.qualified('circuits')}").fetchdf()
        state = con.execute(
            f"select * from {wh.qualified('circuit_exposure_features')} "
            f"where date = (select max(date) from {wh.qualified('circuit_exposure_features')})"
        ).fetchdf()
        if state.empty:
            raise dg.Failure("no circuit exposure features in the warehouse: the storm needs the "
                             "circuits' current state (make run, or materialize the daily graph)",
                             allow_retries=False)
        day = pd.Timestamp(state["date"].iloc[0]).date()
        try:
            record, model = training.load_serving(con, models.OUTAGE, day,
                                                  settings.resolve().models_dir)
        except NoServingModelError as exc:
            raise dg.Failure(description=f"storm {storm_id}: {exc}", allow_retries=False) from exc
        events = con.execute(
            f"select * from {wh.qualified('outage_events')} where start_ts >= ? and cause in "
            f"({', '.join(repr(c) for c in models.ENVIRONMENT_CAUSES)})",
            [pd.Timestamp(day) - pd.Timedelta(days=365)]).fetchdf()
    exposure = storm_risk.storm_exposure(conditions, circuits, state)
    if exposure.empty:
        frame = pd.DataFrame({"storm_id": pd.Series(dtype=str), "circuit_id": pd.Series(dtype=str),
                              "expected_outages": pd.Series(dtype=float),
                              "model_version": pd.Series(dtype=str)})
    else:
        frame = storm_risk.storm_outage_risk(
            exposure, model.predict_proba(exposure),
            model.predict_proba(exposure.assign(years_since_trim=0.0)),
            circuits, risk.outage_history(events, circuits), record["version"])
    status = str(alerts["status"].iloc[0]) if len(alerts) else "unknown"
    return dg.Output(frame, metadata={
        "status": status, "circuits": len(frame), "state_date": str(day),
        "model_version": record["version"],
        "expected_outages": float(frame["expected_outages"].sum()) if len(frame) else 0.0,
        "dagster/column_schema": frame_schema(frame),
    })


@dg.asset(
    ins={"storm_outage_risk": dg.AssetIn(dagster_type=dg.Nothing),
         "storm_alerts": dg.AssetIn(dagster_type=dg.Nothing)},
    deps=[dg.AssetDep("transformer_risk", partition_mapping=LATEST), "circuits"],
    kinds={"duckdb", "csv"},
    **COMMON,
)
def storm_priority_circuits(context: dg.AssetExecutionContext, warehouse: Warehouse,
                            settings: GridSettings):
    """The storm's crew-staging list: affected circuits ranked by expected customer-minutes lost,
    with outage, transformer and vegetation components and a reason per circuit."""
    storm_id = context.partition_key
    with warehouse.connect() as con:
        alerts = _storm_alerts(con, storm_id)
        outage = con.execute(f"select * from {wh.qualified('storm_outage_risk')} where storm_id = ?",
                             [storm_id]).fetchdf()
        circuits = con.execute(f"select * from {wh.qualified('circuits')}").fetchdf()
        transformers = pd.DataFrame()
        if wh.table_exists(con, "transformer_risk"):
            transformers = con.execute(
                f"select * from {wh.qualified('transformer_risk')} "
                f"where date = (select max(date) from {wh.qualified('transformer_risk')})").fetchdf()
    status = str(alerts["status"].iloc[0]) if len(alerts) else "unknown"
    if not transformers.empty and not outage.empty:
        hours = float(outage["window_hours"].max())
        # Failures over the storm window, from the 30-day probability at a constant hazard.
        p_window = risk.horizon_probability(transformers["p_fail_30d"], 30, to_days=hours / 24)
        scaled = transformers.assign(
            p_fail_7d=p_window,
            risk_customer_minutes_7d=p_window * transformers["consequence_customer_minutes"])
        transformers = prioritization.transformer_by_circuit(
            scaled, pd.DataFrame({"circuit_id": pd.Series(dtype=object),
                                  "other_equipment_customer_minutes_7d": pd.Series(dtype=float)}))
    zones = sorted({z for zs in alerts["zones"].astype(str) for z in zs.split(",") if z})
    frame = storm_risk.rank_storm_circuits(storm_id, status, outage, transformers, circuits, zones)
    columns = ["storm_id", "rank", "circuit_id", "priority_score", "customers", "reason",
               "status", "zone", "critical_customers", "outage_score", "transformer_score",
               "vegetation_score", "expected_outages", "max_wind_gust_mph", "event",
               "outage_model_version"]
    frame = frame[columns]
    path = settings.resolve().outputs_dir / "storms" / storm_id / "priority.csv"
    write_atomic_csv(frame, path)
    context.log.info(f"storm {storm_id}: {len(frame)} circuits ({status}) -> {path}")
    return dg.Output(frame, metadata={
        "status": status, "csv": dg.MetadataValue.path(str(path)), "circuits": len(frame),
        "top_10": dg.MetadataValue.md(markdown_table(frame[
            ["rank", "circuit_id", "priority_score", "customers", "reason"]], max_rows=10)),
        "dagster/column_schema": frame_schema(frame),
    })
