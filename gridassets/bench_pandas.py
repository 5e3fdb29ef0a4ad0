"""The transformer health features in plain pandas: a yardstick for the DuckDB SQL of
`gridassets.storage.features`, used by the benchmark (`make bench`) and nowhere else.

Same definitions as the SQL, written the way a pandas script would:

- `transformer_daily_stats`: per transformer-day aggregates of hourly telemetry, the zone's air
  temperature standing in for a missing ambient reading;
- `transformer_health_features`: trailing 7- and 30-day windows (calendar days, the day itself
  included) over those stats, with age, rating and days since the unit was last replaced.

`compare` checks two frames for equality within a tolerance and says where they differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from gridassets.domain.features import (
    LOSS_RATIO_R,
    OIL_EXPONENT_N,
    RECENT_DAYS,
    WINDOW_DAYS,
)

_DAY_ZERO = pd.Timestamp("2000-01-01")


def transformer_daily_stats(telemetry: pd.DataFrame, transformers: pd.DataFrame,
                            circuits: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """Per transformer-day aggregates of hourly `telemetry` (one row per transformer and day present).

    Takes the raw tables as stored in the warehouse; returns the columns of
    `storage.features.transformer_daily_stats`, sorted by transformer and day.
    """
    zone_of = transformers[["transformer_id", "circuit_id"]].merge(
        circuits[["circuit_id", "zone"]], on="circuit_id", how="left")[["transformer_id", "zone"]]
    tel = telemetry.merge(zone_of, on="transformer_id", how="left").merge(
        weather[["zone", "timestamp", "temp_c"]], on=["zone", "timestamp"], how="left")
    ambient = tel["ambient_temp_c"].fillna(tel["temp_c"])
    load = tel["load_pct"]
    frame = pd.DataFrame({
        "transformer_id": tel["transformer_id"],
        "date": tel["timestamp"].dt.normalize(),
        "load_pct": load,
        "overload": (load > 100).astype("int64"),
        "oil_temp_c": tel["oil_temp_c"],
        "ambient_c": ambient,
        "rise": tel["oil_temp_c"] - ambient,
        "load_sq": (load / 100) ** 2,
        "hot_spot_temp_c": tel["hot_spot_temp_c"],
        "h2_ppm": tel["h2_ppm"],
        "c2h2_ppm": tel["c2h2_ppm"],
        "c2h4_ppm": tel["c2h4_ppm"],
    })
    g = frame.groupby(["transformer_id", "date"], sort=True)
    out = g.agg(
        hours=("load_pct", "size"),
        load_mean_pct=("load_pct", "mean"),
        load_peak_pct=("load_pct", "max"),
        overload_hours=("overload", "sum"),
        oil_mean_c=("oil_temp_c", "mean"),
        oil_max_c=("oil_temp_c", "max"),
        ambient_mean_c=("ambient_c", "mean"),
        oil_rise_mean_c=("rise", "mean"),
        load_sq_mean=("load_sq", "mean"),
        hot_spot_max_c=("hot_spot_temp_c", "max"),
        h2_ppm=("h2_ppm", "mean"),
        c2h2_ppm=("c2h2_ppm", "mean"),
        c2h4_ppm=("c2h4_ppm", "mean"),
    ).reset_index()
    expected_rise = ((LOSS_RATIO_R * out.pop("load_sq_mean") + 1) / (LOSS_RATIO_R + 1)) ** OIL_EXPONENT_N
    out.insert(out.columns.get_loc("oil_rise_mean_c") + 1, "thermal_index_c",
               out["oil_rise_mean_c"] / expected_rise)
    return out


def _slope(y: pd.Series, x: pd.Series, keys: pd.Series) -> pd.Series:
    """Least-squares slope of y on x per key over the rows where both are present (NaN when x
    does not vary), like SQL's regr_slope."""
    both = y.notna() & x.notna()
    frame = pd.DataFrame({"k": keys[both], "x": x[both].astype(float), "y": y[both].astype(float)})
    frame["x"] -= frame.groupby("k")["x"].transform("mean")
    frame["y"] -= frame.groupby("k")["y"].transform("mean")
    frame["xy"] = frame["x"] * frame["y"]
    frame["xx"] = frame["x"] * frame["x"]
    sums = frame.groupby("k")[["xy", "xx"]].sum()
    return (sums["xy"] / sums["xx"].where(sums["xx"] > 0)).astype(float)


def transformer_health_features(stats: pd.DataFrame, transformers: pd.DataFrame,
                                failures: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """Trailing-window health features per transformer-day for the days in [start, end).

    `stats` must hold the daily stats of at least [start - 29 days, end); `failures` the
    transformer failures up to `end`. Returns the columns of `features.transformer_health_features`.
    """
    stats = stats.copy()
    stats["date"] = pd.to_datetime(stats["date"])
    stats["day_no"] = (stats["date"] - _DAY_ZERO).dt.days
    failures = failures[["transformer_id", "failed_at"]].copy()
    failures["failed_day"] = pd.to_datetime(failures["failed_at"]).dt.normalize()
    registry = transformers[["transformer_id", "circuit_id", "rating_kva", "install_year"]]
    parts = []
    for offset in range((end - start).days):
        day = pd.Timestamp(start + timedelta(days=offset))
        today = stats.loc[stats["date"] == day, ["transformer_id"]]
        if today.empty:
            continue
        w30 = stats[(stats["date"] > day - pd.Timedelta(days=WINDOW_DAYS))
                    & (stats["date"] <= day)]
        w30 = w30[w30["transformer_id"].isin(today["transformer_id"])]
        w7 = w30[w30["date"] > day - pd.Timedelta(days=RECENT_DAYS)]
        g30, g7 = w30.groupby("transformer_id"), w7.groupby("transformer_id")
        keys30 = w30["transformer_id"]
        win = pd.DataFrame({
            "history_days": g30.size(),
            "load_mean_30d_pct": g30["load_mean_pct"].mean(),
            "load_peak_30d_pct": g30["load_peak_pct"].max(),
            "overload_hours_30d": g30["overload_hours"].sum(min_count=1),
            "thermal_index_7d_c": g7["thermal_index_c"].mean(),
            "thermal_index_30d_c": g30["thermal_index_c"].mean(),
            "thermal_trend_30d": _slope(w30["thermal_index_c"], w30["day_no"], keys30),
            "oil_max_7d_c": g7["oil_max_c"].max(),
            "hot_spot_max_7d_c": g7["hot_spot_max_c"].max(),
            "h2_7d_ppm": g7["h2_ppm"].mean(),
            "h2_trend_30d": _slope(w30["h2_ppm"], w30["day_no"], keys30),
            "c2h2_7d_ppm": g7["c2h2_ppm"].mean(),
            "c2h2_trend_30d": _slope(w30["c2h2_ppm"], w30["day_no"], keys30),
            "c2h4_7d_ppm": g7["c2h4_ppm"].mean(),
            "c2h4_trend_30d": _slope(w30["c2h4_ppm"], w30["day_no"], keys30),
            "has_gas_monitor": g30["h2_ppm"].count() > 0,
        })
        win.index.name = "transformer_id"
        win = win.reset_index()
        win.insert(1, "date", day)
        before = failures[failures["failed_at"] < day + pd.Timedelta(days=1)]
        last_failure = before.groupby("transformer_id")["failed_day"].max()
        win["days_since_replacement"] = (
            (day + pd.Timedelta(days=1) - win["transformer_id"].map(last_failure)).dt.days)
        parts.append(win)
    if not parts:
        return pd.DataFrame()
    win = pd.concat(parts, ignore_index=True)
    out = win.merge(registry, on="transformer_id", how="inner")
    out["age_years"] = out["date"].dt.year - out["install_year"]
    out["thermal_ratio"] = out["thermal_index_7d_c"] / out["thermal_index_30d_c"].where(
        out["thermal_index_30d_c"] != 0)
    ordered = ["transformer_id", "date", "circuit_id", "rating_kva", "age_years",
               *[c for c in win.columns if c not in ("transformer_id", "date",
                                                     "days_since_replacement")],
               "thermal_ratio", "days_since_replacement"]
    return out[ordered].sort_values(["transformer_id", "date"], ignore_index=True)


@dataclass
class Comparison:
    """How two frames differ: equal within the tolerance, the largest difference, and where."""

    rows: int
    equal: bool
    max_abs_diff: float
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"rows": self.rows, "equal": self.equal, "max_abs_diff": self.max_abs_diff,
                "problems": self.problems[:10]}


def compare(left: pd.DataFrame, right: pd.DataFrame, keys: list[str],
            rtol: float = 1e-9, atol: float = 1e-9) -> Comparison:
    """Compare two frames row by row (matched on `keys`) and column by column.

    Numbers must agree within atol + rtol * |right| and be missing in the same places; other
    values must be equal. Returns a Comparison; never raises on a difference.
    """
    problems: list[str] = []
    if set(left.columns) != set(right.columns):
        problems.append(f"columns differ: only left {sorted(set(left.columns) - set(right.columns))}, "
                        f"only right {sorted(set(right.columns) - set(left.columns))}")
    a = left.sort_values(keys, ignore_index=True)
    b = right.sort_values(keys, ignore_index=True)
    if len(a) != len(b):
        problems.append(f"{len(a)} rows against {len(b)}")
        return Comparison(max(len(a), len(b)), False, float("nan"), problems)
    for k in keys:
        if not (a[k].astype(str).to_numpy() == b[k].astype(str).to_numpy()).all():
            problems.append(f"key {k} differs")
    worst = 0.0
    for column in [c for c in a.columns if c in b.columns and c not in keys]:
        x, y = a[column], b[column]
        numeric = (pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)) and (
            pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y))
        if numeric:
            xv, yv = x.astype(float).to_numpy(), y.astype(float).to_numpy()
            nan_x, nan_y = np.isnan(xv), np.isnan(yv)
            if (nan_x != nan_y).any():
                problems.append(f"{column}: missing in {int((nan_x != nan_y).sum())} row(s) on "
                                "one side only")
            ok = ~(nan_x | nan_y)
            if ok.any():
                diff = np.abs(xv[ok] - yv[ok])
                worst = max(worst, float(diff.max()))
                bad = diff > atol + rtol * np.abs(yv[ok])
                if bad.any():
                    problems.append(f"{column}: {int(bad.sum())} row(s) differ, by up to "
                                    f"{float(diff.max()):.3g}")
        elif not (x.astype(str).to_numpy() == y.astype(str).to_numpy()).all():
            problems.append(f"{column}: values differ")
    return Comparison(len(a), not problems, worst, problems)
