"""Three CLI runs of different days at once, against one Delta lake, all land whole.

With GRIDASSETS_WAREHOUSE=delta the assets are in no pool (gridassets/defs/policies.py): writers
of different partitions commit side by side, each write one Delta commit that replaces exactly its
partition. After the fleet registry, three `dagster asset materialize` processes build the raw
tables and the features of three days at once. All succeed, their steps ran at the same time
(none waited for a pool slot), and every partition holds its day's rows exactly once. The raw
tables are new when the runs start, so their first writes race to create each table: a write
that found no table must still replace only its own partition.

The days lie more than the features' 30-day window apart, so what each run computes does not
depend on how far the others have got.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from gridassets.defs.fleet.assets import circuits, transformers
from gridassets.defs.resources import GridSettings, build_resources
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.domain.schemas import RAW_TABLES
from gridassets.storage.delta import DeltaWarehouse
from gridassets_tests.conftest import REPO_ROOT, SMALL_FLEET, subprocess_env
from gridassets_tests.e2e.test_concurrent_runs import events, step_windows

pytestmark = pytest.mark.e2e
DAGSTER = str(Path(sys.executable).with_name("dagster"))
DAYS = ("2025-03-01", "2025-04-05", "2025-05-10")
# Feature table -> (its key, the raw table and column whose distinct values it has a row for).
FEATURES = {
    "transformer_daily_stats": (("transformer_id", "date"), "transformer_telemetry",
                                "transformer_id"),
    "transformer_health_features": (("transformer_id", "date"), "transformer_telemetry",
                                    "transformer_id"),
    "circuit_exposure_features": (("circuit_id", "date"), "feeder_load", "circuit_id"),
}
# Features are computed from judged readings only: the integrity assets run first in each run.
INTEGRITY = ["telemetry_signals", "telemetry_integrity"]
SELECT = ",".join([spec.name for spec in RAW_TABLES] + INTEGRITY + list(FEATURES))
TIMEOUT_S = 300


def materialize(env: dict, logs: Path, name: str, *args: str) -> subprocess.Popen:
    with (logs / f"{name}.log").open("w") as out:
        return subprocess.Popen(
            [DAGSTER, "asset", "materialize", "-m", "gridassets.definitions", *args],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def finish(procs: list[subprocess.Popen], timeout: float) -> None:
    """Wait for every process; kill what is left at the deadline."""
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)


def test_three_days_materialized_at_once_on_delta_all_land_whole(tmp_path, dagster_home):
    data, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    env = subprocess_env(data, dagster_home, GRIDASSETS_WAREHOUSE="delta")
    # The instance exists before the runs, as it does for an operator.
    with dg.DagsterInstance.from_config(str(dagster_home)):
        pass
    # The registry first, in this process (another CLI process would cost its start-up).
    settings = GridSettings(data_dir=str(data), backend="delta", **SMALL_FLEET)
    assert dg.materialize([circuits, transformers], resources=build_resources(settings)).success

    started = time.monotonic()
    procs = [materialize(env, logs, day, "--select", SELECT, "--partition", day) for day in DAYS]
    finish(procs, TIMEOUT_S)
    elapsed = time.monotonic() - started
    outputs = {day: (logs / f"{day}.log").read_text() for day in DAYS}
    for p, day in zip(procs, DAYS):
        assert p.returncode == 0, outputs[day][-3000:]
    assert not any("blocked by limit for pool" in out for out in outputs.values())

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = {r.tags["dagster/partition"]: r for r in instance.get_runs()
                if "dagster/partition" in r.tags}
        assert sorted(runs) == sorted(DAYS) and all(r.is_success for r in runs.values())
        windows = {day: step_windows(instance, r.run_id) for day, r in runs.items()}
        logged = {day: events(instance, r.run_id) for day, r in runs.items()}
    assert not any("blocked by limit for pool" in m for evs in logged.values() for _, m in evs)
    assert not any(t == dg.DagsterEventType.STEP_UP_FOR_RETRY
                   for evs in logged.values() for t, _ in evs)
    # Every run had a step running while a step of another run was running.
    for day, steps in windows.items():
        assert len(steps) == len(RAW_TABLES) + len(INTEGRITY) + len(FEATURES), (day, steps)
        others = [w for d, ws in windows.items() if d != day for w in ws]
        side_by_side = [(s1, s2) for st1, en1, s1 in steps for st2, en2, s2 in others
                        if st1 < en2 and st2 < en1]
        assert side_by_side, f"no step of the run for {day} ran beside another run's: {windows}"

    lake = DeltaWarehouse(data / "lake")
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    with lake.connect(read_only=True) as con:
        for day in DAYS:
            reference = sim.raw_day(date.fromisoformat(day))
            for spec in RAW_TABLES:
                in_day = f"cast({spec.stored_by} as date) = ?"
                stored = con.execute(f"select count(*) from raw.{spec.name} where {in_day}",
                                     [day]).fetchall()[0][0]
                assert stored == len(reference[spec.name]), (spec.name, day)
            # a transformer whose whole day was quarantined has no row that day
            left_out = con.execute(
                "select count(distinct device_id) from integrity.telemetry_integrity "
                "where date = ? and flagged and quarantine = 'device_day' "
                "and device_type = 'transformer'", [day]).fetchall()[0][0]
            for table, (key, raw, entity) in FEATURES.items():
                stored = con.execute(f"select count(*) from features.{table} where date = ?",
                                     [day]).fetchall()[0][0]
                expected = reference[raw][entity].nunique()
                assert stored == expected - (left_out if raw == "transformer_telemetry"
                                             else 0), (table, day)
        for spec in RAW_TABLES:
            key = ", ".join(spec.key)
            assert con.execute(f"select count(*) from (select {key} from raw.{spec.name} "
                               f"group by all having count(*) > 1)").fetchall() == [(0,)]
        for table, (key, _, _) in FEATURES.items():
            assert con.execute(f"select count(*) from (select {', '.join(key)} from "
                               f"features.{table} group by all having count(*) > 1)"
                               ).fetchall() == [(0,)]
            assert sorted(str(d.date()) for (d,) in con.execute(
                f"select distinct date from features.{table}").fetchall()) == sorted(DAYS)
    # Each run committed its own day of every table it built, and no other run replaced it.
    for day, run in runs.items():
        published = lake.published_by_run(run.run_id)
        assert {(p.asset, p.partition_key) for p in published} == {
            (name, day) for name in SELECT.split(",")}
        assert not any(p.superseded for p in published)

    print(f"\nthree concurrent runs on delta: {elapsed:.1f} s")
    first = min(w[0] for ws in windows.values() for w in ws)
    for day, steps in windows.items():
        spans = ", ".join(f"{s} {st - first:.1f}-{en - first:.1f}s" for st, en, s in sorted(steps))
        print(f"  {day}: {spans}")
