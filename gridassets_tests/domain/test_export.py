import os
import stat

import pandas as pd
import pytest

from gridassets.domain import export


@pytest.fixture
def umask():
    """Sets the process umask for one test and restores the previous one."""
    previous = os.umask(0o022)

    def set_to(mask: int) -> None:
        os.umask(mask)

    yield set_to
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_mode_an_ordinary_open_would_give(tmp_path, umask, mask, expected):
    umask(mask)
    csv = export.write_atomic_csv(pd.DataFrame({"a": [1]}), tmp_path / "out" / "list.csv")
    text = export.write_atomic_text("{}", tmp_path / "out" / "report.json")
    assert (mode(csv), mode(text)) == (expected, expected)


def test_an_existing_file_is_replaced_whole_and_no_temporary_is_left(tmp_path, umask):
    path = tmp_path / "list.csv"
    path.write_text("old\n")
    os.chmod(path, 0o600)
    export.write_atomic_csv(pd.DataFrame({"a": [1, 2]}), path)
    assert path.read_text() == "a\n1\n2\n"
    assert mode(path) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["list.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, umask):
    path = tmp_path / "list.csv"
    path.write_text("old\n")

    class Broken(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        export.write_atomic_csv(Broken({"a": [1]}), path)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["list.csv"]


def test_durable_bytes_and_the_alert_store_are_readable_by_others(tmp_path):
    from gridassets.domain.export import write_atomic_bytes
    from gridassets.storage.alert_store import write_atomically

    old = os.umask(0o022)
    try:
        a = write_atomic_bytes(b"{}\n", tmp_path / "a.json", durable=True)
        b = tmp_path / "notes" / "b.note.json"
        write_atomically(b, b"{}\n")
    finally:
        os.umask(old)
    for path in (a, b):
        assert path.read_bytes() == b"{}\n"
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
