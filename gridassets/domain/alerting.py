"""Run-failure alerts: the record an operator reads when a run fails, and where it is sent.

Nothing here knows Dagster: the failure sensor (gridassets/defs/ops/sensors.py) gathers the facts of
a failed run (its id, job, tags, failed steps and their errors) and these functions turn them into one
`RunFailureAlert`, a JSON line for the alert log, a warehouse row and a webhook payload.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
BACKFILL_TAG = "dagster/backfill"

# Long enough for a landing error naming file, row and column; short enough for a table cell.
ERROR_LIMIT = 2000
# Chat webhooks truncate or refuse long messages.
PAYLOAD_ERROR_LIMIT = 500
WEBHOOK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class StepFailure:
    """One failed step of a run: its key, the assets it was to materialize, and why it failed."""

    step_key: str
    assets: tuple[str, ...]
    error: str


@dataclass(frozen=True)
class RunFailureAlert:
    """What an operator needs to act on a failed run. `failed_at` is naive UTC."""

    run_id: str
    job_name: str
    failed_steps: tuple[str, ...]
    failed_assets: tuple[str, ...]
    partition: str | None
    error: str
    failed_at: datetime
    ui_path: str
    backfill_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job_name": self.job_name,
            "failed_steps": list(self.failed_steps),
            "failed_assets": list(self.failed_assets),
            "partition": self.partition,
            "error": self.error,
            "failed_at": self.failed_at.isoformat(timespec="seconds") + "Z",
            "ui_path": self.ui_path,
            "backfill_id": self.backfill_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunFailureAlert:
        """The inverse of `to_json`. Raises KeyError or ValueError for a record that is not one."""
        return cls(
            run_id=str(data["run_id"]),
            job_name=str(data["job_name"]),
            failed_steps=tuple(data.get("failed_steps") or ()),
            failed_assets=tuple(data.get("failed_assets") or ()),
            partition=data.get("partition"),
            error=str(data.get("error") or ""),
            failed_at=datetime.fromisoformat(str(data["failed_at"]).removesuffix("Z")),
            ui_path=str(data.get("ui_path") or run_ui_path(str(data["run_id"]))),
            backfill_id=data.get("backfill_id"),
        )

    def to_row(self) -> dict[str, Any]:
        """One row of the `run_failures` table (lists as comma-separated text)."""
        return {
            "run_id": self.run_id,
            "job_name": self.job_name,
            "failed_steps": ", ".join(self.failed_steps),
            "failed_assets": ", ".join(self.failed_assets),
            "partition": self.partition,
            "error": self.error,
            "failed_at": self.failed_at,
            "ui_path": self.ui_path,
            "backfill_id": self.backfill_id,
        }


ROW_COLUMNS = ("run_id", "job_name", "failed_steps", "failed_assets", "partition", "error",
               "failed_at", "ui_path", "backfill_id")


def run_ui_path(run_id: str) -> str:
    """The run's page in the Dagster UI, relative to wherever the UI is served."""
    return f"/runs/{run_id}"


def partition_label(tags: Mapping[str, str]) -> str | None:
    """The partition a run covered: `2025-06-01`, a range `2025-06-01...2025-06-07`, or None."""
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG]
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


def error_text(cls_name: str | None, message: str, description: str | None = None) -> str:
    """A readable error: a `dg.Failure`'s own description, else `ErrorClass: message`.

    Dagster prefixes error messages with the exception's module path
    (`dagster._core.definitions.events.Failure: ...`); that path is dropped.
    """
    if description:
        return _truncate(description.strip(), ERROR_LIMIT)
    text = message.strip()
    head, sep, rest = text.partition(": ")
    if sep and cls_name and head.split(".")[-1] == cls_name:
        text = f"{cls_name}: {rest}"
    return _truncate(text, ERROR_LIMIT)


def build_alert(*, run_id: str, job_name: str, tags: Mapping[str, str],
                step_failures: Sequence[StepFailure], run_error: str | None,
                failed_at: datetime, selected_assets: Iterable[str] = ()) -> RunFailureAlert:
    """The alert for a failed run.

    `step_failures` are the run's failed steps, in order; `run_error` is the run-level error (used
    when no step failed, e.g. a run worker that died or a resource that could not start), and
    `selected_assets` the run's asset selection (named when no failed step names an asset).
    `failed_at` may be aware (converted to UTC) or naive UTC.
    """
    steps = tuple(dict.fromkeys(f.step_key for f in step_failures))
    assets = tuple(dict.fromkeys(a for f in step_failures for a in f.assets))
    if not assets and not steps:
        assets = tuple(sorted(set(selected_assets)))
    if step_failures:
        errors = [f"{f.step_key}: {f.error}" if len(step_failures) > 1 else f.error
                  for f in step_failures]
        error = _truncate("\n".join(errors), ERROR_LIMIT)
    else:
        error = _truncate((run_error or "the run failed without a step failure").strip(),
                          ERROR_LIMIT)
    if failed_at.tzinfo is not None:
        failed_at = failed_at.astimezone(timezone.utc).replace(tzinfo=None)
    return RunFailureAlert(
        run_id=run_id, job_name=job_name, failed_steps=steps, failed_assets=assets,
        partition=partition_label(tags), error=error,
        failed_at=failed_at.replace(microsecond=0), ui_path=run_ui_path(run_id),
        backfill_id=tags.get(BACKFILL_TAG) or None,
    )


def summary(alert: RunFailureAlert) -> str:
    """One line for a chat message or a log: what failed, for which partition, why, and where."""
    what = ", ".join(alert.failed_assets or alert.failed_steps) or alert.job_name
    where = f" [{alert.partition}]" if alert.partition else ""
    first_line = alert.error.splitlines()[0] if alert.error else ""
    return (f"gridassets run {alert.run_id[:8]} ({alert.job_name}) failed: {what}{where}: "
            f"{_truncate(first_line, 300)} (see {alert.ui_path})")


def webhook_payload(alert: RunFailureAlert) -> dict[str, Any]:
    """A small JSON body; `text` makes it readable as-is by Slack- and Teams-style webhooks."""
    body = alert.to_json()
    body["error"] = _truncate(alert.error, PAYLOAD_ERROR_LIMIT)
    return {"text": summary(alert), "event": "run_failure", **body}


def append_to_log(path: Path, alert: RunFailureAlert) -> bool:
    """Append the alert as one JSON line to the alert log, unless its run is already there.

    Returns whether a line was written. One `write` on a file opened for appending, so lines from
    concurrent writers do not interleave. Raises OSError when the file cannot be written.
    """
    if any(a.run_id == alert.run_id for a in read_log(path)):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(alert.to_json(), sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return True


def read_log(path: Path) -> list[RunFailureAlert]:
    """Every alert in the log, oldest first; lines that are not alerts are skipped."""
    if not path.exists():
        return []
    alerts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            alerts.append(RunFailureAlert.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return alerts


def post_json(url: str, payload: Mapping[str, Any], timeout: float = WEBHOOK_TIMEOUT_S) -> int:
    """POST `payload` as JSON to `url`; returns the HTTP status.

    Raises ValueError for a URL that is not http(s), urllib.error.URLError (HTTPError for a
    4xx/5xx answer), TimeoutError or OSError.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        # The URL itself is not repeated: webhook URLs often carry their secret token.
        raise ValueError(f"the alert webhook must be an http(s) URL, not {scheme or 'a bare'!s} URL")
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "gridassets-alerts"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (operator's URL)
        return response.status


def redact_url(url: str) -> str:
    """scheme://host[:port]/… — enough to tell which webhook, without the token in its path."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme or '?'}://{parts.hostname or '?'}{port}/…"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
