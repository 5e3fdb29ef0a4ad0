"""Real DuckDB warehouse files in tmp_path, and the ways they get damaged in the field."""

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from gridassets.warehouse import FILE_HEADER_BYTES

BIG_ROWS = 1_500_000


@dataclass(frozen=True)
class Built:
    path: Path
    block_size: int
    big_blocks: list[int]      # data blocks of raw.big, in order
    small_rows: list[tuple]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build(path: Path) -> Built:
    """A warehouse whose catalog and small table sit at the start of the file and whose big
    table fills the rest, as after a few days of writes: a cut past the catalog still opens."""
    con = duckdb.connect(str(path))
    con.execute("create schema raw")
    con.execute("create table raw.small as select range as id from range(10)")
    con.execute("checkpoint")
    con.execute(f"create table raw.big as select range as id, random() as x, "
                f"'circuit-' || (range % 40) as circuit_id from range({BIG_ROWS})")
    con.execute("checkpoint")
    for extra in (10, 11):  # two more checkpoints move the catalog back into the first blocks
        con.execute("insert into raw.small values (?)", [extra])
        con.execute("checkpoint")
    block_size = con.execute("select block_size from pragma_database_size()").fetchall()[0][0]
    big = sorted({b for (b,) in con.execute(
        "select block_id from pragma_storage_info('raw.big') where block_id >= 0").fetchall()})
    small = con.execute("select * from raw.small order by id").fetchall()
    catalog = {b for (b,) in con.execute("select block_id from pragma_metadata_info()").fetchall()}
    con.close()
    assert len(big) > 8 and max(catalog) < big[len(big) // 2], "the layout the tests rely on"
    assert not Path(f"{path}.wal").exists()
    return Built(path, block_size, big, small)


@pytest.fixture
def built(tmp_path) -> Built:
    return build(tmp_path / "warehouse.duckdb")


def block_offset(b: Built, block: int) -> int:
    return FILE_HEADER_BYTES + block * b.block_size


def overwrite(path: Path, offset: int, length: int = 512) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes((i * 37 + 11) % 256 for i in range(length)))


def corrupt_mid_file(b: Built) -> int:
    """Overwrite bytes in the middle of a data block of raw.big half-way through the file."""
    block = b.big_blocks[len(b.big_blocks) // 2]
    overwrite(b.path, block_offset(b, block) + b.block_size // 2)
    return block


def truncate_past_catalog(b: Built) -> None:
    """Cut the file in the middle of raw.big's blocks; the catalog at the start survives."""
    os.truncate(b.path, block_offset(b, b.big_blocks[len(b.big_blocks) // 2]))


def leave_wal(path: Path, statements: list[str]) -> Path:
    """Run statements in a process that dies before it checkpoints: their WAL stays beside the
    file, as after a crash."""
    code = (
        "import duckdb, os, sys\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "con.execute(\"set wal_autocheckpoint = '1GB'\")\n"
        f"for s in {statements!r}:\n"
        "    con.execute(s)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)
    wal = Path(f"{path}.wal")
    assert wal.stat().st_size > 0
    return wal
