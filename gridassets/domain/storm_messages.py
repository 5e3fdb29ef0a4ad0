"""The storm rules: which storm a message joins, which messages are current, the storm's status.

Also which inbox files a sensor tick takes, and what its cursor remembers. Plain rules on values
(no dagster, no files): `gridassets/storage/alert_store.py` keeps the messages as files and
`gridassets/storage/alert_inbox.py` reads the inbox, both deciding through these functions.

Current conditions. A storm's messages may each cover different zones (the NWS splits one product
into segments with different zone lists, all sent at the same time), and a later message may
continue some zones and cancel others. So "the message whose conditions apply" is decided per zone:
for each zone the storm names, the latest message naming it has the last word. "Latest" is by
``sent`` (the receipt time for a minimal-form alert that states none), except that a message always
comes after the messages it references, whatever the clocks say. A message is current for the
zones where it has the last word and is not a cancel; `current_zone_conditions` gives one row per
such zone, which is what the downstream storm assets read. The storm is ``cancelled`` when a cancel
has the last word in every zone, ``expired`` when every current message has ended, else ``active``.

Storm of a message. An Update or Cancel without VTEC belongs to the storm of the message it
references; a VTEC message whose storm year was guessed belongs to the same event's storm of
another year when it references a message of it (an event issued in December and continued in
January). The caller says where a referenced message is stored (`storm_of`'s `lookup`).

Taking inbox files. A file is taken once it is complete: its size and modification time are what
the previous tick saw (the cursor records them), or it was last modified at least `QUIET_SECONDS`
ago. A file still being written changes between ticks and is not read half-way. Each tick takes at
most `MAX_FILES_PER_TICK` files and `MAX_BYTES_PER_TICK` bytes (a sensor evaluation times out
after 60 s); the rest waits for the next tick, oldest first.
"""

from __future__ import annotations

import json
import math
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from gridassets.domain.alerts import MAX_FILE_BYTES, Alert

ACTIVE, CANCELLED, EXPIRED = "active", "cancelled", "expired"

QUIET_SECONDS = 2.0
MAX_FILES_PER_TICK = 20
MAX_BYTES_PER_TICK = 64 * 1024 * 1024
MAX_TRACKED = 1000  # files remembered in the cursor; beyond that the age rule still takes them
CURSOR_VERSION = 1

# What a tick does with a listed file (`plan_tick`).
TAKE, WAIT, DEFER, STUCK = "take", "wait", "defer", "stuck"

# The storm_alerts table, in order, with the pandas dtype that makes DuckDB store the intended type
# whatever the values of the first partition written (an all-empty column would otherwise become
# VARCHAR, and a later partition with numbers in it would not fit).
STORM_ALERT_COLUMNS: dict[str, str] = {
    "storm_id": "string",
    "message_id": "string",
    "message_type": "string",
    "vtec_action": "string",
    "is_cancel": "bool",
    "event": "string",
    "severity": "string",
    "sent": "datetime64[us]",
    "received_at": "datetime64[us]",
    "onset": "datetime64[us]",
    "ends": "datetime64[us]",
    "expires": "datetime64[us]",
    "zones": "string",
    "max_wind_gust_mph": "float64",
    "gust_source": "string",
    "precip_mm": "float64",
    "headline": "string",
    "status": "string",
    "is_current": "bool",
    "current_zones": "string",
    "as_of": "datetime64[us]",
}

STORM_ALERT_DESCRIPTIONS: dict[str, str] = {
    "storm_id": "The storm (VTEC event, else the first alert's id), sanitized; the partition key.",
    "message_id": "CAP identifier of the message.",
    "message_type": "Alert, Update or Cancel.",
    "vtec_action": "VTEC action (NEW, CON, EXT, CAN ...), empty without VTEC.",
    "is_cancel": "The message calls the event off (messageType Cancel or VTEC CAN).",
    "sent": "When the message was issued (UTC); empty for a minimal-form alert without it.",
    "received_at": "When the sensor took the file holding the message (UTC).",
    "zones": "UGC zones the message names, comma-separated.",
    "max_wind_gust_mph": "Stated or assumed peak gust.",
    "gust_source": "Where the gust came from: parameter, description or default.",
    "precip_mm": "Precipitation total of a minimal-form alert; empty for NWS products.",
    "status": "The storm as a whole at as_of: active, cancelled or expired.",
    "is_current": "The message has the last word in at least one zone and is not a cancel.",
    "current_zones": "The zones in which this message's conditions apply, comma-separated.",
    "as_of": "When storm_alerts was computed (UTC): status and expiry are judged at this time.",
}


@dataclass(frozen=True)
class StoredMessage:
    """One message as kept in the store (times timezone-aware UTC)."""

    storm_id: str
    message_id: str
    message_key: str
    message_type: str
    vtec_action: str | None
    is_cancel: bool
    event: str
    severity: str | None
    sent: datetime | None
    received_at: datetime
    onset: datetime | None
    ends: datetime | None
    expires: datetime | None
    zones: tuple[str, ...]
    max_wind_gust_mph: float
    gust_source: str
    precip_mm: float | None
    references: tuple[str, ...]
    headline: str | None
    source_file: str

    @property
    def end_time(self) -> datetime | None:
        """The later of ``ends`` and ``expires``, as `Alert.end_time`."""
        times = [t for t in (self.ends, self.expires) if t is not None]
        return max(times) if times else None

    @property
    def order(self) -> tuple:
        """Sort key: issue time (receipt time when the alert states none), then receipt, then id."""
        return (self.sent or self.received_at, self.received_at, self.message_id)


# --------------------------------------------------------------------------------------------
# Order, current zones and status


def ordered_messages(messages: Sequence[StoredMessage]) -> list[StoredMessage]:
    """Oldest first by `StoredMessage.order`, moving each message after those it references.

    An Update stating a ``sent`` time can otherwise sort before a minimal-form alert that states
    none (whose order is its receipt time). Reference cycles, which no real feed has, fall back to
    the plain order.
    """
    base = sorted(messages, key=lambda m: m.order)
    ids = {m.message_id for m in base}
    waiting_on = {m.message_id: {r for r in m.references if r in ids and r != m.message_id}
                  for m in base}
    result: list[StoredMessage] = []
    placed: set[str] = set()
    remaining = list(base)
    while remaining:
        ready = next((m for m in remaining if waiting_on[m.message_id] <= placed), remaining[0])
        remaining.remove(ready)
        result.append(ready)
        placed.add(ready.message_id)
    return result


def storm_alerts_frame(messages: Sequence[StoredMessage], as_of: datetime) -> pd.DataFrame:
    """One row per message of one storm, with the storm's status and each message's current zones.

    Takes the storm's messages (any order) and the time to judge expiry at (timezone-aware).
    Returns the `STORM_ALERT_COLUMNS` frame, oldest message first; times naive UTC.
    Raises ValueError if `messages` is empty, mixes storms, or `as_of` is naive.
    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("storm_alerts_frame needs a timezone-aware `as_of`")
    if not messages:
        raise ValueError("a storm without messages has no alerts table")
    storms = {m.storm_id for m in messages}
    if len(storms) > 1:
        raise ValueError(f"messages of several storms: {', '.join(sorted(storms))}")
    ordered = ordered_messages(messages)
    current, status = current_zones(ordered, as_of)
    rows = [
        {
            "storm_id": m.storm_id,
            "message_id": m.message_id,
            "message_type": m.message_type,
            "vtec_action": m.vtec_action,
            "is_cancel": m.is_cancel,
            "event": m.event,
            "severity": m.severity,
            "sent": _naive(m.sent),
            "received_at": _naive(m.received_at),
            "onset": _naive(m.onset),
            "ends": _naive(m.ends),
            "expires": _naive(m.expires),
            "zones": ",".join(m.zones),
            "max_wind_gust_mph": m.max_wind_gust_mph,
            "gust_source": m.gust_source,
            "precip_mm": m.precip_mm if m.precip_mm is not None else math.nan,
            "headline": m.headline,
            "status": status,
            "is_current": bool(current[m.message_id]),
            "current_zones": ",".join(current[m.message_id]),
            "as_of": _naive(as_of),
        }
        for m in ordered
    ]
    frame = pd.DataFrame(rows, columns=list(STORM_ALERT_COLUMNS))
    return frame.astype(STORM_ALERT_COLUMNS)


def current_zones(ordered: Sequence[StoredMessage], as_of: datetime
                  ) -> tuple[dict[str, list[str]], str]:
    """Per message id, the zones where it has the last word and is not a cancel; and the status.

    `ordered` must be in the order of `ordered_messages`.
    """
    last_word: dict[str, StoredMessage] = {}
    for m in ordered:
        for zone in m.zones:
            last_word[zone] = m
    current: dict[str, list[str]] = {m.message_id: [] for m in ordered}
    for zone in sorted(last_word):
        m = last_word[zone]
        if not m.is_cancel:
            current[m.message_id].append(zone)
    live = [m for m in ordered if current[m.message_id]]
    if not live:
        status = CANCELLED
    elif all(m.end_time is not None and m.end_time <= as_of for m in live):
        status = EXPIRED
    else:
        status = ACTIVE
    return current, status


def current_zone_conditions(storm_alerts: pd.DataFrame) -> pd.DataFrame:
    """The conditions that apply now, one row per zone, from a storm_alerts frame (any storms).

    Returns columns storm_id, zone, status, message_id, event, severity, onset, ends, expires,
    max_wind_gust_mph, precip_mm, sorted by storm and zone: what storm_outage_risk needs to score
    the circuits of each zone. A cancelled storm has no rows.
    """
    columns = ["storm_id", "zone", "status", "message_id", "event", "severity", "onset", "ends",
               "expires", "max_wind_gust_mph", "precip_mm"]
    current = storm_alerts[storm_alerts["is_current"].astype(bool)].copy()
    current["zone"] = current["current_zones"].astype(str).str.split(",")
    current = current.explode("zone")
    current = current[current["zone"].notna() & (current["zone"] != "")]
    return current[columns].sort_values(["storm_id", "zone"]).reset_index(drop=True)


def alert_problems(storm_alerts: pd.DataFrame) -> list[str]:
    """What is wrong with a storm_alerts frame of one storm ([] when nothing is): more than one
    status, a message naming no zone, or a message that is not a cancel whose window ends before
    it starts (the sensor ignores such alerts, so one here came into the store another way)."""
    problems = []
    statuses = sorted(set(storm_alerts["status"].astype(str)))
    if len(statuses) != 1:
        problems.append(f"the storm has {len(statuses)} statuses ({', '.join(statuses)}), not one")
    no_zone = storm_alerts.loc[storm_alerts["zones"].fillna("").astype(str) == "", "message_id"]
    if len(no_zone):
        problems.append(f"messages naming no zone: {', '.join(no_zone.astype(str))}")
    end = storm_alerts[["ends", "expires"]].max(axis=1)
    backwards = storm_alerts.loc[~storm_alerts["is_cancel"].astype(bool)
                                 & storm_alerts["onset"].notna() & end.notna()
                                 & (storm_alerts["onset"] >= end), "message_id"]
    if len(backwards):
        problems.append("messages whose window ends before it starts: "
                        + ", ".join(backwards.astype(str)))
    return problems


# --------------------------------------------------------------------------------------------
# Storm of a message


def storm_of(alert: Alert, lookup: Callable[[str], str | None]) -> str:
    """The storm an accepted alert joins: `alert.storm_id`, unless one of its references says
    otherwise (see the module docstring). `lookup` gives the storm a referenced message id is
    stored under, or None if it is not stored."""
    if alert.vtec_action is None and alert.message_type in ("Update", "Cancel"):
        for reference in alert.references:
            storm_id = lookup(reference)
            if storm_id is not None:
                return storm_id
    elif alert.storm_year_guessed:
        event = _without_year(alert.storm_id)
        for reference in alert.references:
            storm_id = lookup(reference)
            if storm_id is not None and _without_year(storm_id) == event:
                return storm_id
    return alert.storm_id


def _without_year(storm_id: str) -> str:
    """A VTEC storm id without its year: `ktfx-hw-w-0033-2025` -> `ktfx-hw-w-0033`."""
    return storm_id.rsplit("-", 1)[0]


# --------------------------------------------------------------------------------------------
# Which inbox files a tick takes


@dataclass
class InboxCursor:
    """What the sensor remembers between ticks: file names with (size, mtime in ns).

    ``seen``: files listed but not taken (incomplete, or over the tick's limits). ``stuck``: files
    that were read but could not be moved out of the inbox; they are not read again while unchanged.
    """

    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    stuck: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> tuple[InboxCursor, str | None]:
        """The cursor from its JSON text, and a problem to log if the text was unusable."""
        if not text:
            return cls(), None
        try:
            raw = json.loads(text)
            if raw.get("v") != CURSOR_VERSION:
                raise ValueError(f"version {raw.get('v')!r}")
            return cls(seen=_file_keys(raw.get("seen", {})),
                       stuck=_file_keys(raw.get("stuck", {}))), None
        except (ValueError, TypeError, AttributeError) as e:
            return cls(), f"unusable cursor ({e}); starting from an empty one"

    def serialize(self) -> str:
        return json.dumps(
            {"v": CURSOR_VERSION,
             "seen": {k: list(v) for k, v in sorted(self.seen.items())},
             "stuck": {k: list(v) for k, v in sorted(self.stuck.items())}},
            separators=(",", ":"), ensure_ascii=True,
        )

    def track(self, name: str, key: tuple[int, int]) -> None:
        """Remember a file listed but not taken, up to `MAX_TRACKED` files."""
        if len(self.seen) < MAX_TRACKED:
            self.seen[name] = key


@dataclass(frozen=True)
class ListedFile:
    """One candidate file of the inbox as listed: its name and `lstat` size, mtime and mode."""

    name: str
    size: int
    mtime_ns: int
    mode: int

    @property
    def key(self) -> tuple[int, int]:
        return (self.size, self.mtime_ns)


def plan_tick(
    listed: Sequence[ListedFile],
    cursor: InboxCursor,
    now: datetime,
    *,
    max_files: int = MAX_FILES_PER_TICK,
    max_bytes: int = MAX_BYTES_PER_TICK,
    quiet_seconds: float = QUIET_SECONDS,
) -> list[str]:
    """What the tick does with each listed file, in the listing's order (oldest first).

    Takes the listed files, the previous cursor and the tick's clock (timezone-aware). Returns one
    of `STUCK` (read before and could not be moved; unchanged, so not read again), `WAIT` (not
    complete yet), `DEFER` (complete, over the tick's limits) or `TAKE` per file. A file that will
    be rejected for its kind or size costs nothing of the byte budget, and the first file taken
    may exceed it.
    """
    now_ns = int(now.timestamp() * 1e9)
    taken, budget = 0, max_bytes
    decisions = []
    for item in listed:
        if cursor.stuck.get(item.name) == item.key:
            decisions.append(STUCK)
            continue
        complete = (cursor.seen.get(item.name) == item.key
                    or now_ns - item.mtime_ns >= quiet_seconds * 1e9)
        cost = item.size if stat.S_ISREG(item.mode) and item.size <= MAX_FILE_BYTES else 0
        over_limits = taken >= max_files or (taken > 0 and cost > budget)
        if not complete:
            decisions.append(WAIT)
        elif over_limits:
            decisions.append(DEFER)
        else:
            taken += 1
            budget -= cost
            decisions.append(TAKE)
    return decisions


# --------------------------------------------------------------------------------------------
# Small helpers


def _naive(t: datetime | None):
    return pd.NaT if t is None else t.astimezone(timezone.utc).replace(tzinfo=None)


def _file_keys(raw: Any) -> dict[str, tuple[int, int]]:
    if not isinstance(raw, dict):
        raise TypeError("not an object")
    keys = {}
    for name, value in raw.items():
        size, mtime_ns = value
        keys[str(name)] = (int(size), int(mtime_ns))
    return keys
