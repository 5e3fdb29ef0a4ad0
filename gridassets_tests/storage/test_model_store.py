"""Model versions in storage: the serving row of a registry table (with pending records), on
both warehouse backends, and artifacts written under the models folder, recorded by relative path
and checked by SHA-256."""

import hashlib
from datetime import date

import pandas as pd
import pytest

from gridassets.domain import models, training
from gridassets.domain.registry import NoServingModelError
from gridassets.storage import model_store
from gridassets.storage.backend import open_warehouse
from gridassets.storage.publish import Slice
from gridassets_tests.conftest import read_warehouse
from gridassets_tests.domain.test_training import SERVING, TRAINED_AT, WEEK, record, week_data

SPEC = models.OUTAGE


@pytest.fixture(scope="module")
def trained() -> training.WeekResult:
    return training.train_week(SPEC, WEEK, week_data(), seed=3, trained_at=TRAINED_AT)


def test_a_trained_week_is_stored_under_its_version_and_loads_back(tmp_path, trained):
    stored = model_store.save_week(trained, tmp_path)
    r = stored.record
    assert r.artifact_path == f"outage_model/{r.version}.joblib"
    assert r.artifact_sha256 == hashlib.sha256(trained.payload).hexdigest()
    assert (tmp_path / r.artifact_path).read_bytes() == trained.payload
    assert trained.record.artifact_path is None  # the input result is left as it was
    holdout = trained.holdout
    again = model_store.load_model(tmp_path, r.__dict__)
    assert list(again.predict_proba(holdout)) == list(trained.model.predict_proba(holdout))


def test_an_artifact_whose_bytes_changed_is_refused(tmp_path, trained):
    r = model_store.save_week(trained, tmp_path).record
    (tmp_path / r.artifact_path).write_bytes(trained.payload + b"x")
    with pytest.raises(ValueError, match="differs from the registered"):
        model_store.load_model(tmp_path, r.__dict__)


def test_a_failed_week_writes_no_file(tmp_path):
    failed = training.train_week(SPEC, WEEK, training.WeekData(
        serving=SERVING, serving_model=None, code_version="c", error=RuntimeError("boom")),
        seed=3, trained_at=TRAINED_AT)
    assert model_store.save_week(failed, tmp_path) is failed
    assert list(tmp_path.iterdir()) == []


def store_registry(settings, frame: pd.DataFrame) -> None:
    open_warehouse(settings.resolve()).publish(Slice("models", SPEC.name), frame,
                                               asset=SPEC.name, run_id="test")


def test_serving_comes_from_the_table_and_the_pending_records(tmp_path, settings):
    with open_warehouse(settings.resolve()).connect() as con:  # read-only needs a file
        assert model_store.serving_as_of(con, SPEC, date(2025, 6, 3)) is None
        with pytest.raises(NoServingModelError, match="no outage_model has been trained yet"):
            model_store.load_serving(con, SPEC, date(2025, 6, 3), tmp_path)
    store_registry(settings, pd.concat([record(date(2025, 5, 19), "promoted", "s1").frame(),
                                        record(date(2025, 5, 26), "rejected", "s2").frame()]))
    with read_warehouse(settings) as con:
        assert model_store.serving_as_of(con, SPEC, date(2025, 6, 3))["version"] == "s1"
        assert model_store.serving_as_of(con, SPEC, date(2025, 5, 18)) is None
        with pytest.raises(NoServingModelError, match="no promoted outage_model version serves"):
            model_store.load_serving(con, SPEC, date(2025, 5, 18), tmp_path)
        pending = [record(date(2025, 6, 2), "promoted", "p1")]
        assert model_store.serving_as_of(con, SPEC, date(2025, 6, 3), pending)["version"] == "p1"
        assert model_store.serving_record(con, "models.outage_model", date(2025, 5, 30))[
            "version"] == "s1"
