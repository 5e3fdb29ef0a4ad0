"""Partitions of the graph, defined once. All times are UTC."""

import re
import sys
from datetime import datetime, timezone

import dagster as dg

from gridassets.defs.policies import DEPLOYMENT

# The earliest day a daily partition exists (GRIDASSETS_START_DATE, default 2024-01-01); history
# for the demo and the benchmark starts here. A setting, yet read when the definitions load: Dagster
# binds a partitions definition to an asset when the asset is declared, and the UI, the daemon and
# the CLI each load the code location by importing it, so the start must be known then. It comes
# from the one Settings object read at that moment (policies.DEPLOYMENT), and every asset imports
# its partitions from here, so one process never sees two starts (every process of a deployment
# needs the same value, as for GRIDASSETS_WAREHOUSE). The last daily partition is yesterday (UTC):
# gridassets/window.py says which days exist without Dagster.
HISTORY_START = DEPLOYMENT.start_date.isoformat()

# Partition D covers the UTC day D and exists once that day is over.
daily_partitions = dg.DailyPartitionsDefinition(start_date=HISTORY_START, timezone="UTC")

# Hour H (of the intraday refresh) covers [H, H+1) and exists once that hour is over; its key is
# "YYYY-MM-DD-HH:00".
hourly_partitions = dg.HourlyPartitionsDefinition(start_date=f"{HISTORY_START}-00:00",
                                                  timezone="UTC")

# Week W (starting Monday) holds the model that serves the days of W, trained on data before W;
# end_offset=1 so that the current week's model can be trained as soon as the week starts.
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=HISTORY_START, day_offset=1, timezone="UTC", end_offset=1
)

# One partition per storm (per alert's event), added by the weather-alert sensor.
storm_partitions = dg.DynamicPartitionsDefinition(name="storms")


def _explain_unknown_partition(previous):
    """A sys.excepthook: a partition key outside the time partitions, given to `dagster asset
    materialize`, ends in one line naming the valid range and the option to use instead of
    Dagster's traceback; every other error goes on to `previous`."""

    def hook(exc_type, exc, tb):
        from dagster._core.errors import DagsterInvalidSubsetError

        from gridassets import window

        found = (re.search(r"partition key `([^`]*)`", str(exc))
                 if issubclass(exc_type, DagsterInvalidSubsetError) else None)
        today = datetime.now(timezone.utc).date()
        line = found and window.partition_key_problem(
            found.group(1), window.daily_partitions(DEPLOYMENT.start_date, today))
        if not line:
            return previous(exc_type, exc, tb)
        print(f"gridassets: {line}", file=sys.stderr)

    hook.gridassets = True
    return hook


def explain_unknown_partitions() -> None:
    """Make a partition outside the defined window a one-line error in the process that loads the
    definitions. Dagster's CLI validates `--partition` and `--partition-range` before any of our
    code runs and raises DagsterInvalidSubsetError ("... containing the passed partition key
    `2023-01-01`") without the valid range; it has no hook of its own, so this is Python's hook for
    an uncaught exception, which only ever runs when the process is about to exit with that
    traceback (the UI and the daemon catch their errors and never reach it)."""
    if not getattr(sys.excepthook, "gridassets", False):
        sys.excepthook = _explain_unknown_partition(sys.excepthook)
