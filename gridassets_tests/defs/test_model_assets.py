"""The model registry at work on a real warehouse of either backend: the promotion gate, a failed
training, and scoring with no model at all."""

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from gridassets.defs.models.assets import maintenance_model
from gridassets.defs.resources import GridSettings, build_resources
from gridassets.defs.scores.assets import transformer_risk
from gridassets.domain import models
from gridassets_tests.conftest import (REPO_ROOT, TEST_FLEET, TEST_SCORE_DAYS, TEST_WINDOW,
                                       copy_data, fleet_env, read_warehouse)

LAST_DAY = TEST_WINDOW[1]
LAST_WEEK = (pd.Timestamp(LAST_DAY) - pd.Timedelta(days=pd.Timestamp(LAST_DAY).weekday())).date()


def copy_demo(request: pytest.FixtureRequest, backend: str, target: Path) -> Path:
    """A private copy of the shared demo warehouse of `backend` (and its models) at `target`."""
    demo = (request.getfixturevalue("demo_data")[0] if backend == "duckdb"
            else request.getfixturevalue("delta_demo_data"))
    return copy_data(demo, target)


@pytest.fixture
def settings(tmp_path, backend, request) -> GridSettings:
    data = copy_demo(request, backend, tmp_path / "data")
    return GridSettings(data_dir=str(data), backend=backend, **TEST_FLEET)


def registry(settings) -> pd.DataFrame:
    with read_warehouse(settings) as con:
        return con.execute("select * from models.maintenance_model order by week_start").fetchdf()


def scored_version(settings, day) -> set[str]:
    with read_warehouse(settings) as con:
        return {v for (v,) in con.execute(
            "select distinct model_version from scores.transformer_risk where date = ?",
            [pd.Timestamp(day)]).fetchall()}


def retrain_last_week(settings, **kw) -> dg.ExecuteInProcessResult:
    return dg.materialize([maintenance_model], resources=build_resources(settings),
                          partition_key=LAST_WEEK.isoformat(), **kw)


def test_a_worse_model_is_not_promoted_and_scoring_keeps_the_serving_one(settings, monkeypatch):
    def no_skill(spec, seed):
        return Pipeline([("impute", SimpleImputer(keep_empty_features=True)),
                         ("model", DummyClassifier(strategy="prior"))])

    monkeypatch.setattr(models, "build_pipeline", no_skill)
    # a dummy has no feature importances to plot
    monkeypatch.setattr("gridassets.defs.models.assets._importance", lambda model: b"")
    assert retrain_last_week(settings).success
    record = registry(settings).iloc[-1]
    assert record["status"] == "rejected"
    assert record["roc_auc"] == pytest.approx(0.5)
    assert record["serving_before"] and record["serving_after"] == record["serving_before"]
    assert f"kept {record['serving_before']}" in record["decision"]

    assert dg.materialize([transformer_risk], resources=build_resources(settings),
                          partition_key=LAST_DAY).success
    assert scored_version(settings, LAST_DAY) == {record["serving_before"]}


def test_a_failed_training_is_recorded_and_the_serving_version_stays(settings, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory while fitting")

    monkeypatch.setattr(models, "train", broken)
    result = retrain_last_week(settings)
    assert result.success  # a failed training must not take scoring down
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "trained" and not check.passed
    assert "out of memory while fitting" in check.description
    record = registry(settings).iloc[-1]
    assert record["status"] == "failed" and record["artifact_path"] is None
    assert record["serving_after"] == record["serving_before"] is not None


def test_scoring_with_no_model_fails_with_a_clear_message(settings):
    resolved = settings.resolve()
    if resolved.backend == "delta":
        shutil.rmtree(resolved.lake_dir / "models" / "maintenance_model")
    else:
        with duckdb.connect(str(resolved.warehouse)) as con:
            con.execute("drop table models.maintenance_model")
    result = dg.materialize([transformer_risk], resources=build_resources(settings),
                            partition_key=LAST_DAY, raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "no maintenance_model has been trained yet" in message
