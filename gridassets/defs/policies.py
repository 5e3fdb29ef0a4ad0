"""Shared operational settings of assets: the DuckDB pool, retries, owners."""

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
