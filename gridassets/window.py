"""Which days the graph holds and which days `make run` builds: plain date arithmetic, with
"today" passed in (the commands read the clock once, at their edge).

Daily partitions run from the first day (GRIDASSETS_START_DATE) to yesterday (UTC): partition D
covers the UTC day D and exists once that day is over. Weekly model partitions start on the first
Monday on or after the first day and run to the current week's Monday. `make run` builds the nine
months up to yesterday, so that its list is yesterday's and a storm alert dropped now is scored
with yesterday's circuit state.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

# Calendar months of history `make run` builds by default: enough for the weekly models' trailing
# training windows and holdouts, and a few minutes on two cores.
DEMO_MONTHS = 9


class WindowError(ValueError):
    """A window that is not all inside the defined partitions; the message is one line that names
    the valid range and the command to use."""


@dataclass(frozen=True)
class Days:
    """The defined daily partitions: first..last, inclusive."""

    first: date
    last: date

    def __contains__(self, day: date) -> bool:
        return self.first <= day <= self.last

    def __str__(self) -> str:
        return f"{self.first}..{self.last}"


def daily_partitions(first: date, today: date) -> Days:
    """The daily partitions that exist on `today` (UTC) when they start on `first`."""
    return Days(first, today - timedelta(days=1))


def first_monday(first: date) -> date:
    """The first weekly model partition: the first Monday on or after `first`."""
    return first + timedelta(days=-first.weekday() % 7)


def months_before(day: date, months: int) -> date:
    """The same day of the month `months` calendar months earlier (the month's last day when it
    is shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def demo_window(today: date, months: int = DEMO_MONTHS) -> tuple[date, date]:
    """`make run`'s default window: the `months` calendar months up to yesterday (UTC), e.g.
    2026-03-07..2026-12-06 on 2026-12-07."""
    end = today - timedelta(days=1)
    return months_before(today, months), end


def run_window(start: date | None, end: date | None, score_days: int, first_day: date,
               today: date) -> tuple[date, date, date]:
    """The window `run` builds on `today` (UTC): (history start, end, first daily list).

    Unset, the end is yesterday and the start DEMO_MONTHS calendar months before (not before the
    first daily partition, `first_day`). Raises WindowError, in one line that names the
    valid range and the command to use, for days outside the partitions."""
    days = daily_partitions(first_day, today)
    end = end or days.last
    start = start or max(months_before(end + timedelta(days=1), DEMO_MONTHS), days.first)
    score_start = max(start, end - timedelta(days=score_days - 1))
    check_run_window(start, end, score_start, days)
    return start, end, score_start


def check_run_window(start: date, end: date, score_start: date, days: Days) -> None:
    """Raise WindowError unless `python -m gridassets run` can build [start, end] with its weekly
    models from the week of `score_start`: every day a daily partition, that week a weekly one."""
    setting = f"GRIDASSETS_START_DATE={days.first}"
    if days.last < days.first:
        raise WindowError(
            f"no daily partition exists yet: they run from {setting} to yesterday (UTC), "
            f"{days.last}; set GRIDASSETS_START_DATE to a day before today")
    if start in days and end in days:
        week = score_start - timedelta(days=score_start.weekday())
        if week >= first_monday(days.first):
            return
        suggested = first_monday(days.first)
        raise WindowError(
            f"--start {start} leaves the first list's weekly model in the week of {week}, before "
            f"the first weekly partition {suggested} ({setting}); use {_window(suggested, end)}")
    outside = [f"--{name} {day}" for name, day in (("start", start), ("end", end))
               if day not in days]
    bad = " and ".join(outside) + (" is" if len(outside) == 1 else " are")
    valid_start = min(max(start, days.first), days.last)
    valid_end = max(min(end, days.last), valid_start)
    earlier = (f", or define earlier days with GRIDASSETS_START_DATE={start}"
               if start < days.first else "")
    raise WindowError(
        f"{bad} outside the daily partitions {days} ({setting} to yesterday, UTC); use "
        f"{_window(valid_start, valid_end)}{earlier}")


def _window(start: date, end: date) -> str:
    return f"--start {start} --end {end} (make run START={start} END={end})"


def partition_key_problem(key: str, days: Days) -> str | None:
    """One line for a partition key outside the time partitions (daily `YYYY-MM-DD`, weekly
    Monday `YYYY-MM-DD`, hourly `YYYY-MM-DD-HH:MM`), or None when it is inside them (or not a
    time key) and something else made it unknown."""
    try:
        day = date.fromisoformat(key[:10])
    except ValueError:
        return None
    if len(key) != 10 and not (len(key) == 16 and key[10] == "-"):
        return None
    if day in days or (len(key) == 16 and day == days.last + timedelta(days=1)):
        return None  # inside, or today's hours: some other reason made Dagster refuse it
    near = str(days.first if day < days.first else days.last)
    if len(key) == 16:
        near += "-00:00" if day < days.first else "-23:00"
    return (f"partition {key} is outside the daily partitions {days} (GRIDASSETS_START_DATE="
            f"{days.first} to yesterday, UTC; weekly: Mondays from {first_monday(days.first)}); "
            f"use a day in that range, e.g. --partition {near}"
            + (f", or set GRIDASSETS_START_DATE={day} to define earlier days"
               if day < days.first else ""))
