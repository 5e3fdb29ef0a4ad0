"""Raw daily tables."""

from gridassets.defs.raw.assets import raw_assets

assets = list(raw_assets)
asset_checks: list = []
sensors: list = []
schedules: list = []
jobs: list = []
