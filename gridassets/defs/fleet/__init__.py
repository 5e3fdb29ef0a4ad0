"""The fleet registry."""

from gridassets.defs.fleet.assets import circuits, transformers

assets = [circuits, transformers]
asset_checks: list = []
sensors: list = []
schedules: list = []
jobs: list = []
