"""Storms: one dynamic partition per storm, triggered by alert files dropped into the inbox."""

import dagster as dg

from gridassets.defs.storms.jobs import STORM_ASSETS, storm_job
from gridassets.defs.storms.sensors import weather_alert_sensor

defs = dg.Definitions(assets=list(STORM_ASSETS), sensors=[weather_alert_sensor], jobs=[storm_job])
