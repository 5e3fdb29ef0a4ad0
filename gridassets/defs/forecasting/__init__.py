"""Day-ahead load forecasts and their backtest; the hourly intraday refresh."""

import dagster as dg

from gridassets.defs.forecasting.assets import load_forecast, load_forecast_backtest
from gridassets.defs.forecasting.intraday import (
    intraday_job,
    intraday_load_forecast,
    intraday_schedule,
)

defs = dg.Definitions(assets=[load_forecast, load_forecast_backtest, intraday_load_forecast],
                      jobs=[intraday_job], schedules=[intraday_schedule])
