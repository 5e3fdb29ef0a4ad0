"""Partitions of the graph, defined once. All times are UTC."""

import dagster as dg

# The earliest day a daily partition exists; history for the demo and the benchmark starts here.
HISTORY_START = "2024-01-01"

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
