"""Recovery without a person: runs whose process died stop blocking the others, and what they
committed to the warehouse is recorded.

Dagster's run monitoring only watches runs that a run launcher started through the daemon. A run
of `dagster asset materialize` or `python -m gridassets run` executes in the command's own
process: killed (`kill -9`, a closed terminal, a reboot), it stays STARTED and keeps its claim on
the `duckdb` pool's one slot, and every later run waits for it forever. Three pieces fix that:

1. **The run worker says who it is.** `run_worker_executor` (the graph's executor: Dagster's
   in-process executor plus this) first tags the run with its host, process id and process start
   time (`gridassets/worker_*`); `python -m gridassets run` also tags the run when creating it.
2. **The reaper** (`reap_dead_runs`) finds STARTING/STARTED/CANCELING runs tagged with this host
   whose process is gone (no such pid, a zombie, or the pid now belongs to a newer process), marks
   them failed ("process 1234 on host X is gone"; a CANCELING one canceled) and frees their pool
   slots and their places in the pool's queue (`free_concurrency_slots_for_run` does both, and
   hands a freed slot to the next in the queue: all dead runs of a pass are reaped before their
   slots are freed, so the slot cannot stay with a dead waiter). It also frees slots and queue
   places still held by runs that have ended. It runs at the start of every run, every
   `REAP_WHILE_WAITING_S` while a run waits for a slot, and from the `dead_run_reaper` sensor
   (every 30 s under the daemon).
3. **The reconciler** (`reconcile_ended_runs`) compares, for each failed or canceled run not yet
   reconciled, what it committed (the publish log `ops.partition_publishes`, written in the same
   transaction as the rows) with the materializations Dagster recorded. A partition committed but
   not recorded (a kill between the commit and Dagster's event) is reported as a runless
   materialization with `recovered_from_run`; the run is then tagged `gridassets/reconciled`. It
   only reads the warehouse, and skips (for the next pass) when another process holds the file.

The executor also makes a run that waits for a pool slot sleep between checks and stop on Ctrl-C:
Dagster 1.13.27's in-process loop never sleeps while a claim is pending
(`InstanceConcurrencyContext.interval_to_next_pending_claim_check` returns `min(0, ...)`), and it
runs inside `capture_interrupts`, which only records a SIGINT until user code next runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import timezone
from pathlib import Path

import dagster as dg
from dagster._core.definitions.executor_definition import IN_PROC_CONFIG
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEvent, EngineEventData, JobFailureData, RunFailureReason
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import inner_plan_execution_iterator
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.storage.dagster_run import FINISHED_STATUSES
from dagster._utils.interrupts import pop_captured_interrupt
from dagster._utils.timing import time_execution_scope
from dagster_shared.utils.timing import format_duration

from gridassets import warehouse
from gridassets.defs.config import GridSettings
from gridassets.storage import backend, reconcile, runs

HOST_TAG = "gridassets/worker_host"
PID_TAG = "gridassets/worker_pid"
STARTED_TAG = "gridassets/worker_started"
RECONCILED_TAG = "gridassets/reconciled"

IN_PROGRESS = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
               dg.DagsterRunStatus.CANCELING)
ENDED_UNSUCCESSFULLY = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
# A run waiting for a pool slot looks for dead runs this often (without a daemon nobody else does).
REAP_WHILE_WAITING_S = 10.0
# ... and wakes this often to check for a slot and for Ctrl-C.
WAIT_POLL_S = 0.25
# Failed or canceled runs looked at per reconcile pass, most recent first.
RECONCILE_BATCH = 200

Log = Callable[[str], None]


# --- who runs a run -------------------------------------------------------------------------------

def worker_tags(identity: runs.ProcessIdentity | None = None) -> dict[str, str]:
    """The run tags that name the process executing a run (default: this process)."""
    identity = identity or runs.current()
    return {HOST_TAG: identity.host, PID_TAG: str(identity.pid), STARTED_TAG: identity.started}


def worker_of(run: dg.DagsterRun) -> runs.ProcessIdentity | None:
    tags = run.tags
    if HOST_TAG not in tags or PID_TAG not in tags:
        return None
    try:
        pid = int(tags[PID_TAG])
    except ValueError:
        return None
    return runs.ProcessIdentity(host=tags[HOST_TAG], pid=pid, started=tags.get(STARTED_TAG, ""))


# --- the reaper -----------------------------------------------------------------------------------

def _slot_holders(instance: dg.DagsterInstance) -> set[str]:
    """Run ids holding a pool slot or a place in a pool's queue."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return set()
    holders = set(storage.get_concurrency_run_ids())
    for key in storage.get_concurrency_keys():
        holders.update(slot.run_id for slot in storage.get_concurrency_info(key).claimed_slots)
    return holders


def reap_dead_runs(instance: dg.DagsterInstance, log: Log = lambda _: None) -> list[str]:
    """Mark the in-progress runs of this host whose process is gone as failed (canceled if they
    were being canceled), then free every pool slot and queue place held by a run that is dead or
    has ended. Returns the ids of the runs marked."""
    dead: list[dg.DagsterRun] = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=list(IN_PROGRESS))):
        worker = worker_of(record.dagster_run)
        if worker is not None and runs.is_alive(worker) is False:
            dead.append(record.dagster_run)

    reaped = []
    for run in dead:
        current = instance.get_run_by_id(run.run_id)  # another reaper may have been first
        if current is None or current.status not in IN_PROGRESS:
            continue
        worker = worker_of(current)
        assert worker is not None
        message = (f"{worker.describe()} is gone (killed, or its machine restarted) while the run "
                   f"was {current.status.value.lower()}; marked by the gridassets reaper")
        if current.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(current, message)
        else:
            instance.report_run_failed(current, message, job_failure_data=JobFailureData(
                error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION))
        reaped.append(current.run_id)
        log(f"run {current.run_id}: {message}")

    # Free only after every dead run is marked: a freed slot goes to the next run in the pool's
    # queue, and a dead waiter's place is removed in the same pass.
    for run_id in sorted(_slot_holders(instance)):
        record = instance.get_run_record_by_id(run_id)
        if run_id in reaped or record is None or record.dagster_run.status in FINISHED_STATUSES:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            if run_id not in reaped:
                state = "no longer exists" if record is None else (
                    f"has ended ({record.dagster_run.status.value.lower()})")
                log(f"run {run_id} {state}: freed its pool slots and queue places")
    return reaped


# --- the reconciler -------------------------------------------------------------------------------

def _recorded(instance: dg.DagsterInstance, run_id: str,
              published: list[reconcile.Published]) -> set[tuple[str, str]]:
    """(asset, partition key or '') of every materialization of `run_id` that the asset catalogue
    holds, for the assets the run published.

    Read from the asset records (what the UI and partition status show), not from the run's own
    event log: the SQLite storage writes an event to the run's log first and to the asset index
    after it, so a run killed in between has a materialization in its log that no asset knows."""
    out: set[tuple[str, str]] = set()
    if not published:
        return out
    since = min(p.published_at for p in published).replace(tzinfo=timezone.utc).timestamp()
    for asset in sorted({p.asset for p in published}):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey.from_user_string(asset),
                                  after_timestamp=since - 3600), limit=10_000).records
        out.update((asset, r.partition_key or "") for r in records if r.run_id == run_id)
    return out


def _to_reconcile(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    out = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=list(ENDED_UNSUCCESSFULLY)),
                                           limit=RECONCILE_BATCH):
        run = record.dagster_run
        if RECONCILED_TAG in run.tags:
            continue
        worker = worker_of(run)
        if worker is not None and runs.is_alive(worker):
            # Marked ended (force-terminated) but its process still runs and may yet commit.
            continue
        out.append(run)
    return out


def reconcile_ended_runs(instance: dg.DagsterInstance, store: backend.Warehouse | Path | str,
                         log: Log = lambda _: None) -> list[dg.AssetMaterialization]:
    """Record the partitions that failed or canceled runs committed but Dagster did not record.

    `store` is the warehouse (a path stands for a DuckDB file). Returns the runless
    materializations reported. Only reads the warehouse; if another process holds the DuckDB
    file, does nothing (the next pass retries)."""
    if not hasattr(store, "published_by_run"):
        store = backend.DuckDBWarehouse(store, lock_attempts=1)
    pending = _to_reconcile(instance)
    if not pending:
        return []
    recovered: list[dg.AssetMaterialization] = []
    if not store.exists():
        # Nothing was ever committed there.
        for run in pending:
            instance.add_run_tags(run.run_id, {RECONCILED_TAG: "no warehouse"})
        return recovered
    try:
        published = {run.run_id: store.published_by_run(run.run_id) for run in pending}
    except warehouse.WarehouseLockedError:
        log(f"{store.location} is held by another process: {len(pending)} ended run(s) will be "
            "reconciled on the next pass")
        return recovered
    for run in pending:
        recorded = _recorded(instance, run.run_id, published[run.run_id])
        found = 0
        for p in published[run.run_id]:
            if (p.asset, p.partition_key) in recorded:
                continue
            if p.superseded:
                log(f"run {run.run_id} committed {p.asset} {p.partition_key or '(unpartitioned)'} "
                    "unrecorded, but a later run has replaced it since: not recorded")
                continue
            event = dg.AssetMaterialization(
                asset_key=dg.AssetKey.from_user_string(p.asset),
                partition=p.partition_key or None,
                description=(f"Committed to the warehouse by run {run.run_id}, which ended "
                             f"({run.status.value.lower()}) before Dagster recorded it; "
                             "recorded by the gridassets reconciler."),
                metadata={"recovered_from_run": run.run_id, "rows": p.rows,
                          "dagster/row_count": p.rows,
                          "published_at": p.published_at.isoformat(sep=" ")},
            )
            instance.report_runless_asset_event(event)
            recovered.append(event)
            found += 1
            log(f"run {run.run_id} committed {p.asset} "
                f"{p.partition_key or '(unpartitioned)'} ({p.rows} rows) before it ended, and "
                "Dagster had not recorded it: recorded now")
        instance.add_run_tags(run.run_id, {RECONCILED_TAG: f"{found} recovered"})
    return recovered


def recover_records(instance: dg.DagsterInstance, store: backend.Warehouse | Path | str,
                    log: Log = lambda _: None) -> None:
    """One reconcile pass; never raises (see `recover`)."""
    try:
        reconcile_ended_runs(instance, store, log)
    except Exception as exc:  # noqa: BLE001
        log(f"the reconciler failed: {type(exc).__name__}: {exc}")


def warehouse_store(settings: GridSettings | None = None) -> backend.Warehouse | None:
    """The warehouse, or None when the settings are unusable (the run's resources then fail
    with the message that names the variable; the reaper works without it)."""
    try:
        return backend.open_warehouse((settings or GridSettings()).resolve())
    except ValueError:
        return None


def recover(instance: dg.DagsterInstance, warehouse_file: backend.Warehouse | Path | str | None,
            log: Log = lambda _: None) -> list[str]:
    """One reaper pass, then (given the warehouse file) one reconcile pass. Returns the ids of the
    runs reaped. Never raises: recovery must not fail the run or the sensor tick that calls it;
    what went wrong is logged."""
    reaped: list[str] = []
    try:
        reaped = reap_dead_runs(instance, log)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log(f"the dead-run reaper failed: {type(exc).__name__}: {exc}")
    if warehouse_file is not None:
        recover_records(instance, warehouse_file, log)
    return reaped


# --- the executor ---------------------------------------------------------------------------------

def _raise_if_interrupted() -> None:
    # Inside Dagster's capture_interrupts a SIGINT only sets a flag; act on it at this checkpoint.
    if pop_captured_interrupt():
        raise DagsterExecutionInterruptedError(
            "Interrupted (Ctrl-C) while waiting for a pool slot")


class _WaitingConcurrencyContext(InstanceConcurrencyContext):
    """Dagster's pool bookkeeping for a run, with a wait that sleeps, reaps and hears Ctrl-C."""

    def __init__(self, instance: dg.DagsterInstance, dagster_run: dg.DagsterRun,
                 while_waiting: Callable[[], None]):
        super().__init__(instance, dagster_run)
        self._while_waiting = while_waiting
        self._next_reap = time.monotonic() + REAP_WHILE_WAITING_S

    def claim(self, concurrency_key: str, step_key: str, step_priority: int = 0) -> bool:
        _raise_if_interrupted()
        return super().claim(concurrency_key, step_key, step_priority)

    def interval_to_next_pending_claim_check(self) -> float:
        _raise_if_interrupted()
        if not self.has_pending_claims():
            return 0.0
        if time.monotonic() >= self._next_reap:
            self._while_waiting()
            self._next_reap = time.monotonic() + REAP_WHILE_WAITING_S
        # `claim` itself asks the storage only when the step's back-off has passed (1 s growing to
        # 15 s), so waking often costs nothing and lets Ctrl-C through within WAIT_POLL_S.
        return WAIT_POLL_S


def _probe_warehouse(store: backend.Warehouse) -> None:
    """Fail the run before any step if the warehouse is damaged (a corrupt DuckDB file, a Delta
    log that does not load); the error names the file. Returns for a sound or missing warehouse,
    or a DuckDB file another process holds."""
    store.probe()


def start_of_run(plan_context: PlanOrchestrationContext
                 ) -> Generator[DagsterEvent, None, backend.Warehouse | None]:
    """What a run worker does before any step, whichever executor runs the steps: tag the run
    with this process, reap dead runs, fail the run if the warehouse is damaged (naming the file)
    and record what dead runs committed. Returns the warehouse (None if not yet created)."""
    instance, run = plan_context.instance, plan_context.dagster_run
    identity = runs.current()
    instance.add_run_tags(run.run_id, worker_tags(identity))
    # The run's process reads its settings from the environment, as the resources do.
    path = warehouse_store()
    messages: list[str] = []
    recover(instance, None, messages.append)  # first free the pool, whatever the warehouse
    yield DagsterEvent.engine_event(
        plan_context,
        f"Run worker: {identity.describe()} (tagged on the run, so that a reaper can tell "
        "when it is gone)",
        event_specific_data=EngineEventData.in_process(identity.pid),
    )
    for message in messages:
        yield DagsterEvent.engine_event(plan_context, message, EngineEventData())
    if path is not None:
        # A corrupt warehouse fails the run here, before any step (and before the reconciler
        # reads it).
        _probe_warehouse(path)
        messages = []
        recover_records(instance, path, messages.append)
        for message in messages:
            yield DagsterEvent.engine_event(plan_context, message, EngineEventData())
    return path


class RunWorkerExecutor(InProcessExecutor):
    """Dagster's in-process executor (1.13.27), which first tags the run with its process and
    recovers from dead runs, and whose wait for a pool slot sleeps, reaps and stops on Ctrl-C."""

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
                ) -> Iterator[DagsterEvent]:
        instance, run = plan_context.instance, plan_context.dagster_run
        path = yield from start_of_run(plan_context)

        def while_waiting() -> None:
            notes: list[str] = []
            if recover(instance, None, notes.append) and path is not None:
                # A dead run was found: record what it committed before this run writes.
                recover_records(instance, path, notes.append)
            for note in notes:
                instance.report_engine_event(note, run)

        def iterator(job_context: PlanExecutionContext, execution_plan: ExecutionPlan
                     ) -> Iterator[DagsterEvent]:
            # dagster._core.executor.in_process.inprocess_execution_iterator, with our context.
            with _WaitingConcurrencyContext(job_context.instance, job_context.dagster_run,
                                            while_waiting) as concurrency:
                yield from inner_plan_execution_iterator(job_context, execution_plan, concurrency)

        # The rest is InProcessExecutor.execute with `iterator` in place of Dagster's.
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing steps in process (pid: {os.getpid()})",
            event_specific_data=EngineEventData.in_process(
                os.getpid(), execution_plan.step_keys_to_execute),
        )
        with time_execution_scope() as timer:
            yield from iter(ExecuteRunWithPlanIterable(
                execution_plan=plan_context.execution_plan,
                iterator=iterator,
                execution_context_manager=PlanExecutionContextManager(
                    job=plan_context.job,
                    retry_mode=plan_context.retry_mode,
                    execution_plan=plan_context.execution_plan,
                    run_config=plan_context.run_config,
                    dagster_run=plan_context.dagster_run,
                    instance=plan_context.instance,
                    raise_on_error=plan_context.raise_on_error,
                    output_capture=plan_context.output_capture,
                    step_dependency_config=self.step_dependency_config,
                ),
            ))
        yield DagsterEvent.engine_event(
            plan_context,
            f"Finished steps in process (pid: {os.getpid()}) in {format_duration(timer.millis)}",
            event_specific_data=EngineEventData.in_process(
                os.getpid(), execution_plan.step_keys_to_execute),
        )


@dg.executor(name="in_process", config_schema=IN_PROC_CONFIG)
def run_worker_executor(init_context) -> RunWorkerExecutor:
    """All steps in the run's own process, as `dg.in_process_executor`; the run is tagged with its
    process, dead runs are reaped at its start and while it waits for a pool slot, and Ctrl-C stops
    a wait (see gridassets/defs/ops/recovery.py)."""
    config = init_context.executor_config
    return RunWorkerExecutor(
        retries=RetryMode.from_config(config["retries"]),
        step_dependency_config=StepDependencyConfig.from_config(
            config.get("step_dependency_config")),
    )


def execute_in_process(job: dg.JobDefinition, *, instance: dg.DagsterInstance,
                       asset_selection: Sequence[dg.AssetKey], partition_key: str | None = None,
                       tags: Mapping[str, str] | None = None, raise_on_error: bool = True,
                       run_config: Mapping | None = None) -> dg.ExecuteInProcessResult:
    """`job.execute_in_process(...)`, but with `run_worker_executor`.

    Dagster's `execute_in_process` always swaps the job's executor for its own in-process one
    (`JobDefinition.as_ephemeral_job`), which would leave `python -m gridassets run` without the
    tags, the reaper and the Ctrl-C fix. This mirrors its body (dagster 1.13.27) and keeps ours."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.definitions.partitions.context import partition_loading_context
    from dagster._core.execution.execute_in_process import core_execute_in_process, merge_run_tags

    asset_selection = list(asset_selection)
    run_config = dict(run_config or {})
    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={},
                                     asset_selection=asset_selection)
    ephemeral = ephemeral.with_executor_def(run_worker_executor)
    if partition_key and ephemeral.partitions_def:
        with partition_loading_context(dynamic_partitions_store=instance) as ctx:
            ephemeral.validate_partition_key(partition_key=partition_key,
                                             selected_asset_keys=set(asset_selection), context=ctx)
    if not run_config and ephemeral.partitioned_config and partition_key:
        run_config = dict(ephemeral.partitioned_config.get_run_config_for_partition_key(
            partition_key))
    return core_execute_in_process(
        job=InMemoryJob(job_def=ephemeral),
        run_config=run_config,
        instance=instance,
        output_capturing_enabled=True,
        raise_on_error=raise_on_error,
        # The worker is tagged from the run's creation: no moment where it runs untagged.
        run_tags={**merge_run_tags(job_def=job, partition_key=partition_key, tags=tags,
                                   asset_selection=asset_selection, instance=instance,
                                   run_config=run_config),
                  **worker_tags()},
        asset_selection=frozenset(asset_selection),
    )


# --- the sensor -----------------------------------------------------------------------------------

@dg.sensor(
    name="dead_run_reaper",
    description="Every 30 s: runs of this machine whose process is gone (a killed CLI, a reboot) "
                "are marked failed and their duckdb pool slots freed, and what failed runs "
                "committed to the warehouse without Dagster recording it is recorded.",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def dead_run_reaper(context: dg.SensorEvaluationContext, settings: GridSettings):
    notes: list[str] = []
    reaped = recover(context.instance, warehouse_store(settings), notes.append)
    for note in notes:
        context.log.info(note)
    return dg.SkipReason(f"reaped {len(reaped)} dead run(s)" + (f": {', '.join(reaped)}"
                                                                  if reaped else ""))
