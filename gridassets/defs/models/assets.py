"""Weekly models with a registry and a promotion gate."""

import json

import dagster as dg
import numpy as np
import pandas as pd

from gridassets.defs.metadata import (
    frame_schema,
    markdown_table,
    per_partition,
    png_markdown,
    round_number,
)
from gridassets.defs.partitions import weekly_partitions
from gridassets.defs.policies import DUCKDB_POOL, OWNERS, WEEKLY_FRESHNESS
from gridassets.defs.resources import GridSettings, Warehouse
from gridassets.domain import models, plots, registry, training
from gridassets.storage import model_store, training_data

# Week W learns from the ~30 weeks of daily features and events before it.
TRAINING_HISTORY = dg.TimeWindowPartitionMapping(
    start_offset=-30, end_offset=-1, allow_nonexistent_upstream_partitions=True
)


def _weeks(context: dg.AssetExecutionContext) -> list:
    window = context.partition_time_window
    weeks, day = [], window.start
    while day < window.end:
        weeks.append(day.date())
        day = day + pd.Timedelta(days=7)
    return weeks


def build_model_asset(spec: models.ModelSpec, features_asset: str, labels_asset: str,
                      description: str, kind: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.name,
        description=description,
        group_name="models",
        kinds={"scikitlearn", "duckdb"},
        owners=OWNERS,
        partitions_def=weekly_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[dg.AssetDep(features_asset, partition_mapping=TRAINING_HISTORY),
              dg.AssetDep(labels_asset, partition_mapping=TRAINING_HISTORY)],
        metadata={"partition_expr": "week_start", "schema": "models", "model": kind},
        pool=DUCKDB_POOL,
        freshness_policy=WEEKLY_FRESHNESS,
        check_specs=[dg.AssetCheckSpec(
            "trained", asset=spec.name,
            description="The week's training produced a model (a failure keeps the serving one)."
        )],
        code_version="1",
    )
    def _model(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: GridSettings):
        s = settings.resolve()
        results = []
        with warehouse.connect() as con:
            for week in _weeks(context):
                trained_at = registry.now_utc()
                data = training_data.load_week(con, spec, week, s.models_dir,
                                               pending=[r.record for r in results])
                result = model_store.save_week(
                    training.train_week(spec, week, data, s.seed, trained_at), s.models_dir)
                context.log.info(f"{spec.name} {week}: {result.record.status}: "
                                 f"{result.record.decision}")
                results.append(result)
        frame = pd.concat([r.record.frame() for r in results], ignore_index=True)
        last = results[-1]
        metadata = {
            "dagster/column_schema": frame_schema(frame),
            "decisions": dg.MetadataValue.md(markdown_table(
                frame[["week_start", "version", "status", "roc_auc", "pr_auc", "brier",
                       "serving_roc_auc_same_holdout", "decision"]], max_rows=20)),
            "status": last.record.status,
            "serving_version": last.record.serving_after or "none",
        }
        # Each week's own holdout numbers on its own partition (the Plots tab draws one point a
        # week); on the output they would stand for every week of a range, the last one's.
        per_partition(context, {r.record.week_start.isoformat(): {
            "status": r.record.status, **_numbers(r.record.metrics)} for r in results})
        if last.model is not None:
            metadata["window"] = dg.MetadataValue.json({
                "train": [str(last.record.train_start), str(last.record.train_end)],
                "holdout": [str(last.record.holdout_start), str(last.record.holdout_end)],
            })
            metadata["artifact"] = dg.MetadataValue.path(str(s.models_dir / last.record.artifact_path))
            metadata["importance"] = png_markdown(_importance(last.model), "feature importance")
        yield dg.Output(frame, metadata=metadata)
        failed = [r.record for r in results if r.record.status == "failed"]
        yield dg.AssetCheckResult(
            check_name="trained", passed=not failed,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(f"{r.week_start}: {r.decision}" for r in failed)
            or "every week trained",
        )

    return _model


# The week's numbers drawn in the asset's plots; the others (set sizes, rates) are shown as one
# JSON entry, so that the plots a person scrolls through are the model's quality.
PLOTTED_METRICS = ("roc_auc", "pr_auc", "brier", f"precision_at_{models.PRECISION_AT_K}",
                   "holdout_positives")


def _numbers(metrics_json: str) -> dict:
    """The holdout metrics of a week's record (none for a failed training)."""
    metrics = {k: v for k, v in json.loads(metrics_json or "{}").items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not metrics:
        return {}
    return {**{k: metrics[k] for k in PLOTTED_METRICS if k in metrics},
            "sets": dg.MetadataValue.json({k: round_number(v) if isinstance(v, float) else v
                                           for k, v in metrics.items()
                                           if k not in PLOTTED_METRICS})}


def _importance(model: models.TrainedModel) -> bytes:
    est = model.pipeline.named_steps["model"]
    names = list(model.pipeline.named_steps["impute"].get_feature_names_out(model.features))
    values = np.asarray(est.feature_importances_)
    top = np.argsort(values)[::-1][:15]
    return plots.bars([names[i] for i in top], values[top], f"{model.spec_name}: importance")


maintenance_model = build_model_asset(
    models.MAINTENANCE, "transformer_health_features", "transformer_failures",
    "Weekly random forest that predicts which transformers fail within 30 days, with its "
    "holdout evidence and promotion decision.", "RandomForestClassifier",
)
outage_model = build_model_asset(
    models.OUTAGE, "circuit_exposure_features", "outage_events",
    "Weekly gradient-boosting model of weather, tree and animal outages per circuit-day, with its "
    "holdout evidence and promotion decision.", "GradientBoostingClassifier",
)
