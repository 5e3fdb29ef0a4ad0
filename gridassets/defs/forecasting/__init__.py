"""Day-ahead load forecasts and their backtest."""

import dagster as dg

defs = dg.Definitions()
