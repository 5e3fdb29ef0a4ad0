"""The intraday refresh: the next 24 hours of each circuit's load, re-forecast every hour.

Partition H (an hour, UTC) is issued once hour H has closed: it uses load (and temperature) observed
up to the reading of hour H and covers hours H+1..H+24. Rows after the cutoff are dropped before
anything else, as in the day-ahead forecast.

It refits nothing. Each circuit's day-ahead model (`gridassets.domain.forecasting`), as the daily
graph stored it at the end of the latest day before H's day, is reused with its parameters fixed:
the regression part is rebuilt for the hours around H (calendar terms, the load 24 h, 1 and 2 weeks
earlier, temperature terms) and the Kalman filter runs over the last `FILTER_DAYS` days up to H.
Its filtered state carries the deviation of the last hours into the next ones, which is what the
day-ahead forecast, issued at 23:00, cannot know by mid-afternoon. No previous-day blend is applied
(the day-ahead blend weights were learned for 23:00 origins).

Intervals are split-conformal, from the same filter's own 24-hour forecasts issued at every hour of
the last `CALIBRATION_DAYS` days whose targets are already observed, so
each horizon gets a band from its own errors (and its neighbours', `HORIZON_POOL`).

A circuit without a usable stored model (none yet, a fallback method, parameters that do not run on
the data, a forecast outside the plausible range) gets the previous-day profile (the load of each
target hour 24 h earlier, which is known at the cutoff), tagged `method = profile_prev_day` with the
reason in `note`; a circuit with no valid reading in the window gets a zero placeholder
(`no_data`). A model trained on data after the cutoff is never used.

Cost: one filter of ~360 steps and a few matrix products per circuit, about 10 ms
(`python -m gridassets evaluate` reports it next to the accuracy by horizon).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from gridassets.domain import forecasting as fc

WINDOW_DAYS = 35  # load read before the cutoff: two weeks of lags, the filter, cleaning margins
CALIBRATION_DAYS = 7  # hourly origins behind the intervals
FILTER_DAYS = CALIBRATION_DAYS + 8  # the filter runs this far back (8 days of burn-in)
HORIZON_H = fc.HORIZON_H
HORIZON_POOL = 1  # 168 origins give each horizon enough errors; pooling h-1..h+1 steadies the tails

METHOD_KALMAN = "sarimax_kalman_update"
METHOD_PREV_DAY = fc.METHOD_PREV_DAY
METHOD_NO_DATA = fc.METHOD_NO_DATA

INTRADAY_COLUMNS = [
    "circuit_id", "cutoff_ts", "target_ts", "horizon_h", "load_mw", "lower_mw", "upper_mw",
    "interval_level", "method", "models_of", "fitted_on", "last_observed_ts", "note",
]

_HOUR = pd.Timedelta(hours=1)


def cutoff_of(partition_start: datetime | pd.Timestamp) -> pd.Timestamp:
    """The cutoff of an hourly partition: the (naive UTC) start of its hour, whose reading is the
    last one the forecast may use."""
    ts = pd.Timestamp(partition_start)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if ts != ts.floor("h"):
        raise ValueError(f"an intraday cutoff is on the hour, got {ts}")
    return ts


def forecast_intraday(
    load: pd.DataFrame,
    cutoff: pd.Timestamp,
    fitted: Mapping[str, fc.FittedModel],
    *,
    temperature: pd.DataFrame | None = None,
    forecast_temperature: pd.DataFrame | None = None,
    models_of=None,
    circuits: Iterable[str] | None = None,
    config: fc.ForecastConfig = fc.ForecastConfig(),
) -> pd.DataFrame:
    """Forecast hours cutoff+1 .. cutoff+24 for every circuit, from data up to the cutoff.

    `load`: circuit_id, timestamp, load_mw (rows after the cutoff are ignored); `fitted`: the
    day-ahead models (`load_forecast_models`) of `models_of`, a day before the cutoff's day;
    `temperature`: circuit_id, timestamp, temp_c observations; `forecast_temperature`: circuit_id,
    timestamp, temp_c, the latest weather forecast issued before each hour (history and targets),
    where there is one. `circuits` must each get rows even without load (default: those in `load`).

    Returns INTRADAY_COLUMNS, one row per circuit and target hour, sorted by circuit and time.
    Raises ValueError for a cutoff not on the hour or a model trained past the cutoff's day.
    """
    cutoff = cutoff_of(cutoff)
    cfg = dataclasses.replace(config, calibration_days=CALIBRATION_DAYS)
    if models_of is not None and pd.Timestamp(models_of) >= cutoff.normalize():
        raise ValueError(f"models of {models_of} are not from a day before the cutoff {cutoff}")
    start = cutoff - pd.Timedelta(days=WINDOW_DAYS) + _HOUR
    end = cutoff + pd.Timedelta(hours=HORIZON_H)
    load_m = fc._hourly_matrix(load, "load_mw", start, cutoff, "load")
    temp_m = fore_m = None
    if temperature is not None:
        temp_m = fc._hourly_matrix(temperature, "temp_c", start, cutoff, "temperature")
    if forecast_temperature is not None and len(forecast_temperature):
        fore_m = fc._hourly_matrix(forecast_temperature, "temp_c", start, end,
                                   "forecast temperature")
    grid = pd.date_range(start, end, freq="h")
    calendar = fc._Calendar(grid)
    ids = sorted(set(load_m.ids) | set(map(str, () if circuits is None else circuits)))
    fc._statsmodels()  # imported outside the warnings block (see forecast_day_ahead)
    blocks = []
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cid in ids:
            y = load_m.get(cid)
            if y is None:
                y = np.full(len(grid) - HORIZON_H, np.nan)
            t = temp_m.get(cid) if temp_m is not None else None
            f = fore_m.get(cid) if fore_m is not None else None
            blocks.append(_circuit(cid, y, t, f, calendar, cutoff, fitted.get(cid), cfg,
                                   models_of))
    columns = {c: [v for b in blocks for v in b[c]] for c in INTRADAY_COLUMNS}
    dtypes = {"cutoff_ts": "datetime64[ns]", "target_ts": "datetime64[ns]", "horizon_h": "int64",
              "load_mw": "float64", "lower_mw": "float64", "upper_mw": "float64",
              "interval_level": "float64", "last_observed_ts": "datetime64[ns]"}
    return pd.DataFrame({c: pd.Series(columns[c], dtype=dtypes.get(c, object))
                         for c in INTRADAY_COLUMNS})


def _circuit(cid, y, temp, forecast, cal, cutoff, model, cfg, models_of) -> dict:
    n_hist = len(y)
    c = fc._clean(y, cfg)
    valid = np.isfinite(c.valid)
    last_obs = cal.grid[int(np.flatnonzero(valid)[-1])] if valid.any() else pd.NaT
    problem = _unusable(model, cutoff, c)
    if problem is None:
        try:
            point, lower, upper = _kalman(c, temp, forecast, cal, model, cfg)
        except fc._ModelError as exc:
            problem = f"stored model unusable: {exc}"
        else:
            note = "" if last_obs == cutoff else f"no valid reading since {last_obs}"
            return _rows(cid, cal, n_hist, cutoff, point, lower, upper, cfg, METHOD_KALMAN,
                         models_of, model.fitted_on, last_obs, note)
    if not valid.any():
        zero = np.zeros(HORIZON_H)
        return _rows(cid, cal, n_hist, cutoff, zero, zero, zero, cfg, METHOD_NO_DATA, models_of,
                     None, last_obs, f"{problem}; no valid reading in the last {WINDOW_DAYS} "
                     "days: zero placeholder, not a forecast")
    point, lower, upper, how = _previous_day(c, n_hist, cfg)
    return _rows(cid, cal, n_hist, cutoff, point, lower, upper, cfg, METHOD_PREV_DAY, models_of,
                 None, last_obs, "; ".join(filter(None, (f"{problem}; the load 24 h earlier",
                                                          how))))


def _unusable(model: fc.FittedModel | None, cutoff: pd.Timestamp, c) -> str | None:
    if model is None:
        return "no stored day-ahead model for this circuit"
    if model.method != fc.METHOD_SARIMAX:
        return f"the stored model is a fallback ({model.method})"
    if pd.Timestamp(datetime.combine(model.train_end, time(23))) > cutoff:
        return f"the stored model was trained on data to {model.train_end}, after the cutoff"
    if c.flat_now:
        return f"flat-lining meter: {c.flat_now} h of identical readings up to the cutoff"
    return None


def _kalman(c, temp, forecast, cal, model: fc.FittedModel, cfg):
    """Filter with the stored parameters up to the cutoff; forecast and conformal band."""
    n_hist = len(c.raw)
    spec = model.spec
    valid = np.isfinite(c.valid)
    first_valid = int(np.argmax(valid))
    temp_terms = None
    if spec["temperature"]:
        temp_terms = fc._temperature_terms(temp, len(cal.grid), cfg, first_valid, forecast)
        if temp_terms is None:
            raise fc._ModelError("the model uses temperature but the observations are too sparse")
    win = fc._Window(n_hist, first_valid, n_hist)
    prep = fc._prepare(c, spec, cal, temp_terms, win, cfg)
    last_origin = n_hist - 1 - HORIZON_H  # the last origin whose 24 targets are all observed
    origins = np.arange(last_origin - 24 * CALIBRATION_DAYS + 1, last_origin + 1)
    origins = origins[origins >= prep.filter_start + 24]
    roll = fc._rolling(prep, model.params, n_hist, origins)
    idx = roll.origins[:, None] + np.arange(1, HORIZON_H + 1)[None, :]
    actual = prep.zvalid[idx] if len(roll.origins) else np.empty((0, HORIZON_H))
    lo, hi, n = fc._conformal(actual - roll.pred, cfg.interval_level, HORIZON_POOL)
    if n < 20 or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        sd = math.sqrt(model.params[-1]) * np.sqrt(np.arange(1, HORIZON_H + 1)) * 1.5
        zq = fc._normal_quantile(0.5 + cfg.interval_level / 2)
        lo, hi = -zq * sd, zq * sd
    point = fc._inverse(roll.final, spec)
    hist = c.valid[np.isfinite(c.valid)]
    lo_h, hi_h = float(hist.min()), float(hist.max())
    margin = cfg.plausible_margin * (hi_h - lo_h)
    if not np.isfinite(point).all():
        raise fc._ModelError("forecast is not finite")
    if point.min() < lo_h - margin or point.max() > hi_h + margin:
        raise fc._ModelError(f"forecast {point.min():.4g}..{point.max():.4g} MW outside the "
                             f"plausible range {lo_h - margin:.4g}..{hi_h + margin:.4g} MW")
    return point, fc._inverse(roll.final + lo, spec), fc._inverse(roll.final + hi, spec)


def _previous_day(c, n_hist: int, cfg):
    """The load 24 h before each target (filled), with a band from its own hourly-origin errors."""
    src = np.arange(n_hist, n_hist + HORIZON_H) - 24
    point = c.lagfill[src]
    if not np.isfinite(point).all():
        finite = c.valid[np.isfinite(c.valid)]
        point = np.where(np.isfinite(point), point, finite[-1])
    last_origin = n_hist - 1 - HORIZON_H
    origins = np.arange(max(last_origin - 24 * CALIBRATION_DAYS + 1, 24), last_origin + 1)
    resid = fc._profile_errors(c, origins, 24)[0]
    lower, upper, how = fc._fallback_band(c, point, resid, cfg)
    return point, lower, upper, how


def _rows(cid, cal, n_hist, cutoff, point, lower, upper, cfg, method, models_of, fitted_on,
          last_obs, note) -> dict:
    targets = cal.grid[n_hist:n_hist + HORIZON_H]
    lower = np.minimum(lower, point)
    upper = np.maximum(upper, point)
    n = len(targets)
    return {
        "circuit_id": [cid] * n, "cutoff_ts": [cutoff] * n, "target_ts": list(targets),
        "horizon_h": list(range(1, n + 1)), "load_mw": [float(v) for v in point],
        "lower_mw": [float(v) for v in lower], "upper_mw": [float(v) for v in upper],
        "interval_level": [cfg.interval_level] * n, "method": [method] * n,
        "models_of": [models_of] * n, "fitted_on": [fitted_on] * n,
        "last_observed_ts": [last_obs] * n, "note": [note] * n,
    }


CHECKS = {
    "next_24_hours_complete": "Every circuit of the registry has one row for each of the 24 "
                              "hours after the cutoff.",
    "interval_valid": "Every forecast, lower and upper bound is a finite number, with "
                      "lower <= forecast <= upper.",
}


def audit(frame: pd.DataFrame, circuits: Iterable[str], cutoff: pd.Timestamp
          ) -> dict[str, fc.CheckOutcome]:
    """CHECKS on intraday rows meant to cover `circuits` from `cutoff`; never raises."""
    expected = sorted(set(map(str, circuits)) | set(frame["circuit_id"].astype(str)))
    hours = set(pd.date_range(cutoff + _HOUR, periods=HORIZON_H, freq="h"))
    got = frame.assign(circuit_id=frame["circuit_id"].astype(str))
    got = got[got["cutoff_ts"] == cutoff]
    by = got.groupby("circuit_id")["target_ts"]
    problems = []
    for cid in expected:
        ts = list(by.get_group(cid)) if cid in by.groups else []
        if len(ts) != HORIZON_H or set(ts) != hours:
            problems.append(f"{cid}: {len(ts)} rows, {len(set(ts) & hours)} of the {HORIZON_H} "
                            f"hours after {cutoff}")
    stray = len(frame) - len(got)
    if stray:
        problems.append(f"{stray} row(s) with another cutoff than {cutoff}")
    complete = fc.CheckOutcome(
        not problems,
        (f"{len(expected)} circuit(s), the 24 hours after {cutoff} each" if not problems
         else f"{len(problems)} problem(s): {problems[0]}"),
        {"circuits": len(expected), "examples": problems[:fc.MAX_EXAMPLES]})
    return {"next_24_hours_complete": complete, "interval_valid": fc.check_intervals(frame)}


def accuracy_by_horizon(intraday: pd.DataFrame, day_ahead: pd.DataFrame, load: pd.DataFrame
                        ) -> pd.DataFrame:
    """MAPE (%) and interval coverage of intraday forecasts per horizon, next to the previous-day
    profile and to the day-ahead forecast that was in force at the cutoff.

    `intraday` has INTRADAY_COLUMNS; `day_ahead` circuit_id, target_ts, load_mw (the stored
    day-ahead forecasts); `load` circuit_id, timestamp, load_mw (the actuals). The day-ahead
    forecast in force at a cutoff on day D is the one issued at the end of D-1, which covers D
    only: the comparison with it (`*_in_force`) is on the targets inside the cutoff's day, since for
    targets on D+1 the day-ahead forecast is issued later, with more data than the cutoff had.
    Hours without an actual, or with an actual under 1 % of the circuit's mean, are not scored.
    Returns horizon_h, n, mape_intraday, mape_prev_day, coverage_intraday, n_in_force,
    mape_intraday_in_force, mape_day_ahead_in_force.
    """
    actual = load.rename(columns={"timestamp": "target_ts", "load_mw": "actual_mw"})
    actual = actual.assign(circuit_id=actual["circuit_id"].astype(str))
    prev = actual.assign(target_ts=actual["target_ts"] + pd.Timedelta(hours=24)).rename(
        columns={"actual_mw": "prev_day_mw"})
    da = day_ahead.rename(columns={"load_mw": "day_ahead_mw"})[
        ["circuit_id", "target_ts", "day_ahead_mw"]]
    da = da.assign(circuit_id=da["circuit_id"].astype(str))
    frame = (intraday.assign(circuit_id=intraday["circuit_id"].astype(str))
             .merge(actual, on=["circuit_id", "target_ts"])
             .merge(prev, on=["circuit_id", "target_ts"])
             .merge(da, on=["circuit_id", "target_ts"], how="left"))
    level = frame.groupby("circuit_id")["actual_mw"].transform(lambda s: s.abs().mean())
    frame = frame[frame["actual_mw"].abs() > 0.01 * level]
    in_force = frame["target_ts"].dt.normalize() == frame["cutoff_ts"].dt.normalize()

    def ape(col):
        return (frame[col] - frame["actual_mw"]).abs() / frame["actual_mw"].abs() * 100

    scored = frame.assign(
        intraday=ape("load_mw"), prev_day=ape("prev_day_mw"),
        intraday_in_force=ape("load_mw").where(in_force & frame["day_ahead_mw"].notna()),
        day_ahead_in_force=ape("day_ahead_mw").where(in_force),
        covered=((frame["actual_mw"] >= frame["lower_mw"])
                 & (frame["actual_mw"] <= frame["upper_mw"])) * 100.0)
    return scored.groupby("horizon_h").agg(
        n=("intraday", "size"), mape_intraday=("intraday", "mean"),
        mape_prev_day=("prev_day", "mean"), coverage_intraday=("covered", "mean"),
        n_in_force=("day_ahead_in_force", "count"),
        mape_intraday_in_force=("intraday_in_force", "mean"),
        mape_day_ahead_in_force=("day_ahead_in_force", "mean")).reset_index()
