"""The reaper and the reconciler against a real Dagster instance and real processes; their wiring
(the executor of every job, the sensor, `python -m gridassets run`'s path).

The reaper's pool-slot tests are about the `duckdb` pool (duckdb_only); the reconciler reads what
real writes committed on either backend."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
import pytest
from dagster._core.events import DagsterEvent, StepMaterializationData

from gridassets.defs.ops import recovery
from gridassets.defs.resources import GridSettings
from gridassets.storage import publish as wap
from gridassets.storage import runs
from gridassets.storage.backend import open_warehouse

POOL = "duckdb"


@pytest.fixture
def instance():
    # The shipped dagster.yaml's pool settings: one slot per pool, claimed per step.
    with dg.instance_for_test(overrides={
        "concurrency": {"pools": {"default_limit": 1, "granularity": "op"}},
    }) as inst:
        inst.event_log_storage.set_concurrency_slots(POOL, 1)
        yield inst


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


@pytest.fixture
def dead():
    """The identities of processes that ran and were killed (and waited for)."""
    made = []

    def make() -> runs.ProcessIdentity:
        proc = _sleeper()
        identity = runs.ProcessIdentity(runs.hostname(), proc.pid, runs.started_of(proc.pid))
        proc.kill()
        proc.wait(timeout=10)
        made.append(identity)
        return identity

    return make


@pytest.fixture
def alive():
    procs = []

    def make() -> runs.ProcessIdentity:
        proc = _sleeper()
        procs.append(proc)
        return runs.ProcessIdentity(runs.hostname(), proc.pid, runs.started_of(proc.pid))

    yield make
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


def add_run(instance, status=dg.DagsterRunStatus.STARTED, worker=None, **tags) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name="__ASSET_JOB", status=status,
                        tags={**(recovery.worker_tags(worker) if worker else {}), **tags})
    instance.add_run(run)
    return run


def claim(instance, run: dg.DagsterRun, step: str = "feeder_load", priority: int = 0):
    return instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, step, priority)


def slots(instance):
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return ([s.run_id for s in info.claimed_slots],
            [(p.run_id, p.assigned_timestamp is not None) for p in info.pending_steps])


def status(instance, run) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run.run_id).status


@pytest.mark.duckdb_only
def test_a_dead_holder_and_a_dead_waiter_are_failed_and_the_slot_goes_to_the_live_run(
        instance, dead):
    holder = add_run(instance, worker=dead())
    dead_waiter = add_run(instance, worker=dead())
    live = add_run(instance, worker=runs.current())
    assert claim(instance, holder).is_claimed
    # The dead waiter is ahead of the live one in the pool's queue.
    assert not claim(instance, dead_waiter, priority=1).is_claimed
    assert not claim(instance, live).is_claimed

    notes = []
    reaped = recovery.reap_dead_runs(instance, notes.append)

    assert set(reaped) == {holder.run_id, dead_waiter.run_id}
    assert status(instance, holder) == status(instance, dead_waiter) == dg.DagsterRunStatus.FAILURE
    assert status(instance, live) == dg.DagsterRunStatus.STARTED
    failure = instance.get_records_for_run(
        holder.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0].event_log_entry
    pid = holder.tags[recovery.PID_TAG]
    assert f"process {pid} on host {runs.hostname()} is gone" in failure.dagster_event.message
    # Neither dead run keeps the slot or its place in the queue: the live run gets it.
    assert slots(instance) == ([], [(live.run_id, True)])
    assert claim(instance, live).is_claimed
    assert len(notes) == 2


@pytest.mark.duckdb_only
def test_freeing_only_the_holder_hands_the_slot_to_a_dead_waiter(instance, dead):
    # Why the reaper must find every dead run before freeing any slot.
    holder = add_run(instance, worker=dead())
    dead_waiter = add_run(instance, worker=dead())
    live = add_run(instance, worker=runs.current())
    claim(instance, holder), claim(instance, dead_waiter, priority=1), claim(instance, live)
    instance.event_log_storage.free_concurrency_slots_for_run(holder.run_id)
    assert not claim(instance, live).is_claimed
    assert (dead_waiter.run_id, True) in slots(instance)[1]


@pytest.mark.duckdb_only
def test_live_foreign_and_untagged_runs_are_left_alone(instance, alive):
    live_child = add_run(instance, worker=alive())
    me = add_run(instance, worker=runs.current())
    elsewhere = add_run(instance, worker=runs.ProcessIdentity("another-host", 1, "x:1"))
    untagged = add_run(instance)
    for run in (live_child, me, elsewhere, untagged):
        claim(instance, run, step=f"step-{run.run_id[:8]}")
    before = slots(instance)

    assert recovery.reap_dead_runs(instance) == []
    assert all(status(instance, r) == dg.DagsterRunStatus.STARTED
               for r in (live_child, me, elsewhere, untagged))
    assert slots(instance) == before


def test_a_pid_reused_by_a_newer_process_does_not_keep_a_run_alive(instance, alive):
    newcomer = alive()
    # A run whose process had this pid before the newcomer was started.
    run = add_run(instance, worker=runs.ProcessIdentity(newcomer.host, newcomer.pid,
                                                        newcomer.started + "0"))
    assert recovery.reap_dead_runs(instance) == [run.run_id]
    assert status(instance, run) == dg.DagsterRunStatus.FAILURE


@pytest.mark.duckdb_only
def test_a_dead_run_that_was_being_canceled_is_canceled(instance, dead):
    run = add_run(instance, status=dg.DagsterRunStatus.CANCELING, worker=dead())
    claim(instance, run)
    assert recovery.reap_dead_runs(instance) == [run.run_id]
    assert status(instance, run) == dg.DagsterRunStatus.CANCELED
    assert slots(instance) == ([], [])


@pytest.mark.duckdb_only
def test_slots_left_by_runs_that_ended_are_freed(instance):
    ended = add_run(instance, status=dg.DagsterRunStatus.FAILURE)
    claim(instance, ended)
    assert recovery.reap_dead_runs(instance) == []
    assert slots(instance) == ([], [])


# --- the reconciler -------------------------------------------------------------------------------

def publish(settings: GridSettings, run_id: str, asset: str, partition: str, rows: int) -> None:
    """A real write of `rows` rows by run `run_id` (`partition` '' for an unpartitioned table):
    its commit carries the publish record that the reconciler reads (ops.partition_publishes on
    DuckDB, the commit info on Delta)."""
    if partition:
        start = datetime.fromisoformat(partition)
        target = wap.Slice("raw", asset, "timestamp", windows=(
            wap.PartitionWindow(partition, start, start + timedelta(days=1)),))
        frame = pd.DataFrame({"timestamp": pd.date_range(start, periods=rows, freq="15min"),
                              "load_mw": 1.0})
    else:
        target, frame = wap.Slice("fleet", asset), pd.DataFrame({"n": range(rows)})
    open_warehouse(settings.resolve()).publish(target, frame, asset=asset, run_id=run_id)


def record_materialization(instance, run, asset: str, partition: str | None):
    event = DagsterEvent(
        event_type_value=dg.DagsterEventType.ASSET_MATERIALIZATION.value, job_name=run.job_name,
        event_specific_data=StepMaterializationData(
            dg.AssetMaterialization(asset_key=asset, partition=partition)),
    )
    instance.report_dagster_event(event, run.run_id)


def runless(instance, asset: str) -> dict[str | None, dict]:
    out = {}
    for rec in instance.fetch_materializations(dg.AssetKey(asset), limit=100).records:
        if not rec.run_id:
            out[rec.partition_key] = {k: v.value for k, v in
                                      rec.asset_materialization.metadata.items()}
    return out


def test_committed_but_unrecorded_partitions_are_recorded_once(instance, settings, dead):
    store = open_warehouse(settings.resolve())
    run = add_run(instance, status=dg.DagsterRunStatus.FAILURE, worker=dead())
    for day in (1, 2, 3):
        publish(settings, run.run_id, "feeder_load", f"2025-06-0{day}", 96)
    publish(settings, run.run_id, "circuits", "", 4)
    record_materialization(instance, run, "feeder_load", "2025-06-01")

    notes = []
    events = recovery.reconcile_ended_runs(instance, store, notes.append)

    assert sorted((e.asset_key.to_user_string(), e.partition) for e in events) == [
        ("circuits", None), ("feeder_load", "2025-06-02"), ("feeder_load", "2025-06-03")]
    recovered = runless(instance, "feeder_load")
    assert set(recovered) == {"2025-06-02", "2025-06-03"}
    assert recovered["2025-06-02"]["recovered_from_run"] == run.run_id
    assert recovered["2025-06-02"]["rows"] == 96
    assert runless(instance, "circuits")[None]["rows"] == 4
    assert instance.get_run_by_id(run.run_id).tags[recovery.RECONCILED_TAG] == "3 recovered"
    assert len(notes) == 3 and all(run.run_id in n for n in notes)
    # A second pass finds the run reconciled.
    assert recovery.reconcile_ended_runs(instance, store) == []


def test_a_materialization_in_the_run_log_but_not_in_the_asset_index_is_recorded(
        instance, settings, dead):
    """SQLite storage writes an event to the run's log, then to the asset index. A run killed in
    between (seen in the kill tests) has a materialization that no asset shows; the reconciler
    judges by the asset index, so the partition gets its runless record."""
    import sqlalchemy as sa

    run = add_run(instance, status=dg.DagsterRunStatus.FAILURE, worker=dead())
    publish(settings, run.run_id, "circuits", "", 4)
    record_materialization(instance, run, "circuits", None)
    with instance.event_log_storage.index_connection() as con:
        con.execute(sa.text("delete from event_logs where run_id = :run and "
                            "dagster_event_type = 'ASSET_MATERIALIZATION'"), {"run": run.run_id})
    assert instance.fetch_materializations(dg.AssetKey("circuits"), limit=10).records == []
    assert instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)

    events = recovery.reconcile_ended_runs(instance, open_warehouse(settings.resolve()))

    assert [(e.asset_key.to_user_string(), e.partition) for e in events] == [("circuits", None)]
    assert runless(instance, "circuits")[None]["recovered_from_run"] == run.run_id


def test_a_partition_a_later_run_replaced_is_not_recorded_for_the_dead_run(
        instance, settings, dead):
    run = add_run(instance, status=dg.DagsterRunStatus.FAILURE, worker=dead())
    later = add_run(instance, status=dg.DagsterRunStatus.SUCCESS)
    publish(settings, run.run_id, "feeder_load", "2025-06-01", 96)
    publish(settings, later.run_id, "feeder_load", "2025-06-01", 96)
    assert recovery.reconcile_ended_runs(instance, open_warehouse(settings.resolve())) == []
    assert instance.get_run_by_id(run.run_id).tags[recovery.RECONCILED_TAG] == "0 recovered"


@pytest.mark.duckdb_only
def test_a_warehouse_held_by_another_process_is_skipped_until_the_next_pass(
        instance, settings, dead):
    db = settings.resolve().warehouse
    run = add_run(instance, status=dg.DagsterRunStatus.FAILURE, worker=dead())
    publish(settings, run.run_id, "feeder_load", "2025-06-01", 96)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); time.sleep(600)", str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        notes = []
        assert recovery.reconcile_ended_runs(instance, db, notes.append) == []
        assert "held by another process" in notes[0]
        assert recovery.RECONCILED_TAG not in instance.get_run_by_id(run.run_id).tags
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert len(recovery.reconcile_ended_runs(instance, db)) == 1


def test_a_run_marked_ended_whose_process_still_runs_is_reconciled_later(
        instance, settings, alive):
    # Force-terminated in the UI, its process may still commit: wait until it is gone.
    run = add_run(instance, status=dg.DagsterRunStatus.CANCELED, worker=alive())
    publish(settings, run.run_id, "feeder_load", "2025-06-01", 96)
    assert recovery.reconcile_ended_runs(instance, open_warehouse(settings.resolve())) == []
    assert recovery.RECONCILED_TAG not in instance.get_run_by_id(run.run_id).tags


def test_without_a_warehouse_there_is_nothing_to_reconcile(instance, settings, dead):
    run = add_run(instance, status=dg.DagsterRunStatus.FAILURE, worker=dead())
    assert recovery.reconcile_ended_runs(instance, open_warehouse(settings.resolve())) == []
    assert not settings.resolve().warehouse_location.exists()
    assert instance.get_run_by_id(run.run_id).tags[recovery.RECONCILED_TAG] == "no warehouse"


# --- wiring ---------------------------------------------------------------------------------------

def test_every_job_runs_with_the_run_worker_executor():
    from gridassets.definitions import defs

    for job in defs.get_repository_def().get_all_jobs():
        assert job.executor_def is recovery.run_worker_executor, job.name


@pytest.mark.duckdb_only
def test_the_reaper_sensor_is_on_by_default_and_reaps(instance, tmp_path, dead):
    from gridassets.definitions import defs

    sensor = defs.get_repository_def().get_sensor_def("dead_run_reaper")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30
    run = add_run(instance, worker=dead())
    claim(instance, run)
    context = dg.build_sensor_context(instance=instance, resources={
        "settings": GridSettings(data_dir=str(tmp_path / "data"))})
    result = sensor(context)
    assert isinstance(result, dg.SkipReason) and run.run_id in result.skip_message
    assert status(instance, run) == dg.DagsterRunStatus.FAILURE
    assert slots(instance) == ([], [])


@pytest.fixture
def small_env(monkeypatch, tmp_path, backend):
    data = tmp_path / "data"
    monkeypatch.setenv("GRIDASSETS_DATA_DIR", str(data))
    monkeypatch.setenv("GRIDASSETS_WAREHOUSE", backend)
    monkeypatch.setenv("GRIDASSETS_CIRCUITS", "4")
    monkeypatch.setenv("GRIDASSETS_TRANSFORMERS", "40")
    return data


def test_python_m_gridassets_runs_are_tagged_with_their_process_and_reap(
        instance, small_env, dead):
    # runner.materialize is what `python -m gridassets run` calls; Dagster's execute_in_process
    # would swap the executor for its own.
    from gridassets import runner
    from gridassets.definitions import defs

    stale = add_run(instance, worker=dead())
    claim(instance, stale)
    result = runner.materialize(defs, "circuits", dagster_instance=instance, log_level="ERROR")

    assert result.success
    run = instance.get_run_by_id(result.run_id)
    me = runs.current()
    assert run.tags[recovery.PID_TAG] == str(me.pid)
    assert run.tags[recovery.STARTED_TAG] == me.started
    assert run.tags[recovery.HOST_TAG] == me.host
    messages = [e.dagster_event.message for e in instance.all_logs(run.run_id)
                if e.dagster_event and e.dagster_event.event_type_value == "ENGINE_EVENT"]
    assert any(m.startswith(f"Run worker: process {me.pid}") for m in messages)
    assert any(stale.run_id in m and "is gone" in m for m in messages)
    assert status(instance, stale) == dg.DagsterRunStatus.FAILURE


@pytest.mark.duckdb_only
def test_a_corrupt_warehouse_fails_the_run_before_any_step(instance, small_env):
    from gridassets import runner
    from gridassets.definitions import defs

    small_env.mkdir(parents=True)
    db = small_env / "warehouse.duckdb"
    db.write_bytes(b"this is not a DuckDB file" * 1000)
    result = runner.materialize(defs, "circuits", dagster_instance=instance, log_level="ERROR",
                                raise_on_error=False)

    assert not result.success
    types = [e.event_type_value for e in result.all_events]
    assert "STEP_START" not in types
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    assert str(db) in failure.event_specific_data.error.to_string()
