"""Writing frames as landing files, in the layout and column names the landing reader expects.

Used to export synthetic days as a worked example of the landing format, and by evaluations that
bring outside data (EIA-930 demand, ETT transformer telemetry) in through the landing path.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path

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
    """Write `frame` as CSV to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            frame.to_csv(fh, index=False, float_format="%.10g")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_registry(spec: TableSpec, frame: pd.DataFrame, landing_dir: Path) -> Path:
    return write_atomic_csv(to_landing_columns(spec, frame), Path(landing_dir) / f"{spec.name}.csv")


def write_daily(spec: TableSpec, frame: pd.DataFrame, landing_dir: Path, day: date) -> Path:
    path = Path(landing_dir) / spec.name / f"{day.isoformat()}.csv"
    return write_atomic_csv(to_landing_columns(spec, frame), path)


def write_atomic_text(text: str, path: Path) -> Path:
    """Write `text` to `path` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
