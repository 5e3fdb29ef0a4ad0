"""One week's model: train, judge against the serving version, record the decision.

Pure: `train_week` takes what `gridassets.storage.training_data.load_week` loaded (a `WeekData`:
the serving version and its model, the window, the training and holdout rows) and returns the
registry record, the model and the artifact bytes to store (`gridassets.storage.model_store`
writes them and fills in the artifact's path and SHA-256).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from gridassets.domain import models, registry
from gridassets.domain.registry import VersionRecord


@dataclass
class WeekData:
    """What the training of one week reads."""

    serving: dict | None  # the registry row serving the day before the week; None: none
    serving_model: models.TrainedModel | None  # its model; None when none or unreadable
    code_version: str  # of the code that labels the rows and trains the model
    window: models.Window | None = None
    train_rows: pd.DataFrame | None = None
    holdout_rows: pd.DataFrame | None = None
    error: Exception | None = None  # what stopped the loading: recorded as a failed training


@dataclass
class WeekResult:
    record: VersionRecord
    model: models.TrainedModel | None
    holdout: pd.DataFrame | None
    # The artifact to store under record.version; None for a failed training. Until it is
    # stored, the record's artifact_path and artifact_sha256 are None.
    payload: bytes | None = None


def serving_among(stored: dict | None, pending: Sequence[VersionRecord], day: date
                  ) -> dict | None:
    """The registry row serving `day`: the latest promoted version of a week starting on or before
    it, among the `stored` one (the registry table's, or None) and `pending` records (decided
    earlier in the same run)."""
    candidates = [r.__dict__ for r in pending
                  if r.status == "promoted" and r.week_start <= day]
    if stored is not None:
        stored = {**stored, "week_start": pd.Timestamp(stored["week_start"]).date()}
        candidates.append(stored)
    if not candidates:
        return None
    return max(candidates, key=lambda r: r["week_start"])


def week_window(spec: models.ModelSpec, week_start: date, first_available: date | None
                ) -> models.Window:
    """The training window of the week, given the first day of features (None: no features).

    Raises TrainingError when there are no features or too short a history."""
    if first_available is None:
        raise models.TrainingError(f"{spec.name}: no features have been materialized yet")
    return models.training_window(spec, week_start, first_available)


def train_week(spec: models.ModelSpec, week_start: date, data: WeekData, seed: int,
               trained_at: datetime) -> WeekResult:
    """Train the model of the week starting `week_start` and decide whether it serves.

    Never raises for a training problem: a failure (in `data.error`, or raised while training)
    is recorded (status "failed", with the reason) and the serving version stays.
    """
    serving_version = data.serving["version"] if data.serving else None
    base = dict(model_name=spec.name, week_start=week_start, trained_at=trained_at,
                serving_before=serving_version, code_version=data.code_version)
    failure = data.error
    if failure is None:
        try:
            model = models.train(spec, data.train_rows, data.holdout_rows, seed)
        except Exception as exc:  # a failed training must never take the serving version down
            failure = exc
    if failure is not None:
        reason = f"training failed ({type(failure).__name__}: {failure}); serving version stays"
        record = VersionRecord(
            **base, version=f"{spec.name.removesuffix('_model')}-{week_start}-failed",
            status="failed", decision=reason,
            **_window_fields(data.window), roc_auc=None, pr_auc=None, brier=None, metrics="{}",
            serving_roc_auc_same_holdout=None, params="{}", artifact_path=None,
            artifact_sha256=None, serving_after=serving_version,
        )
        return WeekResult(record, None, None)

    serving_auc = None
    if data.serving is not None and data.serving_model is not None:
        try:
            serving_auc = models.evaluate(data.serving_model, data.holdout_rows,
                                          spec.entity)["roc_auc"]
        except Exception:  # an incompatible serving model cannot block a new one
            serving_auc = None
    promote, reason = registry.decide(model.metrics["roc_auc"], serving_auc, serving_version)
    payload = registry.dumps(model)
    version = registry.version_id(spec.name, week_start,
                                  registry.fingerprint(model, data.holdout_rows))
    record = VersionRecord(
        **base, version=version, status="promoted" if promote else "rejected", decision=reason,
        **_window_fields(data.window), roc_auc=model.metrics["roc_auc"],
        pr_auc=model.metrics["pr_auc"], brier=model.metrics["brier"],
        metrics=registry.metrics_json(model.metrics), serving_roc_auc_same_holdout=serving_auc,
        params=models.params_json(model), artifact_path=None, artifact_sha256=None,
        serving_after=version if promote else serving_version,
    )
    return WeekResult(record, model, data.holdout_rows, payload)


def _window_fields(window: models.Window | None) -> dict:
    if window is None:
        return dict(train_start=None, train_end=None, holdout_start=None, holdout_end=None)
    return dict(train_start=window.train_start, train_end=window.train_end,
                holdout_start=window.holdout_start, holdout_end=window.holdout_end)
