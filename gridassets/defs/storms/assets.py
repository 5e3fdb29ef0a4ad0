"""The storm assets: one dynamic partition per storm, materialized by the weather-alert sensor.

`storm_alerts` reads the storm's folder of the message store (written by the sensor before it
requests the run), so a storm can also be re-materialized from the UI with no config. The storm
assets downstream (outage risk, crew priorities) read the conditions that apply per zone from it
with `storm_messages.current_zone_conditions`.
"""

from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from gridassets.defs.metadata import frame_schema, preview
from gridassets.defs.partitions import storm_partitions
from gridassets.defs.policies import DUCKDB_POOL, OWNERS, TRANSIENT_RETRY, storm_step
from gridassets.defs.resources import GridSettings
from gridassets.domain import storm_messages
from gridassets.storage import alert_store

PREVIEW_COLUMNS = ["message_type", "vtec_action", "event", "sent", "ends", "zones",
                   "max_wind_gust_mph", "is_current", "current_zones"]

ALERTS_VALID = dg.AssetCheckSpec(
    "alerts_valid", asset="storm_alerts", blocking=True,
    description="The storm has one status, every message names a zone, and no message's window "
                "ends before it starts. Checked before the write: a failure writes nothing.",
)


@dg.asset(
    partitions_def=storm_partitions,
    group_name="storms",
    kinds={"duckdb", "pandas"},
    owners=OWNERS,
    pool=DUCKDB_POOL,
    op_tags=storm_step(1),
    retry_policy=TRANSIENT_RETRY,
    metadata={"schema": "storms", "partition_expr": "storm_id"},
    code_version="1",
    check_specs=[ALERTS_VALID],
)
def storm_alerts(context: dg.AssetExecutionContext, settings: GridSettings):
    """Every weather alert received for one storm, with the wind and rain forecast in force in each zone and whether the storm is active, cancelled or expired."""
    storm_id = context.partition_key
    alerts_root = settings.resolve().alerts_root
    try:
        folder = alert_store.storm_folder(alerts_root, storm_id)
        messages = alert_store.load_storm_messages(folder)
    except (ValueError, OSError) as e:  # StoredMessageError is a ValueError
        raise dg.Failure(description=f"storm {storm_id!r}: {e}", allow_retries=False) from e
    if not messages:
        raise dg.Failure(
            description=(
                f"storm {storm_id}: no alert messages in {folder}. The weather-alert sensor writes "
                "them there before it requests a run; drop the alert file into the inbox again."
            ),
            allow_retries=False,
            metadata={"folder": dg.MetadataValue.path(str(folder))},
        )
    frame = storm_messages.storm_alerts_frame(messages, as_of=datetime.now(timezone.utc))
    current = frame[frame["is_current"]]
    status = str(frame["status"].iloc[0])
    gust = float(current["max_wind_gust_mph"].max()) if len(current) else float("nan")
    current_zones = sorted({z for zs in current["current_zones"] for z in zs.split(",") if z})
    # each zone's gust is that of the message (segment) with the last word in it
    gust_by_zone = {str(r.zone): float(r.max_wind_gust_mph) for r in
                    storm_messages.current_zone_conditions(frame).itertuples(index=False)}
    context.log.info(f"storm {storm_id}: {len(frame)} message(s), {status}, "
                     f"current zones {', '.join(current_zones) or 'none'}")
    problems = storm_messages.alert_problems(frame)
    # Judged before the write; reported after it when it passed, so that the result attaches to
    # the new materialization.
    check = dg.AssetCheckResult(
        check_name=ALERTS_VALID.name, passed=not problems,
        description="; ".join(problems) or f"{len(frame)} message(s), {status}",
        metadata={"messages": len(frame), "status": status},
    )
    if problems:
        yield check
        raise dg.Failure(description=f"storm {storm_id}: check {ALERTS_VALID.name} failed, "
                                     f"nothing written: {'; '.join(problems)}",
                         allow_retries=False)
    yield dg.Output(frame, metadata={
        "status": status,
        "event": ", ".join(dict.fromkeys(frame["event"].astype(str))),
        "zones": ", ".join(current_zones) or "(none current)",
        "max_wind_gust_mph": dg.MetadataValue.float(gust),
        "gust_mph_by_zone": dg.MetadataValue.json(gust_by_zone),
        "messages": len(frame),
        "folder": dg.MetadataValue.path(str(folder)),
        "dagster/column_schema": frame_schema(frame, storm_messages.STORM_ALERT_DESCRIPTIONS),
        "preview": preview(frame[PREVIEW_COLUMNS]),
    })
    yield check
