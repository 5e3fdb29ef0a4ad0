"""The simulator's weather forecasts: skill that falls with lead time as the documented error model
says, determinism per (seed, issue day), and storms missed and invented."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from gridassets.domain import forecast_error
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.domain.schemas import WEATHER_FORECASTS
from gridassets_tests.conftest import SMALL_FLEET

FIRST = date(2024, 7, 1)
ISSUES = [FIRST + timedelta(days=k) for k in range(0, 364, 4)]  # 91 forecasts over a year


@pytest.fixture(scope="module")
def paired() -> pd.DataFrame:
    """Each forecast hour next to the truth it forecast."""
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    out = []
    for day in ISSUES:
        fc = sim.weather_forecasts(day)
        obs = pd.concat([sim.weather_observations(day + timedelta(days=k)) for k in range(1, 8)])
        out.append(fc.merge(obs, left_on=["zone", "valid_ts"], right_on=["zone", "timestamp"],
                            suffixes=("_fc", "_obs")))
    frame = pd.concat(out, ignore_index=True)
    frame["lead_day"] = (frame["lead_h"] - 1) // 24 + 1
    return frame


def test_one_row_per_zone_and_hour_of_the_next_seven_days():
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    fc = sim.weather_forecasts(date(2025, 3, 1))
    assert list(fc.columns) == WEATHER_FORECASTS.names
    assert len(fc) == len(sim.config.zones) * 168
    assert fc["valid_ts"].min() == pd.Timestamp("2025-03-02 00:00")
    assert fc["valid_ts"].max() == pd.Timestamp("2025-03-08 23:00")
    assert (fc["issued_at"] == pd.Timestamp("2025-03-02 00:00")).all()
    assert sorted(fc["lead_h"].unique()) == list(range(1, 169))
    assert not fc.duplicated(["zone", "valid_ts"]).any()


def test_the_same_seed_and_day_give_the_same_forecast_in_any_order():
    a = FleetSimulator(FleetConfig(**SMALL_FLEET))
    b = FleetSimulator(FleetConfig(**SMALL_FLEET))
    day = date(2025, 5, 10)
    first = a.weather_forecasts(day)
    for other in (date(2025, 5, 12), date(2024, 1, 3)):  # warm b's caches with other days first
        b.weather_forecasts(other)
        b.weather_observations(other)
    pd.testing.assert_frame_equal(first, b.weather_forecasts(day))
    other_seed = FleetSimulator(FleetConfig(**{**SMALL_FLEET, "seed": SMALL_FLEET["seed"] + 1}))
    assert not np.allclose(first["temp_c"], other_seed.weather_forecasts(day)["temp_c"])


def test_consecutive_forecasts_of_one_hour_differ():
    """Each issue draws its own errors: yesterday's forecast of an hour is not today's."""
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    a = sim.weather_forecasts(date(2025, 5, 10))
    b = sim.weather_forecasts(date(2025, 5, 11))
    both = a.merge(b, on=["zone", "valid_ts"], suffixes=("_a", "_b"))
    assert len(both) == len(sim.config.zones) * 144
    assert (both["temp_c_a"] != both["temp_c_b"]).mean() > 0.9


def test_temperature_error_grows_from_about_1_5_to_about_4_degrees(paired):
    rmse = paired.groupby("lead_day").apply(
        lambda g: float(np.sqrt(((g["temp_c_fc"] - g["temp_c_obs"]) ** 2).mean())),
        include_groups=False)
    assert 1.0 < rmse[1] < 1.8, rmse
    assert 3.2 < rmse[7] < 4.6, rmse
    assert (np.diff(rmse.to_numpy()) > 0).all(), rmse
    # unbiased: the mean error is small next to the spread
    assert abs((paired["temp_c_fc"] - paired["temp_c_obs"]).mean()) < 0.5


def test_gust_and_rain_errors_grow_with_lead(paired):
    by = paired.groupby("lead_day")
    gust = by.apply(lambda g: float((g["wind_gust_mph_fc"] - g["wind_gust_mph_obs"]).abs().mean()),
                    include_groups=False)
    rain = by.apply(lambda g: float(np.corrcoef(g["precip_mm_fc"], g["precip_mm_obs"])[0, 1]),
                    include_groups=False)
    assert gust[7] > 2 * gust[1], gust
    assert rain[1] > 0.4 and rain[7] < rain[1] - 0.2, rain


def test_storms_are_missed_more_often_far_out_and_some_forecast_storms_never_come(paired):
    by = paired.groupby("lead_day")
    stormy = paired["wind_gust_mph_obs"] >= 45
    caught = by.apply(lambda g: float((g["wind_gust_mph_fc"][g["wind_gust_mph_obs"] >= 45] >= 40)
                                      .mean()), include_groups=False)
    assert stormy.sum() > 200
    assert caught[1] > 0.7 and caught[7] < caught[1] - 0.15, caught
    phantom = (paired["wind_gust_mph_fc"] >= 45) & (paired["wind_gust_mph_obs"] < 30)
    assert phantom.sum() > 0
    false_share = by.apply(
        lambda g: float(((g["wind_gust_mph_fc"] >= 45) & (g["wind_gust_mph_obs"] < 30)).sum()
                        / max((g["wind_gust_mph_fc"] >= 45).sum(), 1)), include_groups=False)
    assert false_share[7] > false_share[1], false_share


def test_rain_probability_is_roughly_calibrated(paired):
    pop = paired["precip_probability_pct"] / 100
    wet = paired["precip_mm_obs"] >= 0.1
    for lo, hi in ((0.0, 0.1), (0.4, 0.9)):
        sel = (pop >= lo) & (pop < hi)
        assert abs(wet[sel].mean() - pop[sel].mean()) < 0.12, (lo, hi)


def test_error_model_by_lead_matches_its_documentation():
    lead = np.array([0.5, 1.0, 7.0])
    assert np.allclose(forecast_error.temp_sd(lead), [1.25, 1.5, 4.0])
    assert np.allclose(forecast_error.storm_detection(np.array([0.0, 1.0, 7.0])),
                       [1.0, 0.895, 0.45])
