"""Tests of the storm rules: current zones and status, the storm a message joins, which inbox
files a tick takes."""

from __future__ import annotations

import math
import stat
from datetime import datetime, timedelta, timezone

import pytest

from gridassets.domain import storm_messages
from gridassets.domain.alerts import Alert, sanitize_key
from gridassets.domain.storm_messages import (
    DEFER,
    MAX_TRACKED,
    STUCK,
    TAKE,
    WAIT,
    InboxCursor,
    ListedFile,
    plan_tick,
    storm_of,
)

UTC = timezone.utc
NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
NOW_NS = int(NOW.timestamp() * 1e9)
REGULAR = stat.S_IFREG | 0o644


def stored(message_id: str, *, sent_minutes: float, zones=("MTZ309",), cancel=False,
           gust=60.0, end_minutes: float = 600) -> storm_messages.StoredMessage:
    now = datetime.now(UTC)
    return storm_messages.StoredMessage(
        storm_id="s-1", message_id=message_id, message_key=sanitize_key(message_id),
        message_type="Cancel" if cancel else "Alert", vtec_action=None, is_cancel=cancel,
        event="High Wind Warning", severity=None, sent=now + timedelta(minutes=sent_minutes),
        received_at=now, onset=None, ends=None, expires=now + timedelta(minutes=end_minutes),
        zones=tuple(zones), max_wind_gust_mph=gust, gust_source="parameter", precip_mm=None,
        references=(), headline=None, source_file="f.json",
    )


def test_the_latest_message_has_the_last_word_in_each_zone():
    messages = [
        stored("a", sent_minutes=-30, zones=("Z1", "Z2", "Z3"), gust=60),
        stored("b", sent_minutes=-20, zones=("Z2",), gust=80),
        stored("c", sent_minutes=-10, zones=("Z3",), cancel=True),
    ]
    frame = storm_messages.storm_alerts_frame(list(reversed(messages)), datetime.now(UTC))
    assert list(frame["message_id"]) == ["a", "b", "c"]
    assert list(frame["current_zones"]) == ["Z1", "Z2", ""]
    assert list(frame["is_current"]) == [True, True, False]
    assert set(frame["status"]) == {"active"}
    conditions = storm_messages.current_zone_conditions(frame)
    assert list(zip(conditions["zone"], conditions["max_wind_gust_mph"])) == [("Z1", 60.0),
                                                                              ("Z2", 80.0)]


def test_storm_alerts_frame_refuses_what_it_cannot_describe():
    with pytest.raises(ValueError, match="without messages"):
        storm_messages.storm_alerts_frame([], datetime.now(UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        storm_messages.storm_alerts_frame([stored("a", sent_minutes=0)], datetime.now())
    other = stored("b", sent_minutes=0)
    other = storm_messages.StoredMessage(**{**other.__dict__, "storm_id": "s-2"})
    with pytest.raises(ValueError, match="several storms"):
        storm_messages.storm_alerts_frame([stored("a", sent_minutes=0), other], datetime.now(UTC))


def test_a_missing_precipitation_is_nan_not_text():
    frame = storm_messages.storm_alerts_frame([stored("a", sent_minutes=0)], datetime.now(UTC))
    assert frame["precip_mm"].dtype == "float64" and math.isnan(frame["precip_mm"].iloc[0])


# --------------------------------------------------------------------------------------------
# The storm a message joins


def alert(storm_id: str, *, message_type="Update", vtec_action=None, references=(),
          year_guessed=False) -> Alert:
    return Alert(
        message_id="m-2", storm_id=storm_id, message_type=message_type, vtec_action=vtec_action,
        event="High Wind Warning", severity=None, certainty=None, urgency=None, sent=NOW,
        onset=NOW, ends=None, expires=NOW + timedelta(hours=6), zones=("MTZ309",),
        max_wind_gust_mph=60.0, gust_source="parameter", precip_mm=None,
        references=tuple(references), headline=None, grid_relevant=True,
        storm_year_guessed=year_guessed,
    )


STORED = {"m-1": "acme-wind-1", "old-vtec": "ktfx-hw-w-0033-2024", "other": "ktfx-hw-w-0034-2024"}


@pytest.mark.parametrize("message, expected", [
    # An Update or Cancel without VTEC joins the storm of its first stored reference.
    (alert("m-2", references=["never-stored", "m-1"]), "acme-wind-1"),
    (alert("m-2", message_type="Cancel", references=["m-1"]), "acme-wind-1"),
    (alert("m-2", references=["never-stored"]), "m-2"),
    # A new Alert keeps its own storm, whatever it references.
    (alert("m-2", message_type="Alert", references=["m-1"]), "m-2"),
    # A guessed year yields to the same event's storm of another year, never to another event.
    (alert("ktfx-hw-w-0033-2025", vtec_action="CON", references=["old-vtec"], year_guessed=True),
     "ktfx-hw-w-0033-2024"),
    (alert("ktfx-hw-w-0033-2025", vtec_action="CON", references=["other"], year_guessed=True),
     "ktfx-hw-w-0033-2025"),
    (alert("ktfx-hw-w-0033-2025", vtec_action="CON", references=["old-vtec"]),
     "ktfx-hw-w-0033-2025"),
])
def test_the_storm_a_message_joins(message, expected):
    assert storm_of(message, STORED.get) == expected


# --------------------------------------------------------------------------------------------
# Which inbox files a tick takes


def listed(name: str, *, age_seconds: float = 60, size: int = 100, mode: int = REGULAR
           ) -> ListedFile:
    return ListedFile(name, size, NOW_NS - int(age_seconds * 1e9), mode)


def test_a_file_is_taken_once_quiet_or_unchanged_since_the_last_tick():
    fresh = listed("fresh.json", age_seconds=0.5)
    seen = listed("seen.json", age_seconds=0.5)
    changed = listed("changed.json", age_seconds=0.5)
    cursor = InboxCursor(seen={"seen.json": seen.key, "changed.json": (99, changed.mtime_ns)})
    assert plan_tick([listed("old.json"), fresh, seen, changed], cursor, NOW) == [
        TAKE, WAIT, TAKE, WAIT]


def test_a_stuck_file_is_not_read_again_while_unchanged():
    item = listed("a.json")
    assert plan_tick([item], InboxCursor(stuck={"a.json": item.key}), NOW) == [STUCK]
    assert plan_tick([item], InboxCursor(stuck={"a.json": (1, 1)}), NOW) == [TAKE]


def test_a_tick_stops_at_its_file_and_byte_limits_but_always_takes_one_file():
    files = [listed(f"{i}.json", size=40) for i in range(4)]
    assert plan_tick(files, InboxCursor(), NOW, max_files=2) == [TAKE, TAKE, DEFER, DEFER]
    assert plan_tick(files, InboxCursor(), NOW, max_bytes=100) == [TAKE, TAKE, DEFER, DEFER]
    assert plan_tick([listed("big.json", size=500)], InboxCursor(), NOW, max_bytes=100) == [TAKE]


def test_a_file_to_be_rejected_costs_nothing_of_the_byte_budget():
    files = [listed("a.json", size=60), listed("dir.json", size=4096, mode=stat.S_IFDIR | 0o755),
             listed("b.json", size=40)]
    assert plan_tick(files, InboxCursor(), NOW, max_bytes=100) == [TAKE, TAKE, TAKE]


def test_the_cursor_round_trips_and_tracks_a_bounded_number_of_files():
    cursor = InboxCursor(seen={"b.json": (2, 20), "a.json": (1, 10)}, stuck={"c.json": (3, 30)})
    assert InboxCursor.parse(cursor.serialize()) == (cursor, None)
    full = InboxCursor(seen={f"{i}.json": (i, i) for i in range(MAX_TRACKED)})
    full.track("one-more.json", (1, 1))
    assert len(full.seen) == MAX_TRACKED and "one-more.json" not in full.seen


@pytest.mark.parametrize("text", ['{"v": 2}', "not json", '{"v": 1, "seen": [1]}'])
def test_an_unusable_cursor_text_gives_an_empty_cursor_and_a_problem(text):
    cursor, problem = InboxCursor.parse(text)
    assert cursor == InboxCursor() and problem.startswith("unusable cursor")
