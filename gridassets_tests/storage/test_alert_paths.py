"""Values from an alert file (its name, id, event, zones) never lead a write outside the alerts
folder: the inbox is processed through `alert_inbox.process_inbox`, the sensor's own function, and
every file created afterwards must lie under the temporary data folder, in its intended place."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gridassets.domain.alerts import MAX_FILE_BYTES
from gridassets.domain.storm_messages import InboxCursor
from gridassets.storage import alert_inbox, alert_store, storm_lists

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
ZONES = ("MTZ309", "MTZ310")
HOSTILE = [
    "../../x",
    "/etc/passwd",
    "..\\..\\x",
    "a/b",
    "nul\x00byte",
    "x" * 10_000,
    "\u202e..\u2215..\u2215x",  # right-to-left override and DIVISION SLASH, which looks like "/"
    "\uff0e\uff0e\uff0fx",  # fullwidth "../x"
    "..",
]


def alert(**fields) -> dict:
    base = {"id": "acme-wind-1", "event": "High Wind Warning",
            "onset": (NOW + timedelta(minutes=30)).isoformat(),
            "expires": (NOW + timedelta(hours=10)).isoformat(),
            "zones": list(ZONES), "max_wind_gust_mph": 72}
    base.update(fields)
    return base


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def drop(inbox: Path, name: str, data: bytes) -> None:
    path = inbox / name
    path.write_bytes(data)
    old = (NOW - timedelta(minutes=5)).timestamp()
    os.utime(path, (old, old))


@pytest.fixture
def sandbox(tmp_path):
    """(data folder, alerts root, outside folder): the data folder sits two levels down, so a
    climb of ../../ from the store lands in `outside`, which must stay empty."""
    outside = tmp_path / "outside"
    data = outside / "deep" / "data"
    root = data / "alerts"
    (root / "inbox").mkdir(parents=True)
    return data, root, outside


def process(root: Path) -> alert_inbox.InboxTick:
    return alert_inbox.process_inbox(root, ZONES, InboxCursor(), NOW)


@pytest.mark.parametrize("field", ["id", "event", "zones"])
def test_hostile_alert_values_stay_inside_the_store(sandbox, field):
    data, root, outside = sandbox
    for i, value in enumerate(HOSTILE):
        fields = {"id": f"acme-{i}", field: [*ZONES, value] if field == "zones" else value}
        drop(root / "inbox", f"a{i}.json", json.dumps(alert(**fields)).encode())
    before = files_under(outside) - files_under(data)
    tick = process(root)

    assert files_under(outside) - files_under(data) == before  # nothing new outside the data folder
    for path in files_under(root / "storms"):
        assert path.resolve().is_relative_to((root / "storms").resolve())
        if path.is_file():
            assert path.parent.parent == root / "storms"  # storms/<storm>/<message>.json
            assert path.parent.name == alert_store.sanitize_key(path.parent.name)
    for run in tick.runs:
        assert storm_lists.storm_list_files(data / "outputs", run.storm_id).sheet.parent == \
            data / "outputs" / "storms" / run.storm_id
    assert {f.outcome for f in tick.files} <= {"processed", "rejected"}
    assert len(tick.files) == len(HOSTILE)


def test_hostile_ids_are_refused_with_a_reason_or_mapped_to_safe_storm_keys(sandbox):
    data, root, _ = sandbox
    for i, value in enumerate(HOSTILE):
        drop(root / "inbox", f"a{i}.json", json.dumps(alert(id=value)).encode())
    tick = process(root)
    rejected = {f.name for f in tick.files if f.outcome == "rejected"}
    # A NUL byte, bidirectional controls and an id past MAX_ID_CHARS are refused, with the reason.
    assert rejected == {"a4.json", "a5.json", "a6.json"}
    for name in rejected:
        error = (root / "rejected" / (name + alert_inbox.ERROR_SUFFIX)).read_text()
        assert "Reason: the alert is unusable: id " in error
    storms = {run.storm_id for run in tick.runs}
    assert len(storms) == len(HOSTILE) - len(rejected)  # each id its own storm: none collapsed
    assert all(s == alert_store.sanitize_key(s) and "/" not in s and ".." not in s for s in storms)
    assert sorted(storms) == alert_store.list_storms(root)


@pytest.mark.parametrize("key", HOSTILE + ["", "Upper-Case", "a.b"])
def test_a_storm_partition_key_cannot_name_a_folder_outside(tmp_path, key):
    with pytest.raises(ValueError, match="is not a storm id"):
        alert_store.storm_folder(tmp_path, key)
    with pytest.raises(ValueError, match="is not a storm id"):
        storm_lists.storm_list_files(tmp_path, key)


@pytest.mark.parametrize("name", [
    "-.json", "a b.json", "a..json", "\u202egnp.json", "x" * 250 + ".json",
    "\udcff\udcfe.json",  # a file name that is not valid UTF-8
])
def test_hostile_file_names_are_rejected_with_their_reason(sandbox, name):
    data, root, outside = sandbox
    try:
        drop(root / "inbox", name, b"not json")
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system does not take the name")
    tick = process(root)
    [report] = tick.files
    assert report.outcome == "rejected" and not tick.problems, tick.problems
    moved = root / report.moved_to
    assert moved.parent == root / "rejected" and moved.is_file()
    error = moved.with_name(moved.name + alert_inbox.ERROR_SUFFIX).read_text()
    assert "Reason: the file is not valid JSON" in error
    assert set(os.listdir(outside)) == {"deep"}


@pytest.mark.parametrize("name", ["x" * 250 + ".json", "\u00e9" * 120 + ".json"])
def test_a_long_file_name_is_processed_with_its_note(sandbox, name):
    """A name near the file system's limit leaves no room for ".note.json": it is shortened."""
    _, root, _ = sandbox
    for _ in range(2):  # the second time, the name is taken: it gets a numbered or hashed one
        drop(root / "inbox", name, json.dumps(alert()).encode())
        tick = process(root)
        [report] = tick.files
        assert report.outcome == "processed" and not tick.problems, tick.problems
        moved = root / report.moved_to
        assert moved.with_name(moved.name + alert_inbox.NOTE_SUFFIX).is_file()


def test_a_file_over_the_size_limit_is_rejected_before_it_is_read(sandbox, monkeypatch):
    _, root, _ = sandbox
    limit = 1000
    monkeypatch.setattr(alert_inbox, "MAX_FILE_BYTES", limit)
    drop(root / "inbox", "big.json", json.dumps(alert(headline="h" * limit)).encode())
    opened = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(Path(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(alert_inbox.os, "open", spy)
    tick = process(root)
    [report] = tick.files
    assert report.outcome == "rejected"
    assert not [p for p in opened if p.parent.name == "inbox"]  # refused on its listed size
    error = (root / "rejected" / "big.json.error.txt").read_text()
    assert f"larger than the limit of {limit} bytes" in error


def test_the_alert_size_limit_is_ten_megabytes():
    assert MAX_FILE_BYTES == 10 * 1024 * 1024
