"""Storm outage risk and the crew-staging list, from an alert's forecast conditions.

The outage model learned outages per circuit-day from observed daily weather. For a storm, each
affected circuit gets the alert's conditions as its weather for every day of the alert window
(gust at the alert's maximum, gusts above the model's thresholds for half of the window's hours,
the alert's precipitation spread over the window or a default per kind of event), with its own
state (trees, transformer condition, loading) as of the latest day in the warehouse. Expected
outages over the window = sum over storm days of P(outage on that day).

The staging list ranks by expected customer-minutes: weather and tree outages (above) plus the
equipment outages the circuit's transformers are expected to cause over the window, with the
part a recent trim would have avoided shown as the vegetation component.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gridassets.domain import risk

# Liquid precipitation assumed when an alert gives none (mm over the alert window).
DEFAULT_PRECIP_MM = {"thunderstorm": 20.0, "tornado": 25.0, "hurricane": 100.0, "tropical": 60.0,
                     "winter": 10.0, "blizzard": 10.0, "ice": 15.0, "snow": 8.0}
OTHER_PRECIP_MM = 3.0
SHARE_OF_HOURS_AT_GUST = 0.5
SUSTAINED_TO_GUST = 0.6


def default_precip_mm(event: str) -> float:
    text = event.lower()
    for word, mm in DEFAULT_PRECIP_MM.items():
        if word in text:
            return mm
    return OTHER_PRECIP_MM


def storm_exposure(conditions: pd.DataFrame, circuits: pd.DataFrame, state: pd.DataFrame
                   ) -> pd.DataFrame:
    """One row per affected circuit and storm day, with the outage model's feature columns.

    conditions: one row per zone (storm_id, zone, message_id, event, onset, ends, expires,
    max_wind_gust_mph, precip_mm). circuits: the registry. state: each circuit's latest
    circuit_exposure_features row (its trees, transformer condition and loading).
    """
    rows = []
    cond = conditions.merge(circuits[["circuit_id", "zone"]], on="zone", how="inner")
    state = state.set_index("circuit_id")
    for c in cond.itertuples(index=False):
        if c.circuit_id not in state.index:
            continue
        start = c.onset if pd.notna(c.onset) else None
        end = max([t for t in (c.ends, c.expires) if pd.notna(t)], default=None)
        hours = 24.0 if start is None or end is None else max(1.0, (end - start).total_seconds() / 3600)
        days = max(1, math.ceil(hours / 24))
        gust = float(c.max_wind_gust_mph)
        precip = float(c.precip_mm) if pd.notna(c.precip_mm) else default_precip_mm(str(c.event))
        s = state.loc[c.circuit_id]
        for d in range(days):
            day_hours = min(24.0, hours - 24.0 * d)
            windy = SHARE_OF_HOURS_AT_GUST * day_hours
            rows.append({
                "storm_id": c.storm_id, "circuit_id": c.circuit_id, "zone": c.zone,
                "message_id": c.message_id, "event": c.event, "storm_day": d,
                "window_start": start, "window_end": end, "window_hours": hours,
                "peak_gust_mph": gust, "max_wind_mph": SUSTAINED_TO_GUST * gust,
                "hours_gust_over_40": windy if gust >= 40 else 0.0,
                "hours_gust_over_55": windy if gust >= 55 else 0.0,
                "precip_mm": precip / days, "precip_72h_mm": precip,
                "temp_min_c": s["temp_min_c"], "temp_max_c": s["temp_max_c"],
                **{col: s[col] for col in STATE_COLUMNS},
                "state_date": s["date"],
            })
    return pd.DataFrame(rows)


STATE_COLUMNS = ["length_km", "tree_canopy_pct", "years_since_trim", "transformer_mean_age_years",
                 "transformer_share_over_40y", "transformer_max_thermal_ratio",
                 "transformers_with_warnings", "peak_loading"]


def storm_outage_risk(exposure: pd.DataFrame, p: np.ndarray, p_trimmed: np.ndarray,
                      circuits: pd.DataFrame, history: pd.DataFrame, version: str) -> pd.DataFrame:
    """Per storm and circuit: expected outages, customers interrupted and customer-minutes."""
    per_day = exposure.assign(p=p, p_trimmed=np.minimum(p_trimmed, p))
    keys = ["storm_id", "circuit_id", "zone", "message_id", "event", "window_start", "window_end",
            "window_hours", "peak_gust_mph", "state_date", "tree_canopy_pct", "years_since_trim"]
    frame = per_day.groupby(keys, dropna=False).agg(
        storm_days=("storm_day", "size"), precip_mm=("precip_72h_mm", "first"),
        expected_outages=("p", "sum"), expected_outages_trimmed=("p_trimmed", "sum"),
    ).reset_index().rename(columns={"peak_gust_mph": "max_wind_gust_mph"})
    frame = frame.merge(circuits[["circuit_id", "customers", "critical_customers"]],
                        on="circuit_id", how="left").merge(history, on="circuit_id", how="left")
    weighted = risk.weighted_customers(frame["customers"], frame["critical_customers"])
    frame["expected_customers_interrupted"] = (frame["expected_outages"] * frame["customers"]
                                               * frame["share_interrupted"])
    per_outage = weighted * frame["share_minutes"]
    frame["expected_customer_minutes"] = frame["expected_outages"] * per_outage
    frame["vegetation_customer_minutes"] = (
        (frame["expected_outages"] - frame["expected_outages_trimmed"]).clip(lower=0) * per_outage)
    frame["model_version"] = version
    return frame.drop(columns=["expected_outages_trimmed"])


def rank_storm_circuits(storm_id: str, status: str, risk_rows: pd.DataFrame,
                        transformers: pd.DataFrame, circuits: pd.DataFrame,
                        cancelled_zones: list[str]) -> pd.DataFrame:
    """The crew-staging list of one storm. `transformers` is `prioritization.transformer_by_circuit`
    output scaled to the storm window (may be empty). A cancelled storm lists the circuits of its
    zones with scores of zero and says so."""
    if status == "cancelled" or risk_rows.empty:
        zones = set(cancelled_zones)
        frame = circuits[circuits["zone"].isin(zones)][["circuit_id", "zone", "customers",
                                                         "critical_customers"]].copy()
        for col in ("outage_score", "transformer_score", "vegetation_score", "priority_score",
                    "expected_outages", "max_wind_gust_mph"):
            frame[col] = 0.0
        frame["event"] = ""
        frame["outage_model_version"] = None
        frame["reason"] = f"storm {status}: stand down; no outage risk from this storm"
    else:
        frame = risk_rows.rename(columns={"expected_customer_minutes": "outage_score",
                                          "vegetation_customer_minutes": "vegetation_score",
                                          "model_version": "outage_model_version"})
        if not transformers.empty:
            frame = frame.merge(transformers[["circuit_id", "transformer_score",
                                              "transformers_at_risk", "worst_transformer",
                                              "worst_transformer_p30"]],
                                on="circuit_id", how="left")
        else:
            frame = frame.assign(transformer_score=np.nan, transformers_at_risk=0,
                                 worst_transformer=None, worst_transformer_p30=np.nan)
        frame["transformer_score"] = frame["transformer_score"].astype(float).fillna(0.0)
        frame["priority_score"] = frame["outage_score"] + frame["transformer_score"]
        frame["reason"] = [_storm_reason(r, transformers_known=not transformers.empty)
                           for r in frame.itertuples(index=False)]
    frame = frame.sort_values(["priority_score", "circuit_id"], ascending=[False, True])
    frame = frame.drop(columns=["storm_id"], errors="ignore")
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    frame.insert(0, "storm_id", storm_id)
    frame["status"] = status
    return frame.reset_index(drop=True)


def _storm_reason(row, transformers_known: bool) -> str:
    parts = [f"{row.event}: gusts to {row.max_wind_gust_mph:.0f} mph over "
             f"{row.window_hours:.0f} h, {row.expected_outages:.2f} outages expected"]
    if row.vegetation_score > 0.1 * max(row.outage_score, 1e-9) and pd.notna(row.years_since_trim):
        parts.append(f"trees: {row.tree_canopy_pct:.0f}% canopy, "
                     f"{row.years_since_trim:.1f} years since trim")
    if not transformers_known:
        parts.append("transformer risk not available (materialize transformer_risk)")
    elif row.transformers_at_risk and isinstance(row.worst_transformer, str):
        parts.append(f"{int(row.transformers_at_risk)} transformer(s) above 5% failure risk, "
                     f"worst {row.worst_transformer} {100 * row.worst_transformer_p30:.0f}%")
    who = f"{int(row.customers):,} customers"
    if row.critical_customers:
        who += f" ({int(row.critical_customers)} critical)"
    return "; ".join(parts) + f"; {who}"
