"""The executor of scale-out mode: dagster-celery's, after what every run worker does first.

Each step is one Celery task on the queue its `dagster-celery/queue` tag names (storms, forecast,
else "dagster"). The task is acknowledged when it ends, not when a worker takes it, and a worker
that dies with it hands it back: a pool process killed mid-step (out of memory) returns it to the
queue at once, a whole worker (or its host) lost returns it once it has been out for
GRIDASSETS_CELERY_REDELIVER_S. Another worker then runs the step again; its write replaces exactly
its partitions (one Delta commit), so the partition is whole and never doubled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster._core.events import DagsterEvent
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode
from dagster._core.definitions.executor_definition import multiple_process_executor_requirements
from dagster_celery import defaults
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, _submit_task

from gridassets.defs.ops.recovery import start_of_run
from gridassets.settings import Settings, SettingsError

def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings of the executor (which sends tasks) and the workers (which run them)."""
    return {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # A worker takes one task at a time: a step waiting in a busy worker's buffer would not
        # go to an idle one.
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        # A pool process loads the graph as it starts (gridassets/scaleout/worker.py): seconds.
        "worker_proc_alive_timeout": 120,
        "broker_transport_options": {
            **defaults.broker_transport_options,
            "visibility_timeout": settings.celery_redeliver_s,
            # Redis has no per-message priority: these lists per queue emulate it.
            "priority_steps": list(range(10)),
            "queue_order_strategy": "priority",
        },
        "result_expires": 7 * 24 * 3600,
    }


def app_args(settings: Settings) -> dict[str, Any]:
    """What dagster_celery.make_app takes, from the settings."""
    if not settings.celery_broker:
        raise SettingsError("scale-out needs GRIDASSETS_CELERY_BROKER, the Redis URL of the "
                            "Celery broker (e.g. redis://127.0.0.1:6379/0)")
    executor = _executor(settings, RetryMode(RetryMode.DISABLED))
    return executor.app_args()


def _executor(settings: Settings, retries: RetryMode) -> ScaleoutExecutor:
    return ScaleoutExecutor(retries=retries, broker=settings.celery_broker,
                            backend=settings.celery_results, config_source=celery_config(settings))


class ScaleoutExecutor(CeleryExecutor):
    """dagster-celery's executor (0.29.27); the run is first tagged with its process, dead runs
    are reaped and the warehouse is probed, as in embedded mode (gridassets/defs/ops/recovery.py)."""

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
                ) -> Iterator[DagsterEvent]:
        yield from start_of_run(plan_context)
        yield from core_celery_execution_loop(plan_context, execution_plan,
                                              step_execution_fn=_submit_task)


@dg.executor(name="celery", config_schema=CELERY_CONFIG,
             requirements=multiple_process_executor_requirements())
def scaleout_executor(init_context) -> ScaleoutExecutor:
    """Steps on Celery workers, with the broker, result store and redelivery of the settings
    (GRIDASSETS_CELERY_*): the run worker reads them from its environment, as the workers do."""
    return _executor(Settings.from_env(),
                     RetryMode.from_config(init_context.executor_config["retries"]))
