"""The load forecast's figures that `make evaluate` measures by replaying it on the warehouse.

1. What the weather forecast's temperature is worth to the day-ahead forecast: a rolling-origin
   backtest (`gridassets.domain.backtest.backtest`) of the same circuits, days and starting models,
   once with the forecast temperature of each hour (where `weather_forecasts` has it) and once with
   the observed temperature 24 h earlier only.
2. The intraday refresh by horizon: `gridassets.domain.intraday.forecast_intraday` at every
   `every_h`-th hour of the last days, from the day-ahead models the daily graph stored for the day
   before each cutoff, scored against what happened, the previous-day profile and the day-ahead
   forecast in force at the cutoff; with its cost per circuit and cutoff.

Both read the warehouse through `gridassets.storage.forecasting` and write nothing.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from gridassets import warehouse
from gridassets.domain import backtest, forecasting, intraday
from gridassets.storage import evaluation as eval_reads
from gridassets.storage import forecasting as reads

TEMPERATURE_ORIGINS = 14  # day-ahead origins replayed twice (with and without forecast temperature)
INTRADAY_DAYS = 7  # days of intraday cutoffs scored
INTRADAY_EVERY_H = 3  # a cutoff every this many hours (each covers all 24 horizons)
REPORTED_HORIZONS = (1, 2, 3, 6, 12, 18, 24)


def forecast_temperature_gain(db: Path, n_origins: int = TEMPERATURE_ORIGINS) -> dict | None:
    """MAPE of the day-ahead forecast with and without forecast temperature on the same origins:
    the last `n_origins` days whose next day's load is stored. None when the warehouse has no
    weather forecasts or observed weather, or too little history."""
    cfg = forecasting.ForecastConfig()
    with warehouse.connect(db, read_only=True) as con:
        if not (warehouse.table_exists(con, "weather_forecasts")
                and warehouse.table_exists(con, "weather_observations")):
            return None
        last_ts = eval_reads.last_load_timestamp(con)
        if last_ts is None:
            return None
        last_origin = (pd.Timestamp(last_ts) - pd.Timedelta(hours=23)).date() - timedelta(days=1)
        origins = [last_origin - timedelta(days=i) for i in range(n_origins - 1, -1, -1)]
        start = pd.Timestamp(origins[0]) - pd.Timedelta(days=cfg.window_days + 1)
        end = pd.Timestamp(last_origin) + pd.Timedelta(days=2)
        load = reads.feeder_load_between(con, start, end)
        temperature = reads.circuit_temperature_between(con, start, end)
        forecast_temp = reads.circuit_forecast_temperature_between(con, start, end)
        fitted, _ = reads.model_state_before(con, pd.Timestamp(origins[0]))
    if load.empty or forecast_temp is None or forecast_temp.empty:
        return None
    runs = {}
    for label, fore in (("with", forecast_temp), ("without", None)):
        t0 = time.monotonic()
        result = backtest.backtest(load, origins, temperature=temperature, fitted=fitted,
                                   forecast_temperature=fore, config=cfg)
        runs[label] = {"mape": float(result.overall["mape"]),
                       "coverage": float(result.overall["coverage"]),
                       "seconds": round(time.monotonic() - t0, 1)}
    return {"origins": [str(origins[0]), str(origins[-1])], "n_origins": len(origins),
            "circuits": int(load["circuit_id"].nunique()),
            "mape_with_forecast_temperature": runs["with"]["mape"],
            "mape_without_forecast_temperature": runs["without"]["mape"],
            "coverage_with": runs["with"]["coverage"],
            "coverage_without": runs["without"]["coverage"]}


def intraday_accuracy(db: Path, days: int = INTRADAY_DAYS, every_h: int = INTRADAY_EVERY_H
                      ) -> dict | None:
    """The intraday refresh replayed at every `every_h`-th hour of the last `days` days whose 24
    hours ahead are all observed, scored by horizon; None without stored day-ahead models."""
    with warehouse.connect(db, read_only=True) as con:
        if not warehouse.table_exists(con, "load_forecast_models"):
            return None
        last_ts = eval_reads.last_load_timestamp(con)
        if last_ts is None:
            return None
        last_cutoff = pd.Timestamp(last_ts) - pd.Timedelta(hours=intraday.HORIZON_H)
        first_cutoff = (last_cutoff - pd.Timedelta(days=days)).ceil("D")
        cutoffs = list(pd.date_range(first_cutoff, last_cutoff, freq=f"{every_h}h"))
        since = first_cutoff - pd.Timedelta(days=intraday.WINDOW_DAYS)
        until = pd.Timestamp(last_ts) + pd.Timedelta(hours=1)
        load = reads.feeder_load_between(con, since, until)
        temperature = (reads.circuit_temperature_between(con, since, until)
                       if warehouse.table_exists(con, "weather_observations") else None)
        circuits = sorted(reads.circuit_zones(con)["circuit_id"].astype(str))
        models = {}
        for day in sorted({c.date() for c in cutoffs}):
            fitted, models_of = reads.intraday_models(con, pd.Timestamp(day))
            if models_of is not None and (day - models_of).days <= 2:
                models[day] = (fitted, models_of,
                               reads.latest_forecast_temperature(
                                   con, since, pd.Timestamp(day) + pd.Timedelta(days=2),
                                   models_of))
        day_ahead = reads.day_ahead_in_force(con, cutoffs[0] if cutoffs else since, until)
    cutoffs = [c for c in cutoffs if c.date() in models]
    if not cutoffs:
        return None
    frames = []
    t0 = time.monotonic()
    for cutoff in cutoffs:
        fitted, models_of, fore = models[cutoff.date()]
        frames.append(intraday.forecast_intraday(
            load, cutoff, fitted, temperature=temperature, forecast_temperature=fore,
            models_of=models_of, circuits=circuits))
    seconds = time.monotonic() - t0
    frame = pd.concat(frames, ignore_index=True)
    table = intraday.accuracy_by_horizon(frame, day_ahead, load)
    methods = frame.drop_duplicates(["circuit_id", "cutoff_ts"])["method"].value_counts()
    return {"cutoffs": [str(cutoffs[0]), str(cutoffs[-1])], "n_cutoffs": len(cutoffs),
            "every_h": every_h, "circuits": len(circuits),
            "ms_per_circuit_cutoff": round(1000 * seconds / (len(cutoffs) * len(circuits)), 1),
            "methods": {str(k): int(v) for k, v in methods.items()},
            "by_horizon": table.to_dict(orient="records")}


def format_report(gain: dict | None, intra: dict | None) -> str:
    """Both figures as the text `make evaluate` prints."""
    lines = []
    if gain is not None:
        lines += [
            f"Day-ahead load forecast with and without the weather forecast's temperature "
            f"({gain['n_origins']} origins {gain['origins'][0]}..{gain['origins'][1]}, "
            f"{gain['circuits']} circuits, same models and data)",
            f"  MAPE {gain['mape_with_forecast_temperature']:.2f}% with forecast temperature, "
            f"{gain['mape_without_forecast_temperature']:.2f}% with the observed temperature "
            f"24 h earlier"]
    if intra is not None:
        lines += [
            f"Intraday refresh by horizon ({intra['n_cutoffs']} cutoffs every "
            f"{intra['every_h']} h, {intra['cutoffs'][0]}..{intra['cutoffs'][1]}, "
            f"{intra['circuits']} circuits, {intra['ms_per_circuit_cutoff']:.0f} ms per circuit "
            "and cutoff)",
            f"  {'hours ahead':>11} {'MAPE':>7} {'prev. day':>10} {'coverage':>9}   "
            f"{'same day: intraday':>19} {'day-ahead':>10}"]
        for row in intra["by_horizon"]:
            if row["horizon_h"] not in REPORTED_HORIZONS:
                continue
            same_day = ("" if not row["n_in_force"] else
                        f"{row['mape_intraday_in_force']:18.2f}% "
                        f"{row['mape_day_ahead_in_force']:9.2f}%")
            lines.append(f"  {row['horizon_h']:>11} {row['mape_intraday']:6.2f}% "
                         f"{row['mape_prev_day']:9.2f}% {row['coverage_intraday']:8.1f}%   "
                         f"{same_day}")
    return "\n".join(lines)
