"""The storm message store: accepted alert messages kept as files, one folder per storm.

The weather-alert sensor writes each accepted alert message, normalized, to
``<alerts root>/storms/<storm_id>/<message key>.json`` before it requests the storm's run; the storm
assets read that folder. So a run needs no config and a storm can be re-materialized from the UI,
and the folder is also the record of which message belongs to which storm (an Update or Cancel
without VTEC is resolved to its storm through it).

Folder and file names are `sanitize_key` results only, never text from an alert. What a storm's
messages mean (their order, current zones, the storm's status) is decided in
`gridassets/domain/storm_messages.py`; this module only keeps and reads them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gridassets.domain import export
from gridassets.domain.alerts import Alert, sanitize_key
from gridassets.domain.storm_messages import StoredMessage, ordered_messages

STORMS_DIR = "storms"
RECORD_FORMAT = 1
MAX_RECORD_BYTES = 1024 * 1024  # a normalized message is a few kB; the zone list dominates


class StoredMessageError(ValueError):
    """A file of the message store cannot be read back; the message names the file."""


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
    """The messages of one storm folder, oldest first (see `storm_messages.ordered_messages`).

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
# Small helpers


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(timezone.utc).isoformat()


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
