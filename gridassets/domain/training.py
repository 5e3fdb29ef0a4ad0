"""One week's model: train, judge against the serving version, record the decision.

Also loads the version that serves a given day, for scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from gridassets.domain import models, registry
from gridassets.domain.registry import NoServingModelError, VersionRecord
from gridassets.warehouse import classify, qualified, table_exists

FEATURE_TABLE = {
    models.MAINTENANCE.name: "transformer_health_features",
    models.OUTAGE.name: "circuit_exposure_features",
}


@dataclass
class WeekResult:
    record: VersionRecord
    model: models.TrainedModel | None
    holdout: pd.DataFrame | None


def serving_as_of(con, spec: models.ModelSpec, day: date,
                  pending: Sequence[VersionRecord] = ()) -> dict | None:
    """The registry row serving `day`: the latest promoted version of a week starting on or before
    it, among the stored records and `pending` ones (decided earlier in the same run)."""
    stored = (registry.serving_record(con, qualified(spec.name), day)
              if table_exists(con, spec.name) else None)
    candidates = [r.__dict__ for r in pending
                  if r.status == "promoted" and r.week_start <= day]
    if stored is not None:
        stored = {**stored, "week_start": pd.Timestamp(stored["week_start"]).date()}
        candidates.append(stored)
    if not candidates:
        return None
    return max(candidates, key=lambda r: r["week_start"])


def load_serving(con, spec: models.ModelSpec, day: date, models_dir: Path
                 ) -> tuple[dict, models.TrainedModel]:
    """The serving version for `day` and its model (artifact paths are relative to `models_dir`).
    Raises NoServingModelError if there is none."""
    record = serving_as_of(con, spec, day)
    if record is None:
        raise NoServingModelError(
            f"no promoted {spec.name} version serves {day}: materialize {spec.name} for the week "
            f"of {day} (or an earlier week) first; every version so far failed or was rejected"
            if table_exists(con, spec.name) else
            f"no {spec.name} has been trained yet: materialize {spec.name} for the week of {day}"
        )
    return record, registry.load_artifact(Path(models_dir) / record["artifact_path"],
                                          record["artifact_sha256"])


def train_week(con, spec: models.ModelSpec, week_start: date, models_dir: Path, seed: int,
               pending: Sequence[VersionRecord] = ()) -> WeekResult:
    """Train the model of the week starting `week_start` and decide whether it serves.

    Never raises for a training problem: a failure is recorded (status "failed", with the reason)
    and the serving version stays.
    """
    serving = serving_as_of(con, spec, week_start - timedelta(days=1), pending)
    serving_version = serving["version"] if serving else None
    code = models.code_version()
    base = dict(model_name=spec.name, week_start=week_start, trained_at=registry.now_utc(),
                serving_before=serving_version, code_version=code)
    window = None
    try:
        first = con.execute(
            f"select min(date) from {qualified(FEATURE_TABLE[spec.name])}").fetchall()[0][0]
        if first is None:
            raise models.TrainingError(f"{spec.name}: no features have been materialized yet")
        window = models.training_window(spec, week_start, pd.Timestamp(first).date())
        rows = models.ROWS[spec.name]
        train_rows = rows(con, window.train_start, window.train_end)
        holdout_rows = rows(con, window.holdout_start, window.holdout_end)
        model = models.train(spec, train_rows, holdout_rows, seed)
    except Exception as exc:  # a failed training must never take the serving version down
        if classify(exc, "the warehouse") is not None:
            # A damaged or full warehouse is not a failed training: recording one would write
            # to the file, and DuckDB can commit writes made after a checksum error.
            raise
        reason = f"training failed ({type(exc).__name__}: {exc}); serving version stays"
        record = VersionRecord(
            **base, version=f"{spec.name.removesuffix('_model')}-{week_start}-failed",
            status="failed", decision=reason,
            **_window_fields(window), roc_auc=None, pr_auc=None, brier=None, metrics="{}",
            serving_roc_auc_same_holdout=None, params="{}", artifact_path=None,
            artifact_sha256=None, serving_after=serving_version,
        )
        return WeekResult(record, None, None)

    serving_auc = None
    if serving is not None:
        try:
            old = registry.load_artifact(Path(models_dir) / serving["artifact_path"],
                                         serving["artifact_sha256"])
            serving_auc = models.evaluate(old, holdout_rows, spec.entity)["roc_auc"]
        except Exception:  # an unreadable or incompatible serving model cannot block a new one
            serving_auc = None
    promote, reason = registry.decide(model.metrics["roc_auc"], serving_auc, serving_version)
    payload = registry.dumps(model)
    version = registry.version_id(spec.name, week_start, payload)
    path, sha = registry.save_artifact(payload, models_dir, spec.name, version)
    record = VersionRecord(
        **base, version=version, status="promoted" if promote else "rejected", decision=reason,
        **_window_fields(window), roc_auc=model.metrics["roc_auc"],
        pr_auc=model.metrics["pr_auc"], brier=model.metrics["brier"],
        metrics=registry.metrics_json(model.metrics), serving_roc_auc_same_holdout=serving_auc,
        params=models.params_json(model), artifact_sha256=sha,
        # relative to the models folder, so a data folder can be moved or copied whole
        artifact_path=str(path.relative_to(models_dir)),
        serving_after=version if promote else serving_version,
    )
    return WeekResult(record, model, holdout_rows)


def _window_fields(window: models.Window | None) -> dict:
    if window is None:
        return dict(train_start=None, train_end=None, holdout_start=None, holdout_end=None)
    return dict(train_start=window.train_start, train_end=window.train_end,
                holdout_start=window.holdout_start, holdout_end=window.holdout_end)
