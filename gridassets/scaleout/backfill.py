"""A backfill of the daily graph through Dagster's backfill daemon, and what it took.

`launch` asks for the daily assets (groups raw, integrity, features, forecasting, scores) of a
range of days and the weekly models of the weeks those days fall in, as one asset backfill: the
same request the UI's "Materialize selected" over a partition range makes. The daemon then launches runs of
at most GRIDASSETS_BACKFILL_DAYS days each as their inputs are in (the forecast's days in order,
since each starts from the models of the day before), and the run queue starts them on the
Celery workers side by side.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.utils import make_new_backfill_id

from gridassets.defs.ops.schedules import DAILY_GROUPS

ENDED = (BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS,
         BulkActionStatus.COMPLETED_FAILED, BulkActionStatus.FAILED, BulkActionStatus.CANCELED)
MODEL_GROUP = "models"


def days_between(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def weeks_of(days: Sequence[str]) -> list[str]:
    mondays = {date.fromisoformat(d) - timedelta(days=date.fromisoformat(d).weekday())
               for d in days}
    return sorted(m.isoformat() for m in mondays)


def target(defs: dg.Definitions, first: date, last: date, models: bool = True,
           groups: Sequence[str] = DAILY_GROUPS) -> AssetGraphSubset:
    """The daily assets of `groups` (default: the whole daily graph) over [first, last], and
    (if `models`) the weekly models of its weeks."""
    graph = defs.resolve_asset_graph()
    days = days_between(first, last)
    weeks = weeks_of(days)
    wanted = set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        if node.group_name in groups:
            wanted |= {AssetKeyPartitionKey(key, d) for d in days}
        elif models and node.group_name == MODEL_GROUP:
            wanted |= {AssetKeyPartitionKey(key, w) for w in weeks}
    return AssetGraphSubset.from_asset_partition_set(wanted, graph)


def launch(instance: dg.DagsterInstance, defs: dg.Definitions, first: date, last: date,
           models: bool = True, groups: Sequence[str] = DAILY_GROUPS,
           title: str | None = None) -> str:
    """Request the backfill; returns its id. The daemon executes it."""
    backfill_id = make_new_backfill_id()
    backfill = PartitionBackfill.from_asset_graph_subset(
        backfill_id=backfill_id,
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        asset_graph_subset=target(defs, first, last, models, groups),
        title=title or f"daily graph {first}..{last}",
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill_id


@dataclass
class RunTiming:
    run_id: str
    status: str
    assets: str
    partitions: str
    queued_s: float  # from the backfill's request to the run's start
    seconds: float   # the run's own duration


@dataclass
class BackfillReport:
    backfill_id: str
    status: str
    seconds: float
    runs: list[RunTiming] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == BulkActionStatus.COMPLETED_SUCCESS.value and all(
            r.status == "SUCCESS" for r in self.runs)

    def table(self) -> str:
        lines = [f"{'run':10} {'status':8} {'start s':>8} {'run s':>7}  partitions  assets"]
        for r in sorted(self.runs, key=lambda r: r.queued_s):
            lines.append(f"{r.run_id[:8]:10} {r.status:8} {r.queued_s:8.1f} {r.seconds:7.1f}  "
                         f"{r.partitions:10}  {r.assets}")
        return "\n".join(lines)


def wait(instance: dg.DagsterInstance, backfill_id: str, timeout: float = 3600.0,
         poll: float = 2.0) -> BackfillReport:
    """Wait until the backfill has ended and none of its runs is in progress."""
    started = time.time()
    backfill = instance.get_backfill(backfill_id)
    requested_at = backfill.backfill_timestamp if backfill else started
    while True:
        backfill = instance.get_backfill(backfill_id)
        runs = instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
        busy = [r for r in runs if not r.is_finished]
        if backfill is not None and backfill.status in ENDED and not busy:
            break
        if time.time() - started > timeout:
            raise TimeoutError(f"backfill {backfill_id} not done after {timeout:.0f} s "
                               f"({backfill.status.value if backfill else 'unknown'}, "
                               f"{len(busy)} run(s) in progress)")
        time.sleep(poll)
    ended_at = max([requested_at] + [_stats(instance, r.run_id)[1] for r in runs])
    return BackfillReport(
        backfill_id=backfill_id, status=backfill.status.value,
        seconds=ended_at - requested_at,
        runs=[_timing(instance, r, requested_at) for r in runs])


def _stats(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    stats = instance.get_run_stats(run_id)
    return (stats.start_time or 0.0, stats.end_time or 0.0)


def _timing(instance: dg.DagsterInstance, run: dg.DagsterRun, requested_at: float) -> RunTiming:
    start, end = _stats(instance, run.run_id)
    tags = run.tags
    first = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition", "")
    last = tags.get("dagster/asset_partition_range_end") or first
    keys = sorted(k.to_user_string() for k in (run.asset_selection or []))
    groups = _abbreviate(keys)
    return RunTiming(run_id=run.run_id, status=run.status.value, assets=groups,
                     partitions=first if first == last else f"{first[5:]}..{last[5:]}",
                     queued_s=(start - requested_at) if start else 0.0,
                     seconds=(end - start) if start and end else 0.0)


def _abbreviate(keys: Sequence[str]) -> str:
    text = ",".join(keys)
    return text if len(text) <= 60 else f"{len(keys)} assets ({keys[0]}, ...)"
