"""`python -m gridassets backup`: a consistent, checked copy that restores to equal tables."""

import shutil

import duckdb
import pytest

from gridassets import cli, warehouse
from gridassets.storage.health import BackupError, backup_warehouse
from gridassets_tests.storage.conftest import corrupt_mid_file, leave_wal, sha256

# About consistent copies of the DuckDB file itself: one backend.
pytestmark = pytest.mark.duckdb_only


def tables(path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        names = [f"{s}.{t}" for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() order by 1, 2").fetchall()]
        return {n: con.execute(f"select * from {n} order by all").fetchall() for n in names}


def test_back_up_then_restore_by_copying_into_place(built, tmp_path, monkeypatch, capsys):
    data = built.path.parent
    monkeypatch.setenv("GRIDASSETS_DATA_DIR", str(data))
    at_backup = tables(built.path)
    assert cli.main(["backup"]) == 0
    out = capsys.readouterr().out
    made = list((data / "backups").glob("warehouse-*.duckdb"))
    assert len(made) == 1 and made[0].name.endswith("Z.duckdb")
    assert str(made[0]) in out and "MB" in out and "2 tables" in out
    assert not list((data / "backups").glob("*.partial"))

    with duckdb.connect(str(built.path)) as con:  # the warehouse moves on, then is lost
        con.execute("insert into raw.small values (500)")
        con.execute("drop table raw.big")
    shutil.copyfile(made[0], built.path)
    assert tables(built.path) == at_backup


def test_the_backup_holds_what_only_the_wal_had(built, tmp_path):
    leave_wal(built.path, ["insert into raw.small values (77)"])
    dest = backup_warehouse(built.path, tmp_path / "b.duckdb").path
    assert not warehouse.wal_path(dest).exists()
    assert (77,) in tables(dest)["raw.small"]
    assert tables(dest) == tables(built.path)


def test_a_corrupt_warehouse_is_not_backed_up_and_says_so(built, monkeypatch, capsys):
    corrupt_mid_file(built)
    before = sha256(built.path)
    monkeypatch.setenv("GRIDASSETS_DATA_DIR", str(built.path.parent))
    assert cli.main(["backup"]) == 1
    err = capsys.readouterr().err
    assert "not backed up" in err and "corrupt" in err and str(built.path) in err
    assert not list(built.path.parent.glob("backups/*"))
    assert sha256(built.path) == before


def test_a_backup_never_overwrites_and_needs_a_warehouse(built, tmp_path):
    dest = tmp_path / "b.duckdb"
    dest.write_bytes(b"an older backup")
    with pytest.raises(BackupError, match="exists already"):
        backup_warehouse(built.path, dest)
    assert dest.read_bytes() == b"an older backup"
    with pytest.raises(BackupError, match="nothing to back up"):
        backup_warehouse(tmp_path / "none.duckdb", tmp_path / "c.duckdb")


def test_to_a_folder_puts_the_timestamped_file_in_it(built, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDASSETS_DUCKDB", str(built.path))
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    assert cli.main(["backup", "--to", str(folder)]) == 0
    (made,) = folder.glob("warehouse-*.duckdb")
    assert str(made) in capsys.readouterr().out
    assert tables(made) == tables(built.path)


def test_restoring_a_backup_over_a_corrupt_file_lets_runs_use_it_again(built, tmp_path):
    made = backup_warehouse(built.path, tmp_path / "b.duckdb").path
    at_backup = tables(made)
    corrupt_mid_file(built)
    with pytest.raises(warehouse.WarehouseCorruptError):
        with warehouse.connect(built.path) as con:
            con.execute("select sum(x) from raw.big").fetchall()
    with pytest.raises(warehouse.WarehouseCorruptError, match="found"):
        warehouse.connect(built.path).__enter__()
    warehouse.wal_path(built.path).unlink(missing_ok=True)
    shutil.copyfile(made, built.path)  # the README's restore: copy into place
    with warehouse.connect(built.path) as con:
        assert con.execute("select count(*) from raw.big").fetchall() == [(1_500_000,)]
    assert not warehouse.corrupt_marker(built.path).exists()
    assert tables(built.path) == at_backup
