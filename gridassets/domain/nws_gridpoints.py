"""National Weather Service gridpoint forecasts (`api.weather.gov/gridpoints/{office}/{x},{y}`) as
hourly forecast rows.

A gridpoint file's `properties.<layer>` holds a unit (`uom`) and `values`: a list of
`{validTime, value}` where `validTime` is an ISO 8601 interval, a start and a duration
(`2024-02-23T18:00:00+00:00/PT3H`: one value for three hours). The layers read here:

- `temperature` (degC or degF) -> temp_c
- `windSpeed`, `windGust` (km/h, m/s, knots or mph) -> wind_speed_mph, wind_gust_mph
- `quantitativePrecipitation` (mm or inches, over the whole interval) -> precip_mm, spread
  evenly over the interval's hours (32.4 mm over PT6H is 5.4 mm an hour)
- `probabilityOfPrecipitation` (percent) -> precip_probability_pct (optional)

Every other quantity is the interval's value in each of its hours. An hour is kept when the four
required layers all have a value for it; `properties.updateTime` is the issue time. Anything
malformed raises `GridpointError` naming the layer and the value's position.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

MAX_BYTES = 20_000_000  # a real gridpoint file is about 200 kB
MAX_INTERVAL_HOURS = 24 * 30

KM_H_PER_MPH = 1.609344
_SPEED_TO_MPH = {
    "wmoUnit:km_h-1": 1 / KM_H_PER_MPH,
    "wmoUnit:m_s-1": 3600 / 1609.344,
    "wmoUnit:kt": 1.852 / KM_H_PER_MPH,
    "wmoUnit:mi_h-1": 1.0,
}
_PRECIP_TO_MM = {"wmoUnit:mm": 1.0, "wmoUnit:in": 25.4}
_TEMP = {"wmoUnit:degC": lambda v: v, "wmoUnit:degF": lambda v: (v - 32.0) * 5.0 / 9.0}
LAYERS = {
    # layer -> (column, units accepted, required)
    "temperature": ("temp_c", tuple(_TEMP), True),
    "windSpeed": ("wind_speed_mph", tuple(_SPEED_TO_MPH), True),
    "windGust": ("wind_gust_mph", tuple(_SPEED_TO_MPH), True),
    "quantitativePrecipitation": ("precip_mm", tuple(_PRECIP_TO_MM), True),
    "probabilityOfPrecipitation": ("precip_probability_pct", ("wmoUnit:percent",), False),
}
_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+)S)?)?")


class GridpointError(ValueError):
    """A gridpoint forecast that cannot be read; the message says which layer and value."""


def gridpoint_of(doc: dict) -> tuple[str, int, int]:
    """(office, grid_x, grid_y) the file says it is for."""
    props = _properties(doc)
    try:
        return str(props["gridId"]), int(props["gridX"]), int(props["gridY"])
    except (KeyError, TypeError, ValueError):
        raise GridpointError("properties.gridId, gridX and gridY are missing or not numbers"
                             ) from None


def issued_at(doc: dict) -> pd.Timestamp:
    """properties.updateTime as naive UTC."""
    value = _properties(doc).get("updateTime")
    if not isinstance(value, str):
        raise GridpointError("properties.updateTime (when the forecast was issued) is missing")
    try:
        return _utc(value)
    except ValueError:
        raise GridpointError(f"properties.updateTime {value!r} is not an ISO 8601 time") from None


def hourly(doc: dict) -> pd.DataFrame:
    """One row per UTC hour the required layers all cover: valid_ts, temp_c, wind_speed_mph,
    wind_gust_mph, precip_mm, precip_probability_pct (NaN where the layer is absent)."""
    props = _properties(doc)
    series: dict[str, pd.Series] = {}
    for layer, (column, units, required) in LAYERS.items():
        if layer not in props:
            if required:
                raise GridpointError(f"layer {layer!r} is missing from properties")
            continue
        series[column] = _layer(layer, props[layer], units)
    frame = pd.DataFrame(series)
    need = [column for column, _, required in LAYERS.values() if required]
    frame = frame.dropna(subset=need).sort_index()
    if "precip_probability_pct" not in frame:
        frame["precip_probability_pct"] = np.nan
    frame.index.name = "valid_ts"
    return frame.reset_index()[["valid_ts", *[c for c, _, _ in LAYERS.values()]]]


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration such as PT1H, P2DT18H or P7D."""
    m = _DURATION.fullmatch(text.strip())
    if m is None or not any(m.groupdict().values()):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT3H or P1DT6H")
    parts = {k: int(v) for k, v in m.groupdict().items() if v}
    weeks = parts.pop("weeks", 0)
    return timedelta(days=7 * weeks + parts.pop("days", 0), **parts)


def _properties(doc: dict) -> dict:
    props = doc.get("properties") if isinstance(doc, dict) else None
    if not isinstance(props, dict):
        raise GridpointError("not a gridpoint forecast: no 'properties' object")
    return props


def _layer(name: str, layer: object, units: tuple[str, ...]) -> pd.Series:
    if not isinstance(layer, dict) or not isinstance(layer.get("values"), list):
        raise GridpointError(f"layer {name!r} has no list of values")
    uom = layer.get("uom")
    if uom not in units:
        raise GridpointError(f"layer {name!r} has unit {uom!r}; expected one of {', '.join(units)}")
    hours: dict[pd.Timestamp, float] = {}
    for i, item in enumerate(layer["values"]):
        where = f"layer {name!r} value {i + 1}"
        if not isinstance(item, dict) or "validTime" not in item:
            raise GridpointError(f"{where}: not a {{validTime, value}} object")
        start, span = _interval(item["validTime"], where)
        value = item.get("value")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise GridpointError(f"{where}: value {value!r} is not a number")
        n = int(span.total_seconds() // 3600)
        per_hour = _convert(name, uom, float(value)) / (n if name == "quantitativePrecipitation"
                                                       else 1)
        for k in range(n):
            hours[start + pd.Timedelta(hours=k)] = per_hour
    return pd.Series(hours, dtype=float)


def _interval(text: object, where: str) -> tuple[pd.Timestamp, timedelta]:
    if not isinstance(text, str) or "/" not in text:
        raise GridpointError(f"{where}: validTime {text!r} is not an ISO 8601 interval "
                             "(start/duration)")
    start_text, _, duration_text = text.partition("/")
    try:
        start = _utc(start_text)
        span = parse_duration(duration_text)
    except ValueError as exc:
        raise GridpointError(f"{where}: validTime {text!r}: {exc}") from None
    if start != start.floor("h") or span.total_seconds() % 3600:
        raise GridpointError(f"{where}: validTime {text!r} is not whole UTC hours")
    if not timedelta(hours=1) <= span <= timedelta(hours=MAX_INTERVAL_HOURS):
        raise GridpointError(f"{where}: validTime {text!r} lasts {span}, outside 1 hour.."
                             f"{MAX_INTERVAL_HOURS // 24} days")
    return start, span


def _convert(layer: str, uom: str, value: float) -> float:
    if layer == "temperature":
        return _TEMP[uom](value)
    if layer in ("windSpeed", "windGust"):
        return value * _SPEED_TO_MPH[uom]
    if layer == "quantitativePrecipitation":
        return value * _PRECIP_TO_MM[uom]
    return value


def _utc(text: str) -> pd.Timestamp:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return pd.Timestamp(moment.astimezone(timezone.utc).replace(tzinfo=None))
