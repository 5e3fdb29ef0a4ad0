"""A week of a real substation transformer (ETT, Zhou et al., AAAI 2021; CC BY-ND 4.0) through
the landing path.

ETTh1 gives hourly loads in MW (useful = active, useless = reactive, at three voltage levels) and
top-oil temperature for 2016-07 .. 2018-06 in China Standard Time. The test converts a week at run
time, leaving the file (kept unchanged in gridassets_tests/data/ett) untouched:
- timestamps from UTC+8 to UTC, then forward by a whole number of weeks (weekdays and hours kept),
  because the graph's daily partitions start in 2024;
- load_pct = apparent power at the high-voltage side, sqrt(HUFL^2 + HULL^2), as a share of a
  rating set at 1.25 x the largest apparent power in the file (ETT publishes no rating);
- oil_temp_c = OT unchanged; ambient temperature is not measured in ETT and stays empty.
"""

from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from gridassets.defs.raw.assets import raw_assets
from gridassets.defs.resources import GridSettings, build_resources
from gridassets.domain.export import write_daily, write_registry
from gridassets.domain.schemas import CIRCUITS, TRANSFORMER_TELEMETRY, TRANSFORMERS
from gridassets_tests.conftest import TEST_DATA, read_warehouse

ETT = TEST_DATA / "ett" / "ETTh1.csv"

WEEK_START_UTC = date(2017, 1, 9)  # a Monday in winter, oil below 20 degC most of the week
SHIFT = timedelta(weeks=417)  # 2017-01-09 + 417 weeks = 2025-01-06, also a Monday


def ett_telemetry() -> tuple[pd.DataFrame, float]:
    raw = pd.read_csv(ETT, parse_dates=["date"])
    apparent_mva = np.hypot(raw["HUFL"], raw["HULL"])
    rating_kva = float(1.25 * apparent_mva.max() * 1000)
    utc = raw["date"] - pd.Timedelta(hours=8)
    frame = pd.DataFrame({
        "transformer_id": "ETTh1",
        "timestamp": utc + SHIFT,
        "load_pct": 100 * apparent_mva * 1000 / rating_kva,
        "oil_temp_c": raw["OT"],
        "ambient_temp_c": np.nan,
        "_utc": utc,
    })
    start = pd.Timestamp(WEEK_START_UTC)
    week = frame[(frame["_utc"] >= start) & (frame["_utc"] < start + pd.Timedelta(days=7))]
    return week.drop(columns="_utc").reset_index(drop=True), rating_kva


@pytest.fixture
def landing_settings(tmp_path, backend) -> GridSettings:
    settings = GridSettings(source="landing", data_dir=str(tmp_path / "data"), backend=backend)
    landing = settings.resolve().landing_dir
    week, rating_kva = ett_telemetry()
    write_registry(CIRCUITS, pd.DataFrame(
        {"circuit_id": ["ETT-1"], "zone": ["CNZ001"], "customers": [0]}), landing)
    write_registry(TRANSFORMERS, pd.DataFrame({
        "transformer_id": ["ETTh1"], "circuit_id": ["ETT-1"], "rating_kva": [rating_kva],
        "install_year": [2010],
    }), landing)
    for day, rows in week.groupby(week["timestamp"].dt.date):
        write_daily(TRANSFORMER_TELEMETRY, rows, landing, day)
    return settings


def test_a_real_transformer_week_loads_and_passes_the_checks(landing_settings):
    week, _ = ett_telemetry()
    first, last = week["timestamp"].min().date(), week["timestamp"].max().date()
    asset = next(a for a in raw_assets if a.key.path == ["transformer_telemetry"])
    result = dg.materialize([asset], resources=build_resources(landing_settings), tags={
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    })
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"schema", "ranges", "completeness", "duplicates"}
    failed = {name: c.description for name, c in checks.items() if not c.passed}
    assert failed == {}, failed

    with read_warehouse(landing_settings) as con:
        stored = con.execute(
            "select timestamp, load_pct, oil_temp_c, ambient_temp_c "
            "from raw.transformer_telemetry order by timestamp").fetchdf()
    assert len(stored) == 7 * 24
    np.testing.assert_allclose(stored["oil_temp_c"], week["oil_temp_c"], rtol=1e-5)
    assert stored["ambient_temp_c"].isna().all()
    assert stored["timestamp"].min() == pd.Timestamp(WEEK_START_UTC + SHIFT)


def test_a_real_gap_in_the_feed_is_flagged_by_completeness(landing_settings):
    """Drop two hours from one day's file, as a telemetry outage would: the check names the day."""
    week, _ = ett_telemetry()
    day = week["timestamp"].dt.date.iloc[30]
    path = landing_settings.resolve().landing_dir / "transformer_telemetry" / f"{day}.csv"
    frame = pd.read_csv(path)
    frame.drop(index=[5, 6]).to_csv(path, index=False)
    asset = next(a for a in raw_assets if a.key.path == ["transformer_telemetry"])
    result = dg.materialize([asset], resources=build_resources(landing_settings),
                            partition_key=day.isoformat(), raise_on_error=False)
    assert not result.success  # a failed blocking check fails the step: nothing downstream runs
    completeness = next(c for c in result.get_asset_check_evaluations()
                        if c.check_name == "completeness")
    assert not completeness.passed
    assert "without exactly 24 hourly rows" in completeness.description
