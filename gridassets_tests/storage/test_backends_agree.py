"""Both warehouse backends give the same results, and the copy between them loses nothing.

The graph is built once on the DuckDB file and once on the Delta lake with the same settings, as
`python -m gridassets run` builds it (gridassets/runner.py): the fleet registry, three days of raw
data and features, the week's models (too little history to train: each records a failed
version), and two days of load forecasts with their backtest. Every table is then read through
`open_warehouse(...).connect()` and compared: the same tables, the same columns in the same order
with the same DuckDB types, the same rows (floats within 1e-9).
"""

import hashlib
import shutil
from datetime import datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from gridassets import runner
from gridassets.settings import Settings
from gridassets.storage import copy
from gridassets.storage.backend import DuckDBWarehouse, open_warehouse
from gridassets.storage.delta import PARTITION, DeltaWarehouse
from gridassets.storage.publish import PartitionWindow, Slice
from gridassets_tests.conftest import BACKENDS, SMALL_FLEET

# A window with outages (05-02, 05-03) and a transformer failure (05-02) in the small fleet.
FIRST, LAST = "2025-05-01", "2025-05-03"
DAYS = ["2025-05-01", "2025-05-02", "2025-05-03"]
WEEK = "2025-04-28"  # the Monday of LAST's week
FORECAST = ("load_forecast,load_forecast_models,load_forecast_backtest", "2025-05-02", LAST)
# Columns that say when a row was written, not what it holds.
WALL_CLOCK = {"trained_at"}


def build(data: Path, backend: str, instance: dg.DagsterInstance) -> None:
    from gridassets.definitions import defs

    steps = [(runner.FLEET, None, None), (runner.RAW, FIRST, LAST),
             (runner.FEATURES, FIRST, LAST), (runner.MODELS, WEEK, WEEK), FORECAST]
    env = {"GRIDASSETS_DATA_DIR": str(data), "GRIDASSETS_WAREHOUSE": backend,
           "GRIDASSETS_SEED": str(SMALL_FLEET["seed"]),
           "GRIDASSETS_CIRCUITS": str(SMALL_FLEET["n_circuits"]),
           "GRIDASSETS_TRANSFORMERS": str(SMALL_FLEET["n_transformers"])}
    with pytest.MonkeyPatch.context() as mp:
        for var, value in env.items():
            mp.setenv(var, value)
        for select, start, end in steps:
            runner.materialize(defs, select, start=start, end=end, dagster_instance=instance,
                               log_level="WARNING")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Settings]:
    """The same graph on each backend: backend -> its settings."""
    root = tmp_path_factory.mktemp("agree")
    with dg.instance_for_test() as instance:
        for backend in BACKENDS:
            build(root / backend, backend, instance)
    return {b: Settings(data_dir=root / b, backend=b, **SMALL_FLEET) for b in BACKENDS}


@pytest.fixture(scope="module")
def partitioning() -> dict[str, copy.Partitioning]:
    return copy.partitioning_from_definitions()


def tables(store) -> list[str]:
    return [t for t in store.tables() if t not in copy.BOOKKEEPING]


def read(store, table: str) -> tuple[list[tuple[str, str]], pd.DataFrame]:
    """Columns with their types, and every row in a fixed order (floats last in the key, so
    that a last-bit difference cannot reorder rows)."""
    with store.connect(read_only=True) as con:
        columns = [(r[0], r[1]) for r in con.execute(f"describe select * from {table}").fetchall()]
        floats = [c for c, t in columns if t in ("DOUBLE", "FLOAT")]
        order = [c for c, _ in columns if c not in floats] + floats
        by = ", ".join(f'"{c}"' for c in order)
        return columns, con.execute(f"select * from {table} order by {by}").fetchdf()


def checksums(store) -> dict[str, tuple]:
    """Per table: columns with types, rows and the sum of every row's hash."""
    out = {}
    with store.connect(read_only=True) as con:
        for table in tables(store):
            columns = [(r[0], r[1]) for r in
                       con.execute(f"describe select * from {table}").fetchall()]
            row = ", ".join(f'"{c}"' for c, _ in columns)
            n, h = con.execute(f"select count(*), sum(hash({row})) from {table}").fetchall()[0]
            out[table] = (columns, n, h)
    return out


def test_every_table_is_the_same_on_both_backends(built):
    duck, lake = (open_warehouse(built[b]) for b in BACKENDS)
    assert tables(duck) == tables(lake)
    assert len(tables(duck)) >= 16
    for table in tables(duck):
        (columns, a), (lake_columns, b) = read(duck, table), read(lake, table)
        assert lake_columns == columns, table
        assert len(a) == len(b), table
        floats = [c for c, t in columns if t in ("DOUBLE", "FLOAT")]
        exact = [c for c, _ in columns if c not in floats and c not in WALL_CLOCK]
        pd.testing.assert_frame_equal(a[exact], b[exact], check_exact=True, obj=table)
        for column in floats:
            np.testing.assert_allclose(b[column].to_numpy(float), a[column].to_numpy(float),
                                       rtol=1e-9, atol=1e-9, equal_nan=True,
                                       err_msg=f"{table}.{column}")
    # What is compared is not empty: raw events, features and forecasts have rows.
    with duck.connect(read_only=True) as con:
        for table in ("raw.outage_events", "raw.transformer_failures",
                      "features.circuit_exposure_features", "scores.load_forecast"):
            assert con.execute(f"select count(*) from {table}").fetchall()[0][0] > 0, table


def test_a_copy_from_duckdb_to_delta_and_back_loses_nothing(built, partitioning, tmp_path):
    source = open_warehouse(built["duckdb"])
    lake = DeltaWarehouse(tmp_path / "lake")
    back = DuckDBWarehouse(tmp_path / "back.duckdb")
    lines: list[str] = []

    there = copy.copy_warehouse(source, lake, log=lines.append, partitioning=partitioning)
    again = copy.copy_warehouse(lake, back, log=lines.append, partitioning=partitioning)

    assert there.ok and again.ok, there.all_problems() + again.all_problems()
    expected = checksums(source)
    assert checksums(lake) == expected
    assert checksums(back) == expected
    assert there.skipped == ["ops.partition_publishes"]
    feeder = next(t for t in there.tables if t.name == "raw.feeder_load")
    assert (feeder.rows, feeder.partitions) == (SMALL_FLEET["n_circuits"] * 24 * 3, 3)
    assert "checked raw.feeder_load: 432 rows, 3 partitions: rows, checksums and column types " \
           "equal" in lines
    # On Delta every row carries its partition key, and the writes carry the copy's run id.
    keys = DeltaTable(str(lake.path_of("raw", "feeder_load"))).to_pyarrow_dataset() \
        .to_table(columns=[PARTITION]).column(PARTITION).unique().to_pylist()
    assert sorted(keys) == DAYS
    published = {(p.asset, p.partition_key) for p in lake.published_by_run(copy.RUN_ID)}
    assert ("maintenance_model", WEEK) in published and ("circuits", "") in published


def snapshot(path: Path) -> dict[str, str]:
    """Every file under `path` (or the file itself) with the SHA-256 of its bytes."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


@pytest.mark.parametrize("into", BACKENDS)
def test_a_copy_into_a_non_empty_target_is_refused_and_leaves_it_untouched(built, partitioning,
                                                                          into):
    source = open_warehouse(built[next(b for b in BACKENDS if b != into)])
    target = open_warehouse(built[into])
    before = snapshot(target.location)
    with pytest.raises(copy.CopyRefused, match=f"{target.location} already holds .*--replace"):
        copy.copy_warehouse(source, target, log=lambda line: None, partitioning=partitioning)
    assert snapshot(target.location) == before


def test_replace_deletes_what_the_target_held_then_copies(built, partitioning, tmp_path):
    source = open_warehouse(built["duckdb"])
    lake = DeltaWarehouse(tmp_path / "lake")
    shutil.copytree(built["delta"].lake_dir, lake.location)
    stray = Slice("raw", "feeder_load", "timestamp", windows=(PartitionWindow(
        "2025-07-01", datetime(2025, 7, 1), datetime(2025, 7, 2)),))
    lake.publish(stray, pd.DataFrame({"circuit_id": ["C9"], "timestamp": [datetime(2025, 7, 1)],
                                      "load_mw": [1.0]}), asset="feeder_load", run_id="stray")
    lines: list[str] = []
    report = copy.copy_warehouse(source, lake, log=lines.append, replace=True,
                                 partitioning=partitioning)
    assert report.ok, report.all_problems()
    assert lines[0] == f"replacing the delta warehouse {lake.location}: deleting its 19 table(s)"
    assert checksums(lake) == checksums(source)
    assert lake.published_by_run("stray") == []


def test_a_write_that_loses_rows_is_reported_by_partition(tmp_path):
    source = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    for key in ("2025-05-01", "2025-05-02"):
        start = datetime.fromisoformat(key)
        source.publish(
            Slice("raw", "feeder_load", "timestamp",
                  windows=(PartitionWindow(key, start, start + pd.Timedelta(days=1)),)),
            pd.DataFrame({"circuit_id": ["C1", "C2", "C3"], "timestamp": [start] * 3,
                          "load_mw": [1.0, 2.0, 3.0]}), asset="feeder_load", run_id="r")

    class Lossy(DeltaWarehouse):
        def publish(self, target, frame, **kw):  # drops circuit C3's row of 2025-05-02
            lost = (frame["circuit_id"] == "C3") & (frame["timestamp"] == datetime(2025, 5, 2))
            return super().publish(target, frame[~lost], **kw)

    report = copy.copy_warehouse(source, Lossy(tmp_path / "lake"), log=lambda line: None,
                                 partitioning={"feeder_load": copy.Partitioning("timestamp",
                                                                                "day")})
    assert not report.ok
    assert report.all_problems() == [
        "raw.feeder_load: 1 partition(s) differ (2025-05-02: 3 rows in the source, 2 in the "
        "target)"]


def test_an_hourly_table_copies_hour_by_hour(tmp_path):
    """The intraday forecast's partitions are hours ('2025-06-01-14:00'): the copy keys, writes
    and checks them one by one, on a Delta table whose partition folders hold a ':'."""
    source = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    scheme = copy.Partitioning("cutoff_ts", "hour")
    hours = ["2025-06-01-13:00", "2025-06-01-14:00"]
    for key in hours:
        cutoff = datetime.strptime(key, "%Y-%m-%d-%H:%M")
        source.publish(scheme.slice("scores", "intraday_load_forecast", [key]),
                       pd.DataFrame({"circuit_id": ["C1", "C2"], "cutoff_ts": [cutoff] * 2,
                                     "load_mw": [1.0, 2.0]}),
                       asset="intraday_load_forecast", run_id="r")
    target = DeltaWarehouse(tmp_path / "lake")
    report = copy.copy_warehouse(source, target, log=lambda line: None,
                                 partitioning={"intraday_load_forecast": scheme})
    assert report.ok, report.all_problems()
    with target.connect(read_only=True) as con:
        assert con.execute("select strftime(cutoff_ts, '%Y-%m-%d-%H:%M') as h, count(*) "
                           "from scores.intraday_load_forecast group by h order by h"
                           ).fetchall() == [(h, 2) for h in hours]


def test_a_slice_of_no_partitions_creates_the_table_empty_with_its_types(tmp_path, backend):
    store = open_warehouse(Settings(data_dir=tmp_path, backend=backend))
    empty = pd.DataFrame({"circuit_id": pd.Series([], dtype="string[pyarrow]"),
                          "start_ts": pd.Series([], dtype="datetime64[us]"),
                          "customers_affected": pd.Series([], dtype="Int64")})
    counts = store.publish(Slice("raw", "outage_events", "start_ts"), empty,
                           asset="outage_events", run_id="create")
    assert counts == {}
    with store.connect(read_only=True) as con:
        assert con.execute("describe select * from raw.outage_events").fetchall()[0][:2] == \
            ("circuit_id", "VARCHAR")
        assert [(r[0], r[1]) for r in con.execute(
            "describe select * from raw.outage_events").fetchall()] == [
            ("circuit_id", "VARCHAR"), ("start_ts", "TIMESTAMP"), ("customers_affected", "BIGINT")]
        assert con.execute("select count(*) from raw.outage_events").fetchall() == [(0,)]
    assert store.published_by_run("create") == []


def test_the_partitioning_comes_from_the_assets(partitioning):
    assert partitioning["transformer_telemetry"] == copy.Partitioning("timestamp", "day")
    assert partitioning["outage_events"] == copy.Partitioning("start_ts", "day")
    assert partitioning["maintenance_model"] == copy.Partitioning("week_start", "week")
    assert partitioning["storm_alerts"] == copy.Partitioning("storm_id", None)
    assert partitioning["intraday_load_forecast"] == copy.Partitioning("cutoff_ts", "hour")
    assert "circuits" not in partitioning
    week = partitioning["outage_model"].slice("models", "outage_model", [WEEK]).windows[0]
    assert (week.start, week.end) == (datetime(2025, 4, 28), datetime(2025, 5, 5))


def test_the_command_copies_then_refuses_a_second_copy(built, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(built["duckdb"].warehouse, data / "warehouse.duckdb")
    monkeypatch.setenv("GRIDASSETS_DATA_DIR", str(data))

    assert copy.main(["--to", "delta"]) == 0
    out = capsys.readouterr().out
    assert f"into the delta warehouse {data / 'lake'}" in out
    # 120 transformers x 72 hours, less a day of 3 silent ones (a simulated telemetry threat)
    assert "checked raw.transformer_telemetry: 8,568 rows, 3 partitions: rows, checksums and " \
           "column types equal" in out
    assert "19 tables copied and checked" in out

    assert copy.main(["--to", "delta"]) == 1
    err = capsys.readouterr().err
    assert f"the delta warehouse {data / 'lake'} already holds 19 table(s)" in err
    assert "--replace" in err
    assert copy.main(["--to", "duckdb"]) == 2
    assert "already duckdb" in capsys.readouterr().err
