"""The real NWS alert collections of gridassets_tests/data/nws, with their time placeholders made real.

The files come from the weather.gov front-end's test data, where every time was replaced by a
placeholder relative to the moment the test runs: ``"date:now +2165 minutes"``,
``"date:now -1 hour"``, ``"date:now 3 days"`` (no sign means later) and
``"date:today 16:00:-5 +24 hours"`` (16:00 today at UTC-5, plus 24 hours). `with_real_times`
replaces each with an ISO 8601 time relative to a fixed test clock, so tests do not depend on the
day they run.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

# The moment the northwest collection was captured: its MTZ309 High Wind Warning was issued at
# 2:13 PM MST on 2025-12-15 and carries "sent": "date:now -42 minutes".
TEST_NOW = datetime(2025, 12, 15, 21, 55, tzinfo=timezone.utc)

NWS_FILES = ("northwest-active-alerts.json", "washington-active-alerts.json")

_PLACEHOLDER = re.compile(r'"(date:[^"]*)"')
_NOW = re.compile(r"date:now(?:\s+([+-]?)(\d+)\s+(second|minute|hour|day)s?)?")
_TODAY = re.compile(
    r"date:today\s+(\d{1,2}):(\d{2})(?::([+-]?\d{1,2}))?"
    r"(?:\s+([+-]?)(\d+)\s+(second|minute|hour|day)s?)?"
)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def nws_data_dir() -> Path | None:
    """The NWS collections, kept unchanged in gridassets_tests/data/nws/."""
    folder = Path(__file__).resolve().parent / "data" / "nws"
    return folder if folder.is_dir() else None


def resolve_placeholder(placeholder: str, now: datetime = TEST_NOW) -> str:
    """The ISO 8601 time a ``date:...`` placeholder stands for at `now`; ValueError if unknown."""
    m = _NOW.fullmatch(placeholder.strip())
    if m is not None:
        return (now + _shift(m.group(1), m.group(2), m.group(3))).isoformat()
    m = _TODAY.fullmatch(placeholder.strip())
    if m is not None:
        hour, minute, offset_hours = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        zone = timezone(timedelta(hours=offset_hours))
        local_day = now.astimezone(zone).date()
        base = datetime(local_day.year, local_day.month, local_day.day, hour, minute, tzinfo=zone)
        return (base + _shift(m.group(4), m.group(5), m.group(6))).isoformat()
    raise ValueError(f"unknown time placeholder {placeholder!r}")


def with_real_times(raw: bytes, now: datetime = TEST_NOW) -> bytes:
    """`raw` JSON bytes with every ``"date:..."`` string replaced by a real ISO 8601 time."""
    text = raw.decode("utf-8")
    return _PLACEHOLDER.sub(lambda m: f'"{resolve_placeholder(m.group(1), now)}"', text).encode()


def load_nws_file(name: str, now: datetime = TEST_NOW) -> bytes:
    """The bytes of one NWS collection with real times; FileNotFoundError if absent."""
    folder = nws_data_dir()
    if folder is None or not (folder / name).is_file():
        raise FileNotFoundError(f"gridassets_tests/data/nws/{name} not found")
    return with_real_times((folder / name).read_bytes(), now)


def _shift(sign: str | None, amount: str | None, unit: str | None) -> timedelta:
    if amount is None:
        return timedelta(0)
    seconds = int(amount) * _UNIT_SECONDS[unit]
    return timedelta(seconds=-seconds if sign == "-" else seconds)
