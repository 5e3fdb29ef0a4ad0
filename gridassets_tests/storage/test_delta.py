"""The Delta warehouse's write path (`DeltaWarehouse.publish`) on a lake in tmp_path: writers of
one partition at once never leave both writers' rows, writers of different partitions both land,
and a refused or failing write leaves the table at its version."""

import threading
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest
from deltalake.exceptions import CommitFailedError

from gridassets.storage import delta
from gridassets.storage.delta import PARTITION, DeltaWarehouse
from gridassets.storage.publish import PartitionWindow, PublishRefused, Slice

TABLE = "raw.feeder_load"
ROWS = 48  # per writer and day: two circuits, 24 hours


def day(key: str) -> PartitionWindow:
    start = datetime.fromisoformat(key)
    return PartitionWindow(key, start, start + pd.Timedelta(days=1))


def target(*keys: str) -> Slice:
    return Slice("raw", "feeder_load", "timestamp", windows=tuple(day(k) for k in keys))


def frame(key: str, writer: str, rows: int = ROWS) -> pd.DataFrame:
    """`rows` hourly rows of `key` (two circuits), every row naming the writer."""
    hours = pd.date_range(key, periods=24, freq="h")
    per = -(-rows // 24)
    return pd.DataFrame({
        "circuit_id": [f"C{i % per}" for i in range(rows)],
        "timestamp": [hours[i // per] for i in range(rows)],
        "load_mw": [float(i) for i in range(rows)],
        "writer": writer,
    })


def rows(store: DeltaWarehouse, where: str = "true") -> pd.DataFrame:
    with store.connect() as con:
        return con.execute(f"select * from {TABLE} where {where} "
                           "order by timestamp, circuit_id").fetchdf()


def version(store: DeltaWarehouse) -> int:
    return store.table("raw", "feeder_load").version()


def at_once(*calls) -> list[BaseException | None]:
    """Run the calls in threads released together; each one's exception (or None)."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException | None] = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return errors


@pytest.fixture
def store(tmp_path) -> DeltaWarehouse:
    lake = DeltaWarehouse(tmp_path / "lake")
    lake.publish(target("2025-06-01"), frame("2025-06-01", "seed"), asset="feeder_load",
                 run_id="seed")
    return lake


@pytest.fixture
def conflicts(monkeypatch) -> list[str]:
    """The Delta commits that failed on a concurrent commit (and were tried again)."""
    seen: list[str] = []
    write = delta.write_deltalake

    def counting(*args, **kwargs):
        try:
            return write(*args, **kwargs)
        except CommitFailedError as exc:
            seen.append(str(exc))
            raise

    monkeypatch.setattr(delta, "write_deltalake", counting)
    return seen


def test_writers_of_one_partition_at_once_leave_exactly_one_writers_rows(store, conflicts):
    for r in range(4):  # the first round writes a new partition, the others replace it
        writers = [f"w{r}a", f"w{r}b", f"w{r}c"]
        errors = at_once(*[
            (lambda w=w: store.publish(target("2025-06-02"), frame("2025-06-02", w),
                                       asset="feeder_load", run_id=w))
            for w in writers])
        assert errors == [None] * len(writers), errors  # conflicts were retried, not raised
        stored = rows(store, "cast(timestamp as date) = '2025-06-02'")
        assert len(stored) == ROWS
        assert stored["writer"].nunique() == 1 and stored["writer"].iloc[0] in writers
        assert not stored.duplicated(["circuit_id", "timestamp"]).any()
    # The other partition was never touched.
    assert set(rows(store, "cast(timestamp as date) = '2025-06-01'")["writer"]) == {"seed"}
    # The writers did collide: their commits conflicted and were tried again.
    assert conflicts, "no commit ever conflicted: the writers never overlapped"


def test_writers_of_different_partitions_at_once_both_land(store):
    keys = ["2025-06-02", "2025-06-03", "2025-06-04"]
    errors = at_once(*[
        (lambda k=k: store.publish(target(k), frame(k, f"w-{k}"), asset="feeder_load",
                                   run_id=f"w-{k}"))
        for k in keys])
    assert errors == [None] * len(keys), errors
    stored = rows(store)
    per_day = stored.groupby(stored["timestamp"].dt.strftime("%Y-%m-%d"))["writer"]
    assert per_day.unique().map(list).to_dict() == {
        "2025-06-01": ["seed"], **{k: [f"w-{k}"] for k in keys}}
    assert per_day.size().to_dict() == dict.fromkeys(["2025-06-01", *keys], ROWS)
    # Each commit carries its publish record.
    assert [(p.asset, p.partition_key, p.rows) for p in store.published_by_run("w-2025-06-03")] \
        == [("feeder_load", "2025-06-03", ROWS)]
    # Every row's _partition is its day.
    with duckdb.connect() as con:
        con.register("t", store.table("raw", "feeder_load").to_pyarrow_dataset())
        assert con.execute(f"select count(*) from t where {PARTITION} <> "
                           "strftime(timestamp, '%Y-%m-%d')").fetchall() == [(0,)]


def test_rows_outside_the_slice_are_refused_and_the_table_keeps_its_version(store):
    before, stored = version(store), rows(store)
    stray = pd.concat([frame("2025-06-02", "w"), frame("2025-06-03", "w").head(1)])
    with pytest.raises(PublishRefused, match="1 row.*outside the partition being written"):
        store.publish(target("2025-06-02"), stray, asset="feeder_load", run_id="w")
    assert version(store) == before
    pd.testing.assert_frame_equal(rows(store), stored)


def test_an_empty_frame_empties_its_partition_only(store):
    store.publish(target("2025-06-02"), frame("2025-06-02", "w"), asset="feeder_load",
                  run_id="w")
    empty = frame("2025-06-02", "w").head(0)
    counts = store.publish(target("2025-06-02"), empty, asset="feeder_load", run_id="empty")
    assert counts == {"2025-06-02": 0}
    stored = rows(store)
    assert set(stored["timestamp"].dt.strftime("%Y-%m-%d")) == {"2025-06-01"}
    assert len(stored) == ROWS and set(stored["writer"]) == {"seed"}


def test_a_new_column_is_added_and_older_rows_read_null(store):
    logged: list[str] = []
    wider = frame("2025-06-02", "w").assign(reactive_mvar=1.5)
    store.publish(target("2025-06-02"), wider, asset="feeder_load", run_id="w", log=logged.append)
    assert logged == ["raw.feeder_load: adding column reactive_mvar DOUBLE"]
    with store.connect() as con:
        columns = con.execute(f"describe select * from {TABLE}").fetchall()
        assert [(c[0], c[1]) for c in columns] == [
            ("circuit_id", "VARCHAR"), ("timestamp", "TIMESTAMP"), ("load_mw", "DOUBLE"),
            ("writer", "VARCHAR"), ("reactive_mvar", "DOUBLE")]
        per_day = dict(con.execute(
            f"select strftime(timestamp, '%Y-%m-%d'), count(reactive_mvar) from {TABLE} "
            "group by 1").fetchall())
    assert per_day == {"2025-06-01": 0, "2025-06-02": ROWS}


def test_a_value_that_does_not_cast_fails_and_the_table_keeps_its_version(store):
    before, stored = version(store), rows(store)
    bad = frame("2025-06-02", "w").astype({"load_mw": object})
    bad.loc[3, "load_mw"] = "not a number"
    with pytest.raises(Exception, match="not a number"):
        store.publish(target("2025-06-02"), bad, asset="feeder_load", run_id="w")
    assert version(store) == before
    pd.testing.assert_frame_equal(rows(store), stored)
    assert store.published_by_run("w") == []


def test_a_first_write_racing_another_processes_first_write_keeps_its_partitions(tmp_path,
                                                                               monkeypatch):
    """Two processes write the first partitions of a new table: both find no table, one
    creates it. The other's write must still replace only its own partition (it once became an
    overwrite of the whole table and deleted the first writer's day)."""
    store = DeltaWarehouse(tmp_path / "lake")
    other = DeltaWarehouse(tmp_path / "lake")
    other.publish(target("2025-06-01"), frame("2025-06-01", "other"), asset="feeder_load",
                  run_id="other")
    # This writer looked before the other's table existed.
    calls = []

    def table(schema, name):
        calls.append(name)
        return None if len(calls) == 1 else DeltaWarehouse.table(store, schema, name)

    monkeypatch.setattr(store, "table", table)
    store.publish(target("2025-06-02"), frame("2025-06-02", "this"), asset="feeder_load",
                  run_id="this")
    assert calls == ["feeder_load"]
    stored = rows(store)
    assert stored.groupby(stored["timestamp"].dt.strftime("%Y-%m-%d"))["writer"].unique() \
        .map(list).to_dict() == {"2025-06-01": ["other"], "2025-06-02": ["this"]}


def test_a_slice_of_no_partitions_creates_an_empty_partitioned_table(tmp_path):
    store = DeltaWarehouse(tmp_path / "lake")
    assert store.publish(target(), frame("2025-06-01", "w").head(0), asset="feeder_load",
                         run_id="create") == {}
    assert store.table("raw", "feeder_load").metadata().partition_columns == [PARTITION]
    assert rows(store).empty
    store.publish(target("2025-06-01"), frame("2025-06-01", "w"), asset="feeder_load",
                  run_id="w")
    assert len(rows(store)) == ROWS


# --- a write that adds a column, while another process writes -------------------------------------

def _day_slice(key: str) -> Slice:
    start = datetime.fromisoformat(key)
    return Slice("raw", "t", "ts", windows=(PartitionWindow(key, start,
                                                            start + timedelta(days=1)),))


def _write_days(root: str, days: list[str], value: float) -> None:
    store = DeltaWarehouse(root)
    for key in days:
        store.publish(_day_slice(key), pd.DataFrame({"ts": [pd.Timestamp(key) + pd.Timedelta(
            hours=1)], "v": [value]}), asset="t", run_id=f"writer-{value}")


def _add_columns(root: str, n: int) -> None:
    store = DeltaWarehouse(root)
    for i in range(n):
        store.publish(_day_slice("2024-01-01"), pd.DataFrame({
            "ts": [pd.Timestamp("2024-01-01 01:00")], "v": [2.0], f"c{i}": [1.0]}),
            asset="t", run_id="adder")


def test_a_column_added_while_another_process_writes_loses_nothing(tmp_path):
    """Adding a column rewrites every stored partition in one commit. Meanwhile another process
    adds 20 new days and replaces 20 existing ones: every new day survives and every replaced day
    holds the other process's rows (seen before the fix: 12 of 40 new days deleted)."""
    import multiprocessing

    root = str(tmp_path / "lake")
    old = [(date(2024, 2, 1) + timedelta(days=i)).isoformat() for i in range(20)]
    new = [(date(2024, 3, 1) + timedelta(days=i)).isoformat() for i in range(20)]
    _write_days(root, ["2024-01-01", *old], 1.0)
    spawn = multiprocessing.get_context("spawn")
    writer = spawn.Process(target=_write_days, args=(root, [d for pair in zip(old, new)
                                                          for d in pair], 5.0))
    adder = spawn.Process(target=_add_columns, args=(root, 10))
    writer.start(), adder.start()
    writer.join(120), adder.join(120)
    assert (writer.exitcode, adder.exitcode) == (0, 0)
    with DeltaWarehouse(root).connect() as con:
        days = dict(con.execute("select cast(ts as date)::varchar, v from raw.t").fetchall())
        columns = [r[0] for r in con.execute("describe raw.t").fetchall()]
    assert columns == ["ts", "v", *[f"c{i}" for i in range(10)]]
    assert sorted(days) == sorted(["2024-01-01", *old, *new])
    assert {days[d] for d in old + new} == {5.0}
