"""Weekly models and their registry."""

from gridassets.defs.models.assets import maintenance_model, outage_model

assets = [maintenance_model, outage_model]
asset_checks: list = []
sensors: list = []
schedules: list = []
jobs: list = []
