"""Daily risk scores and the prioritized circuit list."""

from datetime import timedelta

import dagster as dg
import numpy as np
import pandas as pd

from gridassets.defs.audit import audited_output, require_inputs, scope_of
from gridassets.defs.metadata import (
    frame_schema,
    markdown_table,
    partition_days,
    per_partition,
    png_markdown,
    preview,
    round_number,
)
from gridassets.defs.partitions import daily_partitions
from gridassets.defs.policies import DAILY_BACKFILL, DAILY_FRESHNESS, DUCKDB_POOL, OWNERS, TRANSIENT_RETRY
from gridassets.defs.resources import GridSettings, Warehouse
from gridassets.domain import (
    audits,
    forecast_exposure,
    integrity,
    models,
    plots,
    prioritization,
    risk,
)
from gridassets.domain.export import write_atomic_csv
from gridassets.domain.registry import NoServingModelError
from gridassets.domain.schemas import PRIORITIZED_CIRCUITS
from gridassets.domain.storm_sheet import with_locations
from gridassets.storage import integrity as integrity_reads
from gridassets.storage import model_store
from gridassets.storage import scores as score_reads
from gridassets.storage import weather as weather_reads

COMMON = dict(
    group_name="scores",
    owners=OWNERS,
    partitions_def=daily_partitions,
    backfill_policy=DAILY_BACKFILL,
    pool=DUCKDB_POOL,
    retry_policy=TRANSIENT_RETRY,
    freshness_policy=DAILY_FRESHNESS,
    code_version="1",
)
NOTHING = dict(dagster_type=dg.Nothing)
CLIMATE = dg.TimeWindowPartitionMapping(start_offset=-(risk.CLIMATE_DAYS - 1),
                                        allow_nonexistent_upstream_partitions=True)
# Past forecasts whose errors are learned from, with the week each covered, up to the day scored.
ERROR_WINDOW_DAYS = forecast_exposure.ERROR_HISTORY_DAYS + 2 * forecast_exposure.DAYS
FORECAST_ERRORS = dg.TimeWindowPartitionMapping(start_offset=-ERROR_WINDOW_DAYS,
                                                allow_nonexistent_upstream_partitions=True)
# The integrity flags of the weeks before: since when a circuit's inputs have been suspect.
SUSPECT_SINCE = dg.TimeWindowPartitionMapping(start_offset=-integrity.REFERENCE_DAYS,
                                              allow_nonexistent_upstream_partitions=True)
# The outage component's past weeks, against which the list calibrates it.
CALIBRATION = dg.TimeWindowPartitionMapping(start_offset=-(risk.CALIBRATION_DAYS + 7),
                                            allow_nonexistent_upstream_partitions=True)
# Per-circuit state the outage component holds at today's value while weather varies.
STATE_COLUMNS = ["length_km", "tree_canopy_pct", "years_since_trim", "transformer_mean_age_years",
                 "transformer_share_over_40y", "transformer_max_thermal_ratio",
                 "transformers_with_warnings", "peak_loading"]


def _scored(asset: str, description: str, name: str = "scored") -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=asset, blocking=True, description=description)]


def _range(context):
    days = partition_days(context)
    return days, pd.Timestamp(days[0]), pd.Timestamp(days[-1]) + pd.Timedelta(days=1)


def _serving(con, spec: models.ModelSpec, day, cache: dict, models_dir):
    """The version serving `day`, loaded once per version; a dg.Failure when there is none."""
    try:
        record = model_store.serving_as_of(con, spec, day)
        if record is None:
            model_store.load_serving(con, spec, day, models_dir)  # raises with the explanation
        if record["version"] not in cache:
            cache[record["version"]] = model_store.load_serving(con, spec, day, models_dir)[1]
        return record["version"], cache[record["version"]]
    except NoServingModelError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


@dg.asset(
    ins={"transformer_health_features": dg.AssetIn(**NOTHING),
         "maintenance_model": dg.AssetIn(**NOTHING)},
    deps=["transformers", "circuits"],
    kinds={"duckdb", "scikitlearn"},
    metadata={"partition_expr": "date", "schema": "scores"},
    check_specs=_scored("transformer_risk", "One row per transformer and day, probabilities in "
                        "[0, 1], risk a number >= 0, the model version named."),
    **COMMON,
)
def transformer_risk(context: dg.AssetExecutionContext, warehouse: Warehouse,
                     settings: GridSettings):
    """Each transformer's 30-day failure probability, health index HI1-HI5 and customer-minutes at
    risk, with the model version that scored it."""
    days, start, end = _range(context)
    cache: dict = {}
    with warehouse.connect() as con:
        require_inputs(con, "transformer_risk", days, {
            "transformers": None, "circuits": None, "transformer_health_features": "date"})
        feats = score_reads.day_slice(con, "transformer_health_features", start, end)
        served = risk.customers_served(
            score_reads.transformers(con), score_reads.circuits(con))
        parts = []
        for day, rows in feats.groupby("date"):
            version, model = _serving(con, models.MAINTENANCE, day.date(), cache,
                                      settings.resolve().models_dir)
            parts.append(risk.transformer_risk(rows, model.predict_proba(rows), served, version))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if frame.empty:
        raise dg.Failure(f"no transformer health features for {days[0]}..{days[-1]}: "
                         "materialize transformer_health_features first", allow_retries=False)
    last = frame[frame["date"] == frame["date"].max()]
    yield from audited_output("transformer_risk", frame, {"scored": audits.check_rows(
        frame, ["transformer_id", "date"], days, probabilities=["p_fail_30d", "p_fail_7d"],
        nonnegative=["risk_customer_minutes_7d"], filled=["model_version", "health_index"])},
        scope=scope_of(days), metadata={
        "dagster/column_schema": frame_schema(frame),
        "model_versions": ", ".join(sorted(frame["model_version"].unique())),
        "health_index_counts": dg.MetadataValue.json(
            last["health_index"].value_counts().sort_index().to_dict()),
        "risk_distribution": png_markdown(plots.histogram(
            last["p_fail_30d"], f"30-day failure probability, {last['date'].iloc[0]:%Y-%m-%d}",
            "probability", log_y=True), "risk distribution"),
        "top_10": dg.MetadataValue.md(markdown_table(last.nlargest(10, "risk_customer_minutes_7d")[
            ["transformer_id", "circuit_id", "p_fail_30d", "health_index",
             "risk_customer_minutes_7d", "signals"]])),
    })


@dg.asset(
    ins={"circuit_exposure_features": dg.AssetIn(partition_mapping=CLIMATE, **NOTHING),
         "outage_model": dg.AssetIn(**NOTHING),
         "weather_forecasts": dg.AssetIn(partition_mapping=FORECAST_ERRORS, **NOTHING),
         "weather_observations": dg.AssetIn(partition_mapping=FORECAST_ERRORS, **NOTHING)},
    deps=["outage_events", "circuits"],
    kinds={"duckdb", "scikitlearn"},
    metadata={"partition_expr": "date", "schema": "scores"},
    check_specs=_scored("circuit_outage_risk", "One row per circuit and day, expected outages "
                        "and risk numbers >= 0, the model version and the weather used named."),
    **COMMON,
)
def circuit_outage_risk(context: dg.AssetExecutionContext, warehouse: Warehouse,
                        settings: GridSettings):
    """Each circuit's expected weather, tree and animal outages over the next seven days and the
    customer-minutes they put at risk: the outage model over the zone's weather forecast (drawn
    over its past errors), climatology where there is no forecast; with the model version."""
    days, start, end = _range(context)
    cache: dict = {}
    with warehouse.connect() as con:
        require_inputs(con, "circuit_outage_risk", days, {
            "circuits": None, "circuit_exposure_features": "date"})
        exposure = score_reads.day_slice(con, "circuit_exposure_features",
                                         start - pd.Timedelta(days=risk.CLIMATE_DAYS - 1), end)
        circuits = score_reads.circuits(con)
        events = score_reads.environmental_outages(con, start - pd.Timedelta(days=365), end)
        errors = weather_reads.forecast_errors(
            con, days[0] - timedelta(days=ERROR_WINDOW_DAYS), days[-1])
        parts = []
        for day in days:
            day_ts = pd.Timestamp(day)
            climate = risk.climate_frame(exposure, day_ts, STATE_COLUMNS)
            if climate.empty:
                continue
            version, model = _serving(con, models.OUTAGE, day, cache, settings.resolve().models_dir)
            today = exposure[exposure["date"] == day_ts]
            week = _week_ahead(con, day, errors, today)
            rows = None if week is None else week.rows.dropna(
                subset=forecast_exposure.WEATHER_FEATURES)
            if rows is not None and rows.empty:
                rows = None
            expected = risk.expected_outages(
                climate, model.predict_proba(climate),
                model.predict_proba(climate.assign(years_since_trim=0.0)),
                rows, *_scored_as_is_and_trimmed(model, rows))
            history = risk.outage_history(
                events[(events["start_ts"] >= day_ts - pd.Timedelta(days=365))
                       & (events["start_ts"] < day_ts + pd.Timedelta(days=1))], circuits)
            frame = risk.circuit_outage_risk(expected, today, history, version,
                                             None if week is None else week.summary)
            parts.append(frame.assign(forecast_spread="none: no forecast was issued"
                                      if week is None else week.spread))
    if not parts:
        raise dg.Failure(f"no circuit exposure features for {days[0]}..{days[-1]}: materialize "
                         "circuit_exposure_features first", allow_retries=False)
    frame = pd.concat(parts, ignore_index=True)
    last = frame[frame["date"] == frame["date"].max()]
    yield from audited_output("circuit_outage_risk", frame, {"scored": audits.check_rows(
        frame, ["circuit_id", "date"], days, probabilities=["p_outage_7d"],
        nonnegative=["expected_outages_7d", "risk_customer_minutes_7d"],
        filled=["model_version", "weather_source"])}, scope=scope_of(days), metadata={
        "dagster/column_schema": frame_schema(frame),
        "model_versions": ", ".join(sorted(frame["model_version"].unique())),
        "weather_source": dg.MetadataValue.json(
            frame["weather_source"].value_counts().sort_index().to_dict()),
        "forecast_spread": str(last["forecast_spread"].iloc[0]),
        "expected_outages_7d_total": round(float(last["expected_outages_7d"].sum()), 2),
        "preview": preview(frame.sort_values("risk_customer_minutes_7d", ascending=False)),
    })


def _scored_as_is_and_trimmed(model, rows: pd.DataFrame | None) -> tuple:
    """(P(outage), P(outage) trimmed today) of `rows`; () without rows."""
    if rows is None:
        return ()
    return model.predict_proba(rows), model.predict_proba(rows.assign(years_since_trim=0.0))


def _week_ahead(con, day, errors: pd.DataFrame, today: pd.DataFrame):
    """The week the forecast issued at the end of `day` shows, or None without one."""
    hourly = weather_reads.hourly_forecast(con, day)
    if hourly.empty:
        return None
    recent = weather_reads.observed_daily_precip(con, day - timedelta(days=1), day)
    return forecast_exposure.week_ahead(hourly, errors, recent, today, STATE_COLUMNS,
                                        pd.Timestamp(day))


@dg.asset(
    ins={"circuit_outage_risk": dg.AssetIn(**NOTHING)},
    deps=["circuits"],
    kinds={"duckdb"},
    metadata={"partition_expr": "date", "schema": "scores"},
    check_specs=_scored("vegetation_risk",
                        "One row per circuit and day, the trim score a number >= 0."),
    **COMMON,
)
def vegetation_risk(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Where trees threaten the lines: canopy, years since trim, and the customer-minutes a trim
    today would avoid this week."""
    days, start, end = _range(context)
    with warehouse.connect() as con:
        require_inputs(con, "vegetation_risk", days, {
            "circuits": None, "circuit_outage_risk": "date"})
        outage = score_reads.day_slice(con, "circuit_outage_risk", start, end)
        circuits = score_reads.circuit_lengths(con)
    frame = outage[["date", "circuit_id", "tree_canopy_pct", "years_since_trim",
                    "risk_customer_minutes_7d", "trim_avoidable_customer_minutes_7d",
                    "model_version"]].merge(circuits, on="circuit_id", how="left")
    frame["vegetation_score"] = frame.pop("trim_avoidable_customer_minutes_7d")
    frame["avoidable_share"] = np.where(
        frame["risk_customer_minutes_7d"] > 0,
        frame["vegetation_score"] / frame["risk_customer_minutes_7d"], 0.0)
    frame = frame.drop(columns="risk_customer_minutes_7d")
    last = frame[frame["date"] == frame["date"].max()]
    yield from audited_output("vegetation_risk", frame, {"scored": audits.check_rows(
        frame, ["circuit_id", "date"], days, nonnegative=["vegetation_score"])},
        scope=scope_of(days), metadata={
        "dagster/column_schema": frame_schema(frame),
        "top_10": dg.MetadataValue.md(markdown_table(last.nlargest(10, "vegetation_score"))),
    })


@dg.asset(
    ins={"circuit_outage_risk": dg.AssetIn(partition_mapping=CALIBRATION, **NOTHING),
         "vegetation_risk": dg.AssetIn(**NOTHING),
         "transformer_risk": dg.AssetIn(**NOTHING),
         "load_forecast": dg.AssetIn(**NOTHING),
         "telemetry_integrity": dg.AssetIn(partition_mapping=SUSPECT_SINCE, **NOTHING)},
    deps=["circuits"],
    kinds={"duckdb", "csv"},
    metadata={"partition_expr": "date", "schema": "scores"},
    check_specs=[
        dg.AssetCheckSpec("ranked", asset="prioritized_circuits", blocking=True,
                          description="Each day ranks every registry circuit once, 1..N by "
                                      "priority score."),
        *_scored("prioritized_circuits", "Every score and component a number >= 0, every row "
                 "with a reason.", name="scores"),
    ],
    **COMMON,
)
def prioritized_circuits(context: dg.AssetExecutionContext, warehouse: Warehouse,
                         settings: GridSettings):
    """The day's ranked list of circuits by expected customer-minutes at risk this week, combining
    outage, transformer, vegetation and loading risk, each row with its components and reason."""
    days, start, end = _range(context)
    with warehouse.connect() as con:
        require_inputs(con, "prioritized_circuits", days, {
            "circuits": None, "circuit_outage_risk": "date", "vegetation_risk": "date",
            "transformer_risk": "date", "load_forecast": "issue_date"})
        circuits = score_reads.circuits(con)
        outage = score_reads.day_slice(con, "circuit_outage_risk", start, end)
        outcomes = score_reads.outage_component_outcomes(
            con, start - pd.Timedelta(days=risk.CALIBRATION_DAYS + 7), end)
        vegetation = score_reads.day_slice(con, "vegetation_risk", start, end)
        transformers = score_reads.day_slice(con, "transformer_risk", start, end)
        loading = _loading(score_reads.forecast_peaks(con, start, end), circuits)
        year_before = start - pd.Timedelta(days=365)
        equipment = score_reads.equipment_outages(con, year_before, end)
        failures = score_reads.transformer_failures(con, year_before, end)
        first_day = score_reads.first_load_timestamp(con)
        flags = integrity_reads.integrity_rows(
            con, start - pd.Timedelta(days=integrity.REFERENCE_DAYS), end)
    outputs = settings.resolve().outputs_dir / "prioritized_circuits"
    parts = []
    for day in days:
        ts = pd.Timestamp(day)
        since, until = ts - pd.Timedelta(days=365), ts + pd.Timedelta(days=1)
        observed = (until - max(since, pd.Timestamp(first_day).normalize())).days
        other = risk.other_equipment_risk(
            equipment[(equipment["start_ts"] >= since) & (equipment["start_ts"] < until)],
            failures[(failures["failed_at"] >= since) & (failures["failed_at"] < until)],
            circuits, observed)
        factor, used = risk.calibration(outcomes, ts)
        day_outage = outage[outage["date"] == ts].assign(
            risk_customer_minutes_7d=lambda f: f["risk_customer_minutes_7d"] * factor)
        day_vegetation = vegetation[vegetation["date"] == ts].assign(
            vegetation_score=lambda f: f["vegetation_score"] * factor)
        ranked = prioritization.rank_circuits(
            ts, circuits, day_outage, day_vegetation,
            prioritization.transformer_by_circuit(transformers[transformers["date"] == ts], other),
            loading[loading["date"] == ts] if not loading.empty else loading)
        ranked = prioritization.with_integrity(
            ranked, integrity.circuit_suspicion(flags[flags["date"] <= ts], ts))
        parts.append(ranked.assign(outage_calibration=round(factor, 4),
                                   outage_calibration_days=used))
    frame = pd.concat(parts, ignore_index=True)
    last = parts[-1]
    # Each day's figures on its own partition (the Plots tab draws one point a day).
    per_partition(context, {day.isoformat(): {
        **prioritization.list_summary(ranked),
        "outage_calibration": float(ranked["outage_calibration"].iloc[0])}
        for day, ranked in zip(days, parts)})
    components = ["priority_score", "outage_score", "transformer_score", "vegetation_score",
                  "loading_score"]
    yield from audited_output("prioritized_circuits", frame, {
        "ranked": audits.check_ranking(frame, circuits["circuit_id"]),
        "scores": audits.check_rows(frame, ["circuit_id", "date"], days, nonnegative=components,
                                    filled=["reason"]),
    }, scope=scope_of(days), metadata={
        "dagster/column_schema": frame_schema(frame, PRIORITIZED_CIRCUITS),
        "csv": dg.MetadataValue.path(str(outputs / f"{days[-1].isoformat()}.csv")),
        "top_10": dg.MetadataValue.md(markdown_table(last[
            ["rank", "circuit_id", "priority_score", "outage_score", "transformer_score",
             "vegetation_score", "loading_score", "customers", "reason"]], max_rows=10)),
        "score_distribution": png_markdown(plots.histogram(
            last["priority_score"], f"Priority scores {days[-1]}",
            "expected customer-minutes at risk, next 7 days"), "score distribution"),
        "map": png_markdown(plots.circuit_map(
            with_locations(last, circuits), f"{days[-1]}: circuits by priority"), "map"),
        "component_totals": dg.MetadataValue.json(
            {c: round_number(last[c].sum()) for c in
             ("outage_score", "transformer_score", "vegetation_score", "loading_score")}),
    })
    # Exported only once the list is published: a refused list leaves the last CSV in place.
    for day, ranked in zip(days, parts):
        write_atomic_csv(_csv_columns(ranked), outputs / f"{day.isoformat()}.csv")


def _loading(fc: pd.DataFrame, circuits: pd.DataFrame) -> pd.DataFrame:
    """Loading component from the peaks of the day-ahead forecast issued on each day
    (`storage.scores.forecast_peaks`; empty if none yet)."""
    if fc.empty:
        return pd.DataFrame()
    fc = fc.merge(circuits[["circuit_id", "customers", "critical_customers", "capacity_mw"]],
                  on="circuit_id", how="left")
    fc["p_overload_day"] = risk.overload_probability(
        fc["forecast_peak_mw"], fc["lower_mw"], fc["upper_mw"], fc["capacity_mw"])
    per_outage = (risk.weighted_customers(fc["customers"], fc["critical_customers"])
                  * risk.DEFAULT_SHARE_INTERRUPTED * risk.DEFAULT_OUTAGE_MINUTES)
    fc["loading_score"] = risk.HORIZON_DAYS * fc["p_overload_day"] * per_outage
    return fc.rename(columns={"issue_date": "date"})


CSV_COLUMNS = ["date", "rank", "circuit_id", "zone", "priority_score", "outage_score",
               "transformer_score", "vegetation_score", "loading_score",
               "expected_customer_minutes_7d", "customers", "critical_customers", "reason",
               "telemetry_integrity", "outage_model_version", "maintenance_model_version"]


def _csv_columns(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[CSV_COLUMNS].copy()
    out["date"] = out["date"].dt.strftime("%Y-%m-%d")
    # customer-minutes: a tenth is more than any of these estimates can claim
    scores = [c for c in CSV_COLUMNS if c.endswith("_score") or c.startswith("expected_")]
    out[scores] = out[scores].round(1)
    return out
