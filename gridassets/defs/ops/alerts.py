"""Where a run-failure alert goes: the alert log, the warehouse table, and the webhook.

The JSON-lines log `<data dir>/ops/alerts.log` is the source of truth; it is written first. The
`ops.run_failures` table is a queryable copy: when a backfill holds the DuckDB file longer than a
short retry, the row is skipped for now and the next alert that reaches the warehouse copies every
logged alert the table lacks. The webhook is best effort: its failures are logged, never raised.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from gridassets import warehouse
from gridassets.domain import alerting
from gridassets.domain.alerting import RunFailureAlert
from gridassets.settings import Settings
from gridassets.storage import backend

TABLE = "run_failures"
# The sensor's tick has a 60 s budget and other failed runs may be waiting: give up on the lock
# after a few seconds (the delays grow 0.2, 0.4, 0.8, ... s with jitter; at most ~6 s in all).
TABLE_LOCK_ATTEMPTS = 6


def alert_log_path(settings: Settings) -> Path:
    return settings.ops_dir / "alerts.log"


@dataclass(frozen=True)
class Delivery:
    """What became of one alert."""

    logged: bool  # a new line in the alert log (False: it was there already, or the write failed)
    rows_written: int  # rows copied to the table (this alert and any the table lacked)
    table_error: str | None
    webhook_status: int | None  # HTTP status, None when no webhook is set or it failed
    webhook_error: str | None
    log_error: str | None


def write_table(store: backend.Warehouse, alerts: list[RunFailureAlert]) -> int:
    """Copy the alerts whose run the table lacks into `ops.run_failures`; returns how many.

    Raises warehouse.WarehouseLockedError when the DuckDB file stays locked, duckdb.Error
    otherwise.
    """
    if not alerts:
        return 0
    latest = {a.run_id: a for a in alerts}  # one row per run, the last record wins
    frame = pd.DataFrame([a.to_row() for a in latest.values()], columns=list(alerting.ROW_COLUMNS))
    frame["failed_at"] = pd.to_datetime(frame["failed_at"])
    return store.insert_missing(TABLE, frame, key="run_id")


def _store(settings: Settings) -> backend.Warehouse:
    store = backend.open_warehouse(settings)
    if isinstance(store, backend.DuckDBWarehouse):
        store.lock_attempts = TABLE_LOCK_ATTEMPTS
    return store


def deliver(alert: RunFailureAlert, settings: Settings, log: logging.Logger) -> Delivery:
    """Log, store and (when a webhook is set) post one alert. Never raises for the table or the
    webhook; the caller decides what a failed log write means (see `Delivery.log_error`)."""
    log_path = alert_log_path(settings)
    logged, log_error = False, None
    try:
        logged = alerting.append_to_log(log_path, alert)
    except OSError as exc:
        log_error = f"could not append to {log_path}: {exc}"
        log.error(f"Run failure alert for {alert.run_id}: {log_error}")

    rows, table_error = 0, None
    try:
        # Everything logged so far, so that rows skipped while the file was locked catch up.
        backlog = [a for a in alerting.read_log(log_path) if a.run_id != alert.run_id]
        rows = write_table(_store(settings), [*backlog, alert])
    except warehouse.WarehouseLockedError:
        table_error = (f"{settings.warehouse} stayed locked by another process (a running "
                       f"backfill?) through {TABLE_LOCK_ATTEMPTS} tries")
    except (duckdb.Error, OSError, ValueError) as exc:
        table_error = f"{type(exc).__name__}: {exc}"
    if table_error:
        where = f"the alert log {log_path} has it" if log_error is None else "it is NOT logged either"
        log.warning(f"Run failure alert for {alert.run_id} not written to "
                    f"{warehouse.qualified(TABLE)}: {table_error}; {where}, and the table catches "
                    "up at the next alert that reaches the warehouse.")

    status, webhook_error = None, None
    if settings.alert_webhook:
        target = alerting.redact_url(settings.alert_webhook)
        try:
            status = alerting.post_json(settings.alert_webhook, alerting.webhook_payload(alert))
            log.info(f"Run failure alert for {alert.run_id} posted to {target} (HTTP {status}).")
        except Exception as exc:  # noqa: BLE001 - a broken webhook must never stop the alert
            webhook_error = f"{type(exc).__name__}: {exc}"
            log.warning(f"Run failure alert for {alert.run_id}: webhook {target} failed: "
                        f"{webhook_error}")
    return Delivery(logged=logged, rows_written=rows, table_error=table_error,
                    webhook_status=status, webhook_error=webhook_error, log_error=log_error)
