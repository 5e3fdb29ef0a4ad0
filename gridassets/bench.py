"""`make bench`: speed and memory of one daily partition of the graph, and how its cost grows.

The benchmark works in its own folder (`<data dir>/bench/<scale>/`: a warehouse, models and a
`DAGSTER_HOME` of its own), so it never touches the user's warehouse or run history. It

1. builds history on the synthetic fleet: the registry, then raw data and features day after day
   from the first daily partition, the weekly models of the measured day's week, and the four
   weeks of load forecasts before each measured day (the forecast carries its state from day to
   day, and its backtest reads four weeks), so that every daily asset has what it reads; on the
   way it keeps a copy of the warehouse and instance with exactly 7 and exactly 90 days of history;
2. measures the whole daily partition D (groups raw, integrity, features, forecasting and scores)
   end to end in a fresh process: wall seconds per asset from the run's event log (step start to
   step success, the write included), rows from the materialization metadata, and memory by sampling the
   process's resident set (/proc/<pid>/status) every 20 ms from outside it: the peak during each
   step, and the whole-process peak (VmHWM, the high-water mark of its resident set);
3. runs the same partition again through the Dagster CLI (`dagster asset materialize`), measured the
   same way;
4. measures growth with history: partitions start+7, start+90 and D, each with exactly the history
   before it (the copies), raw, integrity, features and forecasting only (the scores need the
   weekly models, which need ~200 days), each in a fresh process, three times turn about;
   `incremental_ratio` = seconds(90 days) / seconds(7 days), the sum over those steps of each
   step's fastest run;
5. computes the transformer health features of D and its 30-day window from raw telemetry twice:
   with the project's DuckDB SQL and with plain pandas (`gridassets.bench_pandas`), checks that
   they are equal, and reports both timings;
6. at utility scale (or with --long-growth), measures growth over years (`growth_ratio_2y_1y`):
   a partition after a year of history with every window full against one 52 weeks later, each
   with exactly the history before it, built in bulk in `<root>/years`
   (`gridassets.bench_history.build_points`), run turn about like step 4;
7. writes `<data dir>/outputs/bench.json` atomically and prints a table.

At large scale (5,000 circuits, 200,000 transformers) step 1 builds only what the measured
partition reads, the raw tables straight from the simulator (`gridassets.bench_history`), and
steps 3 to 5 are left out for now; the measured day is the first Wednesday whose load forecast
has its whole year of feeder load behind it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gridassets import results_doc
from gridassets.domain import export
from gridassets.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent

# Fleet sizes per scale: (circuits, transformers).
SCALES = {"demo": (40, 2_000), "utility": (500, 20_000), "large": (5_000, 200_000)}
# Scales whose history is built in bulk (`gridassets.bench_history`): only what the measured
# partition reads, raw tables straight from the simulator. Day by day through Dagster the large
# fleet's history would take many hours. For now without the weekly maintenance and outage models
# (they need ~200 days of features and labels), so without the scores; no growth points, no CLI
# run and no pandas comparison (the 30-day window is 144 M telemetry rows).
BULK_SCALES = ("large",)
# Load forecasts built before the measured day at a bulk scale (a first day refits every circuit;
# the days after reuse the fitted models, as in production).
BULK_FORECAST_WARMUP_DAYS = 2
# The groups whose daily assets make up "one daily partition of the graph".
DAILY_GROUPS = ("raw", "integrity", "features", "forecasting", "scores")
GROWTH_GROUPS = ("raw", "integrity", "features", "forecasting")
GROWTH_DAYS = (7, 90)
# Each growth point is run this many times; each step counts with its fastest run (other work on
# the machine only ever adds time).
GROWTH_REPEAT = 3
# Load forecasts built before each measured day: the backtest reads the last four weeks of them.
FORECAST_WARMUP_DAYS = 28
SAMPLE_INTERVAL_S = 0.02
CHILD_TIMEOUT_S = 3 * 3600
# Targets of the issue, at utility scale on a 2-core, 24 GiB machine; the large scale's (5,000
# circuits, 200,000 transformers) on the same machine.
TARGETS = {"daily_graph_seconds": 60.0, "peak_rss_mb": 2048.0, "incremental_ratio": 1.2,
           "growth_ratio_2y_1y": 1.05}
LARGE_TARGETS = {"daily_graph_seconds": 60.0, "peak_rss_mb": 4096.0}
MARKER = ".gridassets-bench"
# Growth over years (`growth_ratio_2y_1y`): the second point comes this many days after the first,
# on the same weekday. Measured by default at these scales.
LONG_GROWTH_GAP_DAYS = 364
LONG_GROWTH_SCALES = ("utility",)


@dataclass
class BenchConfig:
    scale: str
    circuits: int
    transformers: int
    seed: int
    root: Path
    out: Path
    start: date
    day: date
    models: bool = True
    growth_days: tuple[int, int] = GROWTH_DAYS
    growth_repeat: int = GROWTH_REPEAT
    forecast_warmup_days: int = FORECAST_WARMUP_DAYS
    cli: bool = True
    reuse: bool = False
    backend: str = "duckdb"
    pandas: bool = True  # measure the SQL features against pandas (once is enough)
    bulk: bool = False  # build only what the measured day reads, raw tables in bulk
    # growth over years: history lengths (days) of the two points, or None (not measured)
    long_growth: tuple[int, int] | None = None
    only_long_growth: bool = False  # measure nothing else

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def env(self, data_dir: Path | None = None, dagster_home: Path | None = None
            ) -> dict[str, str]:
        """The environment of every run of the benchmark: its own data folder and instance."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("GRIDASSETS_") and k != "DAGSTER_HOME"}
        env.update({
            "GRIDASSETS_SOURCE": "synthetic",
            "GRIDASSETS_WAREHOUSE": self.backend,
            "GRIDASSETS_DATA_DIR": str(data_dir or self.data_dir),
            "GRIDASSETS_SEED": str(self.seed),
            "GRIDASSETS_CIRCUITS": str(self.circuits),
            "GRIDASSETS_TRANSFORMERS": str(self.transformers),
            "DAGSTER_HOME": str(dagster_home or self.dagster_home),
        })
        return env

    def identity(self) -> dict[str, Any]:
        """What the built history depends on (a reused folder must match it)."""
        return {"circuits": self.circuits, "transformers": self.transformers, "seed": self.seed,
                "start": self.start.isoformat(), "day": self.day.isoformat(),
                "models": self.models, "growth_days": list(self.growth_days),
                "backend": self.backend, "bulk": self.bulk,
                "forecast_warmup_days": self.forecast_warmup_days}


def default_long_growth(start: date) -> tuple[int, int]:
    """The history lengths of growth over years: a year or more, with every window full (the
    first Wednesday whose load forecast has its whole regression window), and 52 weeks more."""
    first = (bulk_default_day(start) - start).days
    return first, first + LONG_GROWTH_GAP_DAYS


def default_day(start: date) -> date:
    """The Wednesday of the first week whose models get their full training window: the
    maintenance model needs label lag + holdout + purge + 120 training days before its week."""
    from gridassets.domain import models

    need = max(s.label_lag_days + models.HOLDOUT_DAYS + s.purge_days + s.train_days
               for s in (models.MAINTENANCE, models.OUTAGE))
    first = start + timedelta(days=need)
    monday = first + timedelta(days=(7 - first.weekday()) % 7)
    return monday + timedelta(days=2)


# ---------------------------------------------------------------------------------------------
# Memory sampling and child processes


class RssSampler(threading.Thread):
    """Samples a process's resident set size from /proc/<pid>/status until it exits."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL_S) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (unix time, RSS in MiB)
        self.hwm_mb = 0.0  # the process's own high-water mark (VmHWM), last seen
        self._stop_event = threading.Event()

    def run(self) -> None:
        path = f"/proc/{self.pid}/status"
        while not self._stop_event.is_set():
            try:
                with open(path) as f:
                    text = f.read()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.hwm_mb = max(self.hwm_mb, int(line.split()[1]) / 1024)
                elif line.startswith("VmRSS:"):
                    self.samples.append((time.time(), int(line.split()[1]) / 1024))
                    break
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def window(self, start: float, end: float) -> tuple[float | None, float | None]:
        """(RSS at `start`, peak RSS during [start, end]), in MiB."""
        before = [rss for t, rss in self.samples if t <= start]
        inside = [rss for t, rss in self.samples if start - self.interval <= t <= end + self.interval]
        at_start = before[-1] if before else (inside[0] if inside else None)
        return at_start, (max(inside) if inside else None)


@dataclass
class ChildResult:
    returncode: int
    wall_seconds: float
    max_rss_mb: float
    sampler: RssSampler
    log: Path


def run_child(cmd: list[str], env: dict[str, str], log: Path, timeout: float = CHILD_TIMEOUT_S
              ) -> ChildResult:
    """Run `cmd`, sampling its memory. Its peak RSS is the VmHWM of its own address space: the
    ru_maxrss that wait4 or getrusage report also counts the pages of the (large) parent that
    the child had between fork and exec."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = RssSampler(proc.pid)
        sampler.start()
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            _, status = os.waitpid(proc.pid, 0)
        finally:
            watchdog.cancel()
            sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    peak = max([sampler.hwm_mb] + [rss for _, rss in sampler.samples])
    return ChildResult(proc.returncode, time.monotonic() - started, peak, sampler, log)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# What the graph holds, and the event log of a run


def daily_assets(defs, groups: tuple[str, ...]) -> list[str]:
    """The daily-partitioned assets of `groups`, in the graph's topological order."""
    import dagster as dg

    from gridassets.defs.partitions import daily_partitions

    graph = defs.get_repository_def().asset_graph
    keys = dg.AssetSelection.groups(*groups).resolve(graph)
    order = [k for level in graph.toposorted_asset_keys_by_level for k in level]
    return [k.to_user_string() for k in order
            if k in keys and graph.get(k).partitions_def == daily_partitions]


def run_steps(instance, run_id: str) -> list[dict[str, Any]]:
    """Per step of a run: start and end (unix time), status, and rows per asset materialized."""
    from dagster import DagsterEventType

    kinds = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS,
             DagsterEventType.STEP_FAILURE, DagsterEventType.ASSET_MATERIALIZATION}
    steps: dict[str, dict[str, Any]] = {}
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        step = steps.setdefault(entry.step_key, {"step": entry.step_key, "start": None,
                                                 "end": None, "status": None, "assets": {}})
        if event.event_type == DagsterEventType.STEP_START:
            step["start"] = entry.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            step["end"] = entry.timestamp
            step["status"] = "success" if event.event_type == DagsterEventType.STEP_SUCCESS else "failure"
        else:
            mat = entry.asset_materialization
            meta = mat.metadata
            rows = meta.get("dagster/partition_row_count") or meta.get("dagster/row_count")
            step["assets"][mat.asset_key.to_user_string()] = (
                int(rows.value) if rows is not None else None)
    return sorted(steps.values(), key=lambda s: s["start"] or 0)


def measure_in_process(day: str, groups: tuple[str, ...], result_path: Path) -> None:
    """The body of a measuring child process: materialize partition `day` of the daily assets of
    `groups` in one in-process run, and write what happened to `result_path` as JSON."""
    imported = time.time()
    import dagster as dg

    from gridassets import runner
    from gridassets.definitions import defs

    assets = daily_assets(defs, groups)
    instance = runner.instance()
    loaded = time.time()
    result = runner.materialize(defs, assets, partition=day, dagster_instance=instance,
                                raise_on_error=False, log_level="WARNING")
    finished = time.time()
    graph = defs.get_repository_def().asset_graph
    payload = {
        "vmhwm_mb": _own_hwm_mb(),
        "groups_of": {a: graph.get(dg.AssetKey.from_user_string(a)).group_name for a in assets},
        "day": day, "groups": list(groups), "assets": assets, "run_id": result.run_id,
        "success": result.success, "load_seconds": loaded - imported,
        "run_start": loaded, "run_end": finished, "seconds": finished - loaded,
        "steps": run_steps(instance, result.run_id),
    }
    if not result.success:
        payload["errors"] = [
            f"{e.step_key}: {e.event_specific_data.error.message.strip()}"
            for e in result.all_events
            if e.is_step_failure and getattr(e.event_specific_data, "error", None)]
    _write_json_atomic(result_path, payload)


def _own_hwm_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


@dataclass
class Measurement:
    """One daily partition run, measured from outside the process that ran it."""

    label: str
    day: str
    seconds: float  # the run itself (in-process: without interpreter start and imports)
    process_seconds: float  # the whole process, from start to exit
    peak_rss_mb: float
    steps: list[dict[str, Any]] = field(default_factory=list)

    rss_before_run_mb: float | None = None
    groups: dict[str, str] = field(default_factory=dict)

    def assets(self) -> dict[str, dict[str, Any]]:
        """Per asset: its step's seconds and memory (assets made by one step share them)."""
        out = {}
        for s in self.steps:
            made = s["assets"] or {s["step"]: None}
            for asset, rows in made.items():
                out[asset] = {"step": s["step"], "seconds": round(s["seconds"], 3), "rows": rows,
                              "peak_memory_mb": s["peak_rss_mb"],
                              "memory_increase_mb": s["rss_increase_mb"]}
                if len(made) > 1:
                    out[asset]["step_makes"] = sorted(made)
        return out

    def step_seconds(self) -> dict[str, float]:
        return {s["step"]: s["seconds"] for s in self.steps}

    def peak_in_steps_mb(self) -> float | None:
        peaks = [s["peak_rss_mb"] for s in self.steps if s["peak_rss_mb"] is not None]
        return max(peaks) if peaks else None


def _attach_memory(steps: list[dict[str, Any]], sampler: RssSampler) -> list[dict[str, Any]]:
    for s in steps:
        s["seconds"] = (s["end"] - s["start"]) if s["start"] and s["end"] else float("nan")
        at_start, peak = sampler.window(s["start"] or 0, s["end"] or time.time())
        s["peak_rss_mb"] = round(peak, 1) if peak is not None else None
        s["rss_increase_mb"] = round(peak - at_start, 1) if peak is not None and at_start else None
    return steps


class BenchError(RuntimeError):
    """A benchmark run failed; the message says which and where its log is."""


def measure_partition(cfg: BenchConfig, label: str, day: date, groups: tuple[str, ...],
                      env: dict[str, str] | None = None) -> Measurement:
    """Run one daily partition in a fresh process and measure it."""
    result_path = cfg.logs / f"{label}.json"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "gridassets.bench", "--measure", day.isoformat(),
           "--groups", ",".join(groups), "--result", str(result_path)]
    child = run_child(cmd, env or cfg.env(), cfg.logs / f"{label}.log")
    if child.returncode != 0 or not result_path.is_file():
        raise BenchError(f"{label}: the measuring process failed (exit {child.returncode}); "
                         f"log {child.log}:\n{_tail(child.log)}")
    payload = json.loads(result_path.read_text())
    if not payload["success"]:
        raise BenchError(f"{label}: partition {day} failed: {'; '.join(payload.get('errors', []))}"
                         f" (log {child.log})")
    before, _ = child.sampler.window(payload["run_start"], payload["run_start"])
    return Measurement(label, day.isoformat(), payload["seconds"], child.wall_seconds,
                       max(child.max_rss_mb, payload.get("vmhwm_mb") or 0.0),
                       _attach_memory(payload["steps"], child.sampler), before,
                       payload.get("groups_of", {}))


def measure_cli(cfg: BenchConfig, label: str, day: date, assets: list[str]) -> Measurement:
    """The same partition through `dagster asset materialize`, in the benchmark's instance."""
    import dagster as dg

    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster) if dagster.exists() else "dagster", "asset", "materialize",
           "-m", "gridassets.definitions", "--select", ",".join(assets),
           "--partition", day.isoformat()]
    child = run_child(cmd, cfg.env(), cfg.logs / f"{label}.log")
    if child.returncode != 0:
        raise BenchError(f"{label}: `{' '.join(cmd[1:])}` failed (exit {child.returncode}); "
                         f"log {child.log}:\n{_tail(child.log)}")
    instance = dg.DagsterInstance.get()
    run = instance.get_runs(limit=1)[0]
    steps = _attach_memory(run_steps(instance, run.run_id), child.sampler)
    return Measurement(label, day.isoformat(), child.wall_seconds, child.wall_seconds,
                       child.max_rss_mb, steps)


# ---------------------------------------------------------------------------------------------
# SQL against pandas


def sql_vs_pandas(settings: Settings, day: date) -> dict[str, Any]:
    """The transformer health features of `day` (and the daily stats of its 30-day window) from
    raw telemetry, by the project's DuckDB SQL and by plain pandas, timed and compared."""
    import duckdb

    from gridassets import bench_pandas
    from gridassets.domain import features
    from gridassets.storage import features as feature_sql
    from gridassets.storage.backend import open_warehouse

    first = day - timedelta(days=features.WINDOW_DAYS - 1)
    end = day + timedelta(days=1)
    lo, hi = datetime.combine(first, datetime.min.time()), datetime.combine(end, datetime.min.time())
    con = duckdb.connect()
    try:
        # The window's raw slices, copied into memory under the warehouse's table names, so both
        # sides read the same rows from the same place.
        t0 = time.perf_counter()
        slices = {
            "raw.transformer_telemetry": ("where timestamp >= ? and timestamp < ?", [lo, hi]),
            "raw.weather_observations": ("where timestamp >= ? and timestamp < ?", [lo, hi]),
            "raw.transformer_failures": ("where failed_at < ?", [hi]),
            "fleet.transformers": ("", []),
            "fleet.circuits": ("", []),
        }
        with open_warehouse(settings).connect(read_only=True) as wh:
            for table, (where, params) in slices.items():
                con.execute(f"create schema if not exists {table.split('.')[0]}")  # sql-identifier: the slice's schema, from code
                con.register("_slice", wh.sql(f"select * from {table} {where}",  # sql-identifier: table and ?-condition from code
                                              params=params).to_arrow_table())
                con.execute(f"create table {table} as select * from _slice")  # sql-identifier: table name from code
                con.unregister("_slice")
        copy_seconds = time.perf_counter() - t0

        t0 = time.perf_counter()
        stats_sql = feature_sql.transformer_daily_stats(con, first, end)
        con.execute("create schema features")
        con.register("_stats", stats_sql)
        con.execute("create table features.transformer_daily_stats as select * from _stats")
        con.unregister("_stats")
        health_sql = feature_sql.transformer_health_features(con, day, end)
        sql_seconds = time.perf_counter() - t0

        t0 = time.perf_counter()
        frames = {t: con.execute(f"select * from {t}").fetchdf() for t in slices}  # sql-identifier: table name from code
        read_seconds = time.perf_counter() - t0
    finally:
        con.close()

    t0 = time.perf_counter()
    stats_pd = bench_pandas.transformer_daily_stats(
        frames["raw.transformer_telemetry"], frames["fleet.transformers"],
        frames["fleet.circuits"], frames["raw.weather_observations"])
    health_pd = bench_pandas.transformer_health_features(
        stats_pd, frames["fleet.transformers"], frames["raw.transformer_failures"], day, end)
    pandas_seconds = time.perf_counter() - t0

    stats_check = bench_pandas.compare(stats_pd, stats_sql, ["transformer_id", "date"])
    health_check = bench_pandas.compare(health_pd, health_sql, ["transformer_id", "date"])
    return {
        "what": (f"transformer_daily_stats of {first}..{day} and transformer_health_features of "
                 f"{day}, from raw telemetry"),
        "telemetry_rows": len(frames["raw.transformer_telemetry"]),
        "duckdb_seconds": round(sql_seconds, 3),
        "pandas_seconds": round(pandas_seconds, 3),
        "pandas_read_seconds": round(read_seconds, 3),
        "copy_seconds": round(copy_seconds, 3),
        "pandas_over_duckdb": round(pandas_seconds / sql_seconds, 2) if sql_seconds else None,
        "equal": stats_check.equal and health_check.equal,
        "max_abs_diff": max(stats_check.max_abs_diff, health_check.max_abs_diff),
        "daily_stats": stats_check.as_dict(),
        "health_features": health_check.as_dict(),
    }


# ---------------------------------------------------------------------------------------------
# History


def build_history(cfg: BenchConfig, growth_groups: tuple[str, ...], progress) -> dict[str, Any]:
    """Build the benchmark warehouse up to the day before D, measuring growth on the way."""
    from gridassets import runner
    from gridassets.definitions import defs

    instance = runner.instance()
    forecasting = _forecast_sources(defs)
    built_until = cfg.start - timedelta(days=1)  # raw and features exist up to here
    forecasts: set[date] = set()

    def step(label: str, select, **kw) -> None:
        t0 = time.monotonic()
        try:
            runner.materialize(defs, select, dagster_instance=instance, log_level="ERROR", **kw)
        except Exception as exc:
            raise BenchError(f"building history, {label}: {exc}") from exc
        progress(f"  {label:<58} {time.monotonic() - t0:7.1f} s")

    def history_to(last: date) -> None:
        nonlocal built_until
        if last <= built_until:
            return
        for group, select in (("raw", runner.RAW), ("features", runner.FEATURES)):
            for a, b in runner.chunks(built_until + timedelta(days=1), last, runner.chunk_days()):
                step(f"{group} {a}..{b}", select, start=a.isoformat(), end=b.isoformat())
        built_until = last

    def forecasts_before(day: date) -> None:
        days = [d for d in (day - timedelta(days=i) for i in range(cfg.forecast_warmup_days, 0, -1))
                if d >= cfg.start and d not in forecasts]
        if not forecasting or not days:
            return
        step(f"forecasting {days[0]}..{days[-1]}", forecasting,
             start=days[0].isoformat(), end=days[-1].isoformat())
        forecasts.update(days)

    step("fleet registry", runner.FLEET)
    # Each growth point's history is kept as a copy (warehouse and instance) taken when it was
    # complete, so that all points can be measured later, turn about, under the same load.
    for n in cfg.growth_days:
        day = cfg.start + timedelta(days=n)
        history_to(day - timedelta(days=1))
        forecasts_before(day)
        t0 = time.monotonic()
        snapshot = cfg.root / f"history-{n}d"
        shutil.copytree(cfg.data_dir, snapshot / "data")
        shutil.copytree(cfg.dagster_home, snapshot / "dagster_home")
        progress(f"  {f'copy of the {n}-day history':<58} {time.monotonic() - t0:7.1f} s")
    history_to(cfg.day - timedelta(days=1))
    forecasts_before(cfg.day)
    if cfg.models:
        week = runner.monday(cfg.day)
        step(f"models, week {week}", runner.MODELS, partition=week.isoformat())


def build_bulk_history(cfg: BenchConfig, progress, days: list[date] | None = None,
                       snapshots: Path | None = None) -> dict[str, Any]:
    """Only what partition D reads, raw tables in bulk (`gridassets.bench_history`), in a child
    process whose time and peak memory are the build's. With `days` (and `snapshots`), the
    history of each day in turn, every raw day kept (`bench_history.build_points`)."""
    result_path = cfg.logs / "history.json"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "gridassets.bench_history", "--start", cfg.start.isoformat(),
           *[a for d in (days or [cfg.day]) for a in ("--day", d.isoformat())],
           "--forecast-warmup", str(cfg.forecast_warmup_days), "--result", str(result_path)]
    if snapshots is not None:
        cmd += ["--snapshots", str(snapshots)]
    progress(f"  building the history in bulk (log {cfg.logs / 'history.log'}) ...")
    child = run_child(cmd, cfg.env(), cfg.logs / "history.log")
    if child.returncode != 0 or not result_path.is_file():
        raise BenchError(f"building history in bulk failed (exit {child.returncode}); log "
                         f"{child.log}:\n{_tail(child.log)}")
    built = json.loads(result_path.read_text())
    for ph in built["phases"]:
        progress(f"  {ph['phase']:<58} {ph['seconds']:7.1f} s")
    built.update(process_seconds=round(child.wall_seconds, 1),
                 peak_rss_mb=round(max(child.max_rss_mb, built["peak_rss_mb"]), 1))
    return built


def bulk_default_day(start: date) -> date:
    """The first Wednesday whose load forecast gets its whole regression window of history."""
    from gridassets.defs.forecasting.assets import CONFIG

    first = start + timedelta(days=CONFIG.window_days)
    return first + timedelta(days=(2 - first.weekday()) % 7)


def _forecast_sources(defs) -> list[str]:
    """The daily forecasting assets that read no other forecasting asset: the forecasts that
    later days build on (the backtest of past forecasts is not needed for history)."""
    import dagster as dg

    graph = defs.get_repository_def().asset_graph
    names = daily_assets(defs, ("forecasting",))
    inside = {dg.AssetKey.from_user_string(n) for n in names}
    return [n for n in names
            if not (graph.get(dg.AssetKey.from_user_string(n)).parent_keys & inside)]


def measure_growth(cfg: BenchConfig, groups: tuple[str, ...], progress) -> dict[str, Any]:
    """The daily raw, features and forecasting steps of partition start+7 (7 days of history
    before it), start+90 and D, each in its own copy of the history, run turn about."""
    points = [(n, cfg.start + timedelta(days=n),
               cfg.env(cfg.root / f"history-{n}d" / "data", cfg.root / f"history-{n}d" / "dagster_home"))
              for n in cfg.growth_days]
    points.append(((cfg.day - cfg.start).days, cfg.day, None))
    runs = _turn_about(cfg, "growth", points, groups, progress)
    return _growth(runs, cfg.growth_days, points[-1][0])


def _turn_about(cfg: BenchConfig, label: str, points: list, groups: tuple[str, ...], progress
                ) -> dict[int, list[Measurement]]:
    """Each (history days, day, environment) point measured `cfg.growth_repeat` times, the
    points turn about, so that other work on the machine weighs on all of them alike."""
    runs: dict[int, list[Measurement]] = {n: [] for n, _, _ in points}
    for i in range(cfg.growth_repeat):
        for n, day, env in points:
            m = measure_partition(cfg, f"{label}-{n}d-{i + 1}", day, groups, env)
            progress(f"  {f'partition {day} after {n} days of history, run {i + 1}':<58} "
                     f"{m.seconds:7.1f} s")
            runs[n].append(m)
    return runs


def measure_long_growth(cfg: BenchConfig, groups: tuple[str, ...], progress) -> dict[str, Any]:
    """Growth over years (`growth_ratio_2y_1y`): the same daily steps as `measure_growth` for
    partition start+n1 (a year of history or more, every window full) and start+n2 (52 weeks
    later), each with exactly the history before it, run turn about. The history is built in bulk
    in `<root>/years` (`bench_history.build_points`: every raw table of every day, the derived
    assets over the windows each day reads), the first point's as a copy."""
    n1, n2 = cfg.long_growth
    days = [cfg.start + timedelta(days=n) for n in (n1, n2)]
    years = replace(cfg, root=cfg.root / "years")
    identity = {**cfg.identity(), "long_growth": [n1, n2]}
    state = years.root / "state.json"
    reused = (cfg.reuse and state.is_file()
              and json.loads(state.read_text()).get("identity") == identity)
    if reused:
        progress(f"  growth over years: reusing the history built earlier in {years.root}")
        built = json.loads(state.read_text())["built"]
    else:
        if years.root.exists():
            shutil.rmtree(years.root)
        years.dagster_home.mkdir(parents=True)
        shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml",
                    years.dagster_home / "dagster.yaml")
        progress(f"  growth over years: {n2} days of history")
        built = build_bulk_history(years, progress, days=days, snapshots=years.root)
        _write_json_atomic(state, {"identity": identity, "built": built})
    first = years.root / f"history-{n1}d"
    points = [(n1, days[0], years.env(first / "data", first / "dagster_home")),
              (n2, days[1], years.env())]
    runs = _turn_about(years, "years", points, groups, progress)
    out = _growth(runs, (n1, n2), n2)
    out.pop("ratio_full")
    for step in out["steps"].values():
        step.pop("ratio_full")
    from gridassets.defs.forecasting.assets import CONFIG

    gap = n2 - n1
    out["compared"] = (
        f"partition {days[1]} with exactly {n2} days of history before it against partition "
        f"{days[0]} with exactly {n1}, {gap} days apart"
        + (" on the same weekday" if gap % 7 == 0 else "")
        + ("; every window full at both (the load forecast's regression window, the longest, is "
           if n1 >= CONFIG.window_days else "; not every window full at the first (the load "
           "forecast's regression window is ") + f"{CONFIG.window_days} days); the sum over the "
        "steps of the daily " + ", ".join(groups) + " assets of each step's fastest time in "
        f"{cfg.growth_repeat} run(s), run turn about. The history is built in bulk: every raw "
        "table holds every day (outage_events aside: only the models and scores read them), the "
        "derived tables the windows each day reads; scores are left out because they need the "
        "weekly models")
    out["history"] = {"reused": reused, **{k: built.get(k) for k in (
        "seconds", "process_seconds", "peak_rss_mb", "phases")}}
    return out


def _growth(runs: dict[int, list[Measurement]], days: tuple[int, int], full: int
            ) -> dict[str, Any]:
    """Step seconds per history length: each step's fastest run, summed over the steps that ran
    at every point. The ratio is the contract's 90 days against 7; `ratio_full` compares the
    measured day's history with 90 days."""

    def best(ms: list[Measurement]) -> dict[str, float]:
        steps = [m.step_seconds() for m in ms]
        return {k: min(s[k] for s in steps if k in s) for k in steps[0]}

    best_of = {n: best(ms) for n, ms in runs.items()}
    order = list(runs)
    common = [k for k in best_of[order[0]] if all(k in best_of[n] for n in order)]
    total = {n: sum(best_of[n][k] for k in common) for n in order}
    short, long = days

    def ratio(a: float, b: float) -> float | None:
        # of the seconds as reported, so that a reader who divides them gets the same figure
        a, b = round(a, 3), round(b, 3)
        return round(b / a, 3) if a else None

    return {
        "compared": (f"partition start+{short} with exactly {short} days of history before it "
                     f"against partition start+{long} with exactly {long} (and the measured day, "
                     f"{full} days), each in a copy of the warehouse and instance taken when its "
                     "history was complete: the sum over the steps of the daily raw, features "
                     "and forecasting assets of each step's fastest time in "
                     f"{len(runs[short])} run(s), run turn about; scores are left out because "
                     "they need the weekly models, which need ~200 days of history"),
        "history_days": order,
        "days": [runs[n][0].day for n in order],
        "seconds": [round(total[n], 3) for n in order],
        "runs": len(runs[short]),
        "run_seconds": [[round(m.seconds, 3) for m in runs[n]] for n in order],
        "peak_rss_mb": [round(max(m.peak_rss_mb for m in runs[n]), 1) for n in order],
        "ratio": ratio(total[short], total[long]),
        "ratio_full": ratio(total[long], total[full]),
        "steps": {k: {"seconds": [round(best_of[n][k], 3) for n in order],
                      "ratio": ratio(best_of[short][k], best_of[long][k]),
                      "ratio_full": ratio(best_of[long][k], best_of[full][k])}
                  for k in common},
    }


# ---------------------------------------------------------------------------------------------
# The whole benchmark


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _prepare_root(cfg: BenchConfig) -> bool:
    """Make the benchmark folder ready; True when a matching built history can be reused."""
    state = cfg.root / "state.json"
    if cfg.reuse and state.is_file():
        saved = json.loads(state.read_text())
        if saved.get("identity") == cfg.identity():
            return True
        raise BenchError(f"--reuse: {cfg.root} was built for {saved.get('identity')}, "
                         f"not {cfg.identity()}; run without --reuse")
    if cfg.root.exists() and any(cfg.root.iterdir()) and not (cfg.root / MARKER).exists():
        raise BenchError(f"{cfg.root} exists and was not made by the benchmark; choose another "
                         "--root or remove it")
    for path in [cfg.root / sub for sub in ("data", "dagster_home", "logs", "state.json")] + list(
            cfg.root.glob("history-*")):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    cfg.root.mkdir(parents=True, exist_ok=True)
    (cfg.root / MARKER).write_text("made by `python -m gridassets bench`; safe to delete\n")
    cfg.dagster_home.mkdir()
    shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml", cfg.dagster_home / "dagster.yaml")
    return False


def run_bench(cfg: BenchConfig, progress=print) -> dict[str, Any]:
    """Build history, measure, compare, and write bench.json; returns what was written."""
    # Every run of the benchmark, in this process and its children, uses its own folder.
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(cfg.env())
    try:
        return _run_bench(cfg, progress)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run_bench(cfg: BenchConfig, progress) -> dict[str, Any]:
    started = datetime.now(timezone.utc)
    load_start = _load()
    reused = _prepare_root(cfg)
    daily_groups = DAILY_GROUPS if cfg.models else tuple(g for g in DAILY_GROUPS if g != "scores")
    growth_groups = tuple(g for g in GROWTH_GROUPS if g in daily_groups)
    state_path = cfg.root / "state.json"
    progress(f"gridassets bench: {cfg.scale} scale ({cfg.circuits:,} circuits, "
             f"{cfg.transformers:,} transformers), partition {cfg.day}, history from {cfg.start}")
    progress(f"  folder {cfg.root}   load average {load_start}")
    t0 = time.monotonic()
    bulk = None
    if reused:
        progress("  reusing the history built earlier")
        bulk = json.loads(state_path.read_text()).get("bulk")
    elif cfg.bulk:
        bulk = build_bulk_history(cfg, progress)
        _write_json_atomic(state_path, {"identity": cfg.identity(), "bulk": bulk})
    else:
        build_history(cfg, growth_groups, progress)
        _write_json_atomic(state_path, {"identity": cfg.identity()})
    history_seconds = time.monotonic() - t0

    progress(f"  measuring partition {cfg.day} in-process ...")
    main = measure_partition(cfg, "daily-in-process", cfg.day, daily_groups)
    assets = list(main.assets())
    cli = None
    if cfg.cli:
        progress(f"  measuring partition {cfg.day} through the CLI ...")
        cli = measure_cli(cfg, "daily-cli", cfg.day, assets)
    growth = None
    if not cfg.bulk:
        progress("  growth with history ...")
        growth = measure_growth(cfg, growth_groups, progress)
    years = None
    if cfg.long_growth:
        years = measure_long_growth(cfg, growth_groups, progress)
    versus = None
    if cfg.pandas:
        progress("  transformer health features: DuckDB SQL against pandas ...")
        versus = sql_vs_pandas(Settings.from_env(), cfg.day)
    load_end = _load()

    per_asset = main.assets()
    if cli is not None:
        for name, row in cli.assets().items():
            if name in per_asset:
                per_asset[name]["cli_seconds"] = row["seconds"]
    for name, row in per_asset.items():
        row["group"] = main.groups.get(name)
    result: dict[str, Any] = {
        "scale": cfg.scale,
        "backend": cfg.backend,
        "assets": per_asset,
        "daily_graph_seconds": round(main.seconds, 3),
        "peak_rss_mb": round(main.peak_rss_mb, 1),
        "incremental_ratio": growth["ratio"] if growth else None,
        "growth_ratio_2y_1y": years["ratio"] if years else None,
        "growth_years": years,
        "fleet": {"circuits": cfg.circuits, "transformers": cfg.transformers, "seed": cfg.seed},
        "day": cfg.day.isoformat(),
        "history": {"start": cfg.start.isoformat(), "days": (cfg.day - cfg.start).days,
                    "models": cfg.models, "forecast_warmup_days": cfg.forecast_warmup_days,
                    "build_seconds": round(history_seconds, 1), "reused": reused,
                    "bulk": bulk},
        "daily_graph": {"groups": list(daily_groups), "assets": assets,
                        "run_seconds": round(main.seconds, 3),
                        "step_seconds": round(sum(main.step_seconds().values()), 3),
                        "process_seconds": round(main.process_seconds, 3),
                        "peak_rss_mb": round(main.peak_rss_mb, 1),
                        "peak_rss_in_steps_mb": main.peak_in_steps_mb(),
                        "rss_before_run_mb": main.rss_before_run_mb},
        "cli": None if cli is None else {
            "command": f"dagster asset materialize -m gridassets.definitions --select "
                       f"<the {len(assets)} assets> --partition {cfg.day}",
            "seconds": round(cli.seconds, 3), "peak_rss_mb": round(cli.peak_rss_mb, 1),
            "step_seconds": round(sum(cli.step_seconds().values()), 3)},
        "growth": growth,
        "sql_vs_pandas": versus,
        "targets": _targets(main, growth, cfg.scale, years),
        "machine": {**results_doc.machine(), "load_average_start": load_start, "load_average_end": load_end},
        "measured_at": started.isoformat(timespec="seconds"),
    }
    _write_json_atomic(cfg.out, result)
    progress("")
    progress(format_table(result))
    progress(f"\nwrote {cfg.out}")
    return result


BACKENDS = ("duckdb", "delta")


def run_backends(cfg: BenchConfig, backends: tuple[str, ...] = BACKENDS, progress=print
                 ) -> dict[str, Any]:
    """The benchmark on each backend, each in its own folder (`<root>/<backend>`), then the cost
    of reading through the Delta log; writes one bench.json whose contract keys are the first
    backend's and whose `backends` holds each one's figures, and prints them side by side."""
    if cfg.only_long_growth:
        return run_long_growth(replace(cfg, backend=backends[0], root=cfg.root / backends[0]),
                               progress)
    results: dict[str, dict[str, Any]] = {}
    for i, kind in enumerate(backends):
        # The extra measurements once, on the first backend.
        sub = replace(cfg, backend=kind, root=cfg.root / kind, out=cfg.root / kind / "bench.json",
                      pandas=cfg.pandas and i == 0,
                      long_growth=cfg.long_growth if i == 0 else None)
        results[kind] = run_bench(sub, progress)
        progress("")
    first = results[backends[0]]
    combined = dict(first)
    combined["backends"] = {kind: {k: r[k] for k in (
        "assets", "daily_graph_seconds", "peak_rss_mb", "incremental_ratio", "daily_graph",
        "cli", "growth", "targets", "history")} for kind, r in results.items()}
    if "delta" in results:
        progress("  reading through the Delta log ...")
        combined["delta_read"] = read_cost(cfg, backends)
    _write_json_atomic(cfg.out, combined)
    if len(results) > 1:
        progress(format_side_by_side(combined))
    progress(f"\nwrote {cfg.out}")
    return combined


def run_long_growth(cfg: BenchConfig, progress=print) -> dict[str, Any]:
    """Growth over years alone (`--only-long-growth`): writes a bench.json with
    `growth_ratio_2y_1y` and no figures of the daily partition."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(cfg.env())
    try:
        started = datetime.now(timezone.utc)
        load_start = _load()
        cfg.root.mkdir(parents=True, exist_ok=True)
        if any(cfg.root.iterdir()) and not (cfg.root / MARKER).exists():
            raise BenchError(f"{cfg.root} exists and was not made by the benchmark; choose "
                             "another --root or remove it")
        (cfg.root / MARKER).write_text("made by `python -m gridassets bench`; safe to delete\n")
        progress(f"gridassets bench: growth over years, {cfg.scale} scale ({cfg.circuits:,} "
                 f"circuits, {cfg.transformers:,} transformers), history from {cfg.start}")
        years = measure_long_growth(cfg, GROWTH_GROUPS, progress)
        result = {
            "scale": cfg.scale, "backend": cfg.backend,
            "growth_ratio_2y_1y": years["ratio"], "growth_years": years,
            "fleet": {"circuits": cfg.circuits, "transformers": cfg.transformers,
                      "seed": cfg.seed},
            "targets": _targets(None, None, cfg.scale, years),
            "machine": {**results_doc.machine(), "load_average_start": load_start,
                        "load_average_end": _load()},
            "measured_at": started.isoformat(timespec="seconds"),
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)
    _write_json_atomic(cfg.out, result)
    progress("")
    progress(format_long_growth(result))
    progress(f"\nwrote {cfg.out}")
    return result


def format_long_growth(r: dict[str, Any]) -> str:
    """The printed lines of growth over years."""
    g = r["growth_years"]
    t = r["targets"].get("growth_ratio_2y_1y")
    lines = [f"growth over years ({r['scale']} scale, {r['fleet']['circuits']:,} circuits, "
             f"{r['fleet']['transformers']:,} transformers; raw, integrity, features and "
             "forecasting steps, fastest of "
             f"{g['runs']} run(s) each):",
             f"{'step':<44} " + " ".join(f"{f'{n} days':>10}" for n in g["history_days"])
             + f" {'ratio':>7}"]
    for name, step in g["steps"].items():
        lines.append(f"{name:<44} " + " ".join(f"{x:>10.2f}" for x in step["seconds"])
                     + f" {step['ratio'] if step['ratio'] is not None else '-':>7}")
    lines.append(f"{'all steps':<44} " + " ".join(f"{x:>10.2f}" for x in g["seconds"])
                 + f" {g['ratio'] if g['ratio'] is not None else '-':>7}")
    lines.append(f"partitions {g['days'][0]} and {g['days'][1]}: growth_ratio_2y_1y {g['ratio']}"
                 + (f" (target {t['target']}: {'met' if t['met'] else 'MISSED'})" if t else ""))
    h = g.get("history") or {}
    if h.get("seconds") is not None:
        lines.append(f"history built in bulk in {h['seconds']:.0f} s"
                     + (" (reused)" if h.get("reused") else "") + ", peak RSS "
                     f"{h['peak_rss_mb']:,.0f} MB")
    return "\n".join(lines)


def read_cost(cfg: BenchConfig, backends: tuple[str, ...]) -> dict[str, Any]:
    """What a reader pays on each backend: opening a connection (on Delta: reading every table's
    log, cold in a fresh process and warm in the same one) and one query of the measured day."""
    code = """
import json, sys, time
from datetime import datetime, timedelta
from gridassets.settings import Settings
from gridassets.storage.backend import open_warehouse
store = open_warehouse(Settings.from_env())
day = datetime.fromisoformat(sys.argv[1])
out = {}
t = time.perf_counter()
with store.connect() as con:
    out["connect_cold_s"] = time.perf_counter() - t
    tables = con.execute("select count(*) from information_schema.tables "
                         "where table_schema <> 'main'").fetchall()[0][0]
t = time.perf_counter()
with store.connect() as con:
    out["connect_warm_s"] = time.perf_counter() - t
    t = time.perf_counter()
    rows, mean = con.execute(
        "select count(*), avg(load_pct) from raw.transformer_telemetry "
        "where timestamp >= ? and timestamp < ?", [day, day + timedelta(days=1)]).fetchall()[0]
    out["query_day_s"] = time.perf_counter() - t
    t = time.perf_counter()
    con.execute("select count(*), avg(load_pct) from raw.transformer_telemetry").fetchall()
    out["query_all_s"] = time.perf_counter() - t
out.update(tables=tables, day_rows=rows)
if store.kind == "delta":
    from deltalake import DeltaTable
    out["files"] = sum(len(DeltaTable(str(p)).file_uris()) for _, _, p in store.table_paths())
    out["commits"] = sum(DeltaTable(str(p)).version() + 1 for _, _, p in store.table_paths())
print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))
"""
    cost = {}
    for kind in backends:
        sub = replace(cfg, backend=kind, root=cfg.root / kind)
        done = subprocess.run([sys.executable, "-c", code, cfg.day.isoformat()], env=sub.env(),
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise BenchError(f"reading the {kind} warehouse failed: {done.stderr[-2000:]}")
        cost[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    return cost


def format_side_by_side(r: dict[str, Any]) -> str:
    """Per asset, seconds and peak memory on each backend; the whole partition; the read cost."""
    kinds = list(r["backends"])
    head = f"{'asset':<30}" + "".join(f" {k + ' s':>10} {k + ' MB':>10}" for k in kinds)
    lines = [f"gridassets bench, {r['scale']} scale, partition {r['day']}: the backends side by "
             "side", "", head]
    names = list(r["backends"][kinds[0]]["assets"])
    for name in names:
        cells = ""
        for k in kinds:
            a = r["backends"][k]["assets"].get(name, {})
            sec = f"{a['seconds']:.2f}" if a.get("seconds") is not None else "-"
            cells += f" {sec:>10} {_mb(a.get('peak_memory_mb')):>10}"
        lines.append(f"{name:<30}{cells}")
    lines.append(f"{'whole daily partition':<30}" + "".join(
        f" {r['backends'][k]['daily_graph_seconds']:>10.1f} {_mb(r['backends'][k]['peak_rss_mb']):>10}"
        for k in kinds))
    cli = [r["backends"][k]["cli"] for k in kinds]
    if all(cli):
        lines.append(f"{'the same through the CLI':<30}" + "".join(
            f" {c['seconds']:>10.1f} {_mb(c['peak_rss_mb']):>10}" for c in cli))
    lines.append(f"{'incremental_ratio':<30}" + "".join(
        f" {r['backends'][k]['incremental_ratio']:>10} {'':>10}" for k in kinds))
    cost = r.get("delta_read")
    if cost:
        lines += ["", "reading: " + "; ".join(
            f"{k}: connect {c['connect_cold_s']:.3f} s cold, {c['connect_warm_s']:.3f} s warm, "
            f"one day of telemetry ({c['day_rows']:,} rows) {c['query_day_s']:.3f} s, all of it "
            f"{c['query_all_s']:.3f} s" + (f" ({c['files']:,} files, {c['commits']:,} commits in "
                                            f"{c['tables']} tables)" if "files" in c else "")
            for k, c in cost.items())]
    return "\n".join(lines)


def _targets(main: Measurement | None, growth: dict[str, Any] | None, scale: str = "utility",
             years: dict[str, Any] | None = None) -> dict[str, Any]:
    """Each target of the scale against what was measured (growth over years only when it
    was)."""
    targets = LARGE_TARGETS if scale == "large" else TARGETS
    values = {}
    if main is not None:
        values = {"daily_graph_seconds": main.seconds, "peak_rss_mb": main.peak_rss_mb,
                  "incremental_ratio": growth["ratio"] if growth else None}
    if years is not None:
        values["growth_ratio_2y_1y"] = years["ratio"]
    return {k: {"target": f"<= {targets[k]:g}", "value": round(v, 3) if v is not None else None,
                "met": v is not None and v <= targets[k]} for k, v in values.items()
            if k in targets}


def format_table(r: dict[str, Any]) -> str:
    """The printed summary of a bench.json."""
    m = r["machine"]
    lines = [
        f"gridassets bench, {r['scale']} scale: {r['fleet']['circuits']:,} circuits, "
        f"{r['fleet']['transformers']:,} transformers; partition {r['day']} after "
        f"{r['history']['days']} days of history; warehouse {r.get('backend', 'duckdb')}",
        f"machine: {m.get('cpus')} CPUs ({m.get('cpu_model', '?')}), {m.get('memory_gib', '?')} GiB; "
        f"load average {m['load_average_start'][0]} at start, {m['load_average_end'][0]} at end",
        "",
        f"{'asset':<30} {'group':<12} {'seconds':>8} {'rows':>11} {'peak RSS':>9} {'+RSS':>7} "
        f"{'CLI s':>7}",
    ]
    shared = False
    for name, a in r["assets"].items():
        rows = f"{a['rows']:,}" if a["rows"] is not None else "-"
        cli = f"{a['cli_seconds']:.2f}" if a.get("cli_seconds") is not None else "-"
        mark = "*" if a.get("step_makes") else " "
        shared = shared or bool(a.get("step_makes"))
        lines.append(f"{name:<30} {a.get('group') or '':<12} {a['seconds']:>8.2f}{mark}{rows:>10} "
                     f"{_mb(a['peak_memory_mb']):>9} {_mb(a['memory_increase_mb']):>7} {cli:>7}")
    if shared:
        lines.append("* made by one step together with another asset: the step's time and memory")
    t = r["targets"]
    g = r["growth"]
    d = r["daily_graph"]
    lines += [
        "",
        f"whole daily partition, in-process   {d['run_seconds']:8.1f} s   peak RSS "
        f"{r['peak_rss_mb']:,.0f} MB   (steps {d['step_seconds']:.1f} s; the process with "
        f"imports {d['process_seconds']:.1f} s)",
    ]
    if r["cli"]:
        lines.append(f"whole daily partition, CLI          {r['cli']['seconds']:8.1f} s   peak RSS "
                     f"{r['cli']['peak_rss_mb']:,.0f} MB   (steps {r['cli']['step_seconds']:.1f} s)")
    if g:
        lines.append(
            "growth (raw, features, forecasting steps): " + ", ".join(
                f"{n} days of history {sec:.2f} s"
                for n, sec in zip(g["history_days"], g["seconds"]))
            + f" -> incremental_ratio {r['incremental_ratio']} ({g['history_days'][1]} against "
            f"{g['history_days'][0]}); {g['history_days'][2]} against {g['history_days'][1]}: "
            f"{g['ratio_full']}")
    if r.get("growth_years"):
        g = r["growth_years"]
        lines.append(f"growth over years (the same steps): {g['history_days'][0]} days of history "
                     f"{g['seconds'][0]:.2f} s, {g['history_days'][1]} days {g['seconds'][1]:.2f} s"
                     f" -> growth_ratio_2y_1y {g['ratio']}")
    bulk = r["history"].get("bulk")
    if bulk:
        lines.append(
            f"history built in bulk: {bulk['seconds']:.0f} s, peak RSS "
            f"{bulk['peak_rss_mb']:,.0f} MB (" + "; ".join(
                f"{ph['phase']} {ph['seconds']:.0f} s" for ph in bulk["phases"]) + ")")
    v = r["sql_vs_pandas"]
    lines += [] if v is None else [
        f"health features ({v['telemetry_rows']:,} telemetry rows): DuckDB SQL "
        f"{v['duckdb_seconds']:.2f} s, pandas {v['pandas_seconds']:.2f} s (+{v['pandas_read_seconds']:.2f} s "
        f"to read) -> pandas/DuckDB {v['pandas_over_duckdb']}x; "
        f"{'equal' if v['equal'] else 'NOT EQUAL'} (max abs diff {v['max_abs_diff']:.2g})"]
    lines += [
        "",
        f"targets ({'large' if r['scale'] == 'large' else 'utility'} scale, 2 cores): "
        + "; ".join(
            f"{k} {x['value']} {x['target']} {'met' if x['met'] else 'MISSED'}"
            for k, x in t.items()),
    ]
    return "\n".join(lines)


def write_docs(r: dict[str, Any], page: Path) -> list[str]:
    """The printed tables of a bench.json into the page's section `bench:<scale>`, and growth
    over years into `bench:<scale>:years`, each headed by the date, the machine and the command.
    Returns the sections written."""
    when = datetime.fromisoformat(r["measured_at"]) if r.get("measured_at") else None
    written = []
    if r.get("growth_years"):
        body = f"```text\n{format_long_growth(r)}\n```\n\n{r['growth_years']['compared']}."
        key = f"bench:{r['scale']}:years"
        results_doc.rewrite_section(page, key, results_doc.measured(
            body, results_doc.command_line(), when=when, machine_info=r.get("machine")))
        written.append(key)
    if "assets" not in r:
        return written
    tables = format_table(r) + ("\n\n" + format_side_by_side(r) if len(r.get("backends", {})) > 1
                                else "")
    body = (f"Speed and memory of one daily partition ({r['scale']} scale; what each column "
            f"means: [the benchmark](#speed-and-memory-make-bench)).\n\n```text\n{tables}\n```")
    results_doc.rewrite_section(page, f"bench:{r['scale']}", results_doc.measured(
        body, results_doc.command_line(), when=when, machine_info=r.get("machine")))
    return [f"bench:{r['scale']}", *written]


def _mb(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    export.write_atomic_text(json.dumps(payload, indent=2, default=str) + "\n", path)


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """A BenchConfig from the `bench` command's arguments and the user's settings."""
    from gridassets.defs.partitions import HISTORY_START

    user = Settings.from_env()
    circuits, transformers = SCALES[args.scale]
    bulk = args.scale in BULK_SCALES
    start = args.history_start or date.fromisoformat(HISTORY_START)
    day = args.day or (bulk_default_day(start) if bulk else default_day(start))
    growth = tuple(args.growth)
    if len(growth) != 2 or not 0 < growth[0] < growth[1]:
        raise BenchError(f"--growth needs two history lengths, shorter first; got {args.growth}")
    if not bulk and (day - start).days <= growth[1]:
        raise BenchError(f"--day {day} must come more than {growth[1]} days after {start}")
    warmup = args.forecast_warmup
    if warmup is None:
        warmup = BULK_FORECAST_WARMUP_DAYS if bulk else FORECAST_WARMUP_DAYS
    long_growth = tuple(args.long_growth) if args.long_growth else None
    if long_growth is None and (args.scale in LONG_GROWTH_SCALES or args.only_long_growth):
        long_growth = default_long_growth(start)
    if args.no_long_growth:
        if args.only_long_growth:
            raise BenchError("--no-long-growth and --only-long-growth contradict each other")
        long_growth = None
    if long_growth is not None and (len(long_growth) != 2
                                    or not 0 < long_growth[0] < long_growth[1]):
        raise BenchError(f"--long-growth needs two history lengths, shorter first; got "
                         f"{args.long_growth}")
    return BenchConfig(
        scale=args.scale, circuits=args.circuits or circuits,
        transformers=args.transformers or transformers, seed=user.seed,
        root=(args.root or user.data_dir / "bench" / args.scale).resolve(),
        out=(args.out or user.outputs_dir / ("bench-years.json" if args.only_long_growth
                                             else "bench.json")).resolve(),
        start=start, day=day, models=not (args.no_models or bulk), growth_days=growth,
        growth_repeat=max(1, args.repeat),
        forecast_warmup_days=warmup, cli=not (args.no_cli or bulk), reuse=args.reuse,
        pandas=not bulk, bulk=bulk, long_growth=long_growth,
        only_long_growth=args.only_long_growth,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m gridassets bench`."""
    def day(text: str) -> date:
        return date.fromisoformat(text)

    def pair(text: str) -> tuple[int, ...]:
        return tuple(int(x) for x in text.split(","))

    parser.add_argument("--scale", choices=sorted(SCALES), default="demo",
                        help="demo: 40 circuits, 2,000 transformers; utility: 500, 20,000; "
                             "large: 5,000, 200,000 (history built in bulk: only what the "
                             "measured day reads; no models, scores, growth or CLI run yet)")
    parser.add_argument("--circuits", type=int, help="override the scale's circuits")
    parser.add_argument("--transformers", type=int, help="override the scale's transformers")
    # Not --start: `python -m gridassets` pairs a --start with an --end.
    parser.add_argument("--history-start", type=day, help="first day of history (default: the "
                        "first daily partition)")
    parser.add_argument("--day", type=day, help="the measured partition (default: the first "
                        "Wednesday whose week's models get a full training window)")
    parser.add_argument("--growth", type=pair, default=GROWTH_DAYS,
                        help="the two history lengths compared, e.g. 7,90 (default)")
    parser.add_argument("--repeat", type=int, default=GROWTH_REPEAT,
                        help="runs of each growth partition (each step counts its fastest)")
    parser.add_argument("--forecast-warmup", type=int, default=None,
                        help=f"days of load forecasts built before each measured day (default "
                             f"{FORECAST_WARMUP_DAYS}; large scale {BULK_FORECAST_WARMUP_DAYS})")
    parser.add_argument("--long-growth", type=pair, default=None,
                        help="growth over years (growth_ratio_2y_1y): the two history lengths "
                             "compared, e.g. 387,751 (the default, measured at utility scale: "
                             "the first day with every window full, and 52 weeks later)")
    parser.add_argument("--no-long-growth", action="store_true",
                        help="do not measure growth over years")
    parser.add_argument("--only-long-growth", action="store_true",
                        help="measure growth over years alone (about 40 minutes at utility "
                             "scale), on the embedded backend")
    parser.add_argument("--no-models", action="store_true",
                        help="no models and no scores (a quick run on a short history)")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI measurement")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the history built by an earlier run with the same options")
    parser.add_argument("--root", type=Path, help="the benchmark's folder "
                        "(default: <data dir>/bench/<scale>)")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both",
                        help="the warehouse measured (default: both, side by side)")
    parser.add_argument("--out", type=Path, help="where bench.json goes "
                        "(default: <data dir>/outputs/bench.json)")
    parser.add_argument("--docs", type=Path, default=None,
                        help="also write the figures into this page's section bench:<scale> "
                             "(make bench: docs/results.md)")


def main(argv: list[str] | None = None) -> int:
    """Entry of a measuring child process (`python -m gridassets.bench --measure DAY ...`)."""
    parser = argparse.ArgumentParser(prog="python -m gridassets.bench")
    parser.add_argument("--measure", required=True, help="the partition to run")
    parser.add_argument("--groups", required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    measure_in_process(args.measure, tuple(args.groups.split(",")), args.result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
