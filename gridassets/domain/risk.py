"""Risk scores in the shape of CNAIM (Ofgem's Common Network Asset Indices Methodology):
risk = probability of failure x consequence of failure, with health-index bands HI1..HI5 and a
network-performance consequence in customers interrupted and customer-minutes lost.

Every score is an expected number of customer-minutes lost over the next HORIZON_DAYS days, so the
components of a circuit can be added and compared:
- transformer (per asset, CNAIM view): P(failure) x customers served x replacement time;
- transformer (per circuit, for the list): the per-asset risks of its transformers, plus the
  customer-minutes its other equipment outages have cost per week over the past year (shrunk
  towards the fleet's);
- outage (weather, trees, animals): expected outages over the week ahead x customers interrupted
  per outage x outage duration, both learned from the circuit's own history. The week ahead is the
  weather forecast of the zone, over draws of its past errors (`forecast_exposure`); a day the
  forecast does not reach, or a day without forecast, counts with the zone's weather of the past
  year (climatology); each row says which (`weather_source`);
- vegetation: the part of the outage component a trim today would avoid (the outage model rerun
  with years since trim = 0); it is inside the outage component, not added to it;
- loading: P(tomorrow's peak exceeds capacity) from the load forecast's interval, per day over the
  horizon (persistence), x customers interrupted x outage duration.
Critical customers count CRITICAL_WEIGHT times.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import norm

HORIZON_DAYS = 7
CLIMATE_DAYS = 365  # the zone's weather over the past year: next week's likely conditions
CRITICAL_WEIGHT = 25.0
TRANSFORMER_REPLACEMENT_MIN = 300.0
# Fleet-wide fallbacks where a circuit has too little outage history of its own.
DEFAULT_SHARE_INTERRUPTED = 0.15
DEFAULT_OUTAGE_MINUTES = 150.0
HISTORY_SHRINKAGE_EVENTS = 5.0  # pseudo-events of the fleet mean mixed into a circuit's own mean
# Health-index bands on the 30-day probability of failure.
HI_BANDS = ((0.0025, "HI1"), (0.005, "HI2"), (0.01, "HI3"), (0.05, "HI4"), (math.inf, "HI5"))
INTERVAL_Z = norm.ppf(0.95)
FAILURE_OUTAGE_WINDOW = pd.Timedelta(hours=2)  # a 90 % central interval spans +-1.645 sigma


def health_index(p_fail_30d: np.ndarray) -> np.ndarray:
    """HI1 (good) .. HI5 (end of life) from the 30-day failure probability."""
    edges = [b for b, _ in HI_BANDS]
    labels = np.array([name for _, name in HI_BANDS])
    return labels[np.searchsorted(edges, np.asarray(p_fail_30d), side="right").clip(0, 4)]


def horizon_probability(p: np.ndarray, from_days: float, to_days: float = HORIZON_DAYS) -> np.ndarray:
    """Convert a probability over `from_days` to one over `to_days` at a constant hazard."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0 - 1e-12)
    return 1.0 - np.power(1.0 - p, to_days / from_days)


def weighted_customers(customers, critical) -> np.ndarray:
    return np.asarray(customers, dtype=float) + CRITICAL_WEIGHT * np.asarray(critical, dtype=float)


def customers_served(transformers: pd.DataFrame, circuits: pd.DataFrame) -> pd.DataFrame:
    """Customers (and critical customers) behind each transformer: its circuit's, shared in
    proportion to rating."""
    frame = transformers[["transformer_id", "circuit_id", "rating_kva"]].merge(
        circuits[["circuit_id", "customers", "critical_customers"]], on="circuit_id", how="left")
    share = frame["rating_kva"] / frame.groupby("circuit_id")["rating_kva"].transform("sum")
    return frame.assign(
        customers_served=frame["customers"].fillna(0) * share,
        critical_served=frame["critical_customers"].fillna(0) * share,
    )[["transformer_id", "customers_served", "critical_served"]]


def transformer_risk(features: pd.DataFrame, p_fail_30d: np.ndarray, served: pd.DataFrame,
                     version: str) -> pd.DataFrame:
    """One row per transformer-day: probability, health index, consequence and risk."""
    frame = features[["date", "transformer_id", "circuit_id"]].assign(
        p_fail_30d=np.asarray(p_fail_30d, dtype=float)).merge(served, on="transformer_id", how="left")
    frame["p_fail_7d"] = horizon_probability(frame["p_fail_30d"], 30)
    frame["health_index"] = health_index(frame["p_fail_30d"])
    frame["consequence_customer_minutes"] = (
        weighted_customers(frame["customers_served"], frame["critical_served"])
        * TRANSFORMER_REPLACEMENT_MIN
    )
    frame["risk_customer_minutes_7d"] = frame["p_fail_7d"] * frame["consequence_customer_minutes"]
    frame["signals"] = transformer_signals(features)
    frame["model_version"] = version
    return frame


def transformer_signals(features: pd.DataFrame) -> list[str]:
    """A short, readable list of what stands out about each unit."""
    out = []
    for row in features.itertuples(index=False):
        parts = []
        if _num(row.h2_trend_30d) >= 2.0:
            parts.append(f"H2 rising {row.h2_trend_30d:.1f} ppm/day")
        if _num(row.c2h2_7d_ppm) >= 2.0:
            parts.append(f"acetylene {row.c2h2_7d_ppm:.0f} ppm")
        if _num(row.thermal_ratio) >= 1.1:
            parts.append(f"oil {100 * (row.thermal_ratio - 1):.0f}% hotter than usual at this load")
        if _num(row.overload_hours_30d) >= 10:
            parts.append(f"{row.overload_hours_30d:.0f} h overloaded in 30 days")
        if _num(row.age_years) >= 45:
            parts.append(f"{row.age_years:.0f} years old")
        out.append("; ".join(parts))
    return out


def pooling_weight(values: pd.Series, groups: pd.Series) -> float:
    """How many pseudo-observations of the fleet's mean a circuit's own mean should be mixed with:
    the within-circuit variance over the between-circuit variance of the true means (one-way
    random effects, method of moments: empirical Bayes). inf when circuits differ no more than
    chance makes them (every circuit gets the fleet's mean); HISTORY_SHRINKAGE_EVENTS when there is
    too little to tell."""
    frame = pd.DataFrame({"v": np.asarray(values, dtype=float), "g": np.asarray(groups)})
    stats = frame.groupby("g")["v"].agg(["size", "mean", "var"])
    repeated = stats[stats["size"] >= 2]
    if len(repeated) < 3:
        return HISTORY_SHRINKAGE_EVENTS
    within = float(((repeated["size"] - 1) * repeated["var"]).sum() / (repeated["size"] - 1).sum())
    n = stats["size"].to_numpy(float)
    total = n.sum()
    grand = float(frame["v"].mean())
    spread = float((n * (stats["mean"].to_numpy() - grand) ** 2).sum())
    between = (spread - (len(stats) - 1) * within) / (total - (n**2).sum() / total)
    if not np.isfinite(between) or between <= 0:
        return math.inf
    return within / between


def _pooled(own_n: pd.Series, own_mean: pd.Series, fleet: float, k: float) -> pd.Series:
    if math.isinf(k):
        return pd.Series(fleet, index=own_n.index)
    return (own_n * own_mean.fillna(0) + k * fleet) / (own_n + k)


def outage_history(events: pd.DataFrame, circuits: pd.DataFrame) -> pd.DataFrame:
    """Per circuit, from its past outages pooled with the fleet's (`pooling_weight`: as much as the
    circuits' differences are real rather than chance): the share of customers an outage
    interrupts, its duration in minutes, and their product averaged per outage (`share_minutes`:
    customer-minutes lost per customer per outage; big outages also last longer, so the mean of
    the product is not the product of the means)."""
    ev = events.merge(circuits[["circuit_id", "customers"]], on="circuit_id", how="inner")
    ev = ev[ev["customers"] > 0]
    ev = ev.assign(
        share=(ev["customers_affected"] / ev["customers"]).clip(0, 1),
        minutes=((ev["end_ts"] - ev["start_ts"]).dt.total_seconds() / 60).clip(lower=1),
    )
    ev["share_minutes"] = ev["share"] * ev["minutes"]
    defaults = {"share": DEFAULT_SHARE_INTERRUPTED, "minutes": DEFAULT_OUTAGE_MINUTES,
                "share_minutes": DEFAULT_SHARE_INTERRUPTED * DEFAULT_OUTAGE_MINUTES}
    fleet = {k: (ev[k].mean() if len(ev) else v) for k, v in defaults.items()}
    fleet = {k: (defaults[k] if pd.isna(v) else v) for k, v in fleet.items()}
    per = ev.groupby("circuit_id").agg(n=("share", "size"), share=("share", "mean"),
                                       minutes=("minutes", "mean"),
                                       share_minutes=("share_minutes", "mean"))
    out = circuits[["circuit_id"]].merge(per, on="circuit_id", how="left").fillna({"n": 0})
    for col, name in (("share", "share_interrupted"), ("minutes", "outage_minutes"),
                      ("share_minutes", "share_minutes")):
        k = pooling_weight(ev[col], ev["circuit_id"]) if len(ev) else HISTORY_SHRINKAGE_EVENTS
        out[name] = _pooled(out["n"], out[col], fleet[col], k)
    return out[["circuit_id", "share_interrupted", "outage_minutes", "share_minutes"]]


def climate_frame(exposure: pd.DataFrame, day: pd.Timestamp, state_columns: list[str]
                  ) -> pd.DataFrame:
    """Each circuit's weather of the last CLIMATE_DAYS days (what exists of them), with the
    circuit's state (trees, assets, loading) as of `day`: the conditions its next days are likely
    to see, storms included in their usual proportion."""
    day = pd.Timestamp(day)
    recent = exposure[(exposure["date"] > day - pd.Timedelta(days=CLIMATE_DAYS))
                      & (exposure["date"] <= day)]
    today = exposure[exposure["date"] == day].set_index("circuit_id")[state_columns]
    frame = recent.drop(columns=state_columns).join(today, on="circuit_id", how="inner")
    return frame


WEATHER_SOURCES = ("forecast", "forecast, then climatology", "climatology (no forecast)")


def expected_outages(climate: pd.DataFrame, p: np.ndarray, p_trimmed: np.ndarray,
                     week: pd.DataFrame | None = None, p_week: np.ndarray | None = None,
                     p_week_trimmed: np.ndarray | None = None) -> pd.DataFrame:
    """Per circuit: expected outages over the next HORIZON_DAYS days, as is and with the circuit
    trimmed today, and which weather they come from.

    `climate`: rows of the circuit's weather of the past year (`climate_frame`), scored `p`.
    `week`: rows of the forecast week (circuit_id, day, draw; `forecast_exposure.week_ahead`),
    scored `p_week`: each forecast day counts with the mean over its draws, and a day the forecast
    does not reach counts with the climatological mean."""
    per = (climate[["circuit_id"]].assign(p=p, pt=np.minimum(p_trimmed, p))
           .groupby("circuit_id").mean())
    out = pd.DataFrame({"p_climate_day": per["p"], "p_climate_day_trimmed": per["pt"]})
    if week is not None and len(week):
        days = (week[["circuit_id", "day"]].assign(p=p_week, pt=np.minimum(p_week_trimmed, p_week))
                .groupby(["circuit_id", "day"]).mean())
        days["log_quiet"] = np.log1p(-days["p"].clip(upper=1 - 1e-12))
        agg = days.groupby("circuit_id").agg(forecast_days=("p", "size"), fc=("p", "sum"),
                                             fct=("pt", "sum"), log_quiet=("log_quiet", "sum"))
        out = out.join(agg, how="left")
    for col in ("forecast_days", "fc", "fct", "log_quiet"):
        if col not in out:
            out[col] = 0.0
    out = out.fillna({"forecast_days": 0, "fc": 0.0, "fct": 0.0, "log_quiet": 0.0})
    rest = HORIZON_DAYS - out["forecast_days"]
    out["expected_outages_7d"] = out["fc"] + rest * out["p_climate_day"]
    out["expected_outages_7d_trimmed"] = out["fct"] + rest * out["p_climate_day_trimmed"]
    quiet = np.exp(out["log_quiet"]) * np.power(1 - out["p_climate_day"].clip(upper=1 - 1e-12),
                                                rest)
    out["p_outage_7d"] = 1 - quiet
    out["p_outage_day"] = out["expected_outages_7d"] / HORIZON_DAYS
    out["expected_outages_7d_climatology"] = HORIZON_DAYS * out["p_climate_day"]
    out["forecast_days"] = out["forecast_days"].astype(int)
    out["weather_source"] = np.select(
        [out["forecast_days"] >= HORIZON_DAYS, out["forecast_days"] > 0],
        list(WEATHER_SOURCES[:2]), WEATHER_SOURCES[2])
    return out.drop(columns=["fc", "fct", "log_quiet"]).reset_index()


def circuit_outage_risk(expected: pd.DataFrame, today: pd.DataFrame, history: pd.DataFrame,
                        version: str, forecast_summary: pd.DataFrame | None = None
                        ) -> pd.DataFrame:
    """Per circuit: expected outages and customer-minutes over the horizon (`expected_outages`),
    and the part a trim today would avoid; with the forecast's highlights where there was one."""
    frame = today[["date", "circuit_id", "customers", "critical_customers", "peak_gust_mph",
                   "tree_canopy_pct", "years_since_trim"]].merge(
        expected, on="circuit_id", how="inner").merge(history, on="circuit_id", how="left")
    summary = (forecast_summary if forecast_summary is not None else
               pd.DataFrame(columns=["circuit_id", *FORECAST_SUMMARY]))
    frame = frame.merge(summary, on="circuit_id", how="left")
    per_outage = (weighted_customers(frame["customers"], frame["critical_customers"])
                  * frame["share_minutes"])
    frame["customer_minutes_per_outage"] = per_outage
    frame["risk_customer_minutes_7d"] = frame["expected_outages_7d"] * per_outage
    # what the score would be from the zone's past year alone: kept to measure the forecast's worth
    frame["risk_customer_minutes_7d_climatology"] = (frame["expected_outages_7d_climatology"]
                                                     * per_outage)
    frame["trim_avoidable_customer_minutes_7d"] = (
        (frame["expected_outages_7d"] - frame["expected_outages_7d_trimmed"]).clip(lower=0)
        * per_outage
    )
    frame["model_version"] = version
    return frame


FORECAST_SUMMARY = ("forecast_peak_gust_mph", "forecast_peak_gust_ts", "forecast_precip_mm_7d")


CALIBRATION_DAYS = 90
MIN_CALIBRATION_DAYS = 14
CALIBRATION_RANGE = (0.1, 10.0)


def calibration(outcomes: pd.DataFrame, day) -> tuple[float, int]:
    """How far a component's customer-minutes ran from what then happened: realized over
    predicted, summed over the days of the last CALIBRATION_DAYS whose week was over by `day`
    (`outcomes`: date, predicted, realized). (factor, days used); 1.0 with fewer than
    MIN_CALIBRATION_DAYS. The components of the list are only comparable, and their sum only
    meaningful, when each is on the scale of what happens."""
    day = pd.Timestamp(day)
    d = pd.to_datetime(outcomes["date"])
    used = outcomes[(d + pd.Timedelta(days=7) <= day) & (d > day - pd.Timedelta(days=CALIBRATION_DAYS))]
    if len(used) < MIN_CALIBRATION_DAYS or used["predicted"].sum() <= 0:
        return 1.0, int(len(used))
    factor = float(used["realized"].sum() / used["predicted"].sum())
    return float(np.clip(factor, *CALIBRATION_RANGE)), int(len(used))


def other_equipment_risk(equipment: pd.DataFrame, failures: pd.DataFrame,
                         circuits: pd.DataFrame, days_observed: int) -> pd.DataFrame:
    """Per circuit: customer-minutes lost per HORIZON_DAYS to equipment outages that were not a
    transformer failure (a degrading unit, a bad connector, old hardware): the circuit's rate of
    them, pooled with the fleet's as far as circuits' rates differ beyond chance (gamma-Poisson
    empirical Bayes), x its weighted customers x customer-minutes per customer per outage
    (`outage_history` of those outages). A rate, not a sum of past customer-minutes: one long
    outage on a big feeder last spring says little about next week.

    `equipment`: equipment outages (circuit_id, start_ts, end_ts, customers_affected);
    `failures`: transformer failures with the circuit of the unit (circuit_id, failed_at).
    An outage that starts within FAILURE_OUTAGE_WINDOW after a failure on its circuit is that
    failure's outage, which the per-transformer risk already counts.
    """
    ev = equipment
    if len(ev) and len(failures):
        pairs = ev.reset_index().merge(failures[["circuit_id", "failed_at"]], on="circuit_id")
        lag = pairs["start_ts"] - pairs["failed_at"]
        caused = pairs.loc[(lag >= pd.Timedelta(0)) & (lag < FAILURE_OUTAGE_WINDOW), "index"]
        ev = ev.drop(index=caused.unique())
    days = max(int(days_observed), 1)
    counts = circuits[["circuit_id"]].merge(
        ev.groupby("circuit_id").size().rename("n").reset_index(), on="circuit_id",
        how="left").fillna({"n": 0})
    n = counts["n"].to_numpy(float)
    fleet = n.mean() / days if len(n) else 0.0  # outages per circuit-day
    between = (n.var(ddof=1) / days**2 - fleet / days) if len(n) > 2 else 0.0
    if fleet <= 0:
        rate = np.zeros(len(n))
    elif between <= 0:
        rate = np.full(len(n), fleet)
    else:
        prior_days = fleet / between  # the fleet's rate counts as this many days of the circuit's
        rate = (n + prior_days * fleet) / (days + prior_days)
    per_outage = outage_history(ev, circuits)
    out = counts.merge(per_outage[["circuit_id", "share_minutes"]], on="circuit_id", how="left")
    out = out.merge(circuits[["circuit_id", "customers", "critical_customers"]],
                    on="circuit_id", how="left")
    out["equipment_outages_7d"] = rate * HORIZON_DAYS
    out["other_equipment_customer_minutes_7d"] = (
        out["equipment_outages_7d"]
        * weighted_customers(out["customers"].fillna(0), out["critical_customers"].fillna(0))
        * out["share_minutes"])
    return out[["circuit_id", "equipment_outages_7d", "other_equipment_customer_minutes_7d"]]


def overload_probability(peak_mw: np.ndarray, lower_mw: np.ndarray, upper_mw: np.ndarray,
                         capacity_mw: np.ndarray) -> np.ndarray:
    """P(peak > capacity) with the forecast interval read as a normal distribution; 0 where the
    capacity is unknown."""
    sigma = np.maximum((np.asarray(upper_mw) - np.asarray(lower_mw)) / (2 * INTERVAL_Z), 1e-6)
    z = (np.asarray(capacity_mw, dtype=float) - np.asarray(peak_mw)) / sigma
    p = 1 - norm.cdf(z)
    return np.where(np.isfinite(np.asarray(capacity_mw, dtype=float)), p, 0.0)


def _num(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return v
