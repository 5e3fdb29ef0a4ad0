"""Scale-out mode on real parts: PostgreSQL, Redis, Celery workers and the daemon as local
processes (gridassets/scaleout/cluster.py), over a copy of the session's Delta demo warehouse.

- A backfill of three days of the daily graph (and the week's models) through the backfill daemon,
  with a real NWS alert dropped while it runs: the storm list is written, every run's steps ran on
  Celery workers (more than one), and every partition of those days equals the embedded build of
  the same days on another copy, present exactly once.
- Faults: a worker killed in the middle of a step (its task goes to another worker, the run
  succeeds, the partition is whole); the broker restarted while a backfill runs (the backfill
  completes); two runs writing one partition at once (both succeed, the partition holds one
  run's rows once).
Timings are printed as `E2E_TIMING` lines (`pytest -s`); targets belong to the benchmark.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from gridassets.scaleout import backfill, cluster, demo
from gridassets.settings import Settings
from gridassets.storage.backend import open_warehouse
from gridassets.storage.compare import compare_days
from gridassets_tests.conftest import REPO_ROOT, TEST_FLEET

pytestmark = pytest.mark.e2e

DAGSTER = Path(sys.executable).with_name("dagster")
FIRST, LAST = date(2025, 7, 1), date(2025, 7, 3)  # after the demo window (ends 2025-06-30)
FLEET_ENV = {"GRIDASSETS_SEED": str(TEST_FLEET["seed"]),
             "GRIDASSETS_CIRCUITS": str(TEST_FLEET["n_circuits"]),
             "GRIDASSETS_TRANSFORMERS": str(TEST_FLEET["n_transformers"]),
             # A task out this long on a worker that died is handed to another one.
             "GRIDASSETS_CELERY_REDELIVER_S": "20",
             "GRIDASSETS_BACKFILL_DAYS": "2"}
WAIT_S = 600.0


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, delta_demo_data) -> Path:
    """The embedded build of FIRST..LAST on a copy of the demo warehouse."""
    root = tmp_path_factory.mktemp("embedded")
    data = root / "data"
    shutil.copytree(delta_demo_data, data)
    demo.embedded_build(data, root / "home", FIRST, LAST, (LAST - FIRST).days + 1,
                        root / "build.log", env=FLEET_ENV)
    return data


@pytest.fixture(scope="module")
def scaleout(tmp_path_factory, delta_demo_data, embedded):
    """A running cluster (3 step workers, 1 storm worker, the daemon) on another copy."""
    root = tmp_path_factory.mktemp("scaleout")
    data = root / "data"
    shutil.copytree(delta_demo_data, data)
    with pytest.MonkeyPatch.context() as mp, \
            cluster.running(root / "cluster", data, settings_env=FLEET_ENV) as c:
        mp.setenv("GRIDASSETS_POSTGRES_URL", c.postgres_url)  # for the instance's dagster.yaml
        instance = c.instance()
        try:
            yield c, instance
        finally:
            instance.dispose()


def materialize(c: cluster.Cluster, select: str, partition: str) -> subprocess.Popen:
    """`dagster asset materialize` in scale-out mode: the run in the command's process, its
    steps on the workers."""
    return subprocess.Popen(
        [str(DAGSTER), "asset", "materialize", "-m", "gridassets.definitions",
         "--select", select, "--partition", partition],
        cwd=REPO_ROOT, env=c.process_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)


def worker_logs(c: cluster.Cluster) -> dict[str, str]:
    return {p.name: Path(p.log).read_text(errors="replace") for p in c.processes
            if p.name.startswith("worker-steps")}


def celery_hosts(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The Celery worker of every step execution of the run, in order."""
    hosts = []
    for record in instance.all_logs(run_id):
        message = record.message or ""
        if "in celery worker" in message and record.dagster_event is not None:
            data = record.dagster_event.engine_event_data
            entry = data.metadata.get("Celery worker") if data else None
            hosts.append(str(entry.value) if entry is not None else "?")
    return hosts


def telemetry_rows(c: cluster.Cluster, day: str) -> tuple[int, int]:
    """(rows, distinct transformer-hours) of transformer_telemetry on `day`."""
    store = open_warehouse(Settings(data_dir=c.data_dir, backend="delta"))
    with store.connect(read_only=True) as con:
        return con.execute(
            "select count(*), count(distinct (transformer_id, timestamp)) "
            "from raw.transformer_telemetry where cast(timestamp as date) = ?", [day]).fetchone()


def test_a_backfill_on_workers_equals_the_embedded_build_with_a_storm_during_it(
        scaleout, embedded):
    from gridassets.definitions import defs

    c, instance = scaleout
    requested = time.time()
    backfill_id = backfill.launch(instance, defs, FIRST, LAST)
    # The alert lands once the backfill's first runs are on the workers.
    deadline = time.time() + WAIT_S
    while not instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id},
                                              statuses=[dg.DagsterRunStatus.STARTED])):
        assert time.time() < deadline, "no backfill run started"
        time.sleep(0.5)
    landed = demo.drop_alert(c.data_dir / "alerts")
    ready = None
    while ready is None:
        assert time.time() < deadline, "no storm list while the backfill ran"
        ready = demo.first_storm_list(instance, landed)
        time.sleep(0.5)
    report = backfill.wait(instance, backfill_id, timeout=WAIT_S)
    print(f"\nE2E_TIMING alert to storm list during the backfill: {ready - landed:.1f} s")
    print(f"E2E_TIMING backfill {FIRST}..{LAST}: {report.seconds:.0f} s, {len(report.runs)} runs")
    print(report.table())
    assert report.succeeded, report.table()
    assert landed < requested + report.seconds, "the alert did not land while the backfill ran"

    # Every step of every run ran on a Celery worker, and the work was shared.
    hosts = [h for r in report.runs for h in celery_hosts(instance, r.run_id)]
    assert hosts and all(h.startswith("steps") for h in hosts), hosts
    assert len(set(hosts)) >= 2, hosts
    storm_runs = instance.get_runs(dg.RunsFilter(job_name="storm_job"))
    assert storm_runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in storm_runs)
    assert all(h.startswith("storms") for r in storm_runs for h in celery_hosts(instance, r.run_id))

    checked, problems = compare_days(embedded, c.data_dir, FIRST, LAST)
    print(f"E2E_TIMING compared: {checked}")
    assert not problems, problems
    compared = re.match(r"(\d+) tables", checked)
    assert compared and int(compared.group(1)) >= 17, checked  # the daily graph's and the models'


def test_a_worker_killed_mid_step_hands_the_step_to_another_and_the_partition_is_whole(scaleout):
    c, instance = scaleout
    day = "2025-07-05"
    before = worker_logs(c)
    run = materialize(c, "transformer_telemetry", day)
    # The first worker to take the step's task is killed with it: its whole process group, as a
    # lost host would be.
    killed = None
    deadline = time.time() + 120
    while killed is None:
        assert time.time() < deadline and run.poll() is None, "no worker took the step"
        for name, text in worker_logs(c).items():
            if text[len(before.get(name, "")):].count("Task execute_plan[") >= 1:
                killed = c.named(name)
                break
        else:
            time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed_at = time.time()
    out, _ = run.communicate(timeout=WAIT_S)
    print(f"\nE2E_TIMING worker killed mid-step to the run's end: {time.time() - killed_at:.1f} s")
    c.processes.remove(killed)
    c.start_worker(f"{killed.name.removeprefix('worker-')}b", ["dagster", "forecast"])
    assert run.returncode == 0, out[-3000:]
    assert "succeeded in" not in Path(killed.log).read_text()[len(before[killed.name]):]
    [run_record] = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": day}), limit=1)
    hosts = celery_hosts(instance, run_record.run_id)
    # The killed worker may have died before saying it took the step; the one that ran it is
    # another.
    assert hosts and not hosts[-1].startswith(killed.name.removeprefix("worker-") + "@"), hosts
    rows, distinct = telemetry_rows(c, day)
    assert rows == distinct == TEST_FLEET["n_transformers"] * 24


def test_the_broker_restarted_mid_backfill_and_the_backfill_completes(scaleout):
    from gridassets.definitions import defs

    c, instance = scaleout
    first, last = date(2025, 7, 10), date(2025, 7, 11)
    backfill_id = backfill.launch(instance, defs, first, last, models=False, groups=("raw",))
    deadline = time.time() + WAIT_S
    while not instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id},
                                              statuses=[dg.DagsterRunStatus.STARTED])):
        assert time.time() < deadline, "no backfill run started"
        time.sleep(0.2)
    c.restart_redis(down_s=3.0)
    report = backfill.wait(instance, backfill_id, timeout=WAIT_S)
    print(f"\nE2E_TIMING backfill with the broker restarted: {report.seconds:.0f} s")
    print(report.table())
    assert report.status == "COMPLETED_SUCCESS", report.table()
    for day in ("2025-07-10", "2025-07-11"):
        rows, distinct = telemetry_rows(c, day)
        assert rows == distinct == TEST_FLEET["n_transformers"] * 24


def test_two_runs_writing_one_partition_at_once_leave_it_once(scaleout):
    c, instance = scaleout
    day = "2025-07-06"
    runs = [materialize(c, "transformer_telemetry", day) for _ in range(2)]
    outputs = [r.communicate(timeout=WAIT_S)[0] for r in runs]
    for run, out in zip(runs, outputs):
        assert run.returncode == 0, out[-3000:]
    records = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": day}))
    assert len(records) == 2
    (s1, e1), (s2, e2) = [(r.start_time, r.end_time) for r in records]
    assert max(s1, s2) < min(e1, e2), "the two runs did not overlap"
    rows, distinct = telemetry_rows(c, day)
    assert rows == distinct == TEST_FLEET["n_transformers"] * 24
