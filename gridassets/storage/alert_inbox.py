"""The alert inbox: takes the files of the inbox, stores their accepted alerts, and moves them on.

Layout under the alerts root (`Settings.alerts_root`):

* ``inbox/``: writers drop ``*.json`` files here, written elsewhere and renamed in. Dotfiles and
  other suffixes are left alone (a writer's temporary file is never read).
* ``processed/``: files that were read, each with ``<file>.note.json`` saying what became of every
  alert in it.
* ``rejected/``: files that could not be used, each with ``<file>.error.txt`` saying why.
* ``storms/<storm_id>/``: the accepted messages (see `alert_store`).

Which files a tick takes (complete ones, within the tick's limits), which storm a message joins
and what the cursor remembers are decided in `gridassets/domain/storm_messages.py`. A name already
used in processed/ or rejected/ gets a ``-2``, ``-3`` ... suffix before ``.json``: nothing is
overwritten.

This module does not import dagster; `defs/storms/sensors.py` turns an `InboxTick` into a
SensorResult.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gridassets.domain import storm_messages
from gridassets.domain.alerts import (
    MAX_FILE_BYTES,
    Alert,
    AlertFileError,
    classify,
    parse_alert_bytes,
    printable,
)
from gridassets.domain.storm_messages import (
    MAX_BYTES_PER_TICK,
    MAX_FILES_PER_TICK,
    QUIET_SECONDS,
    InboxCursor,
    ListedFile,
)
from gridassets.storage import alert_store

INBOX, PROCESSED, REJECTED = "inbox", "processed", "rejected"
NOTE_SUFFIX = ".note.json"
ERROR_SUFFIX = ".error.txt"

MAX_NUMBERED_NAMES = 100  # name-2.json ... name-100.json, then a random suffix
# The longest name (in bytes) a moved file keeps: a longer one is cut and given a hash of the whole,
# so that the name, its "-100" or random suffix, its companion suffix and the temporary name the
# companion is written under (".<name>.<12 hex>.tmp") stay within the file system's 255 bytes.
MAX_NAME_BYTES = 200

RUN_REQUESTED, DUPLICATE, IGNORED = "run_requested", "duplicate", "ignored"


@dataclass(frozen=True)
class RunIntent:
    """One run of the storm assets to request."""

    storm_id: str
    run_key: str
    message_id: str
    message_type: str
    event: str
    source_file: str
    duplicate: bool  # the message was stored by an earlier tick: the run key is not new


@dataclass(frozen=True)
class FileReport:
    """What became of one inbox file in this tick."""

    name: str
    outcome: str  # "processed" | "rejected" | "retry" | "vanished"
    moved_to: str | None
    detail: str


@dataclass
class InboxTick:
    runs: list[RunIntent] = field(default_factory=list)
    storms: list[str] = field(default_factory=list)  # partitions to add, first-seen order
    cursor: InboxCursor = field(default_factory=InboxCursor)
    files: list[FileReport] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # not complete yet
    deferred: int = 0  # complete, left for the next tick by the per-tick limits
    problems: list[str] = field(default_factory=list)  # for the operator's log


class _Reject(Exception):
    """The file is unusable; the message is the reason written to its .error.txt."""


class _Changed(Exception):
    """The file changed while it was read: it is not complete yet."""


def process_inbox(
    alerts_root: Path,
    our_zones: Collection[str],
    cursor: InboxCursor,
    now: datetime,
    *,
    max_files: int = MAX_FILES_PER_TICK,
    max_bytes: int = MAX_BYTES_PER_TICK,
    quiet_seconds: float = QUIET_SECONDS,
) -> InboxTick:
    """Take the complete files of the inbox, store their accepted alerts, and move them on.

    Takes the alerts root, the UGC zones of our circuits, the previous cursor, and the tick's clock
    (timezone-aware; used to classify alerts and to judge a file's age). Returns the runs to
    request, the storm partitions to add, the new cursor and a report per file.
    Bad files never raise: they move to rejected/. Raises OSError only if the alerts folders cannot
    be created or the inbox cannot be listed.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("process_inbox needs a timezone-aware `now`")
    root = Path(alerts_root)
    for folder in (INBOX, PROCESSED, REJECTED, alert_store.STORMS_DIR):
        (root / folder).mkdir(parents=True, exist_ok=True)

    tick = InboxTick()
    resolver = _StormResolver(root)
    listed = _list_inbox(root / INBOX)
    decisions = storm_messages.plan_tick(listed, cursor, now, max_files=max_files,
                                         max_bytes=max_bytes, quiet_seconds=quiet_seconds)
    for item, decision in zip(listed, decisions):
        if decision == storm_messages.STUCK:
            tick.cursor.stuck[item.name] = item.key
        elif decision == storm_messages.TAKE:
            _take(root, item, our_zones, now, tick, resolver)
        else:
            if decision == storm_messages.WAIT:
                tick.waiting.append(item.name)
            else:
                tick.deferred += 1
            tick.cursor.track(item.name, item.key)
    return tick


# --------------------------------------------------------------------------------------------
# One file


def _take(root: Path, item: ListedFile, our_zones: Collection[str], now: datetime, tick: InboxTick,
          resolver: _StormResolver) -> None:
    path = root / INBOX / item.name
    try:
        data = _read(path, item)
        parsed = parse_alert_bytes(data)
    except FileNotFoundError:
        tick.files.append(FileReport(item.name, "vanished", None,
                                     "removed from the inbox before it was read"))
        return
    except _Changed:
        tick.waiting.append(item.name)
        return
    except (_Reject, AlertFileError) as e:
        _reject(root, item, str(e), now, tick)
        return

    entries: list[dict[str, Any]] = []
    tick_keys = {r.run_key for r in tick.runs}
    for alert in parsed.alerts:
        reason = classify(alert, our_zones, now)
        if reason is not None:
            entries.append(_entry(alert, IGNORED, reason=reason))
            continue
        storm_id = resolver.storm_of(alert)
        if alert.is_cancel and not alert_store.storm_has_messages(root, storm_id):
            # Nothing to call off: storing it would make a storm of a cancel alone, a partition
            # and a run whose list would stand crews down from a storm nobody was told about.
            entries.append(_entry(alert, IGNORED, storm_id=storm_id, reason=(
                f"a cancel of storm {storm_id}, which was never received: no message of it is "
                "stored, so there is nothing to call off")))
            continue
        message_key = alert_store.message_key(alert.message_id)
        run_key = f"{storm_id}:{message_key}"
        stored_as = f"{alert_store.STORMS_DIR}/{storm_id}/{message_key}.json"
        if run_key in tick_keys:
            entries.append(_entry(alert, DUPLICATE, storm_id=storm_id, run_key=run_key,
                                  reason="the same message appeared earlier in this tick"))
            continue
        record = alert_store.message_record(alert, storm_id, now, printable(item.name))
        try:
            _, written = alert_store.write_message(root, record)
        except OSError as e:
            # The store is unwritable (disk full, permissions): the file is fine, so it stays in
            # the inbox and is read again next tick; runs of messages already stored from it are
            # still requested.
            tick.problems.append(
                f"{printable(item.name)}: cannot store message {alert.message_id}: {e}")
            tick.files.append(
                FileReport(item.name, "retry", None, f"message store unwritable: {e}"))
            return
        resolver.remember(alert.message_id, storm_id)
        tick_keys.add(run_key)
        tick.runs.append(RunIntent(storm_id, run_key, alert.message_id, alert.message_type,
                                   alert.event, printable(item.name), duplicate=not written))
        if storm_id not in tick.storms:
            tick.storms.append(storm_id)
        if written:
            entries.append(_entry(alert, RUN_REQUESTED, storm_id=storm_id, run_key=run_key,
                                  stored_as=stored_as))
        else:
            # Requested again all the same: should the tick that stored it have been lost, this
            # starts the run; otherwise Dagster sees the run key again and starts nothing.
            entries.append(_entry(
                alert, DUPLICATE, storm_id=storm_id, run_key=run_key, stored_as=stored_as,
                reason="already received; its run key was requested before, so no new run starts",
            ))
    for ignored in parsed.ignored:
        entries.append({"message_id": _opt_printable(ignored.message_id),
                        "event": _opt_printable(ignored.event),
                        "outcome": IGNORED, "reason": printable(ignored.reason)})

    note = {
        "file": printable(item.name),
        "received_at": now.astimezone(timezone.utc).isoformat(),
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "summary": {outcome: sum(e["outcome"] == outcome for e in entries)
                    for outcome in (RUN_REQUESTED, DUPLICATE, IGNORED)},
        "entries": entries,
    }
    summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in note["summary"].items() if n)
    _move(root, item, PROCESSED, NOTE_SUFFIX, note, summary or "no alerts in it", tick)


def _read(path: Path, item: ListedFile) -> bytes:
    """The bytes of a complete regular file of at most MAX_FILE_BYTES; raises _Reject, _Changed,
    FileNotFoundError."""
    if stat.S_ISLNK(item.mode):
        raise _Reject("the file is a symbolic link; put the file itself in the inbox")
    if stat.S_ISDIR(item.mode):
        raise _Reject("it is a folder, not a file")
    if not stat.S_ISREG(item.mode):
        raise _Reject("it is not a regular file (a pipe, socket or device)")
    if item.size > MAX_FILE_BYTES:
        raise _Reject(
            f"the file is {item.size} bytes, larger than the limit of {MAX_FILE_BYTES} bytes"
        )
    # O_NOFOLLOW and O_NONBLOCK: a file swapped for a link or a pipe after the listing must not
    # lead the sensor elsewhere or block it.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except PermissionError:
        raise _Reject("the file cannot be read: permission denied") from None
    except OSError as e:
        raise _Reject(f"the file cannot be opened: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "rb") as f:
            before = os.fstat(f.fileno())
            if not stat.S_ISREG(before.st_mode):
                raise _Reject("it is not a regular file")
            data = f.read(MAX_FILE_BYTES + 1)
            after = os.fstat(f.fileno())
    except OSError as e:
        raise _Reject(f"the file cannot be read: {e.strerror or e}") from None
    if (after.st_size, after.st_mtime_ns) != item.key or len(data) != item.size:
        raise _Changed()
    return data


def _reject(root: Path, item: ListedFile, reason: str, now: datetime, tick: InboxTick) -> None:
    reason = printable(reason)
    text = (
        f"{printable(item.name)} was rejected at {now.astimezone(timezone.utc).isoformat()}.\n"
        f"Reason: {reason}\n"
        "Nothing in it was acted on. Fix the file and drop it into the inbox again "
        "(write it elsewhere, then move it in).\n"
    )
    _move(root, item, REJECTED, ERROR_SUFFIX, text, reason, tick)


def _move(root: Path, item: ListedFile, folder: str, companion_suffix: str,
          companion: dict[str, Any] | str, detail: str, tick: InboxTick) -> None:
    """Move the file to processed/ or rejected/ under a free name, then write its note or error."""
    destination = _free_name(root / folder, item.name, companion_suffix)
    outcome = "processed" if folder == PROCESSED else "rejected"
    try:
        os.rename(root / INBOX / item.name, destination)
    except FileNotFoundError:
        tick.files.append(FileReport(item.name, "vanished", None, "removed before it was moved"))
        return
    except OSError as e:
        # Left where it is and not read again while unchanged (no file is read twice a tick).
        tick.problems.append(
            f"{printable(item.name)}: read but cannot be moved to {folder}/: {e}")
        tick.cursor.stuck[item.name] = item.key
        tick.files.append(FileReport(item.name, outcome, None, detail))
        return
    if isinstance(companion, dict):
        data = (json.dumps(companion, indent=2, ensure_ascii=True) + "\n").encode()
    else:
        data = companion.encode("utf-8", "backslashreplace")
    try:
        alert_store.write_atomically(
            destination.with_name(destination.name + companion_suffix), data)
    except OSError as e:
        tick.problems.append(
            f"{printable(destination.name)}: cannot write its {companion_suffix}: {e}")
    tick.files.append(FileReport(item.name, outcome, f"{folder}/{destination.name}", detail))


def _free_name(folder: Path, name: str, companion_suffix: str) -> Path:
    """`name` in `folder`, or `stem-2.json`, `stem-3.json` ... if it or its companion is taken.

    Past `MAX_NUMBERED_NAMES` a random suffix is used, so a writer that always sends the same name
    does not make every move probe thousands of names. A name longer than `MAX_NAME_BYTES` is cut
    first (see `_short_name`).
    """
    stem, dot, ext = _short_name(name).rpartition(".")
    numbered = (f"{stem}-{n}{dot}{ext}" for n in range(2, MAX_NUMBERED_NAMES + 1))
    candidate = f"{stem}{dot}{ext}"
    while (os.path.lexists(folder / candidate)
           or os.path.lexists(folder / (candidate + companion_suffix))):
        candidate = next(numbered, None) or f"{stem}-{uuid.uuid4().hex[:12]}{dot}{ext}"
    return folder / candidate


def _short_name(name: str) -> str:
    """`name` if it fits in `MAX_NAME_BYTES`, else its stem cut to fit with a 10-hex-digit hash of
    the whole name appended (before the ``.json``), so different long names stay different."""
    if len(os.fsencode(name)) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:10]
    room = MAX_NAME_BYTES - len(os.fsencode(f"-{digest}{dot}{ext}"))
    while len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return f"{stem}-{digest}{dot}{ext}"


# --------------------------------------------------------------------------------------------
# Storm resolution


class _StormResolver:
    """Finds the storm of a referenced message for `storm_messages.storm_of`.

    The message store is the map (a message's file sits in its storm's folder), so the mapping
    survives restarts and never needs trimming; messages stored in this tick are remembered here.
    """

    def __init__(self, root: Path):
        self.root = root
        self._known: dict[str, str] = {}
        self._storms: list[str] | None = None

    def storm_of(self, alert: Alert) -> str:
        return storm_messages.storm_of(alert, self._lookup)

    def remember(self, message_id: str, storm_id: str) -> None:
        self._known[alert_store.message_key(message_id)] = storm_id

    def _lookup(self, message_id: str) -> str | None:
        key = alert_store.message_key(message_id)
        if key not in self._known:
            if self._storms is None:
                self._storms = alert_store.list_storms(self.root)
            found = alert_store.find_message(self.root, message_id, self._storms)
            if found is None:
                return None
            self._known[key] = found
        return self._known[key]


# --------------------------------------------------------------------------------------------
# Small helpers


def _list_inbox(inbox: Path) -> list[ListedFile]:
    """The candidate files of the inbox, oldest first (then by name)."""
    listed = []
    with os.scandir(inbox) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.lower().endswith(".json"):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            listed.append(ListedFile(entry.name, st.st_size, st.st_mtime_ns, st.st_mode))
    return sorted(listed, key=lambda f: (f.mtime_ns, f.name))


def _entry(alert: Alert, outcome: str, **fields: Any) -> dict[str, Any]:
    entry = {
        "message_id": printable(alert.message_id),
        "event": printable(alert.event),
        "message_type": alert.message_type,
        "zones": list(alert.zones),
        "outcome": outcome,
    }
    entry.update({k: printable(v) if isinstance(v, str) else v for k, v in fields.items()})
    return entry


def _opt_printable(text: str | None) -> str | None:
    return None if text is None else printable(text)
