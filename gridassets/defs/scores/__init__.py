"""Definitions of this area; definitions.py collects these lists."""

assets: list = []
asset_checks: list = []
sensors: list = []
schedules: list = []
jobs: list = []
