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

Every list records the day of the circuit state it was scored with (`state_date`) and how old that
state was when the storm's latest alert was issued (`state_age_days`, see `StateAge`): the alert's
time, not the clock of the run, so re-running a storm gives the same answer. A list scored on state
older than the limit still comes out (planners need it), and says so in every row's reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from gridassets.domain import risk

# Liquid precipitation assumed when an alert gives none (mm over the alert window).
DEFAULT_PRECIP_MM = {"thunderstorm": 20.0, "tornado": 25.0, "hurricane": 100.0, "tropical": 60.0,
                     "winter": 10.0, "blizzard": 10.0, "ice": 15.0, "snow": 8.0}
OTHER_PRECIP_MM = 3.0
SHARE_OF_HOURS_AT_GUST = 0.5
SUSTAINED_TO_GUST = 0.6


@dataclass(frozen=True)
class StateAge:
    """How old the circuit state a storm is scored with is, counted in whole UTC days from the
    storm's latest alert (see `storm_alert_time`) to the state's day.

    The state of day D describes the circuits at the end of D, so an alert issued on D+1 finds it
    1 day old; the list is stale when the age is over `max_days`.
    """

    state_date: date
    alert_time: datetime  # UTC (naive or aware)
    max_days: int

    @property
    def days(self) -> int:
        return (self.alert_time.date() - self.state_date).days

    @property
    def stale(self) -> bool:
        return self.days > self.max_days

    def describe(self) -> str:
        """"circuit state of 2025-06-30, 3 days old" (or "... after the storm's latest alert")."""
        n = abs(self.days)
        unit = "day" if n == 1 else "days"
        when = f"{n} {unit} old" if self.days >= 0 else f"{n} {unit} after the storm's latest alert"
        return f"circuit state of {self.state_date.isoformat()}, {when}"

    def note(self) -> str | None:
        """The words every row's reason starts with when the state is stale, else None."""
        if not self.stale:
            return None
        return f"stale: {self.describe()} (the limit is {self.max_days} days)"


def storm_alert_time(storm_alerts: pd.DataFrame) -> datetime:
    """When the storm's latest message was issued: the latest ``sent`` over its messages, with the
    time the sensor received a message standing in for a message that states none.

    Takes a storm_alerts frame of one storm (columns sent, received_at; naive UTC). Raises
    ValueError if it has no message with either time.
    """
    times = pd.to_datetime(storm_alerts["sent"]).fillna(pd.to_datetime(storm_alerts["received_at"]))
    latest = times.max()
    if pd.isna(latest):
        raise ValueError("the storm's messages state no time they were sent or received")
    return latest.to_pydatetime()


def with_state(frame: pd.DataFrame, state: StateAge | None) -> pd.DataFrame:
    """`frame` with `state_date` (a TIMESTAMP day) and `state_age_days` set from `state` (both
    empty when no circuit state was used, as for a cancelled storm)."""
    day = pd.Timestamp(state.state_date) if state is not None else pd.NaT
    age = state.days if state is not None else pd.NA
    return frame.assign(
        state_date=pd.Series([day] * len(frame), index=frame.index, dtype="datetime64[us]"),
        state_age_days=pd.Series([age] * len(frame), index=frame.index, dtype="Int64"),
    )


def default_precip_mm(event: str) -> float:
    text = event.lower()
    for word, mm in DEFAULT_PRECIP_MM.items():
        if word in text:
            return mm
    return OTHER_PRECIP_MM


def storm_exposure(conditions: pd.DataFrame, circuits: pd.DataFrame, state: pd.DataFrame,
                   forecast: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per affected circuit and storm day, with the outage model's feature columns.

    conditions: one row per zone (storm_id, zone, message_id, event, onset, ends, expires,
    max_wind_gust_mph, precip_mm). circuits: the registry. state: each circuit's latest
    circuit_exposure_features row (its trees, transformer condition and loading). forecast: the
    hours of the latest weather forecast issued before the alert (zone, valid_ts, temp_c,
    wind_speed_mph, wind_gust_mph, precip_mm), or None.

    Where the forecast covers at least FORECAST_COVERAGE of a zone's alert window, the window's
    hours are the forecast's, their gusts and wind scaled so that the window's peak is the
    alert's maximum gust (the alert is the newer word on strength, the forecast on timing), its
    rain the alert's total shared out as the forecast's, or the forecast's own when the alert
    gives none. Otherwise the alert's maximum gust for SHARE_OF_HOURS_AT_GUST of the window and
    its rain (or the event's default) spread evenly. `conditions_source` says which.
    """
    rows = []
    cond = conditions.merge(circuits[["circuit_id", "zone"]], on="zone", how="inner")
    state = state.set_index("circuit_id")
    hours_of = {} if forecast is None or forecast.empty else {
        z: g.set_index("valid_ts").sort_index() for z, g in forecast.groupby("zone")}
    for c in cond.itertuples(index=False):
        if c.circuit_id not in state.index:
            continue
        start = c.onset if pd.notna(c.onset) else None
        end = max([t for t in (c.ends, c.expires) if pd.notna(t)], default=None)
        hours = 24.0 if start is None or end is None else max(1.0, (end - start).total_seconds() / 3600)
        days = max(1, math.ceil(hours / 24))
        gust = float(c.max_wind_gust_mph)
        given = float(c.precip_mm) if pd.notna(c.precip_mm) else None
        s = state.loc[c.circuit_id]
        common = {"storm_id": c.storm_id, "circuit_id": c.circuit_id, "zone": c.zone,
                  "message_id": c.message_id, "event": c.event, "window_start": start,
                  "window_end": end, "window_hours": hours, "peak_gust_mph": gust,
                  **{col: s[col] for col in STATE_COLUMNS}, "state_date": s["date"]}
        window = _forecast_window(hours_of.get(c.zone), start, end)
        if window is not None:
            scale = gust / max(float(window["wind_gust_mph"].max()), 1.0)
            rain = window["precip_mm"].to_numpy(float)
            if given is not None:
                rain = (rain / rain.sum() * given if rain.sum() > 0
                        else np.full(len(rain), given / len(rain)))
            window = window.assign(g=window["wind_gust_mph"] * scale,
                                   w=window["wind_speed_mph"] * scale, r=rain,
                                   d=((window.index - start) / pd.Timedelta(hours=24)).astype(int))
            source = (f"forecast issued {pd.Timestamp(window['issue_date'].iloc[0]):%Y-%m-%d}: "
                      f"its hours in the alert window, gusts scaled to the alert's "
                      f"{gust:.0f} mph peak")
            so_far = 0.0
            for d, day in window.groupby("d"):
                so_far += float(day["r"].sum())
                rows.append({**common, "storm_day": int(d),
                             "max_wind_mph": float(day["w"].max()),
                             "hours_gust_over_40": float((day["g"] >= 40).sum()),
                             "hours_gust_over_55": float((day["g"] >= 55).sum()),
                             "precip_mm": float(day["r"].sum()), "precip_72h_mm": so_far,
                             "temp_min_c": float(day["temp_c"].min()),
                             "temp_max_c": float(day["temp_c"].max()),
                             "day_peak_gust_mph": float(day["g"].max()),
                             "conditions_source": source})
            continue
        precip = given if given is not None else default_precip_mm(str(c.event))
        for d in range(days):
            day_hours = min(24.0, hours - 24.0 * d)
            windy = SHARE_OF_HOURS_AT_GUST * day_hours
            rows.append({
                **common, "storm_day": d, "max_wind_mph": SUSTAINED_TO_GUST * gust,
                "hours_gust_over_40": windy if gust >= 40 else 0.0,
                "hours_gust_over_55": windy if gust >= 55 else 0.0,
                "precip_mm": precip / days, "precip_72h_mm": precip,
                "temp_min_c": s["temp_min_c"], "temp_max_c": s["temp_max_c"],
                "day_peak_gust_mph": gust,
                "conditions_source": ALERT_ONLY,
            })
    frame = pd.DataFrame(rows)
    if len(frame):
        # the model sees each day's own peak; the row keeps the alert's as the storm's maximum
        frame = frame.assign(storm_max_gust_mph=frame["peak_gust_mph"],
                             peak_gust_mph=frame.pop("day_peak_gust_mph"))
    return frame


FORECAST_COVERAGE = 0.8
ALERT_ONLY = ("no forecast for the window: the alert's maximum gust for half of its hours, its "
              "rain spread evenly")


def _forecast_window(hours: pd.DataFrame | None, start, end) -> pd.DataFrame | None:
    if hours is None or start is None or end is None:
        return None
    lo, hi = pd.Timestamp(start).floor("h"), pd.Timestamp(end)
    window = hours[(hours.index >= lo) & (hours.index < hi)]
    needed = max(1, math.ceil((hi - lo) / pd.Timedelta(hours=1)))
    return window if len(window) >= FORECAST_COVERAGE * needed else None


STATE_COLUMNS = ["length_km", "tree_canopy_pct", "years_since_trim", "transformer_mean_age_years",
                 "transformer_share_over_40y", "transformer_max_thermal_ratio",
                 "transformers_with_warnings", "peak_loading"]


def storm_outage_risk(exposure: pd.DataFrame, p: np.ndarray, p_trimmed: np.ndarray,
                      circuits: pd.DataFrame, history: pd.DataFrame, version: str) -> pd.DataFrame:
    """Per storm and circuit: expected outages, customers interrupted and customer-minutes."""
    per_day = exposure.assign(p=p, p_trimmed=np.minimum(p_trimmed, p))
    keys = ["storm_id", "circuit_id", "zone", "message_id", "event", "window_start", "window_end",
            "window_hours", "storm_max_gust_mph", "state_date", "tree_canopy_pct",
            "years_since_trim", "conditions_source"]
    frame = per_day.groupby(keys, dropna=False).agg(
        storm_days=("storm_day", "size"), precip_mm=("precip_72h_mm", "max"),
        expected_outages=("p", "sum"), expected_outages_trimmed=("p_trimmed", "sum"),
    ).reset_index().rename(columns={"storm_max_gust_mph": "max_wind_gust_mph"})
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
                        cancelled_zones: list[str], state: StateAge | None = None
                        ) -> pd.DataFrame:
    """The crew-staging list of one storm. `transformers` is `prioritization.transformer_by_circuit`
    output scaled to the storm window (may be empty). A cancelled storm lists the circuits of its
    zones with scores of zero and says so. `state` is the age of the circuit state `risk_rows` were
    scored with (None for a cancelled storm): recorded per row, and when it is stale every reason
    starts by saying so.

    Raises ValueError if a storm that is not cancelled has no risk rows: an empty list would tell
    crews to stand down from a storm nobody scored.
    """
    if status != "cancelled" and risk_rows.empty:
        raise ValueError(f"storm {storm_id} is {status} but no circuit of it has an outage risk")
    if status == "cancelled":
        zones = set(cancelled_zones)
        frame = circuits[circuits["zone"].isin(zones)][["circuit_id", "zone", "customers",
                                                         "critical_customers"]].copy()
        for col in ("outage_score", "transformer_score", "vegetation_score", "priority_score",
                    "expected_outages", "max_wind_gust_mph"):
            frame[col] = 0.0
        frame["event"] = ""
        frame["conditions_source"] = ""
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
        note = state.note() if state is not None else None
        frame["reason"] = [(f"{note}; " if note else "")
                           + _storm_reason(r, transformers_known=not transformers.empty)
                           for r in frame.itertuples(index=False)]
    # the alert window the circuit was scored over (naive UTC; empty for a cancelled storm)
    for col in ("window_start", "window_end"):
        frame[col] = (pd.to_datetime(frame[col]) if col in frame
                      else pd.Series(pd.NaT, index=frame.index)).astype("datetime64[us]")
    frame = frame.sort_values(["priority_score", "circuit_id"], ascending=[False, True])
    frame = frame.drop(columns=["storm_id", "state_date", "state_age_days"], errors="ignore")
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    frame.insert(0, "storm_id", storm_id)
    frame["status"] = status
    return with_state(frame.reset_index(drop=True), state if status != "cancelled" else None)


# --------------------------------------------------------------------------------------------
# What the storm assets' checks verify: each returns the problems found, [] when there are none.


def outage_risk_problems(frame: pd.DataFrame, status: str) -> list[str]:
    """Problems of a storm_outage_risk frame: no circuit scored for a storm that is not cancelled,
    a circuit scored twice, expected outages that are not a number of 0 or more, no model version."""
    if frame.empty:
        return [] if status == "cancelled" else [f"no circuit scored for a storm that is {status}"]
    problems = []
    twice = sorted(frame.loc[frame["circuit_id"].duplicated(), "circuit_id"].astype(str).unique())
    if twice:
        problems.append(f"circuits scored more than once: {', '.join(twice)}")
    outages = pd.to_numeric(frame["expected_outages"], errors="coerce")
    bad = frame.loc[~(np.isfinite(outages) & (outages >= 0)), "circuit_id"].astype(str)
    if len(bad):
        problems.append(f"expected outages not a number of 0 or more for {', '.join(bad)}")
    if frame["model_version"].isna().any():
        problems.append("rows without the model version that scored them")
    return problems


def ranking_problems(frame: pd.DataFrame) -> list[str]:
    """Problems of a crew-staging list: empty, ranks other than 1..N in order, a circuit listed
    twice, priority scores that are not finite or do not fall as the rank rises."""
    if frame.empty:
        return ["the list is empty"]
    problems = []
    if list(frame["rank"]) != list(range(1, len(frame) + 1)):
        problems.append("ranks are not 1..N in order")
    if frame["circuit_id"].duplicated().any():
        problems.append("a circuit is listed more than once")
    score = pd.to_numeric(frame["priority_score"], errors="coerce")
    if not np.isfinite(score).all():
        problems.append("priority scores that are not finite numbers")
    elif (score.diff().dropna() > 1e-9).any():
        problems.append("priority scores rise further down the list")
    return problems


def _storm_reason(row, transformers_known: bool) -> str:
    timing = ("timed by the forecast" if str(getattr(row, "conditions_source", "")).startswith(
        "forecast") else "no forecast: half the window at the peak")
    parts = [f"{row.event}: gusts to {row.max_wind_gust_mph:.0f} mph over "
             f"{row.window_hours:.0f} h ({timing}), {row.expected_outages:.2f} outages expected"]
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
