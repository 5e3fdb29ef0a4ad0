"""Features are SQL over a real DuckDB file; a day's features never use data after that day."""

from datetime import date, timedelta

import pandas as pd
import pytest

from gridassets import warehouse
from gridassets.domain import features
from gridassets.storage import features as feature_sql
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets_tests.conftest import SMALL_FLEET

FIRST = date(2025, 5, 1)


def load_raw(db, sim: FleetSimulator, days: int) -> None:
    with warehouse.connect(db) as con:
        warehouse.replace_rows(con, "circuits", sim.circuits())
        warehouse.replace_rows(con, "transformers", sim.transformers())
        for name in ("transformer_telemetry", "feeder_load", "weather_observations",
                     "outage_events", "transformer_failures"):
            frame = pd.concat([getattr(sim, name)(FIRST + timedelta(days=i)) for i in range(days)])
            warehouse.replace_rows(con, name, frame)


def build(db, until: date) -> dict[str, pd.DataFrame]:
    with warehouse.connect(db) as con:
        stats = feature_sql.transformer_daily_stats(con, FIRST, until + timedelta(days=1))
        warehouse.replace_rows(con, "transformer_daily_stats", stats)
        health = feature_sql.transformer_health_features(con, FIRST, until + timedelta(days=1))
        warehouse.replace_rows(con, "transformer_health_features", health)
        exposure = feature_sql.circuit_exposure_features(con, FIRST, until + timedelta(days=1))
    return {"stats": stats, "health": health, "exposure": exposure}


@pytest.fixture(scope="module")
def sim() -> FleetSimulator:
    return FleetSimulator(FleetConfig(**SMALL_FLEET))


def test_no_feature_of_a_day_uses_later_data(tmp_path, sim):
    day = FIRST + timedelta(days=24)
    short, long = tmp_path / "short.duckdb", tmp_path / "long.duckdb"
    load_raw(short, sim, 25)   # data up to and including `day`
    load_raw(long, sim, 40)    # 15 more days of every raw table
    a, b = build(short, day), build(long, day + timedelta(days=15))
    for name in a:
        mine = a[name][a[name]["date"] == pd.Timestamp(day)].reset_index(drop=True)
        theirs = b[name][b[name]["date"] == pd.Timestamp(day)].reset_index(drop=True)
        assert len(mine) > 0
        pd.testing.assert_frame_equal(mine, theirs, check_exact=False, rtol=1e-9)


def test_trailing_windows_count_the_days_they_saw(tmp_path, sim):
    db = tmp_path / "w.duckdb"
    load_raw(db, sim, 35)
    health = build(db, FIRST + timedelta(days=34))["health"]
    by_day = health.groupby("date")["history_days"].max()
    assert by_day.iloc[0] == 1
    assert by_day.iloc[9] == 10
    assert by_day.max() == features.WINDOW_DAYS


def test_daily_stats_match_a_direct_computation(tmp_path, sim):
    db = tmp_path / "s.duckdb"
    load_raw(db, sim, 2)
    stats = build(db, FIRST + timedelta(days=1))["stats"]
    tel = sim.transformer_telemetry(FIRST)
    one = tel[tel["transformer_id"] == tel["transformer_id"].iloc[0]]
    row = stats[(stats["transformer_id"] == one["transformer_id"].iloc[0])
                & (stats["date"] == pd.Timestamp(FIRST))].iloc[0]
    assert row["hours"] == 24
    assert row["load_peak_pct"] == pytest.approx(one["load_pct"].max())
    assert row["oil_mean_c"] == pytest.approx(one["oil_temp_c"].mean())
    assert row["overload_hours"] == int((one["load_pct"] > 100).sum())


def test_exposure_has_one_row_per_circuit_day_with_weather_of_its_zone(tmp_path, sim):
    db = tmp_path / "e.duckdb"
    load_raw(db, sim, 3)
    exposure = build(db, FIRST + timedelta(days=2))["exposure"]
    assert len(exposure) == 3 * SMALL_FLEET["n_circuits"]
    weather = sim.weather_observations(FIRST)
    circuit = exposure.iloc[0]
    zone_gust = weather[weather["zone"] == circuit["zone"]]["wind_gust_mph"].max()
    first = exposure[(exposure["circuit_id"] == circuit["circuit_id"])
                     & (exposure["date"] == pd.Timestamp(FIRST))].iloc[0]
    assert first["peak_gust_mph"] == pytest.approx(zone_gust)
