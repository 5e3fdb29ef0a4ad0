"""The model registry at work on a real warehouse: the promotion gate, a failed training, and
scoring with no model at all."""

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
from gridassets_tests.conftest import TEST_FLEET, TEST_WINDOW, copy_data

LAST_DAY = TEST_WINDOW[1]
LAST_WEEK = (pd.Timestamp(LAST_DAY) - pd.Timedelta(days=pd.Timestamp(LAST_DAY).weekday())).date()


@pytest.fixture
def data(tmp_path, demo_data):
    return copy_data(demo_data[0], tmp_path / "data")


def resources(data):
    return build_resources(GridSettings(data_dir=str(data), **TEST_FLEET))


def registry(data) -> pd.DataFrame:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("select * from models.maintenance_model order by week_start").fetchdf()


def scored_version(data, day) -> set[str]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return {v for (v,) in con.execute(
            "select distinct model_version from scores.transformer_risk where date = ?",
            [pd.Timestamp(day)]).fetchall()}


def retrain_last_week(data, **kw) -> dg.ExecuteInProcessResult:
    return dg.materialize([maintenance_model], resources=resources(data),
                          partition_key=LAST_WEEK.isoformat(), **kw)


def test_a_worse_model_is_not_promoted_and_scoring_keeps_the_serving_one(data, monkeypatch):
    def no_skill(spec, seed):
        return Pipeline([("impute", SimpleImputer(keep_empty_features=True)),
                         ("model", DummyClassifier(strategy="prior"))])

    monkeypatch.setattr(models, "build_pipeline", no_skill)
    # a dummy has no feature importances to plot
    monkeypatch.setattr("gridassets.defs.models.assets._importance", lambda model: b"")
    assert retrain_last_week(data).success
    record = registry(data).iloc[-1]
    assert record["status"] == "rejected"
    assert record["roc_auc"] == pytest.approx(0.5)
    assert record["serving_before"] and record["serving_after"] == record["serving_before"]
    assert f"kept {record['serving_before']}" in record["decision"]

    assert dg.materialize([transformer_risk], resources=resources(data),
                          partition_key=LAST_DAY).success
    assert scored_version(data, LAST_DAY) == {record["serving_before"]}


def test_a_failed_training_is_recorded_and_the_serving_version_stays(data, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory while fitting")

    monkeypatch.setattr(models, "train", broken)
    result = retrain_last_week(data)
    assert result.success  # a failed training must not take scoring down
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "trained" and not check.passed
    assert "out of memory while fitting" in check.description
    record = registry(data).iloc[-1]
    assert record["status"] == "failed" and record["artifact_path"] is None
    assert record["serving_after"] == record["serving_before"] is not None


def test_scoring_with_no_model_fails_with_a_clear_message(data):
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("drop table models.maintenance_model")
    result = dg.materialize([transformer_risk], resources=resources(data),
                            partition_key=LAST_DAY, raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "no maintenance_model has been trained yet" in message
