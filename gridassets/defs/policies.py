"""Shared operational settings of assets: the DuckDB pool, retries, owners."""

from datetime import timedelta

import dagster as dg

from gridassets.settings import Settings

# Every asset that writes the DuckDB warehouse runs in this pool; the shipped dagster.yaml gives it
# one slot, because DuckDB allows one writer process per file. The Delta warehouse
# (GRIDASSETS_WAREHOUSE=delta) takes writers of different partitions side by side: no pool. Read
# when the definitions load, so the daemon, the UI and the CLI must share the setting.
DUCKDB_POOL: str | None = "duckdb" if Settings.from_env().backend == "duckdb" else None

OWNERS = ["team:grid-analytics"]

# No Dagster retries: every asset passes `retry_policy=TRANSIENT_RETRY`, and None is no policy.
# The one failure here that passes on its own is the DuckDB lock, and `warehouse.connect` already
# retries it (ten tries, exponential backoff with full jitter). A RetryPolicy retries every
# exception but `dg.Failure(allow_retries=False)` (`op_execution_error_boundary` in
# dagster/_core/execution/plan/utils.py, around the asset body and the IO manager alike), so it
# retried a corrupt file, a full disk and a stale WAL three times as if they were transient; the
# warehouse layer cannot raise dg.Failure without the domain code that imports it importing
# Dagster. Errors in the data raise dg.Failure(allow_retries=False) and fail at once either way.
TRANSIENT_RETRY: dg.RetryPolicy | None = None

# The daily run starts at 01:30 UTC (gridassets/defs/ops/schedules.py): the daily outputs must have
# been materialized between 01:00 and 06:00 UTC each day, the weekly models on Monday between
# 02:00 and 06:00. The UI shows each asset's freshness (needs `freshness: enabled: true` in
# dagster.yaml).
DAILY_FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron="0 6 * * *",
                                          lower_bound_delta=timedelta(hours=5))
WEEKLY_FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron="0 6 * * 1",
                                           lower_bound_delta=timedelta(hours=4))
