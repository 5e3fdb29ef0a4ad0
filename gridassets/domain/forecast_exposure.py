"""The week ahead as the outage model sees it: each circuit's exposure on each of the seven days a
weather forecast covers, over several draws of the forecast's own past errors.

A forecast is not the weather: a storm forecast at 60 mph may come at 45 or 75, or not at all, and
a quiet forecast may be wrong. So the outage model is run over DRAWS versions of the week. Draw j
takes one past issue day p_j (among the last ERROR_HISTORY_DAYS with every lead day forecast and
observed) and applies, to each zone and lead day, the errors that past forecast turned out to have
for that zone at the same lead: the observed over forecast peak gust (scaling the day's hourly
wind and gusts), the rain missed or invented, the temperature bias. Taking one past day for all
zones keeps the errors' spread over the region (a storm missed everywhere at once) and their
tails (missed storms, storms that never came) as they really were: nothing is assumed about the
error's shape. The draws are chosen by a generator seeded with the issue day, so a day scores the
same every time.

With fewer than MIN_ERROR_DAYS past forecasts to learn from, the week is the forecast as issued
(one draw) and `spread` says so.

The features are the outage model's weather features of `gridassets.storage.features` computed
from forecast hours: peak gust, maximum wind, hours of gust over 40 and 55 mph, the day's rain and
the rain of the last 72 hours (observed rain for days up to the issue day), minimum and maximum
temperature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridassets.domain.features import GUST_THRESHOLDS_MPH

DAYS = 7
DRAWS = 20
ERROR_HISTORY_DAYS = 90
MIN_ERROR_DAYS = 14
GUST_RATIO_RANGE = (0.25, 4.0)
WEATHER_FEATURES = ["peak_gust_mph", "max_wind_mph", "hours_gust_over_40", "hours_gust_over_55",
                    "precip_mm", "precip_72h_mm", "temp_min_c", "temp_max_c"]


@dataclass(frozen=True)
class WeekAhead:
    """rows: one per circuit, forecast day and draw (circuit_id, day, draw, the weather features
    and the circuit's state as of the issue day). summary: per circuit, the forecast's highlights
    for a reason (peak gust, its hour, the week's rain). spread: how the draws were made."""

    rows: pd.DataFrame
    summary: pd.DataFrame
    spread: str
    draws: int


def week_ahead(hourly: pd.DataFrame, errors: pd.DataFrame, recent_rain: pd.DataFrame,
               today: pd.DataFrame, state_columns: list[str], issue: pd.Timestamp) -> WeekAhead:
    """`hourly`: the forecast issued at the end of `issue` (zone, valid_ts, temp_c, wind_speed_mph,
    wind_gust_mph, precip_mm), the seven days after it whole for every zone it covers.
    `errors`: `storage.weather.forecast_errors` of past issue days. `recent_rain`: zone, date,
    precip_mm observed on the issue day and the day before. `today`: the circuits' exposure rows
    of the issue day (circuit_id, zone and `state_columns`). Circuits of zones the forecast does
    not cover are left out (the caller falls back for them)."""
    issue = pd.Timestamp(issue).normalize()
    zones = sorted(set(hourly["zone"]))
    nz = len(zones)
    grid = hourly.assign(_z=hourly["zone"].map({z: i for i, z in enumerate(zones)}),
                         _h=((hourly["valid_ts"] - issue) / pd.Timedelta(hours=1) - 24)
                         .astype(int))
    shape = (nz, DAYS * 24)
    values = {}
    for col in ("temp_c", "wind_speed_mph", "wind_gust_mph", "precip_mm"):
        a = np.full(shape, np.nan)
        a[grid["_z"].to_numpy(), grid["_h"].to_numpy()] = grid[col].to_numpy(float)
        values[col] = a

    past = _usable_history(errors, zones, issue)
    if len(past) >= MIN_ERROR_DAYS:
        rng = np.random.default_rng(issue.toordinal())
        picked = rng.choice(past, size=DRAWS, replace=len(past) < DRAWS)
        table = errors.set_index(["issue_date", "zone", "lead_day"])
        idx = pd.MultiIndex.from_product([picked, zones, range(1, DAYS + 1)])
        e = table.reindex(idx)
        ratio = e["gust_ratio"].to_numpy().reshape(DRAWS, nz, DAYS).clip(*GUST_RATIO_RANGE)
        rain = e["precip_diff_mm"].to_numpy().reshape(DRAWS, nz, DAYS)
        temp = e["temp_diff_c"].to_numpy().reshape(DRAWS, nz, DAYS)
        spread = (f"{DRAWS} draws of the errors of past forecasts ({len(past)} issue days "
                  f"{min(past):%Y-%m-%d}..{max(past):%Y-%m-%d})")
    else:
        ratio, rain, temp = np.ones((1, nz, DAYS)), np.zeros((1, nz, DAYS)), np.zeros((1, nz, DAYS))
        spread = (f"the forecast as issued: {len(past)} past forecast(s) with their weather "
                  f"observed, fewer than the {MIN_ERROR_DAYS} its errors are learned from")
    n = ratio.shape[0]

    hours = lambda a: np.repeat(a, 24, axis=2)  # noqa: E731  (draws, zones, days) -> hours
    gust = values["wind_gust_mph"][None] * hours(ratio)
    wind = values["wind_speed_mph"][None] * hours(ratio)
    t = values["temp_c"][None] + hours(temp)
    by_day = lambda a: a.reshape(n, nz, DAYS, 24)  # noqa: E731
    day_rain = np.maximum(by_day(np.broadcast_to(values["precip_mm"][None], gust.shape))
                          .sum(axis=3) + rain, 0.0)
    before = (recent_rain.assign(date=pd.to_datetime(recent_rain["date"]))
              .pivot_table(index="zone", columns="date", values="precip_mm", aggfunc="sum")
              .reindex(index=zones, columns=[issue - pd.Timedelta(days=1), issue]).fillna(0.0)
              .to_numpy())
    chain = np.concatenate([np.broadcast_to(before[None], (n, nz, 2)), day_rain], axis=2)
    rain_72h = chain[:, :, 2:] + chain[:, :, 1:-1] + chain[:, :, :-2]
    g1, g2 = GUST_THRESHOLDS_MPH
    feats = {
        "peak_gust_mph": by_day(gust).max(axis=3),
        "max_wind_mph": by_day(wind).max(axis=3),
        f"hours_gust_over_{g1}": (by_day(gust) >= g1).sum(axis=3).astype(float),
        f"hours_gust_over_{g2}": (by_day(gust) >= g2).sum(axis=3).astype(float),
        "precip_mm": day_rain,
        "precip_72h_mm": rain_72h,
        "temp_min_c": by_day(t).min(axis=3),
        "temp_max_c": by_day(t).max(axis=3),
    }
    days = [issue + pd.Timedelta(days=k) for k in range(1, DAYS + 1)]
    weather = pd.DataFrame({
        "zone": np.tile(np.repeat(zones, DAYS), n),
        "day": np.tile(np.tile(days, nz), n),
        "draw": np.repeat(np.arange(n), nz * DAYS),
        **{k: v.reshape(-1) for k, v in feats.items()},
    })
    state = today[["circuit_id", "zone", *state_columns]]
    rows = state.merge(weather, on="zone", how="inner")
    return WeekAhead(rows=rows, summary=_summary(hourly, today, values, zones, issue),
                     spread=spread, draws=n)


def _usable_history(errors: pd.DataFrame, zones: list[str], issue: pd.Timestamp) -> list:
    """Past issue days, up to ERROR_HISTORY_DAYS back, whose every zone and lead day has its
    error known (so the forecast's valid days ended before the issue day ended)."""
    if errors.empty:
        return []
    e = errors[(pd.to_datetime(errors["issue_date"]) < issue - pd.Timedelta(days=DAYS - 1))
               & (pd.to_datetime(errors["issue_date"])
                  >= issue - pd.Timedelta(days=ERROR_HISTORY_DAYS + DAYS))
               & errors["zone"].isin(zones) & errors["gust_ratio"].notna()]
    counts = e.groupby("issue_date").size()
    return sorted(counts.index[counts == len(zones) * DAYS])


def _summary(hourly: pd.DataFrame, today: pd.DataFrame, values: dict, zones: list[str],
             issue: pd.Timestamp) -> pd.DataFrame:
    gust = values["wind_gust_mph"]
    at = np.nanargmax(np.where(np.isnan(gust), -np.inf, gust), axis=1)
    per_zone = pd.DataFrame({
        "zone": zones,
        "forecast_peak_gust_mph": gust[np.arange(len(zones)), at],
        "forecast_peak_gust_ts": issue + pd.Timedelta(days=1) + pd.to_timedelta(at, unit="h"),
        "forecast_precip_mm_7d": np.nansum(values["precip_mm"], axis=1),
    })
    return today[["circuit_id", "zone"]].merge(per_zone, on="zone", how="inner").drop(
        columns="zone")
