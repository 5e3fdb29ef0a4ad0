"""Rolling-origin day-ahead backtest of `forecast_day_ahead` against seasonal-naive baselines.

The backtest replays production: origins run in date order and each call receives the models the
previous call returned, so refits, staggering, the replacement guard and the fallbacks behave as
they would in the daily asset. Each call is given the whole `load` frame; the forecast function
itself drops everything after the origin's 23:00 cutoff.

Baselines for the same target hours: the load of the same hour on the previous day (naive
previous-day) and on the same weekday a week before (naive previous-week), both as observed (raw).

Metrics are computed on the target hours where the actual and both baselines are known:
- MAPE (%) over hours with a positive actual (a percentage of zero or reverse flow means nothing);
- RMSE (MW); WAPE (%, sum of absolute errors over sum of absolute actuals);
- interval coverage (% of hours with lower_mw <= actual <= upper_mw) against the nominal level;
- skill = 1 - MAPE(project) / MAPE(baseline), per baseline (positive: better than the baseline).
Overall figures pool every hour of every circuit (RMSE is then dominated by large circuits).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from gridassets.domain.forecasting import (
    ForecastConfig,
    FittedModel,
    _as_date,
    forecast_day_ahead,
)
from gridassets.domain.quality import MAX_EXAMPLES, CheckOutcome

# The columns of stored forecasts that `score` reads (the model text and notes would make a read
# of the load_forecast table ten times bigger).
SCORED_COLUMNS = ["circuit_id", "issue_date", "target_ts", "horizon_h", "load_mw", "lower_mw",
                  "upper_mw", "method", "substituted"]

METRIC_COLUMNS = [
    "circuit_id", "hours", "origins", "mape", "rmse", "wape", "coverage",
    "mape_prev_day", "rmse_prev_day", "mape_prev_week", "rmse_prev_week",
    "skill_prev_day", "skill_prev_week", "substituted_share",
]


@dataclass
class BacktestResult:
    """Forecasts joined with actuals and baselines, and the metrics computed from them.

    `forecasts` has the forecast columns plus actual_mw, naive_prev_day_mw, naive_prev_week_mw
    and `scored` (the hour counts in the metrics). `per_circuit` has METRIC_COLUMNS; `overall`
    the same figures pooled over all circuits plus counts and the share of each method.
    """

    forecasts: pd.DataFrame
    per_circuit: pd.DataFrame
    overall: dict
    interval_level: float
    origins: list[date]
    fitted: dict[str, FittedModel] = field(default_factory=dict)

    def metadata(self) -> dict:
        """A JSON-ready summary for asset metadata (overall figures and a per-circuit table)."""
        per = self.per_circuit.copy()
        for c in per.columns:
            if pd.api.types.is_float_dtype(per[c]):
                per[c] = per[c].round(4)
        return {
            "interval_level": self.interval_level,
            "origins": [d.isoformat() for d in self.origins],
            "overall": {k: (round(v, 4) if isinstance(v, float) else v)
                        for k, v in self.overall.items()},
            "per_circuit": per.astype(object).where(per.notna(), None).to_dict("records"),
        }


def backtest(
    load: pd.DataFrame,
    origins: Iterable[date],
    *,
    temperature: pd.DataFrame | None = None,
    config: ForecastConfig = ForecastConfig(),
    fitted: Mapping[str, FittedModel] | None = None,
    circuits: Iterable[str] | None = None,
    forecast_temperature: pd.DataFrame | None = None,
) -> BacktestResult:
    """Run day-ahead forecasts from each origin (issue day) and score them.

    Takes `load` (circuit_id, timestamp, load_mw) covering the history before the first origin and
    the target days after the last; `origins` are issue days (each forecasts the next day);
    `temperature`, `forecast_temperature`, `config`, `circuits` as for `forecast_day_ahead`; `fitted` optional starting
    models. Returns a BacktestResult. Raises ValueError when `origins` is empty or a column is
    missing.
    """
    days = sorted({_as_date(d) for d in origins})
    if not days:
        raise ValueError("backtest needs at least one origin")
    for c in ("circuit_id", "timestamp", "load_mw"):
        if c not in load.columns:
            raise ValueError(f"load frame lacks column {c}")
    observed = _observed(load)
    tts = None
    if temperature is not None:
        tts = pd.to_datetime(temperature["timestamp"], errors="coerce", utc=True)
        tts = tts.dt.tz_localize(None)
    state = dict(fitted or {})
    parts = []
    for day in days:
        lo = pd.Timestamp(day) - pd.Timedelta(days=config.window_days + 1)
        hi = pd.Timestamp(day) + pd.Timedelta(days=2)
        # Only a speed-up: the forecast function ignores everything after the cutoff anyway.
        window = load[(observed["ts"] >= lo) & (observed["ts"] < hi)]
        temp = None
        if temperature is not None:
            temp = temperature[(tts >= lo) & (tts < hi)]
        fc = None
        if forecast_temperature is not None:
            fts = pd.to_datetime(forecast_temperature["timestamp"])
            fc = forecast_temperature[(fts >= lo) & (fts < hi)]
        out, state = forecast_day_ahead(window, day, temperature=temp, fitted=state,
                                        config=config, circuits=circuits, forecast_temperature=fc)
        parts.append(out)
    return score(pd.concat(parts, ignore_index=True), load, float(config.interval_level),
                 fitted=state)


def score(forecasts: pd.DataFrame, load: pd.DataFrame, interval_level: float,
          fitted: Mapping[str, FittedModel] | None = None) -> BacktestResult:
    """Score day-ahead forecasts already made (FORECAST_COLUMNS rows, e.g. the stored
    load_forecast table) against the observed `load` and the seasonal-naive baselines.

    `load` must cover the target hours and the week before them (for the baselines).
    """
    fc = forecasts.copy()
    fc["target_ts"] = pd.to_datetime(fc["target_ts"])
    fc = _attach_actuals(fc, _observed(load))
    per = pd.DataFrame([_metrics(g, cid) for cid, g in fc.groupby("circuit_id", sort=True)],
                       columns=METRIC_COLUMNS)
    overall = _metrics(fc, None)
    overall.pop("circuit_id")
    overall["circuits"] = int(fc["circuit_id"].nunique())
    overall["interval_level"] = float(interval_level)
    overall["methods"] = {k: int(v) for k, v in fc["method"].value_counts().sort_index().items()}
    days = sorted({_as_date(d) for d in pd.unique(fc["issue_date"])})
    return BacktestResult(fc, per, overall, float(interval_level), days, dict(fitted or {}))


# Blocking check of the stored backtest rows, by name (the asset check's name).
BACKTEST_CHECKS = {
    "scored_days": "Every day with stored forecasts to look back on has its overall row (ALL) "
                   "with scored hours and finite MAPE, RMSE and coverage.",
}


def audit_backtest(frame: pd.DataFrame, days: Iterable[date]) -> dict[str, CheckOutcome]:
    """BACKTEST_CHECKS on backtest rows (date, circuit_id and METRIC_COLUMNS, one overall row per
    day with circuit_id "ALL") that must score each of `days`. Returns one CheckOutcome per
    check."""
    days = sorted({_as_date(d) for d in days})
    problems = []
    overall = frame[frame["circuit_id"] == "ALL"] if len(frame) else frame
    by_day = {_as_date(d): row for d, row in zip(overall.get("date", []), overall.itertuples())}
    valueless = []
    for day in days:
        row = by_day.get(day)
        if row is None:
            problems.append(f"{day}: no overall row")
            continue
        bad = [m for m in ("mape", "rmse", "coverage")
               if not math.isfinite(float(getattr(row, m)))]
        if not getattr(row, "hours") > 0:
            # Every forecast was a `no_data` fallback (too little history): nothing to score is
            # the truth about that day, and its row says so with zero hours.
            valueless.append(day)
        elif bad:
            problems.append(f"{day}: {', '.join(bad)} not finite")
    if not days:
        summary = "no day had earlier forecasts to score (the start of forecast history)"
    elif not problems:
        summary = f"{len(days) - len(valueless)} day(s) scored" + (
            f"; {len(valueless)} day(s) whose forecasts had no value (no_data: too little "
            "history), scored over 0 hours" if valueless else "")
    else:
        summary = f"{len(problems)} of {len(days)} day(s) not scored: {problems[0]}"
    return {"scored_days": CheckOutcome(
        not problems, summary,
        {"days": [d.isoformat() for d in days], "examples": problems[:MAX_EXAMPLES]})}


def _observed(load: pd.DataFrame) -> pd.DataFrame:
    ts = pd.to_datetime(load["timestamp"], errors="coerce", utc=True).dt.tz_localize(None)
    return pd.DataFrame({
        "circuit_id": load["circuit_id"].astype(str).to_numpy(),
        "ts": ts.to_numpy(),
        "v": pd.to_numeric(load["load_mw"], errors="coerce").to_numpy(float),
    }, index=load.index)


def _attach_actuals(fc: pd.DataFrame, observed: pd.DataFrame) -> pd.DataFrame:
    obs = observed.dropna(subset=["ts"]).copy()
    obs["ts"] = obs["ts"].dt.floor("h")
    series = obs.groupby(["circuit_id", "ts"])["v"].mean()
    out = fc.copy()
    for name, shift in (("actual_mw", 0), ("naive_prev_day_mw", 24), ("naive_prev_week_mw", 168)):
        keys = pd.MultiIndex.from_arrays(
            [out["circuit_id"], out["target_ts"] - pd.Timedelta(hours=shift)])
        out[name] = series.reindex(keys).to_numpy(float)
    out["scored"] = (np.isfinite(out["actual_mw"]) & np.isfinite(out["naive_prev_day_mw"])
                     & np.isfinite(out["naive_prev_week_mw"]))
    return out


def _mape(pred: np.ndarray, actual: np.ndarray) -> float:
    ok = actual > 0
    if not ok.any():
        return math.nan
    return float(np.mean(np.abs(pred[ok] - actual[ok]) / actual[ok]) * 100)


def _rmse(pred: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - actual) ** 2))) if len(actual) else math.nan


def _metrics(g: pd.DataFrame, cid: str | None) -> dict:
    s = g[g["scored"]]
    a = s["actual_mw"].to_numpy(float)
    p = s["load_mw"].to_numpy(float)
    pd_ = s["naive_prev_day_mw"].to_numpy(float)
    pw = s["naive_prev_week_mw"].to_numpy(float)
    denom = np.abs(a).sum()
    mape = _mape(p, a)
    m_pd, m_pw = _mape(pd_, a), _mape(pw, a)
    cover = ((s["lower_mw"] <= s["actual_mw"]) & (s["actual_mw"] <= s["upper_mw"])).to_numpy()
    return {
        "circuit_id": cid,
        "hours": int(len(s)),
        "origins": int(s["issue_date"].nunique()),
        "mape": mape,
        "rmse": _rmse(p, a),
        "wape": float(np.abs(p - a).sum() / denom * 100) if denom > 0 else math.nan,
        "coverage": float(cover.mean() * 100) if len(s) else math.nan,
        "mape_prev_day": m_pd,
        "rmse_prev_day": _rmse(pd_, a),
        "mape_prev_week": m_pw,
        "rmse_prev_week": _rmse(pw, a),
        "skill_prev_day": 1 - mape / m_pd if m_pd and math.isfinite(m_pd) else math.nan,
        "skill_prev_week": 1 - mape / m_pw if m_pw and math.isfinite(m_pw) else math.nan,
        "substituted_share": float(g["substituted"].mean()) if len(g) else math.nan,
    }


def plot_forecast(forecasts: pd.DataFrame, actuals: pd.DataFrame, circuit_id: str) -> bytes:
    """PNG of one circuit's forecasts (line and interval band) against the actual load.

    Takes forecast rows (target_ts, load_mw, lower_mw, upper_mw; several issue days are fine) and
    actuals as a load frame (circuit_id, timestamp, load_mw). Returns PNG bytes. Raises
    ValueError when the circuit has no forecast rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = forecasts[forecasts["circuit_id"].astype(str) == str(circuit_id)].sort_values("target_ts")
    if f.empty:
        raise ValueError(f"no forecast rows for circuit {circuit_id!r}")
    a = actuals[actuals["circuit_id"].astype(str) == str(circuit_id)].copy()
    a["timestamp"] = pd.to_datetime(a["timestamp"], utc=True).dt.tz_localize(None)
    t0, t1 = f["target_ts"].min(), f["target_ts"].max()
    a = a[(a["timestamp"] >= t0 - pd.Timedelta(hours=24)) & (a["timestamp"] <= t1)]
    a = a.groupby("timestamp")["load_mw"].mean()
    level = f["interval_level"].iloc[0] if "interval_level" in f else None
    fig, ax = plt.subplots(figsize=(9, 3.2))
    # One band per issue day, so that gaps between non-consecutive origins are not bridged.
    for i, (_, g) in enumerate(f.groupby("issue_date", sort=True)):
        ax.fill_between(g["target_ts"], g["lower_mw"], g["upper_mw"], color="#3b6ea5", alpha=0.25,
                        linewidth=0, label=(f"{level:.0%} interval" if level and i == 0 else None))
        ax.plot(g["target_ts"], g["load_mw"], color="#3b6ea5", linewidth=1.2,
                label="forecast" if i == 0 else None)
    ax.plot(a.index, a.to_numpy(), color="black", linewidth=0.9, label="actual")
    scored = f.merge(a.rename("actual").reset_index(), left_on="target_ts", right_on="timestamp")
    title = f"{circuit_id}: day-ahead forecast vs actual"
    if len(scored) and (scored["actual"] > 0).any():
        ok = scored["actual"] > 0
        mape = float(np.mean(np.abs(scored.loc[ok, "load_mw"] - scored.loc[ok, "actual"])
                             / scored.loc[ok, "actual"]) * 100)
        title += f" (MAPE {mape:.1f} %)"
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("MW")
    ax.legend(fontsize=8, loc="upper left")
    ax.tick_params(labelsize=8)
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
