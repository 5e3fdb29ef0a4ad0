"""Telemetry integrity: device signals, the anomaly model, and the daily verdict."""

import dagster as dg

from gridassets.defs.integrity.assets import integrity_model, telemetry_integrity, telemetry_signals

defs = dg.Definitions(assets=[telemetry_signals, integrity_model, telemetry_integrity])
