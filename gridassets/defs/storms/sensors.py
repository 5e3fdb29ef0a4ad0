"""The weather-alert sensor: an alert file dropped into the inbox starts the storm assets.

Each tick takes the complete files of the inbox (see `storage/alert_inbox.py` for the folders,
`domain/storm_messages.py` for the rules), matches their alerts to the zones of our circuits,
stores the accepted messages, adds one dynamic partition per storm and requests one run of
`storm_job` per message. The run key is ``<storm_id>:<message key>``: the same message twice
runs once, and an Update or Cancel (a new message) runs its storm again. The cursor holds only
file names with their sizes and modification times; the tick's clock decides which alerts have
expired and which files are old enough to take.

The zones come from the fleet's data source, not the warehouse, so the sensor never waits for the
DuckDB lock; if they cannot be read, the tick takes no file (every alert would look foreign).
"""

from datetime import datetime, timezone

import dagster as dg

from gridassets.defs.partitions import storm_partitions
from gridassets.defs.resources import FleetSource, GridSettings
from gridassets.defs.storms.jobs import storm_job
from gridassets.domain.alerts import printable
from gridassets.domain.landing import LandingError
from gridassets.domain.storm_messages import InboxCursor
from gridassets.storage.alert_inbox import InboxTick, process_inbox

TAG_PREFIX = "gridassets/"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dg.sensor(
    job=storm_job,
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs the storm assets for each weather alert dropped into the alerts inbox.",
)
def weather_alert_sensor(
    context: dg.SensorEvaluationContext, settings: GridSettings, fleet: FleetSource
) -> dg.SensorResult:
    cursor, problem = InboxCursor.parse(context.cursor)
    if problem:
        context.log.warning(printable(problem))
    try:
        zones = fleet.zones()
    except (LandingError, OSError) as e:
        context.log.error(printable(
            f"cannot read the zones of our circuits, so no alert is taken: {e}"))
        return dg.SensorResult(skip_reason=f"zones of our circuits unreadable: {e}",
                               cursor=cursor.serialize())
    if not zones:
        return dg.SensorResult(skip_reason="the fleet has no circuit zones; no alert is taken",
                               cursor=cursor.serialize())

    alerts_root = settings.resolve().alerts_root
    try:
        tick = process_inbox(alerts_root, zones, cursor, utc_now())
    except OSError as e:
        context.log.error(printable(f"cannot use the alerts folder {alerts_root}: {e}"))
        return dg.SensorResult(skip_reason=f"alerts folder unusable: {e}",
                               cursor=cursor.serialize())
    _log(context, tick)

    run_requests = [
        dg.RunRequest(
            run_key=run.run_key,
            partition_key=run.storm_id,
            tags={
                f"{TAG_PREFIX}storm_id": run.storm_id,
                f"{TAG_PREFIX}alert_message": run.run_key.split(":", 1)[1],
                f"{TAG_PREFIX}message_type": run.message_type,
            },
        )
        for run in tick.runs
    ]
    if not run_requests:
        return dg.SensorResult(skip_reason=_skip_reason(tick), cursor=tick.cursor.serialize())
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[storm_partitions.build_add_request(tick.storms)],
        cursor=tick.cursor.serialize(),
    )


def _log(context: dg.SensorEvaluationContext, tick: InboxTick) -> None:
    # Every line goes through `printable`: file names and alert text are untrusted, and a raw
    # newline in them would forge a line of this log.
    for report in tick.files:
        where = f" -> {report.moved_to}" if report.moved_to else ""
        line = printable(f"{report.name}: {report.outcome}{where}: {report.detail}")
        if report.outcome == "rejected":
            context.log.warning(line)
        else:
            context.log.info(line)
    for run in tick.runs:
        context.log.info(printable(
            f"{run.message_type} {run.message_id} ({run.event}) -> storm {run.storm_id}, "
            f"run key {run.run_key}{' (already requested before)' if run.duplicate else ''}"
        ))
    for problem in tick.problems:
        context.log.error(printable(problem))


def _skip_reason(tick: InboxTick) -> str:
    parts = []
    if tick.files:
        parts.append(f"{len(tick.files)} file(s) handled, no alert for our circuits")
    if tick.waiting:
        parts.append(f"{len(tick.waiting)} file(s) still being written")
    if tick.deferred:
        parts.append(f"{tick.deferred} file(s) left for the next tick")
    return "; ".join(parts) or "no new alert file"
