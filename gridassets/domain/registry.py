"""The model registry: every trained version, its evidence, and the promotion decision.

A version is recorded with its training window, holdout metrics, parameters, code version and the
path and SHA-256 of its artifact. A candidate is promoted only if its holdout ROC AUC is no worse
than the serving version's on the same holdout rows (neither model trained on them) minus
PROMOTION_TOLERANCE; otherwise the serving version stays. A training failure records a failed
version and leaves the serving version in place. Scoring for day D uses the latest promoted version
of a week starting on or before D, so a backfill never scores the past with a model trained later.

The registry tables and artifact files are read and written by `gridassets.storage.model_store`.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone

import joblib
import numpy as np
import pandas as pd

PROMOTION_TOLERANCE = 0.01  # ROC AUC
PRIMARY_METRIC = "roc_auc"
STATUSES = ("promoted", "rejected", "failed")


class NoServingModelError(RuntimeError):
    """No promoted model version exists for the day being scored."""


@dataclass
class VersionRecord:
    model_name: str
    version: str
    week_start: date
    status: str  # promoted | rejected | failed
    decision: str  # why, in words
    trained_at: datetime
    train_start: date | None
    train_end: date | None
    holdout_start: date | None
    holdout_end: date | None
    roc_auc: float | None
    pr_auc: float | None
    brier: float | None
    metrics: str  # JSON
    serving_before: str | None
    serving_roc_auc_same_holdout: float | None
    params: str  # JSON
    code_version: str
    artifact_path: str | None
    artifact_sha256: str | None
    serving_after: str | None

    def frame(self) -> pd.DataFrame:
        row = asdict(self)
        frame = pd.DataFrame([row])
        for col in ("week_start", "train_start", "train_end", "holdout_start", "holdout_end",
                    "trained_at"):
            frame[col] = pd.to_datetime(frame[col])
        for col in ("roc_auc", "pr_auc", "brier", "serving_roc_auc_same_holdout"):
            frame[col] = frame[col].astype(float)
        return frame


def decide(candidate_auc: float, serving_auc: float | None, serving_version: str | None
           ) -> tuple[bool, str]:
    """Promote or keep: the rule and its reason in words."""
    if serving_version is None:
        return True, "promoted: no version was serving"
    if serving_auc is None:
        return True, f"promoted: serving {serving_version} could not be scored on the new holdout"
    if candidate_auc >= serving_auc - PROMOTION_TOLERANCE:
        return True, (f"promoted: holdout ROC AUC {candidate_auc:.3f} vs serving "
                      f"{serving_version} {serving_auc:.3f} on the same rows "
                      f"(tolerance {PROMOTION_TOLERANCE})")
    return False, (f"kept {serving_version}: candidate ROC AUC {candidate_auc:.3f} is worse than "
                   f"serving {serving_auc:.3f} on the same holdout by more than "
                   f"{PROMOTION_TOLERANCE}")


def version_id(model_name: str, week_start: date, fingerprint: bytes) -> str:
    digest = hashlib.sha256(fingerprint).hexdigest()[:8]
    return f"{model_name.removesuffix('_model')}-{week_start.isoformat()}-{digest}"


def fingerprint(model, holdout_rows) -> bytes:
    """What tells one trained model from another, the same wherever and whenever it was trained:
    its parameters, features and prior correction, and its probabilities on the holdout rows.

    Not its pickled bytes: scikit-learn's tree arrays carry uninitialised padding, and whether
    equal attribute names are one string object depends on what the process did before, so the
    same model pickled to different bytes in a Celery worker and in a fresh process, and even
    from one run to the next. (The artifact's SHA-256 is still of its bytes: it checks the file.)"""
    # (predict_proba predicts in one thread, so these are the same bits every time.)
    probabilities = np.asarray(model.predict_proba(holdout_rows), dtype="<f8")
    head = json.dumps({"params": model.params, "features": list(model.features),
                       "negative_rate": model.negative_rate}, sort_keys=True, default=str)
    return head.encode() + b"\0" + probabilities.tobytes()


def dumps(model) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def loads(payload: bytes):
    """The model serialized by `dumps`."""
    return joblib.load(io.BytesIO(payload))


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def metrics_json(metrics: dict) -> str:
    return json.dumps(metrics, sort_keys=True)
