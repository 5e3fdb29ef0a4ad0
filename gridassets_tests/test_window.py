"""Which days exist and which days `make run` builds (gridassets/window.py), with "today" given,
and GRIDASSETS_START_DATE, the first daily partition."""

from datetime import date, datetime, timezone

import pytest
from dagster._core.definitions.partitions.context import partition_loading_context

from gridassets import window
from gridassets.settings import Settings, SettingsError

VAR = "GRIDASSETS_START_DATE"
FIRST = date(2024, 1, 1)


@pytest.mark.parametrize(("today", "start", "end"), [
    (date(2026, 12, 7), date(2026, 3, 7), date(2026, 12, 6)),
    (date(2025, 7, 1), date(2024, 10, 1), date(2025, 6, 30)),  # the old demo's window
    (date(2026, 1, 1), date(2025, 4, 1), date(2025, 12, 31)),  # across a year
    (date(2026, 11, 30), date(2026, 2, 28), date(2026, 11, 29)),  # no 30 February
])
def test_the_demo_window_is_nine_months_up_to_yesterday(today, start, end):
    assert window.demo_window(today) == (start, end)


def test_run_defaults_to_the_demo_window_and_takes_either_end():
    today = date(2026, 12, 7)
    assert window.run_window(None, None, 56, FIRST, today) == (
        date(2026, 3, 7), date(2026, 12, 6), date(2026, 10, 12))
    assert window.run_window(date(2026, 11, 1), None, 56, FIRST, today)[:2] == (
        date(2026, 11, 1), date(2026, 12, 6))
    assert window.run_window(None, date(2025, 6, 30), 14, FIRST, today) == (
        date(2024, 10, 1), date(2025, 6, 30), date(2025, 6, 17))


def test_the_default_start_is_not_before_the_first_partition():
    start, end, _ = window.run_window(None, None, 56, date(2026, 6, 1), date(2026, 12, 7))
    assert (start, end) == (date(2026, 6, 1), date(2026, 12, 6))


@pytest.mark.parametrize(("start", "end", "words"), [
    (date(2023, 1, 1), date(2023, 2, 1),
     "--start 2023-01-01 and --end 2023-02-01 are outside the daily partitions "
     "2024-01-01..2026-12-06 (GRIDASSETS_START_DATE=2024-01-01 to yesterday, UTC); use "
     "--start 2024-01-01 --end 2024-01-01 (make run START=2024-01-01 END=2024-01-01), or define "
     "earlier days with GRIDASSETS_START_DATE=2023-01-01"),
    (date(2023, 1, 1), date(2025, 6, 30),
     "--start 2023-01-01 is outside the daily partitions 2024-01-01..2026-12-06 "
     "(GRIDASSETS_START_DATE=2024-01-01 to yesterday, UTC); use --start 2024-01-01 --end "
     "2025-06-30 (make run START=2024-01-01 END=2025-06-30), or define earlier days with "
     "GRIDASSETS_START_DATE=2023-01-01"),
    (date(2026, 3, 1), date(2026, 12, 7),  # today's partition does not exist until tomorrow
     "--end 2026-12-07 is outside the daily partitions 2024-01-01..2026-12-06 "
     "(GRIDASSETS_START_DATE=2024-01-01 to yesterday, UTC); use --start 2026-03-01 --end "
     "2026-12-06 (make run START=2026-03-01 END=2026-12-06)"),
])
def test_a_window_outside_the_partitions_is_one_line_with_the_range_and_command(start, end, words):
    with pytest.raises(window.WindowError) as error:
        window.run_window(start, end, 56, FIRST, date(2026, 12, 7))
    assert str(error.value) == words
    assert "\n" not in words


def test_the_first_lists_need_a_weekly_model_partition():
    # Partitions from a Wednesday: the first weekly model is the Monday after.
    with pytest.raises(window.WindowError) as error:
        window.run_window(date(2025, 1, 1), date(2025, 1, 20), 56, date(2025, 1, 1), date(2026, 12, 7))
    assert "first weekly partition 2025-01-06" in str(error.value)
    assert "--start 2025-01-06 --end 2025-01-20" in str(error.value)
    assert window.run_window(date(2025, 1, 6), date(2025, 1, 20), 56, date(2025, 1, 1),
                      date(2026, 12, 7))[2] == date(2025, 1, 6)


@pytest.mark.parametrize(("key", "words"), [
    ("2023-01-01", "partition 2023-01-01 is outside the daily partitions 2024-01-01..2026-12-06 "
                   "(GRIDASSETS_START_DATE=2024-01-01 to yesterday, UTC; weekly: Mondays from "
                   "2024-01-01); use a day in that range, e.g. --partition 2024-01-01, or set "
                   "GRIDASSETS_START_DATE=2023-01-01 to define earlier days"),
    ("2027-01-04", "partition 2027-01-04 is outside the daily partitions 2024-01-01..2026-12-06 "
                   "(GRIDASSETS_START_DATE=2024-01-01 to yesterday, UTC; weekly: Mondays from "
                   "2024-01-01); use a day in that range, e.g. --partition 2026-12-06"),
    ("2023-06-01-05:00", "partition 2023-06-01-05:00 is outside the daily partitions "
                         "2024-01-01..2026-12-06 (GRIDASSETS_START_DATE=2024-01-01 to yesterday, "
                         "UTC; weekly: Mondays from 2024-01-01); use a day in that range, e.g. "
                         "--partition 2024-01-01-00:00, or set GRIDASSETS_START_DATE=2023-06-01 "
                         "to define earlier days"),
    ("2025-06-01", None),  # inside: something else made it unknown (a weekly asset's Sunday)
    ("2026-12-07-03:00", None),  # today's hours are the hourly partitions' own business
    ("storm-42", None),
])
def test_an_unknown_partition_key_is_explained_only_when_outside_the_days(key, words):
    assert window.partition_key_problem(key, window.daily_partitions(FIRST, date(2026, 12, 7))) \
        == words


@pytest.mark.parametrize("now", [datetime(2026, 12, 7, 0, 0, 1, tzinfo=timezone.utc),
                                 datetime(2026, 12, 6, 23, 59, tzinfo=timezone.utc),
                                 datetime(2025, 3, 5, 12, tzinfo=timezone.utc)])
def test_the_days_agree_with_the_graphs_partitions(now):
    from gridassets.defs.partitions import (
        HISTORY_START, daily_partitions, hourly_partitions, weekly_partitions)

    first = date.fromisoformat(HISTORY_START)
    days = window.daily_partitions(first, now.date())
    with partition_loading_context(effective_dt=now):
        assert daily_partitions.get_first_partition_key() == str(days.first)
        assert daily_partitions.get_last_partition_key() == str(days.last)
        assert weekly_partitions.get_first_partition_key() == str(window.first_monday(first))
        assert hourly_partitions.get_first_partition_key() == f"{days.first}-00:00"


def test_the_start_date_setting_defaults_to_2024_and_is_read_as_a_date():
    assert Settings.from_env({}).start_date == FIRST
    assert Settings.from_env({VAR: " 2025-03-05 "}).start_date == date(2025, 3, 5)


@pytest.mark.parametrize("raw", ["2024-13-01", "yesterday", "01/02/2024"])
def test_a_bad_start_date_names_the_variable(raw):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({VAR: raw})
    assert str(error.value) == f"{VAR} must be a date (YYYY-MM-DD); got {raw!r}"
