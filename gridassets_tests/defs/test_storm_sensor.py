"""The weather-alert sensor, tick by tick: the runs it requests, its cursor, and where files go."""

from __future__ import annotations

import json
import logging
import re
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from gridassets.defs.partitions import storm_partitions
from gridassets.defs.resources import FleetSource, GridSettings
from gridassets.defs.storms.jobs import STORM_ASSETS, storm_job
from gridassets.defs.storms.sensors import weather_alert_sensor
from gridassets.domain.alerts import MAX_DEPTH, MAX_FILE_BYTES, sanitize_key
from gridassets.domain.storm_messages import MAX_FILES_PER_TICK, QUIET_SECONDS, InboxCursor
from gridassets.storage import alert_inbox
from gridassets_tests.nws_fixtures import load_nws_file

UTC = timezone.utc
NW_FILE = "northwest-active-alerts.json"
# The two High Wind Warning events of the northwest collection that name zones of the demo fleet.
# 0032 is already in effect, so its year is that of its onset, which follows the test's clock.
NW_EVENTS = ("ktfx-hw-w-0032-", "ktfx-hw-w-0033-")
NWS_STORM = "ktfx-hw-w-0041-2026"


def iso(minutes: float) -> str:
    """A time `minutes` from now, written with a local offset as the NWS does (MST)."""
    moment = datetime.now(UTC) + timedelta(minutes=minutes)
    return moment.astimezone(timezone(timedelta(hours=-7))).isoformat()


def minimal(**fields) -> dict:
    """A minimal-form High Wind Warning for zone MTZ309 (a zone of the demo fleet), in force now."""
    alert = {"id": "acme-wind-1", "event": "High Wind Warning", "onset": iso(30),
             "expires": iso(600), "zones": ["MTZ309", "MTZ310"], "max_wind_gust_mph": 72,
             "precip_mm": 4.5}
    alert.update(fields)
    return alert


def nws_feature(message_id: str, *, message_type="Alert", vtec_action="NEW", zones=("MTZ309",),
                event="High Wind Warning", references=(), expires_in=600, status="Actual") -> dict:
    return {
        "type": "Feature", "geometry": None,
        "properties": {
            "id": message_id, "status": status, "messageType": message_type, "event": event,
            "severity": "Severe", "sent": iso(-10), "onset": iso(30), "expires": iso(expires_in),
            "ends": None, "geocode": {"UGC": list(zones)},
            "references": [{"identifier": r, "sender": "w-nws.webmaster@noaa.gov", "sent": iso(-60)}
                           for r in references],
            "headline": f"{event} issued by NWS Great Falls MT",
            "parameters": {"VTEC": [f"/O.{vtec_action}.KTFX.HW.W.0041.261201T0000Z-261231T0000Z/"],
                           "maxWindGust": ["70 MPH"]},
        },
    }


class Inbox:
    """A data folder with an alerts inbox, and the sensor's ticks over it. The sensor reads no
    warehouse; `backend` is the one the storm assets materialized over it write."""

    def __init__(self, tmp_path: Path, backend: str = "duckdb"):
        self.settings = GridSettings(data_dir=str(tmp_path), source="synthetic", backend=backend,
                                     alerts_dir=str(tmp_path / "alerts"))
        self.root = tmp_path / "alerts"
        self.inbox = self.root / "inbox"
        self.inbox.mkdir(parents=True)
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None
        self.log: list[str] = []  # every message the sensor logged, as written

    def drop(self, name: str, content: bytes | dict | list | str, *, age: float = 30.0) -> Path:
        """Put a file in the inbox, last modified `age` seconds ago (0: just written)."""
        if isinstance(content, (dict, list)):
            content = json.dumps(content)
        if isinstance(content, str):
            content = content.encode()
        path = self.inbox / name
        path.write_bytes(content)
        set_age(path, age)
        return path

    def tick(self, fleet: FleetSource | None = None) -> dg.SensorResult:
        resources = {"settings": self.settings,
                     "fleet": fleet or FleetSource(settings=self.settings)}
        with dg.build_sensor_context(cursor=self.cursor, instance=self.instance,
                                     resources=resources) as context:
            context.log.addHandler(_Collect(self.log))
            result = weather_alert_sensor(context)
        self.cursor = result.cursor
        return result

    def note(self, name: str) -> dict:
        return json.loads((self.root / "processed" / f"{name}.note.json").read_text())

    def error(self, name: str) -> str:
        return (self.root / "rejected" / f"{name}.error.txt").read_text()

    def listing(self, folder: str) -> list[str]:
        return sorted(os.listdir(self.root / folder))


class _Collect(logging.Handler):
    def __init__(self, into: list[str]):
        super().__init__()
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def set_age(path: Path, age: float) -> None:
    moment = time.time() - age
    os.utime(path, (moment, moment), follow_symlinks=False)


def run_keys(result: dg.SensorResult) -> list[str]:
    return [r.run_key for r in result.run_requests]


def added_partitions(result: dg.SensorResult) -> list[str]:
    return [k for request in result.dynamic_partitions_requests for k in request.partition_keys]


def cursor_of(inbox: Inbox) -> InboxCursor:
    cursor, problem = InboxCursor.parse(inbox.cursor)
    assert problem is None
    return cursor


def outcomes(note: dict) -> list[tuple[str | None, str]]:
    return [(e["message_id"], e["outcome"]) for e in note["entries"]]


@pytest.fixture(autouse=True)
def _no_deployment_settings(monkeypatch):
    # A developer's GRIDASSETS_* variables must not point the tests at their data.
    for var in list(os.environ):
        if var.startswith("GRIDASSETS_"):
            monkeypatch.delenv(var)


@pytest.fixture
def box(tmp_path) -> Inbox:
    return Inbox(tmp_path)


# --------------------------------------------------------------------------------------------
# Good alerts


def test_real_nws_collection_runs_the_high_wind_warnings_of_our_zones(box):
    raw = load_nws_file(NW_FILE, now=datetime.now(UTC))
    box.drop("northwest.json", raw)
    result = box.tick()

    # Four messages (two segments each of two VTEC events) name MTZ zones of the demo fleet.
    assert len(result.run_requests) == 4
    storms = sorted({r.partition_key for r in result.run_requests})
    assert [s[: len(NW_EVENTS[0])] for s in storms] == list(NW_EVENTS)
    assert sorted(added_partitions(result)) == storms
    assert result.dynamic_partitions_requests[0].partitions_def_name == "storms"
    for request in result.run_requests:
        storm_id, key = request.run_key.split(":")
        assert storm_id == request.partition_key
        assert request.tags["gridassets/storm_id"] == storm_id
        assert (box.root / "storms" / storm_id / f"{key}.json").is_file()
    assert len(set(run_keys(result))) == 4
    assert cursor_of(box) == InboxCursor()

    assert box.listing("inbox") == []
    assert box.listing("processed") == ["northwest.json", "northwest.json.note.json"]
    note = box.note("northwest.json")
    assert len(note["entries"]) == 529
    assert note["summary"] == {"run_requested": 4, "duplicate": 0, "ignored": 525}
    requested = [e for e in note["entries"] if e["outcome"] == "run_requested"]
    assert sorted(e["run_key"] for e in requested) == sorted(run_keys(result))
    assert {e["event"] for e in requested} == {"High Wind Warning"}
    reasons = [e["reason"] for e in note["entries"] if e["outcome"] == "ignored"]
    assert all(r.startswith(("not a grid-relevant event", "no zone of ours")) for r in reasons)
    assert note["sha256"] and note["size_bytes"] == len(raw)


def test_minimal_alert_is_stored_and_runs_its_storm(box):
    box.drop("acme.json", minimal())
    result = box.tick()

    assert run_keys(result) == ["acme-wind-1:acme-wind-1"]
    assert result.run_requests[0].partition_key == "acme-wind-1"
    assert added_partitions(result) == ["acme-wind-1"]
    assert result.skip_reason is None
    record = json.loads((box.root / "storms/acme-wind-1/acme-wind-1.json").read_text())
    assert record["zones"] == ["MTZ309", "MTZ310"]
    assert record["max_wind_gust_mph"] == 72.0 and record["precip_mm"] == 4.5
    assert record["source_file"] == "acme.json"
    assert record["expires"].endswith("+00:00")
    assert outcomes(box.note("acme.json")) == [("acme-wind-1", "run_requested")]


def test_the_same_alert_twice_runs_once(box):
    box.drop("first.json", minimal())
    first = box.tick()
    box.drop("first.json", minimal())  # the same name again, and the same message
    second = box.tick()

    # The run key is the message's: Dagster never launches a run key twice.
    assert run_keys(second) == run_keys(first) == ["acme-wind-1:acme-wind-1"]
    assert box.listing("processed") == ["first-2.json", "first-2.json.note.json",
                                        "first.json", "first.json.note.json"]
    entry = box.note("first-2.json")["entries"][0]
    assert entry["outcome"] == "duplicate" and "already received" in entry["reason"]
    assert box.listing("storms/acme-wind-1") == ["acme-wind-1.json"]


def test_the_same_alert_twice_in_one_tick_is_requested_once(box):
    box.drop("a.json", [minimal(), minimal()], age=40)
    box.drop("b.json", minimal(), age=30)
    result = box.tick()

    assert run_keys(result) == ["acme-wind-1:acme-wind-1"]
    assert outcomes(box.note("a.json")) == [("acme-wind-1", "run_requested"),
                                            ("acme-wind-1", "duplicate")]
    assert outcomes(box.note("b.json")) == [("acme-wind-1", "duplicate")]


def test_an_update_reruns_its_storm_with_a_new_run_key(box):
    box.drop("alert.json", minimal(), age=40)
    box.drop("update.json", minimal(id="acme-wind-2", messageType="Update",
                                     references=["acme-wind-1"], max_wind_gust_mph=85), age=30)
    result = box.tick()

    assert run_keys(result) == ["acme-wind-1:acme-wind-1", "acme-wind-1:acme-wind-2"]
    assert {r.partition_key for r in result.run_requests} == {"acme-wind-1"}
    assert box.listing("storms/acme-wind-1") == ["acme-wind-1.json", "acme-wind-2.json"]


def test_nws_update_and_cancel_follow_their_vtec_event(box):
    box.drop("new.json", nws_feature("urn:oid:1.1"))
    assert run_keys(box.tick()) == [f"{NWS_STORM}:{sanitize_key('urn:oid:1.1')}"]
    box.drop("con.json", nws_feature("urn:oid:1.2", message_type="Update", vtec_action="CON",
                                     references=["urn:oid:1.1"]))
    box.drop("can.json", nws_feature("urn:oid:1.3", message_type="Cancel", vtec_action="CAN",
                                     references=["urn:oid:1.2"], expires_in=-5))
    result = box.tick()

    assert [r.partition_key for r in result.run_requests] == [NWS_STORM] * 2
    assert [r.tags["gridassets/message_type"] for r in result.run_requests] == ["Update", "Cancel"]
    assert len(box.listing(f"storms/{NWS_STORM}")) == 3


def test_an_event_continued_into_a_new_year_keeps_its_storm(box):
    # Issued with a begin time last year; the continuation carries 000000T0000Z (already in
    # effect), so by its own fields its year would be this year's: the reference decides.
    new = nws_feature("urn:oid:9.1")
    new["properties"]["parameters"]["VTEC"] = ["/O.NEW.KTFX.WS.W.0007.251231T2000Z-270101T1200Z/"]
    box.drop("new.json", new)
    storm = box.tick().run_requests[0].partition_key
    assert storm == "ktfx-ws-w-0007-2025"

    con = nws_feature("urn:oid:9.2", message_type="Update", vtec_action="CON",
                      references=["urn:oid:9.1"])
    con["properties"]["parameters"]["VTEC"] = ["/O.CON.KTFX.WS.W.0007.000000T0000Z-270101T1800Z/"]
    other = nws_feature("urn:oid:9.3", message_type="Update", vtec_action="CON",
                        references=["urn:oid:1.1"])  # references a message we never stored
    other["properties"]["parameters"]["VTEC"] = [
        "/O.CON.KTFX.WS.W.0008.000000T0000Z-270101T1800Z/"]
    box.drop("con.json", con, age=40)
    box.drop("other.json", other, age=30)
    result = box.tick()

    this_year = datetime.now(UTC).year
    assert [r.partition_key for r in result.run_requests] == [storm, f"ktfx-ws-w-0008-{this_year}"]
    assert box.listing(f"storms/{storm}") == [f"{sanitize_key(m)}.json"
                                              for m in ("urn:oid:9.1", "urn:oid:9.2")]


def test_an_update_without_vtec_is_resolved_to_the_storm_of_its_reference(box):
    # The second update names only the first update: by its own fields it would be storm "u-1",
    # so the sensor looks the reference up in the message store.
    box.drop("a.json", minimal(id="A-1"), age=50)
    first = box.tick()
    storm = first.run_requests[0].partition_key
    assert storm == sanitize_key("A-1") != "a-1"

    box.drop("u1.json", minimal(id="u-1", messageType="Update", references=["A-1"]), age=40)
    box.drop("u2.json", minimal(id="u-2", messageType="Update", references=["u-1"]), age=30)
    result = box.tick()

    assert [r.partition_key for r in result.run_requests] == [storm, storm]
    assert run_keys(result) == [f"{storm}:u-1", f"{storm}:u-2"]
    # A later tick still knows where u-2 went: the store is the map, not the tick's memory.
    box.drop("c.json", minimal(id="c-1", messageType="Cancel", references=["u-2"]))
    assert [r.partition_key for r in box.tick().run_requests] == [storm]


def test_a_cancel_requests_a_run_even_after_its_alert_expired(box):
    box.drop("alert.json", minimal())
    box.tick()
    box.drop("cancel.json", minimal(id="acme-wind-9", messageType="Cancel",
                                    references=["acme-wind-1"], expires=iso(-60)))
    result = box.tick()

    assert run_keys(result) == ["acme-wind-1:acme-wind-9"]
    assert box.note("cancel.json")["entries"][0]["outcome"] == "run_requested"


# --------------------------------------------------------------------------------------------
# Alerts that start nothing


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"expires": iso(-30), "onset": iso(-300)}, "expired at "),
        ({"zones": ["IDZ001", "IDZ002"]}, "no zone of ours: its zones are IDZ001, IDZ002"),
        ({"event": "Flood Watch"}, "not a grid-relevant event: 'Flood Watch'"),
        ({"status": "Test"}, "status is 'Test', not 'Actual'"),
    ],
)
def test_alerts_that_are_not_for_us_are_noted_and_start_nothing(box, fields, reason):
    box.drop("other.json", minimal(**fields))
    result = box.tick()

    assert result.run_requests == []
    assert result.dynamic_partitions_requests == []
    assert result.skip_reason is not None
    assert box.listing("processed") == ["other.json", "other.json.note.json"]
    [entry] = box.note("other.json")["entries"]
    assert entry["outcome"] == "ignored"
    assert entry["reason"].startswith(reason)
    assert not any((box.root / "storms").iterdir())


def test_an_alert_whose_window_ends_before_it_starts_is_noted_and_starts_nothing(box):
    box.drop("backwards.json", minimal(onset=iso(600), expires=iso(60)))
    box.drop("nws.json", nws_feature("urn:oid:backwards"), age=20)
    nws = json.loads((box.inbox / "nws.json").read_text())
    nws["properties"].update(onset=iso(900), ends=iso(300), expires=iso(120))
    box.drop("nws.json", nws, age=20)
    result = box.tick()

    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    for name in ("backwards.json", "nws.json"):
        [entry] = box.note(name)["entries"]
        assert entry["outcome"] == "ignored"
        assert entry["reason"].startswith("onset ")
        assert entry["reason"].endswith("the alert's window ends before it starts")
    assert not any((box.root / "storms").iterdir())


def test_a_cancel_of_a_storm_never_received_is_noted_and_starts_nothing(box):
    box.drop("cancel.json", minimal(id="acme-wind-9", messageType="Cancel",
                                    references=["acme-wind-1"]))
    box.drop("can.json", nws_feature("urn:oid:2.3", message_type="Cancel", vtec_action="CAN",
                                     references=["urn:oid:2.1"]), age=20)
    result = box.tick()

    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert result.skip_reason is not None
    [minimal_entry] = box.note("cancel.json")["entries"]
    [nws_entry] = box.note("can.json")["entries"]
    assert (minimal_entry["outcome"], minimal_entry["storm_id"]) == ("ignored", "acme-wind-1")
    assert (nws_entry["outcome"], nws_entry["storm_id"]) == ("ignored", NWS_STORM)
    assert minimal_entry["reason"] == (
        "a cancel of storm acme-wind-1, which was never received: no message of it is stored, "
        "so there is nothing to call off")
    assert not any((box.root / "storms").iterdir())

    # Once its storm has been received, the same cancel does call it off.
    box.drop("alert.json", minimal(), age=40)
    box.drop("cancel.json", minimal(id="acme-wind-9", messageType="Cancel",
                                    references=["acme-wind-1"]), age=30)
    assert run_keys(box.tick()) == ["acme-wind-1:acme-wind-1", "acme-wind-1:acme-wind-9"]


def test_a_collection_runs_only_its_relevant_alerts_and_notes_each(box):
    collection = {"type": "FeatureCollection", "features": [
        nws_feature("urn:oid:ours"),
        nws_feature("urn:oid:foreign", zones=("WAZ001",)),
        nws_feature("urn:oid:flood", event="Flood Watch"),
        nws_feature("urn:oid:old", expires_in=-30),
        nws_feature("urn:oid:drill", status="Exercise"),
        {"type": "Feature", "properties": {"id": "urn:oid:broken", "event": "High Wind Warning",
                                           "onset": "tomorrow"}},
    ]}
    box.drop("many.json", collection)
    result = box.tick()

    assert [r.tags["gridassets/alert_message"] for r in result.run_requests] == [
        sanitize_key("urn:oid:ours")]
    note = box.note("many.json")
    assert note["summary"] == {"run_requested": 1, "duplicate": 0, "ignored": 5}
    reasons = {e["message_id"]: e.get("reason") for e in note["entries"]}
    assert reasons["urn:oid:ours"] is None
    assert reasons["urn:oid:foreign"] == "no zone of ours: its zones are WAZ001"
    assert reasons["urn:oid:flood"] == "not a grid-relevant event: 'Flood Watch'"
    assert reasons["urn:oid:old"].startswith("expired at ")
    assert reasons["urn:oid:drill"] == "status is 'Exercise', not 'Actual'"
    assert "onset" in reasons["urn:oid:broken"] and "ISO 8601" in reasons["urn:oid:broken"]


def test_an_empty_collection_is_processed_with_an_empty_note(box):
    box.drop("quiet.json", {"type": "FeatureCollection", "features": []})
    result = box.tick()
    assert result.run_requests == []
    assert box.note("quiet.json")["entries"] == []


# --------------------------------------------------------------------------------------------
# Files still being written, and what the sensor leaves alone


def test_a_file_still_being_written_is_taken_only_once_it_is_stable(box):
    text = json.dumps(minimal())
    path = box.drop("slow.json", text[:40], age=0)  # half-written: not even valid JSON yet

    first = box.tick()
    assert first.run_requests == [] and "still being written" in first.skip_reason.skip_message
    assert box.listing("inbox") == ["slow.json"]
    assert box.listing("rejected") == []
    assert set(cursor_of(box).seen) == {"slow.json"}

    with open(path, "a") as f:  # the writer goes on between two ticks
        f.write(text[40:])
    second = box.tick()
    assert second.run_requests == [] and box.listing("inbox") == ["slow.json"]

    third = box.tick()  # unchanged since the previous tick: complete
    assert run_keys(third) == ["acme-wind-1:acme-wind-1"]
    assert box.listing("inbox") == []
    assert cursor_of(box).seen == {}


def test_a_file_quiet_for_a_couple_of_seconds_is_taken_at_once(box):
    box.drop("a.json", minimal(), age=QUIET_SECONDS + 1)
    assert len(box.tick().run_requests) == 1


def test_dotfiles_and_other_suffixes_are_left_alone(box):
    for name in (".hidden.json", "draft.json.tmp", "notes.txt", "alert.json.part"):
        box.drop(name, minimal())
    result = box.tick()
    assert result.run_requests == [] and result.skip_reason.skip_message == "no new alert file"
    assert box.listing("inbox") == [".hidden.json", "alert.json.part", "draft.json.tmp",
                                    "notes.txt"]
    assert cursor_of(box) == InboxCursor()


def test_a_tick_takes_a_bounded_number_of_files_oldest_first(box):
    for i in range(MAX_FILES_PER_TICK + 3):
        box.drop(f"a{i:02d}.json", minimal(id=f"acme-{i:02d}"), age=100 - i)
    first = box.tick()
    assert [r.partition_key for r in first.run_requests] == [
        f"acme-{i:02d}" for i in range(MAX_FILES_PER_TICK)]
    assert box.listing("inbox") == [f"a{i:02d}.json" for i in range(MAX_FILES_PER_TICK,
                                                                     MAX_FILES_PER_TICK + 3)]
    assert set(cursor_of(box).seen) == set(box.listing("inbox"))

    second = box.tick()
    assert len(second.run_requests) == 3 and box.listing("inbox") == []


def test_a_name_clash_in_processed_or_rejected_gets_a_suffix(box):
    (box.root / "processed").mkdir()
    (box.root / "rejected").mkdir()
    (box.root / "processed" / "x.json").write_text("older")
    (box.root / "processed" / "x-2.json.note.json").write_text("{}")  # an orphan note counts
    (box.root / "rejected" / "y.json").write_text("older")
    box.drop("x.json", minimal())
    box.drop("y.json", "not json")
    box.tick()

    assert (box.root / "processed" / "x.json").read_text() == "older"
    assert box.note("x-3.json")["file"] == "x.json"
    assert (box.root / "rejected" / "y.json").read_text() == "older"
    assert "not valid JSON" in box.error("y-2.json")


# --------------------------------------------------------------------------------------------
# Bad files


def make_directory(box: Inbox, name: str) -> None:
    (box.inbox / name).mkdir()
    (box.inbox / name / "inner.json").write_text("{}")
    set_age(box.inbox / name, 30)


def make_symlink(box: Inbox, name: str) -> None:
    target = box.root.parent / "elsewhere.json"
    target.write_text(json.dumps(minimal()))
    (box.inbox / name).symlink_to(target)
    set_age(box.inbox / name, 30)


def make_fifo(box: Inbox, name: str) -> None:
    os.mkfifo(box.inbox / name)
    set_age(box.inbox / name, 30)


def make_too_large(box: Inbox, name: str) -> None:
    path = box.drop(name, b"")
    with open(path, "wb") as f:  # sparse: the size is what counts, not the bytes on disk
        f.truncate(MAX_FILE_BYTES + 1)
    set_age(path, 30)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda box, n: box.drop(n, "{ this is not json"), "not valid JSON"),
        (lambda box, n: box.drop(n, b"\xff\xfe\x00garbage"), "not UTF-8"),
        (lambda box, n: box.drop(n, ""), "empty"),
        (lambda box, n: box.drop(n, {"hello": "world"}), "not an alert"),
        (lambda box, n: box.drop(n, [1, 2, 3]), "not alert objects"),
        (lambda box, n: box.drop(n, minimal(zones="MTZ309")), "not a list of UGC codes"),
        (lambda box, n: box.drop(n, "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)),
         f"deeper than the limit of {MAX_DEPTH}"),
        (make_too_large, f"larger than the limit of {MAX_FILE_BYTES} bytes"),
        (make_directory, "a folder, not a file"),
        (make_symlink, "symbolic link"),
        (make_fifo, "not a regular file"),
    ],
    ids=["not-json", "not-utf8", "empty", "not-an-alert", "list-of-numbers", "bad-field",
         "too-deep", "too-large", "directory", "symlink", "fifo"],
)
def test_a_bad_file_is_rejected_with_its_reason_and_the_next_file_still_runs(box, make, words):
    make(box, "bad.json")
    box.drop("good.json", minimal(), age=10)  # newer than the bad one: taken after it
    result = box.tick()

    assert box.listing("rejected") == ["bad.json", "bad.json.error.txt"]
    error = box.error("bad.json")
    assert words in error
    assert error.startswith("bad.json was rejected at ")
    assert run_keys(result) == ["acme-wind-1:acme-wind-1"]
    assert box.listing("processed") == ["good.json", "good.json.note.json"]
    assert box.listing("inbox") == []


def test_an_unreadable_file_is_rejected(box, monkeypatch):
    # Root reads any file whatever its mode, so the refusal is simulated where the sensor opens it.
    bad = box.drop("locked.json", minimal(id="acme-locked"))
    bad.chmod(0)
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if Path(path) == bad:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(alert_inbox.os, "open", refusing_open)
    box.drop("good.json", minimal())
    result = box.tick()

    assert "permission denied" in box.error("locked.json")
    assert run_keys(result) == ["acme-wind-1:acme-wind-1"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a file without read permission")
def test_a_file_without_read_permission_is_rejected(box):
    box.drop("locked.json", minimal()).chmod(0)
    box.tick()
    assert "permission denied" in box.error("locked.json")


def test_a_file_that_cannot_be_moved_is_not_read_again_while_unchanged(box, monkeypatch):
    box.drop("stuck.json", minimal())

    def no_rename(src, dst):
        raise PermissionError(13, "Permission denied", str(src))

    with monkeypatch.context() as m:
        m.setattr(alert_inbox.os, "rename", no_rename)
        first = box.tick()
    assert run_keys(first) == ["acme-wind-1:acme-wind-1"]  # its alert was stored: the run goes on
    assert set(cursor_of(box).stuck) == {"stuck.json"}

    second = box.tick()
    assert second.run_requests == [] and box.listing("inbox") == ["stuck.json"]


def test_no_file_is_taken_while_the_zones_of_our_circuits_are_unreadable(box):
    box.drop("a.json", minimal())
    landing = GridSettings(data_dir=str(box.root.parent), source="landing")  # no circuits.csv
    result = box.tick(fleet=FleetSource(settings=landing))

    assert result.run_requests == []
    assert "zones of our circuits unreadable" in result.skip_reason.skip_message
    assert box.listing("inbox") == ["a.json"]


def test_an_unusable_cursor_is_replaced_not_fatal(box):
    box.cursor = "{not a cursor"
    box.drop("a.json", minimal())
    assert len(box.tick().run_requests) == 1
    assert cursor_of(box) == InboxCursor()


def test_a_file_name_with_a_newline_cannot_forge_log_lines_notes_or_error_files(box):
    good, bad = "a\nFORGED line.json", "b\r\nFORGED\x1b[2K line.json"
    box.drop(good, minimal(), age=40)
    box.drop(bad, "{ not json", age=30)
    box.drop("event.json", minimal(id="acme-wind-2", zones=["MTZ312"],
                                   event="High Wind Warning\nFORGED line"), age=20)
    result = box.tick()

    assert run_keys(result) == ["acme-wind-1:acme-wind-1"]
    assert box.log and all(line.isprintable() for line in box.log)
    assert not any(line.startswith("FORGED") for line in "\n".join(box.log).splitlines())
    assert any(line.startswith("a\\nFORGED line.json: processed -> processed/a\\nFORGED line.json")
               for line in box.log)
    assert any(line.startswith("b\\r\\nFORGED\\x1b[2K line.json: rejected") for line in box.log)

    note_text = (box.root / "processed" / f"{good}.note.json").read_text()
    assert json.loads(note_text)["file"] == "a\\nFORGED line.json"
    record = json.loads((box.root / "storms/acme-wind-1/acme-wind-1.json").read_text())
    assert record["source_file"] == "a\\nFORGED line.json"
    error = box.error(bad)
    assert error.startswith("b\\r\\nFORGED\\x1b[2K line.json was rejected at ")
    assert not any(line.startswith("FORGED") for line in error.splitlines())
    assert all(line.isprintable() for line in error.splitlines())
    # Alert text is untrusted too: the event is one line wherever it is written.
    [entry] = box.note("event.json")["entries"]
    assert entry["event"] == "High Wind Warning FORGED line" and entry["outcome"] == "ignored"


def test_alert_content_never_becomes_a_path(box):
    box.drop("evil.json", minimal(id="../../../etc/passwd"))
    result = box.tick()
    [request] = result.run_requests
    assert request.partition_key == sanitize_key("../../../etc/passwd")
    stored = list((box.root / "storms").rglob("*.json"))
    assert len(stored) == 1 and stored[0].parent.parent == box.root / "storms"


# --------------------------------------------------------------------------------------------
# Wiring


def test_the_sensor_runs_by_default_and_targets_the_storm_job():
    from gridassets.definitions import defs

    sensor = defs.resolve_sensor_def("weather_alert_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 2
    assert sensor.job_name == storm_job.name
    assert {"settings", "fleet"} <= set(sensor.required_resource_keys)
    job = defs.resolve_job_def("storm_job")
    assert job.partitions_def == storm_partitions
    assert storm_job.selection.resolve(defs.resolve_asset_graph()) == {
        a.key for a in STORM_ASSETS}


def test_a_tick_also_stops_at_its_byte_budget(box):
    # Called below the sensor to set a small budget; the first file is always taken.
    for i in range(3):
        box.drop(f"b{i}.json", minimal(id=f"acme-b{i}"), age=50 - i)
    size = (box.inbox / "b0.json").stat().st_size
    zones = FleetSource(settings=box.settings).zones()
    tick = alert_inbox.process_inbox(box.root, zones, InboxCursor(), datetime.now(UTC),
                                     max_bytes=size * 2 - 1)
    assert [r.storm_id for r in tick.runs] == ["acme-b0"]
    assert tick.deferred == 2 and set(tick.cursor.seen) == {"b1.json", "b2.json"}


def test_an_unwritable_message_store_leaves_the_file_for_the_next_tick(box, monkeypatch):
    box.drop("two.json", [minimal(id="acme-s1"), minimal(id="acme-s2")])
    real_write = alert_inbox.alert_store.write_message

    def failing_second(root, record):
        if record["message_id"] == "acme-s2":
            raise OSError(28, "No space left on device")
        return real_write(root, record)

    with monkeypatch.context() as m:
        m.setattr(alert_inbox.alert_store, "write_message", failing_second)
        first = box.tick()
    # The message already stored still gets its run; the file stays to be read again.
    assert run_keys(first) == ["acme-s1:acme-s1"]
    assert box.listing("inbox") == ["two.json"] and box.listing("processed") == []

    second = box.tick()
    assert run_keys(second) == ["acme-s1:acme-s1", "acme-s2:acme-s2"]
    assert outcomes(box.note("two.json")) == [("acme-s1", "duplicate"),
                                              ("acme-s2", "run_requested")]


def test_after_a_hundred_clashes_a_name_gets_a_random_suffix(box):
    processed = box.root / "processed"
    processed.mkdir()
    for name in ["x.json"] + [f"x-{n}.json" for n in range(2, 101)]:
        (processed / name).write_text("older")
    box.drop("x.json", minimal())
    box.tick()
    new = [n for n in box.listing("processed") if n.endswith(".note.json")]
    assert len(new) == 1 and re.fullmatch(r"x-[0-9a-f]{12}\.json\.note\.json", new[0])
