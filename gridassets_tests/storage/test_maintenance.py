"""The warehouse's upkeep: vacuum removes only files no current snapshot names, and the tables
read the same before and after; the job runs on both backends."""

from datetime import datetime

import pandas as pd

from gridassets.defs.ops.maintenance import warehouse_maintenance
from gridassets.defs.resources import GridSettings, Warehouse
from gridassets.storage import maintenance
from gridassets.storage.delta import DeltaWarehouse
from gridassets.storage.publish import PartitionWindow, Slice


def _day(key: str) -> PartitionWindow:
    start = datetime.fromisoformat(key)
    return PartitionWindow(key, start, start + pd.Timedelta(days=1))


def _write(store, key: str, value: float, run: str) -> None:
    frame = pd.DataFrame({"ts": pd.to_datetime([f"{key} 01:00", f"{key} 02:00"]),
                          "v": [value, value + 1]})
    store.publish(Slice("raw", "feeder_load", "ts", windows=(_day(key),)), frame,
                  asset="feeder_load", run_id=run)


def _files(root) -> set[str]:
    return {str(p) for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}


def test_vacuum_removes_superseded_files_and_keeps_what_the_snapshot_reads(tmp_path):
    store = DeltaWarehouse(tmp_path / "lake")
    _write(store, "2025-01-01", 1.0, "r1")
    _write(store, "2025-01-02", 5.0, "r1")
    _write(store, "2025-01-01", 2.0, "r2")  # supersedes the first file of 2025-01-01
    with store.connect() as con:
        before = con.sql("select * from raw.feeder_load order by ts").fetchall()
    files = _files(tmp_path / "lake")
    assert len(files) == 3

    done = maintenance.maintain(store, retention_hours=0)

    assert [u.table for u in done] == ["raw.feeder_load"]
    assert done[0].files_vacuumed == 1
    assert len(_files(tmp_path / "lake")) == 2
    with store.connect() as con:
        assert con.sql("select * from raw.feeder_load order by ts").fetchall() == before
    store.probe()  # every file the log names is there


def test_the_default_retention_keeps_a_week_of_snapshots(tmp_path):
    store = DeltaWarehouse(tmp_path / "lake")
    _write(store, "2025-01-01", 1.0, "r1")
    _write(store, "2025-01-01", 2.0, "r2")
    done = maintenance.maintain(store)
    assert done[0].files_vacuumed == 0
    assert len(_files(tmp_path / "lake")) == 2


def test_the_maintenance_job_runs_on_both_backends(tmp_path):
    for kind in ("duckdb", "delta"):
        settings = GridSettings(data_dir=str(tmp_path / kind), backend=kind)
        store = Warehouse(settings=settings).store
        _write(store, "2025-01-01", 1.0, "r1")
        result = warehouse_maintenance.execute_in_process(
            resources={"warehouse": Warehouse(settings=settings)})
        assert result.success
        [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        metadata = output.event_specific_data.metadata
        assert metadata["backend"].value == kind
        assert metadata["tables"].value == (1 if kind == "delta" else 0)


def test_a_lake_backup_reads_the_same_and_never_overwrites(tmp_path, monkeypatch, capsys):
    from gridassets import cli

    data = tmp_path / "data"
    store = DeltaWarehouse(data / "lake")
    _write(store, "2025-01-01", 1.0, "r1")
    _write(store, "2025-01-02", 3.0, "r1")
    monkeypatch.setenv("GRIDASSETS_DATA_DIR", str(data))
    monkeypatch.setenv("GRIDASSETS_WAREHOUSE", "delta")
    dest = tmp_path / "copy"

    assert cli.main(["backup", "--to", str(dest)]) == 0
    assert "(1 tables)" in capsys.readouterr().out
    with store.connect() as con, DeltaWarehouse(dest).connect() as copy:
        query = "select * from raw.feeder_load order by ts"
        assert copy.sql(query).fetchall() == con.sql(query).fetchall()

    assert cli.main(["backup", "--to", str(dest)]) == 1
    assert "exists" in capsys.readouterr().err
