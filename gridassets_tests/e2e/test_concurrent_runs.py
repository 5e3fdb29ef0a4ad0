"""Two CLI runs of different partitions at once, against one DuckDB file, both succeed.

DuckDB lets one process write a file at a time. Two mechanisms stand between concurrent writers: the
"duckdb" pool (one slot in the shipped dagster.yaml, op granularity: the executor of each run claims
the slot before a step starts and frees it when the step ends), and the warehouse's own lock retry
(`gridassets.warehouse.connect`). This test shows both at work: the waiting run logs that its steps
were blocked by the pool, and the steps of the two runs take turns. Dagster's SQLite instance
storage claims a slot without an atomic compare-and-set (a select, then an update of that row), so
two processes asking at the same instant can, rarely, both get it; the two steps then run side by
side and the lock retry keeps their connections apart. Either way both runs succeed with every row,
and no step needs a retry.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.domain.schemas import RAW_TABLES
from gridassets_tests.conftest import REPO_ROOT, SMALL_FLEET, subprocess_env

pytestmark = pytest.mark.e2e
DAGSTER = str(Path(sys.executable).with_name("dagster"))
DAYS = ("2025-06-01", "2025-06-02")
RAW = ",".join(spec.name for spec in RAW_TABLES)
TIMEOUT_S = 240


def step_windows(instance: dg.DagsterInstance, run_id: str) -> list[tuple[float, float, str]]:
    """(start, end, step) of every step of a run, from its event log."""
    starts, windows = {}, []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS,
                                  dg.DagsterEventType.STEP_FAILURE):
            windows.append((starts[event.step_key], entry.timestamp, event.step_key))
    return windows


def events(instance: dg.DagsterInstance, run_id: str) -> list[tuple[dg.DagsterEventType, str]]:
    return [(e.dagster_event.event_type, e.dagster_event.message or "")
            for e in instance.all_logs(run_id) if e.dagster_event is not None]


def test_two_partitions_materialized_at_once_both_land_whole(tmp_path, dagster_home):
    data = tmp_path / "data"
    env = subprocess_env(data, dagster_home)
    # The instance exists before the runs, as it does for an operator; two processes creating
    # its SQLite storage at the same moment would test Dagster's migrations, not our pool.
    with dg.DagsterInstance.from_config(str(dagster_home)):
        pass

    procs = []
    started = time.monotonic()
    try:
        for day in DAYS:
            procs.append(subprocess.Popen(
                [DAGSTER, "asset", "materialize", "-m", "gridassets.definitions",
                 "--select", RAW, "--partition", day],
                cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, start_new_session=True,
            ))
        outputs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
    elapsed = time.monotonic() - started
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]

    # Every row of both days is there, exactly once.
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        for day in DAYS:
            expected = sim.raw_day(date.fromisoformat(day))
            for spec in RAW_TABLES:
                stored = con.execute(
                    f"select count(*) from raw.{spec.name} where cast({spec.stored_by} as date) = ?",
                    [day],
                ).fetchall()[0][0]
                assert stored == len(expected[spec.name]), (spec.name, day)
        assert con.execute("select count(*) from raw.transformer_telemetry").fetchall()[0][0] == \
            len(DAYS) * SMALL_FLEET["n_transformers"] * 24

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(DAYS)
        assert all(r.is_success for r in runs)
        windows = {r.run_id: step_windows(instance, r.run_id) for r in runs}
        logs = {r.run_id: events(instance, r.run_id) for r in runs}
        slots_left = instance.event_log_storage.get_concurrency_info("duckdb")

    # The pool made the writers take turns: steps of one run overlap steps of the other at most
    # where both claimed the slot at the same instant (see the module docstring) ...
    (a, wa), (b, wb) = windows.items()
    assert len(wa) == len(wb) == len(RAW_TABLES)
    overlaps = [(s1, s2) for (st1, en1, s1) in wa for (st2, en2, s2) in wb
                if st1 < en2 and st2 < en1]
    assert len(overlaps) < len(RAW_TABLES), overlaps
    # ... although the runs were under way at the same time ...
    spans = [(min(w[0] for w in ws), max(w[1] for w in ws)) for ws in (wa, wb)]
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], (
        f"the two runs did not overlap at all ({spans}): nothing was tested")
    # ... because one run's steps waited for the slot the other held.
    blocked = {run_id[:8]: sum("blocked by limit for pool duckdb" in m for _, m in evs)
               for run_id, evs in logs.items()}
    assert sum(blocked.values()) >= 1, blocked
    # No step needed a retry (a DuckDB lock error past warehouse.connect's own retries would
    # have shown as one), and the slot is free again.
    assert not any(t == dg.DagsterEventType.STEP_UP_FOR_RETRY for evs in logs.values() for t, _ in evs)
    assert slots_left.slot_count == 1 and not slots_left.claimed_slots

    print(f"\ntwo concurrent runs: {elapsed:.1f} s; steps blocked by the duckdb pool: {blocked}; "
          f"steps side by side: {overlaps or 'none'}")
    first = min(w[0] for ws in windows.values() for w in ws)
    for run_id, steps in windows.items():
        spans = ", ".join(f"{s} {st - first:.1f}-{en - first:.1f}s" for st, en, s in sorted(steps))
        print(f"  run {run_id[:8]}: {spans}")
