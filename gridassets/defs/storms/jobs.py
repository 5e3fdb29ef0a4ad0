"""The storm job: what one alert's run materializes, for one storm partition.

`STORM_ASSETS` is the one place that says which assets a storm run covers: the weather-alert
sensor targets `storm_job`, and the area's __init__ registers the same list. The storm assets that
follow `storm_alerts` (outage risk, crew priorities) are added to it, and nothing else changes.
"""

import dagster as dg

from gridassets.defs.storms.assets import storm_alerts
from gridassets.defs.storms.risk_assets import storm_outage_risk, storm_priority_circuits

# All partitioned by storm_partitions, which the job takes from them.
STORM_ASSETS = [storm_alerts, storm_outage_risk, storm_priority_circuits]

storm_job = dg.define_asset_job(
    name="storm_job",
    selection=dg.AssetSelection.assets(*STORM_ASSETS),
    description="The storm assets of one storm partition, as a weather alert triggers them.",
    # Ahead of every other queued run: the run queue takes higher priorities first. (On Celery
    # the storm steps have workers of their own: the `storms` queue.)
    tags={"dagster/priority": "10"},
)
