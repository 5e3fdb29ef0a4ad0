"""The intraday refresh on the simulator's load: the stored day-ahead models updated to the last
closed hour, nothing after the cutoff used, fallbacks tagged, and scoring by horizon."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from gridassets.domain import forecasting as fc
from gridassets.domain import intraday
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets_tests.conftest import SMALL_FLEET

FIRST, LAST = date(2025, 4, 1), date(2025, 5, 22)
MODELS_OF = date(2025, 5, 19)  # the day-ahead models stored at the end of this day
DAY = MODELS_OF + timedelta(days=1)  # the cutoffs' day
CUTOFF = pd.Timestamp(DAY) + pd.Timedelta(hours=14)


@pytest.fixture(scope="module")
def fleet():
    """Load, temperature, circuits and the day-ahead models of MODELS_OF for a small fleet."""
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    circuits = sim.circuits()
    days = pd.date_range(FIRST, LAST).date
    load = pd.concat([sim.feeder_load(d) for d in days], ignore_index=True)
    weather = pd.concat([sim.weather_observations(d) for d in days], ignore_index=True)
    temperature = circuits[["circuit_id", "zone"]].merge(
        weather[["zone", "timestamp", "temp_c"]], on="zone")[["circuit_id", "timestamp", "temp_c"]]
    day_ahead, fitted = fc.forecast_day_ahead(load, MODELS_OF, temperature=temperature)
    assert {m.method for m in fitted.values()} == {fc.METHOD_SARIMAX}
    return {"load": load[["circuit_id", "timestamp", "load_mw"]], "temperature": temperature,
            "fitted": fitted, "day_ahead": day_ahead, "ids": sorted(circuits["circuit_id"])}


def _forecast(fleet, cutoff=CUTOFF, load=None, fitted=None, models_of=MODELS_OF):
    return intraday.forecast_intraday(
        fleet["load"] if load is None else load, cutoff,
        fleet["fitted"] if fitted is None else fitted, temperature=fleet["temperature"],
        models_of=models_of, circuits=fleet["ids"])


def test_every_circuit_gets_the_24_hours_after_the_cutoff_from_its_updated_model(fleet):
    frame = _forecast(fleet)
    assert list(frame.columns) == intraday.INTRADAY_COLUMNS
    assert len(frame) == len(fleet["ids"]) * 24
    for _, g in frame.groupby("circuit_id"):
        assert list(g["target_ts"]) == list(pd.date_range(CUTOFF + pd.Timedelta(hours=1),
                                                           periods=24, freq="h"))
        assert list(g["horizon_h"]) == list(range(1, 25))
    assert set(frame["method"]) == {intraday.METHOD_KALMAN}
    assert (frame["last_observed_ts"] == CUTOFF).all() and (frame["note"] == "").all()
    assert all(o.passed for o in intraday.audit(frame, fleet["ids"], CUTOFF).values())


def test_readings_after_the_cutoff_change_nothing(fleet):
    load = fleet["load"].copy()
    later = load["timestamp"] > CUTOFF
    load.loc[later, "load_mw"] *= 10
    pd.testing.assert_frame_equal(_forecast(fleet, load=load), _forecast(fleet))


def test_the_last_hours_before_the_cutoff_carry_into_the_next(fleet):
    """The point of the refresh: a circuit running 15 % above its usual load since the morning
    is forecast higher for the next hours; the day-ahead forecast, issued the night before, is not."""
    cid = fleet["ids"][0]
    load = fleet["load"].copy()
    recent = ((load["circuit_id"] == cid) & (load["timestamp"] > CUTOFF - pd.Timedelta(hours=6))
              & (load["timestamp"] <= CUTOFF))
    load.loc[recent, "load_mw"] *= 1.15
    base = _forecast(fleet).set_index(["circuit_id", "horizon_h"])["load_mw"]
    high = _forecast(fleet, load=load).set_index(["circuit_id", "horizon_h"])["load_mw"]
    assert high[(cid, 1)] > base[(cid, 1)] * 1.05
    assert high[(cid, 1)] - base[(cid, 1)] > high[(cid, 24)] - base[(cid, 24)]
    others = [c for c in fleet["ids"] if c != cid]
    pd.testing.assert_series_equal(high.loc[others], base.loc[others])


def test_the_first_hours_beat_the_previous_day_and_the_day_ahead_forecast(fleet):
    cutoffs = pd.date_range(pd.Timestamp(DAY), periods=8, freq="3h")
    frame = pd.concat([_forecast(fleet, cutoff=c) for c in cutoffs], ignore_index=True)
    table = intraday.accuracy_by_horizon(frame, fleet["day_ahead"], fleet["load"])
    first = table.set_index("horizon_h").loc[1]
    assert first["n"] == len(cutoffs) * len(fleet["ids"])
    assert first["mape_intraday"] < first["mape_prev_day"]
    assert first["mape_intraday"] < first["mape_day_ahead_in_force"]


def test_without_a_stored_model_a_circuit_gets_the_previous_day_and_says_why(fleet):
    cid = fleet["ids"][1]
    fitted = {k: v for k, v in fleet["fitted"].items() if k != cid}
    frame = _forecast(fleet, fitted=fitted)
    mine = frame[frame["circuit_id"] == cid]
    assert set(mine["method"]) == {intraday.METHOD_PREV_DAY}
    assert "no stored day-ahead model" in mine["note"].iloc[0]
    actual = fleet["load"].set_index(["circuit_id", "timestamp"])["load_mw"]
    day_before = [actual[(cid, t - pd.Timedelta(hours=24))] for t in mine["target_ts"]]
    np.testing.assert_allclose(mine["load_mw"], day_before)
    assert set(frame.loc[frame["circuit_id"] != cid, "method"]) == {intraday.METHOD_KALMAN}


def test_a_model_trained_past_the_cutoff_is_never_used(fleet):
    """Models are refitted on staggered days: a cutoff before a model's own training data ended
    (the day it was fitted, 23:00) gets the fallback for that circuit, with the reason."""
    cid, model = max(fleet["fitted"].items(), key=lambda kv: kv[1].train_end)
    early = pd.Timestamp(model.train_end) + pd.Timedelta(hours=12)
    frame = _forecast(fleet, cutoff=early, models_of=model.train_end - timedelta(days=1))
    mine = frame[frame["circuit_id"] == cid]
    assert set(mine["method"]) == {intraday.METHOD_PREV_DAY}
    assert "after the cutoff" in mine["note"].iloc[0]


@pytest.mark.parametrize("cutoff, models_of, message", [
    (CUTOFF + pd.Timedelta(minutes=30), MODELS_OF, "on the hour"),
    (CUTOFF, DAY, "not from a day before the cutoff"),
])
def test_a_cutoff_off_the_hour_or_models_of_its_own_day_are_refused(fleet, cutoff, models_of,
                                                                   message):
    with pytest.raises(ValueError, match=message):
        _forecast(fleet, cutoff=cutoff, models_of=models_of)


def test_the_audit_names_a_circuit_short_of_hours_and_rows_of_another_cutoff(fleet):
    frame = _forecast(fleet)
    cid = fleet["ids"][0]
    short = frame.drop(frame.index[(frame["circuit_id"] == cid) & (frame["horizon_h"] == 5)])
    outcome = intraday.audit(short, fleet["ids"], CUTOFF)["next_24_hours_complete"]
    assert not outcome.passed and f"{cid}: 23 rows" in outcome.summary
    stray = pd.concat([frame, frame.head(1).assign(cutoff_ts=CUTOFF - pd.Timedelta(hours=1))])
    outcome = intraday.audit(stray, fleet["ids"], CUTOFF)["next_24_hours_complete"]
    assert not outcome.passed and "1 row(s) with another cutoff" in str(outcome.details)
    broken = frame.copy()
    broken.loc[broken.index[0], "lower_mw"] = broken["load_mw"].iloc[0] + 1
    assert not intraday.audit(broken, fleet["ids"], CUTOFF)["interval_valid"].passed


def test_accuracy_by_horizon_by_hand():
    t0 = pd.Timestamp("2025-05-20 10:00")
    hours = [t0 + pd.Timedelta(hours=h) for h in (1, 2)]
    intra = pd.DataFrame({
        "circuit_id": ["C1", "C1"], "cutoff_ts": [t0, t0], "target_ts": hours, "horizon_h": [1, 2],
        "load_mw": [11.0, 9.0], "lower_mw": [10.0, 8.0], "upper_mw": [12.0, 9.5]})
    load = pd.DataFrame({"circuit_id": ["C1"] * 4,
                         "timestamp": [h - pd.Timedelta(hours=24) for h in hours] + hours,
                         "load_mw": [8.0, 12.0, 10.0, 10.0]})
    day_ahead = pd.DataFrame({"circuit_id": ["C1", "C1"], "target_ts": hours,
                              "load_mw": [10.5, 10.0]})
    table = intraday.accuracy_by_horizon(intra, day_ahead, load).set_index("horizon_h")
    assert table.loc[1, "mape_intraday"] == pytest.approx(10.0)  # |11-10|/10
    assert table.loc[2, "mape_intraday"] == pytest.approx(10.0)  # |9-10|/10
    assert table.loc[1, "mape_prev_day"] == pytest.approx(20.0)  # |8-10|/10
    assert table.loc[1, "mape_day_ahead_in_force"] == pytest.approx(5.0)
    assert table.loc[1, "coverage_intraday"] == 100.0 and table.loc[2, "coverage_intraday"] == 0.0
