"""`make bench-scaleout`: a 30-day backfill of the daily graph in one process, then on 1, 2 and 3
Celery workers, with a storm alert dropped into each backfill; seconds, speed-up, the
alert-to-list time, the measured cost of each step, and what N hosts would give.

Every configuration starts from a copy of the same history (built once, embedded, on the Delta
warehouse) and makes the same days. Demo scale backfills the whole daily graph and the weeks'
models; utility scale (500 circuits, 20,000 transformers) the raw data, features and the load
forecast (no trained models at that scale without a long history: see `make bench`).
Writes `<root>/bench-scaleout.json` and, with --write-docs, the table of docs/scaleout.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from gridassets import results_doc, runner
from gridassets.scaleout import backfill, cluster, demo

DOCS = cluster.REPO_ROOT / "docs" / "scaleout.md"


@dataclass(frozen=True)
class Scale:
    fleet: dict[str, str]
    history_start: date
    first: date
    groups: tuple[str, ...]
    models: bool


SCALES = {
    "demo": Scale(demo.DEMO_FLEET, demo.HISTORY_START, demo.FIRST_DAY,
                  ("raw", "integrity", "features", "forecasting", "scores"), True),
    "utility": Scale({"GRIDASSETS_SEED": "7", "GRIDASSETS_CIRCUITS": "500",
                      "GRIDASSETS_TRANSFORMERS": "20000"},
                     date(2025, 4, 28), date(2025, 6, 2),
                     ("raw", "integrity", "features", "forecasting"), False),
}


def _history(root: Path, scale: Scale, log) -> Path:
    history = root / "history"
    if (history / demo.BUILT).exists():
        log(f"history kept from an earlier run in {root}")
        return history
    shutil.rmtree(history, ignore_errors=True)
    last = scale.first - timedelta(days=1)
    started = time.monotonic()
    if scale.models:
        demo.embedded_build(history, root / "homes" / "history", scale.history_start, last,
                            demo.HISTORY_SCORE_DAYS, root / "history.log", env=scale.fleet)
    else:
        _embedded_groups(history, root / "homes" / "history", scale, scale.history_start, last,
                         ("raw", "features"), root / "history.log")
    (history / demo.BUILT).touch()
    log(f"history {scale.history_start}..{last}: {time.monotonic() - started:.0f} s")
    return history


def _embedded_groups(data: Path, home: Path, scale: Scale, first: date, last: date,
                     groups, log_file: Path) -> float:
    """The selected groups over [first, last] in this process's runner, in chunks (embedded)."""
    import subprocess
    import sys

    select = {"raw": runner.RAW, "features": runner.FEATURES,
              "forecasting": "load_forecast,load_forecast_models,load_forecast_backtest"}
    code = (
        "import sys, dagster as dg\n"
        "from datetime import date\n"
        "from gridassets import runner\n"
        "from gridassets.definitions import defs\n"
        "first, last = date.fromisoformat(sys.argv[1]), date.fromisoformat(sys.argv[2])\n"
        "instance = runner.instance()\n"
        "runner.materialize(defs, runner.FLEET, dagster_instance=instance, log_level='WARNING')\n"
        "for select in sys.argv[3:]:\n"
        "    for a, b in runner.chunks(first, last, runner.chunk_days()):\n"
        "        runner.materialize(defs, select, start=a.isoformat(), end=b.isoformat(),\n"
        "                           dagster_instance=instance, log_level='WARNING')\n")
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(cluster.REPO_ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    started = time.monotonic()
    with open(log_file, "ab") as out:
        done = subprocess.run(
            [sys.executable, "-c", code, first.isoformat(), last.isoformat(),
             *[select[g] for g in groups]],
            cwd=cluster.REPO_ROOT, env=demo._env(data, home, **scale.fleet), stdout=out,
            stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"the embedded build {first}..{last} failed; see {log_file}")
    return time.monotonic() - started


def step_costs(instance, run_ids) -> dict[str, float]:
    """Seconds per step key (the asset or multi-asset), summed over the runs."""
    costs: dict[str, float] = defaultdict(float)
    for run_id in run_ids:
        for stats in instance.get_run_step_stats(run_id):
            if stats.start_time and stats.end_time:
                costs[stats.step_key] += stats.end_time - stats.start_time
    return dict(costs)


def run_bench(root: Path, scale_name: str, days: int, workers: list[int], log=print) -> dict:
    scale = SCALES[scale_name]
    first, last = scale.first, scale.first + timedelta(days=days - 1)
    history = _history(root, scale, log)
    result: dict = {"scale": scale_name, "days": days, "first": str(first), "last": str(last),
                    "fleet": scale.fleet, "groups": list(scale.groups), "models": scale.models,
                    "configurations": [], "command": results_doc.command_line(),
                    "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": results_doc.machine()}

    target = root / "embedded"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(history, target, ignore=shutil.ignore_patterns(demo.BUILT))
    if scale.models:
        seconds = demo.embedded_build(target, root / "homes" / "embedded", first, last, days,
                                      root / "embedded.log", env=scale.fleet)
    else:
        seconds = _embedded_groups(target, root / "homes" / "embedded", scale, first, last,
                                   scale.groups, root / "embedded.log")
    log(f"in one process: {seconds:.0f} s")
    result["configurations"].append({"workers": 0, "label": "one process (embedded)",
                                     "seconds": round(seconds, 1)})

    for n in workers:
        target = root / f"workers-{n}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(root / f"cluster-{n}", ignore_errors=True)
        shutil.copytree(history, target, ignore=shutil.ignore_patterns(demo.BUILT))
        with cluster.running(root / f"cluster-{n}", target, settings_env=scale.fleet,
                             workers=n) as c:
            from gridassets.definitions import defs

            instance = c.instance()
            backfill_id = backfill.launch(instance, defs, first, last, models=scale.models,
                                          groups=scale.groups)
            ready = landed = None
            if scale.models:  # the storm assets score with the outage model
                time.sleep(demo.ALERT_AFTER_S)
                landed = demo.drop_alert(target / "alerts")
                deadline = time.time() + demo.STORM_TIMEOUT_S
                while ready is None and time.time() < deadline:
                    ready = demo.first_storm_list(instance, landed)
                    time.sleep(0.5)
            report = backfill.wait(instance, backfill_id, timeout=6 * 3600)
            costs = step_costs(instance, [r.run_id for r in report.runs])
            instance.dispose()
        alert_s = None if ready is None or landed is None else round(ready - landed, 1)
        log(f"{n} worker(s): {report.seconds:.0f} s, {len(report.runs)} runs, {report.status}; "
            f"alert to storm list {alert_s} s")
        result["configurations"].append({
            "workers": n, "label": f"{n} worker(s)", "seconds": round(report.seconds, 1),
            "runs": len(report.runs), "status": report.status, "alert_to_list_s": alert_s,
            "step_seconds": {k: round(v, 1) for k, v in sorted(costs.items())}})
    base = result["configurations"][0]["seconds"]
    for conf in result["configurations"]:
        conf["speedup"] = round(base / conf["seconds"], 2) if conf["seconds"] else None
    result["projection"] = projection(result)
    (root / "bench-scaleout.json").write_text(json.dumps(result, indent=2))
    return result


def projection(result: dict) -> dict:
    """What N hosts of 2 workers would take, from the 1-worker backfill (the least contended):
    its step work W (seconds of steps), the forecast chain F (its days follow each other, so no
    host count shortens it), and the rest of its time, O = measured - W: the daemon's passes (one
    per level of the graph and per run of the chain) and each run's process start, which more
    hosts do not shorten either. T(N) = max(W / 2N, F) + O."""
    confs = [c for c in result["configurations"] if c.get("step_seconds")]
    if not confs:
        return {}
    one = min(confs, key=lambda c: c["workers"])
    work = sum(one["step_seconds"].values())
    chain = sum(v for k, v in one["step_seconds"].items() if k.startswith("load_forecast"))
    overhead = max(0.0, one["seconds"] - work)
    hosts = {str(n): round(max(work / (2 * n), chain) + overhead, 0) for n in (1, 2, 4, 8, 16)}
    return {"step_work_s": round(work, 1), "forecast_chain_s": round(chain, 1),
            "overhead_s": round(overhead, 1), "seconds_by_hosts": hosts}


def table(result: dict) -> str:
    lines = [f"30-day backfill, {result['scale']} scale ({result['first']}..{result['last']}, "
             f"{result['fleet'].get('GRIDASSETS_CIRCUITS')} circuits, "
             f"{result['fleet'].get('GRIDASSETS_TRANSFORMERS')} transformers; groups "
             f"{', '.join(result['groups'])}{' and the weekly models' if result['models'] else ''}"
             ").", "",
             "| configuration | seconds | speed-up | runs | alert to storm list |",
             "|---|---:|---:|---:|---:|"]
    for c in result["configurations"]:
        alert = f"{c['alert_to_list_s']} s" if c.get("alert_to_list_s") is not None else "–"
        runs = c.get("runs", "–")
        lines.append(f"| {c['label']} | {c['seconds']:.0f} | {c['speedup']:.2f}× | "
                     f"{runs} | {alert} |")
    p = result.get("projection")
    if p:
        lines += ["", f"With 1 worker: step work {p['step_work_s']:.0f} s, of which the forecast "
                      f"chain {p['forecast_chain_s']:.0f} s; the other {p['overhead_s']:.0f} s are "
                      "the daemon's 30 s passes and each run's process start. "
                      "Projected for N hosts of 2 workers, max(work / 2N, chain) + the rest: "
                      + ", ".join(f"{n}: {s:.0f} s" for n, s in p["seconds_by_hosts"].items())
                      + "."]
    return "\n".join(lines)


def write_docs(result: dict, page: Path = DOCS) -> None:
    """The table into the page's section `bench-scaleout:<scale>`, headed by when, by which
    command and on which machine it was measured (when the result records them)."""
    body = table(result)
    if result.get("measured_at"):
        body = results_doc.measured(body, result.get("command") or "make bench-scaleout",
                                    when=datetime.fromisoformat(result["measured_at"]),
                                    machine_info=result.get("machine") or {})
    results_doc.rewrite_section(page, f"bench-scaleout:{result['scale']}", body)


def rewrite_docs(root: Path) -> None:
    """The table of docs/scaleout.md again from `<root>/bench-scaleout.json` (no new run)."""
    result = json.loads((root / "bench-scaleout.json").read_text())
    result["projection"] = projection(result)
    write_docs(result)


def main(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="gridassets-bench-"))
    workers = [int(w) for w in args.workers.split(",")]
    print(f"gridassets scale-out benchmark ({args.scale}, {args.days} days) in {root}")
    try:
        result = run_bench(root, args.scale, args.days, workers)
    except KeyboardInterrupt:
        print("interrupted: every process the benchmark started has been stopped")
        return 130
    print()
    print(table(result))
    if args.write_docs:
        write_docs(result)
        print(f"\nwritten to {DOCS}")
    return 0
