"""Day-ahead forecasts on real EIA-930 demand, compared with the grid operator's own forecast.

The `gridshedwatch` package ships hourly EIA-930 data per balancing authority (BA): demand `D`,
the operator's day-ahead demand forecast `DF` and net generation `NG`, in MW, hourly UTC. Each BA
becomes one circuit: its demand is written as landing files `<landing>/feeder_load/<day>.csv`
(circuit_id, timestamp, load_mw), read back through the project's landing reader, and forecast
with the same code the daily asset runs (`backtest` over `forecast_day_ahead`). The operator's `DF`
and the seasonal-naive baselines are scored on the same target hours.

Real-data quirks: hours the source lacks are simply absent from the landing files (the forecast
treats them as gaps); zeros and spikes in `D` are landed as they are, so the forecast's own
cleaning has to deal with them; timestamps are UTC, so there is no daylight-saving jump.

Origins (issue days, each forecasting the next UTC day): every 5th day of 2025 from 2025-01-03,
73 days that cycle through every weekday and every month. They were fixed before looking at any
2025 result; the model's settings were chosen on 2024. Use only ERCO and CISO while developing; the
other six BAs in the package are kept for independent evaluation.

    python -m gridassets.evaluation.eia                 # ERCO and CISO, the 73 origins
    python -m gridassets.evaluation.eia --every 1       # every day of 2025
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from gridassets.domain.backtest import BacktestResult, backtest
from gridassets.domain.forecasting import ForecastConfig
from gridassets.domain.landing import read_daily
from gridassets.domain.schemas import FEEDER_LOAD

DEVELOPMENT_BAS = ("ERCO", "CISO")
SNAPSHOT = "snapshot_v1.0/eia930"


def default_origins(year: int = 2025, every: int = 5, first: date | None = None) -> list[date]:
    """Every `every`-th day of `year`, from Jan 3 (or `first`) to Dec 30 (so D+1 is in the year)."""
    day = first or date(year, 1, 3)
    last = date(year, 12, 30)
    out = []
    while day <= last:
        out.append(day)
        day += timedelta(days=every)
    return out


def read_eia(ba: str) -> pd.DataFrame:
    """The BA's hourly series from the installed gridshedwatch package.

    Returns columns timestamp (naive UTC), D, DF, NG (MW, NaN where absent), sorted, one row per
    hour present in the file. Raises FileNotFoundError for an unknown BA.
    """
    ref = resources.files("gridshedwatch").joinpath(SNAPSHOT, f"{ba}.csv.gz")
    if not ref.is_file():
        raise FileNotFoundError(f"gridshedwatch has no EIA-930 file for {ba!r} ({ref})")
    with ref.open("rb") as fh:
        raw = pd.read_csv(fh, compression="gzip")
    ts = pd.to_datetime(raw["period_utc"], format="%Y-%m-%dT%H", errors="coerce")
    out = pd.DataFrame({"timestamp": ts})
    for c in ("D", "DF", "NG"):
        out[c] = pd.to_numeric(raw[c], errors="coerce") if c in raw else np.nan
    out = out.dropna(subset=["timestamp"])
    # The source has occasional repeated hours; keep one value per hour.
    return out.groupby("timestamp", as_index=False).mean().sort_values("timestamp")


def write_landing(series: dict[str, pd.DataFrame], landing_dir: Path, days: Iterable[date]) -> None:
    """Write `<landing>/feeder_load/<day>.csv` for each day: the demand `D` of each BA (circuit).

    Hours without a finite demand are left out (the landing contract has no empty load values).
    """
    folder = Path(landing_dir) / FEEDER_LOAD.name
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for ba, df in series.items():
        d = df[np.isfinite(df["D"])]
        frames.append(pd.DataFrame({"circuit_id": ba, "timestamp": d["timestamp"],
                                    "load_mw": d["D"]}))
    allrows = pd.concat(frames, ignore_index=True)
    allrows["day"] = allrows["timestamp"].dt.date
    by_day = dict(tuple(allrows.groupby("day")))
    for day in days:
        part = by_day.get(day, allrows.iloc[0:0])
        text = part.assign(timestamp=part["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
        path = folder / f"{day.isoformat()}.csv"
        tmp = path.with_suffix(".tmp")
        text[["circuit_id", "timestamp", "load_mw"]].to_csv(tmp, index=False)
        tmp.replace(path)


def read_landing(landing_dir: Path, days: Iterable[date]) -> pd.DataFrame:
    """Concatenate the feeder_load landing files of `days` through the project's reader."""
    frames = [read_daily(FEEDER_LOAD, Path(landing_dir), day) for day in days]
    return pd.concat(frames, ignore_index=True)


def evaluate_eia(
    bas: Sequence[str] = DEVELOPMENT_BAS,
    origins: Sequence[date] | None = None,
    workdir: Path | str | None = None,
    config: ForecastConfig = ForecastConfig(),
) -> pd.DataFrame:
    """Backtest each BA through the landing path and compare with the operator's forecast.

    Returns one row per BA: origins, hours scored, MAPE of the project, the operator's DF and the
    naive previous-day and previous-week forecasts (all on the same target hours: where the
    actual, DF and both baselines exist), the project/operator MAPE ratio, RMSE, interval coverage
    and level, and the share of substituted rows. The backtests are in `.attrs["results"]`.
    """
    origins = sorted(origins or default_origins())
    days_needed = _days(origins[0] - timedelta(days=config.window_days + 1),
                        origins[-1] + timedelta(days=1))
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="gridassets-eia-") as tmp:
            return _evaluate(bas, origins, Path(tmp), config, days_needed)
    return _evaluate(bas, origins, Path(workdir), config, days_needed)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _evaluate(bas, origins, workdir: Path, config, days_needed) -> pd.DataFrame:
    series = {ba: read_eia(ba) for ba in bas}
    landing = workdir / "landing"
    write_landing(series, landing, days_needed)
    load = read_landing(landing, days_needed)
    rows = []
    results: dict[str, BacktestResult] = {}
    for ba in bas:
        res = backtest(load[load["circuit_id"] == ba], origins, config=config)
        results[ba] = res
        fc = res.forecasts
        op = series[ba].set_index("timestamp")["DF"]
        fc = fc.assign(operator_mw=op.reindex(fc["target_ts"]).to_numpy(float))
        s = fc[fc["scored"] & np.isfinite(fc["operator_mw"]) & (fc["actual_mw"] > 0)]
        a = s["actual_mw"].to_numpy()

        def mape(col: str) -> float:
            return float(np.mean(np.abs(s[col].to_numpy() - a) / a) * 100)

        inside = (s["lower_mw"] <= s["actual_mw"]) & (s["actual_mw"] <= s["upper_mw"])
        m_proj, m_op = mape("load_mw"), mape("operator_mw")
        rows.append({
            "ba": ba,
            "origins": int(s["issue_date"].nunique()),
            "hours": int(len(s)),
            "mape_project": m_proj,
            "mape_operator": m_op,
            "mape_prev_day": mape("naive_prev_day_mw"),
            "mape_prev_week": mape("naive_prev_week_mw"),
            "ratio_to_operator": m_proj / m_op,
            "rmse_project": float(np.sqrt(np.mean((s["load_mw"].to_numpy() - a) ** 2))),
            "rmse_operator": float(np.sqrt(np.mean((s["operator_mw"].to_numpy() - a) ** 2))),
            "coverage": float(inside.mean() * 100),
            "interval_level": float(config.interval_level * 100),
            "substituted_share": float(s["substituted"].mean()),
        })
        results[ba].forecasts = fc
    table = pd.DataFrame(rows)
    table.attrs["results"] = results
    return table


def format_table(table: pd.DataFrame) -> str:
    """The evaluation table as fixed-width text."""
    cols = ["ba", "origins", "hours", "mape_project", "mape_operator", "mape_prev_day",
            "mape_prev_week", "ratio_to_operator", "coverage", "interval_level",
            "substituted_share"]
    heads = ["BA", "origins", "hours", "MAPE project %", "MAPE operator DF %",
             "MAPE naive prev-day %", "MAPE naive prev-week %", "project/operator",
             "coverage %", "nominal %", "substituted"]
    out = table[cols].copy()
    out.columns = heads
    return out.to_string(index=False, float_format=lambda v: f"{v:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the EIA-930 evaluation table; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m gridassets.evaluation.eia",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--bas", default=",".join(DEVELOPMENT_BAS),
                        help="comma-separated balancing authorities (default: ERCO,CISO)")
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--every", type=int, default=5, help="days between origins (default 5)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the landing files go (default: a temporary folder)")
    args = parser.parse_args(argv)
    bas = tuple(b.strip().upper() for b in args.bas.split(",") if b.strip())
    origins = default_origins(args.year, args.every)
    table = evaluate_eia(bas, origins, args.workdir)
    print(f"EIA-930 day-ahead evaluation, {len(origins)} origins in {args.year} "
          f"({origins[0]} .. {origins[-1]}, every {args.every} d); issue at D 23:00 UTC, "
          f"targets D+1 00:00..23:00 UTC")
    print(format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
