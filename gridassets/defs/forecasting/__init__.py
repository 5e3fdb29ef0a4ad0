"""Day-ahead load forecasts and their backtest."""

import dagster as dg

from gridassets.defs.forecasting.assets import load_forecast

defs = dg.Definitions(assets=[load_forecast])
