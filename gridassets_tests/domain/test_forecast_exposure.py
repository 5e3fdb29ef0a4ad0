"""The week ahead from a weather forecast: features per forecast day, draws of past errors, and the
expected outages that come of them (with climatology where the forecast does not reach)."""

import numpy as np
import pandas as pd
import pytest

from gridassets.domain import forecast_exposure as fx
from gridassets.domain import risk

ISSUE = pd.Timestamp("2025-06-10")
STATE = ["length_km"]


def hourly(zones=("MTZ309", "MTZ310"), gust=20.0, storm_day=3, storm_gust=70.0) -> pd.DataFrame:
    stamps = ISSUE + pd.Timedelta(days=1) + pd.to_timedelta(np.arange(168), unit="h")
    rows = []
    for z in zones:
        g = np.full(168, gust)
        if z == "MTZ309":
            g[(storm_day - 1) * 24 + 14: (storm_day - 1) * 24 + 18] = storm_gust
        rows.append(pd.DataFrame({"zone": z, "valid_ts": stamps, "temp_c": 15.0,
                                  "wind_speed_mph": g / 1.5, "wind_gust_mph": g,
                                  "precip_mm": 0.5}))
    return pd.concat(rows, ignore_index=True)


def today() -> pd.DataFrame:
    return pd.DataFrame({"circuit_id": ["C1", "C2", "C3"], "zone": ["MTZ309", "MTZ310", "MTZ999"],
                         "length_km": [10.0, 20.0, 30.0]})


def rain() -> pd.DataFrame:
    return pd.DataFrame({"zone": ["MTZ309", "MTZ309"], "date": [ISSUE - pd.Timedelta(days=1), ISSUE],
                         "precip_mm": [3.0, 4.0]})


def errors(days: int, ratio: float = 1.0) -> pd.DataFrame:
    rows = []
    for k in range(days):
        issue = ISSUE - pd.Timedelta(days=7 + k)
        for z in ("MTZ309", "MTZ310"):
            for lead in range(1, 8):
                rows.append({"issue_date": issue, "zone": z, "lead_day": lead,
                             "gust_ratio": ratio * (1 + 0.1 * (k % 3)), "precip_diff_mm": -1.0,
                             "temp_diff_c": 0.5})
    return pd.DataFrame(rows)


def test_without_error_history_the_week_is_the_forecast_as_issued():
    week = fx.week_ahead(hourly(), errors(0), rain(), today(), STATE, ISSUE)
    assert week.draws == 1 and "as issued" in week.spread
    rows = week.rows.set_index(["circuit_id", "day"])
    assert set(week.rows["circuit_id"]) == {"C1", "C2"}  # C3's zone has no forecast
    d3 = ISSUE + pd.Timedelta(days=3)
    assert rows.loc[("C1", d3), "peak_gust_mph"] == 70.0
    assert rows.loc[("C1", d3), "hours_gust_over_55"] == 4
    assert rows.loc[("C2", d3), "peak_gust_mph"] == 20.0
    d1 = ISSUE + pd.Timedelta(days=1)
    assert rows.loc[("C1", d1), "precip_mm"] == pytest.approx(12.0)
    assert rows.loc[("C1", d1), "precip_72h_mm"] == pytest.approx(3 + 4 + 12)
    assert rows.loc[("C2", d1), "precip_72h_mm"] == pytest.approx(12)  # no rain observed there
    assert rows.loc[("C1", d1), "length_km"] == 10.0
    s = week.summary.set_index("circuit_id")
    assert s.loc["C1", "forecast_peak_gust_mph"] == 70.0
    assert s.loc["C1", "forecast_peak_gust_ts"] == ISSUE + pd.Timedelta(days=3, hours=14)


def test_with_error_history_the_draws_carry_past_errors_and_repeat_for_a_day():
    e = errors(30, ratio=1.2)
    week = fx.week_ahead(hourly(), e, rain(), today(), STATE, ISSUE)
    assert week.draws == fx.DRAWS and "20 draws" in week.spread
    d3 = ISSUE + pd.Timedelta(days=3)
    peaks = week.rows[(week.rows["circuit_id"] == "C1") & (week.rows["day"] == d3)]["peak_gust_mph"]
    assert set(np.round(peaks, 6)) <= {70 * 1.2, 70 * 1.32, 70 * 1.44}
    assert peaks.nunique() > 1
    again = fx.week_ahead(hourly(), e, rain(), today(), STATE, ISSUE)
    pd.testing.assert_frame_equal(week.rows, again.rows)
    # an error learned from a forecast whose week had not ended by the issue day is not used
    late = errors(30).assign(issue_date=lambda f: f["issue_date"] + pd.Timedelta(days=3))
    assert fx.week_ahead(hourly(), late, rain(), today(), STATE, ISSUE).draws == fx.DRAWS
    assert len(fx._usable_history(late, ["MTZ309", "MTZ310"], ISSUE)) == 27


def test_expected_outages_add_forecast_days_and_fill_the_rest_from_climatology():
    climate = pd.DataFrame({"circuit_id": ["C1"] * 4 + ["C2"] * 4})
    p_clim = np.array([0.01] * 4 + [0.02] * 4)
    days = [ISSUE + pd.Timedelta(days=k) for k in range(1, 4)]  # C1: three forecast days, two draws
    week = pd.DataFrame({"circuit_id": "C1", "day": np.repeat(days, 2), "draw": [0, 1] * 3})
    p_week = np.array([0.1, 0.3, 0.0, 0.0, 0.05, 0.05])
    out = risk.expected_outages(climate, p_clim, p_clim * 0.5, week, p_week, p_week * 0.5)
    out = out.set_index("circuit_id")
    assert out.loc["C1", "expected_outages_7d"] == pytest.approx(0.2 + 0 + 0.05 + 4 * 0.01)
    assert out.loc["C1", "expected_outages_7d_trimmed"] == pytest.approx(0.125 + 4 * 0.005)
    assert out.loc["C1", "weather_source"] == "forecast, then climatology"
    assert out.loc["C1", "p_outage_7d"] == pytest.approx(1 - 0.8 * 1 * 0.95 * 0.99**4)
    assert out.loc["C2", "expected_outages_7d"] == pytest.approx(7 * 0.02)
    assert out.loc["C2", "weather_source"] == "climatology (no forecast)"
    assert out.loc["C1", "expected_outages_7d_climatology"] == pytest.approx(0.07)
