"""The storm list as planners use it: a sheet per circuit, a summary per zone, a GeoJSON layer.

`storm_priority_circuits` stores the ranked list with its raw numbers; this module turns it into
what a storm planner opens:

* `planner_sheet`: one row per circuit with the alert window in UTC and in the zone's local time,
  the zone, the circuit's latitude and longitude, the day of the circuit state the list was scored
  with, and the numbers rounded, their units in the column names (`SHEET_COLUMNS`).
* `zone_summary`: one row per zone with its circuits, customers, expected outages and the crews to
  stage, by the rule of `suggested_crews`.
* `sheet_geojson`: the sheet as a GeoJSON FeatureCollection of points, for GIS tools.

Local time. Stored alert times are UTC (the parser converts every offset), so the local time is
derived from the zone: the two letters of a UGC code are the state, and `STATE_TIME_ZONES` gives
the state's main IANA time zone (daylight saving included). A few states span two zones (the
Idaho panhandle, western Oregon's Malheur county, the Florida panhandle, west Texas, the Dakotas'
and Nebraska's west, Kansas', Kentucky's, Tennessee's, Indiana's and Michigan's edges): their zones
in the state's other time zone show the main zone's time. A UGC code whose prefix is not in the
table (marine zones, a typo) gets UTC, and the sheet's `time_zone` column says so.

Plain functions over frames; no dagster, no files (`gridassets/storage/storm_lists.py` writes them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

# The state's main time zone, by the two-letter prefix of a UGC zone or county code.
STATE_TIME_ZONES: dict[str, str] = {
    "AL": "America/Chicago", "AK": "America/Anchorage", "AZ": "America/Phoenix",
    "AR": "America/Chicago", "CA": "America/Los_Angeles", "CO": "America/Denver",
    "CT": "America/New_York", "DE": "America/New_York", "DC": "America/New_York",
    "FL": "America/New_York", "GA": "America/New_York", "HI": "Pacific/Honolulu",
    "ID": "America/Boise", "IL": "America/Chicago", "IN": "America/Indiana/Indianapolis",
    "IA": "America/Chicago", "KS": "America/Chicago", "KY": "America/New_York",
    "LA": "America/Chicago", "ME": "America/New_York", "MD": "America/New_York",
    "MA": "America/New_York", "MI": "America/Detroit", "MN": "America/Chicago",
    "MS": "America/Chicago", "MO": "America/Chicago", "MT": "America/Denver",
    "NE": "America/Chicago", "NV": "America/Los_Angeles", "NH": "America/New_York",
    "NJ": "America/New_York", "NM": "America/Denver", "NY": "America/New_York",
    "NC": "America/New_York", "ND": "America/Chicago", "OH": "America/New_York",
    "OK": "America/Chicago", "OR": "America/Los_Angeles", "PA": "America/New_York",
    "RI": "America/New_York", "SC": "America/New_York", "SD": "America/Chicago",
    "TN": "America/Chicago", "TX": "America/Chicago", "UT": "America/Denver",
    "VT": "America/New_York", "VA": "America/New_York", "WA": "America/Los_Angeles",
    "WV": "America/New_York", "WI": "America/Chicago", "WY": "America/Denver",
    "PR": "America/Puerto_Rico", "VI": "America/St_Thomas", "GU": "Pacific/Guam",
    "AS": "Pacific/Pago_Pago", "MP": "Pacific/Saipan",
}
UNKNOWN_TIME_ZONE = "UTC"

# Crews to stage per zone: one crew for every OUTAGES_PER_CREW outages the zone is expected to
# have over the alert window, rounded up; a zone expecting fewer than MIN_OUTAGES_FOR_A_CREW gets
# none (a neighbouring zone's crews cover it). A two-person line crew clears about three
# distribution outages in a storm shift: a planning assumption, to be set to the utility's own.
OUTAGES_PER_CREW = 3.0
MIN_OUTAGES_FOR_A_CREW = 0.5

# The planner's sheet, in order. Units are in the names; times are ISO 8601.
SHEET_COLUMNS = [
    "storm_id", "rank", "circuit_id", "zone", "latitude", "longitude", "status", "event",
    "gust_mph", "alert_onset_utc", "alert_end_utc", "alert_onset_local", "alert_end_local",
    "time_zone", "expected_outages", "priority_customer_minutes", "outage_customer_minutes",
    "transformer_customer_minutes", "vegetation_customer_minutes", "customers",
    "critical_customers", "state_date", "state_age_days", "reason", "outage_model_version",
    "conditions_source",
]
ZONE_COLUMNS = [
    "storm_id", "zone", "event", "gust_mph", "alert_onset_utc", "alert_end_utc",
    "alert_onset_local", "alert_end_local", "time_zone", "circuits", "customers",
    "critical_customers", "expected_outages", "priority_customer_minutes", "suggested_crews",
]
# What the sheet needs from a storm_priority_circuits frame.
LIST_COLUMNS = [
    "storm_id", "rank", "circuit_id", "zone", "latitude", "longitude", "status", "event",
    "max_wind_gust_mph", "window_start", "window_end", "expected_outages", "priority_score",
    "outage_score", "transformer_score", "vegetation_score", "customers", "critical_customers",
    "state_date", "state_age_days", "reason", "outage_model_version", "conditions_source",
]
COORDINATE_DECIMALS = 5  # about a metre


def zone_time_zone(zone: str) -> str:
    """The IANA time zone of a UGC zone or county code ('MTZ309' -> 'America/Denver'), from the
    state prefix; `UNKNOWN_TIME_ZONE` for a prefix that is no state (marine zones)."""
    return STATE_TIME_ZONES.get(str(zone).strip().upper()[:2], UNKNOWN_TIME_ZONE)


def with_locations(frame: pd.DataFrame, circuits: pd.DataFrame) -> pd.DataFrame:
    """`frame` (with `circuit_id`) with each circuit's `latitude` and `longitude` from the
    registry `circuits`; empty (NaN) where the registry has none (they are optional in landing
    files). Does not modify its inputs."""
    located = circuits[["circuit_id"]].copy()
    for col in ("latitude", "longitude"):
        located[col] = (pd.to_numeric(circuits[col], errors="coerce") if col in circuits
                        else np.nan)
    out = frame.drop(columns=["latitude", "longitude"], errors="ignore")
    return out.merge(located.astype({"latitude": float, "longitude": float}),
                     on="circuit_id", how="left")


def planner_sheet(frame: pd.DataFrame) -> pd.DataFrame:
    """The planner's sheet (`SHEET_COLUMNS`) of a storm_priority_circuits frame (`LIST_COLUMNS`;
    window times naive UTC, empty for a cancelled storm), in rank order.

    Scores are rounded to whole customer-minutes, expected outages to 2 decimals, gusts to whole
    mph, coordinates to `COORDINATE_DECIMALS`. Raises ValueError naming the columns missing.
    """
    _require(frame, LIST_COLUMNS, "planner_sheet")
    f = frame.sort_values("rank")
    zone = f["zone"].astype(str)
    tz = zone.map(zone_time_zone)
    start, end = _utc(f["window_start"]), _utc(f["window_end"])
    sheet = pd.DataFrame({
        "storm_id": f["storm_id"].astype(str),
        "rank": f["rank"].astype(int),
        "circuit_id": f["circuit_id"].astype(str),
        "zone": zone,
        "latitude": pd.to_numeric(f["latitude"], errors="coerce").round(COORDINATE_DECIMALS),
        "longitude": pd.to_numeric(f["longitude"], errors="coerce").round(COORDINATE_DECIMALS),
        "status": f["status"].astype(str),
        "event": f["event"].fillna("").astype(str),
        "gust_mph": _whole(f["max_wind_gust_mph"]),
        "alert_onset_utc": [_iso_utc(t) for t in start],
        "alert_end_utc": [_iso_utc(t) for t in end],
        "alert_onset_local": [_iso_local(t, z) for t, z in zip(start, tz)],
        "alert_end_local": [_iso_local(t, z) for t, z in zip(end, tz)],
        "time_zone": tz,
        "expected_outages": pd.to_numeric(f["expected_outages"], errors="coerce").round(2),
        "priority_customer_minutes": _whole(f["priority_score"]),
        "outage_customer_minutes": _whole(f["outage_score"]),
        "transformer_customer_minutes": _whole(f["transformer_score"]),
        "vegetation_customer_minutes": _whole(f["vegetation_score"]),
        "customers": _whole(f["customers"]),
        "critical_customers": _whole(f["critical_customers"]),
        "state_date": pd.to_datetime(f["state_date"]).dt.strftime("%Y-%m-%d"),
        "state_age_days": pd.to_numeric(f["state_age_days"], errors="coerce").astype("Int64"),
        "reason": f["reason"].astype(str),
        "outage_model_version": f["outage_model_version"],
        "conditions_source": f["conditions_source"].fillna("").astype(str),
    })
    return sheet[SHEET_COLUMNS].reset_index(drop=True)


def suggested_crews(expected_outages: float) -> int:
    """Crews to stage for a zone expecting `expected_outages` over the alert window: one per
    `OUTAGES_PER_CREW`, rounded up; none below `MIN_OUTAGES_FOR_A_CREW`."""
    if not math.isfinite(expected_outages) or expected_outages < MIN_OUTAGES_FOR_A_CREW:
        return 0
    return math.ceil(expected_outages / OUTAGES_PER_CREW)


def zone_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per zone of a storm_priority_circuits frame (`LIST_COLUMNS`): its alert window
    and gust, circuits, customers, expected outages and priority customer-minutes (summed before
    rounding) and `suggested_crews`; the zone with the most customer-minutes at risk first.
    Raises ValueError naming the columns missing."""
    _require(frame, LIST_COLUMNS, "zone_summary")
    if frame.empty:
        return pd.DataFrame(columns=ZONE_COLUMNS)
    f = frame.assign(_start=_utc(frame["window_start"]), _end=_utc(frame["window_end"]),
                     _critical=pd.to_numeric(frame["critical_customers"], errors="coerce"))
    groups = f.groupby("zone", sort=True)
    zones = groups.agg(
        storm_id=("storm_id", "first"),
        event=("event", lambda s: ", ".join(dict.fromkeys(s.dropna().astype(str)))),
        gust=("max_wind_gust_mph", "max"), start=("_start", "min"), end=("_end", "max"),
        circuits=("circuit_id", "nunique"), customers=("customers", "sum"),
        critical_customers=("_critical", "sum"), outages=("expected_outages", "sum"),
        minutes=("priority_score", "sum"),
    ).reset_index()
    tz = zones["zone"].map(zone_time_zone)
    out = pd.DataFrame({
        "storm_id": zones["storm_id"].astype(str),
        "zone": zones["zone"].astype(str),
        "event": zones["event"],
        "gust_mph": _whole(zones["gust"]),
        "alert_onset_utc": [_iso_utc(t) for t in zones["start"]],
        "alert_end_utc": [_iso_utc(t) for t in zones["end"]],
        "alert_onset_local": [_iso_local(t, z) for t, z in zip(zones["start"], tz)],
        "alert_end_local": [_iso_local(t, z) for t, z in zip(zones["end"], tz)],
        "time_zone": tz,
        "circuits": zones["circuits"].astype(int),
        "customers": _whole(zones["customers"]),
        "critical_customers": _whole(zones["critical_customers"]),
        "expected_outages": zones["outages"].astype(float).round(2),
        "priority_customer_minutes": _whole(zones["minutes"]),
        "suggested_crews": [suggested_crews(float(x)) for x in zones["outages"]],
        "_order": zones["minutes"].astype(float),
    })
    out = out.sort_values(["_order", "zone"], ascending=[False, True]).drop(columns="_order")
    return out[ZONE_COLUMNS].reset_index(drop=True)


def sheet_geojson(sheet: pd.DataFrame) -> dict[str, Any]:
    """The planner's sheet as a GeoJSON FeatureCollection (RFC 7946): one Point feature per
    circuit at [longitude, latitude] (WGS 84), its properties the sheet's columns; a circuit
    without coordinates gets a null geometry, so it is still listed. Values are plain JSON (no
    NaN). Raises ValueError naming the columns missing."""
    _require(sheet, ["latitude", "longitude"], "sheet_geojson")
    features = []
    for record in sheet.to_dict(orient="records"):
        properties = {str(k): _json_value(v) for k, v in record.items()}
        lat, lon = properties["latitude"], properties["longitude"]
        geometry = (None if lat is None or lon is None
                    else {"type": "Point", "coordinates": [lon, lat]})
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    return {"type": "FeatureCollection", "features": features}


# --------------------------------------------------------------------------------------------


def _require(frame: pd.DataFrame, columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: the storm list lacks column(s) {', '.join(missing)}")


def _utc(values: pd.Series) -> pd.Series:
    """Naive-UTC (or aware) times as aware UTC timestamps; NaT stays NaT."""
    times = pd.to_datetime(values)
    return times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")


def _iso_utc(t) -> str:
    return "" if pd.isna(t) else t.strftime("%Y-%m-%dT%H:%MZ")


def _iso_local(t, tz: str) -> str:
    return "" if pd.isna(t) else t.tz_convert(tz).isoformat(timespec="minutes")


def _whole(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").round(0).astype("Int64")


def _json_value(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v
