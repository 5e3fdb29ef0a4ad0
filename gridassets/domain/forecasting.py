"""Day-ahead load forecasts per circuit, with calibrated intervals and a fallback ladder.

Partition D is issued at the end of day D: every forecast uses load (and, where given, temperature)
observed up to D 23:00 UTC and covers the 24 hours of D+1 (horizons 1..24 h). Rows after the cutoff
are dropped before anything else, so no caller can leak the future into a forecast.

Primary model (`sarimax`): a regression with ARMA errors on log load (linear load, scaled, for a
circuit that ever shows zero or reverse flow), in statsmodels' SARIMAX form:

    z_t = x_t' beta + u_t,   u_t ~ ARMA(p, q)

with x_t = a constant, daily Fourier terms (hour of the UTC day), weekly Fourier terms (hour of
the UTC week), the load of the same hour one day, one week and two weeks earlier (all known at the
cutoff for every hour of D+1), and, where the circuit has temperature, heating and cooling degrees
of the temperature one day earlier. Temperature enters lagged on purpose: there are no weather
forecasts, so the model is trained on exactly what it will see when forecasting (persistence), and
never on future observations. The ARMA errors carry the end-of-day deviation (the data runs to
D 23:00 while an operator issues its day-ahead forecast hours earlier) into the next day and let it
decay.

The regression is estimated over `history_days`, the ARMA part on the last `arma_fit_days` of the
residuals. A year lets the lag weights see every season: day-ahead MAPE on 2024 (ERCO / CISO, 91
origins) was 3.73 / 3.22 % with 56 days, 3.59 / 3.25 % with 91, 3.55 / 3.23 % with 182 and
3.47 / 3.19 % with 365. Estimation is two-stage (least squares for beta, then maximum likelihood for
the ARMA part, innovation variance concentrated out): joint likelihood over the ~20 regression
coefficients took 1-1.5 s per series and stopped unconverged; the two stages take about 0.1 s.

The model's forecast is then combined, horizon by horizon, with the previous-day profile:
w_h * model + (1 - w_h) * load 24 h earlier, with w_h in [0, 1] the least-squares weight over the
model's own day-ahead forecasts of the last `calibration_days` days (neighbouring horizons pooled).
On 2024 data (91-day history) this cut MAPE from 3.62 to 3.25 % for CISO and from 3.61 to 3.59 %
for ERCO.
The model alone must still be plausible (see the ladder), so a zero weight cannot hide a broken fit.

Data hygiene, per circuit, before any fit (all from data up to the cutoff):
- duplicate readings of an hour are averaged; non-numeric values count as missing;
- a stuck meter (at least `flatline_hours` identical readings in a row) is missing data; if the run
  reaches the cutoff the meter is flat-lining now and the circuit falls back (see below);
- in a circuit whose load is otherwise positive, zero or negative readings are dropouts (missing);
- outliers are judged against a seasonal median (the same hour on the seven days either side): a
  value below a third or above three times it is a gross error; a value more than `outlier_z`
  robust deviations from it that is also a spike against its own 7-hour neighbourhood is an outlier.
  Both become missing. Requiring the spike shape keeps real multi-day extremes (a cold snap) in;
- gaps up to `max_gap_hours` are interpolated linearly; longer gaps stay missing for the model
  (the Kalman filter skips them) and are filled from the seasonal median only where a lagged value
  is needed as a regressor.

Intervals (`INTERVAL_LEVEL`, 90 % central): split-conformal quantiles of the day-ahead errors of the
forecast as served (model and blend), recomputed every day from rolling 24-hour forecasts issued at
23:00 on each of the last `calibration_days` days (log-scale errors, horizons h-2..h+2 pooled, so
~140 errors per horizon). The raw ARMA intervals are not used: they treat the regressors and the
parameters as known, and at 12-24 h the error is mostly weather the model does not see. Of those
28 days the last `holdout_days` are out of sample for freshly fitted parameters, the rest in
sample, which is one reason the coverage can come out a little under nominal (see the backtest).
With fewer than 20 errors per horizon (a new circuit) the band is the ARMA one, widened by half.

Refits: a circuit is refitted every `refit_every_days` (staggered across circuits by a stable hash
so that a fleet does not refit all at once); in between, the stored parameters are reused and only
the Kalman filter runs, over the last `calibration_days` + 8 days (a week of burn-in for the ARMA
state).
Measured at 500 circuits: ~60-85 ms per circuit on a refit, ~10-14 ms on an extend
(`python -m gridassets.evaluation.forecast_cost`).

Guarded replacement: a refit candidate is estimated on data up to D - `holdout_days`; it and the
serving model then forecast each of the last `holdout_days` days day-ahead, and the candidate
replaces the serving model only if its error there (WAPE) is at most (1 + `replace_tolerance`) times
the serving model's. Both are scored only on data neither was trained on (the serving model's
training data ended at least as early), so the comparison is never made on training data.

Fallback ladder per circuit, each row tagged with `method`, `substituted` and a `note`:
    sarimax  ->  profile_prev_week | profile_prev_day  ->  flat_last_value  ->  no_data
The model is replaced when the meter is flat-lining at the cutoff, when there is too little
complete history, when the last day is mostly missing, when the fit fails or is unstable, or when
the forecast is non-finite or outside a plausible range. Between the two profiles the one with the
lower recent day-ahead error on this circuit is used. Fallback intervals are calibrated the same
way from that profile's own recent errors.
"""

from __future__ import annotations

import copy
import json
import math
import multiprocessing
import warnings
import zlib
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from gridassets.domain.quality import MAX_EXAMPLES, CheckOutcome

INTERVAL_LEVEL = 0.90  # central prediction interval: 5 % and 95 % conformal quantiles

METHOD_SARIMAX = "sarimax"
METHOD_PREV_WEEK = "profile_prev_week"
METHOD_PREV_DAY = "profile_prev_day"
METHOD_FLAT = "flat_last_value"
METHOD_NO_DATA = "no_data"
METHODS = (METHOD_SARIMAX, METHOD_PREV_WEEK, METHOD_PREV_DAY, METHOD_FLAT, METHOD_NO_DATA)

# What a forecast row was made from (the `inputs` column): load history alone, or load history
# and observed temperature. Only the model uses temperature; the fallbacks are profiles of load.
INPUTS_LOAD = "load"
INPUTS_LOAD_TEMPERATURE = "load+temperature"
# Which temperature the target hours' terms came from (`temperature_source`).
TEMPERATURE_FORECAST = "forecast"
TEMPERATURE_LAGGED = "observed, 24 h before"
TEMPERATURE_NONE = "none"

FORECAST_COLUMNS = [
    "circuit_id", "issue_date", "target_ts", "horizon_h", "load_mw", "lower_mw", "upper_mw",
    "interval_level", "method", "inputs", "model", "params", "fitted_on", "substituted", "note",
    "temperature_source",
]

HORIZON_H = 24
_HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class ForecastConfig:
    """Knobs of the day-ahead forecast.

    Defaults were chosen on EIA-930 2024 data of ERCO and CISO (see the module doc); 2025 is kept
    for the evaluation.
    """

    history_days: int = 365  # regression window (a year of regimes steadies the lag weights)
    arma_fit_days: int = 91  # the ARMA errors are estimated on the most recent part only
    min_history_days: int = 14  # less complete history than this: no model, fall back
    interval_level: float = INTERVAL_LEVEL
    refit_every_days: int = 7
    stagger_refits: bool = True  # spread a fleet's refits over the week by a hash of circuit_id
    holdout_days: int = 7  # out-of-sample window of the guarded replacement
    replace_tolerance: float = 0.02  # candidate may be at most 2 % worse (relative) and still win
    calibration_days: int = 28  # rolling day-ahead errors behind the intervals
    horizon_pool: int = 2  # quantiles pool horizons h-2..h+2
    daily_harmonics: int = 4
    weekly_harmonics: int = 3
    lag_hours: tuple[int, ...] = (24, 168, 336)
    arma_order: tuple[int, int] = (2, 1)
    min_completeness: float = 0.8  # share of valid hours in the fit window
    min_last_day_hours: int = 12  # valid hours needed on day D itself
    max_gap_hours: int = 6  # longer gaps are not interpolated
    flatline_hours: int = 6  # this many identical readings in a row: stuck meter
    outlier_z: float = 6.0
    plausible_margin: float = 0.5  # forecast must stay within [lo - m*range, hi + m*range]
    temperature_base_c: float = 18.0  # balance point of heating and cooling degrees
    naive_blend: bool = True  # combine with the previous-day profile, weights per horizon

    def __post_init__(self) -> None:
        if not 0.0 < self.interval_level < 1.0:
            raise ValueError(f"interval_level must be in (0, 1), got {self.interval_level}")
        if self.refit_every_days < 1 or self.holdout_days < 1 or self.calibration_days < 1:
            raise ValueError("refit_every_days, holdout_days and calibration_days must be >= 1")
        if self.history_days < self.min_history_days:
            raise ValueError("history_days must be at least min_history_days")
        if not (0 <= self.daily_harmonics <= 11 and 0 <= self.weekly_harmonics <= 12):
            raise ValueError("daily_harmonics must be 0..11 and weekly_harmonics 0..12")
        if any(lag < HORIZON_H or lag % 24 for lag in self.lag_hours):
            # A lag shorter than the horizon would need values after the cutoff.
            raise ValueError(f"lag_hours must be whole days of at least 24 h, got {self.lag_hours}")

    @property
    def window_days(self) -> int:
        """Days of load before the issue day (inclusive) that a forecast can use."""
        return self.history_days + max(self.lag_hours, default=0) // 24 + 8

    def model_key(self) -> dict:
        """The parts of the configuration a fitted model depends on (a change forces a refit)."""
        return {
            "history_days": self.history_days,
            "daily_harmonics": self.daily_harmonics,
            "weekly_harmonics": self.weekly_harmonics,
            "lag_hours": list(self.lag_hours),
            "arma_order": list(self.arma_order),
            "arma_fit_days": self.arma_fit_days,
            "naive_blend": self.naive_blend,
            "temperature_base_c": self.temperature_base_c,
        }


@dataclass
class FittedModel:
    """Serializable state of one circuit's serving model.

    `spec` says how to rebuild the design (transform, regressors, order); `params` are the SARIMAX
    parameters in statsmodels order (regression coefficients, AR, MA, sigma2). `fitted_on` is the
    issue day the parameters were estimated on, `train_end` the last day of their training data,
    `checked_on` the last refit attempt (the refit clock). `residual_quantiles` holds the latest
    per-horizon conformal offsets (log or scaled units) and `guard` the last replacement decision.
    """

    circuit_id: str
    method: str
    spec: dict
    params: list[float]
    fitted_on: date
    train_end: date
    checked_on: date
    residual_quantiles: dict = field(default_factory=dict)
    guard: dict = field(default_factory=dict)

    def to_json(self) -> str:
        """The model as JSON text (dates as ISO strings, keys sorted: equal models, equal text)."""
        data = asdict(self)
        for key in ("fitted_on", "train_end", "checked_on"):
            data[key] = data[key].isoformat()
        return json.dumps(data, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, s: str) -> FittedModel:
        """Rebuild a model written by `to_json`; raises ValueError on text that is not one."""
        try:
            data = json.loads(s)
            names = {f.name for f in fields(cls)}
            missing = names - set(data)
            if missing:
                raise ValueError(f"missing field(s) {', '.join(sorted(missing))}")
            data = {k: v for k, v in data.items() if k in names}
            for key in ("fitted_on", "train_end", "checked_on"):
                data[key] = date.fromisoformat(data[key])
            data["params"] = [float(v) for v in data["params"]]
            return cls(**data)
        except (TypeError, KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a FittedModel: {exc}") from exc


# ----------------------------------------------------------------------------------------------
# Public entry point


def forecast_day_ahead(
    load: pd.DataFrame,
    issue_day: date,
    *,
    temperature: pd.DataFrame | None = None,
    fitted: Mapping[str, FittedModel] | None = None,
    config: ForecastConfig = ForecastConfig(),
    circuits: Iterable[str] | None = None,
    forecast_temperature: pd.DataFrame | None = None,
    processes: int = 1,
) -> tuple[pd.DataFrame, dict[str, FittedModel]]:
    """Forecast every hour of `issue_day + 1` for every circuit, from data up to issue_day 23:00.

    Takes `load` with columns circuit_id, timestamp (UTC hour; naive or tz-aware), load_mw; rows
    after issue_day 23:00 UTC are ignored, whatever they hold. `temperature` (optional) has
    circuit_id, timestamp, temp_c observations and is also cut at the same time. `fitted` is the
    state returned by the previous call (models are refitted when due, otherwise reused).
    `forecast_temperature` (optional): circuit_id, timestamp, temp_c, the day-ahead weather
    forecast of each hour (the one issued at the end of the day before it; the target day's from
    the end of `issue_day`): where it exists the temperature terms are the forecast's of the hour
    itself, in history as for the targets, so the model learns on what was known at each issue
    time; elsewhere the observed temperature 24 h earlier. Rows say which
    (`temperature_source`).
    `circuits` lists circuits that must get a forecast even without any load rows (default: the
    circuits in `load`). `processes` > 1 shares the circuits among that many forked processes
    (from PARALLEL_MIN_CIRCUITS circuits on): each circuit is computed alone, so the result is the
    same whatever the number.

    Returns (forecasts, fitted): one row per circuit and target hour with FORECAST_COLUMNS, sorted
    by circuit and time, and the updated models (models of circuits not forecast pass through).
    Raises ValueError when a required column is missing.
    """
    issue_day = _as_date(issue_day)
    cutoff = pd.Timestamp(datetime.combine(issue_day, datetime.min.time())) + pd.Timedelta(hours=23)
    start = cutoff - pd.Timedelta(days=config.window_days) + _HOUR
    load_m = _hourly_matrix(load, "load_mw", start, cutoff, "load")
    temp_m = fc_m = None
    if temperature is not None:
        temp_m = _hourly_matrix(temperature, "temp_c", start, cutoff, "temperature")
    if forecast_temperature is not None and len(forecast_temperature):
        fc_m = _hourly_matrix(forecast_temperature, "temp_c", start,
                              cutoff + pd.Timedelta(hours=HORIZON_H), "forecast temperature")
    ids = sorted(set(load_m.ids) | set(map(str, circuits or ())))
    fitted = dict(fitted or {})
    out_models: dict[str, FittedModel] = dict(fitted)
    frames = []
    grid = pd.date_range(start, cutoff + pd.Timedelta(hours=HORIZON_H), freq="h")
    calendar = _Calendar(grid)
    # Imported before the warnings are caught: statsmodels sets its warning filters on first
    # import, which inside the catch_warnings block would let convergence warnings through on the
    # first call. Not at module import: every process that loads the graph (each run's, the
    # sensors') would pay seconds for it.
    _statsmodels()
    work = _DayWork(ids, load_m, temp_m, fc_m, len(grid) - HORIZON_H, calendar, issue_day,
                    fitted, config)
    if processes > 1 and len(ids) >= PARALLEL_MIN_CIRCUITS:
        results = _in_processes(work, processes)
    else:
        results = work.run(range(len(ids)))
    for cid, (rows, model) in zip(ids, results):
        frames.append(rows)
        if model is not None:
            out_models[cid] = model
    columns = {c: [] for c in FORECAST_COLUMNS}
    for rows in frames:
        for c in columns:
            columns[c].extend(rows[c])
    dtypes = {"target_ts": "datetime64[ns]", "horizon_h": "int64", "load_mw": "float64",
              "lower_mw": "float64", "upper_mw": "float64", "interval_level": "float64",
              "substituted": "bool"}
    out = pd.DataFrame({c: pd.Series(columns[c], dtype=dtypes.get(c, object))
                        for c in columns})
    return out, out_models


# From this many circuits a day's forecasts are shared among processes when asked to: below it,
# forking costs more than it saves.
PARALLEL_MIN_CIRCUITS = 64
# Circuits per task handed to a process: small enough to even out refit days (a refit costs
# several times a reuse), large enough that handing out tasks costs nothing.
PARALLEL_CHUNK = 16


@dataclass
class _DayWork:
    """One issue day's forecasts, circuit by circuit (what a forked process inherits)."""

    ids: list[str]
    load_m: Any
    temp_m: Any
    fc_m: Any
    n_hist: int
    calendar: Any
    issue_day: date
    fitted: Mapping[str, FittedModel]
    config: ForecastConfig

    def run(self, indices: Iterable[int]) -> list[tuple[dict, FittedModel | None]]:
        out = []
        # Small per-circuit matrices: BLAS threads only add overhead (20x slower measured on 2
        # cores) and could change the order of floating-point sums between runs.
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in indices:
                out.append(self.one(self.ids[i]))
        return out

    def one(self, cid: str) -> tuple[dict, FittedModel | None]:
        y = self.load_m.get(cid)
        if y is None:
            y = np.full(self.n_hist, np.nan)
        t = self.temp_m.get(cid) if self.temp_m is not None else None
        fc = self.fc_m.get(cid) if self.fc_m is not None else None
        rows, model = _forecast_circuit(cid, y, t, self.calendar, self.issue_day,
                                        self.fitted.get(cid), self.config, fc)
        used = model is not None and model.spec["temperature"] and t is not None
        source = (TEMPERATURE_NONE if not used else TEMPERATURE_FORECAST
                  if fc is not None and np.isfinite(fc[-HORIZON_H:]).all()
                  else TEMPERATURE_LAGGED)
        rows["temperature_source"] = [source] * len(rows["circuit_id"])
        return rows, model


_FORKED: _DayWork | None = None  # the day's work, as a forked process sees it


def _forked_run(indices: list[int]) -> list[tuple[dict, FittedModel | None]]:
    assert _FORKED is not None
    return _FORKED.run(indices)


def _in_processes(work: _DayWork, processes: int) -> list[tuple[dict, FittedModel | None]]:
    """`work.run` over every circuit in `processes` forked processes: they inherit the day's
    matrices (nothing is copied but the results); chunks in circuit order, results in it too."""
    global _FORKED
    chunks = [list(range(i, min(i + PARALLEL_CHUNK, len(work.ids))))
              for i in range(0, len(work.ids), PARALLEL_CHUNK)]
    _FORKED = work
    try:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
            return [result for part in pool.map(_forked_run, chunks) for result in part]
    finally:
        _FORKED = None


# ----------------------------------------------------------------------------------------------
# Audits of the outputs, run on the staged rows before anything is stored

# Blocking checks of the forecast rows, and of the model state, by name (the asset checks' names).
FORECAST_CHECKS = {
    "day_ahead_complete": "Every circuit (of the registry or with load history) has one forecast "
                          "row for each of the 24 hours of D+1, for every issue day D.",
    "interval_valid": "Every forecast, lower and upper bound is a finite number, with "
                      "lower <= forecast <= upper.",
}
MODEL_CHECKS = {
    "model_per_circuit": "One readable model per circuit and issue day, and one for every circuit "
                         "whose forecast that day came from the model.",
}


def audit_forecasts(frame: pd.DataFrame, circuits: Iterable[str], issue_days: Iterable[date]
                    ) -> dict[str, CheckOutcome]:
    """FORECAST_CHECKS on forecast rows (FORECAST_COLUMNS) meant to cover `circuits` for each of
    `issue_days`. Returns one CheckOutcome per check name; never raises on bad rows."""
    days = sorted({_as_date(d) for d in issue_days})
    expected = sorted(set(map(str, circuits)) | set(frame["circuit_id"].astype(str)))
    f = pd.DataFrame({"circuit_id": frame["circuit_id"].astype(str).to_numpy(),
                      "issue_date": [_as_date(d) for d in frame["issue_date"]],
                      "target_ts": pd.to_datetime(frame["target_ts"]).to_numpy()})
    problems: list[str] = []
    for day in days:
        hours = set(pd.date_range(pd.Timestamp(day) + pd.Timedelta(days=1), periods=HORIZON_H,
                                  freq="h"))
        got = f[f["issue_date"] == day]
        by = got.groupby("circuit_id")["target_ts"]
        for cid in expected:
            if cid not in by.groups:
                problems.append(f"{cid} issued {day}: no forecast rows")
                continue
            ts = list(by.get_group(cid))
            if len(ts) != HORIZON_H or set(ts) != hours:
                problems.append(f"{cid} issued {day}: {len(ts)} rows, {len(set(ts) & hours)} of "
                                f"the {HORIZON_H} hours of {day + timedelta(days=1)}")
    stray = sorted({str(d) for d in f["issue_date"]} - {str(d) for d in days})
    if stray:
        problems.append(f"rows issued on days outside the partition: {', '.join(stray)}")
    complete = CheckOutcome(
        not problems,
        (f"{len(expected)} circuit(s) x {len(days)} day(s), 24 hours of D+1 each" if not problems
         else f"{len(problems)} circuit-day(s) without their 24 hours: {problems[0]}"),
        {"circuits": len(expected), "days": len(days), "examples": problems[:MAX_EXAMPLES]})
    return {"day_ahead_complete": complete, "interval_valid": check_intervals(frame)}


def check_intervals(frame: pd.DataFrame) -> CheckOutcome:
    """`interval_valid` on forecast rows: load_mw, lower_mw and upper_mw finite, in that order."""
    values = frame[["load_mw", "lower_mw", "upper_mw"]].apply(pd.to_numeric, errors="coerce")
    finite = np.isfinite(values.to_numpy(float)).all(axis=1)
    with np.errstate(invalid="ignore"):
        ordered = ((values["lower_mw"] <= values["load_mw"])
                   & (values["load_mw"] <= values["upper_mw"])).to_numpy()
    bad = frame.loc[~(finite & ordered), ["circuit_id", "target_ts", "load_mw", "lower_mw",
                                           "upper_mw"]]
    examples = [f"{r.circuit_id} {r.target_ts}: {r.lower_mw} <= {r.load_mw} <= {r.upper_mw}"
                for r in bad.head(MAX_EXAMPLES).itertuples(index=False)]
    interval = CheckOutcome(
        bad.empty,
        (f"{len(frame):,} row(s) with finite lower <= forecast <= upper" if bad.empty else
         f"{len(bad):,} row(s) with a non-finite value or outside their own interval: "
         f"{examples[0]}"),
        {"rows": int(len(frame)), "bad_rows": int(len(bad)), "examples": examples})
    return interval


def audit_models(state: pd.DataFrame, forecasts: pd.DataFrame) -> dict[str, CheckOutcome]:
    """MODEL_CHECKS on model-state rows (circuit_id, issue_date, fitted_on, model_json) against the
    forecast rows they were issued with. Returns one CheckOutcome per check name."""
    problems: list[str] = []
    keys = list(zip(state["circuit_id"].astype(str), [_as_date(d) for d in state["issue_date"]]))
    seen: dict[tuple[str, date], date] = {}
    for (cid, day), text in zip(keys, state["model_json"]):
        if (cid, day) in seen:
            problems.append(f"{cid} issued {day}: more than one model")
            continue
        try:
            model = FittedModel.from_json(text)
        except (TypeError, ValueError) as exc:
            problems.append(f"{cid} issued {day}: unreadable model ({exc})")
            continue
        if model.circuit_id != cid:
            problems.append(f"{cid} issued {day}: the model is that of {model.circuit_id}")
        seen[(cid, day)] = model.fitted_on
    served = forecasts[forecasts["method"] == METHOD_SARIMAX].drop_duplicates(
        ["circuit_id", "issue_date"])
    for cid, day, fitted_on in zip(served["circuit_id"].astype(str), served["issue_date"],
                                   served["fitted_on"]):
        day = _as_date(day)
        if (cid, day) not in seen:
            problems.append(f"{cid} issued {day}: forecast by the model, but no model stored")
        elif fitted_on is not None and not pd.isna(fitted_on) and seen[(cid, day)] != _as_date(
                fitted_on):
            problems.append(f"{cid} issued {day}: forecast by parameters fitted on {fitted_on}, "
                            f"the model stored was fitted on {seen[(cid, day)]}")
    return {"model_per_circuit": CheckOutcome(
        not problems,
        (f"{len(seen)} model(s), one per circuit and day, covering {len(served)} model forecast(s)"
         if not problems else f"{len(problems)} problem(s): {problems[0]}"),
        {"models": len(seen), "model_forecasts": int(len(served)),
         "examples": problems[:MAX_EXAMPLES]})}


# ----------------------------------------------------------------------------------------------
# Input shaping


def _as_date(day: date | datetime | str) -> date:
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    return pd.Timestamp(day).date()


_CHUNK = 1_000_000


def _all_str(values: np.ndarray) -> bool:
    return all(isinstance(v, str) for v in pd.unique(values))


class _Hourly:
    """One value per circuit and hour from `start` to the cutoff (rows hours, columns circuits)."""

    def __init__(self, ids: list[str], values: np.ndarray):
        self.ids = ids
        self.values = values
        self._col = {cid: i for i, cid in enumerate(ids)}

    def get(self, cid: str) -> np.ndarray | None:
        i = self._col.get(cid)
        return None if i is None else self.values[:, i]


def _timestamps(values: pd.Series) -> pd.Series:
    """Naive UTC timestamps; tz-aware values are converted, unparseable ones become NaT."""
    if pd.api.types.is_datetime64_dtype(values) and getattr(values.dt, "tz", None) is None:
        return values
    return pd.to_datetime(values, errors="coerce", utc=True).dt.tz_localize(None)


def _hourly_matrix(frame: pd.DataFrame, value: str, start: pd.Timestamp, cutoff: pd.Timestamp,
                   what: str) -> _Hourly:
    """Hours start..cutoff by circuits; several readings of an hour averaged, junk as NaN.

    Built with integer codes and bincount rather than groupby/unstack: a fleet's year of hourly
    rows is millions of rows, and the grouped index alone took several times their memory.
    Raises ValueError when a required column is missing.
    """
    missing = [c for c in ("circuit_id", "timestamp", value) if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks column(s) {', '.join(missing)}")
    ts = _timestamps(frame["timestamp"]).to_numpy("datetime64[ns]")
    raw_ids = frame["circuit_id"].to_numpy()
    raw_values = frame[value].to_numpy()
    n_hours = int((cutoff - start) / _HOUR) + 1
    # The cutoff is applied to the raw timestamp, before flooring to the hour, so a reading at
    # 23:30 on the issue day cannot come in as 23:00.
    in_window = (ts >= np.datetime64(start)) & (ts <= np.datetime64(cutoff))
    # Ids are compared as text: 7 and "7" are one circuit.
    names = sorted({str(u) for u in pd.unique(raw_ids[in_window]) if not pd.isna(u)})
    size = len(names) * n_hours
    sums = np.zeros(size)
    counts = np.zeros(size)
    # In chunks, so that the temporaries stay small next to a fleet's millions of input rows.
    for lo in range(0, len(ts), _CHUNK):
        rows = lo + np.flatnonzero(in_window[lo:lo + _CHUNK])
        if not len(rows):
            continue
        hour = (ts[rows] - np.datetime64(start)) // np.timedelta64(1, "h")
        v = np.asarray(pd.to_numeric(raw_values[rows], errors="coerce"), dtype=float)
        ids = raw_ids[rows]
        codes = pd.Categorical(np.array([str(i) for i in ids], dtype=object)
                               if not _all_str(ids) else ids, categories=names).codes
        ok = np.isfinite(v) & (codes >= 0)
        flat = codes[ok].astype(np.int64) * n_hours + hour[ok]
        sums += np.bincount(flat, weights=v[ok], minlength=size)
        counts += np.bincount(flat, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return _Hourly(names, mean.reshape(len(names), n_hours).T)


class _Calendar:
    """Fourier terms of the whole grid (history plus the 24 target hours), computed once."""

    def __init__(self, grid: pd.DatetimeIndex):
        self.grid = grid
        hour = grid.hour.to_numpy()
        week_hour = grid.dayofweek.to_numpy() * 24 + hour
        self._daily = {}
        self._weekly = {}
        for k in range(1, 13):
            self._daily[k] = (np.sin(2 * np.pi * k * hour / 24), np.cos(2 * np.pi * k * hour / 24))
            self._weekly[k] = (np.sin(2 * np.pi * k * week_hour / 168),
                               np.cos(2 * np.pi * k * week_hour / 168))

    def daily(self, k: int):
        return self._daily[k]

    def weekly(self, k: int):
        return self._weekly[k]


# ----------------------------------------------------------------------------------------------
# Cleaning


@dataclass
class _Clean:
    raw: np.ndarray  # as received, on the grid up to the cutoff
    valid: np.ndarray  # cleaned, NaN where missing or removed (no imputation)
    filled: np.ndarray  # valid + short gaps interpolated (what the model sees as endog)
    lagfill: np.ndarray  # filled + long gaps from the seasonal median (for lagged regressors)
    positive: bool
    flat_now: int  # length of a stuck-meter run that reaches the cutoff (0 if none)
    removed: dict  # counts per reason


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of runs of True."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _seasonal_median(x: np.ndarray, days_each_side: int = 7) -> np.ndarray:
    """Median of the same hour on the neighbouring days (the day itself excluded)."""
    n = len(x)
    pad = (-n) % 24
    days = np.concatenate([np.full(pad, np.nan), x]).reshape(-1, 24)
    nd = len(days)
    stack = []
    for k in range(1, days_each_side + 1):
        for shift in (k, -k):
            s = np.full_like(days, np.nan)
            if shift > 0 and shift < nd:
                s[shift:] = days[:-shift]
            elif shift < 0 and -shift < nd:
                s[:shift] = days[-shift:]
            stack.append(s)
    return _nan_median_first_axis(np.stack(stack)).reshape(-1)[pad:]


def _nan_median_first_axis(a: np.ndarray) -> np.ndarray:
    """np.nanmedian(a, axis=0), several times faster on a short first axis: numpy's version goes
    through a masked partition per cell. NaN where a cell has no valid value."""
    ordered = np.sort(a, axis=0)  # NaNs sort last
    count = np.sum(~np.isnan(a), axis=0)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[None], axis=0)[0]
    high = np.take_along_axis(ordered, np.maximum(count // 2, 0)[None], axis=0)[0]
    return np.where(count > 0, 0.5 * (low + high), np.nan)


def _interpolate_short(x: np.ndarray, max_gap: int) -> np.ndarray:
    out = x.copy()
    nan = np.isnan(out)
    if not nan.any() or nan.all():
        return out
    idx = np.arange(len(out))
    good = ~nan
    for a, b in _runs(nan):
        if a == 0 or b == len(out) or b - a > max_gap:
            continue  # leading, trailing and long gaps are not invented
        out[a:b] = np.interp(idx[a:b], idx[good], out[good])
    return out


def _mad(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan
    return 1.4826 * float(np.median(np.abs(x - np.median(x))))


def _clean(y: np.ndarray, cfg: ForecastConfig) -> _Clean:
    raw = y.copy()
    x = y.copy()
    removed = {"flatline": 0, "dropout": 0, "outlier": 0}
    # Stuck meter: exact repeats. Measured loads are never constant for hours on end.
    same = np.zeros(len(x), bool)
    same[1:] = (x[1:] == x[:-1]) & np.isfinite(x[1:])
    flat_now = 0
    for a, b in _runs(same):
        a = a - 1  # the first reading of the run is part of it
        if b - a >= cfg.flatline_hours:
            removed["flatline"] += b - a
            x[a:b] = np.nan
            if b == len(x):
                flat_now = b - a
    finite = x[np.isfinite(x)]
    positive = len(finite) > 0 and float(np.quantile(finite, 0.01)) > 0
    if positive:
        # A few zero or negative readings in a positive series are meter or telemetry dropouts.
        bad = np.isfinite(x) & (x <= 0)
        removed["dropout"] += int(bad.sum())
        x[bad] = np.nan
    if np.isfinite(x).sum() >= 7 * 24:
        med = _seasonal_median(x)
        dev = x - med
        scale = _mad(dev)
        level = float(np.nanmedian(np.abs(x)))
        floor = max(1e-3 * level, 1e-9)  # a noiseless series has no spread to scale by
        scale = max(scale, floor) if math.isfinite(scale) else floor
        local = pd.Series(x).rolling(7, center=True, min_periods=3).median().to_numpy()
        ldev = x - local
        lscale = _mad(ldev)
        lscale = max(lscale, floor) if math.isfinite(lscale) else floor
        with np.errstate(invalid="ignore", divide="ignore"):
            spike = (np.abs(dev) > cfg.outlier_z * scale) & (np.abs(ldev) > cfg.outlier_z * lscale)
            gross = np.zeros(len(x), bool)
            if positive:
                gross = (x < med / 3) | (x > med * 3)
        bad = np.isfinite(x) & np.isfinite(med) & (spike | gross)
        removed["outlier"] += int(bad.sum())
        x[bad] = np.nan
    filled = _interpolate_short(x, cfg.max_gap_hours)
    lagfill = filled.copy()
    if np.isnan(lagfill).any() and np.isfinite(lagfill).any():
        med = _seasonal_median(filled, 14)
        gap = np.isnan(lagfill)
        lagfill[gap] = med[gap]
        lagfill = pd.Series(lagfill).ffill().bfill().to_numpy()
    return _Clean(raw, x, filled, lagfill, positive, flat_now, removed)


# ----------------------------------------------------------------------------------------------
# The regression with ARMA errors


def _transform(c: _Clean, spec: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(endog, lag source, valid endog) on the model scale."""
    if spec["transform"] == "log":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(c.filled), np.log(c.lagfill), np.log(c.valid)
    s = spec["scale"]
    return c.filled / s, c.lagfill / s, c.valid / s


def _inverse(z: np.ndarray, spec: dict) -> np.ndarray:
    if spec["transform"] == "log":
        return np.exp(np.clip(z, -50, 50))
    return z * spec["scale"]


def _temperature_terms(temp: np.ndarray | None, n_grid: int, cfg: ForecastConfig,
                       fit_start: int, forecast: np.ndarray | None = None) -> np.ndarray | None:
    """Heating and cooling degrees of the day-ahead forecast temperature of each hour where there
    is one, else of the observed temperature 24 h earlier; None if observations are too sparse."""
    if temp is None:
        return None
    t = _interpolate_short(np.where(np.isfinite(temp), temp, np.nan), cfg.max_gap_hours)
    if (np.isfinite(t[fit_start:]).mean() < cfg.min_completeness
            or np.isfinite(t[-24:]).sum() < cfg.min_last_day_hours):
        return None
    lag = np.full(n_grid, np.nan)
    lag[24:24 + len(t)] = t[: n_grid - 24]
    if forecast is not None:
        known = np.isfinite(forecast[:n_grid])
        lag[:len(known)][known] = forecast[:n_grid][known]
    # Remaining holes get the mean of their hour of day, so the Kalman filter sees finite exog.
    hod = np.arange(n_grid) % 24
    for h in range(24):
        sel = hod == h
        fill = np.nanmean(lag[sel]) if np.isfinite(lag[sel]).any() else cfg.temperature_base_c
        lag[sel & ~np.isfinite(lag)] = fill
    base = cfg.temperature_base_c
    # Tens of degrees keep the coefficients on the scale of the other regressors.
    return np.column_stack([np.maximum(base - lag, 0.0), np.maximum(lag - base, 0.0)]) / 10.0


def _design(spec: dict, zlag: np.ndarray, cal: _Calendar, temp_terms: np.ndarray | None
            ) -> np.ndarray:
    """Regressors for every grid hour (history and targets); rows without lags hold NaN."""
    n = len(cal.grid)
    cols = [np.ones(n)]
    for k in range(1, spec["daily_harmonics"] + 1):
        cols.extend(cal.daily(k))
    for k in range(1, spec["weekly_harmonics"] + 1):
        cols.extend(cal.weekly(k))
    zl = np.full(n, np.nan)
    zl[: len(zlag)] = zlag
    for lag in spec["lags_h"]:
        v = np.full(n, np.nan)
        v[lag:] = zl[: n - lag]
        cols.append(v)
    if spec["temperature"]:
        if temp_terms is None:
            raise _ModelError("the model uses temperature but none is available")
        cols.extend([temp_terms[:, 0], temp_terms[:, 1]])
    return np.column_stack(cols)


def _exog_names(spec: dict) -> list[str]:
    names = ["const"]
    for k in range(1, spec["daily_harmonics"] + 1):
        names += [f"day_sin{k}", f"day_cos{k}"]
    for k in range(1, spec["weekly_harmonics"] + 1):
        names += [f"week_sin{k}", f"week_cos{k}"]
    names += [f"lag{lag}h" for lag in spec["lags_h"]]
    if spec["temperature"]:
        names += ["hdd_lag24h", "cdd_lag24h"]
    return names


class _ModelError(Exception):
    """A fit or filter that cannot be used; the message becomes the row's note."""


def _statsmodels():
    """statsmodels' SARIMAX class, imported at first use."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    return SARIMAX


def _sarimax(endog: np.ndarray, exog: np.ndarray | None, spec: dict):
    p, q = spec["arma_order"]
    return _statsmodels()(endog, exog=exog, order=(p, 0, q), trend="n")


def _fit(z: np.ndarray, X: np.ndarray, rows: slice, spec: dict, arma_hours: int) -> list[float]:
    """Two-stage estimate on the grid rows `rows`; raises _ModelError if unusable.

    Least squares over all rows for the regression; the ARMA part on the last `arma_hours` of its
    residuals (short-term dynamics need months, not a year, and the fit cost grows with length).
    """
    zz, XX = z[rows], X[rows]
    ok = np.isfinite(zz) & np.isfinite(XX).all(axis=1)
    if ok.sum() < max(7 * 24, 5 * XX.shape[1]):
        raise _ModelError(f"only {int(ok.sum())} complete hours to fit on")
    try:
        beta, *_ = np.linalg.lstsq(XX[ok], zz[ok], rcond=None)
    except np.linalg.LinAlgError as exc:
        raise _ModelError(f"regression failed: {exc}") from None
    if not np.isfinite(beta).all():
        raise _ModelError("regression coefficients are not finite")
    resid = zz - np.where(np.isfinite(XX).all(axis=1), XX @ np.nan_to_num(beta), np.nan)
    p, q = spec["arma_order"]
    try:
        # The innovation variance is concentrated out of the likelihood: one parameter fewer
        # for the optimizer, the same estimate.
        model = _statsmodels()(resid[-arma_hours:], order=(p, 0, q), trend="n",
                               concentrate_scale=True)
        res = model.fit(disp=False, maxiter=100, cov_type="none")
    except Exception as exc:  # statsmodels raises many types (LinAlgError, ValueError, ...)
        raise _ModelError(f"ARMA fit failed: {type(exc).__name__}: {exc}") from None
    arma = np.r_[np.asarray(res.params, float), float(res.scale)]
    params = [float(v) for v in np.concatenate([beta, arma])]
    _check_stable(params, spec)
    return params


def _check_stable(params: list[float], spec: dict) -> None:
    p, q = spec["arma_order"]
    arr = np.asarray(params, float)
    if not np.isfinite(arr).all():
        raise _ModelError("parameters are not finite")
    k = len(_exog_names(spec))
    ar = arr[k:k + p]
    ma = arr[k + p:k + p + q]
    sigma2 = arr[-1]
    if not sigma2 > 0:
        raise _ModelError("innovation variance is not positive")
    if p and np.max(np.abs(np.roots(np.r_[1.0, -ar][::-1]) ** -1.0), initial=0) >= 1.0:
        raise _ModelError("AR part is non-stationary")
    if q and np.max(np.abs(np.roots(np.r_[1.0, ma][::-1]) ** -1.0), initial=0) >= 1.0:
        raise _ModelError("MA part is not invertible")


@dataclass
class _Rolling:
    """Day-ahead predictions of one model issued at 23:00 of each day in a range."""

    origins: np.ndarray  # grid positions of the 23:00 origins
    pred: np.ndarray  # (len(origins), 24) on the model scale
    final: np.ndarray  # (24,) the forecast from the cutoff


def _rolling(prep: _Prepared, params: list[float], n_hist: int, origins: np.ndarray
             ) -> _Rolling:
    """Filter rows first..n_hist-1 with fixed params; predict 24 h ahead from each origin.

    The SARIMAX state holds the ARMA errors only (the regression enters as an observation
    intercept), so the h-step prediction from origin t is x_{t+h}' beta + Z T^h a_{t|t}.
    """
    X, first, spec = prep.X, prep.filter_start, prep.spec
    k = X.shape[1]
    if len(params) != k + sum(spec["arma_order"]) + 1:
        raise _ModelError("parameters do not match the model specification")
    beta = np.asarray(params[:k])
    rows = slice(first, n_hist)
    Xh = X[rows]
    if n_hist - first < 48 or not np.isfinite(Xh).all():
        raise _ModelError("regressors are missing inside the filter window")
    model = _sarimax(prep.z[rows], Xh, spec)
    try:
        res = model.filter(np.asarray(params), cov_type="none")
    except Exception as exc:  # statsmodels raises many types (LinAlgError, ValueError, ...)
        raise _ModelError(f"filter failed: {type(exc).__name__}: {exc}") from None
    state = res.filtered_state
    Z = np.asarray(model.ssm["design"]).reshape(1, -1)
    T = np.asarray(model.ssm["transition"]).reshape(Z.shape[1], Z.shape[1])
    zt = []
    power = T.copy()
    for _ in range(HORIZON_H):
        zt.append((Z @ power).ravel())
        power = T @ power
    ZT = np.array(zt)
    pos = np.r_[origins, n_hist - 1].astype(int)
    err_part = (ZT @ state[:, pos - first]).T
    idx = pos[:, None] + np.arange(1, HORIZON_H + 1)[None, :]
    pred = X[idx] @ beta + err_part
    if not np.isfinite(pred[-1]).all():
        raise _ModelError("forecast is not finite")
    return _Rolling(pos[:-1], pred[:-1], pred[-1])


def _conformal(resid: np.ndarray, level: float, pool: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-horizon lower/upper offsets from a (days, 24) residual matrix; NaN rows ignored."""
    alpha = 1.0 - level
    lo = np.full(HORIZON_H, np.nan)
    hi = np.full(HORIZON_H, np.nan)
    nmin = 10**9
    for h in range(HORIZON_H):
        r = resid[:, max(0, h - pool):h + pool + 1].ravel()
        r = np.sort(r[np.isfinite(r)])
        n = len(r)
        nmin = min(nmin, n)
        if n == 0:
            continue
        # Split-conformal ranks: the finite-sample correction widens the band a little.
        i_hi = min(int(math.ceil((n + 1) * (1 - alpha / 2))), n) - 1
        i_lo = max(int(math.floor((n + 1) * (alpha / 2))), 1) - 1
        lo[h], hi[h] = r[i_lo], r[i_hi]
    return lo, hi, (0 if nmin == 10**9 else nmin)


# ----------------------------------------------------------------------------------------------
# Per-circuit flow


def _row_block(cid, issue_day, targets, point, lower, upper, cfg, method, model_text, params_text,
               fitted_on, substituted, note, inputs=INPUTS_LOAD) -> dict:
    lower = np.minimum(lower, point)
    upper = np.maximum(upper, point)
    n = len(targets)
    return {
        "circuit_id": [cid] * n,
        "issue_date": [issue_day] * n,
        "target_ts": list(targets),
        "horizon_h": list(range(1, n + 1)),
        "load_mw": [float(v) for v in point],
        "lower_mw": [float(v) for v in lower],
        "upper_mw": [float(v) for v in upper],
        "interval_level": [cfg.interval_level] * n,
        "method": [method] * n,
        "inputs": [inputs] * n,
        "model": [model_text] * n,
        "params": [params_text] * n,
        "fitted_on": [fitted_on] * n,
        "substituted": [substituted] * n,
        "note": [note] * n,
    }


def _describe(spec: dict) -> str:
    p, q = spec["arma_order"]
    scale = "log load" if spec["transform"] == "log" else "load"
    temp = ", temperature (lag 24 h)" if spec["temperature"] else ""
    lags = "/".join(str(lag) for lag in spec["lags_h"])
    return (f"SARIMAX({p},0,{q}) regression with ARMA errors on {scale}: "
            f"Fourier daily K={spec['daily_harmonics']}, weekly K={spec['weekly_harmonics']}, "
            f"lags {lags} h{temp}; {spec['history_days']} d window"
            + ("; combined per horizon with the previous-day profile"
               if spec["config"].get("naive_blend") else ""))


def _params_text(model: FittedModel) -> str:
    names = _exog_names(model.spec)
    p, q = model.spec["arma_order"]
    names += [f"ar.L{i}" for i in range(1, p + 1)] + [f"ma.L{i}" for i in range(1, q + 1)]
    names += ["sigma2"]
    rq = model.residual_quantiles
    return json.dumps({
        "coef": {n: round(v, 8) for n, v in zip(names, model.params)},
        "transform": model.spec["transform"],
        "scale": model.spec.get("scale"),
        "train_end": model.train_end.isoformat(),
        "blend_weight_by_horizon": rq.get("blend_weight"),
        "calibration_errors": rq.get("n"),
    }, sort_keys=True)


def _refit_reason(model: FittedModel | None, cid: str, issue_day: date, cfg: ForecastConfig,
                  has_temp: bool) -> str | None:
    if model is None:
        return "first fit"
    if model.method != METHOD_SARIMAX or model.spec.get("config") != cfg.model_key():
        return "configuration changed"
    if model.fitted_on > issue_day or model.train_end > issue_day:
        # A model trained on later data must never serve an earlier day (that would leak).
        return "stored model is from a later day"
    if model.spec["temperature"] and not has_temp:
        return "temperature no longer available"
    age = (issue_day - model.checked_on).days
    if age >= cfg.refit_every_days:
        return "scheduled refit"
    if cfg.stagger_refits and age >= 1:
        phase = zlib.crc32(cid.encode()) % cfg.refit_every_days
        if issue_day.toordinal() % cfg.refit_every_days == phase:
            return "scheduled refit"
    return None


@dataclass(frozen=True)
class _Window:
    """Grid positions of one circuit's data: all history is grid[0:n_hist], the cutoff n_hist-1."""

    n_hist: int
    first_valid: int
    history_hours: int

    @property
    def fit_start(self) -> int:
        return max(self.n_hist - self.history_hours, self.first_valid)

    def first_row(self, spec: dict) -> int:
        """First hour the regression can use: inside the window, with all its lags observed."""
        return max(self.n_hist - self.history_hours,
                   self.first_valid + max(spec["lags_h"], default=0))


def _forecast_circuit(cid: str, y: np.ndarray, temp: np.ndarray | None, cal: _Calendar,
                      issue_day: date, serving: FittedModel | None, cfg: ForecastConfig,
                      forecast: np.ndarray | None = None):
    n_hist = len(y)
    targets = cal.grid[n_hist:n_hist + HORIZON_H]
    if serving is not None:
        serving = copy.deepcopy(serving)  # the caller's models are not modified
    c = _clean(y, cfg)
    valid = np.isfinite(c.valid)
    notes: list[str] = []
    first_valid = int(np.argmax(valid)) if valid.any() else n_hist
    win = _Window(n_hist, first_valid, cfg.history_days * 24)
    span_days = (n_hist - first_valid) / 24
    problem = None
    if not valid.any():
        problem = "no valid load observations up to the cutoff"
    elif c.flat_now:
        problem = f"flat-lining meter: {c.flat_now} h of identical readings up to the cutoff"
    elif span_days < cfg.min_history_days:
        problem = (f"too little history: {span_days:.1f} d of data, "
                   f"{cfg.min_history_days} d needed")
    else:
        completeness = float(valid[win.fit_start:].mean())
        last_day = int(valid[-24:].sum())
        if completeness < cfg.min_completeness:
            problem = (f"too little complete history: {completeness:.0%} of hours valid in the "
                       f"fit window, {cfg.min_completeness:.0%} needed")
        elif last_day < cfg.min_last_day_hours:
            problem = (f"day {issue_day} has only {last_day} valid hours "
                       f"({cfg.min_last_day_hours} needed)")
    if problem is None:
        try:
            point, lower, upper, model = _run_sarimax(cid, c, temp, cal, issue_day, serving, cfg,
                                                      win, notes, forecast)
        except _ModelError as exc:
            problem = f"model unusable: {exc}"
        else:
            return _row_block(cid, issue_day, targets, point, lower, upper, cfg, METHOD_SARIMAX,
                              _describe(model.spec), _params_text(model), model.fitted_on, False,
                              "; ".join(notes),
                              INPUTS_LOAD_TEMPERATURE if model.spec["temperature"] else INPUTS_LOAD
                              ), model
    return _fallback(cid, c, cal, issue_day, cfg, problem, notes), None


def _new_spec(c: _Clean, cfg: ForecastConfig, win: _Window, has_temp: bool) -> dict:
    # Keep the lags that leave at least two weeks of regression rows in the window.
    lags = [lag for lag in cfg.lag_hours
            if win.n_hist - max(win.fit_start, win.first_valid + lag) >= 14 * 24]
    finite = c.valid[np.isfinite(c.valid)]
    scale = float(np.median(np.abs(finite))) or 1.0
    return {
        "transform": "log" if c.positive else "linear",
        "scale": 1.0 if c.positive else scale,
        "arma_order": list(cfg.arma_order),
        "daily_harmonics": cfg.daily_harmonics,
        "weekly_harmonics": cfg.weekly_harmonics,
        "lags_h": lags,
        "temperature": has_temp,
        "history_days": cfg.history_days,
        "config": cfg.model_key(),
    }


@dataclass
class _Prepared:
    spec: dict
    z: np.ndarray
    zvalid: np.ndarray
    zlag: np.ndarray
    X: np.ndarray
    first: int  # first regression row
    filter_start: int  # the Kalman filter runs from here to the cutoff


def _prepare(c: _Clean, spec: dict, cal: _Calendar, temp_terms, win: _Window,
             cfg: ForecastConfig) -> _Prepared:
    z, zlag, zvalid = _transform(c, spec)
    X = _design(spec, zlag, cal, temp_terms)
    first = win.first_row(spec)
    # Forecasts and calibration need the filtered state over the calibration days only; a week
    # before them is ample burn-in for the ARMA state, and filtering a year daily would not be.
    filter_start = max(first, win.n_hist - 24 * (cfg.calibration_days + 8))
    return _Prepared(spec, z, zvalid, zlag, X, first, filter_start)


def _run_sarimax(cid, c: _Clean, temp, cal, issue_day, serving, cfg, win: _Window, notes,
                 forecast=None):
    n_hist = win.n_hist
    temp_terms = _temperature_terms(temp, len(cal.grid), cfg, win.fit_start, forecast)
    has_temp = temp_terms is not None
    if temp is None:
        notes.append("no temperature observations: model uses load history alone")
    elif not has_temp:
        notes.append("temperature too sparse: model uses load history alone")
    reason = _refit_reason(serving, cid, issue_day, cfg, has_temp)
    model = serving
    if reason is not None:
        model = _refit(cid, c, temp_terms, cal, issue_day, serving, cfg, win, reason, notes)
    day_origins = np.arange(n_hist - 1 - 24 * cfg.calibration_days, n_hist - 1, 24)
    try:
        prep = _prepare(c, model.spec, cal, temp_terms, win, cfg)
        roll = _rolling(prep, model.params, n_hist,
                        day_origins[day_origins >= prep.filter_start + 24])
    except _ModelError:
        if reason is not None:
            raise
        # The stored model does not run on today's data: refit once before giving up on it.
        notes.append("stored parameters failed on today's data")
        model = _refit(cid, c, temp_terms, cal, issue_day, None, cfg, win,
                       "stored model failed", notes)
        prep = _prepare(c, model.spec, cal, temp_terms, win, cfg)
        roll = _rolling(prep, model.params, n_hist,
                        day_origins[day_origins >= prep.filter_start + 24])
    spec = model.spec
    idx = roll.origins[:, None] + np.arange(1, HORIZON_H + 1)[None, :]
    actual = prep.zvalid[idx] if len(roll.origins) else np.empty((0, HORIZON_H))
    final, pred = roll.final, roll.pred
    model_final = roll.final
    extra = {}
    if cfg.naive_blend and len(roll.origins):
        naive = prep.zlag[idx - 24]
        naive_final = prep.zlag[n_hist - 24:n_hist]
        w = _blend_weights(pred, naive, actual, cfg.horizon_pool)
        pred = w * pred + (1 - w) * naive
        final = w * final + (1 - w) * naive_final
        extra["blend_weight"] = [round(float(v), 4) for v in w]
    roll = _Rolling(roll.origins, pred, final)
    lo, hi, n_resid = _conformal(actual - roll.pred, cfg.interval_level, cfg.horizon_pool)
    if n_resid < 20 or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        # Too few errors of its own yet: a normal band from the ARMA variance, widened by half.
        sd = math.sqrt(model.params[-1]) * np.sqrt(np.arange(1, HORIZON_H + 1)) * 1.5
        zq = _normal_quantile(0.5 + cfg.interval_level / 2)
        lo, hi = -zq * sd, zq * sd
        notes.append(f"interval from the model variance (only {n_resid} day-ahead errors "
                     "to calibrate on)")
    model.residual_quantiles = {
        "level": cfg.interval_level,
        "lower": [round(float(v), 8) for v in lo],
        "upper": [round(float(v), 8) for v in hi],
        "n": int(n_resid),
        "as_of": issue_day.isoformat(),
        **extra,
    }
    point = _inverse(roll.final, spec)
    lower = _inverse(roll.final + lo, spec)
    upper = _inverse(roll.final + hi, spec)
    hist = c.valid[win.fit_start:]
    lo_h, hi_h = float(np.nanmin(hist)), float(np.nanmax(hist))
    margin = cfg.plausible_margin * (hi_h - lo_h)
    # The model's own forecast is judged before the blend: a blend weight of zero must not
    # pass off a broken model as a working one.
    for what, values in (("forecast", point), ("model forecast", _inverse(model_final, spec))):
        if not np.isfinite(values).all():
            raise _ModelError(f"{what} is not finite")
        if values.min() < lo_h - margin or values.max() > hi_h + margin:
            raise _ModelError(
                f"{what} {values.min():.4g}..{values.max():.4g} MW outside the plausible range "
                f"{lo_h - margin:.4g}..{hi_h + margin:.4g} MW")
    return point, lower, upper, model


def _blend_weights(model: np.ndarray, naive: np.ndarray, actual: np.ndarray, pool: int
                   ) -> np.ndarray:
    """Per-horizon least-squares weight of the model against the previous-day profile, in [0, 1]."""
    w = np.ones(HORIZON_H)
    for h in range(HORIZON_H):
        sl = slice(max(0, h - pool), h + pool + 1)
        m, n, a = model[:, sl].ravel(), naive[:, sl].ravel(), actual[:, sl].ravel()
        ok = np.isfinite(m) & np.isfinite(n) & np.isfinite(a)
        d = m[ok] - n[ok]
        den = float(d @ d)
        if ok.sum() >= 20 and den > 0:
            w[h] = float(np.clip((a[ok] - n[ok]) @ d / den, 0.0, 1.0))
    return w


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def _refit(cid, c: _Clean, temp_terms, cal, issue_day, serving, cfg, win: _Window, reason, notes
           ) -> FittedModel:
    """Fit a candidate and decide, out of sample, whether it replaces the serving model."""
    n_hist = win.n_hist
    spec = _new_spec(c, cfg, win, temp_terms is not None)
    prep = _prepare(c, spec, cal, temp_terms, win, cfg)
    hold = 24 * cfg.holdout_days
    # The candidate is trained up to D - holdout so that the holdout is out of sample for it;
    # with too short a history it is trained on everything and the guard has nothing to score.
    guarded = (n_hist - hold) - prep.first >= 14 * 24
    train_stop = n_hist - hold if guarded else n_hist
    train_end = issue_day - timedelta(days=cfg.holdout_days if guarded else 0)
    comparable = serving is not None and reason == "scheduled refit"
    try:
        params = _fit(prep.z, prep.X, slice(prep.first, train_stop), spec, 24 * cfg.arma_fit_days)
    except _ModelError as exc:
        if comparable:
            notes.append(f"refit failed ({exc}); kept parameters fitted on {serving.fitted_on}")
            serving.checked_on = issue_day
            return serving
        raise
    candidate = FittedModel(cid, METHOD_SARIMAX, spec, params, issue_day, train_end, issue_day)
    if not guarded:
        candidate.guard = {"decision": "accepted", "reason": reason,
                           "note": "no out-of-sample holdout (short history)"}
        notes.append(f"fitted ({reason}) without an out-of-sample holdout: short history")
        return candidate
    origins = np.arange(n_hist - 1 - hold, n_hist - 1, 24)
    cand_err = _holdout_wape(prep, candidate.params, n_hist, origins)
    if not comparable:
        candidate.guard = {"decision": "accepted", "reason": reason,
                           "candidate_wape": _r(cand_err), "holdout_days": cfg.holdout_days}
        notes.append(f"fitted ({reason}); holdout WAPE {cand_err:.2%}")
        return candidate
    # Score the serving model only on days after its own training data.
    s_origins = origins[origins >= n_hist - 1 - 24 * (issue_day - serving.train_end).days]
    try:
        s_prep = _prepare(c, serving.spec, cal, temp_terms, win, cfg)
        serv_err = _holdout_wape(s_prep, serving.params, n_hist, s_origins)
    except _ModelError as exc:
        serv_err = math.nan
        notes.append(f"serving model failed on the holdout ({exc})")
    cand_same = _holdout_wape(prep, candidate.params, n_hist, s_origins)
    record = {"candidate_wape": _r(cand_same), "serving_wape": _r(serv_err),
              "holdout_days": int(len(s_origins)), "tolerance": cfg.replace_tolerance,
              "serving_fitted_on": serving.fitted_on.isoformat(), "reason": reason}
    if not math.isfinite(serv_err) or (
            math.isfinite(cand_same) and cand_same <= serv_err * (1 + cfg.replace_tolerance)):
        candidate.guard = {"decision": "replaced", **record}
        notes.append(f"refitted; new parameters serve (holdout WAPE {cand_same:.2%} vs "
                     f"{serv_err:.2%} for those of {serving.fitted_on})")
        return candidate
    serving.checked_on = issue_day
    serving.guard = {"decision": "kept", **record}
    notes.append(f"refit candidate rejected (holdout WAPE {cand_same:.2%} vs {serv_err:.2%} for "
                 f"the parameters of {serving.fitted_on}, which keep serving)")
    return serving


def _r(v: float) -> float | None:
    return round(float(v), 6) if math.isfinite(v) else None


def _holdout_wape(prep: _Prepared, params, n_hist: int, origins: np.ndarray) -> float:
    """Weighted absolute percentage error (MW scale) of day-ahead forecasts from `origins`."""
    origins = origins[origins >= prep.filter_start + 24]
    if len(origins) == 0:
        return math.nan
    roll = _rolling(prep, params, n_hist, origins)
    idx = roll.origins[:, None] + np.arange(1, HORIZON_H + 1)[None, :]
    actual = _inverse(prep.zvalid[idx], prep.spec)
    pred = _inverse(roll.pred, prep.spec)
    ok = np.isfinite(actual) & np.isfinite(pred)
    denom = np.abs(actual[ok]).sum()
    return float(np.abs(pred[ok] - actual[ok]).sum() / denom) if denom > 0 else math.nan


# ----------------------------------------------------------------------------------------------
# Fallbacks


def _fallback(cid, c: _Clean, cal, issue_day, cfg, problem, notes):
    n_hist = len(c.raw)
    targets = cal.grid[n_hist:n_hist + HORIZON_H]
    filled = c.filled
    n_days = cfg.calibration_days
    origins = np.arange(n_hist - 1 - 24 * n_days, n_hist - 1, 24)
    origins = origins[origins >= 0]
    candidates = []
    for method, lag in ((METHOD_PREV_WEEK, 168), (METHOD_PREV_DAY, 24)):
        src = np.arange(n_hist, n_hist + HORIZON_H) - lag
        if src[0] < 0:
            continue
        prof = filled[src]
        if not np.isfinite(prof).all():
            continue
        resid, err = _profile_errors(c, origins, lag)
        candidates.append((err if math.isfinite(err) else math.inf, method, lag, prof, resid))
    if candidates:
        # Lower recent error first; prev_week wins a tie (listed first, stable sort).
        candidates.sort(key=lambda t: t[0])
        err, method, lag, prof, resid = candidates[0]
        why = f"{problem}; {method} chosen"
        if len(candidates) > 1 and math.isfinite(err):
            other = candidates[1]
            why += f" (recent WAPE {err:.1%} vs {other[0]:.1%} for {other[1]})"
        point = prof
        lower, upper, how = _fallback_band(c, point, resid, cfg)
        notes.append(why)
        if how:
            notes.append(how)
        return _row_block(cid, issue_day, targets, point, lower, upper, cfg, method,
                          f"seasonal naive: the same hour {lag // 24} day(s) earlier",
                          json.dumps({"lag_h": lag}), None, True, "; ".join(notes))
    finite = np.flatnonzero(np.isfinite(c.valid))
    if len(finite):
        last = float(c.valid[finite[-1]])
        point = np.full(HORIZON_H, last)
        resid = _flat_errors(c, origins)
        lower, upper, how = _fallback_band(c, point, resid, cfg)
        notes.append(f"{problem}; no complete profile day, last valid reading "
                     f"({cal.grid[finite[-1]]}) held flat")
        if how:
            notes.append(how)
        return _row_block(cid, issue_day, targets, point, lower, upper, cfg, METHOD_FLAT,
                          "last valid reading held flat",
                          json.dumps({"last_valid_ts": str(cal.grid[finite[-1]])}), None, True,
                          "; ".join(notes))
    zero = np.zeros(HORIZON_H)
    notes.append(f"{problem}; zero placeholder, not a forecast")
    return _row_block(cid, issue_day, targets, zero, zero, zero, cfg, METHOD_NO_DATA,
                      "no data", json.dumps({}), None, True, "; ".join(notes))


def _profile_errors(c: _Clean, origins: np.ndarray, lag: int) -> tuple[np.ndarray, float]:
    """Residuals (relative for positive series, MW otherwise) and WAPE of a lag profile."""
    if len(origins) == 0:
        return np.empty((0, HORIZON_H)), math.nan
    idx = origins[:, None] + np.arange(1, HORIZON_H + 1)[None, :]
    src = idx - lag
    ok_src = src >= 0
    pred = np.where(ok_src, c.filled[np.clip(src, 0, None)], np.nan)
    actual = c.valid[idx]
    return _errors(c, pred, actual)


def _flat_errors(c: _Clean, origins: np.ndarray) -> np.ndarray:
    if len(origins) == 0:
        return np.empty((0, HORIZON_H))
    idx = origins[:, None] + np.arange(1, HORIZON_H + 1)[None, :]
    pred = np.repeat(c.filled[origins][:, None], HORIZON_H, axis=1)
    return _errors(c, pred, c.valid[idx])[0]


def _errors(c: _Clean, pred: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, float]:
    ok = np.isfinite(pred) & np.isfinite(actual)
    denom = np.abs(actual[ok]).sum()
    wape = float(np.abs(pred[ok] - actual[ok]).sum() / denom) if denom > 0 else math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        if c.positive:
            resid = np.log(actual) - np.log(pred)
        else:
            resid = actual - pred
    return resid, wape


def _fallback_band(c: _Clean, point: np.ndarray, resid: np.ndarray, cfg: ForecastConfig):
    lo, hi, n = _conformal(resid, cfg.interval_level, cfg.horizon_pool)
    if n >= 20 and np.isfinite(lo).all() and np.isfinite(hi).all():
        if c.positive:
            return point * np.exp(lo), point * np.exp(hi), ""
        return point + lo, point + hi, ""
    # Too few errors to calibrate: span the range seen in the recent valid history.
    recent = c.valid[-24 * 14:]
    recent = recent[np.isfinite(recent)]
    if len(recent):
        return (np.minimum(point, recent.min()), np.maximum(point, recent.max()),
                "interval spans the last two weeks' range (too few errors to calibrate)")
    return point.copy(), point.copy(), "no interval (no recent valid data)"
