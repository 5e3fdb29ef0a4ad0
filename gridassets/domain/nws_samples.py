"""The real NWS alert collections and gridpoint forecasts kept for tests, with their time
placeholders made real.

The files come from the weather.gov front-end's test data, where every time was replaced by a
placeholder relative to the moment it is used: ``"date:now +2165 minutes"``,
``"date:now -1 hour"``, ``"date:now 3 days"`` (no sign means later) and
``"date:today 16:00:-5 +24 hours"`` (16:00 today at UTC-5, plus 24 hours); the gridpoint
forecasts' intervals ``"date:now:hour +2 hours / PT3H"`` (from the start of the current hour). `with_real_times`
replaces each with an ISO 8601 time relative to a given clock: the tests use a fixed one, the
scale-out demo the present, so that its alert is current.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_PLACEHOLDER = re.compile(r'"(date:[^"]*)"')
_NOW = re.compile(r"date:now(:hour)?(?:\s+([+-]?)(\d+)\s+(second|minute|hour|day)s?)?"
                  r"(?:\s*/\s*(P[0-9DTHMSW]+))?")
_TODAY = re.compile(
    r"date:today\s+(\d{1,2}):(\d{2})(?::([+-]?\d{1,2}))?"
    r"(?:\s+([+-]?)(\d+)\s+(second|minute|hour|day)s?)?"
)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def resolve_placeholder(placeholder: str, now: datetime) -> str:
    """The ISO 8601 time a ``date:...`` placeholder stands for at `now`; ValueError if unknown."""
    m = _NOW.fullmatch(placeholder.strip())
    if m is not None:
        base = now.replace(minute=0, second=0, microsecond=0) if m.group(1) else now
        moment = (base + _shift(m.group(2), m.group(3), m.group(4))).isoformat()
        # a gridpoint forecast's interval: "date:now:hour +2 hours / PT3H"
        return f"{moment}/{m.group(5)}" if m.group(5) else moment
    m = _TODAY.fullmatch(placeholder.strip())
    if m is not None:
        hour, minute, offset_hours = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        zone = timezone(timedelta(hours=offset_hours))
        local_day = now.astimezone(zone).date()
        base = datetime(local_day.year, local_day.month, local_day.day, hour, minute, tzinfo=zone)
        return (base + _shift(m.group(4), m.group(5), m.group(6))).isoformat()
    raise ValueError(f"unknown time placeholder {placeholder!r}")


def with_real_times(raw: bytes, now: datetime) -> bytes:
    """`raw` JSON bytes with every ``"date:..."`` string replaced by a real ISO 8601 time."""
    text = raw.decode("utf-8")
    return _PLACEHOLDER.sub(lambda m: f'"{resolve_placeholder(m.group(1), now)}"', text).encode()


def _shift(sign: str | None, amount: str | None, unit: str | None) -> timedelta:
    if amount is None:
        return timedelta(0)
    seconds = int(amount) * _UNIT_SECONDS[unit]
    return timedelta(seconds=-seconds if sign == "-" else seconds)
