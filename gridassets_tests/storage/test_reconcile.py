"""What a run published, from the publish records that real writes commit on either backend: the
publish log `ops.partition_publishes` of the DuckDB file, the commit info of the Delta tables."""

from datetime import datetime, timedelta, timezone

import pandas as pd

from gridassets.storage import publish as wap
from gridassets.storage.backend import open_warehouse


def publish(store, run_id: str, partition: str, rows: int) -> None:
    """A write of `rows` rows by `run_id`: a day of feeder_load, or ('') the circuits table."""
    if not partition:
        store.publish(wap.Slice("fleet", "circuits"), pd.DataFrame({"n": range(rows)}),
                      asset="circuits", run_id=run_id)
        return
    start = datetime.fromisoformat(partition)
    target = wap.Slice("raw", "feeder_load", "timestamp", windows=(
        wap.PartitionWindow(partition, start, start + timedelta(days=1)),))
    frame = pd.DataFrame({"timestamp": pd.date_range(start, periods=rows, freq="15min"),
                          "load_mw": 1.0})
    store.publish(target, frame, asset="feeder_load", run_id=run_id)


def utc_now_ms() -> datetime:
    """Now, naive UTC, to the millisecond (a Delta commit's timestamp has no finer unit)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def test_a_warehouse_without_the_log_has_nothing_published(settings):
    store = open_warehouse(settings.resolve())
    # A table written, but by no publish: the run-failure alerts' merge.
    store.insert_missing("run_failures", pd.DataFrame({"run_id": ["run-x"]}), key="run_id")
    assert store.exists()
    assert store.published_by_run("run-a") == []


def test_the_last_publish_of_each_partition_counts_and_later_runs_supersede(settings):
    store = open_warehouse(settings.resolve())
    publish(store, "run-c", "", 4)                   # an earlier run does not count
    publish(store, "run-a", "2025-06-01", 90)        # a first attempt ...
    retried = utc_now_ms()
    publish(store, "run-a", "2025-06-01", 96)        # ... and its retry
    publish(store, "run-a", "2025-06-02", 96)
    publish(store, "run-a", "", 4)                   # unpartitioned
    publish(store, "run-b", "2025-06-02", 96)        # replaced by a later run
    got = store.published_by_run("run-a")
    assert [(p.asset, p.partition_key, p.rows, p.superseded) for p in got] == [
        ("circuits", "", 4, False),
        ("feeder_load", "2025-06-01", 96, False),
        ("feeder_load", "2025-06-02", 96, True),
    ]
    assert retried <= got[1].published_at <= got[2].published_at
