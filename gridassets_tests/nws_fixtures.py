"""The real NWS alert collections of gridassets_tests/data/nws, with their time placeholders made
real against a fixed test clock (see gridassets/domain/nws_samples.py), so tests do not depend on
the day they run.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from gridassets.domain import nws_samples

# The moment the northwest collection was captured: its MTZ309 High Wind Warning was issued at
# 2:13 PM MST on 2025-12-15 and carries "sent": "date:now -42 minutes".
TEST_NOW = datetime(2025, 12, 15, 21, 55, tzinfo=timezone.utc)

NWS_FILES = ("northwest-active-alerts.json", "washington-active-alerts.json")


def nws_data_dir() -> Path | None:
    """The NWS collections, kept unchanged in gridassets_tests/data/nws/."""
    folder = Path(__file__).resolve().parent / "data" / "nws"
    return folder if folder.is_dir() else None


def resolve_placeholder(placeholder: str, now: datetime = TEST_NOW) -> str:
    """The ISO 8601 time a ``date:...`` placeholder stands for at `now`; ValueError if unknown."""
    return nws_samples.resolve_placeholder(placeholder, now)


def with_real_times(raw: bytes, now: datetime = TEST_NOW) -> bytes:
    """`raw` JSON bytes with every ``"date:..."`` string replaced by a real ISO 8601 time."""
    return nws_samples.with_real_times(raw, now)


def load_nws_file(name: str, now: datetime = TEST_NOW) -> bytes:
    """The bytes of one NWS collection with real times; FileNotFoundError if absent."""
    folder = nws_data_dir()
    if folder is None or not (folder / name).is_file():
        raise FileNotFoundError(f"gridassets_tests/data/nws/{name} not found")
    return with_real_times((folder / name).read_bytes(), now)


# The gridpoint forecasts of gridassets_tests/data/nws/gridpoints/ (<office>/<x>,<y>.json), with the
# clock of each set to its own updateTime, so that the file's first hour is the hour it was issued.
GRIDPOINTS = {
    "BMX/32,69.json": datetime(2024, 2, 23, 18, 40, 54, tzinfo=timezone.utc),
    "FGZ/74,89.json": datetime(2024, 2, 20, 17, 13, 54, tzinfo=timezone.utc),
    "FWD/89,104.json": datetime(2024, 10, 1, 10, 29, 1, tzinfo=timezone.utc),
    "LZK/83,73.json": datetime(2024, 2, 20, 17, 36, 55, tzinfo=timezone.utc),
}


def load_gridpoint(name: str) -> bytes:
    """The bytes of one gridpoint forecast with real times at its own issue time."""
    folder = nws_data_dir()
    if folder is None or not (folder / "gridpoints" / name).is_file():
        raise FileNotFoundError(f"gridassets_tests/data/nws/gridpoints/{name} not found")
    return with_real_times((folder / "gridpoints" / name).read_bytes(), GRIDPOINTS[name])
