"""What a run published, read from the publish log `ops.partition_publishes`."""

from datetime import datetime

import duckdb

from gridassets.storage import reconcile


def write_log(con, rows):
    con.execute("create schema if not exists ops")
    con.execute("create table if not exists ops.partition_publishes (asset varchar, "
                "partition_key varchar, run_id varchar, rows bigint, published_at timestamp)")
    con.executemany("insert into ops.partition_publishes values (?, ?, ?, ?, ?)", rows)


def test_a_warehouse_without_the_log_has_nothing_published(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert not reconcile.has_publish_log(con)
        assert reconcile.published_by_run(con, "run-a") == []


def test_the_last_publish_of_each_partition_counts_and_later_runs_supersede(tmp_path):
    t = [datetime(2025, 6, 1, 1, 0, i) for i in range(6)]
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        write_log(con, [
            ("feeder_load", "2025-06-01", "run-a", 90, t[0]),   # a first attempt ...
            ("feeder_load", "2025-06-01", "run-a", 96, t[1]),   # ... and its retry
            ("feeder_load", "2025-06-02", "run-a", 96, t[1]),
            ("feeder_load", "2025-06-02", "run-b", 96, t[3]),   # replaced by a later run
            ("circuits", "", "run-a", 4, t[2]),                  # unpartitioned
            ("circuits", "", "run-c", 4, t[0]),                  # an earlier run does not count
        ])
        got = reconcile.published_by_run(con, "run-a")
    assert [(p.asset, p.partition_key, p.rows, p.superseded) for p in got] == [
        ("circuits", "", 4, False),
        ("feeder_load", "2025-06-01", 96, False),
        ("feeder_load", "2025-06-02", 96, True),
    ]
    assert got[1].published_at == t[1]
