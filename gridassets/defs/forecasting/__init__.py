"""Day-ahead load forecasts and their backtest."""

import dagster as dg

from gridassets.defs.forecasting.assets import load_forecast, load_forecast_backtest

defs = dg.Definitions(assets=[load_forecast, load_forecast_backtest])
