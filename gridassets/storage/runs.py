"""Is the process that ran a run still there? Process identity from the pid and its start time.

A run records who executes it: the host, the process id and the process's start time (with the
boot it belongs to). A pid alone is not enough: after a process dies its pid is handed out again,
so a later, unrelated process can carry it. The start time (field 22 of /proc/<pid>/stat, clock
ticks since boot) and the boot id tell the original process from a newcomer with the same pid.

Linux only (it reads /proc); elsewhere nothing can be judged and `is_alive` says so (None).
No Dagster here: `gridassets/defs/ops/recovery.py` turns this into run tags and a reaper.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessIdentity:
    """One process, told apart from any later process that gets the same pid."""

    host: str
    pid: int
    started: str  # "<boot id>:<start time in clock ticks since boot>"; "" when unknown

    def describe(self) -> str:
        return f"process {self.pid} on host {self.host}"


def hostname() -> str:
    return socket.gethostname()


def _boot_id() -> str:
    try:
        return (PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return ""


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc/<pid>/stat, or None if there is no such pid."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); the start time is field 22.
    return fields[0], fields[19]


def started_of(pid: int) -> str | None:
    """The start stamp of a running process, or None if `pid` is not a running process.

    A zombie (killed, not yet waited for by its parent) or dead process counts as gone."""
    stat = _stat(pid)
    if stat is None or stat[0] in ("Z", "X", "x"):
        return None
    return f"{_boot_id()}:{stat[1]}"


def current() -> ProcessIdentity:
    """This process."""
    pid = os.getpid()
    return ProcessIdentity(host=hostname(), pid=pid, started=started_of(pid) or "")


def is_alive(identity: ProcessIdentity) -> bool | None:
    """True if that very process still runs, False if it is gone (no such pid, a zombie, or the pid
    now belongs to a process started later), None if it cannot be judged from here (another host,
    or no /proc)."""
    if identity.host != hostname() or not identity.started or not (PROC / "self").exists():
        return None
    return started_of(identity.pid) == identity.started
