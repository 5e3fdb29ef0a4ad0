"""Figures that the commands write into the documentation themselves.

`make bench`, `make evaluate` and `make bench-scaleout` each own sections of a Markdown page
(docs/results.md, docs/scaleout.md), delimited by a pair of markers per section:

    <!-- bench:demo:start -->
    Measured 2026-12-07 03:10 UTC by `python -m gridassets bench --scale demo ...` on ...
    ...
    <!-- bench:demo:end -->

`rewrite_section` replaces what lies between one pair and leaves the rest of the page as it was;
a section not yet on the page is added at its end. `measured` heads a section with the date, the
machine and the command that made it, so no figure in the docs is written by hand.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gridassets.domain.export import write_atomic_text

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "docs" / "results.md"


class MarkerError(ValueError):
    """A page's markers for a section are not one start followed by one end."""


def markers(key: str) -> tuple[str, str]:
    """The start and end markers of section `key` (e.g. `bench:demo`)."""
    if not key or "--" in key or ">" in key or "\n" in key:
        raise ValueError(f"not a section name: {key!r}")
    return f"<!-- {key}:start -->", f"<!-- {key}:end -->"


def rewrite_section(path: Path, key: str, body: str) -> Path:
    """Put `body` between the markers of section `key` in the page at `path`, replacing what was
    there; a page without the section gets it at its end (a missing page is created). Raises
    MarkerError, writing nothing, when the page has one marker without the other, either twice,
    or the end before the start."""
    path = Path(path)
    start, end = markers(key)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{start}\n{body.strip()}\n{end}"
    starts, ends = text.count(start), text.count(end)
    if starts == ends == 0:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"
    elif starts == ends == 1 and text.index(start) < text.index(end):
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        raise MarkerError(
            f"{path}: section {key!r} has {starts} start and {ends} end marker(s)"
            f"{' (the end first)' if starts == ends == 1 else ''}; it needs one {start} "
            f"followed by one {end}: fix the page by hand, then run the command again")
    write_atomic_text(text, path)
    return path


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, platform, Python and the main libraries' versions."""
    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 ** 2, 1)
                break
    except OSError:
        pass
    try:
        import dagster
        import duckdb
        import pandas

        info["versions"] = {"dagster": dagster.__version__, "duckdb": duckdb.__version__,
                            "pandas": pandas.__version__}
    except ImportError:
        pass
    return info


def describe_machine(m: dict[str, Any]) -> str:
    """`2 CPUs (AMD EPYC 7B13), 23.5 GiB, Linux-6.1-x86_64, Python 3.11.7, dagster 1.13.27, ...`"""
    parts = [f"{m.get('cpus', '?')} CPUs ({m.get('cpu_model', 'CPU model unknown')})",
             f"{m.get('memory_gib', '?')} GiB", m.get("platform", "?"),
             f"Python {m.get('python', '?')}"]
    parts += [f"{name} {version}" for name, version in (m.get("versions") or {}).items()]
    return ", ".join(parts)


def command_line(argv: list[str] | None = None, prog: str = "python -m gridassets") -> str:
    """The command as typed: `prog` and the arguments (default: this process's)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join([prog, shlex.join(args)]) if args else prog


def measured(body: str, command: str, when: datetime | None = None,
             machine_info: dict[str, Any] | None = None) -> str:
    """`body` headed by when (UTC), by which command and on which machine it was measured."""
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    m = machine() if machine_info is None else machine_info
    return (f"Measured {when:%Y-%m-%d %H:%M} UTC by `{command}` on {describe_machine(m)}.\n\n"
            f"{body.strip()}")


class Tee:
    """A `progress` callable that passes each line on and keeps it: what a command printed, to
    write into its section afterwards."""

    def __init__(self, progress=print) -> None:
        self._progress = progress
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        self._progress(text)
        self.lines.append(str(text))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
