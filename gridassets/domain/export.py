"""Writing frames as landing files, in the layout and column names the landing reader expects.

Used to export synthetic days as a worked example of the landing format, and by evaluations that
bring outside data (EIA-930 demand, ETT transformer telemetry) in through the landing path. The
atomic writers here are also the ones the published lists (prioritized circuits, storm risk) and
the evaluation reports go through.

Files are written to a temporary file in the same folder and renamed into place, so a reader never
sees half a file, and they get the mode an ordinary `open()` would give them (0666 masked by the
process umask, so 0644 under the usual umask 022): the lists are published for other people.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TextIO

import pandas as pd

from gridassets.domain.schemas import TableSpec


def to_landing_columns(spec: TableSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with the spec's columns under their landing names, timestamps as ISO 8601 UTC."""
    out = pd.DataFrame(index=frame.index)
    for col in spec.columns:
        if col.name not in frame.columns:
            continue
        values = frame[col.name]
        if col.dtype == "timestamp":
            values = pd.to_datetime(values).dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(values.notna(), "")
        out[col.source_name] = values
    return out


def write_atomic_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write `frame` as CSV to `path` through a temporary file and a rename; returns `path`."""
    return _write_atomic(Path(path), lambda fh: frame.to_csv(fh, index=False, float_format="%.10g"),
                         newline="")


def write_registry(spec: TableSpec, frame: pd.DataFrame, landing_dir: Path) -> Path:
    return write_atomic_csv(to_landing_columns(spec, frame), Path(landing_dir) / f"{spec.name}.csv")


def write_daily(spec: TableSpec, frame: pd.DataFrame, landing_dir: Path, day: date) -> Path:
    path = Path(landing_dir) / spec.name / f"{day.isoformat()}.csv"
    return write_atomic_csv(to_landing_columns(spec, frame), path)


def write_atomic_text(text: str, path: Path) -> Path:
    """Write `text` to `path` through a temporary file and a rename; returns `path`."""
    return _write_atomic(Path(path), lambda fh: fh.write(text))


def write_atomic_bytes(data: bytes, path: Path, durable: bool = False) -> Path:
    """Write `data` to `path` through a temporary file and a rename; returns `path`. `durable`
    syncs the file to disk before the rename (a record that must survive a power cut)."""
    return _write_atomic(Path(path), lambda fh: fh.write(data), binary=True, durable=durable)


def _write_atomic(path: Path, write: Callable[[TextIO], object], newline: str | None = None,
                  binary: bool = False, durable: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline=newline)) as fh:
            write(fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new hidden file next to `path`, opened for writing.

    Not `tempfile.mkstemp`: it creates files with mode 0600, which the rename would carry over to
    the published file. Creating the file with 0666 lets the kernel apply the umask, as `open()`
    does, without reading the umask (changing it to read it would race other threads).
    """
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
