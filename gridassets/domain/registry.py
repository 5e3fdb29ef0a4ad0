"""The model registry: every trained version, its evidence, and the promotion decision.

A version is recorded with its training window, holdout metrics, parameters, code version and the
path and SHA-256 of its artifact. A candidate is promoted only if its holdout ROC AUC is no worse
than the serving version's on the same holdout rows (neither model trained on them) minus
PROMOTION_TOLERANCE; otherwise the serving version stays. A training failure records a failed
version and leaves the serving version in place. Scoring for day D uses the latest promoted version
of a week starting on or before D, so a backfill never scores the past with a model trained later.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import joblib
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


def version_id(model_name: str, week_start: date, payload: bytes) -> str:
    return f"{model_name.removesuffix('_model')}-{week_start.isoformat()}-{hashlib.sha256(payload).hexdigest()[:8]}"


def dumps(model) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def save_artifact(payload: bytes, models_dir: Path, model_name: str, version: str) -> tuple[Path, str]:
    """Write the artifact atomically; returns its path and SHA-256."""
    folder = Path(models_dir) / model_name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}.joblib"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)
    return path, hashlib.sha256(payload).hexdigest()


def load_artifact(path: str | Path, sha256: str):
    """Load a model artifact, refusing one whose bytes differ from what was registered."""
    payload = Path(path).read_bytes()
    actual = hashlib.sha256(payload).hexdigest()
    if actual != sha256:
        raise ValueError(f"{path}: SHA-256 {actual[:12]} differs from the registered {sha256[:12]}")
    return joblib.load(io.BytesIO(payload))


def serving_record(con, table: str, as_of: date) -> dict | None:
    """The latest promoted version of a week starting on or before `as_of` (None if none).

    `table` is the qualified registry table of one model (code, not data)."""
    rows = con.execute(
        f"select * from {table} where status = 'promoted' and week_start <= ? "
        "order by week_start desc limit 1",
        [pd.Timestamp(as_of)],
    ).fetchdf()
    return None if rows.empty else rows.iloc[0].to_dict()


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def metrics_json(metrics: dict) -> str:
    return json.dumps(metrics, sort_keys=True)
