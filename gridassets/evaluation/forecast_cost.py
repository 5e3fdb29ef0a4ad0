"""Wall time and memory of one daily `forecast_day_ahead` call for a fleet of synthetic circuits.

Three days are measured per fleet size, each in a fresh process so that peak memory is its own:
- refit:   no stored models, every circuit is fitted (a cold start; the worst day);
- extend:  every circuit reuses yesterday's parameters and only runs the Kalman filter;
- typical: a steady-state day with staggered refits (about 1/7 of the circuits refit);
- intraday: one hour of the intraday refresh (`gridassets.domain.intraday`, cutoff 14:00 of the
  next day) from the models the refit left: the next 24 hours of every circuit, no refit.
The circuits are synthetic (built here, independent of the fleet simulator): hourly load with a
daily, weekly and annual shape, heating and cooling response to a temperature series, noise, and a
few gaps and spikes; each call gets the full window of load and temperature it would get from the
warehouse (`ForecastConfig.window_days`).

    python -m gridassets.evaluation.forecast_cost                 # 50 and 500 circuits
    python -m gridassets.evaluation.forecast_cost --circuits 50
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ISSUE_DAY = date(2025, 6, 30)
MODES = ("refit", "extend", "typical", "intraday")


def synthetic_fleet(n_circuits: int, first_day: date, last_day: date, seed: int = 7
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hourly (load, temperature) frames for `n_circuits` circuits, first_day..last_day inclusive.

    Load in MW with daily, weekly and annual shape and temperature sensitivity; temperature in
    degrees C per circuit (a shared regional signal plus a local one). Deterministic in `seed`.
    """
    rng = np.random.default_rng(seed)
    hours = pd.date_range(pd.Timestamp(first_day), pd.Timestamp(last_day) + pd.Timedelta(hours=23),
                          freq="h")
    n = len(hours)
    doy = hours.dayofyear.to_numpy()
    hod = hours.hour.to_numpy()
    dow = hours.dayofweek.to_numpy()
    season = -np.cos(2 * np.pi * (doy - 15) / 365.25)  # -1 mid-January, +1 mid-July
    regional = np.zeros(n)
    shocks = rng.standard_normal(n) * 0.35
    for i in range(1, n):
        regional[i] = 0.995 * regional[i - 1] + shocks[i]
    base_temp = 14 + 11 * season + 5 * np.sin(2 * np.pi * (hod - 15) / 24) + regional
    ids = [f"C{i:04d}" for i in range(n_circuits)]
    load_cols, temp_cols = [], []
    for _ in ids:
        temp = base_temp + rng.normal(0, 1.0) + 0.8 * rng.standard_normal(n)
        level = rng.uniform(2, 20)
        daily = (1 + 0.18 * np.sin(2 * np.pi * (hod - 13) / 24)
                 + 0.08 * np.sin(4 * np.pi * (hod - 17) / 24))
        weekly = np.where(dow >= 5, 1 - rng.uniform(0.05, 0.2), 1.0)
        heat = rng.uniform(0.01, 0.03) * np.maximum(15 - temp, 0)
        cool = rng.uniform(0.01, 0.04) * np.maximum(temp - 21, 0)
        noise = 1 + 0.02 * rng.standard_normal(n)
        y = level * daily * weekly * (1 + heat + cool) * noise
        gaps = rng.integers(0, n, 3)
        for g in gaps:
            y[g:g + rng.integers(1, 5)] = np.nan
        y[rng.integers(0, n, 2)] *= 4  # telemetry spikes
        load_cols.append(y)
        temp_cols.append(np.round(temp, 1))
    cid = np.repeat(np.array(ids, dtype=object), n)
    ts = np.tile(hours.to_numpy(), n_circuits)
    load = pd.DataFrame({"circuit_id": cid, "timestamp": ts, "load_mw": np.concatenate(load_cols)})
    load = load[np.isfinite(load["load_mw"])].reset_index(drop=True)
    temperature = pd.DataFrame({"circuit_id": cid, "timestamp": ts,
                                "temp_c": np.concatenate(temp_cols)})
    return load, temperature


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _RssSampler:
    """Highest resident set size seen while active (the process peak would include the data
    generation before the call, so it is sampled instead)."""

    def __init__(self, every_s: float = 0.005):
        self.every_s = every_s
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(self.every_s)

    def __enter__(self) -> _RssSampler:
        self.peak = _rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _worker(n: int, mode: str, state_path: Path) -> dict:
    from dataclasses import replace

    from gridassets.domain import intraday
    from gridassets.domain.forecasting import FittedModel, ForecastConfig, forecast_day_ahead

    config = ForecastConfig()
    day = ISSUE_DAY if mode == "refit" else ISSUE_DAY + timedelta(days=1)
    load, temp = synthetic_fleet(n, day - timedelta(days=config.window_days), day)
    fitted = None
    if mode != "refit":
        fitted = {k: FittedModel.from_json(v)
                  for k, v in json.loads(state_path.read_text()).items()}
        if mode == "extend":
            config = replace(config, stagger_refits=False)
    baseline = _rss_mb()
    with _RssSampler() as rss:
        t0 = time.perf_counter()
        if mode == "intraday":
            out = intraday.forecast_intraday(
                load, pd.Timestamp(day) + pd.Timedelta(hours=14), fitted, temperature=temp,
                models_of=ISSUE_DAY)
            out["substituted"] = out["method"] != intraday.METHOD_KALMAN
            models = {}
        else:
            out, models = forecast_day_ahead(load, day, temperature=temp, fitted=fitted,
                                             config=config)
        seconds = time.perf_counter() - t0
    peak = rss.peak
    if mode == "refit":
        state_path.write_text(json.dumps({k: m.to_json() for k, m in models.items()}))
    refitted = sum(1 for m in models.values() if m.checked_on == day)
    return {
        "circuits": n, "mode": mode, "seconds": round(seconds, 2),
        "per_circuit_ms": round(1000 * seconds / n, 1),
        "refitted": refitted, "rows": len(out),
        "substituted": int(out.groupby("circuit_id")["substituted"].first().sum()),
        "input_rows": len(load), "rss_before_mb": round(baseline, 1),
        "peak_rss_in_call_mb": round(peak, 1),
        "call_increase_mb": round(max(peak - baseline, 0), 1),
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def measure(sizes: Sequence[int] = (50, 500)) -> pd.DataFrame:
    """Run each (size, mode) in its own process; returns one row per measurement."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="gridassets-cost-") as tmp:
        for n in sizes:
            state = Path(tmp) / f"state-{n}.json"
            for mode in MODES:
                proc = subprocess.run(
                    [sys.executable, "-m", "gridassets.evaluation.forecast_cost", "--worker",
                     "--circuits", str(n), "--mode", mode, "--state", str(state)],
                    capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    raise RuntimeError(f"cost run {n}/{mode} failed:\n{proc.stderr[-3000:]}")
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the cost table (or, with --worker, run one measurement and print it as JSON)."""
    parser = argparse.ArgumentParser(prog="python -m gridassets.evaluation.forecast_cost",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--circuits", default="50,500", help="fleet sizes, comma-separated")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(int(args.circuits), args.mode, args.state)))
        return 0
    sizes = [int(v) for v in args.circuits.split(",") if v.strip()]
    table = measure(sizes)
    print(f"One daily forecast_day_ahead call (issue day {ISSUE_DAY}, synthetic circuits with "
          "temperature); each row a fresh process")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
