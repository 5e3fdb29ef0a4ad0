"""Where a storm's published list lives, and writing it: the planner's sheet, the zone summary and
the GeoJSON layer, side by side in ``<outputs>/storms/<storm_id>/``.

Each file is written atomically (a temporary file, then a rename: `gridassets.domain.export`).
The sheet `priority.csv` is written last, so once it has changed the zone summary and the GeoJSON
beside it are already those of the same run. What the files hold is decided in
`gridassets.domain.storm_sheet`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gridassets.domain.alerts import sanitize_key
from gridassets.domain.export import write_atomic_csv, write_atomic_text

STORMS_DIR = "storms"


@dataclass(frozen=True)
class StormListFiles:
    """The files of one storm's published list."""

    sheet: Path  # priority.csv: the planner's sheet, one row per circuit
    zones: Path  # zones.csv: one row per zone, with the crews to stage
    geojson: Path  # priority.geojson: the sheet as points for GIS tools


def storm_list_files(outputs_dir: Path, storm_id: str) -> StormListFiles:
    """The files of `storm_id`'s list under `outputs_dir`. Raises ValueError if `storm_id` is not
    a storm id (a sanitized key), so a partition key cannot point outside the folder."""
    if not isinstance(storm_id, str) or sanitize_key(storm_id) != storm_id:
        raise ValueError(f"{storm_id!r} is not a storm id (lower-case letters, digits and '-')")
    folder = Path(outputs_dir) / STORMS_DIR / storm_id
    return StormListFiles(sheet=folder / "priority.csv", zones=folder / "zones.csv",
                          geojson=folder / "priority.geojson")


def write_storm_list(files: StormListFiles, sheet: pd.DataFrame, zones: pd.DataFrame,
                     geojson: dict[str, Any]) -> StormListFiles:
    """Write the three files, each atomically, the sheet last; returns `files`. Raises OSError
    when a file cannot be written (the files already written stay, each whole)."""
    write_atomic_csv(zones, files.zones)
    write_atomic_text(json.dumps(geojson, allow_nan=False) + "\n",
                      files.geojson)
    write_atomic_csv(sheet, files.sheet)
    return files
