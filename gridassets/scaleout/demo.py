"""`make scaleout-demo`: the daily graph backfilled on a local scale-out cluster, a storm alert
dropped while it runs, and the result checked against the embedded build of the same days.

1. History: `python -m gridassets run` (embedded, Delta warehouse) builds the days before the
   backfill, with the models and lists of its last week.
2. The same folder is copied twice. On one copy the embedded build makes the backfill's days
   (`run --start FIRST --end LAST`: raw data, features, the weeks' models, forecasts, scores, in
   the command's own process). The other gets a cluster: PostgreSQL, Redis, step workers, a storm
   worker and the daemon, and one backfill of the same days through the backfill daemon.
3. While the backfill runs, a real NWS alert collection (its times made current) is renamed into
   the alerts inbox; the time until its storm's crew list is written is the alert-to-list time.
4. Every partition of the backfill's days is compared with the embedded build: present exactly
   once (the same rows per partition) and equal (the same values; floats within 1e-9).

Everything runs under a temporary folder (kept with --keep) and every process started is stopped
on the way out, also on an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from gridassets.scaleout import backfill, cluster
from gridassets.settings import Settings

# Small enough for two cores, big enough for both models to be trained and promoted.
DEMO_FLEET = {"GRIDASSETS_SEED": "7", "GRIDASSETS_CIRCUITS": "12",
              "GRIDASSETS_TRANSFORMERS": "600"}
HISTORY_START = date(2025, 1, 6)
FIRST_DAY = date(2025, 6, 2)  # a Monday: the backfill trains the models of its two weeks
DAYS = 10
HISTORY_SCORE_DAYS = 7
ALERT_FILE = "northwest-active-alerts.json"
BUILT = ".built"
NWS_SAMPLES = cluster.REPO_ROOT / "gridassets_tests" / "data" / "nws"
ALERT_AFTER_S = 20.0  # the alert lands this long after the backfill is requested
STORM_TIMEOUT_S = 300.0
# Settings of the caller's environment that the cluster's processes get too.
PASSED_ON = ("GRIDASSETS_BACKFILL_DAYS", "GRIDASSETS_CELERY_REDELIVER_S")


@dataclass
class DemoResult:
    embedded_s: float
    backfill: backfill.BackfillReport
    alert_to_list_s: float | None
    problems: list[str] = field(default_factory=list)
    checked: str = ""

    @property
    def ok(self) -> bool:
        return (self.backfill.succeeded and not self.problems
                and self.alert_to_list_s is not None)


def _env(data_dir: Path, dagster_home: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GRIDASSETS_") and k != "DAGSTER_HOME"}
    env.update(DEMO_FLEET)
    env.update({"GRIDASSETS_DATA_DIR": str(data_dir), "GRIDASSETS_WAREHOUSE": "delta"})
    if dagster_home is not None:
        env["DAGSTER_HOME"] = str(dagster_home)
    env.update(extra)
    return env


def embedded_build(data_dir: Path, home: Path, first: date, last: date, score_days: int,
                   log: Path, env: dict[str, str] | None = None) -> float:
    """`python -m gridassets run` over [first, last] on the Delta warehouse; seconds taken."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(cluster.REPO_ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    started = time.monotonic()
    with open(log, "ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "gridassets", "run", "--start", first.isoformat(),
             "--end", last.isoformat(), "--score-days", str(score_days)],
            cwd=cluster.REPO_ROOT, env=_env(data_dir, home, **(env or {})), stdout=out,
            stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"the embedded build {first}..{last} failed; see {log}")
    return time.monotonic() - started


def drop_alert(alerts_root: Path, name: str = "northwest.json") -> float:
    """Rename the real northwest collection (times made current) into the inbox, the way writers
    are told to; returns the moment it landed."""
    from gridassets.domain.nws_samples import with_real_times

    raw = with_real_times((NWS_SAMPLES / ALERT_FILE).read_bytes(), datetime.now(timezone.utc))
    outgoing = alerts_root / "outgoing"
    outgoing.mkdir(parents=True, exist_ok=True)
    (outgoing / name).write_bytes(raw)
    (alerts_root / "inbox").mkdir(parents=True, exist_ok=True)
    landed = time.time()
    os.rename(outgoing / name, alerts_root / "inbox" / name)
    return landed


def first_storm_list(instance, since: float) -> float | None:
    """When the first storm crew list after `since` was stored (epoch seconds): the first
    materialization of storm_priority_circuits, which comes after its CSV is written. (The
    CSV's own time is its last write: a later message of the same storm rewrites it.)"""
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("storm_priority_circuits"),
                              after_timestamp=float(since)), limit=100).records
    return min((r.timestamp for r in records), default=None)


def storm_phases(instance, landed: float) -> str:
    """Where the alert's time went: the first storm run's creation, start and end."""
    import dagster as dg

    records = instance.get_run_records(dg.RunsFilter(job_name="storm_job"))
    records = [r for r in records if r.end_time and r.end_time >= landed]
    if not records:
        return "no storm run ended"
    first = min(records, key=lambda r: r.end_time)
    created = first.create_timestamp.replace(tzinfo=timezone.utc).timestamp() \
        if first.create_timestamp.tzinfo is None else first.create_timestamp.timestamp()
    return (f"run requested +{created - landed:.1f} s, started +{first.start_time - landed:.1f} s, "
            f"ended +{first.end_time - landed:.1f} s; {len(records)} storm runs")


def run_demo(root: Path, days: int = DAYS, workers: int = 3, log=print) -> DemoResult:
    from gridassets.storage.compare import compare_days

    first, last = FIRST_DAY, FIRST_DAY + timedelta(days=days - 1)
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    history = root / "history"
    log(f"1. history {HISTORY_START}..{first - timedelta(days=1)} (embedded build)")
    if (history / BUILT).exists():
        log(f"   kept from an earlier demo in {root}")
    else:
        shutil.rmtree(history, ignore_errors=True)
        seconds = embedded_build(history, root / "homes" / "history", HISTORY_START,
                                 first - timedelta(days=1), HISTORY_SCORE_DAYS,
                                 logs / "history.log")
        (history / BUILT).touch()
        log(f"   {seconds:.0f} s")

    embedded, scaled = root / "embedded", root / "scaleout"
    for target in (embedded, scaled, root / "cluster", root / "homes" / "embedded"):
        shutil.rmtree(target, ignore_errors=True)
    for target in (embedded, scaled):
        shutil.copytree(history, target, ignore=shutil.ignore_patterns(BUILT))
    log(f"2. embedded build of {first}..{last} (one process)")
    embedded_s = embedded_build(embedded, root / "homes" / "embedded", first, last, days,
                                logs / "embedded.log")
    log(f"   {embedded_s:.0f} s")

    log(f"3. scale-out: PostgreSQL, Redis, {workers} step workers, 1 storm worker, the daemon")
    settings_env = {**DEMO_FLEET, **{k: os.environ[k] for k in PASSED_ON if k in os.environ}}
    with cluster.running(root / "cluster", scaled, settings_env=settings_env,
                         workers=workers) as c:
        from gridassets.definitions import defs

        instance = c.instance()
        backfill_id = backfill.launch(instance, defs, first, last)
        log(f"   backfill {backfill_id}: {first}..{last}, runs of at most "
            f"{settings_env.get('GRIDASSETS_BACKFILL_DAYS', Settings().backfill_days)} days")
        time.sleep(ALERT_AFTER_S)
        landed = drop_alert(scaled / "alerts")
        log(f"   alert {ALERT_FILE} dropped into the inbox {ALERT_AFTER_S:.0f} s into the backfill")
        ready = None
        deadline = time.time() + STORM_TIMEOUT_S
        while ready is None and time.time() < deadline:
            ready = first_storm_list(instance, landed)
            time.sleep(0.5)
        alert_s = None if ready is None else ready - landed
        log(f"   alert to storm list: {alert_s:.1f} s" if alert_s is not None else
            f"   no storm list {STORM_TIMEOUT_S:.0f} s after the alert")
        report = backfill.wait(instance, backfill_id)
        log(f"   the first storm run: {storm_phases(instance, landed)}")
        instance.dispose()
    log(f"   backfill {report.status} in {report.seconds:.0f} s, {len(report.runs)} runs")
    log(report.table())

    log(f"4. every partition of {first}..{last} against the embedded build")
    checked, problems = compare_days(embedded, scaled, first, last)
    log(f"   {checked}")
    for problem in problems:
        log(f"   MISMATCH {problem}")
    return DemoResult(embedded_s=embedded_s, backfill=report, alert_to_list_s=alert_s,
                      problems=problems, checked=checked)


def main(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="gridassets-scaleout-"))
    print(f"gridassets scale-out demo in {root}")
    try:
        result = run_demo(root, days=args.days, workers=args.workers)
    except KeyboardInterrupt:
        print("interrupted: every process the demo started has been stopped")
        return 130
    finally:
        if not args.keep and not args.root:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"embedded build of {args.days} days: {result.embedded_s:.0f} s; scale-out backfill: "
          f"{result.backfill.seconds:.0f} s on {args.workers} workers")
    if result.alert_to_list_s is not None:
        print(f"alert to storm list during the backfill: {result.alert_to_list_s:.1f} s")
    print("every partition present once and equal to the embedded build: "
          + ("yes" if not result.problems else f"NO ({len(result.problems)} problem(s))"))
    return 0 if result.ok else 1
