"""The run-start probe and `warehouse.connect` on damaged files: named, refused, never written."""

import errno
import logging
import os
import shutil
import subprocess
import sys

import duckdb
import pytest

from gridassets import warehouse
from gridassets.storage.health import probe_warehouse
from gridassets.warehouse import (FILE_HEADER_BYTES, WarehouseCorruptError, WarehouseDiskFullError,
                                  WarehouseWalError)
from gridassets_tests.storage.conftest import (build, corrupt_mid_file, leave_wal, overwrite,
                                               sha256, truncate_past_catalog)

# About the DuckDB file itself (its blocks, headers, WAL, a full disk): one backend.
pytestmark = pytest.mark.duckdb_only


def assert_names_the_file_and_what_to_do(exc, path):
    text = str(exc.value)
    assert str(path) in text
    assert "Troubleshooting" in text


def test_a_sound_file_passes_and_is_byte_identical_after(built):
    before = sha256(built.path)
    probe_warehouse(built.path)
    assert sha256(built.path) == before
    assert not warehouse.corrupt_marker(built.path).exists()


def test_a_sound_file_with_a_wal_passes_and_neither_file_changes(built):
    wal = leave_wal(built.path, ["insert into raw.small values (99)",
                                 "create table raw.later as select range from range(200000)"])
    before = sha256(built.path), sha256(wal)
    probe_warehouse(built.path)
    assert (sha256(built.path), sha256(wal)) == before


def test_a_missing_file_is_fine_and_stays_missing(tmp_path):
    path = tmp_path / "data" / "warehouse.duckdb"
    probe_warehouse(path)
    assert not path.exists() and not path.parent.exists()


def test_bytes_overwritten_mid_file_are_found_before_any_step_reads_them(built):
    block = corrupt_mid_file(built)
    before = sha256(built.path)
    # DuckDB itself opens the file and reads its catalog and counts without noticing.
    with duckdb.connect(str(built.path), read_only=True) as con:
        assert con.execute("select count(*) from raw.big").fetchall() == [(1_500_000,)]
    with pytest.raises(WarehouseCorruptError) as exc:
        probe_warehouse(built.path)
    assert_names_the_file_and_what_to_do(exc, built.path)
    assert f"block {block}" in str(exc.value) and "checksum" in str(exc.value)
    assert sha256(built.path) == before
    assert warehouse.corrupt_marker(built.path).exists()


def test_a_truncated_file_is_found_though_duckdb_opens_it(built):
    truncate_past_catalog(built)
    before = sha256(built.path)
    with duckdb.connect(str(built.path), read_only=True) as con:
        assert con.execute("select count(*) from raw.small").fetchall() == [(12,)]
    with pytest.raises(WarehouseCorruptError) as exc:
        probe_warehouse(built.path)
    assert_names_the_file_and_what_to_do(exc, built.path)
    assert "truncated" in str(exc.value)
    assert sha256(built.path) == before


def test_connect_refuses_a_truncated_file_before_a_step_writes_it(built):
    """The operator's case: an intact table's step wrote, and the file grew around the hole."""
    truncate_past_catalog(built)
    size, before = built.path.stat().st_size, sha256(built.path)
    with pytest.raises(WarehouseCorruptError) as exc:
        with warehouse.connect(built.path) as con:
            con.execute("insert into raw.small values (100)")
    assert_names_the_file_and_what_to_do(exc, built.path)
    assert built.path.stat().st_size == size and sha256(built.path) == before


def test_a_checksum_error_mid_step_names_the_file_and_nothing_reaches_it(built):
    corrupt_mid_file(built)
    before = sha256(built.path)
    with pytest.raises(WarehouseCorruptError) as exc:
        with warehouse.connect(built.path) as con:
            con.execute("insert into raw.small values (100)")  # committed before the error
            con.execute("select sum(x) from raw.big").fetchall()
    assert_names_the_file_and_what_to_do(exc, built.path)
    assert isinstance(exc.value.__cause__, duckdb.Error)
    assert sha256(built.path) == before  # no checkpoint on close after corruption


def test_a_write_transaction_that_meets_a_corrupt_block_is_rolled_back(built):
    corrupt_mid_file(built)
    before = sha256(built.path)
    with pytest.raises(WarehouseCorruptError):
        with warehouse.connect(built.path) as con, warehouse.transaction(con):
            con.execute("insert into raw.small values (100)")
            con.execute("delete from raw.big where x < 0.5")
    assert sha256(built.path) == before
    assert not warehouse.wal_path(built.path).exists()  # nothing was committed
    with duckdb.connect(str(built.path), read_only=True) as con:
        assert con.execute("select * from raw.small order by id").fetchall() == built.small_rows


def test_once_corruption_is_seen_later_connections_refuse_the_file_at_once(built):
    corrupt_mid_file(built)
    with pytest.raises(WarehouseCorruptError):
        with warehouse.connect(built.path) as con:
            con.execute("select sum(x) from raw.big").fetchall()
    before = sha256(built.path)
    for read_only in (False, True):
        # raw.small is intact, and this connection would never read raw.big
        with pytest.raises(WarehouseCorruptError) as exc:
            with warehouse.connect(built.path, read_only=read_only) as con:
                con.execute("insert into raw.small values (101)")
        assert "found earlier" in str(exc.value)
        assert str(warehouse.corrupt_marker(built.path)) in str(exc.value)
    with pytest.raises(WarehouseCorruptError):
        probe_warehouse(built.path)
    assert sha256(built.path) == before


@pytest.mark.parametrize("offset, words", [
    (8, "not a valid DuckDB database file"),  # the magic bytes "DUCK"
    (64, "Corrupt database file"),            # the rest of the main header
    (4096 + 64, "Corrupt database file"),     # either of the two database headers
    (8192 + 64, "Corrupt database file"),
])
def test_a_damaged_header_is_named_at_open(built, offset, words):
    overwrite(built.path, offset, 64)
    before = sha256(built.path)
    for attempt in (lambda: probe_warehouse(built.path),
                    lambda: warehouse.connect(built.path).__enter__()):
        warehouse.corrupt_marker(built.path).unlink(missing_ok=True)
        with pytest.raises(WarehouseCorruptError) as exc:
            attempt()
        assert_names_the_file_and_what_to_do(exc, built.path)
        assert words in str(exc.value)
    assert sha256(built.path) == before


def _wal_from_another_copy(built, wal):
    other = built.path.with_name("other.duckdb")
    build(other)
    shutil.move(leave_wal(other, ["insert into raw.small values (7)"]), wal)


def _wal_older_than_the_file(built, wal):
    kept = wal.read_bytes()
    with duckdb.connect(str(built.path)):
        pass  # replays and checkpoints: the file moves on, the saved log is now stale
    wal.write_bytes(kept)


def _wal_with_a_damaged_entry(built, wal):
    assert wal.stat().st_size > 1000
    overwrite(wal, 200, 50)  # past the log's header, inside its first entries


def _wal_of_another_format_version(built, wal):
    data = bytearray(wal.read_bytes())
    # The log opens with its version entry: field 100 (type 98), field 101 (the version).
    assert data[:5] == bytes([0x64, 0x00, 0x62, 0x65, 0x00]), "WAL header layout changed"
    data[5] = 7
    wal.write_bytes(bytes(data))


@pytest.mark.parametrize("spoil", [_wal_from_another_copy, _wal_older_than_the_file,
                                   _wal_with_a_damaged_entry, _wal_of_another_format_version])
def test_a_stale_or_damaged_wal_is_named_with_what_to_do(built, spoil):
    wal = leave_wal(built.path, ["insert into raw.small values (99)",
                                 "create table raw.later as select range from range(1000)"])
    spoil(built, wal)
    before = sha256(built.path), sha256(wal)
    for attempt in (lambda: probe_warehouse(built.path),
                    lambda: warehouse.connect(built.path).__enter__()):
        with pytest.raises(WarehouseWalError) as exc:
            attempt()
        assert_names_the_file_and_what_to_do(exc, built.path)
        assert str(wal) in str(exc.value) and f"mv {wal} {wal}.stale" in str(exc.value)
    assert (sha256(built.path), sha256(wal)) == before
    assert not warehouse.corrupt_marker(built.path).exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_named_and_the_write_rolled_back(built):
    """A real ENOSPC from DuckDB: its WAL is a link to /dev/full, where every write fails so."""
    wal = warehouse.wal_path(built.path)
    wal.symlink_to("/dev/full")
    with pytest.raises(WarehouseDiskFullError) as exc:
        with warehouse.connect(built.path) as con:
            con.execute("insert into raw.small values (100)")
    assert_names_the_file_and_what_to_do(exc, built.path)
    assert "No space left on device" in str(exc.value)
    wal.unlink()
    with duckdb.connect(str(built.path), read_only=True) as con:
        assert con.execute("select * from raw.small order by id").fetchall() == built.small_rows
    assert not warehouse.corrupt_marker(built.path).exists()


@pytest.mark.parametrize("error, kind", [
    (duckdb.IOException('IO Error: Could not write file "w.duckdb": No space left on device'),
     WarehouseDiskFullError),
    (duckdb.TransactionException('TransactionContext Error: Failed to commit: Could not write '
                                 'file "w.duckdb.wal": No space left on device'),
     WarehouseDiskFullError),
    (OSError(errno.ENOSPC, "No space left on device"), WarehouseDiskFullError),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), WarehouseDiskFullError),
    (duckdb.Error("Corrupt database file: computed checksum 1 does not match stored checksum 2 "
                  "in block at location 7876608"), WarehouseCorruptError),
    (duckdb.IOException('IO Error: The file "w.duckdb" exists, but it is not a valid DuckDB '
                        'database file!'), WarehouseCorruptError),
    (duckdb.IOException('IO Error: Could not read enough bytes from file "w.duckdb": attempted '
                        'to read 262144 bytes from location 22032384'), WarehouseCorruptError),
    (duckdb.Error('Failure while replaying WAL file "w.duckdb.wal": Corrupt WAL file: entry at '
                  'byte position 86 computed checksum 4 does not match stored checksum 5'),
     WarehouseWalError),
    (duckdb.IOException('IO Error: Failure while replaying WAL file "w.duckdb.wal": WAL does not '
                        'match database file.'), WarehouseWalError),
    (duckdb.CatalogException("Catalog Error: Table with name big does not exist!"), None),
    (duckdb.BinderException('Binder Error: Referenced column "checksum" not found'), None),
    (duckdb.ConversionException("Conversion Error: Could not convert string 'x' to INT32"), None),
    (OSError(errno.ENOENT, "No such file or directory"), None),
])
def test_classify_by_type_and_text(tmp_path, error, kind):
    path = tmp_path / "w.duckdb"
    found = warehouse.classify(error, path)
    if kind is None:
        assert found is None
    else:
        assert type(found) is kind and str(path) in str(found) and found.path == path
        # handlers written for DuckDB's errors (the failure alert's table write) still apply
        assert isinstance(found, duckdb.Error)


def test_an_unclassified_error_leaves_connect_unchanged(built):
    with pytest.raises(duckdb.CatalogException):
        with warehouse.connect(built.path) as con:
            con.execute("select * from raw.nowhere")
    assert not warehouse.corrupt_marker(built.path).exists()


def test_the_probe_leaves_a_file_held_by_a_writer_unjudged(built, caplog):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); sys.stdin.read()", str(built.path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with caplog.at_level(logging.WARNING, logger="gridassets.storage.health"):
            probe_warehouse(built.path)
        assert "not probed" in caplog.text and str(built.path) in caplog.text
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_a_rebuilt_warehouse_is_not_refused_for_its_predecessor(built):
    """`make clean` removes the file (not the marker); the next run builds a new one."""
    corrupt_mid_file(built)
    with pytest.raises(WarehouseCorruptError):
        probe_warehouse(built.path)
    built.path.unlink()
    probe_warehouse(built.path)
    with warehouse.connect(built.path) as con:
        con.execute("create table t as select 1 as x")
    probe_warehouse(built.path)
    assert not warehouse.corrupt_marker(built.path).exists()


def test_a_callers_own_transaction_is_not_committed_by_the_close_after_corruption(built):
    """DuckDB 2.0.1 keeps a transaction committable after a checksum error; connect rolls back."""
    corrupt_mid_file(built)
    before = sha256(built.path)
    with pytest.raises(WarehouseCorruptError):
        with warehouse.connect(built.path) as con:
            con.begin()
            con.execute("insert into raw.small values (100)")
            con.execute("select sum(x) from raw.big").fetchall()
    assert sha256(built.path) == before
    warehouse.corrupt_marker(built.path).unlink()
    with duckdb.connect(str(built.path), read_only=True) as con:
        assert con.execute("select * from raw.small order by id").fetchall() == built.small_rows


def _data_blocks(b) -> list[int]:
    with duckdb.connect(str(b.path), read_only=True) as con:
        used = {blk for (blk,) in con.execute(
            "select block_id from pragma_storage_info('raw.big') where block_id >= 0 union "
            "select block_id from pragma_storage_info('raw.small') where block_id >= 0").fetchall()}
        metadata = {blk for (blk,) in con.execute(
            "select block_id from pragma_metadata_info()").fetchall()}
    return sorted(used - metadata)


def test_the_run_start_probe_checks_a_big_file_a_slice_per_run_and_finds_the_damaged_block(built):
    """Each run checks the next slice of data blocks: the damage mid-file passes the runs whose
    slices lie before it and fails the first whose slice holds it."""
    data, per_run = _data_blocks(built), 4
    block = corrupt_mid_file(built)
    finding_run = data.index(block) // per_run + 1
    assert finding_run > 2, "the damage lies past the first slices"
    for _ in range(finding_run - 1):
        probe_warehouse(built.path, budget_bytes=per_run * built.block_size)
    with pytest.raises(WarehouseCorruptError) as exc:
        probe_warehouse(built.path, budget_bytes=per_run * built.block_size)
    assert_names_the_file_and_what_to_do(exc, built.path)
    assert f"block {block}" in str(exc.value)


def test_the_slices_wrap_round_so_every_block_is_checked_within_size_over_budget_runs(built):
    """Slices follow on from each other round the data blocks (the one that reaches the end goes
    on from the start), so the damage behind the first slice is found within size / budget runs."""
    data, per_run = _data_blocks(built), 4
    n, rounds = len(data), -(-len(data) // per_run)
    before = sha256(built.path)
    probe_warehouse(built.path, budget_bytes=per_run * built.block_size)  # checks data[:4]
    assert sha256(built.path) == before
    overwrite(built.path, FILE_HEADER_BYTES + data[1] * built.block_size + 100)
    # the first later run whose slice, indices per_run * k ... mod n, holds index 1 again
    finding = next(k for k in range(1, n + 1)
                   if 1 in {(per_run * k + j) % n for j in range(per_run)})
    assert finding <= rounds
    for _ in range(finding - 1):  # the runs before it pass
        probe_warehouse(built.path, budget_bytes=per_run * built.block_size)
    with pytest.raises(WarehouseCorruptError) as exc:
        probe_warehouse(built.path, budget_bytes=per_run * built.block_size)
    assert f"block {data[1]}" in str(exc.value)
