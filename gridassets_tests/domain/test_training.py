"""A week's training and promotion decision on small inline frames: windows and their gaps, who
serves, promotion with and without a serving version, failures that keep the serving version,
and the fields of the registry record."""

import json
import string
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from gridassets.domain import models, registry, training
from gridassets.domain.registry import VersionRecord

SPEC = models.OUTAGE
WEEK = date(2025, 6, 2)
FIRST = date(2025, 1, 1)
TRAINED_AT = datetime(2025, 6, 2, 3, 0, 0)
GUST = list(SPEC.features).index("peak_gust_mph")


def rows(start: str, days: int, seed: int, signal: bool = True) -> pd.DataFrame:
    """Circuit-days whose label is a gust above 60 mph (`signal`) or a coin flip."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame([(d, f"C{i}") for d in pd.date_range(start, periods=days)
                          for i in range(10)], columns=["date", "circuit_id"])
    for feature in SPEC.features:
        frame[feature] = rng.random(len(frame))
    frame["peak_gust_mph"] = rng.uniform(0, 80, len(frame))
    frame["label"] = (frame["peak_gust_mph"] > 60 if signal
                      else pd.Series(rng.random(len(frame)) < 0.25))
    return frame


class GustOracle:
    """A 'pipeline' that ranks by the gust alone: perfect on labels made from the gust."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = x[:, GUST] / 100.0
        return np.column_stack([1 - p, p])


def oracle(features=SPEC.features) -> models.TrainedModel:
    return models.TrainedModel(SPEC.name, GustOracle(), list(features), 1.0, {})


SERVING = {"version": "outage-2025-05-26-abcdef12", "artifact_path": "outage_model/x.joblib",
           "artifact_sha256": "0" * 64}


def week_data(serving=None, serving_model=None, train_signal=True, **kw) -> training.WeekData:
    fields = dict(serving=serving, serving_model=serving_model, code_version="code123",
                  window=training.week_window(SPEC, WEEK, FIRST),
                  train_rows=rows("2025-03-01", 20, seed=1, signal=train_signal),
                  holdout_rows=rows("2025-05-01", 10, seed=2))
    fields.update(kw)
    return training.WeekData(**fields)


def train(data: training.WeekData) -> training.WeekResult:
    return training.train_week(SPEC, WEEK, data, seed=3, trained_at=TRAINED_AT)


# --- windows ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [models.MAINTENANCE, models.OUTAGE])
def test_window_ends_label_lag_before_the_week_with_the_purge_gap_before_the_holdout(spec):
    w = training.week_window(spec, WEEK, date(2024, 1, 1))
    assert w.holdout_end == WEEK - timedelta(days=spec.label_lag_days)
    assert (w.holdout_end - w.holdout_start).days == models.HOLDOUT_DAYS
    assert (w.holdout_start - w.train_end).days == spec.purge_days
    assert (w.train_end - w.train_start).days == spec.train_days


def test_outage_window_has_a_one_day_gap_and_no_label_lag():
    w = training.week_window(models.OUTAGE, WEEK, date(2024, 1, 1))
    assert w.holdout_end == WEEK
    assert w.train_end == WEEK - timedelta(days=models.HOLDOUT_DAYS + 1)


def test_window_starts_with_the_data_when_history_is_shorter_than_the_training_span():
    first = WEEK - timedelta(days=models.HOLDOUT_DAYS + 1 + 60)
    w = training.week_window(models.OUTAGE, WEEK, first)
    assert w.train_start == first
    assert (w.train_end - w.train_start).days == 60


def test_no_features_and_too_short_a_history_are_training_errors():
    with pytest.raises(models.TrainingError, match="no features have been materialized yet"):
        training.week_window(models.OUTAGE, WEEK, None)
    too_late = WEEK - timedelta(days=models.HOLDOUT_DAYS + 1 + models.OUTAGE.min_train_days - 1)
    with pytest.raises(models.TrainingError, match="44 days of training history"):
        training.week_window(models.OUTAGE, WEEK, too_late)


# --- who serves -------------------------------------------------------------------------------


def record(week: date, status: str, version: str) -> VersionRecord:
    return VersionRecord(
        model_name=SPEC.name, version=version, week_start=week, status=status, decision="",
        trained_at=TRAINED_AT, train_start=None, train_end=None, holdout_start=None,
        holdout_end=None, roc_auc=None, pr_auc=None, brier=None, metrics="{}",
        serving_before=None, serving_roc_auc_same_holdout=None, params="{}", code_version="c",
        artifact_path=None, artifact_sha256=None, serving_after=None)


def test_serving_is_the_latest_promoted_week_on_or_before_the_day():
    stored = {"version": "s", "week_start": pd.Timestamp("2025-05-19")}
    pending = [record(date(2025, 5, 26), "promoted", "p1"),
               record(date(2025, 6, 2), "rejected", "p2"),   # not promoted
               record(date(2025, 6, 9), "promoted", "p3")]   # after the day
    assert training.serving_among(stored, pending, date(2025, 6, 3))["version"] == "p1"
    assert training.serving_among(stored, pending, date(2025, 5, 25))["version"] == "s"
    # the stored row's week comes back as a date, comparable with the records'
    assert training.serving_among(stored, [], date(2025, 5, 25))["week_start"] == date(2025, 5, 19)
    assert training.serving_among(None, pending, date(2025, 5, 25)) is None
    assert training.serving_among(None, [], date(2025, 6, 3)) is None


# --- promotion --------------------------------------------------------------------------------


def test_with_no_serving_version_the_candidate_is_promoted_and_its_record_is_complete():
    data = week_data()
    result = train(data)
    r = result.record
    assert (r.status, r.decision) == ("promoted", "promoted: no version was serving")
    assert r.serving_before is None and r.serving_after == r.version
    assert r.version == registry.version_id(
        SPEC.name, WEEK, registry.fingerprint(result.model, data.holdout_rows))
    assert r.version.startswith("outage-2025-06-02-")
    assert (r.model_name, r.week_start, r.trained_at, r.code_version) == (
        SPEC.name, WEEK, TRAINED_AT, "code123")
    w = data.window
    assert (r.train_start, r.train_end, r.holdout_start, r.holdout_end) == (
        w.train_start, w.train_end, w.holdout_start, w.holdout_end)
    metrics = json.loads(r.metrics)
    assert r.roc_auc == metrics["roc_auc"] == result.model.metrics["roc_auc"] > 0.9
    assert (r.pr_auc, r.brier) == (metrics["pr_auc"], metrics["brier"])
    assert metrics["holdout_rows"] == len(data.holdout_rows) == 100
    assert metrics["train_rows"] == len(data.train_rows) == 200
    assert json.loads(r.params)["n_estimators"] == 250
    assert r.serving_roc_auc_same_holdout is None
    # the artifact is the storage layer's to write: bytes here, no path or hash yet
    assert r.artifact_path is None and r.artifact_sha256 is None
    assert result.holdout is data.holdout_rows
    again = registry.loads(result.payload)
    np.testing.assert_allclose(again.predict_proba(data.holdout_rows),
                               result.model.predict_proba(data.holdout_rows))
    frame = r.frame()
    assert len(frame) == 1 and frame["week_start"].iloc[0] == pd.Timestamp(WEEK)


def test_a_candidate_worse_than_the_serving_version_on_the_same_holdout_is_rejected():
    result = train(week_data(serving=SERVING, serving_model=oracle(), train_signal=False))
    r = result.record
    assert r.status == "rejected"
    assert r.serving_roc_auc_same_holdout == pytest.approx(1.0)
    assert r.roc_auc < 1.0 - registry.PROMOTION_TOLERANCE
    assert r.decision.startswith(f"kept {SERVING['version']}: candidate ROC AUC")
    assert r.serving_before == r.serving_after == SERVING["version"]
    assert result.payload is not None  # a rejected version is kept as evidence


def test_a_candidate_as_good_as_the_serving_version_is_promoted_over_it():
    result = train(week_data(serving=SERVING, serving_model=oracle()))
    r = result.record
    assert r.status == "promoted"
    assert r.roc_auc >= r.serving_roc_auc_same_holdout - registry.PROMOTION_TOLERANCE
    assert f"vs serving {SERVING['version']} 1.000 on the same rows" in r.decision
    assert (r.serving_before, r.serving_after) == (SERVING["version"], r.version)


@pytest.mark.parametrize("serving_model", [None, oracle(features=["not_a_feature"])],
                         ids=["unreadable", "incompatible"])
def test_a_serving_version_that_cannot_be_scored_does_not_block_the_candidate(serving_model):
    r = train(week_data(serving=SERVING, serving_model=serving_model,
                        train_signal=False)).record
    assert r.status == "promoted" and r.serving_roc_auc_same_holdout is None
    assert r.decision == f"promoted: serving {SERVING['version']} could not be scored on the " \
                         "new holdout"
    assert r.serving_after == r.version != SERVING["version"]


# --- failures ---------------------------------------------------------------------------------


def test_a_failed_training_is_recorded_and_the_serving_version_stays():
    few = rows("2025-03-01", 20, seed=1)
    few["label"] = False
    few.loc[:1, "label"] = True  # two positives: too few to train
    data = week_data(serving=SERVING, serving_model=oracle(), train_rows=few)
    result = train(data)
    r = result.record
    assert (result.model, result.holdout, result.payload) == (None, None, None)
    assert (r.status, r.version) == ("failed", "outage-2025-06-02-failed")
    assert r.decision.startswith("training failed (TrainingError: outage_model: 2 positive "
                                 "training rows out of 200")
    assert r.decision.endswith("; serving version stays")
    assert r.serving_before == r.serving_after == SERVING["version"]
    assert (r.train_start, r.holdout_end) == (data.window.train_start, data.window.holdout_end)
    assert None is r.roc_auc is r.pr_auc is r.brier is r.artifact_path is r.artifact_sha256
    assert (r.metrics, r.params) == ("{}", "{}")
    assert r.frame()["roc_auc"].isna().all()


def test_a_loading_failure_is_recorded_without_a_window_and_nothing_is_trained(monkeypatch):
    def must_not_train(*args, **kwargs):
        raise AssertionError("trained despite a loading failure")

    monkeypatch.setattr(models, "train", must_not_train)
    error = models.TrainingError("outage_model: no features have been materialized yet")
    r = train(training.WeekData(serving=None, serving_model=None, code_version="c",
                                error=error)).record
    assert r.status == "failed" and r.serving_before is None and r.serving_after is None
    assert "(TrainingError: outage_model: no features have been materialized yet)" in r.decision
    assert None is r.train_start is r.train_end is r.holdout_start is r.holdout_end


def test_code_version_covers_the_modules_that_label_the_rows():
    assert models.code_version() != models.code_version(string)
    assert models.code_version(string) == models.code_version(string)
    assert len(models.code_version()) == 12


def test_the_same_model_gets_the_same_version_whatever_its_bytes():
    """The same training in a Celery worker and in a fresh process pickled to different bytes
    (uninitialised padding in scikit-learn's tree arrays; equal attribute names interned in one
    process and not in the other). Here the same model, trained twice on the same rows, is made
    to pickle differently: its attribute names replaced by fresh, equal strings."""
    data = week_data()
    first, second = train(data), train(week_data())
    estimator = second.model.pipeline.steps[-1][1]
    names = {"".join(list(k)): v for k, v in estimator.__dict__.items()}
    estimator.__dict__.clear()
    estimator.__dict__.update(names)
    assert registry.dumps(first.model) != registry.dumps(second.model)
    second_version = registry.version_id(
        SPEC.name, WEEK, registry.fingerprint(second.model, data.holdout_rows))
    assert first.record.version == second_version
    # and a different model is a different version
    other = train(week_data(train_signal=False))
    assert other.record.version != first.record.version
