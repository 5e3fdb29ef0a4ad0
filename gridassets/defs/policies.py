"""Shared operational settings of assets: the DuckDB pool, retries, owners."""

from datetime import timedelta

import dagster as dg

# Every asset that writes the warehouse runs in this pool; the shipped dagster.yaml gives it one slot,
# because DuckDB allows one writer process per file.
DUCKDB_POOL = "duckdb"

OWNERS = ["team:grid-analytics"]

# For failures that may pass on their own (a file still being copied, the DuckDB lock held past its
# own retries). Errors in the data raise dg.Failure(allow_retries=False) instead: retrying a
# malformed file only delays the message.
TRANSIENT_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# The daily run starts at 01:30 UTC (gridassets/defs/ops/schedules.py): the daily outputs must have
# been materialized between 01:00 and 06:00 UTC each day, the weekly models on Monday between
# 02:00 and 06:00. The UI shows each asset's freshness (needs `freshness: enabled: true` in
# dagster.yaml).
DAILY_FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron="0 6 * * *",
                                          lower_bound_delta=timedelta(hours=5))
WEEKLY_FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron="0 6 * * 1",
                                           lower_bound_delta=timedelta(hours=4))
