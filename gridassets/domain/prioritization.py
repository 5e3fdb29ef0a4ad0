"""The prioritized circuit list: one ranking from every model's expected customer impact.

priority_score = outage + transformer + loading components, each the expected customer-minutes lost
over the next week (see `gridassets.domain.risk`); the vegetation component is the part of the outage
component a trim would avoid, shown for crews and not added twice. Ties are broken by circuit id, so
the ranking is deterministic. Each row carries a reason a crew lead can read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COMPONENTS = ("outage_score", "transformer_score", "loading_score")
OUTAGE_COLUMNS = ["circuit_id", "risk_customer_minutes_7d", "expected_outages_7d", "peak_gust_mph",
                  "model_version", "weather_source", "forecast_peak_gust_mph",
                  "forecast_peak_gust_ts", "forecast_precip_mm_7d"]
TRANSFORMER_WARNING_P30 = 0.05  # counted in reasons: "N transformers above 5 % failure risk"


def transformer_by_circuit(transformer_risk: pd.DataFrame, other_equipment: pd.DataFrame
                           ) -> pd.DataFrame:
    """Per circuit: the transformer component — the CNAIM risk of its transformers (failure
    probability x customers served x replacement time) plus its other equipment outages' expected
    customer-minutes (`risk.other_equipment_risk`) — and what drives it."""
    tr = transformer_risk.sort_values(["circuit_id", "p_fail_30d", "transformer_id"],
                                      ascending=[True, False, True])
    worst = tr.groupby("circuit_id").head(1).set_index("circuit_id")
    agg = tr.groupby("circuit_id").agg(
        expected_failures_7d=("p_fail_7d", "sum"),
        transformer_asset_risk=("risk_customer_minutes_7d", "sum"),
        transformers_at_risk=("p_fail_30d", lambda s: int((s >= TRANSFORMER_WARNING_P30).sum())),
    )
    agg["maintenance_model_version"] = worst["model_version"]
    agg["worst_transformer"] = worst["transformer_id"]
    agg["worst_transformer_p30"] = worst["p_fail_30d"]
    agg["worst_transformer_signals"] = worst["signals"]
    agg = agg.reset_index().merge(other_equipment, on="circuit_id", how="left")
    agg["transformer_score"] = (agg["transformer_asset_risk"]
                                + agg["other_equipment_customer_minutes_7d"].fillna(0.0))
    return agg


def rank_circuits(day, circuits: pd.DataFrame, outage: pd.DataFrame, vegetation: pd.DataFrame,
                  transformers: pd.DataFrame, loading: pd.DataFrame) -> pd.DataFrame:
    """The day's ranked list.

    circuits: circuit_id, customers, critical_customers. outage: circuit_outage_risk rows of the
    day. vegetation: circuit_id, vegetation_score, tree_canopy_pct, years_since_trim.
    transformers: `transformer_by_circuit` output. loading: circuit_id, loading_score,
    forecast_peak_mw, capacity_mw, p_overload_day (may be empty: the loading component is then 0).
    """
    frame = circuits[["circuit_id", "zone", "customers", "critical_customers"]].copy()
    outage = outage.reindex(columns=[*OUTAGE_COLUMNS, *outage.columns.difference(OUTAGE_COLUMNS)])
    frame = frame.merge(outage[OUTAGE_COLUMNS]
                        .rename(columns={"risk_customer_minutes_7d": "outage_score",
                                         "model_version": "outage_model_version"}),
                        on="circuit_id", how="left")
    frame = frame.merge(vegetation[["circuit_id", "vegetation_score", "tree_canopy_pct",
                                    "years_since_trim"]], on="circuit_id", how="left")
    frame = frame.merge(transformers, on="circuit_id", how="left")
    load_cols = ["circuit_id", "loading_score", "forecast_peak_mw", "capacity_mw", "p_overload_day"]
    frame = frame.merge(loading.reindex(columns=load_cols), on="circuit_id", how="left")
    for col in (*COMPONENTS, "vegetation_score", "transformers_at_risk"):
        frame[col] = frame[col].astype(float).fillna(0.0)
    frame["priority_score"] = frame[list(COMPONENTS)].sum(axis=1)
    frame["expected_customer_minutes_7d"] = frame["priority_score"]
    frame = frame.sort_values(["priority_score", "circuit_id"], ascending=[False, True])
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    frame.insert(0, "date", pd.Timestamp(day))
    frame["reason"] = [explain(row) for row in frame.itertuples(index=False)]
    return frame.reset_index(drop=True)


def with_integrity(ranked: pd.DataFrame, suspicion: pd.DataFrame) -> pd.DataFrame:
    """The list with a `telemetry_integrity` column (empty for circuits whose inputs are not
    suspect) whose text also ends the circuit's reason: the crew lead sees that the numbers
    behind the rank rest on readings that were flagged (and left out)."""
    text = ranked["circuit_id"].map(suspicion.set_index("circuit_id")["integrity"]
                                    if len(suspicion) else {}).fillna("")
    out = ranked.assign(telemetry_integrity=text.to_numpy())
    suspect = out["telemetry_integrity"] != ""
    out.loc[suspect, "reason"] = out.loc[suspect, "reason"] + "; " + out.loc[suspect,
                                                                           "telemetry_integrity"]
    return out


def explain(row) -> str:
    """Why this circuit is where it is, biggest driver first, in a crew lead's words."""
    parts: list[tuple[float, str]] = []
    if row.outage_score > 0:
        text = f"{row.expected_outages_7d:.1f} weather/tree outages expected this week"
        if isinstance(row.weather_source, str) and row.weather_source.startswith("forecast") \
                and _finite(row.forecast_peak_gust_mph):
            when = pd.Timestamp(row.forecast_peak_gust_ts)
            text += (f" (gusts to {row.forecast_peak_gust_mph:.0f} mph forecast "
                     f"{when:%a %H:00} UTC; {row.forecast_precip_mm_7d:.0f} mm rain in 7 days)")
        elif _finite(row.peak_gust_mph):
            text += (f" (no forecast: the zone's past year; peak gust today "
                     f"{row.peak_gust_mph:.0f} mph)")
        parts.append((row.outage_score, text))
    if row.vegetation_score > 0.05 * max(row.outage_score, 1e-9) and _finite(row.years_since_trim):
        parts.append((row.vegetation_score * 0.999,
                      f"{row.tree_canopy_pct:.0f}% tree canopy, {row.years_since_trim:.1f} years "
                      f"since trim (a trim avoids ~{row.vegetation_score:,.0f} customer-min)"))
    if row.transformers_at_risk > 0 and isinstance(row.worst_transformer, str):
        text = (f"{int(row.transformers_at_risk)} transformer(s) above "
                f"{100 * TRANSFORMER_WARNING_P30:.0f}% failure risk; worst {row.worst_transformer} "
                f"{100 * row.worst_transformer_p30:.0f}%")
        if isinstance(row.worst_transformer_signals, str) and row.worst_transformer_signals:
            text += f" ({row.worst_transformer_signals})"
        parts.append((row.transformer_score, text))
    if row.loading_score > 0 and _finite(row.forecast_peak_mw) and _finite(row.capacity_mw):
        parts.append((row.loading_score,
                      f"tomorrow's peak forecast {row.forecast_peak_mw:.1f} MW = "
                      f"{100 * row.forecast_peak_mw / row.capacity_mw:.0f}% of capacity"))
    parts.sort(key=lambda p: -p[0])
    who = f"{int(row.customers):,} customers"
    if row.critical_customers:
        who += f" ({int(row.critical_customers)} critical)"
    texts = [t for _, t in parts[:3]] or ["no elevated risk"]
    return "; ".join(texts) + f"; {who}"


# Levels of the priority score (expected customer-minutes over the next 7 days) whose circuits
# the list counts each day, for the trend an operator watches: how many circuits pass each.
ATTENTION_LEVELS = (10_000, 100_000)


def list_summary(ranked: pd.DataFrame) -> dict[str, float | int]:
    """A day's list in a few numbers: `top_score` (the first circuit's priority score),
    `circuits_over_<level>` for each of ATTENTION_LEVELS, and `customers_at_risk` (the customers
    of the circuits over the first level). Takes a ranked list (`rank_circuits`)."""
    scores = ranked["priority_score"].astype(float)
    out: dict[str, float | int] = {"top_score": float(scores.max()) if len(scores) else 0.0}
    for level in ATTENTION_LEVELS:
        out[f"circuits_over_{level}"] = int((scores > level).sum())
    over = scores > ATTENTION_LEVELS[0]
    out["customers_at_risk"] = int(ranked.loc[over, "customers"].sum())
    return out


def captured_share(ranking: pd.Series, impact: pd.Series, top_share: float = 0.10) -> float:
    """Share of the realized `impact` (indexed by circuit) that falls on the top `top_share` of
    circuits by `ranking` (higher first; ties by circuit id)."""
    order = ranking.sort_index().sort_values(ascending=False, kind="stable").index
    k = max(1, int(round(top_share * len(order))))
    total = impact.sum()
    return float(impact.reindex(order[:k]).fillna(0).sum() / total) if total > 0 else float("nan")


def _finite(value) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False
