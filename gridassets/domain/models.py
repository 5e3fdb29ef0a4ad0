"""The maintenance and outage models: training windows, training, held-out evaluation, scoring.

Both models are trained for a week W on data before W, with a time-based holdout right before W:

maintenance (transformer-days; label: the unit fails within the next HORIZON_DAYS days)
    |---- train (up to 120 days) ----|-- purge 30 d --|-- holdout 28 d --|-- 30 d --| W
    The purge gap keeps training labels (which look 30 days ahead) out of the holdout period, and
    the last 30 days before W are left out because their labels are not yet known at W.
outage (circuit-days; label: an outage from the environment starts that day: weather, vegetation,
animal or unknown cause — equipment failures and overloads are the other models' part)
    |---- train (up to 150 days) ----|-- gap 1 d --|-- holdout 28 d --| W

Class imbalance: negatives are subsampled to at most NEGATIVES_PER_POSITIVE per positive in the
training set (all positives kept), and predicted probabilities are corrected for that sampling
(prior shift: odds_true = rate x odds_sample), so they stay calibrated. Holdout metrics are computed
on every holdout row, unsampled.

The labelled rows come from the warehouse through `gridassets.storage.training_data`; everything
here takes and returns frames.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import ModuleType

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline

HORIZON_DAYS = 30
HOLDOUT_DAYS = 28
NEGATIVES_PER_POSITIVE = 10
MIN_POSITIVES = 5  # in training and in the holdout, or the model cannot be judged
PRECISION_AT_K = 20  # transformers (or circuits) a crew could look at per day
# Outage causes the outage model predicts; equipment and overload are the other components.
ENVIRONMENT_CAUSES = ("weather", "vegetation", "animal", "unknown")

MAINTENANCE_FEATURES = [
    "rating_kva", "age_years", "history_days",
    "load_mean_30d_pct", "load_peak_30d_pct", "overload_hours_30d",
    "thermal_index_7d_c", "thermal_index_30d_c", "thermal_trend_30d", "thermal_ratio",
    "oil_max_7d_c", "hot_spot_max_7d_c",
    "h2_7d_ppm", "h2_trend_30d", "c2h2_7d_ppm", "c2h2_trend_30d", "c2h4_7d_ppm", "c2h4_trend_30d",
    "has_gas_monitor", "days_since_replacement",
]
OUTAGE_FEATURES = [
    "peak_gust_mph", "max_wind_mph", "hours_gust_over_40", "hours_gust_over_55",
    "precip_mm", "precip_72h_mm", "temp_min_c", "temp_max_c",
    "length_km", "tree_canopy_pct", "years_since_trim",
    "transformer_mean_age_years", "transformer_share_over_40y", "transformer_max_thermal_ratio",
    "transformers_with_warnings", "peak_loading",
]


class TrainingError(RuntimeError):
    """Training could not produce a model that can be judged (too little data, no positives...)."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    entity: str
    features: tuple[str, ...]
    train_days: int
    min_train_days: int
    purge_days: int
    label_lag_days: int  # days before W whose labels are not yet known


MAINTENANCE = ModelSpec("maintenance_model", "transformer_id", tuple(MAINTENANCE_FEATURES),
                        train_days=120, min_train_days=45, purge_days=HORIZON_DAYS,
                        label_lag_days=HORIZON_DAYS)
OUTAGE = ModelSpec("outage_model", "circuit_id", tuple(OUTAGE_FEATURES),
                   train_days=150, min_train_days=45, purge_days=1, label_lag_days=0)


@dataclass(frozen=True)
class Window:
    """Half-open day ranges of training and holdout rows."""

    train_start: date
    train_end: date
    holdout_start: date
    holdout_end: date

    def as_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in self.__dict__.items()}


def training_window(spec: ModelSpec, week_start: date, first_available: date) -> Window:
    """The training and holdout days of the model for the week starting `week_start`.

    Raises TrainingError when the history before the week is too short.
    """
    holdout_end = week_start - timedelta(days=spec.label_lag_days)
    holdout_start = holdout_end - timedelta(days=HOLDOUT_DAYS)
    train_end = holdout_start - timedelta(days=spec.purge_days)
    train_start = max(train_end - timedelta(days=spec.train_days), first_available)
    if (train_end - train_start).days < spec.min_train_days:
        raise TrainingError(
            f"{spec.name} for week {week_start}: {max((train_end - train_start).days, 0)} days of "
            f"training history before {train_end} (data starts {first_available}); at least "
            f"{spec.min_train_days} are needed. Materialize raw data and features from "
            f"{train_end - timedelta(days=spec.min_train_days)} on."
        )
    return Window(train_start, train_end, holdout_start, holdout_end)


@dataclass
class TrainedModel:
    spec_name: str
    pipeline: Pipeline
    features: list[str]
    negative_rate: float
    params: dict
    metrics: dict = field(default_factory=dict)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the positive class for each row of `frame`."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"{self.spec_name}: input lacks feature column(s) {missing}")
        # A forest sums its trees' probabilities in the order its threads finish, so the last
        # bits (and every metric and score made from them) changed from run to run. Predicting is
        # cheap next to training: in one thread the sum is the same every time.
        steps = getattr(self.pipeline, "steps", None)
        estimator = steps[-1][1] if steps else self.pipeline
        if getattr(estimator, "n_jobs", None) not in (None, 1):
            estimator.n_jobs = 1
        p = self.pipeline.predict_proba(_matrix(frame, self.features))[:, 1]
        return prior_correct(p, self.negative_rate)


def prior_correct(p: np.ndarray, negative_rate: float) -> np.ndarray:
    """Undo negative subsampling at `negative_rate`: odds_true = rate x odds_sample."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    return negative_rate * p / (negative_rate * p + (1.0 - p))


def balance(frame: pd.DataFrame, label: str, seed: int) -> tuple[pd.DataFrame, float]:
    """All positives and at most NEGATIVES_PER_POSITIVE negatives per positive; the sampling rate."""
    pos = frame[frame[label]]
    neg = frame[~frame[label]]
    keep = min(len(neg), NEGATIVES_PER_POSITIVE * len(pos))
    rate = keep / len(neg) if len(neg) else 1.0
    if keep < len(neg):
        neg = neg.sample(n=keep, random_state=seed)
    return pd.concat([pos, neg]).sort_index(), rate


def build_pipeline(spec: ModelSpec, seed: int) -> Pipeline:
    if spec.name == MAINTENANCE.name:
        model = RandomForestClassifier(
            n_estimators=300, min_samples_leaf=10, max_features="sqrt", max_samples=0.7,
            n_jobs=-1, random_state=seed,
        )
    else:
        model = GradientBoostingClassifier(
            n_estimators=250, learning_rate=0.05, max_depth=3, subsample=0.8,
            min_samples_leaf=20, random_state=seed,
        )
    return Pipeline([
        ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
        ("model", model),
    ])


def train(spec: ModelSpec, train_rows: pd.DataFrame, holdout_rows: pd.DataFrame, seed: int
          ) -> TrainedModel:
    """Fit the spec's pipeline on `train_rows` (with a boolean `label`) and evaluate on the holdout.

    Raises TrainingError when either set has fewer than MIN_POSITIVES positives.
    """
    for what, rows in (("training", train_rows), ("holdout", holdout_rows)):
        positives = int(rows["label"].sum()) if len(rows) else 0
        if positives < MIN_POSITIVES:
            raise TrainingError(
                f"{spec.name}: {positives} positive {what} rows out of {len(rows)} "
                f"(at least {MIN_POSITIVES} needed to train and judge a model)"
            )
    sample, rate = balance(train_rows, "label", seed)
    pipeline = build_pipeline(spec, seed)
    pipeline.fit(_matrix(sample, spec.features), sample["label"].to_numpy())
    params = {k: v for k, v in pipeline.named_steps["model"].get_params().items()
              if isinstance(v, (int, float, str, bool, type(None)))}
    model = TrainedModel(spec.name, pipeline, list(spec.features), rate, params)
    model.metrics = evaluate(model, holdout_rows, spec.entity)
    model.metrics.update({
        "train_rows": len(train_rows), "train_positives": int(train_rows["label"].sum()),
        "train_rows_sampled": len(sample), "negative_rate": round(rate, 6),
    })
    return model


def evaluate(model: TrainedModel, rows: pd.DataFrame, entity: str) -> dict:
    """ROC AUC, PR AUC, Brier score and precision at k (per day, then averaged) on `rows`."""
    y = rows["label"].to_numpy(dtype=bool)
    p = model.predict_proba(rows)
    scored = rows[["date", entity]].assign(p=p, y=y)
    top = scored.sort_values(["date", "p"], ascending=[True, False]).groupby("date").head(PRECISION_AT_K)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        f"precision_at_{PRECISION_AT_K}": float(top["y"].mean()),
        "base_rate": float(y.mean()),
        "holdout_rows": int(len(rows)),
        "holdout_positives": int(y.sum()),
    }


def _matrix(frame: pd.DataFrame, features) -> np.ndarray:
    return frame[list(features)].astype(float).to_numpy()


def code_version(*also: ModuleType) -> str:
    """A hash of this module's source, of the modules `also` (the code that labels the training
    rows) and the scikit-learn version: what produced a model."""
    sources = [inspect.getsource(sys.modules[__name__]), *map(inspect.getsource, also)]
    text = "|".join([*sources, f"sklearn={sklearn.__version__}"])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def params_json(model: TrainedModel) -> str:
    return json.dumps(model.params, sort_keys=True, default=str)
