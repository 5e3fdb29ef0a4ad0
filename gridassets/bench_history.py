"""The benchmark's history built in bulk: what one daily partition D reads, and nothing more.

Building history day by day through Dagster (every raw and feature asset of every day) took 50
minutes for 212 days at utility scale; at large scale (5,000 circuits, 200,000 transformers: 4.8 M
telemetry rows a day) it would take many hours. This build writes only what the measured
partition reads, and each piece the cheapest way:

- raw tables straight from the simulator into the warehouse, one day per write through the same
  write-audit-publish `publish` the IO manager uses (so the tables, types and publish log are
  what the raw assets would have made), days in order so that the simulator's threats reuse the
  clean readings of the days before:
  * circuit tables (feeder_load, weather_observations, weather_forecasts) and
    transformer_failures for the load forecast's regression window (`ForecastConfig.window_days`,
    a year and a week) before D: about 0.1 s a day at large scale;
  * transformer_telemetry only for the days the telemetry signals of the window below compare
    with (REPEAT_DAYS before its first day): 5-8 s a day at large scale, the costly part;
  * outage_events are not written: only the weekly models and the scores read them (see
    `plan`), and the simulator computes a whole day of transformer physics for them (7 s a day);
- derived assets through Dagster, in single-run ranges, only over the days D reads:
  telemetry_signals for its REFERENCE_DAYS before D (and for the anomaly model's training and
  holdout weeks before D's week), the integrity anomaly model of D's week, telemetry_integrity
  and the features for the 30 days before D (features.WINDOW_DAYS), and the load forecasts of the
  `forecast_warmup_days` before D (the forecast carries its state from day to day).

No Dagster materialization is recorded for the bulk-written raw days: the measured run needs none
(an asset's `require_inputs` looks for rows in the tables, not for events).

For growth over years (`build_points`, `--day` given twice) the raw tables hold every day
instead, transformer_telemetry included, as a warehouse in production would, and the derived
assets are built over the windows of each measured day in turn, with a copy of the warehouse and
instance kept before each but the last.

Run as a child of the benchmark: `python -m gridassets.bench_history --day D --start S
--forecast-warmup N --result PATH` (or `--day D1 --day D2 --snapshots DIR`) with the benchmark's
environment; it writes what it did and how long each phase took to PATH as JSON.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from gridassets.bench import _forecast_sources, _own_hwm_mb, _write_json_atomic

RUN_ID = "bench-history"  # the publish log's run id for the bulk-written raw days
CIRCUIT_TABLES = ("feeder_load", "weather_observations", "weather_forecasts",
                  "transformer_failures")
TELEMETRY_TABLES = ("transformer_telemetry",)
CIRCUIT_CHUNK_DAYS = 31


@dataclass(frozen=True)
class HistoryPlan:
    """The days each part of the history covers, all inclusive, all before `day`."""

    day: date
    circuit_first: date  # feeder load, weather, forecasts and failures from here to day - 1
    telemetry_first: date  # transformer telemetry from here
    signals_first: date  # telemetry_signals from here
    features_first: date  # telemetry_integrity and the features from here
    forecast_first: date | None  # load forecasts from here (None: none before D)
    integrity_week: date  # the week whose integrity model is trained

    @property
    def last(self) -> date:
        return self.day - timedelta(days=1)

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(self).items()}


def plan(start: date, day: date, forecast_warmup_days: int) -> HistoryPlan:
    """What partition `day` reads, never before `start` (the first daily partition)."""
    from gridassets.defs.forecasting.assets import CONFIG
    from gridassets.domain import features, integrity

    def clip(d: date) -> date:
        return max(d, start)

    week = day - timedelta(days=day.weekday())
    # The anomaly model of D's week learns from the signals of its training and holdout days;
    # D's own signals take references from the REFERENCE_DAYS before it.
    signals_first = min(day - timedelta(days=integrity.REFERENCE_DAYS),
                        week - timedelta(days=integrity.MODEL_HOLDOUT_DAYS
                                         + integrity.MODEL_TRAIN_DAYS))
    return HistoryPlan(
        day=day,
        circuit_first=clip(day - timedelta(days=CONFIG.window_days)),
        telemetry_first=clip(signals_first - timedelta(days=integrity.REPEAT_DAYS)),
        signals_first=clip(signals_first),
        features_first=clip(day - timedelta(days=features.WINDOW_DAYS)),
        forecast_first=(clip(day - timedelta(days=forecast_warmup_days))
                        if forecast_warmup_days > 0 else None),
        integrity_week=week,
    )


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def write_raw(settings, p: HistoryPlan, progress=print) -> dict[str, Any]:
    """The raw tables of the plan's days, from the simulator: telemetry one publish a day, the
    circuit tables one publish per table for up to CIRCUIT_CHUNK_DAYS days.
    Returns rows per table and the seconds spent simulating and writing."""
    import pandas as pd

    from gridassets.domain.fleet import FleetConfig, FleetSimulator
    from gridassets.domain.schemas import RAW_TABLES
    from gridassets.storage import publish
    from gridassets.storage.backend import open_warehouse

    specs = {s.name: s for s in RAW_TABLES}
    store = open_warehouse(settings)
    sim = FleetSimulator(FleetConfig(seed=settings.seed, n_circuits=settings.n_circuits,
                                     n_transformers=settings.n_transformers))
    rows = dict.fromkeys((*CIRCUIT_TABLES, *TELEMETRY_TABLES), 0)
    timing = {"simulate": 0.0, "write": 0.0}
    pending: dict[str, list] = {name: [] for name in CIRCUIT_TABLES}
    windows: list = []

    def write(name: str, frames: list, days_written: list) -> None:
        t0 = time.perf_counter()
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        store.publish(publish.Slice("raw", name, specs[name].stored_by,
                                    windows=tuple(days_written)), frame,
                      asset=name, run_id=RUN_ID)
        rows[name] += len(frame)
        timing["write"] += time.perf_counter() - t0

    days = _days(p.circuit_first, p.last)
    for day in days:
        t0 = time.perf_counter()
        for name in CIRCUIT_TABLES:
            pending[name].append(getattr(sim, name)(day))
        telemetry = (sim.transformer_telemetry(day) if day >= p.telemetry_first else None)
        t1 = time.perf_counter()
        timing["simulate"] += t1 - t0
        lo = datetime.combine(day, datetime.min.time())
        windows.append(publish.PartitionWindow(day.isoformat(), lo, lo + timedelta(days=1)))
        if telemetry is not None:
            write("transformer_telemetry", [telemetry], [windows[-1]])
            del telemetry
        # The circuit tables are small: one write per table for up to CIRCUIT_CHUNK_DAYS days
        # (a write per table and day would cost more than simulating them).
        if len(windows) == CIRCUIT_CHUNK_DAYS or day == p.last:
            for name in CIRCUIT_TABLES:
                write(name, pending[name], windows)
                pending[name] = []
            windows = []
        if day >= p.telemetry_first or day == p.last:
            progress(f"    raw {day}: simulated {t1 - t0:5.2f} s, written "
                     f"{time.perf_counter() - t1:5.2f} s; peak RSS {(_own_hwm_mb() or 0.0):,.0f} MB")
    simulate_s, write_s = timing["simulate"], timing["write"]
    return {"days": len(days), "rows": rows, "simulate_seconds": round(simulate_s, 1),
            "write_seconds": round(write_s, 1)}


class _Phases:
    """The phases of a build, timed: Dagster materializations in this process's instance and
    plain functions."""

    def __init__(self, progress) -> None:
        from gridassets import runner

        self.progress = progress
        self.instance = runner.instance()
        self.phases: list[dict[str, Any]] = []

    def timed(self, label: str, fn) -> Any:
        t0 = time.monotonic()
        out = fn()
        seconds = time.monotonic() - t0
        self.phases.append({"phase": label, "seconds": round(seconds, 1),
                            "peak_rss_mb": round((_own_hwm_mb() or 0.0), 1)})
        self.progress(f"  {label:<58} {seconds:7.1f} s")
        return out

    def dagster(self, select: str, first: date | None = None, last: date | None = None,
                partition: str | None = None):
        from gridassets import runner
        from gridassets.definitions import defs

        def run():
            if first is None:
                return runner.materialize(defs, select, partition=partition,
                                          dagster_instance=self.instance, log_level="ERROR")
            for a, b in runner.chunks(first, last, runner.chunk_days()):
                runner.materialize(defs, select, start=a.isoformat(), end=b.isoformat(),
                                   dagster_instance=self.instance, log_level="ERROR")
        return run

    def derived(self, p: HistoryPlan) -> None:
        """The derived assets partition `p.day` reads, through Dagster, over just their days."""
        from gridassets import runner
        from gridassets.definitions import defs

        self.timed(f"telemetry_signals {p.signals_first}..{p.last}",
                   self.dagster(runner.SIGNALS, p.signals_first, p.last))
        self.timed(f"integrity_model, week {p.integrity_week}",
                   self.dagster(runner.INTEGRITY_MODEL, partition=p.integrity_week.isoformat()))
        self.timed(f"integrity and features {p.features_first}..{p.last}",
                   self.dagster(runner.JUDGED_FEATURES, p.features_first, p.last))
        if p.forecast_first is not None:
            forecasting = _forecast_sources(defs)
            if forecasting:
                self.timed(f"load forecasts {p.forecast_first}..{p.last}",
                           self.dagster(",".join(forecasting), p.forecast_first, p.last))

    def result(self, **extra) -> dict[str, Any]:
        return {**extra, "phases": self.phases,
                "seconds": round(sum(ph["seconds"] for ph in self.phases), 1),
                "peak_rss_mb": round((_own_hwm_mb() or 0.0), 1)}


def build(settings, p: HistoryPlan, progress=print) -> dict[str, Any]:
    """The whole history of the plan: the registry and derived assets through Dagster, the raw
    tables in bulk. Returns seconds per phase and the peak memory of this process."""
    from gridassets import runner

    phases = _Phases(progress)
    phases.timed("fleet registry", phases.dagster(runner.FLEET))
    raw = phases.timed(f"raw {p.circuit_first}..{p.last} in bulk (telemetry from "
                       f"{p.telemetry_first})", lambda: write_raw(settings, p, progress))
    gc.collect()
    phases.derived(p)
    return phases.result(plan=p.as_dict(), raw=raw)


def build_points(settings, start: date, days: list[date], forecast_warmup_days: int,
                 snapshot, progress=print) -> dict[str, Any]:
    """History for growth over long spans: for each measured day in turn (ascending), every raw
    table of every day before it (transformer_telemetry included, so the tables hold the whole
    span, as a warehouse in production does), the derived assets over the windows that day reads
    (`plan`), then `snapshot(day)`, which keeps a copy of the warehouse and instance as they are.
    outage_events are left out, as in `build`: only the models and scores read them.
    Returns seconds per phase and the peak memory of this process."""
    from dataclasses import replace

    from gridassets import runner

    phases = _Phases(progress)
    phases.timed("fleet registry", phases.dagster(runner.FLEET))
    raw_first = start
    raws = []
    for day in days:
        p = plan(start, day, forecast_warmup_days)
        span = replace(p, circuit_first=raw_first, telemetry_first=raw_first)
        raws.append(phases.timed(f"raw {raw_first}..{p.last} in bulk, every table",
                                 lambda span=span: write_raw(settings, span, progress)))
        gc.collect()
        phases.derived(p)
        phases.timed(f"copy of the history before {day}", lambda day=day: snapshot(day))
        raw_first = day
    return phases.result(days=[d.isoformat() for d in days], raw=raws)


def main(argv: list[str] | None = None) -> int:
    import shutil

    from gridassets.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m gridassets.bench_history")
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--day", type=date.fromisoformat, action="append", required=True,
                        help="the measured day; given twice or more, the history of each in turn "
                             "(`build_points`), a copy of each but the last under --snapshots")
    parser.add_argument("--forecast-warmup", type=int, required=True)
    parser.add_argument("--snapshots", type=Path,
                        help="where the copies go: <snapshots>/history-<days>d/{data,dagster_home}")
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = Settings.from_env()

    def progress(line: str) -> None:
        print(line, flush=True)

    if len(args.day) == 1:
        result = build(settings, plan(args.start, args.day[0], args.forecast_warmup), progress)
    else:
        if args.snapshots is None:
            parser.error("--snapshots is needed with more than one --day")
        days = sorted(args.day)
        home = Path(os.environ["DAGSTER_HOME"])

        def snapshot(day: date) -> None:
            if day == days[-1]:
                return  # the last day is measured in the build's own folder
            folder = args.snapshots / f"history-{(day - args.start).days}d"
            if folder.exists():
                shutil.rmtree(folder)
            shutil.copytree(settings.data_dir, folder / "data")
            shutil.copytree(home, folder / "dagster_home")

        result = build_points(settings, args.start, days, args.forecast_warmup, snapshot,
                              progress)
    _write_json_atomic(args.result, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
