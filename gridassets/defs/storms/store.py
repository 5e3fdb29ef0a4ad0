"""The storm message store: accepted alert messages kept as files, one folder per storm.

The weather-alert sensor writes each accepted alert message, normalized, to
``<alerts root>/storms/<storm_id>/<message key>.json`` before it requests the storm's run; the storm
assets read that folder. So a run needs no config and a storm can be re-materialized from the UI,
and the folder is also the record of which message belongs to which storm (an Update or Cancel
without VTEC is resolved to its storm through it).

Folder and file names are `sanitize_key` results only, never text from an alert. This module does
not import dagster: the sensor's inbox code, the assets and the tests all use it.

Current conditions. A storm's messages may each cover different zones (the NWS splits one product
into segments with different zone lists, all sent at the same time), and a later message may
continue some zones and cancel others. So "the message whose conditions apply" is decided per zone:
for each zone the storm names, the latest message naming it has the last word. "Latest" is by
``sent`` (the receipt time for a minimal-form alert that states none), except that a message always
comes after the messages it references, whatever the clocks say. A message is current for the
zones where it has the last word and is not a cancel; `current_zone_conditions` gives one row per
such zone, which is what the downstream storm assets read. The storm is ``cancelled`` when a cancel has the last word in every zone,
``expired`` when every current message has ended, else ``active``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from gridassets.domain import export
from gridassets.domain.alerts import Alert, sanitize_key

STORMS_DIR = "storms"
RECORD_FORMAT = 1
MAX_RECORD_BYTES = 1024 * 1024  # a normalized message is a few kB; the zone list dominates

ACTIVE, CANCELLED, EXPIRED = "active", "cancelled", "expired"

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


class StoredMessageError(ValueError):
    """A file of the message store cannot be read back; the message names the file."""


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
# Paths


def storms_root(alerts_root: Path) -> Path:
    return Path(alerts_root) / STORMS_DIR


def storm_folder(alerts_root: Path, storm_id: str) -> Path:
    """The folder of one storm. Raises ValueError if `storm_id` is not a sanitized key, so a
    partition key typed into the UI cannot point outside the store."""
    if not isinstance(storm_id, str) or sanitize_key(storm_id) != storm_id:
        raise ValueError(f"{storm_id!r} is not a storm id (lower-case letters, digits and '-')")
    return storms_root(alerts_root) / storm_id


def message_key(message_id: str) -> str:
    return sanitize_key(message_id)


def message_path(alerts_root: Path, storm_id: str, message_id: str) -> Path:
    return storm_folder(alerts_root, storm_id) / f"{message_key(message_id)}.json"


def find_message(alerts_root: Path, message_id: str, storm_ids: Iterable[str] | None = None
                 ) -> str | None:
    """The storm a stored message belongs to, or None if no storm folder holds it.

    `storm_ids` are the folders to look in (default: all of them; a caller resolving many messages
    lists them once with `list_storms`).
    """
    name = f"{message_key(message_id)}.json"
    if storm_ids is None:
        storm_ids = list_storms(alerts_root)
    for storm_id in storm_ids:
        if (storms_root(alerts_root) / storm_id / name).is_file():
            return storm_id
    return None


def storm_has_messages(alerts_root: Path, storm_id: str) -> bool:
    """True if the store holds at least one message of `storm_id` (a storm the sensor received)."""
    try:
        names = os.listdir(storm_folder(alerts_root, storm_id))
    except (FileNotFoundError, NotADirectoryError):
        return False
    return any(n.endswith(".json") and not n.startswith(".") for n in names)


def list_storms(alerts_root: Path) -> list[str]:
    """The storm ids with a folder in the store, sorted; [] when there is no store yet."""
    root = storms_root(alerts_root)
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    return sorted(
        e.name for e in entries
        if e.is_dir(follow_symlinks=False) and sanitize_key(e.name) == e.name
    )


# --------------------------------------------------------------------------------------------
# Writing


def message_record(alert: Alert, storm_id: str, received_at: datetime, source_file: str
                   ) -> dict[str, Any]:
    """The JSON object stored for an accepted alert. `storm_id` may differ from `alert.storm_id`
    when the sensor resolved an Update or Cancel to the storm of the message it references."""
    return {
        "format": RECORD_FORMAT,
        "storm_id": storm_id,
        "message_id": alert.message_id,
        "message_key": message_key(alert.message_id),
        "message_type": alert.message_type,
        "vtec_action": alert.vtec_action,
        "is_cancel": alert.is_cancel,
        "event": alert.event,
        "severity": alert.severity,
        "sent": _iso(alert.sent),
        "received_at": _iso(received_at),
        "onset": _iso(alert.onset),
        "ends": _iso(alert.ends),
        "expires": _iso(alert.expires),
        "zones": list(alert.zones),
        "max_wind_gust_mph": alert.max_wind_gust_mph,
        "gust_source": alert.gust_source,
        "precip_mm": alert.precip_mm,
        "references": list(alert.references),
        "headline": alert.headline,
        "source_file": source_file,
    }


def write_message(alerts_root: Path, record: Mapping[str, Any]) -> tuple[Path, bool]:
    """Store a record unless its message is already stored; returns (path, written).

    Written atomically (a temporary file in the same folder, then a rename), so a run never reads
    half a message. An existing message is never overwritten: a message id names one message.
    Raises OSError when the store cannot be written.
    """
    path = message_path(alerts_root, record["storm_id"], record["message_id"])
    if path.exists():
        return path, False
    write_atomically(path, (json.dumps(record, indent=2, ensure_ascii=True) + "\n").encode())
    return path, True


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary dotfile in the same folder, synced, and a
    rename (readable by others under the usual umask, like every output)."""
    export.write_atomic_bytes(data, path, durable=True)


# --------------------------------------------------------------------------------------------
# Reading


def load_storm_messages(folder: Path) -> list[StoredMessage]:
    """The messages of one storm folder, oldest first (see `ordered_messages`).

    Returns [] if the folder is missing or holds no message. Raises StoredMessageError naming the
    file if one cannot be read back.
    """
    folder = Path(folder)
    try:
        names = sorted(
            n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")
        )
    except FileNotFoundError:
        return []
    return ordered_messages([_read_record(folder / n) for n in names])


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


def _read_record(path: Path) -> StoredMessage:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RECORD_BYTES + 1)
        if len(data) > MAX_RECORD_BYTES:
            raise StoredMessageError(f"{path}: larger than {MAX_RECORD_BYTES} bytes")
        raw = json.loads(data)
    except (OSError, ValueError) as e:
        if isinstance(e, StoredMessageError):
            raise
        raise StoredMessageError(f"{path}: cannot be read back: {e}") from None
    if not isinstance(raw, dict):
        raise StoredMessageError(f"{path}: not a message record")
    try:
        message = StoredMessage(
            storm_id=_str(raw, "storm_id"),
            message_id=_str(raw, "message_id"),
            message_key=_str(raw, "message_key"),
            message_type=_str(raw, "message_type"),
            vtec_action=_opt_str(raw, "vtec_action"),
            is_cancel=_bool(raw, "is_cancel"),
            event=_str(raw, "event"),
            severity=_opt_str(raw, "severity"),
            sent=_opt_time(raw, "sent"),
            received_at=_time(raw, "received_at"),
            onset=_opt_time(raw, "onset"),
            ends=_opt_time(raw, "ends"),
            expires=_opt_time(raw, "expires"),
            zones=_str_tuple(raw, "zones"),
            max_wind_gust_mph=_number(raw, "max_wind_gust_mph"),
            gust_source=_str(raw, "gust_source"),
            precip_mm=_opt_number(raw, "precip_mm"),
            references=_str_tuple(raw, "references"),
            headline=_opt_str(raw, "headline"),
            source_file=_opt_str(raw, "source_file") or "",
        )
    except (KeyError, TypeError, ValueError) as e:
        raise StoredMessageError(f"{path}: {e}") from None
    if message.storm_id != path.parent.name or f"{message.message_key}.json" != path.name:
        raise StoredMessageError(
            f"{path}: holds message {message.message_key} of storm {message.storm_id}, "
            "which belongs elsewhere"
        )
    return message


# --------------------------------------------------------------------------------------------
# The storm_alerts table


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
# Small helpers


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(timezone.utc).isoformat()


def _naive(t: datetime | None):
    return pd.NaT if t is None else t.astimezone(timezone.utc).replace(tzinfo=None)


def _str(raw: Mapping[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"'{key}' is not text")
    return value


def _opt_str(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return None if value is None else _str(raw, key)


def _bool(raw: Mapping[str, Any], key: str) -> bool:
    value = raw[key]
    if not isinstance(value, bool):
        raise TypeError(f"'{key}' is not true or false")
    return value


def _number(raw: Mapping[str, Any], key: str) -> float:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"'{key}' is not a number")
    return float(value)


def _opt_number(raw: Mapping[str, Any], key: str) -> float | None:
    return None if raw.get(key) is None else _number(raw, key)


def _str_tuple(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"'{key}' is not a list of text")
    return tuple(value)


def _time(raw: Mapping[str, Any], key: str) -> datetime:
    value = datetime.fromisoformat(_str(raw, key))
    if value.tzinfo is None:
        raise ValueError(f"'{key}' has no UTC offset")
    return value.astimezone(timezone.utc)


def _opt_time(raw: Mapping[str, Any], key: str) -> datetime | None:
    return None if raw.get(key) is None else _time(raw, key)
