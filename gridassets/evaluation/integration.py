"""Model quality on held-out time, and what the integrated list is worth over single models.

Everything is read from a built warehouse (the daily lists, the scores behind them and what
happened afterwards), so the figures describe exactly what the graph produced:

- maintenance: every transformer-day scored by a model trained before that day, against whether
  the unit failed within the next 30 days (only days whose 30 days are in the data);
- outage: every circuit-day's observed exposure scored by the model serving that day, against
  whether an outage of an environmental cause started that day;
- integration lift: for each daily list whose next 7 days are in the data, the share of the
  realized customer-minutes lost (all causes, days D+1..D+7) that falls on the top 10 % of
  circuits, for the integrated ranking and for rankings by one model alone, two ways: as each
  team would rank alone (failure probability, outage probability, trim index, loading ratio) and
  by that model's own customer-minutes component. Averaged over days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from gridassets import warehouse
from gridassets.domain import models, risk
from gridassets.domain.prioritization import captured_share
from gridassets.storage import evaluation as reads
from gridassets.storage import model_store, training_data

TOP_SHARE = 0.10
# Rankings that are not one model's: the best single model is chosen among the others.
NOT_SINGLE = ("integrated list", "random", "customers alone", "oracle")
RANDOM_DRAWS = 200
# Below this many circuits in the top share, the lift figures are mostly noise.
SMALL_TOP = 10


@dataclass
class Evaluation:
    maintenance: dict
    outage: dict
    lift: pd.DataFrame  # ranking, captured share (mean over days), days
    lift_days: int
    registry: pd.DataFrame
    circuits: int = 0  # circuits per daily list
    timing: dict | None = None  # how well the fleet's week total follows what happened

    def best_single(self) -> tuple[str, float]:
        names = self.lift["ranking"]
        singles = self.lift[~names.str.startswith(NOT_SINGLE)]
        row = singles.sort_values("captured", ascending=False).iloc[0]
        return row["ranking"], float(row["captured"])


def evaluate(db: Path, models_dir: Path, simulator=None) -> Evaluation:
    """`simulator`: the FleetSimulator the warehouse was built from, when it was (synthetic
    source): its true expected customer-minutes give the oracle row."""
    if not Path(db).is_file():
        raise ValueError(f"{db} does not exist: build it first (make run)")
    with warehouse.connect(db, read_only=True) as con:
        last_day = reads.last_load_timestamp(con)
        if last_day is None:
            raise ValueError(f"{db} holds no data: build it first (make run)")
        last_day = pd.Timestamp(last_day).normalize()
        return Evaluation(
            maintenance=_maintenance(con, last_day),
            outage=_outage(con, models_dir),
            **_lift(con, last_day, simulator),
            registry=_registry(con),
            timing=_timing(con),
        )


def _scores(y: np.ndarray, p: np.ndarray) -> dict:
    if y.sum() == 0 or y.all():
        return {"roc_auc": float("nan"), "pr_auc": float("nan"), "rows": int(len(y)),
                "positives": int(y.sum())}
    return {"roc_auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p)),
            "rows": int(len(y)), "positives": int(y.sum()), "base_rate": float(y.mean())}


def _maintenance(con, last_day: pd.Timestamp) -> dict:
    rows = reads.scored_failures(con, last_day - timedelta(days=models.HORIZON_DAYS))
    out = _scores(rows["failed"].to_numpy(bool), rows["p_fail_30d"].to_numpy())
    out["days"] = int(rows["date"].nunique())
    return out


def _outage(con, models_dir: Path) -> dict:
    days = reads.outage_score_days(con)
    if days.empty:
        return _scores(np.array([]), np.array([]))
    rows = training_data.outage_rows(con, days.min().date(), days.max().date() + timedelta(days=1))
    parts = []
    cache: dict = {}
    for day, group in rows.groupby("date"):
        record = model_store.serving_as_of(con, models.OUTAGE, day.date())
        if record is None:
            continue
        if record["version"] not in cache:
            cache[record["version"]] = model_store.load_serving(con, models.OUTAGE, day.date(),
                                                                models_dir)[1]
        parts.append(group.assign(p=cache[record["version"]].predict_proba(group)))
    scored = pd.concat(parts)
    out = _scores(scored["label"].to_numpy(bool), scored["p"].to_numpy())
    out["days"] = int(scored["date"].nunique())
    return out


def _lift(con, last_day: pd.Timestamp, simulator=None) -> dict:
    lists = reads.prioritized_lists(con)
    outage = reads.outage_probabilities(con)
    worst = reads.worst_transformer_probabilities(con)
    trees = reads.trim_index(con)
    events = reads.customer_minutes_lost(con)
    frame = (lists.merge(outage, on=["date", "circuit_id"], how="left")
             .merge(worst, on=["date", "circuit_id"], how="left")
             .merge(trees, on=["date", "circuit_id"], how="left"))
    frame["loading_ratio"] = frame["forecast_peak_mw"] / frame["capacity_mw"] \
        if "forecast_peak_mw" in frame and "capacity_mw" in frame else np.nan
    who = frame["customers"] + risk.CRITICAL_WEIGHT * frame["critical_customers"]
    frame["outage_p_x_customers"] = frame["p_outage_7d"] * who
    frame["failures_x_customers"] = frame["expected_failures_7d"] * who
    # the list as it would be with the climatological outage component, calibrated alike
    calibration = frame["outage_calibration"] if "outage_calibration" in frame else 1.0
    frame["climatology_list"] = (frame["priority_score"] - frame["outage_score"]
                                 + frame["risk_customer_minutes_7d_climatology"] * calibration)
    frame["customers_only"] = who
    rankings = {
        "integrated list": "priority_score",
        "integrated list, climatology instead of the forecast": "climatology_list",
        "customers alone": "customers_only",
        "outage probability x customers": "outage_p_x_customers",
        "expected transformer failures x customers": "failures_x_customers",
        "outage component, climatology": "risk_customer_minutes_7d_climatology",
        "outage model alone (probability)": "p_outage_7d",
        "maintenance model alone (worst failure probability)": "p_fail_30d",
        "vegetation alone (canopy x years since trim)": "trim_index",
        "load forecast alone (peak / capacity)": "loading_ratio",
        "outage component (customer-minutes)": "outage_score",
        "transformer component (customer-minutes)": "transformer_score",
        "vegetation component (customer-minutes)": "vegetation_score",
        "loading component (customer-minutes)": "loading_score",
    }
    if simulator is not None:
        rankings["oracle: the simulator's true expected customer-minutes"] = "oracle"
        frame = frame.merge(_oracle(simulator, frame["date"].unique()), on=["date", "circuit_id"],
                            how="left")
    rng = np.random.default_rng(0)
    shares: dict[str, list[float]] = {name: [] for name in [*rankings, "random"]}
    used = 0
    for day, group in frame.groupby("date"):
        if day + timedelta(days=7) > last_day:
            continue
        window = events[(events["start_ts"] >= day + timedelta(days=1))
                        & (events["start_ts"] < day + timedelta(days=8))]
        impact = window.groupby("circuit_id")["customer_minutes"].sum()
        impact = impact.reindex(group["circuit_id"]).fillna(0.0)
        if impact.sum() <= 0:
            continue
        used += 1
        g = group.set_index("circuit_id")
        for name, column in rankings.items():
            values = g[column].astype(float) if column in g else pd.Series(np.nan, index=g.index)
            # A ranking with one value for every circuit (no forecasts yet, say) says nothing.
            if values.nunique(dropna=True) > 1:
                shares[name].append(captured_share(values.fillna(-np.inf), impact, TOP_SHARE))
        draws = [captured_share(pd.Series(rng.random(len(g)), index=g.index), impact, TOP_SHARE)
                 for _ in range(RANDOM_DRAWS // 10)]
        shares["random"].append(float(np.mean(draws)))
    lift = pd.DataFrame([
        {"ranking": name, "captured": float(np.mean(v)) if v else float("nan"), "days": len(v)}
        for name, v in shares.items()
    ])
    return {"lift": lift, "lift_days": used, "circuits": int(frame["circuit_id"].nunique())}


def _oracle(simulator, days) -> pd.DataFrame:
    """date, circuit_id, oracle: the true expected customer-minutes of days D+1..D+7 (hidden
    truth; the ceiling no model can pass)."""
    days = sorted(pd.Timestamp(d) for d in days)
    need = sorted({d + timedelta(days=k) for d in days for k in range(1, 8)})
    daily = {d: simulator.expected_customer_minutes(d.date()).set_index("circuit_id")
             ["expected_customer_minutes"] for d in need}
    parts = []
    for d in days:
        week = sum(daily[d + timedelta(days=k)] for k in range(1, 8))
        parts.append(pd.DataFrame({"date": d, "circuit_id": week.index, "oracle": week.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def _timing(con) -> dict | None:
    """Correlation over days of the fleet's expected outages for the next week with the outages
    that then started: forecast-driven against climatological. The lift table ranks circuits
    within a day, which a forecast that knows which weeks are stormy does not change much."""
    try:
        t = reads.weekly_outage_totals(con)
    except Exception:  # noqa: BLE001 - a warehouse of before the forecast columns
        return None
    if len(t) < 3 or t["realized"].std() == 0:
        return None
    return {"days": int(len(t)),
            "forecast_correlation": float(t["forecast"].corr(t["realized"])),
            "climatology_correlation": float(t["climatology"].corr(t["realized"])),
            "forecast_mean": float(t["forecast"].mean()),
            "climatology_mean": float(t["climatology"].mean()),
            "realized_mean": float(t["realized"].mean())}


def _registry(con) -> pd.DataFrame:
    return reads.registry_versions(con, (models.MAINTENANCE, models.OUTAGE))


def format_report(ev: Evaluation) -> str:
    lines = ["Model quality on held-out time (scored by models trained before each day)"]
    for name, m in (("maintenance (fails within 30 days)", ev.maintenance),
                    ("outage (environmental outage that day)", ev.outage)):
        lines.append(f"  {name:<42} ROC AUC {m['roc_auc']:.3f}  PR AUC {m['pr_auc']:.3f}  "
                     f"({m['rows']:,} rows, {m['positives']:,} positive, {m.get('days', 0)} days)")
    if not ev.registry.empty:
        promoted = ev.registry[ev.registry["status"] == "promoted"]
        for name, g in promoted.groupby("model_name"):
            lines.append(f"  {name} registry holdouts: mean ROC AUC {g['roc_auc'].mean():.3f}, "
                         f"PR AUC {g['pr_auc'].mean():.3f} over {len(g)} promoted version(s) "
                         f"of {int((ev.registry['model_name'] == name).sum())} trained")
    lines.append("")
    lines.append(f"Share of realized customer-minutes (next 7 days, all causes) on the top "
                 f"{TOP_SHARE:.0%} of circuits, mean over {ev.lift_days} daily lists")
    for row in ev.lift.itertuples(index=False):
        lines.append(f"  {row.ranking:<54} {row.captured:6.1%}  ({row.days} days)")
    best, share = ev.best_single()
    integrated = float(ev.lift.loc[ev.lift["ranking"] == "integrated list", "captured"].iloc[0])
    lines.append(f"  integrated / best single ({best}): {integrated / share:.2f}x")
    if ev.timing:
        t = ev.timing
        lines.append(f"  the fleet's expected outages for the next week against those that then "
                     f"started ({t['days']} days): correlation {t['forecast_correlation']:.2f} from "
                     f"the forecast, {t['climatology_correlation']:.2f} from climatology (means "
                     f"{t['forecast_mean']:.1f} and {t['climatology_mean']:.1f}; realized "
                     f"{t['realized_mean']:.1f})")
    top = max(1, int(round(TOP_SHARE * ev.circuits)))
    if top < SMALL_TOP:
        lines.append(f"  note: the top {TOP_SHARE:.0%} is {top} circuit(s) of {ev.circuits}, so a few "
                     "storms decide these shares; `make evaluate-large` (200 circuits) measures "
                     "them with far less noise")
    return "\n".join(lines)
