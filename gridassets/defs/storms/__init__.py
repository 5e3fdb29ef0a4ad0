"""Storms: one dynamic partition per storm, triggered by alert files dropped into the inbox."""

from gridassets.defs.storms.jobs import STORM_ASSETS, storm_job
from gridassets.defs.storms.sensors import weather_alert_sensor

assets: list = list(STORM_ASSETS)
asset_checks: list = []
sensors: list = [weather_alert_sensor]
schedules: list = []
jobs: list = [storm_job]
