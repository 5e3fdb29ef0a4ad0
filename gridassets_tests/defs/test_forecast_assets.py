"""The forecasting assets materialized for real on a small warehouse of either backend: selection,
inputs, checks."""

import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from deltalake import DeltaTable

from gridassets.defs.fleet.assets import circuits
from gridassets.defs.forecasting import assets as forecasting_assets
from gridassets.defs.forecasting.assets import load_forecast, load_forecast_backtest
from gridassets.defs.raw.assets import raw_assets
from gridassets.defs.resources import GridSettings, build_resources
from gridassets.domain.export import write_daily, write_registry
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.domain.schemas import CIRCUITS, SPECS
from gridassets.storage.delta import PARTITION
from gridassets_tests.conftest import SMALL_FLEET, read_warehouse

# 18 days of raw data: enough history (14 days) for the model to be fitted, not a fallback.
RAW_START, RAW_END = date(2025, 5, 15), date(2025, 6, 1)
ISSUE = date(2025, 5, 31)  # a day with history before it and its actuals (D+1) stored
RAW = {a.key.to_user_string(): a for a in raw_assets}
FORECASTING = [load_forecast, load_forecast_backtest]


def _range_tags(first: date, last: date) -> dict:
    return {"dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat()}


def _build(settings: GridSettings, tables=("feeder_load", "weather_observations")) -> None:
    resources = build_resources(settings)
    assert dg.materialize([circuits], resources=resources).success
    assert dg.materialize([RAW[t] for t in tables], resources=resources,
                          tags=_range_tags(RAW_START, RAW_END)).success


@pytest.fixture(scope="module")
def base_data(tmp_path_factory) -> Callable[[str], Path]:
    """The data folder of a synthetic warehouse with the registry, feeder load and weather, for a
    backend (built once per backend)."""
    built: dict[str, Path] = {}

    def for_backend(backend: str) -> Path:
        if backend not in built:
            data = tmp_path_factory.mktemp(f"forecast_base_{backend}") / "data"
            _build(GridSettings(data_dir=str(data), backend=backend, **SMALL_FLEET))
            built[backend] = data
        return built[backend]

    return for_backend


@pytest.fixture
def settings(base_data, tmp_path, backend) -> GridSettings:
    data = tmp_path / "data"
    shutil.copytree(base_data(backend), data)
    return GridSettings(data_dir=str(data), backend=backend, **SMALL_FLEET)


def run(settings, selection, day: date | None = None, range_=None, instance=None,
        raise_on_error=False) -> dg.ExecuteInProcessResult:
    kw = {"partition_key": day.isoformat()} if day else {"tags": _range_tags(*range_)}
    return dg.materialize(FORECASTING, selection=selection, resources=build_resources(settings),
                          instance=instance, raise_on_error=raise_on_error, **kw)


def sql(settings, query: str, params=()) -> pd.DataFrame:
    with read_warehouse(settings) as con:
        return con.execute(query, list(params)).fetchdf()


def delta_table(settings, schema: str, table: str) -> DeltaTable | None:
    """The Delta table behind `schema.table` (None on the DuckDB backend)."""
    resolved = settings.resolve()
    if resolved.backend != "delta":
        return None
    return DeltaTable(str(resolved.lake_dir / schema / table))


def lose_days_from(settings, table: str, day: date) -> None:
    """Delete raw.`table`'s rows of `day` and later behind the graph's back (a lost partition)."""
    lake = delta_table(settings, "raw", table)
    if lake is not None:
        lake.delete(f"{PARTITION} >= '{day.isoformat()}'")  # a partition key is its day
        return
    with duckdb.connect(str(settings.resolve().warehouse)) as con:
        con.execute(f"delete from raw.{table} where timestamp >= ?", [pd.Timestamp(day)])


def tables(settings) -> set[str]:
    return set(sql(settings, "select table_schema || '.' || table_name as t "
                             "from information_schema.tables")["t"])


def failure(result) -> str:
    return result.get_step_failure_events()[0].event_specific_data.error.message


def retries(result) -> int:
    return sum(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def metadata(result, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events()
              if e.asset_key.to_user_string() == asset]
    assert len(events) == 1, asset
    return events[0].materialization.metadata


def _day_ahead(frame: pd.DataFrame, day: date) -> None:
    start = pd.Timestamp(day + timedelta(days=1))
    for _, g in frame.groupby("circuit_id"):
        assert list(g.sort_values("target_ts")["target_ts"]) == list(
            pd.date_range(start, periods=24, freq="h"))


# --- 1. load_forecast alone ------------------------------------------------------------------

def test_load_forecast_alone_runs_from_the_real_definitions(settings, monkeypatch):
    """What `dagster asset materialize -m gridassets.definitions --select load_forecast
    --partition D` runs: the global asset job of the real Definitions, one asset selected."""
    from gridassets.definitions import defs

    monkeypatch.setenv("GRIDASSETS_DATA_DIR", settings.data_dir)
    monkeypatch.setenv("GRIDASSETS_WAREHOUSE", settings.backend)
    for name, var in (("seed", "SEED"), ("n_circuits", "CIRCUITS"),
                      ("n_transformers", "TRANSFORMERS")):
        monkeypatch.setenv(f"GRIDASSETS_{var}", str(SMALL_FLEET[name]))
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance, partition_key=ISSUE.isoformat(),
            asset_selection=[dg.AssetKey("load_forecast")])
    assert result.success
    assert materialized(result) == {"load_forecast"}
    frame = sql(settings, "select * from scores.load_forecast")
    assert frame["circuit_id"].nunique() == SMALL_FLEET["n_circuits"]
    _day_ahead(frame, ISSUE)


def test_load_forecast_alone_writes_only_what_it_materializes(settings):
    result = run(settings, ["load_forecast"], ISSUE)
    assert result.success, failure(result)
    assert materialized(result) == {"load_forecast"}
    # No materialization of load_forecast_models, so no rows of it either.
    assert "models.load_forecast_models" not in tables(settings)
    assert "does not store" in str(metadata(result, "load_forecast")["model_state"].value)


def test_alone_or_together_the_forecast_is_the_same_and_the_state_carries_over(settings, tmp_path):
    day_before = ISSUE - timedelta(days=1)
    assert run(settings, ["load_forecast", "load_forecast_models"], day_before).success
    state = sql(settings, "select * from models.load_forecast_models")
    assert set(state["issue_date"].astype(str)) == {day_before.isoformat()}
    # Alone, the next day reads the state the day before left and stores none of its own.
    alone = GridSettings(data_dir=str(tmp_path / "alone"), backend=settings.backend,
                         **SMALL_FLEET)
    shutil.copytree(settings.data_dir, alone.data_dir)
    result = run(alone, ["load_forecast"], ISSUE)
    assert result.success
    meta = metadata(result, "load_forecast")
    assert day_before.isoformat() in str(meta["model_state"].value)
    pd.testing.assert_frame_equal(
        sql(alone, "select * from models.load_forecast_models"), state)
    # Together, the same forecast, and the state of the day is stored.
    result = run(settings, ["load_forecast", "load_forecast_models"], ISSUE)
    assert materialized(result) == {"load_forecast", "load_forecast_models"}
    query = "select * from scores.load_forecast where issue_date = ? order by circuit_id, target_ts"
    pd.testing.assert_frame_equal(sql(alone, query, [ISSUE]), sql(settings, query, [ISSUE]))
    stored = sql(settings, "select issue_date from models.load_forecast_models")["issue_date"]
    assert ISSUE.isoformat() in set(stored.astype(str))


# --- 2. a utility with load data alone --------------------------------------------------------

@pytest.fixture
def load_only(tmp_path, backend) -> GridSettings:
    """Landing mode with circuits and feeder load only: no weather_observations at all."""
    settings = GridSettings(source="landing", data_dir=str(tmp_path / "data"), backend=backend)
    landing = settings.resolve().landing_dir
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    write_registry(CIRCUITS, sim.circuits(), landing)
    day = RAW_START
    while day <= RAW_END:
        write_daily(SPECS["feeder_load"], sim.feeder_load(day), landing, day)
        day += timedelta(days=1)
    _build(settings, tables=("feeder_load",))
    return settings


def test_a_utility_with_load_data_alone_gets_forecasts_from_load_and_is_told_so(load_only):
    assert "raw.weather_observations" not in tables(load_only)
    result = run(load_only, ["load_forecast", "load_forecast_models"], ISSUE)
    assert result.success, failure(result)
    assert retries(result) == 0
    frame = sql(load_only, "select * from scores.load_forecast")
    _day_ahead(frame, ISSUE)
    assert set(frame["inputs"]) == {"load"}
    assert (frame["method"] == "sarimax").all()
    meta = metadata(result, "load_forecast")
    assert "weather_observations" in str(meta["temperature"].value)


def test_with_weather_the_model_says_it_used_temperature(settings):
    assert run(settings, ["load_forecast"], ISSUE).success
    frame = sql(settings, "select * from scores.load_forecast")
    assert set(frame.loc[frame["method"] == "sarimax", "inputs"]) == {"load+temperature"}


# --- 3. no output from missing input ----------------------------------------------------------

def test_no_feeder_load_for_the_day_fails_naming_what_to_materialize(settings):
    missing = RAW_END + timedelta(days=1)
    result = run(settings, ["load_forecast", "load_forecast_models"], missing)
    assert not result.success
    message = failure(result)
    assert (f"load_forecast {missing}: no feeder_load for {missing}: "
            "materialize feeder_load for that day first" in message)
    assert "Nothing was written" in message
    assert retries(result) == 0
    assert "scores.load_forecast" not in tables(settings)


def test_a_missing_weather_day_where_there_is_weather_fails(settings):
    lose_days_from(settings, "weather_observations", ISSUE)
    result = run(settings, ["load_forecast"], ISSUE)
    assert not result.success
    assert f"no weather_observations for {ISSUE}: materialize" in failure(result)
    assert retries(result) == 0


def test_backtest_without_the_days_actuals_fails(settings):
    first = ISSUE - timedelta(days=2)
    assert run(settings, ["load_forecast", "load_forecast_models"], range_=(first, ISSUE)).success
    target = ISSUE + timedelta(days=1)
    lose_days_from(settings, "feeder_load", target)
    result = run(settings, ["load_forecast_backtest"], target)
    assert not result.success
    assert (f"no feeder_load for {target}: materialize feeder_load for that day first"
            in failure(result))
    assert retries(result) == 0
    assert "scores.load_forecast_backtest" not in tables(settings)


def test_backtest_with_a_gap_in_the_forecasts_fails(settings):
    assert run(settings, ["load_forecast", "load_forecast_models"], ISSUE).success
    # The only stored forecast is now from long before the four weeks being scored.
    lake = delta_table(settings, "scores", "load_forecast")
    if lake is not None:
        lake.update(updates={"issue_date": "issue_date - interval '40 days'"})
    else:
        with duckdb.connect(str(settings.resolve().warehouse)) as con:
            con.execute("update scores.load_forecast set issue_date = issue_date - 40")
    result = run(settings, ["load_forecast_backtest"], RAW_END)
    assert not result.success
    assert "materialize load_forecast" in failure(result)
    assert retries(result) == 0


def test_backtest_at_the_start_of_history_is_empty_not_failed(settings):
    result = run(settings, ["load_forecast_backtest"], RAW_START + timedelta(days=3))
    assert result.success
    meta = metadata(result, "load_forecast_backtest")
    assert meta["origins"].value == 0


# --- checks --------------------------------------------------------------------------------------

def test_every_forecasting_asset_has_checks():
    checks = {}
    for spec in [*load_forecast.check_specs, *load_forecast_backtest.check_specs]:
        checks.setdefault(spec.asset_key.to_user_string(), []).append(spec)
    assert set(checks) == {"load_forecast", "load_forecast_models", "load_forecast_backtest"}


def test_checks_pass_and_attach_to_the_new_materializations(settings):
    first = ISSUE - timedelta(days=2)
    assert run(settings, ["load_forecast", "load_forecast_models"], range_=(first, ISSUE)).success
    result = run(settings, None, RAW_END)
    assert result.success, failure(result)
    evaluations = result.get_asset_check_evaluations()
    assert {e.asset_key.to_user_string() for e in evaluations} == {
        "load_forecast", "load_forecast_models", "load_forecast_backtest"}
    assert all(e.passed for e in evaluations)
    # Judged before the write, reported after it: a result yielded before the output would
    # attach to the previous materialization, and the UI would show the new one unchecked.
    for e in evaluations:
        assert e.target_materialization_data.run_id == result.run_id, e.asset_key
    backtest = sql(settings, "select * from scores.load_forecast_backtest")
    assert set(backtest["date"].dt.date) == {RAW_END}
    assert "ALL" in set(backtest["circuit_id"])


def test_a_failed_blocking_check_writes_nothing(settings, monkeypatch):
    assert run(settings, ["load_forecast", "load_forecast_models"], ISSUE).success
    before = sql(settings, "select * from scores.load_forecast order by circuit_id, target_ts")
    lake = delta_table(settings, "scores", "load_forecast")
    version = lake.version() if lake is not None else None
    real = forecasting_assets.forecasting.forecast_day_ahead

    def broken(*args, **kwargs):
        frame, fitted = real(*args, **kwargs)
        frame.loc[frame.index[:3], "lower_mw"] = frame["load_mw"].iloc[:3] + 1.0
        return frame, fitted

    monkeypatch.setattr(forecasting_assets.forecasting, "forecast_day_ahead", broken)
    result = run(settings, ["load_forecast", "load_forecast_models"], ISSUE)
    assert not result.success
    assert "interval" in failure(result) and retries(result) == 0
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [e.asset_key.to_user_string() for e in failed] == ["load_forecast"]
    pd.testing.assert_frame_equal(
        sql(settings, "select * from scores.load_forecast order by circuit_id, target_ts"), before)
    if lake is not None:
        lake.update_incremental()
        assert lake.version() == version
