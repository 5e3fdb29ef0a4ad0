"""Day-ahead forecasts: shape, leakage, fallbacks, determinism, refit/extend, guard, backtest."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

import gridassets.domain.backtest as bt
import gridassets.domain.forecasting as fc
from gridassets.domain.backtest import backtest, plot_forecast
from gridassets.domain.forecasting import (
    FORECAST_COLUMNS,
    INTERVAL_LEVEL,
    FittedModel,
    ForecastConfig,
    forecast_day_ahead,
)

START = pd.Timestamp("2025-01-01")
DAY = date(2025, 2, 24)  # 55 days of history before the cutoff
CFG = ForecastConfig(history_days=56, calibration_days=21, stagger_refits=False)


def _load(circuits=("A", "B"), days=70, seed=0, level=10.0) -> pd.DataFrame:
    """Hourly load with a daily and weekly shape, a slow drift and noise."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(START, periods=days * 24, freq="h")
    hour, dow = ts.hour.to_numpy(), ts.dayofweek.to_numpy()
    frames = []
    for i, cid in enumerate(circuits):
        shape = 1 + 0.25 * np.sin(2 * np.pi * (hour - 14) / 24) - 0.12 * (dow >= 5)
        drift = 1 + 0.1 * np.sin(np.arange(len(ts)) / (24 * 20) + i)
        y = level * (1 + i) * shape * drift * (1 + 0.02 * rng.standard_normal(len(ts)))
        frames.append(pd.DataFrame({"circuit_id": cid, "timestamp": ts, "load_mw": y}))
    return pd.concat(frames, ignore_index=True)


def _targets(day: date) -> list[pd.Timestamp]:
    return list(pd.date_range(pd.Timestamp(day) + pd.Timedelta(days=1), periods=24, freq="h"))


def _check_shape(out: pd.DataFrame, circuits, day: date) -> None:
    assert list(out.columns) == FORECAST_COLUMNS
    for cid in circuits:
        rows = out[out["circuit_id"] == cid]
        assert list(rows["target_ts"]) == _targets(day)
        assert list(rows["horizon_h"]) == list(range(1, 25))
    assert (out["lower_mw"] <= out["load_mw"]).all()
    assert (out["load_mw"] <= out["upper_mw"]).all()
    assert np.isfinite(out[["load_mw", "lower_mw", "upper_mw"]].to_numpy()).all()
    assert set(out["method"]) <= set(fc.METHODS)


def test_every_circuit_gets_every_hour_of_the_next_day():
    load = _load(("A", "B"))
    short = _load(("NEW",), days=60)
    short = short[short["timestamp"] >= pd.Timestamp(DAY) - pd.Timedelta(days=4)]
    empty = pd.DataFrame({"circuit_id": ["DEAD"] * 3, "timestamp": [START] * 3,
                          "load_mw": [np.nan] * 3})
    out, models = forecast_day_ahead(pd.concat([load, short, empty]), DAY, config=CFG,
                                     circuits=["A", "B", "NEW", "DEAD", "GHOST"])
    _check_shape(out, ["A", "B", "NEW", "DEAD", "GHOST"], DAY)
    assert (out["interval_level"] == INTERVAL_LEVEL).all()
    by = out.groupby("circuit_id").first()
    assert by.loc["A", "method"] == by.loc["B", "method"] == "sarimax"
    assert not by.loc["A", "substituted"]
    assert set(models) == {"A", "B"}
    assert json.loads(by.loc["A", "params"])["coef"]["lag24h"] > 0
    # Four days of history: a profile fallback, tagged and explained.
    assert by.loc["NEW", "method"] in ("profile_prev_day", "profile_prev_week")
    assert by.loc["NEW", "substituted"] and "too little history" in by.loc["NEW", "note"]
    for cid in ("DEAD", "GHOST"):
        assert by.loc[cid, "method"] == "no_data" and by.loc[cid, "substituted"]
        assert "no valid load" in by.loc[cid, "note"]


def test_no_rows_at_all_still_gives_a_typed_frame():
    empty = _load(("A",), days=1).iloc[0:0]
    out, models = forecast_day_ahead(empty, DAY, config=CFG)
    assert list(out.columns) == FORECAST_COLUMNS and out.empty and models == {}
    assert out["load_mw"].dtype == float and out["circuit_id"].dtype == object
    out, _ = forecast_day_ahead(empty, DAY, config=CFG, circuits=["X"])
    assert len(out) == 24 and (out["method"] == "no_data").all()


def test_data_after_the_cutoff_cannot_change_the_forecast():
    load = _load(days=58)
    cutoff = pd.Timestamp(DAY) + pd.Timedelta(hours=23)
    past = load[load["timestamp"] <= cutoff]
    out_past, models_past = forecast_day_ahead(past, DAY, config=CFG)
    future = load[load["timestamp"] > cutoff].copy()
    future["load_mw"] = future["load_mw"] * 100 - 5_000  # wildly different "actuals"
    junk = pd.DataFrame({
        "circuit_id": ["A", "A", "B"],
        "timestamp": [cutoff + pd.Timedelta(minutes=30), cutoff + pd.Timedelta(days=30),
                      cutoff + pd.Timedelta(hours=1)],
        "load_mw": [1e6, -1e6, np.nan],
    })
    out_all, models_all = forecast_day_ahead(pd.concat([past, future, junk]), DAY, config=CFG)
    pd.testing.assert_frame_equal(out_past, out_all)
    assert {k: m.to_json() for k, m in models_past.items()} == {
        k: m.to_json() for k, m in models_all.items()}


def test_future_temperature_cannot_change_the_forecast():
    load = _load(days=58)
    temp = load[["circuit_id", "timestamp"]].copy()
    temp["temp_c"] = 5 + 10 * np.sin(np.arange(len(temp)) / 300)
    cutoff = pd.Timestamp(DAY) + pd.Timedelta(hours=23)
    out1, models = forecast_day_ahead(load, DAY, temperature=temp, config=CFG)
    hot = temp.copy()
    hot.loc[hot["timestamp"] > cutoff, "temp_c"] = 45.0
    out2, _ = forecast_day_ahead(load, DAY, temperature=hot, config=CFG)
    pd.testing.assert_frame_equal(out1, out2)
    assert models["A"].spec["temperature"]
    assert "temperature" in out1["model"].iloc[0]


def test_flat_lining_meter_falls_back_to_a_profile():
    load = _load(("A",))
    stuck = (load["timestamp"] > pd.Timestamp(DAY) + pd.Timedelta(hours=12))
    load.loc[stuck, "load_mw"] = 7.25
    out, models = forecast_day_ahead(load, DAY, config=CFG)
    _check_shape(out, ["A"], DAY)
    assert (out["method"] == "profile_prev_week").all()  # yesterday is partly stuck
    assert out["substituted"].all()
    assert "flat-lining meter" in out["note"].iloc[0]
    assert "A" not in models
    # The profile is last week's load for the same hours.
    week_ago = load.set_index("timestamp")["load_mw"].reindex(
        [t - pd.Timedelta(days=7) for t in _targets(DAY)])
    np.testing.assert_allclose(out["load_mw"], week_ago.to_numpy())


def test_failed_fit_falls_back_and_says_so(monkeypatch):
    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("LU decomposition error")

    monkeypatch.setattr(fc._statsmodels(), "fit", broken)
    out, models = forecast_day_ahead(_load(("A",)), DAY, config=CFG)
    _check_shape(out, ["A"], DAY)
    assert out["method"].iloc[0] in ("profile_prev_day", "profile_prev_week")
    assert out["substituted"].all()
    assert "ARMA fit failed" in out["note"].iloc[0]
    assert models == {}


def test_implausible_forecast_is_replaced(monkeypatch):
    original = fc._fit

    def exploding(*args, **kwargs):
        params = original(*args, **kwargs)
        params[0] += 5.0  # the constant on log load: e^5 times the load
        return params

    monkeypatch.setattr(fc, "_fit", exploding)
    out, _ = forecast_day_ahead(_load(("A",)), DAY, config=CFG)
    assert out["substituted"].all()
    assert "plausible range" in out["note"].iloc[0]


def test_gaps_and_spikes_are_cleaned():
    clean = _load(("A",))
    dirty = clean.copy()
    ts = dirty["timestamp"]
    spike = ts == pd.Timestamp(DAY) - pd.Timedelta(days=2, hours=-5)
    dirty.loc[spike, "load_mw"] *= 20
    dirty.loc[ts == pd.Timestamp(DAY) - pd.Timedelta(days=9), "load_mw"] = 0.0  # dropout
    gap = (ts >= pd.Timestamp(DAY) - pd.Timedelta(days=20)) & (
        ts < pd.Timestamp(DAY) - pd.Timedelta(days=20, hours=-30))
    short_gap = (ts >= pd.Timestamp(DAY) - pd.Timedelta(hours=10)) & (
        ts < pd.Timestamp(DAY) - pd.Timedelta(hours=7))
    dirty = dirty[~gap & ~short_gap]
    out_clean, _ = forecast_day_ahead(clean, DAY, config=CFG)
    out_dirty, _ = forecast_day_ahead(dirty, DAY, config=CFG)
    assert (out_dirty["method"] == "sarimax").all()
    rel = np.abs(out_dirty["load_mw"].to_numpy() / out_clean["load_mw"].to_numpy() - 1)
    assert rel.max() < 0.03


@pytest.mark.parametrize("rows", [1, 2, 14, 15])
def test_fast_nan_median_equals_numpy(rows):
    rng = np.random.default_rng(rows)
    a = rng.normal(size=(rows, 500))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[:, :7] = np.nan  # cells with no valid value at all
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(a, axis=0)
    got = fc._nan_median_first_axis(a)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, equal_nan=True)


def test_reverse_flow_circuit_uses_the_linear_scale():
    load = _load(("PV",))
    hour = load["timestamp"].dt.hour
    load["load_mw"] = load["load_mw"] - 12 * np.clip(np.sin(np.pi * (hour - 6) / 12), 0, None)
    assert (load["load_mw"] < 0).any()
    out, models = forecast_day_ahead(load, DAY, config=CFG)
    _check_shape(out, ["PV"], DAY)
    assert models["PV"].spec["transform"] == "linear"
    assert (out["load_mw"] < 0).any()


def test_same_inputs_give_identical_output():
    load = _load()
    out1, m1 = forecast_day_ahead(load, DAY, config=CFG)
    out2, m2 = forecast_day_ahead(load.sample(frac=1.0, random_state=3), DAY, config=CFG)
    pd.testing.assert_frame_equal(out1, out2)
    assert {k: v.to_json() for k, v in m1.items()} == {k: v.to_json() for k, v in m2.items()}


def test_refit_then_extend_then_scheduled_refit():
    load = _load(days=75)
    out0, models0 = forecast_day_ahead(load, DAY, config=CFG)
    assert all(m.fitted_on == DAY for m in models0.values())
    assert "first fit" in out0["note"].iloc[0]
    # Next day: parameters reused (through JSON, as the asset stores them), only filtered.
    stored = {k: FittedModel.from_json(m.to_json()) for k, m in models0.items()}
    day1 = DAY + timedelta(days=1)
    out1, models1 = forecast_day_ahead(load, day1, fitted=stored, config=CFG)
    out1b, _ = forecast_day_ahead(load, day1, fitted=models0, config=CFG)
    pd.testing.assert_frame_equal(out1, out1b)
    assert (out1["fitted_on"] == DAY).all() and (out1["method"] == "sarimax").all()
    assert models1["A"].params == models0["A"].params
    assert not (out1["load_mw"].to_numpy() == out0["load_mw"].to_numpy()).all()
    # The caller's models are not modified.
    assert stored["A"].residual_quantiles == models0["A"].residual_quantiles
    # A week later the refit is due; the guard decides and records why.
    day7 = DAY + timedelta(days=CFG.refit_every_days)
    out7, models7 = forecast_day_ahead(load, day7, fitted=models1, config=CFG)
    assert models7["A"].checked_on == day7
    guard = models7["A"].guard
    assert guard["decision"] in ("replaced", "kept")
    assert guard["holdout_days"] == CFG.holdout_days
    assert "refit" in out7["note"].iloc[0]


def test_staggered_refits_spread_a_fleet_over_the_week():
    circuits = [f"C{i}" for i in range(14)]
    load = _load(tuple(circuits), days=60)
    cfg = replace(CFG, stagger_refits=True)
    _, models = forecast_day_ahead(load, DAY, config=cfg)
    _, after = forecast_day_ahead(load, DAY + timedelta(days=1), fitted=models, config=cfg)
    refitted = sum(m.checked_on == DAY + timedelta(days=1) for m in after.values())
    assert 0 < refitted < len(circuits)


def test_guard_keeps_the_serving_model_when_the_candidate_is_worse(monkeypatch):
    load = _load(("A",), days=75)
    _, models = forecast_day_ahead(load, DAY, config=CFG)
    original = fc._fit

    def poor(*args, **kwargs):
        params = original(*args, **kwargs)
        params[1] += 0.3  # a wrong daily shape: worse out of sample, still plausible
        return params

    monkeypatch.setattr(fc, "_fit", poor)
    day7 = DAY + timedelta(days=CFG.refit_every_days)
    out, after = forecast_day_ahead(load, day7, fitted=models, config=CFG)
    assert after["A"].params == models["A"].params
    assert after["A"].guard["decision"] == "kept"
    assert after["A"].guard["candidate_wape"] > after["A"].guard["serving_wape"]
    assert after["A"].checked_on == day7
    assert "rejected" in out["note"].iloc[0]
    assert (out["fitted_on"] == DAY).all()


def test_a_model_fitted_later_is_never_used_for_an_earlier_day():
    load = _load(("A",), days=75)
    _, models = forecast_day_ahead(load, DAY + timedelta(days=10), config=CFG)
    out, after = forecast_day_ahead(load, DAY, fitted=models, config=CFG)
    assert after["A"].fitted_on == DAY
    assert "later day" in out["note"].iloc[0]


def test_fitted_model_json_round_trip_and_rejects_junk():
    _, models = forecast_day_ahead(_load(("A",)), DAY, config=CFG)
    m = models["A"]
    again = FittedModel.from_json(m.to_json())
    assert again == m
    with pytest.raises(ValueError):
        FittedModel.from_json('{"circuit_id": "A"}')
    with pytest.raises(ValueError):
        FittedModel.from_json("not json")


@pytest.mark.parametrize("column", ["circuit_id", "timestamp", "load_mw"])
def test_missing_column_is_named(column):
    with pytest.raises(ValueError, match=column):
        forecast_day_ahead(_load(("A",), days=20).drop(columns=[column]), DAY, config=CFG)


# ------------------------------------------------------------------------------------------
# Backtest


def test_backtest_metrics_on_a_hand_checkable_case(monkeypatch):
    day = date(2025, 1, 10)
    ts = pd.date_range("2025-01-01", "2025-01-11 23:00", freq="h")
    values = np.full(len(ts), 100.0)
    values[(ts >= "2025-01-10") & (ts < "2025-01-11")] = 80.0  # previous day
    values[(ts >= "2025-01-04") & (ts < "2025-01-05")] = 125.0  # same weekday a week earlier
    load = pd.DataFrame({"circuit_id": "X", "timestamp": ts, "load_mw": values})
    targets = _targets(day)

    def stub(frame, issue_day, **kwargs):
        rows = pd.DataFrame({
            "circuit_id": "X", "issue_date": issue_day, "target_ts": targets,
            "horizon_h": range(1, 25), "load_mw": 110.0,
            "lower_mw": [105.0] * 12 + [95.0] * 12, "upper_mw": 120.0,
            "interval_level": 0.9, "method": "sarimax", "inputs": "load", "model": "stub",
            "params": "{}",
            "fitted_on": issue_day, "substituted": False, "note": "",
            "temperature_source": "none"})
        return rows[FORECAST_COLUMNS], {}

    monkeypatch.setattr(bt, "forecast_day_ahead", stub)
    res = backtest(load, [day])
    o = res.overall
    assert o["hours"] == 24 and o["origins"] == 1
    assert o["mape"] == pytest.approx(10.0)
    assert o["rmse"] == pytest.approx(10.0)
    assert o["wape"] == pytest.approx(10.0)
    assert o["coverage"] == pytest.approx(50.0)
    assert o["mape_prev_day"] == pytest.approx(20.0)
    assert o["rmse_prev_day"] == pytest.approx(20.0)
    assert o["mape_prev_week"] == pytest.approx(25.0)
    assert o["skill_prev_day"] == pytest.approx(0.5)
    assert o["skill_prev_week"] == pytest.approx(0.6)
    row = res.per_circuit.iloc[0]
    assert row["circuit_id"] == "X" and row["mape"] == pytest.approx(10.0)
    meta = res.metadata()
    json.dumps(meta)  # ready for asset metadata
    assert meta["overall"]["coverage"] == pytest.approx(50.0)


def test_backtest_runs_the_real_forecast_and_plots():
    load = _load(("A", "B"), days=64)
    origins = [DAY + timedelta(days=i) for i in range(0, 6, 2)]
    res = backtest(load, origins, config=CFG)
    assert len(res.forecasts) == 3 * 2 * 24
    assert res.per_circuit["circuit_id"].tolist() == ["A", "B"]
    for key in ("mape", "rmse", "coverage", "mape_prev_day", "mape_prev_week"):
        assert np.isfinite(res.overall[key])
    assert 0 < res.overall["mape"] < 10  # noise is 2 %: a sane forecast is within a few %
    png = plot_forecast(res.forecasts, load, "A")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plot_forecast(res.forecasts, load, "nope")


# ------------------------------------------------------------------------------------------
# Inputs said per row, and the audits the assets run before they store anything


def test_each_row_says_whether_temperature_was_used():
    load = _load(days=58)
    temp = load[["circuit_id", "timestamp"]].copy()
    temp["temp_c"] = 5 + 10 * np.sin(np.arange(len(temp)) / 300)
    with_temp, _ = forecast_day_ahead(load, DAY, temperature=temp, config=CFG)
    assert set(with_temp["inputs"]) == {fc.INPUTS_LOAD_TEMPERATURE}
    alone, models = forecast_day_ahead(load, DAY, config=CFG)
    assert set(alone["inputs"]) == {fc.INPUTS_LOAD}
    assert (alone["method"] == fc.METHOD_SARIMAX).all()
    assert alone["note"].str.contains("no temperature observations").all()
    assert not models["A"].spec["temperature"]
    short, _ = forecast_day_ahead(_load(("A",), days=5), date(2025, 1, 4), config=CFG)
    assert set(short["inputs"]) == {fc.INPUTS_LOAD}  # a profile fallback: load alone


def test_audit_forecasts_passes_good_rows_and_names_what_is_wrong():
    out, models = forecast_day_ahead(_load(("A", "B")), DAY, config=CFG)
    outcomes = fc.audit_forecasts(out, ["A", "B"], [DAY])
    assert set(outcomes) == set(fc.FORECAST_CHECKS) and all(o.passed for o in outcomes.values())
    missing = fc.audit_forecasts(out[out["horizon_h"] != 5], ["A", "B", "C"], [DAY])
    assert not missing["day_ahead_complete"].passed
    assert "C issued" in str(missing["day_ahead_complete"].details["examples"])
    bad = out.copy()
    bad.loc[bad.index[0], "upper_mw"] = bad["load_mw"].iloc[0] - 1
    bad.loc[bad.index[1], "load_mw"] = np.nan
    interval = fc.audit_forecasts(bad, ["A", "B"], [DAY])["interval_valid"]
    assert not interval.passed and interval.details["bad_rows"] == 2


def test_audit_models_wants_one_readable_model_per_model_forecast():
    out, models = forecast_day_ahead(_load(("A", "B")), DAY, config=CFG)
    state = pd.DataFrame([{"circuit_id": c, "issue_date": DAY, "fitted_on": m.fitted_on,
                           "model_json": m.to_json()} for c, m in sorted(models.items())])
    assert fc.audit_models(state, out)["model_per_circuit"].passed
    outcome = fc.audit_models(state.iloc[:1], out)["model_per_circuit"]
    assert not outcome.passed and "B issued" in outcome.summary
    junk = state.assign(model_json=["{}", state["model_json"].iloc[1]])
    assert "unreadable" in fc.audit_models(junk, out)["model_per_circuit"].summary


def test_audit_backtest_wants_a_scored_overall_row_per_day():
    frame = pd.DataFrame({"date": [pd.Timestamp(DAY)] * 2, "circuit_id": ["A", "ALL"],
                          "hours": [24, 24], "mape": [3.0, 3.0], "rmse": [0.2, 0.2],
                          "coverage": [90.0, 90.0]})
    assert bt.audit_backtest(frame, [DAY])["scored_days"].passed
    later = DAY + timedelta(days=1)
    assert not bt.audit_backtest(frame, [DAY, later])["scored_days"].passed
    # Scored hours whose metrics are not numbers are a broken backtest ...
    broken = frame.assign(mape=np.nan)
    assert "mape not finite" in bt.audit_backtest(broken, [DAY])["scored_days"].summary
    # ... but a day whose forecasts were all no_data fallbacks (too little history) has nothing
    # to score: its row says so with zero hours, and that is the truth, not a failure.
    valueless = frame.assign(hours=0, mape=np.nan, rmse=np.nan, coverage=np.nan)
    outcome = bt.audit_backtest(valueless, [DAY])["scored_days"]
    assert outcome.passed and "no value" in outcome.summary
    assert bt.audit_backtest(frame.iloc[:0], [])["scored_days"].passed


def _temperature_driven(days=58, seed=3):
    """Load that follows the same hour's temperature, which moves in day-long swings."""
    rng = np.random.default_rng(seed)
    load = _load(("A",), days=days)
    n = len(load)
    daily = np.repeat(rng.normal(0, 8, days), 24)[:n]
    temp = 5 + np.convolve(daily, np.ones(12) / 12, mode="same")
    load["load_mw"] = load["load_mw"] * (1 + 0.03 * np.maximum(15 - temp, 0))
    observed = load[["circuit_id", "timestamp"]].assign(temp_c=temp)
    forecast = observed.assign(temp_c=temp + rng.normal(0, 1.0, n))
    return load, observed, forecast


def test_forecast_temperature_is_used_for_each_hour_and_said():
    load, observed, forecast = _temperature_driven()
    cutoff = pd.Timestamp(DAY) + pd.Timedelta(hours=23)
    with_fc, _ = forecast_day_ahead(load, DAY, temperature=observed, config=CFG,
                                    forecast_temperature=forecast)
    lagged, _ = forecast_day_ahead(load, DAY, temperature=observed, config=CFG)
    assert set(with_fc["temperature_source"]) == {fc.TEMPERATURE_FORECAST}
    assert set(lagged["temperature_source"]) == {fc.TEMPERATURE_LAGGED}
    alone, _ = forecast_day_ahead(load, DAY, config=CFG)
    assert set(alone["temperature_source"]) == {fc.TEMPERATURE_NONE}
    # over two weeks of origins, the same hour's forecast beats yesterday's observation
    load2, observed2, forecast2 = _temperature_driven(days=75)
    origins = [DAY + timedelta(days=k) for k in range(12)]
    lag_mape = backtest(load2, origins, temperature=observed2, config=CFG).overall["mape"]
    fc_mape = backtest(load2, origins, temperature=observed2, config=CFG,
                       forecast_temperature=forecast2).overall["mape"]
    assert fc_mape < 0.7 * lag_mape, (fc_mape, lag_mape)
    # a forecast of the day after the target day, or observations after the cutoff, change nothing
    later = forecast.copy()
    later.loc[later["timestamp"] > cutoff + pd.Timedelta(hours=24), "temp_c"] = 40.0
    again, _ = forecast_day_ahead(load, DAY, temperature=observed, config=CFG,
                                  forecast_temperature=later)
    pd.testing.assert_frame_equal(with_fc, again)
    # without the target day's forecast the target hours fall back to the lagged observation
    partial = forecast[forecast["timestamp"] <= cutoff]
    fallback, _ = forecast_day_ahead(load, DAY, temperature=observed, config=CFG,
                                     forecast_temperature=partial)
    assert set(fallback["temperature_source"]) == {fc.TEMPERATURE_LAGGED}


def test_circuits_shared_among_processes_give_the_same_forecasts_and_models(monkeypatch):
    """Forked processes, each with chunks of circuits: the same rows in the same order, the same
    models, on a first day (every circuit fits) and on the next (the models are reused)."""
    monkeypatch.setattr(fc, "PARALLEL_MIN_CIRCUITS", 4)
    monkeypatch.setattr(fc, "PARALLEL_CHUNK", 2)
    circuits = tuple(f"C{i}" for i in range(7))
    load = _load(circuits)
    ids = [*circuits, "GHOST"]  # a circuit without load falls back in its process too
    one, models = forecast_day_ahead(load, DAY, config=CFG, circuits=ids)
    two, models2 = forecast_day_ahead(load, DAY, config=CFG, circuits=ids, processes=2)
    pd.testing.assert_frame_equal(one, two)
    assert {k: m.to_json() for k, m in models.items()} == \
        {k: m.to_json() for k, m in models2.items()}
    nxt = DAY + timedelta(days=1)
    one, _ = forecast_day_ahead(load, nxt, config=CFG, circuits=ids, fitted=models)
    two, _ = forecast_day_ahead(load, nxt, config=CFG, circuits=ids, fitted=models2, processes=2)
    pd.testing.assert_frame_equal(one, two)
    assert set(one["circuit_id"]) == set(ids)
