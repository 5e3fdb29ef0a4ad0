"""Storm outage risk and the crew-staging list, for one storm partition.

Both fail, naming what to materialize first, rather than write a list from missing inputs (no
storm_alerts rows for the storm, no circuits, no circuit state). Each judges its checks on the
new rows before writing: a failed blocking check writes nothing (the CSV included); passed
results are reported after the output, so they attach to the new materialization. The circuit
state's age is judged against the storm's latest alert (`storm_risk.StateAge`): stale state still
gives a list, which says so in its metadata, its check (a warning), the run's log and every row's
reason. The warehouse reads are `gridassets.storage.storms`.
"""

import dagster as dg
import pandas as pd

from gridassets import warehouse as wh
from gridassets.defs.metadata import frame_schema, markdown_table, png_markdown, round_number
from gridassets.defs.partitions import storm_partitions
from gridassets.defs.policies import DUCKDB_POOL, OWNERS, TRANSIENT_RETRY, storm_step
from gridassets.defs.resources import GridSettings, Warehouse
from gridassets.domain import models, plots, prioritization, risk, storm_risk, storm_sheet
from gridassets.domain.registry import NoServingModelError
from gridassets.domain.schemas import STORM_PRIORITY_CIRCUITS
from gridassets.domain.storm_messages import current_zone_conditions
from gridassets.storage import model_store
from gridassets.storage import storm_lists
from gridassets.storage import storms as storm_reads
from gridassets.storage import weather as weather_reads

# The storm is scored with the latest day the warehouse holds: the newest state and models.
LATEST = dg.LastPartitionMapping()
COMMON = dict(
    partitions_def=storm_partitions,
    group_name="storms",
    owners=OWNERS,
    pool=DUCKDB_POOL,
    retry_policy=TRANSIENT_RETRY,
    metadata={"schema": "storms", "partition_expr": "storm_id"},
    code_version="2",
)
CANCELLED = "cancelled"

PRIORITY_COLUMNS = ["storm_id", "rank", "circuit_id", "priority_score", "customers", "reason",
                    "status", "zone", "critical_customers", "outage_score", "transformer_score",
                    "vegetation_score", "expected_outages", "max_wind_gust_mph", "event",
                    "outage_model_version", "state_date", "state_age_days", "conditions_source",
                    "window_start", "window_end", "latitude", "longitude"]


def _state_check(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "circuit_state_fresh", asset=asset, blocking=False,
        description="The circuit state the storm was scored with is no older than "
                    "GRIDASSETS_STORM_STATE_MAX_AGE_DAYS, counted from the storm's latest alert, "
                    "and every circuit of the storm's zones has one. A warning: the list still "
                    "comes out.",
    )


SCORED = dg.AssetCheckSpec(
    "circuits_scored", asset="storm_outage_risk", blocking=True,
    description="Every affected circuit is scored once, with expected outages of 0 or more and "
                "the model version; only a cancelled storm scores none. Checked before the write.",
)
OUTAGE_STATE = _state_check("storm_outage_risk")
RANKED = dg.AssetCheckSpec(
    "ranked", asset="storm_priority_circuits", blocking=True,
    description="The list is not empty, ranked 1..N by falling priority score, each circuit "
                "once. Checked before the table and the CSV are written.",
)
PRIORITY_STATE = _state_check("storm_priority_circuits")


def _fail(storm_id: str, text: str) -> dg.Failure:
    return dg.Failure(description=f"storm {storm_id}: {text}", allow_retries=False)


def _storm_alerts(con, storm_id: str) -> pd.DataFrame:
    """The storm's storm_alerts rows; fails if there are none (the table or the partition)."""
    alerts = storm_reads.storm_alerts(con, storm_id)
    if not alerts.empty:
        return alerts
    raise _fail(storm_id, f"storm_alerts has no rows for this storm: materialize storm_alerts "
                          f"for partition {storm_id} first")


def _circuits(con, storm_id: str) -> pd.DataFrame:
    circuits = storm_reads.circuits(con)
    if circuits.empty:
        raise _fail(storm_id, "the warehouse holds no circuits: materialize circuits first "
                              "(make run, or the fleet assets)")
    return circuits


def _state_age(context, storm_id: str, alerts: pd.DataFrame, state_date, settings: GridSettings
               ) -> storm_risk.StateAge | None:
    """The state's age, with the warning in the run's log when it is stale."""
    if state_date is None or pd.isna(state_date):
        return None
    age = storm_risk.StateAge(pd.Timestamp(state_date).date(), storm_risk.storm_alert_time(alerts),
                              settings.resolve().storm_state_max_age_days)
    if age.stale:
        context.log.warning(
            f"storm {storm_id}: scored on {age.describe()} at the storm's latest alert "
            f"({age.alert_time:%Y-%m-%d %H:%M} UTC), over the limit of {age.max_days} days "
            "(GRIDASSETS_STORM_STATE_MAX_AGE_DAYS): materialize the daily graph up to the alert's "
            "day and re-run the storm for a list on current state")
    return age


def _state_result(spec: dg.AssetCheckSpec, age: storm_risk.StateAge | None,
                  missing: list[str] | None = None) -> dg.AssetCheckResult:
    missing = missing or []
    problems = []
    if age is not None and age.stale:
        problems.append(f"{age.describe()}, over the limit of {age.max_days} days")
    if missing:
        problems.append(f"no circuit state for {', '.join(missing)}: not scored")
    if age is None:
        text, metadata = "no circuit state used (the storm is cancelled)", {}
    else:
        text = "; ".join(problems) or f"{age.describe()} (limit {age.max_days} days)"
        metadata = {"state_date": str(age.state_date), "state_age_days": age.days,
                    "max_age_days": age.max_days}
    if missing:
        metadata["circuits_without_state"] = ", ".join(missing)
    return dg.AssetCheckResult(check_name=spec.name, passed=not problems,
                               severity=dg.AssetCheckSeverity.WARN, description=text,
                               metadata=metadata)


def _state_metadata(age: storm_risk.StateAge | None) -> dict:
    if age is None:
        return {"state_date": "", "circuit_state": "none used (storm cancelled)"}
    return {"state_date": str(age.state_date), "state_age_days": age.days,
            "circuit_state": age.note() or age.describe()}


@dg.asset(
    ins={"storm_alerts": dg.AssetIn(dagster_type=dg.Nothing)},
    deps=[dg.AssetDep("circuit_exposure_features", partition_mapping=LATEST),
          dg.AssetDep("outage_model", partition_mapping=LATEST),
          dg.AssetDep("outage_events", partition_mapping=LATEST), "circuits"],
    kinds={"duckdb", "scikitlearn"},
    check_specs=[SCORED, OUTAGE_STATE],
    op_tags=storm_step(2),
    **COMMON,
)
def storm_outage_risk(context: dg.AssetExecutionContext, warehouse: Warehouse,
                      settings: GridSettings):
    """Expected outages, customers interrupted and customer-minutes per affected circuit under
    the storm's forecast wind and rain, from the outage model."""
    storm_id = context.partition_key
    with warehouse.connect() as con:
        alerts = _storm_alerts(con, storm_id)
        status = str(alerts["status"].iloc[0])
        conditions = current_zone_conditions(alerts)
        circuits = _circuits(con, storm_id)
        if conditions.empty:
            scored = None  # cancelled: no zone left to score, and no state or model is used
        else:
            scored = _score(con, storm_id, alerts, conditions, circuits, settings)
    if scored is None:
        frame, version, missing, state_date = _empty_risk(), None, [], None
    else:
        frame, version, missing, state_date = scored
    age = _state_age(context, storm_id, alerts, state_date, settings)
    frame = storm_risk.with_state(frame, age)
    if missing:
        context.log.warning(f"storm {storm_id}: no circuit state for {', '.join(missing)} "
                            "(in the storm's zones): they are not scored")

    problems = storm_risk.outage_risk_problems(frame, status)
    checks = [dg.AssetCheckResult(
        check_name=SCORED.name, passed=not problems,
        description="; ".join(problems) or f"{len(frame)} circuit(s) scored ({status})",
        metadata={"circuits": len(frame)},
    ), _state_result(OUTAGE_STATE, age, missing)]
    if problems:
        yield from checks
        raise _fail(storm_id, f"check {SCORED.name} failed, nothing written: "
                              + "; ".join(problems))
    yield dg.Output(frame, metadata={
        "status": status, "circuits": len(frame), **_state_metadata(age),
        "model_version": version or "",
        "expected_outages": round_number(frame["expected_outages"].sum()) if len(frame) else 0.0,
        "dagster/column_schema": frame_schema(frame),
    })
    # After the output: results attach to the new materialization.
    yield from checks


def _score(con, storm_id: str, alerts: pd.DataFrame, conditions: pd.DataFrame,
           circuits: pd.DataFrame, settings: GridSettings):
    """Scores the circuits of the storm's current zones: (frame, model version, circuits of
    those zones without state, state date). Fails naming what to materialize when an input is
    missing."""
    state = storm_reads.latest_circuit_state(con)
    if state.empty:
        raise _fail(storm_id, "no circuit exposure features in the warehouse: the storm needs the "
                              "circuits' current state; materialize circuit_exposure_features "
                              "(make run, or the daily graph) first")
    day = pd.Timestamp(state["date"].iloc[0]).date()
    zones = sorted(set(conditions["zone"]))
    affected = circuits[circuits["zone"].isin(zones)]
    if affected.empty:
        raise _fail(storm_id, f"no circuit in the storm's zones ({', '.join(zones)}): check "
                              "that circuits holds the fleet the alert was matched against")
    missing = sorted(set(affected["circuit_id"]) - set(state["circuit_id"]))
    if len(missing) == len(affected):
        raise _fail(storm_id, f"circuit_exposure_features of {day} has no row for the circuits "
                              f"of the storm's zones ({', '.join(missing)}): materialize "
                              f"circuit_exposure_features for {day} first")
    if not wh.table_exists(con, "outage_events"):
        raise _fail(storm_id, "the warehouse holds no outage_events (each circuit's past outages "
                              "size its customers interrupted): materialize outage_events first")
    try:
        record, model = model_store.load_serving(con, models.OUTAGE, day,
                                                 settings.resolve().models_dir)
    except NoServingModelError as exc:
        raise _fail(storm_id, str(exc)) from exc
    events = storm_reads.environmental_outages_since(
        con, pd.Timestamp(day) - pd.Timedelta(days=365))
    forecast = weather_reads.latest_forecast(
        con, zones, storm_risk.storm_alert_time(alerts),
        conditions["onset"].min(), pd.concat([conditions["ends"], conditions["expires"]]).max())
    exposure = storm_risk.storm_exposure(conditions, circuits, state, forecast)
    frame = storm_risk.storm_outage_risk(
        exposure, model.predict_proba(exposure),
        model.predict_proba(exposure.assign(years_since_trim=0.0)),
        circuits, risk.outage_history(events, circuits), record["version"])
    return frame, record["version"], missing, day


def _empty_risk() -> pd.DataFrame:
    return pd.DataFrame({"storm_id": pd.Series(dtype="string"),
                         "circuit_id": pd.Series(dtype="string"),
                         "expected_outages": pd.Series(dtype=float),
                         "model_version": pd.Series(dtype="string")})


@dg.asset(
    ins={"storm_outage_risk": dg.AssetIn(dagster_type=dg.Nothing),
         "storm_alerts": dg.AssetIn(dagster_type=dg.Nothing)},
    deps=[dg.AssetDep("transformer_risk", partition_mapping=LATEST), "circuits"],
    kinds={"duckdb", "csv"},
    check_specs=[RANKED, PRIORITY_STATE],
    op_tags=storm_step(3),
    **COMMON,
)
def storm_priority_circuits(context: dg.AssetExecutionContext, warehouse: Warehouse,
                            settings: GridSettings):
    """The storm's crew-staging list: affected circuits ranked by expected customer-minutes lost,
    with outage, transformer and vegetation components and a reason per circuit."""
    storm_id = context.partition_key
    with warehouse.connect() as con:
        alerts = _storm_alerts(con, storm_id)
        status = str(alerts["status"].iloc[0])
        outage = storm_reads.storm_outage_risk(con, storm_id)
        if outage.empty and status != CANCELLED:
            raise _fail(storm_id, f"storm_outage_risk has no rows for this {status} storm: "
                                  f"materialize storm_outage_risk for partition {storm_id} first")
        circuits = _circuits(con, storm_id)
        transformers = storm_reads.latest_transformer_risk(con)
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
    elif status != CANCELLED:
        context.log.warning(f"storm {storm_id}: no transformer_risk in the warehouse; the list "
                            "ranks without transformer risk and every reason says so")
    age = None
    if status != CANCELLED:
        state_date = outage["state_date"].dropna().max() if "state_date" in outage else None
        age = _state_age(context, storm_id, alerts, state_date, settings)
        if age is None:
            raise _fail(storm_id, "storm_outage_risk rows do not say which circuit state they "
                                  f"were scored with: materialize storm_outage_risk for "
                                  f"partition {storm_id} again first")
    zones = sorted({z for zs in alerts["zones"].astype(str) for z in zs.split(",") if z})
    frame = storm_sheet.with_locations(
        storm_risk.rank_storm_circuits(storm_id, status, outage, transformers, circuits, zones,
                                       state=age), circuits)[PRIORITY_COLUMNS]

    problems = storm_risk.ranking_problems(frame)
    checks = [dg.AssetCheckResult(
        check_name=RANKED.name, passed=not problems,
        description="; ".join(problems) or f"{len(frame)} circuit(s) ranked 1..{len(frame)}",
        metadata={"circuits": len(frame)},
    ), _state_result(PRIORITY_STATE, age)]
    if problems:
        yield from checks
        raise _fail(storm_id, f"check {RANKED.name} failed, nothing written: "
                              + "; ".join(problems))
    files = storm_lists.storm_list_files(settings.resolve().outputs_dir, storm_id)
    path = files.sheet
    sheet, by_zone = storm_sheet.planner_sheet(frame), storm_sheet.zone_summary(frame)
    yield dg.Output(frame, metadata={
        "status": status, "csv": dg.MetadataValue.path(str(path)), "circuits": len(frame),
        **_state_metadata(age), **_planner_metadata(storm_id, frame, by_zone, files),
        "top_10": dg.MetadataValue.md(markdown_table(frame[
            ["rank", "circuit_id", "priority_score", "customers", "reason"]], max_rows=10,
            units={"priority_score": "cust-min, storm"})),
        "dagster/column_schema": frame_schema(frame, STORM_PRIORITY_CIRCUITS),
    })
    # Exported once the list is published, so a refused or failed write leaves the last files.
    storm_lists.write_storm_list(files, sheet, by_zone, storm_sheet.sheet_geojson(sheet))
    context.log.info(f"storm {storm_id}: {len(frame)} circuits ({status}) -> {path}, "
                     f"{files.zones.name}, {files.geojson.name}")
    yield from checks


ZONE_TABLE_COLUMNS = {"zone": "string", "gust_mph": "int", "alert_onset_local": "string",
                      "alert_end_local": "string", "circuits": "int", "customers": "int",
                      "expected_outages": "float", "priority_customer_minutes": "int",
                      "suggested_crews": "int"}


def _planner_metadata(storm_id: str, frame: pd.DataFrame, by_zone: pd.DataFrame,
                      files: storm_lists.StormListFiles) -> dict:
    """The planner's files, the zone summary as a table, the crews to stage and the map."""
    records = [dg.TableRecord({c: _cell(r[c]) for c in ZONE_TABLE_COLUMNS})
               for r in by_zone.to_dict(orient="records")]
    return {
        "zones_csv": dg.MetadataValue.path(str(files.zones)),
        "geojson": dg.MetadataValue.path(str(files.geojson)),
        "suggested_crews": int(by_zone["suggested_crews"].sum()),
        "zones": dg.MetadataValue.table(records, schema=dg.TableSchema(columns=[
            dg.TableColumn(c, t) for c, t in ZONE_TABLE_COLUMNS.items()])),
        "map": png_markdown(plots.circuit_map(
            frame, f"storm {storm_id}: {len(frame)} circuits by priority"), "map"),
    }


def _cell(v):
    """A metadata table cell: text, int, float or None."""
    if v is None or v is pd.NA or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, str):
        return v
    return float(v) if isinstance(v, float) else int(v)
