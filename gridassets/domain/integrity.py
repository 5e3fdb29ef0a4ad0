"""Telemetry integrity: is a device's day of readings what the grid did, or tampered, replayed,
stuck or mis-timed? The rules, their scores and reasons, and the anomaly model.

The warehouse side (`gridassets.storage.integrity`) turns each device-day into signals, as SQL over
the raw tables and the device's own earlier signals; here they become one row per device, day and
check (the `telemetry_integrity` contract: device_type, device_id, date, check, score, flagged,
reason, model_version, plus `quarantine`: which readings the features and models leave out).

Checks. Every score is scaled so that 1.0 is the flag threshold: flagged means score >= 1.
- transformer `repeat`: the day's 24 hourly readings against each of the REPEAT_DAYS days before,
  hour by hour. Real readings never repeat: the noise of a sensor alone keeps two days apart by
  about 0.7 degC of oil and 8 % of load on average. Both channels within REPEAT_FLAG of that from
  the same earlier day is a replayed day (all its readings are quarantined); the oil alone, an oil
  sensor replaying (its oil readings are).
- transformer `frozen`: the top-oil reading does not move (spread under FROZEN_SPREAD_C) while the
  load moves by FROZEN_MIN_LOAD_SPREAD_PCT or more. Quarantines the oil readings.
- transformer `thermal_response`: the day's thermal index (top-oil rise over ambient divided by
  the IEEE C57.91 response to the day's loading) against the unit's own on its last normal days
  (REFERENCE_DAYS, none before its last failure), and against its last RECENT_DAYS normal days
  (within RECENT_MAX_AGE_DAYS). A rise under THERMAL_FLAG_RATIO of either hides heating: a real
  fault only ever raises it, and that is the maintenance model's to see. The second catches a
  sensor spoofed while a fault develops: the fault has lifted the rise well above the month's
  usual, so the spoofed rise still looks usual for the month but falls at once against the
  days before.
- transformer `clock`: the unit's load against the rest of its circuit's transformers at lags of
  -CLOCK_MAX_LAG..CLOCK_MAX_LAG h. The best fit CLOCK_MIN_GAIN of correlation better than at the
  stated hour, and at least 2 h away, is a clock that is off. Quarantines the day.
- transformer and circuit `reporting`: a device silent all day that reported in the days before.
  One silent unit is an outage or a modem; SILENT_GROUP_MIN or more of one circuit at once is
  what an attack on a collector looks like. Nothing to quarantine: there are no readings.
- circuit `load_balance`: the feeder's load each hour against the sum of its transformers'
  loading x rating, as a ratio to its usual (its last normal days, or the day's own median on the
  first days). Deviations over BALANCE_FLAG_SIGMAS of its usual hour-to-hour spread, and at
  least BALANCE_MIN_DEV, in BALANCE_MIN_HOURS hours or more, are load that the transformers did
  not carry (a unit out of service counts as not reporting). Not judged when more
  than BALANCE_MAX_MISSING of the circuit's capacity sent nothing. Quarantines the feeder's day.
- circuit `repeat`: as for transformers, on the feeder load (its noise is about 3 %).
- transformer `anomaly_model`: an IsolationForest on the signals of all units (the oil and load
  spreads as shares of the unit's own usual: units differ by nature), each cut off on
  the side tampering never pushes it to (MODEL_CEILINGS: a unit running hot is no integrity
  matter), trained weekly on the days the rules passed (`integrity_model`), flagging a day less
  usual than all but ANOMALY_RATE of its training days. Its flags are for the analyst to look at and quarantine
  nothing (an unusual day is not yet a tampered one). Until a version serves, the check says so
  and flags nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline

from gridassets.domain.quality import MAX_EXAMPLES, CheckOutcome

TRANSFORMER, CIRCUIT = "transformer", "circuit"
COLUMNS = ["device_type", "device_id", "circuit_id", "date", "check", "score", "flagged",
           "reason", "quarantine", "model_version"]
TRANSFORMER_CHECKS = ("repeat", "frozen", "thermal_response", "clock", "reporting",
                      "anomaly_model")
CIRCUIT_CHECKS = ("load_balance", "repeat", "reporting")
# What a flag keeps out of the features and models.
QUARANTINE_DAY = "device_day"  # every reading of the device that day
QUARANTINE_OIL = "oil_temperature"  # the top-oil and hot-spot readings
NO_QUARANTINE = ""
RULES_VERSION = "integrity-rules-1"

REPEAT_DAYS = 7
REFERENCE_DAYS = 28
MIN_REFERENCE_DAYS = 5
# A unit's usual oil and load spreads come from its days with at least this many hours; a spread
# against a usual below SPREAD_MIN_REF_C / SPREAD_MIN_REF_REL is not compared.
SPREAD_MIN_HOURS = 20
SPREAD_MIN_REF_C = 0.5
SPREAD_MIN_REF_REL = 0.02
OIL_REPEAT_SCALE_C = 0.7  # usual least mean |difference| of oil between two days
LOAD_REPEAT_SCALE = 0.08  # the same for a transformer's load, relative to its mean
FEEDER_REPEAT_SCALE = 0.03  # and for a feeder's
REPEAT_FLAG = 0.3  # a repeat: closer than 0.3 of the usual least difference
FROZEN_SPREAD_C = 0.15
FROZEN_MIN_LOAD_SPREAD_PCT = 5.0
THERMAL_FLAG_RATIO = 0.8
RECENT_DAYS = 3
RECENT_MAX_AGE_DAYS = 7
CLOCK_MAX_LAG = 8
CLOCK_MIN_GAIN = 0.12
CLOCK_MIN_CORRELATION = 0.6
CLOCK_MIN_OTHER_UNITS = 4
BALANCE_FLAG_SIGMAS = 4.8
BALANCE_MIN_DEV = 0.06  # log ratio: 6 %
BALANCE_MAX_MISSING = 0.10
BALANCE_MIN_HOURS = 2
SILENT_GROUP_MIN = 3
SCORE_CAP = 100.0
# The anomaly model
ANOMALY_RATE = 0.0001
# Each relative to the unit's own usual where units differ by nature (how much their load and oil
# swing in a day): against the fleet, a unit that always runs flatter than the others would look
# tampered with every day (the real ETT transformers did, 1 day in 20).
MODEL_FEATURES = ["repeat_all", "repeat_oil", "oil_spread_own", "load_spread_own",
                  "thermal_ratio", "clock_gain", "clock_r0"]
MODEL_TRAIN_DAYS = 28
MODEL_HOLDOUT_DAYS = 7
MODEL_MIN_TRAIN_DAYS = 7
MODEL_MAX_TRAIN_ROWS = 200_000
PROMOTION_TOLERANCE = 0.01


def _score(value: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(np.asarray(value, dtype=float), nan=0.0), 0.0, SCORE_CAP)


def clock_lags(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the correlation of x with y at the stated hour, the best lag (x reported that many
    hours after y) and the correlation there. x, y: (devices, 24) hourly series."""
    n = x.shape[0]
    lags = np.arange(-CLOCK_MAX_LAG, CLOCK_MAX_LAG + 1)
    r = np.full((n, len(lags)), np.nan)
    for j, lag in enumerate(lags):
        lo, hi = max(lag, 0), 24 + min(lag, 0)
        a, b = x[:, lo:hi], y[:, lo - lag:hi - lag]
        a = a - a.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
        den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            r[:, j] = np.where(den > 0, (a * b).sum(axis=1) / den, np.nan)
    r0 = r[:, CLOCK_MAX_LAG]
    filled = np.where(np.isnan(r), -np.inf, r)
    best = filled.argmax(axis=1)
    r_best = r[np.arange(n), best]
    return r0, lags[best], r_best


def transformer_rows(signals: pd.DataFrame, day: date, model_version: str) -> pd.DataFrame:
    """The rule checks of each transformer's day (all but `anomaly_model`) from its signals."""
    s = signals.reset_index(drop=True)
    n = len(s)
    present = s["hours"].to_numpy() > 0
    rows: list[pd.DataFrame] = []

    def add(check: str, score, flagged, reasons, quarantine) -> None:
        rows.append(pd.DataFrame({
            "device_type": TRANSFORMER, "device_id": s["device_id"].to_numpy(),
            "circuit_id": s["circuit_id"].to_numpy(), "date": pd.Timestamp(day), "check": check,
            "score": np.round(_score(score), 3), "flagged": np.asarray(flagged, dtype=bool),
            "reason": reasons, "quarantine": np.where(flagged, quarantine, NO_QUARANTINE),
            "model_version": model_version}))

    # repeat: both channels (a replayed day) or the oil alone (a replaying oil sensor)
    in_service = present & (s["load_mean_pct"].fillna(0).to_numpy() > 1.0)
    rep_all, rep_oil = s["repeat_all"].to_numpy(float), s["repeat_oil"].to_numpy(float)
    all_hit = in_service & (rep_all < REPEAT_FLAG)
    oil_hit = present & ~all_hit & (rep_oil < REPEAT_FLAG) & (s["oil_spread_c"].to_numpy() > 0)
    score = np.where(in_service, REPEAT_FLAG / np.maximum(np.fmin(rep_all, rep_oil), 1e-3), 0.0)
    score = np.where(oil_hit | all_hit, score, np.minimum(score, 0.999))
    reasons = np.full(n, "", dtype=object)
    for i in np.flatnonzero(all_hit):
        reasons[i] = (f"load and oil temperature repeat {s.at[i, 'repeat_all_day']:%Y-%m-%d} hour "
                      f"by hour (mean difference {s.at[i, 'repeat_all_load_pct']:.2f} % of load "
                      f"and {s.at[i, 'repeat_all_oil_c']:.2f} °C; real days differ by about "
                      f"{100 * LOAD_REPEAT_SCALE:.0f} % and {OIL_REPEAT_SCALE_C} °C): a replayed day")
    for i in np.flatnonzero(oil_hit):
        reasons[i] = (f"oil temperature repeats {s.at[i, 'repeat_oil_day']:%Y-%m-%d} hour by "
                      f"hour (mean difference {s.at[i, 'repeat_oil_c']:.2f} °C) while the load "
                      f"does not: the oil sensor is replaying")
    add("repeat", score, all_hit | oil_hit, reasons,
        np.where(all_hit, QUARANTINE_DAY, QUARANTINE_OIL))

    # frozen
    spread = s["oil_spread_c"].to_numpy(float)
    moving = present & (s["load_spread_pct"].fillna(0).to_numpy() >= FROZEN_MIN_LOAD_SPREAD_PCT)
    frozen = moving & (spread < FROZEN_SPREAD_C)
    score = np.where(moving, FROZEN_SPREAD_C / np.maximum(spread, 1e-3), 0.0)
    reasons = np.full(n, "", dtype=object)
    for i in np.flatnonzero(frozen):
        reasons[i] = (f"oil temperature stuck at {s.at[i, 'oil_mean_c']:.1f} °C all day (spread "
                      f"{spread[i]:.2f} °C) while the load went {s.at[i, 'load_min_pct']:.0f}-"
                      f"{s.at[i, 'load_max_pct']:.0f} %: a frozen sensor")
    add("frozen", score, frozen, reasons, QUARANTINE_OIL)

    # thermal response: against the month's usual and against the last few days
    month = s["thermal_ratio"].to_numpy(float)
    step = s["thermal_step"].to_numpy(float)
    ratio = np.fmin(month, step)
    judged = present & np.isfinite(ratio) & ~frozen
    low = judged & (ratio < THERMAL_FLAG_RATIO)
    score = np.where(judged, (1 - ratio) / (1 - THERMAL_FLAG_RATIO), 0.0)
    reasons = np.full(n, "", dtype=object)
    for i in np.flatnonzero(low):
        by_month = np.isfinite(month[i]) and month[i] < THERMAL_FLAG_RATIO
        reference, days = (("thermal_reference_c", "its last normal days") if by_month else
                           ("thermal_recent_c", f"its last {RECENT_DAYS} normal days"))
        reasons[i] = (f"oil temperature inconsistent with its load: it rose "
                      f"{s.at[i, 'thermal_index_c']:.1f} °C over ambient for its loading, "
                      f"{100 * ratio[i]:.0f} % of the {s.at[i, reference]:.1f} °C of {days} "
                      f"(IEEE C57.91 top-oil response)")
    add("thermal_response", score, low, reasons, QUARANTINE_OIL)

    # clock
    gain = s["clock_gain"].to_numpy(float)
    lag = s["clock_lag_h"].fillna(0).to_numpy()
    shifted = present & (gain >= CLOCK_MIN_GAIN) & (np.abs(lag) >= 2) \
        & (s["clock_r_best"].fillna(0).to_numpy() >= CLOCK_MIN_CORRELATION)
    score = np.where(present & (np.abs(lag) >= 2), gain / CLOCK_MIN_GAIN, 0.0)
    score = np.where(shifted, score, np.minimum(score, 0.999))
    reasons = np.full(n, "", dtype=object)
    for i in np.flatnonzero(shifted):
        reasons[i] = (f"readings follow the rest of circuit {s.at[i, 'circuit_id']} "
                      f"{abs(int(lag[i]))} h {'late' if lag[i] > 0 else 'early'} (correlation "
                      f"{s.at[i, 'clock_r_best']:.2f} against {s.at[i, 'clock_r0']:.2f} at the "
                      f"stated hour): its clock is off")
    add("clock", score, shifted, reasons, QUARANTINE_DAY)

    add(*_reporting(s, present))
    return pd.concat(rows, ignore_index=True)


def _reporting(s: pd.DataFrame, present: np.ndarray):
    silent = ~present
    group = s.loc[silent].groupby("circuit_id")["device_id"].transform("size")
    size = np.zeros(len(s))
    size[np.flatnonzero(silent)] = group.to_numpy()
    hit = silent & (size >= SILENT_GROUP_MIN)
    reasons = np.full(len(s), "", dtype=object)
    for i in np.flatnonzero(hit):
        failed = " (a failure is on record)" if bool(s.at[i, "failed_recently"]) else \
            " (no failure on record)"
        reasons[i] = (f"silent all day with {int(size[i]) - 1} other transformer(s) of circuit "
                      f"{s.at[i, 'circuit_id']} that reported the days before{failed}")
    return "reporting", size / SILENT_GROUP_MIN, hit, reasons, NO_QUARANTINE


def circuit_rows(signals: pd.DataFrame, day: date) -> pd.DataFrame:
    """The checks of each circuit's day from its signals."""
    s = signals.reset_index(drop=True)
    n = len(s)
    present = s["hours"].to_numpy() > 0
    rows: list[pd.DataFrame] = []

    def add(check, score, flagged, reasons, quarantine) -> None:
        rows.append(pd.DataFrame({
            "device_type": CIRCUIT, "device_id": s["device_id"].to_numpy(),
            "circuit_id": s["device_id"].to_numpy(), "date": pd.Timestamp(day), "check": check,
            "score": np.round(_score(score), 3), "flagged": np.asarray(flagged, dtype=bool),
            "reason": reasons, "quarantine": np.where(flagged, quarantine, NO_QUARANTINE),
            "model_version": RULES_VERSION}))

    dev = s["balance_max_dev"].to_numpy(float)
    threshold = np.maximum(BALANCE_MIN_DEV, BALANCE_FLAG_SIGMAS * s["balance_sd_ref"].to_numpy(float))
    judged = present & np.isfinite(dev) & (s["missing_share"].fillna(1).to_numpy()
                                           <= BALANCE_MAX_MISSING)
    score = np.where(judged, dev / threshold, 0.0)
    hours = s["balance_hours"].fillna(0).to_numpy()
    hit = judged & (score >= 1) & (hours >= BALANCE_MIN_HOURS)
    score = np.where(hit, score, np.minimum(score, 0.999))
    reasons = np.full(n, "", dtype=object)
    for i in np.flatnonzero(hit):
        reasons[i] = (f"feeder load {s.at[i, 'balance_worst_ratio']:.2f} x what its "
                      f"{int(s.at[i, 'units'])} transformers carry, against "
                      f"{s.at[i, 'balance_ratio_ref']:.2f} usually, in {int(s.at[i, 'balance_hours'])}"
                      f" hour(s) from {int(s.at[i, 'balance_first_h']):02d}:00 to "
                      f"{int(s.at[i, 'balance_last_h']) + 1:02d}:00 UTC: load the transformers "
                      f"did not carry")
    for i in np.flatnonzero(present & ~judged & np.isfinite(dev)):
        reasons[i] = (f"not judged: {100 * s.at[i, 'missing_share']:.0f} % of the circuit's "
                      f"transformer capacity sent nothing")
    add("load_balance", score, hit, reasons, QUARANTINE_DAY)

    rep = s["repeat_all"].to_numpy(float)
    hit = present & (rep < REPEAT_FLAG)
    score = np.where(present, REPEAT_FLAG / np.maximum(rep, 1e-3), 0.0)
    score = np.where(hit, score, np.minimum(score, 0.999))
    reasons = np.full(n, "", dtype=object)
    for i in np.flatnonzero(hit):
        reasons[i] = (f"feeder load repeats {s.at[i, 'repeat_all_day']:%Y-%m-%d} hour by hour "
                      f"(mean difference {s.at[i, 'repeat_all_load_pct']:.2f} %; real days differ "
                      f"by about {100 * FEEDER_REPEAT_SCALE:.0f} %): a replayed day")
    add("repeat", score, hit, reasons, QUARANTINE_DAY)

    silent = ~present
    reasons = np.where(silent, "feeder load silent all day after reporting the days before", "")
    add("reporting", silent.astype(float), np.zeros(n, dtype=bool), reasons.astype(object),
        NO_QUARANTINE)
    return pd.concat(rows, ignore_index=True)


# ---------------------------------------------------------------------------- the anomaly model


@dataclass
class IntegrityModel:
    pipeline: Pipeline
    threshold: float  # anomaly score (higher: less usual) at which a day is flagged
    medians: dict  # of each feature on the training days, for reasons
    scales: dict
    params: dict
    metrics: dict

    spec_name = "integrity_model"
    features = MODEL_FEATURES

    def anomaly(self, frame: pd.DataFrame) -> np.ndarray:
        return -self.pipeline.score_samples(model_matrix(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """A number per row for the registry's fingerprint: the anomaly score over threshold."""
        return self.anomaly(frame) / self.threshold


# Each signal cut off on the side tampering never pushes it to: a unit running hot, a wide swing
# of oil on a hot day or a day unlike the last week are the maintenance model's or nobody's
# business; too close a repeat, too flat an oil, too cool a rise or a clock off are integrity's.
MODEL_CEILINGS = {"repeat_all": 3.0, "repeat_oil": 3.0, "oil_spread_own": 1.0,
                  "load_spread_own": 1.0, "thermal_ratio": 1.0, "clock_gain": None,
                  "clock_r0": 0.9}


def model_matrix(frame: pd.DataFrame) -> np.ndarray:
    m = frame[MODEL_FEATURES].astype(float).to_numpy()
    for j, name in enumerate(MODEL_FEATURES):
        if MODEL_CEILINGS[name] is not None:
            m[:, j] = np.minimum(m[:, j], MODEL_CEILINGS[name])
    # distances: their logarithm (a replay is many orders of magnitude below usual)
    m[:, :2] = np.log10(np.clip(m[:, :2], 1e-3, 100))
    return m


def rule_flagged(signals: pd.DataFrame, day_rows: pd.DataFrame | None = None) -> np.ndarray:
    """Which transformer signal rows a rule flags (the model learns from the others)."""
    flags = np.zeros(len(signals), dtype=bool)
    for day, part in signals.groupby("date", sort=False):
        rows = transformer_rows(part, pd.Timestamp(day).date(), RULES_VERSION)
        hit = rows.groupby("device_id")["flagged"].any()
        flags[signals.index.get_indexer(part.index)] = part["device_id"].map(hit).fillna(
            False).to_numpy(bool)
    return flags


def perturbed(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Copies of normal device-days as the threats would make them: replayed, frozen, hiding
    heat, clock off. The holdout judges the model on them against the normal days."""
    rng = np.random.default_rng(seed)
    parts = []
    for kind in ("replay", "frozen", "scaled", "clock"):
        p = rows.sample(n=min(len(rows), 500), random_state=int(rng.integers(1 << 31))).copy()
        m = len(p)
        if kind == "replay":
            p["repeat_all"] = rng.uniform(0, 0.2, m)
            p["repeat_oil"] = np.minimum(p["repeat_oil"], p["repeat_all"])
        elif kind == "frozen":
            p["oil_spread_c"] = p["oil_spread_own"] = 0.0
        elif kind == "scaled":
            p["thermal_ratio"] = p["thermal_ratio"] * rng.uniform(0.55, 0.75, m)
        else:
            p["clock_gain"] = p["clock_gain"].fillna(0) + rng.uniform(0.15, 0.4, m)
            p["clock_r0"] = p["clock_r0"] - rng.uniform(0.15, 0.4, m)
        parts.append(p)
    return pd.concat(parts, ignore_index=True)


def train_model(train: pd.DataFrame, holdout: pd.DataFrame, seed: int) -> IntegrityModel:
    """Fit the IsolationForest on normal transformer-days; judge it on the holdout days against
    perturbed copies of them. Raises ValueError with too few rows."""
    if len(train) < 500 or len(holdout) < 100:
        raise ValueError(f"integrity_model: {len(train)} training and {len(holdout)} holdout "
                         "transformer-days (at least 500 and 100 needed)")
    if len(train) > MODEL_MAX_TRAIN_ROWS:
        train = train.sample(n=MODEL_MAX_TRAIN_ROWS, random_state=seed)
    forest = IsolationForest(n_estimators=100, max_samples=min(4096, len(train)),
                             random_state=seed, n_jobs=1)
    pipeline = Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                         ("model", forest)])
    pipeline.fit(model_matrix(train))
    train_scores = -pipeline.score_samples(model_matrix(train))
    threshold = float(np.quantile(train_scores, 1 - ANOMALY_RATE))
    medians = {f: float(np.nanmedian(train[f].astype(float))) for f in MODEL_FEATURES}
    scales = {f: float(np.nanpercentile(train[f].astype(float), 75)
                       - np.nanpercentile(train[f].astype(float), 25)) or 1.0
              for f in MODEL_FEATURES}
    params = {k: v for k, v in forest.get_params().items()
              if isinstance(v, (int, float, str, bool, type(None)))}
    model = IntegrityModel(pipeline, threshold, medians, scales, params, {})
    model.metrics = evaluate_model(model, holdout, seed)
    model.metrics.update({"train_rows": len(train), "threshold": threshold})
    return model


def evaluate_model(model: IntegrityModel, holdout: pd.DataFrame, seed: int) -> dict:
    """ROC AUC and PR AUC of the anomaly score, normal holdout days against perturbed copies;
    the share of normal holdout days it flags, and of perturbed ones it catches."""
    bad = perturbed(holdout, seed)
    normal_scores, bad_scores = model.anomaly(holdout), model.anomaly(bad)
    y = np.r_[np.zeros(len(normal_scores)), np.ones(len(bad_scores))]
    s = np.r_[normal_scores, bad_scores]
    return {"roc_auc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s)),
            "holdout_rows": int(len(holdout)),
            "holdout_flagged_per_1000": float(1000 * (normal_scores >= model.threshold).mean()),
            "perturbed_caught": float((bad_scores >= model.threshold).mean())}


def model_rows(model: IntegrityModel | None, signals: pd.DataFrame, day: date, version: str
               ) -> pd.DataFrame:
    """The `anomaly_model` check of each transformer-day (not flagged without a model)."""
    s = signals.reset_index(drop=True)
    present = s["hours"].to_numpy() > 0
    reasons = np.full(len(s), "", dtype=object)
    if model is None:
        score = np.zeros(len(s))
        hit = np.zeros(len(s), dtype=bool)
        reasons[:] = "no integrity_model serves this day yet: the rules alone judged it"
    else:
        score = np.where(present, model.anomaly(s) / model.threshold if len(s) else 0.0, 0.0)
        hit = present & (score >= 1)
        for i in np.flatnonzero(hit):
            reasons[i] = "unusual: " + ", ".join(_deviations(model, s.iloc[i]))
    return pd.DataFrame({
        "device_type": TRANSFORMER, "device_id": s["device_id"].to_numpy(),
        "circuit_id": s["circuit_id"].to_numpy(), "date": pd.Timestamp(day),
        "check": "anomaly_model", "score": np.round(_score(score), 3), "flagged": hit,
        "reason": reasons, "quarantine": NO_QUARANTINE, "model_version": version})


_LABELS = {"repeat_all": "least repeat distance", "repeat_oil": "least oil repeat distance",
           "oil_spread_own": "oil spread {:.2f} of its usual",
           "load_spread_own": "load spread {:.2f} of its usual",
           "thermal_ratio": "thermal ratio {:.2f}", "clock_gain": "clock gain {:.2f}",
           "clock_r0": "correlation with its circuit {:.2f}"}


def _deviations(model: IntegrityModel, row: pd.Series) -> list[str]:
    z = {f: abs((float(row[f]) - model.medians[f]) / model.scales[f])
         for f in MODEL_FEATURES if pd.notna(row[f])}
    top = sorted(z, key=z.get, reverse=True)[:2]
    out = []
    for f in top:
        label = _LABELS[f]
        text = label.format(float(row[f])) if "{" in label else f"{label} {float(row[f]):.3g}"
        out.append(text if f.endswith("_own") else f"{text} (fleet median {model.medians[f]:.3g})")
    return out


def decide(candidate_auc: float, serving_auc: float | None, serving_version: str | None
           ) -> tuple[bool, str]:
    if serving_version is None:
        return True, "promoted: no version was serving"
    if serving_auc is None:
        return True, f"promoted: serving {serving_version} could not be scored on the new holdout"
    if candidate_auc >= serving_auc - PROMOTION_TOLERANCE:
        return True, (f"promoted: perturbed-holdout ROC AUC {candidate_auc:.3f} vs serving "
                      f"{serving_version} {serving_auc:.3f} (tolerance {PROMOTION_TOLERANCE})")
    return False, (f"kept {serving_version}: candidate ROC AUC {candidate_auc:.3f} is worse than "
                   f"serving {serving_auc:.3f} on the same holdout by more than "
                   f"{PROMOTION_TOLERANCE}")


def params_json(model: IntegrityModel) -> str:
    return json.dumps({**model.params, "anomaly_rate": ANOMALY_RATE,
                       "features": MODEL_FEATURES}, sort_keys=True, default=str)


# ---------------------------------------------------------------------------- audit and outputs


def audit(frame: pd.DataFrame, days) -> CheckOutcome:
    """Every day has rows; one row per device, day and check; scores finite and >= 0; every flag
    with a reason."""
    problems: list[str] = []
    present = set(pd.to_datetime(frame["date"]).dt.date) if len(frame) else set()
    missing = [d for d in days if d not in present]
    if missing:
        problems.append(f"no rows for {len(missing)} day(s), e.g. {missing[:MAX_EXAMPLES]}")
    dup = int(frame.duplicated(["device_type", "device_id", "date", "check"]).sum())
    if dup:
        problems.append(f"{dup} duplicate (device, day, check) row(s)")
    bad = ~np.isfinite(frame["score"].astype(float)) | (frame["score"].astype(float) < 0)
    if bad.any():
        problems.append(f"{int(bad.sum())} score(s) not a finite number >= 0")
    unexplained = frame["flagged"] & (frame["reason"].fillna("").str.strip() == "")
    if unexplained.any():
        problems.append(f"{int(unexplained.sum())} flag(s) without a reason")
    if problems:
        return CheckOutcome(False, "; ".join(problems))
    flagged = int(frame["flagged"].sum())
    return CheckOutcome(True, f"{len(frame):,} check rows, {flagged} flagged, each with a reason",
                        {"rows": len(frame), "flagged": flagged})


def flags_outcome(frame: pd.DataFrame) -> CheckOutcome:
    """The warning an operator sees in the UI: which devices are flagged (never blocks)."""
    flagged = frame[frame["flagged"]]
    if flagged.empty:
        return CheckOutcome(True, "no device's telemetry flagged")
    devices = flagged.drop_duplicates(["device_type", "device_id", "date"])
    examples = [f"{r.device_id} {pd.Timestamp(r.date):%Y-%m-%d} {r.check}: {r.reason}"
                for r in flagged.head(MAX_EXAMPLES).itertuples()]
    return CheckOutcome(False, f"{len(devices)} device-day(s) flagged: "
                               f"{flagged['check'].value_counts().to_dict()}",
                        {"examples": examples})


def security_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """The flags of a day for the security team, strongest first."""
    out = frame[frame["flagged"]].sort_values(["score", "device_id"], ascending=[False, True])
    out = out.assign(date=pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d"))
    return out[["date", "device_type", "device_id", "circuit_id", "check", "score", "reason",
                "quarantine", "model_version"]].reset_index(drop=True)


def circuit_suspicion(flags: pd.DataFrame, day) -> pd.DataFrame:
    """Per circuit, one line saying since when its inputs are suspect: circuit_id, integrity.

    `flags`: the flagged rows of the days up to `day` (the last REFERENCE_DAYS), with
    device_type, device_id, circuit_id, date, check, reason. A circuit is suspect when one of its
    devices is flagged on `day`; "since" is the first day of that device's unbroken run of flags.
    """
    if flags.empty:
        return pd.DataFrame(columns=["circuit_id", "integrity"])
    f = flags.assign(date=pd.to_datetime(flags["date"]).dt.normalize())
    day = pd.Timestamp(day).normalize()
    today = f[f["date"] == day]
    out = []
    for circuit, rows in today.groupby("circuit_id", sort=True):
        parts = []
        for (kind, device), dev_rows in rows.groupby(["device_type", "device_id"], sort=True):
            history = set(f.loc[(f["device_id"] == device) & (f["device_type"] == kind), "date"])
            since = day
            while since - pd.Timedelta(days=1) in history:
                since -= pd.Timedelta(days=1)
            first = dev_rows.sort_values("check").iloc[0]
            what = _short(first["check"], first["reason"])
            parts.append(f"{device} {what} since {since:%Y-%m-%d}")
        more = f" (+{len(parts) - 2} more)" if len(parts) > 2 else ""
        out.append({"circuit_id": circuit,
                    "integrity": "telemetry integrity: " + "; ".join(parts[:2]) + more})
    return pd.DataFrame(out)


_SHORT = {"thermal_response": "oil temperature inconsistent with its load",
          "frozen": "oil temperature frozen", "clock": "clock off",
          "load_balance": "feeder load inconsistent with its transformers",
          "reporting": "silent with others of its circuit", "anomaly_model": "unusual readings"}


def _short(check: str, reason: str) -> str:
    if check == "repeat":
        return "oil temperature replayed" if reason.startswith("oil") else "readings replayed"
    return _SHORT.get(check, check)


# ---------------------------------------------------------------------------- signals of a day

SIGNAL_COLUMNS = [
    "device_type", "device_id", "circuit_id", "date", "hours",
    "load_mean_pct", "load_min_pct", "load_max_pct", "load_spread_pct", "load_spread_rel",
    "oil_mean_c", "oil_spread_c", "oil_spread_ref_c", "oil_spread_own", "load_spread_ref",
    "load_spread_own", "thermal_index_c", "thermal_reference_c", "thermal_ratio",
    "thermal_recent_c", "thermal_step", "thermal_ok", "repeat_all", "repeat_all_day",
    "repeat_all_load_pct", "repeat_all_oil_c",
    "repeat_oil", "repeat_oil_day", "repeat_oil_c", "clock_r0", "clock_lag_h", "clock_r_best",
    "clock_gain", "failed_recently", "units", "missing_share", "balance_ratio", "balance_sd",
    "balance_ratio_ref", "balance_sd_ref", "balance_max_dev", "balance_worst_ratio",
    "balance_hours", "balance_first_h", "balance_last_h", "balance_ok",
]


def transformer_signals(day: date, stats: pd.DataFrame, expected: pd.DataFrame,
                        hourly: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """One row per transformer expected on `day` (registry units that reported in the days
    before, and every unit that reported today): the day's statistics, repeat distances, thermal
    ratio to its reference and the clock comparison with the rest of its circuit."""
    base = expected[expected["reported_before"]][["device_id", "circuit_id", "failed_recently"]]
    stats = stats.rename(columns={"transformer_id": "device_id"})
    out = base.merge(stats, on="device_id", how="outer")
    circuit_of = expected.set_index("device_id")["circuit_id"]
    out["circuit_id"] = out["circuit_id"].fillna(out["device_id"].map(circuit_of))
    out["failed_recently"] = out["failed_recently"].astype("boolean").fillna(False).astype(bool)
    out["hours"] = out["hours"].fillna(0).astype("int64")
    ref = reference[reference["reference_days"] >= MIN_REFERENCE_DAYS]
    out = out.merge(ref[["device_id", "thermal_reference_c"]], on="device_id", how="left")
    recent = reference[reference["recent_days"] >= RECENT_DAYS]
    out = out.merge(recent[["device_id", "thermal_recent_c"]], on="device_id", how="left")
    spreads = reference[reference["spread_days"] >= MIN_REFERENCE_DAYS]
    out = out.merge(spreads[["device_id", "oil_spread_ref_c", "load_spread_ref"]],
                    on="device_id", how="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = out["thermal_index_c"] / out["thermal_reference_c"]
        step = out["thermal_index_c"] / out["thermal_recent_c"]
        oil_own = out["oil_spread_c"] / out["oil_spread_ref_c"]
        load_own = out["load_spread_rel"] / out["load_spread_ref"]
    out["thermal_ratio"] = ratio.where(out["thermal_reference_c"] > 1.0)
    out["thermal_step"] = step.where(out["thermal_recent_c"] > 1.0)
    out["oil_spread_own"] = oil_own.where(out["oil_spread_ref_c"] >= SPREAD_MIN_REF_C)
    out["load_spread_own"] = load_own.where(out["load_spread_ref"] >= SPREAD_MIN_REF_REL)
    frozen = (out["oil_spread_c"] < FROZEN_SPREAD_C) & (out["load_spread_pct"]
                                                        >= FROZEN_MIN_LOAD_SPREAD_PCT)
    out["thermal_ok"] = ~(frozen | (out["thermal_ratio"] < THERMAL_FLAG_RATIO)
                          | (out["thermal_step"] < THERMAL_FLAG_RATIO))
    out = out.merge(_clock(hourly), on="device_id", how="left")
    out["device_type"] = TRANSFORMER
    out["date"] = pd.Timestamp(day)
    return out.reindex(columns=SIGNAL_COLUMNS).sort_values("device_id").reset_index(drop=True)


def _clock(hourly: pd.DataFrame) -> pd.DataFrame:
    cols = ["device_id", "clock_r0", "clock_lag_h", "clock_r_best", "clock_gain"]
    if hourly.empty:
        return pd.DataFrame(columns=cols)
    # judged on whole days in service: a unit out for hours correlates with nothing
    if not hourly["transformer_id"].is_monotonic_increasing:
        hourly = hourly.sort_values(["transformer_id", "h"], kind="stable")
    unit = hourly["transformer_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
    sizes = np.diff(np.r_[starts, len(unit)])
    lowest = np.fmin.reduceat(hourly["kva"].to_numpy(float), starts)  # NaN-skipping, as pandas
    h = hourly[np.repeat((sizes == 24) & (lowest > 0), sizes)]
    ids = h["transformer_id"].to_numpy()[::24]
    circuit = h["circuit_id"].to_numpy()[::24]
    x = h["kva"].to_numpy(float).reshape(-1, 24)
    codes, uniques = pd.factorize(circuit)
    totals = np.zeros((len(uniques), 24))
    np.add.at(totals, codes, x)
    counts = np.bincount(codes, minlength=len(uniques))
    y = totals[codes] - x
    r0, lag, r_best = clock_lags(x, y)
    ok = counts[codes] - 1 >= CLOCK_MIN_OTHER_UNITS
    frame = pd.DataFrame({"device_id": ids, "clock_r0": np.where(ok, r0, np.nan),
                          "clock_lag_h": np.where(ok, lag, 0), "clock_r_best":
                          np.where(ok, r_best, np.nan)})
    frame["clock_gain"] = frame["clock_r_best"] - frame["clock_r0"]
    return frame


def circuit_signals(day: date, circuits: pd.DataFrame, feeder: pd.DataFrame,
                    reference: pd.DataFrame) -> pd.DataFrame:
    """One row per registry circuit: hours of feeder load, the hourly balance against its
    transformers (ratio to its reference, the worst hours), and the feeder's repeat distance."""
    # One pass over numpy slices of the rows sorted by circuit (a large utility has thousands).
    f = feeder.sort_values("circuit_id", kind="stable").reset_index(drop=True)
    ref = reference[reference["reference_days"] >= MIN_REFERENCE_DAYS]
    refs = dict(zip(ref["device_id"], zip(ref["balance_ratio_ref"].astype(float),
                                          ref["balance_sd_ref"].astype(float))))
    ids = f["circuit_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.array([], int)
    ends = np.r_[starts[1:], len(ids)].astype(int)
    rating_all_at = f["rating_all"].astype(float).to_numpy()
    present_at = f["rating_present"].astype(float).fillna(0).to_numpy()
    units_at = f["units"].astype(float).to_numpy()
    kva_at, load_at = f["kva"].astype(float).to_numpy(), f["load_mw"].astype(float).to_numpy()
    hour_at = f["h"].to_numpy()
    rows = []
    for s, e in zip(starts, ends):
        circuit = ids[s]
        rec: dict = {"device_id": circuit, "hours": int(e - s)}
        rating_all = float(rating_all_at[s]) if not np.isnan(rating_all_at[s]) else 0.0
        present = present_at[s:e]
        missing = 1 - (np.median(present) / rating_all) if rating_all > 0 else 1.0
        units = units_at[s:e]
        rec.update(units=int(np.nanmax(units)) if (~np.isnan(units)).any() else 0,
                   missing_share=float(max(missing, 0.0)))
        kva = kva_at[s:e] * np.where(present > 0, rating_all / np.maximum(present, 1e-9), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = 1000 * load_at[s:e] / kva
        good = np.isfinite(rho) & (rho > 0)
        if good.sum() >= 12:
            log_rho = np.log(rho[good])
            med = float(np.median(log_rho))
            sd = float(1.4826 * np.median(np.abs(log_rho - med)))
            ref_ratio, ref_sd = refs.get(circuit, (float(np.exp(med)), sd))
            dev = np.full(len(rho), np.nan)
            dev[good] = np.abs(log_rho - np.log(ref_ratio))
            worst = int(np.nanargmax(dev))
            threshold = max(BALANCE_MIN_DEV, BALANCE_FLAG_SIGMAS * ref_sd)
            over = np.flatnonzero(dev > threshold)
            hours = hour_at[s:e]
            rec.update(balance_ratio=float(np.exp(med)), balance_sd=sd,
                       balance_ratio_ref=ref_ratio, balance_sd_ref=ref_sd,
                       balance_max_dev=float(np.nanmax(dev)),
                       balance_worst_ratio=float(rho[worst]), balance_hours=len(over),
                       balance_first_h=int(hours[over[0]]) if len(over) else None,
                       balance_last_h=int(hours[over[-1]]) if len(over) else None,
                       balance_ok=bool((len(over) < BALANCE_MIN_HOURS)
                                       and missing <= BALANCE_MAX_MISSING))
        rows.append(rec)
    repeats = ["repeat_all", "repeat_all_day", "repeat_all_load_pct"]
    found = pd.DataFrame(rows, columns=["device_id", "hours"] if not rows else None)
    found = found.join(f.loc[starts, repeats].reset_index(drop=True)) if rows else \
        found.reindex(columns=[*found.columns, *repeats])
    found["repeat_all_day"] = pd.to_datetime(found["repeat_all_day"]).astype("datetime64[ns]")
    out = circuits[["circuit_id"]].rename(columns={"circuit_id": "device_id"}).merge(
        found, on="device_id", how="left")
    out["hours"] = out["hours"].fillna(0).astype("int64")
    out["circuit_id"] = out["device_id"]
    out["device_type"] = CIRCUIT
    out["date"] = pd.Timestamp(day)
    if "balance_ok" not in out:
        out["balance_ok"] = False
    out["balance_ok"] = out["balance_ok"].astype("boolean").fillna(False).astype(bool)
    return out.reindex(columns=SIGNAL_COLUMNS)


def signals_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Signals of several devices or days in one frame of stable column types."""
    parts = [p.dropna(axis=1, how="all") for p in parts if len(p)]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    frame = frame.reindex(columns=SIGNAL_COLUMNS)
    for col in ("repeat_all_day", "repeat_oil_day", "date"):
        frame[col] = pd.to_datetime(frame[col])
    for col in ("thermal_ok", "balance_ok", "failed_recently"):
        frame[col] = frame[col].astype("boolean").fillna(col != "failed_recently").astype(bool)
    for col in ("hours", "units", "clock_lag_h", "balance_hours", "balance_first_h",
                "balance_last_h"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in SIGNAL_COLUMNS:
        if col not in ("device_type", "device_id", "circuit_id", "date", "repeat_all_day",
                       "repeat_oil_day", "thermal_ok", "balance_ok", "failed_recently"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


def audit_signals(frame: pd.DataFrame, days) -> CheckOutcome:
    present = set(pd.to_datetime(frame["date"]).dt.date) if len(frame) else set()
    missing = [d for d in days if d not in present]
    dup = int(frame.duplicated(["device_type", "device_id", "date"]).sum())
    problems = []
    if missing:
        problems.append(f"no rows for {len(missing)} day(s), e.g. {missing[:MAX_EXAMPLES]}")
    if dup:
        problems.append(f"{dup} duplicate (device, day) row(s)")
    if problems:
        return CheckOutcome(False, "; ".join(problems))
    return CheckOutcome(True, f"{len(frame):,} device-days, one row each", {"rows": len(frame)})
