"""The hourly intraday refresh materialized for real on a small warehouse of either backend: the
day-ahead models it starts from, the hours it covers, what it reads from the source, refusals."""

import shutil
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from gridassets.defs.forecasting.assets import load_forecast
from gridassets.defs.forecasting.intraday import intraday_load_forecast, intraday_schedule
from gridassets.defs.resources import GridSettings, build_resources
from gridassets.domain import intraday
from gridassets_tests.conftest import SMALL_FLEET
from gridassets_tests.defs.test_forecast_assets import (
    _build,
    failure,
    lose_days_from,
    metadata,
    retries,
    sql,
    tables,
)

MODELS_OF = date(2025, 5, 31)  # the daily graph's last stored day-ahead models
DAY = MODELS_OF + timedelta(days=1)  # 2025-06-01, the last raw day of the base warehouse
HOUR = f"{DAY}-14:00"
CUTOFF = pd.Timestamp(DAY) + pd.Timedelta(hours=14)


@pytest.fixture(scope="module")
def with_models(tmp_path_factory):
    """Per backend, a data folder with raw load and weather to DAY and the day-ahead models of
    MODELS_OF (what the daily graph leaves behind)."""
    built = {}

    def for_backend(backend: str):
        if backend not in built:
            data = tmp_path_factory.mktemp(f"intraday_{backend}") / "data"
            s = GridSettings(data_dir=str(data), backend=backend, **SMALL_FLEET)
            _build(s)
            assert dg.materialize([load_forecast], resources=build_resources(s),
                                  partition_key=MODELS_OF.isoformat(),
                                  selection=["load_forecast", "load_forecast_models"]).success
            built[backend] = data
        return built[backend]

    return for_backend


@pytest.fixture
def settings(with_models, tmp_path, backend) -> GridSettings:
    data = tmp_path / "data"
    shutil.copytree(with_models(backend), data)
    return GridSettings(data_dir=str(data), backend=backend, **SMALL_FLEET)


def run(settings, partition_key=None, tags=None) -> dg.ExecuteInProcessResult:
    return dg.materialize([intraday_load_forecast], resources=build_resources(settings),
                          partition_key=partition_key, tags=tags, raise_on_error=False)


def stored(settings) -> pd.DataFrame:
    return sql(settings, "select * from scores.intraday_load_forecast "
                         "order by cutoff_ts, circuit_id, target_ts")


def test_an_hour_is_forecast_24_hours_ahead_from_the_models_of_the_day_before(settings):
    result = run(settings, HOUR)
    assert result.success, failure(result)
    frame = stored(settings)
    assert set(frame["cutoff_ts"]) == {CUTOFF}
    assert frame["circuit_id"].nunique() == SMALL_FLEET["n_circuits"]
    assert len(frame) == SMALL_FLEET["n_circuits"] * 24
    assert frame["target_ts"].min() == CUTOFF + pd.Timedelta(hours=1)
    assert frame["target_ts"].max() == CUTOFF + pd.Timedelta(hours=24)
    assert set(frame["method"]) == {intraday.METHOD_KALMAN}
    assert set(frame["models_of"].astype(str)) == {MODELS_OF.isoformat()}
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == set(intraday.CHECKS) and all(c.passed for c in checks)
    meta = metadata(result, "intraday_load_forecast")
    assert meta["models_of"].value == MODELS_OF.isoformat()
    assert "all from the warehouse" in meta["read_from_source"].value


@pytest.mark.duckdb_only
def test_a_range_of_hours_is_one_run_and_replaces_only_its_hours(settings):
    assert run(settings, HOUR).success
    first = stored(settings)
    result = run(settings, tags={"dagster/asset_partition_range_start": f"{DAY}-15:00",
                                 "dagster/asset_partition_range_end": f"{DAY}-17:00"})
    assert result.success, failure(result)
    frame = stored(settings)
    assert sorted(frame["cutoff_ts"].unique()) == [CUTOFF + pd.Timedelta(hours=h)
                                                  for h in range(4)]
    pd.testing.assert_frame_equal(frame[frame["cutoff_ts"] == CUTOFF].reset_index(drop=True),
                                  first)


@pytest.mark.duckdb_only
def test_the_day_not_yet_stored_is_read_from_the_source(settings):
    """At 14:00 the daily graph has not stored today's load: the refresh reads what the source
    has of it, cut at the cutoff, and forecasts as it would from the warehouse."""
    assert run(settings, HOUR).success
    from_warehouse = stored(settings)
    lose_days_from(settings, "feeder_load", DAY)
    lose_days_from(settings, "weather_observations", DAY)
    result = run(settings, HOUR)
    assert result.success, failure(result)
    assert metadata(result, "intraday_load_forecast")["read_from_source"].value == str(DAY)
    pd.testing.assert_frame_equal(stored(settings), from_warehouse)


def test_without_the_day_ahead_models_it_fails_naming_what_to_materialize(tmp_path, backend):
    s = GridSettings(data_dir=str(tmp_path / "data"), backend=backend, **SMALL_FLEET)
    _build(s)
    result = run(s, HOUR)
    assert not result.success
    message = failure(result)
    assert f"materialize load_forecast_models through {MODELS_OF} first" in message
    assert "Nothing was written" in message and retries(result) == 0
    assert "scores.intraday_load_forecast" not in tables(s)


@pytest.mark.duckdb_only
def test_a_lost_day_of_history_fails_naming_it(settings):
    lost = DAY - timedelta(days=5)
    lose_days_from(settings, "feeder_load", lost)
    result = run(settings, HOUR)
    assert not result.success
    assert f"no feeder_load for {lost}" in failure(result)
    assert "scores.intraday_load_forecast" not in tables(settings)


def test_the_hourly_schedule_asks_for_the_hour_that_just_closed():
    from gridassets.definitions import defs

    schedule = defs.get_schedule_def(intraday_schedule.name)
    context = dg.build_schedule_context(
        scheduled_execution_time=pd.Timestamp("2025-06-01 15:10", tz="UTC").to_pydatetime())
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["2025-06-01-14:00"]
