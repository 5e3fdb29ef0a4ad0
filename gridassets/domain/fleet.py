"""A deterministic simulator of a distribution utility's fleet, with a hidden ground truth.

`FleetSimulator(FleetConfig(seed, n_circuits, n_transformers, zones))` gives the registry
(`circuits()`, `transformers()`), the five raw tables of any UTC day (`raw_day(day)` or one method
per table, columns exactly as in `schemas.py`) and, for evaluation only, the truth the raw data was
generated from (`transformer_condition(day)`, `storms(start, end)`, `threats(start, end)`).
Models must never read the truth.

Determinism. Every day in EPOCH_START..EPOCH_END (2015-01-01..2035-12-31) is a pure function of
`(config, day)`: each random stream of a day uses `SeedSequence([seed, stream, day.toordinal()])`,
and whatever spans days comes from seed-only timelines (`SeedSequence([seed, stream])`) built once
over the whole epoch: the fleet, the storm calendar, the slow temperature and wind anomalies, the
external hits, the life of every transformer and the telemetry threats. Autocorrelated hourly
noise is a finite moving average of per-hour innovations that belong to their own day, so series
run on across midnight and an hour has the same value whichever day asks for it. Caches only save
work.

The generative model (all times UTC; "U(a, b)" uniform, "LN(m, s)" lognormal with median m).

Fleet (registry as of REGISTRY_AS_OF = 2025-01-01)
- Circuits are dealt to zones in shuffled rounds. customers = 300 + 5700 Beta(1.3, 3.6) (skewed,
  median about 1,600); critical customers Poisson(customers / 1500), plus 5-29 on 8% of circuits;
  residential share of energy U(0.35, 0.97); overhead length LN(28 km (customers/1500)^-0.35, 0.45)
  in 3-150 km (rural feeders are long); tree canopy 80 Beta around the zone's woodedness (0.1-0.7);
  last trim 1-8 years before 2025, on a 4-7 year cycle before that and none recorded after it;
  coordinates near the zone's centroid (a function of the zone's name) inside 46.5-48.8 N,
  112.5-108.5 W.
- Base load = customers x (1.3 kW residential, 5 kW commercial, by the mix) x LN(1, 0.15).
  Heating coefficient U(0.008, 0.028) per degC below 15 degC, cooling U(0.015, 0.05) per degC
  above 22 degC. Typical annual peak = base x the weekday peak of the daily shape x the larger of
  1.05 (1 + heating (15 - (-8))) and 0.95 (1 + cooling (30 - 22)); capacity_mw = U(1.1, 1.6) x
  typical peak, so circuits with little headroom and electric heat overload in real cold snaps.
- Transformers are apportioned to circuits by customers (at least one each); ratings from standard
  sizes 25-2,500 kVA, half of them 50 kVA or less; install year = the circuit's build era
  U(1972, 2012) + N(0, 9 years), within 1965-2024. Each unit's load at the circuit's typical peak
  is P = LN(0.70, 0.2) of its rating, within 0.3-1.2. Online gas monitors on 80% of units of
  500 kVA and more and 25% of the rest (about a third); hot-spot readings on 90% / 56% (about
  60%); the oil sensor has a fixed calibration offset N(0, 1.5 degC), the site's ambient N(0, 1).

Weather, per zone and hour
- temp = 6.5 - 14.5 cos(2 pi (doy - 18) / 365.25) (Jan about -8, Jul about +21 degC)
  + (5 - 1.5 season) cos(2 pi (solar hour - 15) / 24) + zone offset N(0, 1.2)
  + shared anomaly: daily AR(1), phi 0.82, sd 7 degC in January and 2 degC in July, plus Arctic
  outbreaks (Poisson 1.8 per winter, -8 to -18 degC over 3-9 days) and heat waves (1 per summer,
  +5 to +9 degC over 3-7 days) + zone anomaly AR(1) phi 0.7, sd 1 + hourly noise sd 1.2 (phi 0.85).
- wind = zone mean U(9, 15) mph x (1 + 0.15 season) x (1 + 0.25 diurnal) x exp(synoptic), the
  synoptic log-anomaly shared (AR(1) phi 0.6, sd 0.35) plus zonal (phi 0.5, sd 0.2) plus hourly
  noise, capped to [-1.5, 0.8]; gust = wind x U(1.25, 1.6). Showers on 18-32% of days (most in
  May-June): 2-12 hours of exponential rain, mean 0.5 mm/h (0.3 in the cold half of the year).
- Storms: a seed-only Poisson calendar, STORMS_PER_MONTH (about 35 a year), thunderstorms with
  THUNDERSTORM_SHARE of the month, otherwise wind storms. Duration 6-14 h (thunderstorm) or 12-36 h
  (wind); peak gust G = 40 + 50 Beta(1.6, 3.2) mph; each zone is hit when U < extent ~ Beta(2, 2)
  (at least one zone), with intensity U(0.7, 1.0). In a hit zone the gust is at least
  G x intensity x profile x (1 + 0.07 N), the profile rising as sin^2 to 1 at 30-60% of the
  duration and falling to 0 at the end; wind = that gust / U(1.4, 1.65); rain
  (4 + 16 Beta(1.5, 3)) x intensity x profile^4 x U(0.6, 1.4) mm/h for thunderstorms (which also
  cool the air by up to 3 degC), U(0, 1.5) x intensity x profile x U(0.6, 1.4) for wind storms.

Feeder load, per circuit and hour
- load = base x shape(local clock hour in America/Denver with US daylight time, weekday or
  weekend/holiday, the residential/commercial mix) x (1 + 0.05 cos(2 pi (doy + 10) / 365.25))
  x (1 + heating max(15 - T, 0) + cooling max(T - 22, 0)) x exp(0.025 e_fast + 0.03 e_slow), where
  T is the zone temperature averaged over the last 24 h with a 6 h exponential weight and e_fast,
  e_slow are unit-variance moving averages with phi 0.85 over 24 h and phi 0.97 over 96 h.

Transformer lives (seed-only timeline over the epoch)
- Each position holds a sequence of units. Wear-out hazard per year of a unit aged a:
  0.06 x z x exp(0.8 (P - 0.7) / 0.25) x 2^((a - 30) / 10), frailty z ~ Gamma(2, 1/2). The first
  unit's age comes from its install year; a failed unit is replaced at once by a new one (age 0,
  new frailty, new traits) that is back in service after LN(6 h, 0.4) within 2-20 h. The registry
  row is not changed. A position whose registry install year is after 2015 holds an older unit
  until then that is swapped without failing.
- External hits (lightning, vehicles, animals): a background of 0.005 per unit-year plus, for every
  storm and hit zone, each unit there with p = 0.001 ((zone gust - 35)+ / 30)^2 (x 1.5 for
  thunderstorms), near the storm's peak. A unit fails at the earlier of its wear-out time and its
  next external hit (none within 24 h of its start).
- A wear-out failure is thermal with p = clip(0.45 + 0.6 (P - 0.7), 0.2, 0.85), otherwise
  dielectric. It is preceded by D = 30 + 120 Beta(1.3, 1.6) days (median about 80) of degradation:
  severity s = ((t - onset) / D)^p, p ~ U(1.0, 2.2), rising to 1 at failure; each unit's fault
  shows with strength g ~ LN(1, 0.5), and sg = s g. External failures have no precursor.
- Over the epoch about 4.6% of units fail per year (75-80% wear-out, the rest external): several
  times a real utility's rate, so that a 180-day demo window on 2,000 units has several dozen
  failures (37 for seed 7 from 2025-01-01). The failure record says "unknown" for 15% of wear-out
  and 10% of external failures.

Transformer telemetry, per unit and hour
- load_pct = 100 K, K = P x circuit load / typical peak x exp(0.1 N - 0.005); 0 while out of
  service.
- ambient = zone temperature + site offset + 0.4 N.
- Top oil (IEEE C57.91 flavour): steady rise R_o ((K^2 L + 1) / (L + 1))^0.8, R_o ~ U(45, 58) degC,
  loss ratio L ~ U(3, 7); a thermal fault makes it rise x (1 + 0.6 sg) + 8 sg, a dielectric one
  + 3 sg; the oil follows with a 3 h time constant; reported = oil + calibration + 0.6 N.
- Hot spot = oil + R_h K^1.6 (R_h ~ U(20, 30); x (1 + 0.5 sg) + 8 sg for thermal faults)
  + calibration + 1.0 N, where measured.
- Gases, where monitored: baselines H2 LN(20, 0.6), C2H4 LN(3, 0.7) (both x (1 + age / 40)) and
  C2H2 LN(0.2, 0.9) ppm; 8% of units gas high but stably (H2 x 5-15, C2H4 x 3-8) and 3% carry
  3-15 ppm of C2H2 from a tap changer. Faults add H2 250 sg, C2H4 110 sg, C2H2 3 sg s (thermal) or
  H2 500 sg, C2H2 30 sg, C2H4 12 sg (dielectric). Readings x (1 + 0.006 (oil - 45)) x exp(0.05 N)
  plus 0.5 / 0.1 / 0.2 ppm of noise.

Outages, per circuit: Poisson events with hourly rates (L = length in km,
g = ((gust - 35)+ / 20)^2.5)
- weather 0.0005 L (g + 0.4 (rain / 10)^1.5 in storms);
- vegetation 0.001 L canopy (0.15 + min(years since trim, 10) / 5) (0.02 + g);
- animal 0.00004 sqrt(L) (1 + 0.6 in early summer); unknown 0.0001 L / 30;
- equipment (0.0015 x the summed severity of its transformers + 0.00012 L / 30 x mean age / 30)
  x (1 + g); overload 0.05 (0.2 + 20 excess) while load exceeds capacity;
- and one equipment outage for every transformer failure, a few minutes after it, for that unit's
  customers (circuit customers / units x LN(1, 0.5); a lateral in 10%), lasting the repair time.
- Customers: the whole feeder with p = 0.15, 0.12, 0.05, 0.08, 0.5, 0.05 (weather, vegetation,
  equipment, animal, overload, unknown) + 0.006 (gust - 35)+, at most 0.6; otherwise a lateral of
  2-30% (log-uniform). Duration LN(150, 180, 120, 60, 45, 75 min by cause, 0.7) x
  (1 + (gust - 35)+ / 25), 5 min to 3 days.
- Recorded cause: weather -> unknown 12%, -> vegetation 8%; vegetation -> unknown 12%, -> weather
  15%; equipment -> unknown 6% (8% for transformer failures); animal -> unknown 15%; overload ->
  equipment 10%.
About 15 outages per circuit-year; realized customer impact needs weather x vegetation, asset
condition, loading and the customers served together.

Telemetry threats (FleetConfig.threats, on by default; constants in threats.py). A seed-only
calendar over the epoch (stream _S_THREATS); rates per device-year; "clean" is the threat-free
reading. Transformer events that would straddle a unit's failure, replacement or repair are
dropped (failed and out-of-service units keep their normal readings), except 3a and 4.
1. load_injection, 0.5 per circuit-year, 1-3 days; each day a window of 3-10 consecutive UTC
   hours: scale_up (60%) load x U(1.15, 1.40), scale_down (20%) x U(0.65, 0.85), offset (20%)
   + U(0.15, 0.35) x base_mw; rounded to 3 decimals, at least 0.
2. replay, 0.2 per circuit-year (feeder load) and 0.01 per unit-year (every telemetry channel),
   1-2 whole days; day D re-sends the clean readings of D - k, k in 1..7 fixed per event; exact
   (50%) or jittered (load and gases x (1 + N(0, 0.002)), temperatures + N(0, 0.05) degC, drawn
   from the event's seed and the day, rounded like the originals).
3. oil_sensor_frozen: (a) before_failure on 20% of thermal wear-out failures, from
   floor(failure - U(7, 30) days) (not before the hour after service start) to the failure
   minute; (b) background, 0.005 per unit-year, 2-10 days at a random hour. Oil and hot spot
   report the clean reading of the hour before the attack, every hour.
4. oil_sensor_spoofed, scaled_rise: another (disjoint) 20% of thermal wear-out failures, same
   span: oil = ambient + (oil - ambient) c, hot spot likewise, c ~ U(0.55, 0.75), rounded.
5. clock_shift, 0.01 per unit-year, 1-5 whole days: every channel k in (2, 3, 4, 6, 7) hours
   late; hour h reports the clean reading of h - k (the day before's for the first k hours).
6. silent_group, 0.3 per circuit-year, 1-2 whole days: n = max(3, ceil(U(0.3, 1) x the
   circuit's units)) consecutive units of the circuit (at most 3% of the fleet; none on circuits
   of fewer than 3) send no rows; events that would silence more than 4% of the fleet on a day
   are dropped whole, in order of start, so the 95% completeness rule holds.
A day applies, in order: replay, load injection (feeder load); replay, clock shift, frozen,
spoofed (on what the earlier threats left), silent (rows removed). Other days' clean readings come
from `_make_physics(day, positions)`, which computes only the positions asked for.
docs/ground-truth.md says the same in words.
"""

from __future__ import annotations

import functools
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable

import numpy as np
import pandas as pd

from gridassets.domain import forecast_error
from gridassets.domain import threats as threat_model
from gridassets.domain.forecast_error import storm_profile as _storm_profile
from gridassets.domain.schemas import (
    CIRCUITS,
    FORECAST_DAYS,
    FEEDER_LOAD,
    OUTAGE_CAUSES,
    OUTAGE_EVENTS,
    TRANSFORMER_FAILURES,
    TRANSFORMER_TELEMETRY,
    TRANSFORMERS,
    WEATHER_FORECASTS,
    WEATHER_OBSERVATIONS,
    TableSpec,
)

DEFAULT_ZONES = ("MTZ309", "MTZ310", "MTZ311", "MTZ312", "MTZ313", "MTZ314", "MTZ315", "MTZ317")

EPOCH_START = date(2015, 1, 1)
EPOCH_END = date(2035, 12, 31)
# The registry (install years, last trim dates) describes the fleet as of this date.
REGISTRY_AS_OF = date(2025, 1, 1)

HOURS_PER_YEAR = 8766.0
_EPOCH_HOURS = ((EPOCH_END - EPOCH_START).days + 1) * 24
_ORIGIN = np.datetime64(EPOCH_START.isoformat(), "ns")
_HOUR = np.timedelta64(1, "h")

# Montana bounding box for circuit coordinates (degrees).
LAT_RANGE = (46.5, 48.8)
LON_RANGE = (-112.5, -108.5)

# --- ground-truth parameters (documented in the module docstring and docs/ground-truth.md) ---

# Weather
TEMP_ANNUAL_MEAN_C = 6.5
TEMP_ANNUAL_AMPLITUDE_C = 14.5  # Jan about -8 C, Jul about +21 C
TEMP_COLDEST_DOY = 18
TEMP_ANOMALY_PHI = 0.82  # day-to-day persistence of the shared anomaly
TEMP_HOURLY_NOISE_C = 1.2
COLD_SNAPS_PER_WINTER = 1.8
HEAT_WAVES_PER_SUMMER = 1.0
WIND_SYNOPTIC_SD = 0.35  # log-scale, shared by all zones
STORMS_PER_MONTH = (3.0, 2.5, 2.5, 2.5, 2.5, 3.5, 4.0, 3.5, 2.0, 2.0, 3.0, 3.0)
THUNDERSTORM_SHARE = (0.0, 0.0, 0.05, 0.15, 0.5, 0.85, 0.95, 0.9, 0.6, 0.15, 0.0, 0.0)

# Load
HEATING_BALANCE_C = 15.0
COOLING_BALANCE_C = 22.0
DESIGN_COLD_C = -8.0  # reference cold evening for the typical annual peak (smoothed temperature)
DESIGN_HOT_C = 30.0

# Transformer failures
INTRINSIC_RATE_AT_30 = 0.06  # failures per unit-year at age 30, peak loading 0.7, frailty 1
AGE_DOUBLING_YEARS = 10.0
LOADING_LOG_EFFECT = 0.8  # log-hazard per 0.25 of peak loading above 0.7
FRAILTY_SHAPE = 2.0  # gamma, mean 1
EXTERNAL_BACKGROUND_RATE = 0.005  # per unit-year: vehicles, animals, vandalism
EXTERNAL_STORM_P = 0.001  # per unit and storm at (gust - 35) = 30 mph in the unit's zone
DEGRADATION_DAYS = (30, 150)
MIN_LIFE_HOURS = 24.0

# Outages: events per hour per circuit (see _outage_rates)
OUTAGE_GUST_THRESHOLD_MPH = 35.0
A_WEATHER = 0.0005
A_VEGETATION = 0.0010
A_ANIMAL = 0.00004
A_UNKNOWN = 0.0001
A_EQUIPMENT_BASE = 0.00012
A_EQUIPMENT_SEVERITY = 0.0015
A_OVERLOAD = 0.05  # per hour at the threshold, rising with the excess

_CAUSE = {name: i for i, name in enumerate(OUTAGE_CAUSES)}

# Standard pole- and pad-mount sizes, and the share of the fleet assumed for each.
_RATINGS_KVA = np.array([25, 37.5, 50, 75, 100, 167, 250, 333, 500, 750, 1000, 1500, 2000, 2500])
_RATING_SHARE = np.array([22, 6, 21, 12, 9, 8, 6, 4, 5, 3, 1.8, 1.2, 0.6, 0.4])

# Hourly shapes by local clock hour (normalized below to a weekday mean of 1).
_RES_WEEKDAY = np.array([0.62, 0.57, 0.54, 0.53, 0.55, 0.63, 0.80, 0.98, 1.02, 0.97, 0.93, 0.91,
                         0.90, 0.89, 0.90, 0.95, 1.06, 1.24, 1.36, 1.38, 1.33, 1.20, 1.00, 0.78])
_RES_WEEKEND = np.array([0.66, 0.60, 0.56, 0.54, 0.54, 0.57, 0.65, 0.78, 0.92, 1.02, 1.06, 1.06,
                         1.04, 1.02, 1.01, 1.03, 1.10, 1.24, 1.34, 1.35, 1.30, 1.18, 0.99, 0.80])
_COM_WEEKDAY = np.array([0.55, 0.53, 0.52, 0.52, 0.54, 0.62, 0.80, 1.05, 1.28, 1.38, 1.42, 1.44,
                         1.43, 1.44, 1.43, 1.40, 1.32, 1.15, 0.95, 0.82, 0.73, 0.66, 0.61, 0.57])
_COM_WEEKEND = np.array([0.52, 0.51, 0.50, 0.50, 0.51, 0.54, 0.60, 0.68, 0.76, 0.82, 0.85, 0.86,
                         0.86, 0.85, 0.83, 0.80, 0.76, 0.72, 0.67, 0.63, 0.60, 0.57, 0.55, 0.53])
_SHAPES = np.stack([
    _RES_WEEKDAY / _RES_WEEKDAY.mean(),
    _RES_WEEKEND / _RES_WEEKDAY.mean(),
    _COM_WEEKDAY / _COM_WEEKDAY.mean(),
    _COM_WEEKEND / _COM_WEEKDAY.mean(),
])

# How a unit's life ends; the names are those of FAILURE_MODES (None: not a failure).
_NONE, _THERMAL, _DIELECTRIC, _EXTERNAL, _PLANNED = 0, 1, 2, 3, 4
_MODE_NAMES = np.array([None, "thermal", "dielectric", "external", None], dtype=object)

# Random streams: every stream has its own SeedSequence, so no draw depends on another's order.
_S_FLEET, _S_CLIMATE, _S_STORMS, _S_EXTERNAL, _S_LIVES = 1, 2, 3, 4, 5
_S_THREATS = 6
_S_WEATHER, _S_LOAD, _S_TX_LOAD, _S_TX_SENSOR, _S_OUTAGES = 11, 12, 13, 14, 15
_S_FORECAST = 16
# transformer telemetry's value columns, in the order of TRANSFORMER_TELEMETRY
_CHANNELS = ("load_pct", "oil_temp_c", "ambient_temp_c", "hot_spot_temp_c", "h2_ppm", "c2h2_ppm",
             "c2h4_ppm")
_TX_STREAMS = {_S_TX_LOAD: ("load", "ambient"),
               _S_TX_SENSOR: ("oil", "hot_spot", "h2", "c2h2", "c2h4")}
_DTYPES = {"str": object, "int": "int64", "float": "float64", "date": object,
           "timestamp": "datetime64[ns]"}


@dataclass(frozen=True)
class FleetConfig:
    """Size and seed of a simulated fleet; the same config always yields the same fleet and days."""

    seed: int = 7
    n_circuits: int = 40
    n_transformers: int = 2000
    zones: tuple[str, ...] = DEFAULT_ZONES
    # telemetry threats in feeder_load and transformer_telemetry; False gives clean telemetry
    threats: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "zones", tuple(self.zones))
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {self.seed!r}")
        if self.n_circuits < 1:
            raise ValueError(f"n_circuits must be at least 1; got {self.n_circuits}")
        if self.n_transformers < self.n_circuits:
            raise ValueError(
                f"n_transformers ({self.n_transformers}) must be at least "
                f"n_circuits ({self.n_circuits})"
            )
        if not self.zones or len(set(self.zones)) != len(self.zones):
            raise ValueError(f"zones must be non-empty and distinct; got {self.zones!r}")


def _synchronized(method: Callable) -> Callable:
    @functools.wraps(method)
    def locked(self: FleetSimulator, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class _LRU:
    """A small least-recently-used cache; values are pure functions of their key."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._data: OrderedDict[Any, Any] = OrderedDict()

    def peek(self, key: Any) -> Any:
        """The cached value, or None; does not change the order of eviction."""
        return self._data.get(key)

    def put(self, key: Any, value: Any) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def get(self, key: Any, build: Callable[[], Any]) -> Any:
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        value = build()
        self._data[key] = value
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)
        return value


@dataclass
class _Fleet:
    circuits: pd.DataFrame
    transformers: pd.DataFrame
    # circuits
    zone: np.ndarray
    base_mw: np.ndarray
    residential: np.ndarray
    heat: np.ndarray
    cool: np.ndarray
    capacity: np.ndarray
    length: np.ndarray
    canopy: np.ndarray
    customers: np.ndarray
    last_trim_days: np.ndarray  # days from EPOCH_START to the registry's last trim
    trim_cycle_days: np.ndarray
    tx_first: np.ndarray  # index of each circuit's first transformer
    tx_count: np.ndarray
    # transformers (positions)
    tx_circuit: np.ndarray
    tx_zone: np.ndarray
    rating: np.ndarray
    loading: np.ndarray  # load as a fraction of rating at the circuit's typical annual peak
    typical_peak: np.ndarray  # per circuit, MW
    install_h: np.ndarray
    has_gas: np.ndarray
    has_hot_spot: np.ndarray
    oil_calibration: np.ndarray
    ambient_site: np.ndarray


@dataclass
class _Lives:
    """Every unit that occupies a transformer position during the epoch, sorted by (pos, start)."""

    pos: np.ndarray
    start: np.ndarray  # hours from EPOCH_START
    end: np.ndarray  # failure or planned swap; inf if it survives the epoch
    mode: np.ndarray  # how it ended: _NONE, _THERMAL, _DIELECTRIC, _EXTERNAL, _PLANNED
    t_intrinsic: np.ndarray  # when wear-out would fail it (inf for predecessor units)
    onset: np.ndarray  # start of degradation (inf if none)
    wear_mode: np.ndarray  # _THERMAL or _DIELECTRIC: the pattern of its degradation
    power: np.ndarray
    strength: np.ndarray
    birth: np.ndarray  # hours; for the unit's age
    service_from: np.ndarray
    top_oil_rise: np.ndarray
    loss_ratio: np.ndarray
    hot_spot_rise: np.ndarray
    h2_base: np.ndarray
    c2h2_base: np.ndarray
    c2h4_base: np.ndarray
    recorded_mode: np.ndarray  # object: what the failure record says
    outage_customers: np.ndarray
    outage_minutes: np.ndarray
    outage_cause: np.ndarray
    outage_offset_min: np.ndarray
    next_failure: np.ndarray  # the first failure at this position from this unit on (inf if none)
    next_failure_mode: np.ndarray
    key: np.ndarray  # pos * _KEY_STRIDE + start, for searchsorted


_KEY_STRIDE = 1e6  # larger than any hour count in the epoch


class FleetSimulator:
    """A deterministic synthetic utility: registry, hourly raw tables and the hidden ground truth.

    Every day is a pure function of `(config, day)`; the instance only caches. Days must lie in
    EPOCH_START..EPOCH_END; other days raise ValueError.
    """

    def __init__(self, config: FleetConfig | None = None):
        self.config = config or FleetConfig()
        self._fleet_cache: _Fleet | None = None
        self._climate_cache: dict[str, np.ndarray] | None = None
        self._storms_cache: dict[str, np.ndarray] | None = None
        self._external_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._lives_cache: _Lives | None = None
        self._threats_cache: threat_model.Calendar | None = None
        self._draws_small = _LRU(64)
        self._draws_large = _LRU(4)
        # rows of the transformer draws that threats need from other days: (stream, day, name)
        self._draw_rows = _LRU(1024)
        self._draw_needs_cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
        self._weather_cache = _LRU(16)
        self._load_cache = _LRU(16)
        self._physics_cache = _LRU(2)
        # one instance may serve several threads (sensors, in-process runs); caches are not atomic
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ public: registry

    @_synchronized
    def circuits(self) -> pd.DataFrame:
        """The circuit registry, columns of CIRCUITS, sorted by circuit_id."""
        return self._fleet.circuits.copy()

    @_synchronized
    def transformers(self) -> pd.DataFrame:
        """The transformer registry, columns of TRANSFORMERS, sorted by transformer_id."""
        return self._fleet.transformers.copy()

    # ------------------------------------------------------------------ public: raw days

    @_synchronized
    def weather_observations(self, day: date) -> pd.DataFrame:
        """Hourly weather per zone for `day` (WEATHER_OBSERVATIONS columns)."""
        day = _check_day(day)
        w = self._weather(day)
        zones = np.array(self.config.zones, dtype=object)
        order = np.argsort(zones, kind="stable")
        return _hourly_frame(WEATHER_OBSERVATIONS, day, zones[order], {
            "wind_speed_mph": w["wind"][order],
            "wind_gust_mph": w["gust"][order],
            "precip_mm": w["precip"][order],
            "temp_c": w["temp"][order],
        })

    @_synchronized
    def feeder_load(self, day: date) -> pd.DataFrame:
        """Hourly load per circuit for `day` (FEEDER_LOAD columns)."""
        day = _check_day(day)
        ids = self._fleet.circuits["circuit_id"].to_numpy()
        load = self._load(day)["load_mw"]
        if self.config.threats:
            load = self._threatened_load(day, load)
        return _hourly_frame(FEEDER_LOAD, day, ids, {"load_mw": load})

    @_synchronized
    def transformer_telemetry(self, day: date) -> pd.DataFrame:
        """Hourly loading, temperatures and gases per transformer for `day`."""
        day = _check_day(day)
        p = self._physics(day)
        ids = self._fleet.transformers["transformer_id"].to_numpy()
        values = {name: p[name] for name in _CHANNELS}
        if self.config.threats:
            ids, values = self._threatened_telemetry(day, p, ids)
        return _hourly_frame(TRANSFORMER_TELEMETRY, day, ids, values)

    @_synchronized
    def transformer_failures(self, day: date) -> pd.DataFrame:
        """Failures whose time falls in `day` (TRANSFORMER_FAILURES columns)."""
        day = _check_day(day)
        idx = self._failures_in(day)
        lives = self._lives
        ids = self._fleet.transformers["transformer_id"].to_numpy()
        frame = pd.DataFrame({
            "transformer_id": ids[lives.pos[idx]],
            "failed_at": _hours_to_ts(_failure_minute(lives.end[idx])),
            "failure_mode": lives.recorded_mode[idx].astype(object),
        })
        frame = frame.sort_values(list(TRANSFORMER_FAILURES.key), kind="stable")
        return frame.reset_index(drop=True)[TRANSFORMER_FAILURES.names]

    @_synchronized
    def outage_events(self, day: date) -> pd.DataFrame:
        """Sustained outages that started in `day` (OUTAGE_EVENTS columns)."""
        day = _check_day(day)
        return self._outages(day)

    @_synchronized
    def weather_forecasts(self, day: date) -> pd.DataFrame:
        """The forecast issued at the end of `day` for every zone and hour of the next
        FORECAST_DAYS days (WEATHER_FORECASTS columns): the true weather seen through the error
        model of `gridassets.domain.forecast_error`, with draws of its own per (seed, day)."""
        day = _check_day(day)
        days = min(FORECAST_DAYS, (EPOCH_END - day).days)  # the epoch's last ones reach its end
        if days == 0:
            return pd.DataFrame({c.name: pd.Series(dtype=_DTYPES[c.dtype])
                                 for c in WEATHER_FORECASTS.columns})
        blocks = [self._weather(day + timedelta(days=k)) for k in range(1, days + 1)]

        def joined(name: str) -> np.ndarray:
            return np.concatenate([b[name] for b in blocks], axis=1)

        truth = forecast_error.Truth(
            temp_no_cooling=joined("temp") + joined("cooling"), fair_wind=joined("fair_wind"),
            fair_gust=joined("fair_gust"), fair_precip=joined("fair_precip"))
        h0 = _hour0(day + timedelta(days=1))
        hours = 24 * days
        st = self._storms
        sel = np.flatnonzero((st["start"] < h0 + hours) & (st["end"] > h0))
        storms = forecast_error.Storms(
            start=st["start"][sel] - h0, peak=st["peak"][sel] - h0, end=st["end"][sel] - h0,
            gust=st["gust"][sel], precip=st["precip"][sel], thunder=st["thunder"][sel],
            intensity=st["intensity"][sel])
        seed = np.random.SeedSequence([self.config.seed, _S_FORECAST, day.toordinal()])
        month = (day + timedelta(days=1)).month
        values = forecast_error.forecast(truth, storms, seed, THUNDERSTORM_SHARE[month - 1])
        zones = np.array(self.config.zones, dtype=object)
        order = np.argsort(zones, kind="stable")
        start = np.datetime64((day + timedelta(days=1)).isoformat(), "ns")
        stamps = (start + np.arange(hours) * _HOUR).astype("datetime64[ns]")
        frame = pd.DataFrame({
            "issue_date": np.full(len(zones) * hours, day, dtype=object),
            "zone": np.repeat(zones[order], hours),
            "issued_at": np.full(len(zones) * hours, start),
            "valid_ts": np.tile(stamps, len(zones)),
            "lead_h": np.tile(np.arange(1, hours + 1, dtype=np.int64), len(zones)),
            **{name: np.asarray(v[order], dtype=np.float64).reshape(-1)
               for name, v in values.items()},
        })
        return frame[WEATHER_FORECASTS.names]

    @_synchronized
    def raw_day(self, day: date) -> dict[str, pd.DataFrame]:
        """All six raw tables of `day`, keyed by table name."""
        day = _check_day(day)
        return {
            TRANSFORMER_TELEMETRY.name: self.transformer_telemetry(day),
            FEEDER_LOAD.name: self.feeder_load(day),
            WEATHER_OBSERVATIONS.name: self.weather_observations(day),
            OUTAGE_EVENTS.name: self.outage_events(day),
            TRANSFORMER_FAILURES.name: self.transformer_failures(day),
            WEATHER_FORECASTS.name: self.weather_forecasts(day),
        }

    # ------------------------------------------------------------------ public: hidden truth

    @_synchronized
    def transformer_condition(self, day: date) -> pd.DataFrame:
        """Hidden health of every transformer position at 00:00 UTC of `day`.

        Columns: transformer_id; severity in [0, 1] (0 healthy, 1 at failure); degrading (the unit
        is inside its degradation period, even if severity is still near 0); next_failure_at (the
        next failure at this position, NaT if none before the epoch ends); failure_mode of that
        failure (thermal, dielectric, external; None if none). For evaluation only.
        """
        day = _check_day(day)
        t = np.array([float(_hour0(day))])
        life = self._active_lives(t)[:, 0]
        lv = self._lives
        sev = _severity(lv, life[:, None], t[None, :])[:, 0]
        degrading = (lv.onset[life] <= t[0]) & (t[0] < lv.end[life])
        end = lv.next_failure[life]
        failing = np.isfinite(end)
        next_at = np.full(len(life), np.datetime64("NaT"), dtype="datetime64[ns]")
        next_at[failing] = _hours_to_ts(_failure_minute(end[failing]))
        mode = np.where(failing, _MODE_NAMES[lv.next_failure_mode[life]], None).astype(object)
        return pd.DataFrame({
            "transformer_id": self._fleet.transformers["transformer_id"].to_numpy(),
            "severity": sev.astype(np.float64),
            "degrading": degrading.astype(bool),
            "next_failure_at": next_at,
            "failure_mode": mode,
        })

    @_synchronized
    def storms(self, start: date, end: date) -> pd.DataFrame:
        """The storm calendar the weather was generated from, one row per storm and zone hit.

        Storms overlapping start 00:00 .. end 24:00 UTC. Columns: storm_id, kind (wind or
        thunderstorm), zone, start_ts, end_ts, peak_ts, intensity, peak_gust_mph, peak_precip_mm_h.
        """
        start, end = _as_date(start), _as_date(end)
        st = self._storms
        lo, hi = _hour0(start), _hour0(end) + 24
        sel = np.flatnonzero((st["start"] < hi) & (st["end"] > lo))
        zones = np.array(self.config.zones, dtype=object)
        rows_s, rows_z = np.nonzero(st["hit"][sel])
        s = sel[rows_s]
        frame = pd.DataFrame({
            "storm_id": st["id"][s],
            "kind": np.where(st["thunder"][s], "thunderstorm", "wind").astype(object),
            "zone": zones[rows_z],
            "start_ts": _hours_to_ts(st["start"][s]),
            "end_ts": _hours_to_ts(st["end"][s]),
            "peak_ts": _hours_to_ts(st["peak"][s]),
            "intensity": st["intensity"][s, rows_z],
            "peak_gust_mph": np.round(st["gust"][s] * st["intensity"][s, rows_z], 1),
            "peak_precip_mm_h": np.round(st["precip"][s] * st["intensity"][s, rows_z], 1),
        })
        frame = frame.sort_values(["start_ts", "storm_id", "zone"], kind="stable")
        return frame.reset_index(drop=True)

    @_synchronized
    def threats(self, start: date, end: date) -> pd.DataFrame:
        """The telemetry threats written into feeder_load and transformer_telemetry, for
        evaluation only: one row per device and event overlapping start 00:00 .. end 24:00 UTC.

        Columns: threat_id (TH-000123; a silent group's transformers share one), threat (kind:
        load_injection, replay, oil_sensor_frozen, oil_sensor_spoofed, clock_shift,
        silent_group), variant, device_type (circuit or transformer), device_id, circuit_id,
        start_ts, end_ts (UTC, end exclusive) and detail (what was done, in words). Empty when
        the config has threats off.
        """
        start, end = _as_date(start), _as_date(end)
        tm = threat_model
        f = self._fleet
        cal = self._threat_calendar
        rows = cal.overlapping(_hour0(start), _hour0(end) + 24) if self.config.threats else (
            np.zeros(0, np.int64))
        circuit_ids = f.circuits["circuit_id"].to_numpy()
        tx_ids = f.transformers["transformer_id"].to_numpy()
        device_type = cal.device_type[rows]
        device = cal.device[rows]
        kind = cal.kind[rows]
        frozen = np.flatnonzero(kind == tm.OIL_FROZEN)
        oil, hot = self._frozen_values(rows[frozen])
        frozen_at = {int(j): (o, h) for j, o, h in zip(frozen, oil, hot)}
        details = []
        for j, r in enumerate(rows):
            k, v = kind[j], cal.value[r]
            if k == tm.LOAD_INJECTION:
                change = (f"load +{v * f.base_mw[device[j]]:.3f} MW ({v:.2f} x base)"
                          if cal.variant[r] == tm.OFFSET else f"load x{v:.2f}")
                wins = np.flatnonzero(cal.win_event == cal.event[r])
                details.append(f"{change} {_windows_text(cal.win_start[wins], cal.win_end[wins])}")
            elif k == tm.REPLAY:
                first = EPOCH_START + timedelta(days=int(cal.start[r] // 24) - int(v))
                days = int((cal.end[r] - cal.start[r]) // 24)
                text = f"re-sends {first}" if days == 1 else (
                    f"re-sends {first} to {first + timedelta(days=days - 1)}")
                jitter = ", jittered" if cal.variant[r] == tm.JITTERED else ""
                back = f"{int(v)} day{'s' if v > 1 else ''} back"
                details.append(f"{text} ({back}{jitter})")
            elif k == tm.CLOCK_SHIFT:
                details.append(f"readings {int(v)} h late")
            elif k == tm.SILENT:
                details.append(f"silent with {cal.group_size[r] - 1} other transformers of "
                               f"{circuit_ids[cal.circuit[r]]}")
            elif k == tm.OIL_FROZEN:
                o, h = frozen_at[j]
                details.append(f"oil frozen at {o:.1f} C"
                               + (f", hot spot at {h:.1f} C" if np.isfinite(h) else ""))
            else:
                details.append(f"oil rise over ambient x{v:.2f}"
                               + (", hot spot too" if f.has_hot_spot[device[j]] else ""))
        frame = pd.DataFrame({
            "threat_id": np.array([f"TH-{e + 1:06d}" for e in cal.event[rows]], dtype=object),
            "threat": np.array(tm.THREAT_KINDS, dtype=object)[kind],
            "variant": np.array(tm.VARIANTS, dtype=object)[cal.variant[rows]],
            "device_type": np.array(tm.DEVICE_TYPES, dtype=object)[device_type],
            "device_id": np.where(device_type == tm.CIRCUIT,
                                  circuit_ids[np.where(device_type == tm.CIRCUIT, device, 0)],
                                  tx_ids[np.where(device_type == tm.TRANSFORMER, device, 0)]),
            "circuit_id": circuit_ids[cal.circuit[rows]],
            "start_ts": _hours_to_ts(cal.start[rows]),
            "end_ts": _hours_to_ts(cal.end[rows]),
            "detail": np.array(details, dtype=object),
        })
        return frame.reset_index(drop=True)

    @_synchronized
    def expected_customer_minutes(self, day: date) -> pd.DataFrame:
        """Hidden truth, for evaluation only: per circuit, the customer-minutes its outages of
        `day` are expected to cost under the true hourly rates of every cause (weather, trees,
        animals, equipment from the true condition of its transformers, overload, unknown) and
        the true share interrupted and duration, plus the outages of the transformer failures of
        the day as they happened. Columns: circuit_id, expected_customer_minutes."""
        day = _check_day(day)
        f = self._fleet
        rates = self._outage_rates(day)
        storminess = np.clip(self._weather(day)["gust"][f.zone] - OUTAGE_GUST_THRESHOLD_MPH,
                             0, None)
        lateral = (0.30 - 0.02) / np.log(0.30 / 0.02)  # mean of a log-uniform share
        customers = f.customers[:, None].astype(float)
        total = np.zeros(len(customers))
        for cause, rate in rates.items():
            i = _CAUSE[cause]
            p_feeder = np.minimum((0.15, 0.12, 0.05, 0.08, 0.5, 0.05)[i] + 0.006 * storminess,
                                  0.6)
            share = p_feeder + (1 - p_feeder) * lateral
            minutes = ((150.0, 180.0, 120.0, 60.0, 45.0, 75.0)[i] * np.exp(0.7**2 / 2)
                       * (1 + storminess / 25.0))
            total += (rate * customers * share * minutes).sum(axis=1)
        lv = self._lives
        fi = self._failures_in(day)
        np.add.at(total, f.tx_circuit[lv.pos[fi]], lv.outage_customers[fi] * lv.outage_minutes[fi])
        return pd.DataFrame({"circuit_id": f.circuits["circuit_id"].to_numpy(),
                             "expected_customer_minutes": total})

    # ------------------------------------------------------------------ seed-only timelines

    def _timeline_rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.config.seed, stream]))

    def _day_rng(self, stream: int, day: date) -> np.random.Generator:
        return np.random.default_rng(
            np.random.SeedSequence([self.config.seed, stream, day.toordinal()])
        )

    @property
    def _fleet(self) -> _Fleet:
        if self._fleet_cache is None:
            self._fleet_cache = self._build_fleet()
        return self._fleet_cache

    @property
    def _climate(self) -> dict[str, np.ndarray]:
        if self._climate_cache is None:
            self._climate_cache = self._build_climate()
        return self._climate_cache

    @property
    def _storms(self) -> dict[str, np.ndarray]:
        if self._storms_cache is None:
            self._storms_cache = self._build_storms()
        return self._storms_cache

    @property
    def _lives(self) -> _Lives:
        if self._lives_cache is None:
            self._lives_cache = self._build_lives()
        return self._lives_cache

    def _build_fleet(self) -> _Fleet:
        cfg = self.config
        rng = self._timeline_rng(_S_FLEET)
        n, m, nz = cfg.n_circuits, cfg.n_transformers, len(cfg.zones)
        zt = _zone_traits(cfg.zones)

        # zones are dealt in shuffled rounds so that every zone has circuits before any has many
        zone = np.concatenate([rng.permutation(nz) for _ in range(-(-n // nz))])[:n]
        customers = np.round(300 + 5700 * rng.beta(1.3, 3.6, n)).astype(np.int64)
        residential = 0.35 + 0.62 * rng.beta(4.0, 2.0, n)
        critical = rng.poisson(customers / 1500.0)
        hub = rng.random(n) < 0.08
        critical = (critical + hub * rng.integers(5, 30, n)).astype(np.int64)
        # rural feeders are long and serve few customers
        length = np.exp(
            np.log(28.0) - 0.35 * np.log(customers / 1500.0) + 0.45 * rng.standard_normal(n)
        )
        length = np.round(np.clip(length, 3.0, 150.0), 1)
        wooded = zt["wooded"][zone]
        canopy = np.round(80.0 * rng.beta(1 + 5 * wooded, 1 + 5 * (1 - wooded)), 1)
        trim_years_ago = 1.0 + 7.0 * rng.random(n)
        trim_cycle_years = 4.0 + 3.0 * rng.random(n)
        as_of = (REGISTRY_AS_OF - EPOCH_START).days
        last_trim_days = as_of - np.round(trim_years_ago * 365.25).astype(np.int64)
        lat = np.clip(zt["lat"][zone] + 0.12 * rng.standard_normal(n), *LAT_RANGE)
        lon = np.clip(zt["lon"][zone] + 0.15 * rng.standard_normal(n), *LON_RANGE)
        kw_per_customer = (1.3 * residential + 5.0 * (1 - residential)) * rng.lognormal(0, 0.15, n)
        base_mw = customers * kw_per_customer / 1000.0
        heat = rng.uniform(0.008, 0.028, n)
        cool = rng.uniform(0.015, 0.05, n)
        headroom = rng.uniform(1.1, 1.6, n)

        r = residential[:, None]
        peak_shape = np.max(r * _SHAPES[0] + (1 - r) * _SHAPES[2], axis=1)
        winter = 1.05 * (1 + heat * (HEATING_BALANCE_C - DESIGN_COLD_C))
        summer = 0.95 * (1 + cool * (DESIGN_HOT_C - COOLING_BALANCE_C))
        typical_peak = base_mw * peak_shape * np.maximum(winter, summer)
        capacity = np.round(headroom * typical_peak, 3)

        # transformers: each circuit gets at least one, the rest in proportion to customers
        counts = _apportion(m, customers)
        tx_circuit = np.repeat(np.arange(n), counts)
        tx_first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        build_era = rng.uniform(1972.0, 2012.0, n)
        install_year = np.round(build_era[tx_circuit] + 9.0 * rng.standard_normal(m))
        install_year = np.clip(install_year, 1965, 2024).astype(np.int64)
        install_frac = rng.random(m)
        rating = rng.choice(_RATINGS_KVA, m, p=_RATING_SHARE / _RATING_SHARE.sum())
        rating = rating.astype(np.float64)
        loading = np.clip(rng.lognormal(np.log(0.7), 0.2, m), 0.3, 1.2)
        big = rating >= 500
        has_gas = rng.random(m) < np.where(big, 0.8, 0.25)
        has_hot_spot = rng.random(m) < np.where(big, 0.9, 0.56)
        oil_calibration = 1.5 * rng.standard_normal(m)
        ambient_site = 1.0 * rng.standard_normal(m)

        install_h = (install_year - EPOCH_START.year + install_frac) * HOURS_PER_YEAR

        cw = max(4, len(str(n)))
        tw = max(5, len(str(m)))
        circuit_ids = np.array([f"C{i + 1:0{cw}d}" for i in range(n)], dtype=object)
        tx_ids = np.array([f"T{i + 1:0{tw}d}" for i in range(m)], dtype=object)
        zones = np.array(cfg.zones, dtype=object)
        epoch_ord = EPOCH_START.toordinal()
        circuits = pd.DataFrame({
            "circuit_id": circuit_ids,
            "zone": zones[zone],
            "customers": customers,
            "critical_customers": critical,
            "length_km": length.astype(np.float64),
            "tree_canopy_pct": canopy.astype(np.float64),
            "last_trim_date": np.array(
                [date.fromordinal(epoch_ord + int(d)) for d in last_trim_days], dtype=object
            ),
            "latitude": np.round(lat, 5),
            "longitude": np.round(lon, 5),
            "capacity_mw": capacity.astype(np.float64),
        })[CIRCUITS.names]
        transformers = pd.DataFrame({
            "transformer_id": tx_ids,
            "circuit_id": circuit_ids[tx_circuit],
            "rating_kva": rating,
            "install_year": install_year,
        })[TRANSFORMERS.names]
        return _Fleet(
            circuits=circuits, transformers=transformers, zone=zone, base_mw=base_mw,
            residential=residential, heat=heat, cool=cool, capacity=capacity, length=length,
            canopy=canopy, customers=customers, last_trim_days=last_trim_days,
            trim_cycle_days=np.round(trim_cycle_years * 365.25).astype(np.int64),
            tx_first=tx_first, tx_count=counts, tx_circuit=tx_circuit, tx_zone=zone[tx_circuit],
            rating=rating, loading=loading, typical_peak=typical_peak, install_h=install_h,
            has_gas=has_gas, has_hot_spot=has_hot_spot, oil_calibration=oil_calibration,
            ambient_site=ambient_site,
        )

    def _build_climate(self) -> dict[str, np.ndarray]:
        """Daily slow anomalies over the whole epoch (plus margins), generated in one go."""
        rng = self._timeline_rng(_S_CLIMATE)
        nz = len(self.config.zones)
        n = (_TL_END - _TL_START).days + 1
        doy = _day_of_year_array(n)
        season = np.cos(2 * np.pi * (doy - TEMP_COLDEST_DOY) / 365.25)  # +1 in January
        sd = 4.5 + 2.5 * season
        phi = TEMP_ANOMALY_PHI
        shared = _ar1(rng.standard_normal(n) * sd * np.sqrt(1 - phi**2), phi)
        zone_temp = _ar1(rng.standard_normal((nz, n)) * np.sqrt(1 - 0.7**2), 0.7)
        wind_shared = _ar1(rng.standard_normal(n) * WIND_SYNOPTIC_SD * np.sqrt(1 - 0.6**2), 0.6)
        wind_zone = _ar1(rng.standard_normal((nz, n)) * 0.2 * np.sqrt(1 - 0.5**2), 0.5)

        # Arctic outbreaks and heat waves on top of the anomaly
        years = range(_TL_START.year, _TL_END.year + 1)
        for year in years:
            for kind, rate, months, depth in (
                ("cold", COLD_SNAPS_PER_WINTER, (11, 12, 1, 2, 3), (-18.0, -8.0)),
                ("heat", HEAT_WAVES_PER_SUMMER, (6, 7, 8), (5.0, 9.0)),
            ):
                k = rng.poisson(rate)
                month = rng.choice(months, k)
                dom = rng.integers(1, 29, k)
                length = rng.uniform(3, 9 if kind == "cold" else 7, k)
                amp = rng.uniform(*depth, k)
                for mo, d, ln, a in zip(month, dom, length, amp):
                    i0 = (date(year, int(mo), int(d)) - _TL_START).days
                    span = np.arange(int(np.ceil(ln)) + 1)
                    bump = a * np.sin(np.pi * np.clip(span / ln, 0, 1)) ** 0.7
                    idx = i0 + span
                    ok = (idx >= 0) & (idx < n)
                    shared[idx[ok]] += bump[ok]
        return {"temp": shared, "zone_temp": zone_temp, "wind": wind_shared, "zone_wind": wind_zone}

    def _build_storms(self) -> dict[str, np.ndarray]:
        rng = self._timeline_rng(_S_STORMS)
        nz = len(self.config.zones)
        month_starts = []
        y, mo = _TL_START.year, _TL_START.month
        while date(y, mo, 1) <= _TL_END:
            month_starts.append(date(y, mo, 1))
            y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)
        month_starts.append(date(y, mo, 1))
        edges = np.array([_hour0(d) for d in month_starts], dtype=np.float64)
        month_of = np.array([d.month for d in month_starts[:-1]])
        counts = rng.poisson(np.array(STORMS_PER_MONTH)[month_of - 1])
        mi = np.repeat(np.arange(len(counts)), counts)
        k = len(mi)
        start = np.floor(edges[mi] + rng.random(k) * (edges[mi + 1] - edges[mi]))
        thunder = rng.random(k) < np.array(THUNDERSTORM_SHARE)[month_of[mi] - 1]
        duration = np.round(np.where(thunder, rng.uniform(6, 14, k), rng.uniform(12, 36, k)))
        gust = 40.0 + 50.0 * rng.beta(1.6, 3.2, k)
        peak = start + duration * rng.uniform(0.3, 0.6, k)
        extent = rng.beta(2.0, 2.0, k)
        u = rng.random((k, nz))
        hit = u < extent[:, None]
        hit[np.arange(k), np.argmin(u, axis=1)] = True
        intensity = np.where(hit, np.round(0.7 + 0.3 * rng.random((k, nz)), 3), 0.0)
        precip = np.where(thunder, 4.0 + 16.0 * rng.beta(1.5, 3.0, k), 1.5 * rng.random(k))
        order = np.argsort(start, kind="stable")
        start, thunder, duration = start[order], thunder[order], duration[order]
        gust, peak, hit = gust[order], peak[order], hit[order]
        intensity, precip = intensity[order], precip[order]
        ids = []
        seen: dict[str, int] = {}
        for h in start:
            stamp = (EPOCH_START + timedelta(hours=float(h))).strftime("%Y%m%d")
            seen[stamp] = seen.get(stamp, 0) + 1
            ids.append(f"S{stamp}-{seen[stamp]}")
        return {
            "id": np.array(ids, dtype=object), "start": start, "end": start + duration,
            "peak": peak, "thunder": thunder, "gust": gust, "hit": hit, "intensity": intensity,
            "precip": precip,
        }

    def _build_external(self) -> tuple[np.ndarray, np.ndarray]:
        """Sudden external hits per position: a constant background plus storm-driven ones."""
        if self._external_cache is not None:
            return self._external_cache
        rng = self._timeline_rng(_S_EXTERNAL)
        f, st = self._fleet, self._storms
        m = len(f.rating)
        years = _EPOCH_HOURS / HOURS_PER_YEAR
        nb = rng.poisson(EXTERNAL_BACKGROUND_RATE * years, m)
        pos = [np.repeat(np.arange(m), nb)]
        when = [rng.random(nb.sum()) * _EPOCH_HOURS]
        by_zone = [np.flatnonzero(f.tx_zone == z) for z in range(len(self.config.zones))]
        s_idx, z_idx = np.nonzero(st["hit"])
        zone_gust = st["gust"][s_idx] * st["intensity"][s_idx, z_idx]
        p = EXTERNAL_STORM_P * (np.clip(zone_gust - 35.0, 0, None) / 30.0) ** 2
        p = np.minimum(p * np.where(st["thunder"][s_idx], 1.5, 1.0), 0.05)
        sizes = np.array([len(by_zone[z]) for z in z_idx])
        hits = rng.binomial(sizes, p)
        for j in np.flatnonzero(hits):
            s = s_idx[j]
            chosen = rng.choice(by_zone[z_idx[j]], hits[j], replace=False)
            t = st["peak"][s] + (st["end"][s] - st["start"][s]) / 4 * rng.standard_normal(hits[j])
            pos.append(chosen)
            when.append(np.clip(t, st["start"][s], st["end"][s]))
        pos_all = np.concatenate(pos)
        when_all = np.concatenate(when)
        keep = (when_all >= 0) & (when_all < _EPOCH_HOURS)
        key = np.sort(pos_all[keep] * _KEY_STRIDE + when_all[keep])
        pos_of_key = np.floor(key / _KEY_STRIDE).astype(np.int64)
        # a sentinel that belongs to no position, so a lookup past the last hit finds nothing
        self._external_cache = (np.append(key, np.inf), np.append(pos_of_key, -1))
        return self._external_cache

    def _build_lives(self) -> _Lives:
        """Renewal process per position: wear-out (Gompertz hazard) competing with external hits."""
        rng = self._timeline_rng(_S_LIVES)
        f = self._fleet
        ext_key, ext_pos = self._build_external()
        m = len(f.rating)
        gamma = np.log(2.0) / AGE_DOUBLING_YEARS
        load_mult = np.exp(LOADING_LOG_EFFECT * (f.loading - 0.7) / 0.25)

        # positions whose registry unit came after the epoch start hold a predecessor until then
        late = f.install_h > 0
        fields = ("pos", "start", "end", "mode", "tint", "birth", "from_failure")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in fields}

        def add(pos, start, end, mode, tint, birth, from_failure):
            for k, v in zip(parts, (pos, start, end, mode, tint, birth, from_failure)):
                parts[k].append(np.asarray(v))

        lp = np.flatnonzero(late)
        n_late = len(lp)
        add(lp, np.zeros(n_late), f.install_h[lp], np.full(n_late, _PLANNED),
            np.full(n_late, np.inf), np.full(n_late, -30 * HOURS_PER_YEAR), np.zeros(n_late, bool))

        act = np.arange(m)
        t = np.maximum(f.install_h, 0.0)
        age = np.maximum(-f.install_h, 0.0) / HOURS_PER_YEAR
        birth = f.install_h.copy()
        from_failure = np.zeros(m, bool)
        while len(act):
            e = rng.exponential(size=len(act))
            z = rng.gamma(FRAILTY_SHAPE, 1.0 / FRAILTY_SHAPE, len(act))
            rate30 = INTRINSIC_RATE_AT_30 * z * load_mult[act]
            log_end = np.logaddexp(gamma * age, np.log(e * gamma / rate30) + 30 * gamma)
            t_int = t + np.maximum((log_end / gamma - age) * HOURS_PER_YEAR, MIN_LIFE_HOURS)
            # the first external hit the unit lives to see
            earliest = t + np.where(t > 0, MIN_LIFE_HOURS, 0.0)
            i = np.searchsorted(ext_key, act * _KEY_STRIDE + earliest)
            t_ext = np.where(ext_pos[i] == act, ext_key[i] - act * _KEY_STRIDE, np.inf)
            t_end = np.minimum(t_int, t_ext)
            mode = np.where(t_ext < t_int, _EXTERNAL, _THERMAL)  # thermal vs dielectric set below
            ends = t_end < _EPOCH_HOURS
            add(act, t, np.where(ends, t_end, np.inf), np.where(ends, mode, _NONE), t_int, birth,
                from_failure)
            act, t = act[ends], t_end[ends]
            age = np.zeros(len(act))
            birth = t.copy()
            from_failure = np.ones(len(act), bool)

        cat = {k: np.concatenate(v) for k, v in parts.items()}
        order = np.lexsort((cat["start"], cat["pos"]))
        cat = {k: v[order] for k, v in cat.items()}
        n = len(order)
        pos = cat["pos"].astype(np.int64)
        planned = cat["mode"] == _PLANNED

        # traits of each unit, drawn in one go so that they do not depend on the loop above
        p_thermal = np.clip(0.45 + 0.6 * (f.loading[pos] - 0.7), 0.2, 0.85)
        wear_mode = np.where(rng.random(n) < p_thermal, _THERMAL, _DIELECTRIC)
        lo, hi = DEGRADATION_DAYS
        days = lo + (hi - lo) * rng.beta(1.3, 1.6, n)
        power = rng.uniform(1.0, 2.2, n)
        strength = rng.lognormal(0.0, 0.5, n)
        top_oil_rise = rng.uniform(45.0, 58.0, n)
        loss_ratio = rng.uniform(3.0, 7.0, n)
        hot_spot_rise = rng.uniform(20.0, 30.0, n)
        h2 = rng.lognormal(np.log(20.0), 0.6, n)
        c2h2 = rng.lognormal(np.log(0.2), 0.9, n)
        c2h4 = rng.lognormal(np.log(3.0), 0.7, n)
        stray = rng.random(n) < 0.08  # oils that gas at normal temperatures: high but stable H2
        h2 = np.where(stray, h2 * rng.uniform(5, 15, n), h2)
        c2h4 = np.where(stray, c2h4 * rng.uniform(3, 8, n), c2h4)
        oltc = rng.random(n) < 0.03  # tap-changer leakage into the main tank: stable C2H2
        c2h2 = np.where(oltc, c2h2 + rng.uniform(3, 15, n), c2h2)
        repair_h = np.clip(rng.lognormal(np.log(6.0), 0.4, n), 2.0, 20.0)
        label_u = rng.random(n)
        lateral = rng.random(n) < 0.1
        lateral_frac = np.exp(rng.uniform(np.log(0.02), np.log(0.30), n))
        tx_share = rng.lognormal(0.0, 0.5, n)
        cause_u = rng.random(n)
        offset = rng.uniform(0.5, 3.0, n)

        mode = cat["mode"].copy()
        intrinsic_end = mode == _THERMAL
        mode[intrinsic_end] = wear_mode[intrinsic_end]
        onset = cat["tint"] - days * 24.0
        # a new unit cannot have been degrading before it was installed
        new_unit = cat["from_failure"] | (cat["birth"] > 0)
        onset = np.where(new_unit, np.maximum(onset, cat["start"]), onset)
        onset[planned] = np.inf
        fails = np.isin(mode, (_THERMAL, _DIELECTRIC, _EXTERNAL))
        recorded = np.where(label_u < np.where(mode == _EXTERNAL, 0.10, 0.15), "unknown",
                            _MODE_NAMES[mode].astype(str)).astype(object)
        recorded[~fails] = None
        circuit = f.tx_circuit[pos]
        cust_per_tx = f.customers[circuit] / f.tx_count[circuit]
        customers = np.where(lateral, lateral_frac * f.customers[circuit], cust_per_tx * tx_share)
        customers = np.round(np.minimum(customers, f.customers[circuit]))
        customers = np.maximum(1, customers).astype(np.int64)
        service_from = np.where(cat["from_failure"], cat["start"] + repair_h, cat["start"])
        # the repair time of a unit's failure is drawn with the replacement unit, so shift it back
        repair_of_end = np.full(n, np.nan)
        nxt = np.flatnonzero(cat["from_failure"])
        repair_of_end[nxt - 1] = repair_h[nxt]
        # a predecessor's swap is planned, so the position's next failure is its successor's
        next_failure = np.where(fails, cat["end"], np.inf)
        next_mode = np.where(fails, mode, _NONE)
        pre = np.flatnonzero(planned)
        next_failure[pre] = next_failure[pre + 1]
        next_mode[pre] = next_mode[pre + 1]
        return _Lives(
            pos=pos, start=cat["start"], end=cat["end"], mode=mode, t_intrinsic=cat["tint"],
            onset=onset, wear_mode=wear_mode, power=power, strength=strength, birth=cat["birth"],
            service_from=service_from, top_oil_rise=top_oil_rise, loss_ratio=loss_ratio,
            hot_spot_rise=hot_spot_rise, h2_base=h2, c2h2_base=c2h2, c2h4_base=c2h4,
            recorded_mode=recorded, outage_customers=customers,
            outage_minutes=np.round(repair_of_end * 60.0),
            outage_cause=np.where(cause_u < 0.08, _CAUSE["unknown"], _CAUSE["equipment"]),
            outage_offset_min=offset, next_failure=next_failure, next_failure_mode=next_mode,
            key=pos * _KEY_STRIDE + cat["start"],
        )

    # ------------------------------------------------------------------ per-day random draws

    def _draws(self, stream: int, day: date) -> dict[str, np.ndarray]:
        """The random numbers of one stream and day, always drawn in the same order and shape."""
        if stream not in _TX_STREAMS:
            return self._draws_small.get((stream, day.toordinal()),
                                         lambda: self._make_draws(stream, day))

        def build() -> dict[str, np.ndarray]:
            draws = self._make_draws(stream, day)
            self._keep_needed_rows(stream, day, draws, None)
            return draws

        return self._draws_large.get((stream, day.toordinal()), build)

    def _tx_draws(
        self, stream: int, day: date, positions: np.ndarray | None,
        names: tuple[str, ...] | None = None,
    ) -> dict[str, np.ndarray]:
        """A transformer stream's draws of `day`, for every position or the rows of `positions`
        (only `names`, if given).

        The rows of a position cannot be drawn without drawing the day's stream up to them, so a
        subset comes from the cached day, else from the rows kept for threats, else from a fresh
        draw of the stream up to the last row needed; that draw keeps the rows that any threat
        will need of that day, so other days asking for them find them.
        """
        if positions is None:
            return self._draws(stream, day)
        names = names or _TX_STREAMS[stream]
        full = self._draws_large.peek((stream, day.toordinal()))
        if full is not None:
            return {name: full[name][positions] for name in names}
        out = {}
        for name in names:
            kept = self._draw_rows.peek((stream, day.toordinal(), name))
            if kept is None or not np.isin(positions, kept[0]).all():
                break
            out[name] = kept[1][np.searchsorted(kept[0], positions)]
        else:
            return out
        wanted = np.union1d(positions, self._needed_rows(stream, day))
        rng = self._day_rng(stream, day)
        order = _TX_STREAMS[stream]
        last = max(order.index(name) for name in names)
        drawn = {}
        for j, name in enumerate(order[:last + 1]):
            # the stream is drawn row by row, so its last array may stop at the last row wanted
            rows = self.config.n_transformers if j < last else int(wanted[-1]) + 1
            x = rng.standard_normal((rows, 24))
            if name in names:
                drawn[name] = x
        self._keep_needed_rows(stream, day, drawn, wanted)
        return {name: drawn[name][positions] for name in names}

    def _keep_needed_rows(self, stream: int, day: date, draws: dict[str, np.ndarray],
                          wanted: np.ndarray | None) -> None:
        if not self.config.threats:
            return
        if wanted is None:
            wanted = self._needed_rows(stream, day)
            if len(wanted) == 0:
                return
        for name, x in draws.items():
            key = (stream, day.toordinal(), name)
            kept = self._draw_rows.peek(key)
            if kept is None or not np.isin(wanted, kept[0]).all():
                self._draw_rows.put(key, (wanted, x[wanted]))

    def _needed_rows(self, stream: int, day: date) -> np.ndarray:
        """Positions whose draws of `day` in `stream` the threats read on another day: replays
        (the source day and the day before it, for the thermal history), clock shifts (the day
        before) and frozen sensors (the day of the reading they repeat)."""
        if self._draw_needs_cache is None:
            self._draw_needs_cache = self._build_draw_needs()
        days, pos = self._draw_needs_cache[stream]
        o = day.toordinal()
        return np.unique(pos[np.searchsorted(days, o, "left"):np.searchsorted(days, o, "right")])

    def _build_draw_needs(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        tm, cal = threat_model, self._threat_calendar
        pos, day = [], []
        for kind in (tm.REPLAY, tm.CLOCK_SHIFT):
            r = np.flatnonzero((cal.kind == kind) & (cal.device_type == tm.TRANSFORMER))
            nd = ((cal.end[r] - cal.start[r]) // 24).astype(np.int64)
            rr = np.repeat(r, nd)
            d = (cal.start[rr] // 24).astype(np.int64) + np.arange(len(rr)) - np.repeat(
                np.cumsum(nd) - nd, nd)
            back = cal.value[rr].astype(np.int64) if kind == tm.REPLAY else 1
            pos.append(cal.device[rr])
            day.append(d - back)
        r = np.flatnonzero(cal.kind == tm.OIL_FROZEN)
        pos.append(cal.device[r])
        day.append((cal.start[r].astype(np.int64) - 1) // 24)
        pos_all = np.concatenate(pos)
        day_all = np.concatenate(day) + EPOCH_START.toordinal()
        order = np.argsort(day_all, kind="stable")
        sensor = (day_all[order], pos_all[order])
        # the thermal history of a day reaches into the day before
        load_days = np.concatenate([day_all, day_all - 1])
        order = np.argsort(load_days, kind="stable")
        load = (load_days[order], np.concatenate([pos_all, pos_all])[order])
        return {_S_TX_SENSOR: sensor, _S_TX_LOAD: load}

    def _make_draws(self, stream: int, day: date) -> dict[str, np.ndarray]:
        rng = self._day_rng(stream, day)
        nz = len(self.config.zones)
        n = self.config.n_circuits
        m = self.config.n_transformers
        if stream == _S_WEATHER:
            return {
                "temp": rng.standard_normal((nz, 24)),
                "wind": rng.standard_normal((nz, 24)),
                "gust_factor": rng.random((nz, 24)),
                "storm": rng.standard_normal((nz, 24)),
                "storm_ratio": rng.random((nz, 24)),
                "wet": rng.random(nz),
                "wet_start": rng.random(nz),
                "wet_hours": rng.random(nz),
                "rain": rng.exponential(size=(nz, 24)),
                "burst": rng.random((nz, 24)),
            }
        if stream == _S_LOAD:
            return {"fast": rng.standard_normal((n, 24)), "slow": rng.standard_normal((n, 24))}
        if stream in _TX_STREAMS:
            return {k: rng.standard_normal((m, 24)) for k in _TX_STREAMS[stream]}
        raise ValueError(f"no draws for stream {stream}")

    def _moving_average(
        self, stream: int, name: str, day: date, phi: float, lags: int,
        rows: np.ndarray | slice = slice(None),
    ) -> np.ndarray:
        """Unit-variance autocorrelated noise for the 24 hours of `day`, continuous across days.

        A finite moving average of per-hour innovations; the innovations of each hour belong to that
        hour's day, so the same hour always gets the same value whichever day asks for it.
        """
        back = -(-(lags - 1) // 24)
        days = [day - timedelta(days=k) for k in range(back, -1, -1)]
        x = np.concatenate([self._draws(stream, d)[name][rows] for d in days], axis=1)
        w = phi ** np.arange(lags)
        w /= np.sqrt(np.sum(w**2))
        windows = np.lib.stride_tricks.sliding_window_view(x[:, -(24 + lags - 1):], lags, axis=1)
        return windows @ w[::-1]

    # ------------------------------------------------------------------ per-day blocks

    def _weather(self, day: date) -> dict[str, np.ndarray]:
        return self._weather_cache.get(day.toordinal(), lambda: self._make_weather(day))

    def _make_weather(self, day: date) -> dict[str, np.ndarray]:
        zones = self.config.zones
        zt = _zone_traits(zones)
        cl = self._climate
        d = self._draws(_S_WEATHER, day)
        h0 = _hour0(day)
        doy = day.timetuple().tm_yday
        hours = np.arange(24) + 0.5
        solar = (hours[None, :] + zt["lon"][:, None] / 15.0) % 24.0
        season = np.cos(2 * np.pi * (doy - TEMP_COLDEST_DOY) / 365.25)
        diurnal_amp = 5.0 - 1.5 * season
        diurnal = np.cos(2 * np.pi * (solar - 15.0) / 24.0)
        temp = (
            TEMP_ANNUAL_MEAN_C - TEMP_ANNUAL_AMPLITUDE_C * season
            + diurnal_amp * diurnal
            + zt["temp_offset"][:, None]
            + _daily_to_hourly(cl["temp"], day)[None, :]
            + _daily_to_hourly(cl["zone_temp"], day)
            + TEMP_HOURLY_NOISE_C * self._moving_average(_S_WEATHER, "temp", day, 0.85, 24)
        )
        # capped so that fair-weather wind never reaches storm strength
        synoptic = np.exp(np.clip(
            _daily_to_hourly(cl["wind"], day)[None, :] + _daily_to_hourly(cl["zone_wind"], day)
            + 0.15 * self._moving_average(_S_WEATHER, "wind", day, 0.8, 24),
            -1.5, 0.8,
        ))
        wind = zt["wind_mean"][:, None] * (1 + 0.15 * season) * (1 + 0.25 * diurnal) * synoptic
        gust = wind * (1.25 + 0.35 * d["gust_factor"])

        # background showers: some days wet, a few hours of light rain or snow water
        p_wet = 0.18 + 0.14 * np.exp(-(((doy - 160) / 45.0) ** 2))
        wet = d["wet"] < p_wet
        first = np.floor(d["wet_start"] * 24)
        span = 2 + np.floor(d["wet_hours"] * 11)
        idx = np.arange(24)[None, :]
        raining = wet[:, None] & (idx >= first[:, None]) & (idx < (first + span)[:, None])
        # winter snow carries less water per hour than summer rain
        precip = np.where(raining, d["rain"] * (0.3 if season > 0 else 0.5), 0.0)

        fair = {"fair_wind": wind, "fair_gust": gust, "fair_precip": precip}
        st = self._storms
        mids = h0 + hours
        sel = np.flatnonzero((st["start"] < h0 + 24) & (st["end"] > h0))
        storm_gust = np.zeros((len(zones), 24))
        storm_rain = np.zeros((len(zones), 24))
        cooling = np.zeros((len(zones), 24))
        for s in sel:
            prof = _storm_profile(mids, st["start"][s], st["peak"][s], st["end"][s])
            g = st["gust"][s] * st["intensity"][s][:, None] * prof[None, :]
            storm_gust = np.maximum(storm_gust, g)
            rain_shape = prof**4 if st["thunder"][s] else prof
            storm_rain += st["precip"][s] * st["intensity"][s][:, None] * rain_shape[None, :]
            if st["thunder"][s]:
                cool = 3.0 * st["intensity"][s][:, None] * prof[None, :]
                temp = temp - cool
                cooling = cooling + cool
        in_storm = storm_gust > 0
        storm_gust = storm_gust * (1 + 0.07 * d["storm"])
        gust = np.where(in_storm, np.maximum(gust, storm_gust), gust)
        storm_wind = storm_gust / (1.4 + 0.25 * d["storm_ratio"])
        wind = np.where(in_storm, np.maximum(wind, storm_wind), wind)
        precip = precip + storm_rain * (0.6 + 0.8 * d["burst"])

        wind = np.round(np.clip(wind, 0.0, 200.0), 1)
        gust = np.round(np.clip(np.maximum(gust, wind), 0.0, 250.0), 1)
        return {
            "temp": np.round(np.clip(temp, -55.0, 55.0), 1),
            "wind": wind,
            "gust": gust,
            "precip": np.round(np.clip(precip, 0.0, 500.0), 1),
            "storm_gust": storm_gust,
            "cooling": cooling,
            **fair,
        }

    def _load(self, day: date) -> dict[str, np.ndarray]:
        return self._load_cache.get(day.toordinal(), lambda: self._make_load(day))

    def _make_load(self, day: date, circuits: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Load and its ratio to the typical peak per circuit-hour, for every circuit or only the
        rows of `circuits` (the same values: every step is row by row)."""
        f = self._fleet
        sel = slice(None) if circuits is None else circuits
        # buildings respond to the temperature of the last hours, not the current one
        prev = day - timedelta(days=1)
        temps = np.concatenate([self._weather(prev)["temp"], self._weather(day)["temp"]], axis=1)
        w = np.exp(-np.arange(24) / 6.0)
        w /= w.sum()
        t_eff = np.lib.stride_tricks.sliding_window_view(temps[:, 1:], 24, axis=1) @ w[::-1]
        t_eff = t_eff[f.zone[sel]]

        local_hour, weekend = _local_calendar(day)
        r = f.residential[sel, None]
        shape = (r * _SHAPES[weekend.astype(int), local_hour][None, :]
                 + (1 - r) * _SHAPES[2 + weekend.astype(int), local_hour][None, :])
        doy = day.timetuple().tm_yday
        seasonal = 1 + 0.05 * np.cos(2 * np.pi * (doy + 10) / 365.25)
        weather = (1 + f.heat[sel, None] * np.maximum(HEATING_BALANCE_C - t_eff, 0)
                   + f.cool[sel, None] * np.maximum(t_eff - COOLING_BALANCE_C, 0))
        noise = (0.025 * self._moving_average(_S_LOAD, "fast", day, 0.85, 24, sel)
                 + 0.03 * self._moving_average(_S_LOAD, "slow", day, 0.97, 96, sel))
        load = f.base_mw[sel, None] * shape * seasonal * weather * np.exp(noise)
        load = np.round(np.maximum(load, 0.05 * f.base_mw[sel, None]), 3)
        return {"load_mw": load, "ratio": load / f.typical_peak[sel, None]}

    def _active_lives(self, t: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """Index of the unit in place at each position (all, or `positions`) and time (hours):
        shape (positions, len(t))."""
        if positions is None:
            positions = np.arange(self.config.n_transformers)
        q = positions[:, None] * _KEY_STRIDE + np.maximum(t, 0.0)[None, :]
        return np.searchsorted(self._lives.key, q.ravel(), side="right").reshape(q.shape) - 1

    def _physics(self, day: date) -> dict[str, np.ndarray]:
        return self._physics_cache.get(day.toordinal(), lambda: self._make_physics(day))

    def _make_physics(
        self, day: date, positions: np.ndarray | None = None, oil_only: bool = False
    ) -> dict[str, np.ndarray]:
        """Loading, temperatures and gases per transformer-hour, with 12 h of thermal history.

        For every position, or only for `positions` (rows in that order): a position's readings
        depend on its own rows of the day's draws alone, so a subset gives the same values as the
        rows of the whole fleet. `oil_only` leaves the gases out (fewer draws to make).
        """
        f, lv = self._fleet, self._lives
        sel = slice(None) if positions is None else positions
        prev = day - timedelta(days=1)
        lag = 12
        t = np.concatenate([_hour0(prev) + np.arange(24 - lag, 24), _hour0(day) + np.arange(24)])
        t = t.astype(np.float64)
        life = self._active_lives(t, positions)
        sev = _severity(lv, life, t[None, :])
        in_service = t[None, :] >= lv.service_from[life]

        def with_history(prev_block: np.ndarray, block: np.ndarray) -> np.ndarray:
            return np.concatenate([prev_block[:, -lag:], block], axis=1)

        if positions is None:
            ratio = with_history(self._load(prev)["ratio"], self._load(day)["ratio"])
            ratio = ratio[f.tx_circuit]
        else:  # only the circuits of the positions, one row per position
            circuits = f.tx_circuit[positions]
            ratio = with_history(self._make_load(prev, circuits)["ratio"],
                                 self._make_load(day, circuits)["ratio"])
        draws_prev = self._tx_draws(_S_TX_LOAD, prev, positions)
        draws = self._tx_draws(_S_TX_LOAD, day, positions)
        eps = with_history(draws_prev["load"], draws["load"])
        k = f.loading[sel, None] * ratio * np.exp(0.1 * eps - 0.005)
        k = np.where(in_service, k, 0.0)
        amb_noise = with_history(draws_prev["ambient"], draws["ambient"])
        zone_temp = with_history(self._weather(prev)["temp"], self._weather(day)["temp"])
        ambient = zone_temp[f.tx_zone[sel]] + f.ambient_site[sel, None] + 0.4 * amb_noise

        # IEEE C57.91 top-oil rise with ONAN exponent 0.8, plus the fault's extra heating
        rated = lv.top_oil_rise[life]
        rlos = lv.loss_ratio[life]
        rise = rated * ((k**2 * rlos + 1) / (rlos + 1)) ** 0.8
        sg = sev * lv.strength[life]
        thermal = lv.wear_mode[life] == _THERMAL
        rise = np.where(thermal, rise * (1 + 0.6 * sg) + 8.0 * sg, rise + 3.0 * sg)
        steady = ambient + rise
        oil = np.empty_like(steady)
        oil[:, 0] = steady[:, 0]
        alpha = 1 - np.exp(-1.0 / 3.0)  # top-oil time constant of 3 h
        for j in range(1, steady.shape[1]):
            oil[:, j] = oil[:, j - 1] + alpha * (steady[:, j] - oil[:, j - 1])

        s = np.s_[:, lag:]
        oil, k, ambient, sev, sg = oil[s], k[s], ambient[s], sev[s], sg[s]
        thermal, life = thermal[s], life[s]
        noise = self._tx_draws(_S_TX_SENSOR, day, positions,
                               ("oil", "hot_spot") if oil_only else None)
        hs_gain = np.where(thermal, 1 + 0.5 * sg, 1.0)
        hot_spot = oil + lv.hot_spot_rise[life] * k**1.6 * hs_gain
        hot_spot = hot_spot + np.where(thermal, 8.0 * sg, 0.0)
        calibration = f.oil_calibration[sel, None]
        oil_reported = np.clip(oil + calibration + 0.6 * noise["oil"], -60.0, 200.0)
        hot_spot_reported = np.clip(hot_spot + calibration + 1.0 * noise["hot_spot"], -60.0, 300.0)

        if oil_only:
            return {
                "ambient_temp_c": np.round(np.clip(ambient, -60.0, 60.0), 1),
                "oil_temp_c": np.round(oil_reported, 1),
                "hot_spot_temp_c": np.where(
                    f.has_hot_spot[sel, None], np.round(hot_spot_reported, 1), np.nan
                ),
            }
        age_years = np.clip((t[lag:][None, :] - lv.birth[life]) / HOURS_PER_YEAR, 0, 80)
        aging = 1 + age_years / 40.0
        solubility = np.clip(1 + 0.006 * (oil - 45.0), 0.5, None)
        dielectric = ~thermal
        h2 = lv.h2_base[life] * aging + sg * np.where(thermal, 250.0, 500.0)
        c2h4 = lv.c2h4_base[life] * aging + sg * np.where(thermal, 110.0, 12.0)
        c2h2 = lv.c2h2_base[life] + np.where(dielectric, 30.0 * sg, 3.0 * sg * sev)

        def gas(v: np.ndarray, eps: np.ndarray, floor_sd: float) -> np.ndarray:
            v = v * solubility * np.exp(0.05 * eps) + floor_sd * eps
            v = np.round(np.clip(v, 0.0, 100_000.0), 1)
            return np.where(f.has_gas[sel, None], v, np.nan)

        return {
            "load_pct": np.round(np.clip(100.0 * k, 0.0, 400.0), 1),
            "ambient_temp_c": np.round(np.clip(ambient, -60.0, 60.0), 1),
            "oil_temp_c": np.round(oil_reported, 1),
            "hot_spot_temp_c": np.where(
                f.has_hot_spot[sel, None], np.round(hot_spot_reported, 1), np.nan
            ),
            "h2_ppm": gas(h2, noise["h2"], 0.5),
            "c2h2_ppm": gas(c2h2, noise["c2h2"], 0.1),
            "c2h4_ppm": gas(c2h4, noise["c2h4"], 0.2),
            "severity": sev,
        }

    # ------------------------------------------------------------------ telemetry threats

    @property
    def _threat_calendar(self) -> threat_model.Calendar:
        if self._threats_cache is None:
            f, lv = self._fleet, self._lives
            self._threats_cache = threat_model.build_calendar(
                self._timeline_rng(_S_THREATS), (EPOCH_END - EPOCH_START).days + 1, f.base_mw,
                f.tx_first, f.tx_count, f.tx_circuit,
                threat_model.LivesView(
                    pos=lv.pos, start=lv.start, end=lv.end, mode=lv.mode, wear_mode=lv.wear_mode,
                    service_from=lv.service_from, key=lv.key, key_stride=_KEY_STRIDE,
                    thermal=_THERMAL,
                ),
            )
        return self._threats_cache

    def _threat_rows(self, day: date, device_type: int) -> np.ndarray:
        cal = self._threat_calendar
        h0 = _hour0(day)
        rows = cal.overlapping(h0, h0 + 24)
        return rows[cal.device_type[rows] == device_type]

    def _clean_rows(self, requests: dict[tuple[date, bool], set[int]], day: date,
                    p: dict[str, np.ndarray]) -> dict[tuple[date, bool], tuple[np.ndarray, dict]]:
        """Threat-free readings of a few positions on a few days (all channels, or only the
        temperatures), one computation per day; `day`'s own come from its physics `p`."""
        out = {}
        for (d, oil_only), wanted in requests.items():
            pos = np.array(sorted(wanted), dtype=np.int64)
            if d == day:
                out[d, oil_only] = (pos, {name: p[name][pos] for name in _CHANNELS})
            else:
                out[d, oil_only] = (pos, self._make_physics(d, pos, oil_only=oil_only))
        return out

    def _threatened_load(self, day: date, load: np.ndarray) -> np.ndarray:
        """Feeder load of `day` with the day's replays, then load injections, written in."""
        tm, cal = threat_model, self._threat_calendar
        rows = self._threat_rows(day, tm.CIRCUIT)
        if len(rows) == 0:
            return load
        load = load.copy()
        h0 = _hour0(day)
        for r in rows[cal.kind[rows] == tm.REPLAY]:
            c = cal.device[r]
            src = self._load(day - timedelta(days=int(cal.value[r])))["load_mw"][c]
            if cal.variant[r] == tm.JITTERED:
                eps = _jitter_rng(cal.seed[r], day).standard_normal(24)
                src = np.round(np.maximum(src * (1 + tm.REPLAY_JITTER_REL * eps), 0.0), 3)
            load[c] = src
        for r in rows[cal.kind[rows] == tm.LOAD_INJECTION]:
            c = cal.device[r]
            for w in np.flatnonzero(cal.win_event == cal.event[r]):
                a = int(max(cal.win_start[w], h0) - h0)
                b = int(min(cal.win_end[w], h0 + 24) - h0)
                if a >= b:
                    continue
                seg = load[c, a:b]
                if cal.variant[r] == tm.OFFSET:
                    seg = seg + cal.value[r] * self._fleet.base_mw[c]
                else:
                    seg = seg * cal.value[r]
                load[c, a:b] = np.round(np.maximum(seg, 0.0), 3)
        return load

    def _threatened_telemetry(
        self, day: date, p: dict[str, np.ndarray], ids: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Transformer telemetry of `day` with the day's threats written in, in the order
        replay, clock shift, frozen oil, spoofed oil, silent groups (rows removed)."""
        tm, cal = threat_model, self._threat_calendar
        rows = self._threat_rows(day, tm.TRANSFORMER)
        if len(rows) == 0:
            return ids, {name: p[name] for name in _CHANNELS}
        h0 = _hour0(day)
        kind = cal.kind[rows]
        silent = np.unique(cal.device[rows[kind == tm.SILENT]])
        keep = np.ones(len(ids), bool)
        keep[silent] = False
        if len(silent):
            row_of = np.cumsum(keep) - 1
            ids = ids[keep]
            out = {name: p[name][keep] for name in _CHANNELS}
        else:
            row_of = np.arange(len(ids))
            out = {name: p[name].copy() for name in _CHANNELS}
        rows = rows[(kind != tm.SILENT) & keep[cal.device[rows]]]
        kind = cal.kind[rows]

        def source_hour(r: int) -> int:  # frozen sensors repeat the reading before the attack
            return int(cal.start[r]) - 1

        requests: dict[tuple[date, bool], set[int]] = {}
        for r in rows:
            i = int(cal.device[r])
            if cal.kind[r] == tm.REPLAY:
                d = day - timedelta(days=int(cal.value[r]))
                requests.setdefault((d, False), set()).add(i)
            elif cal.kind[r] == tm.CLOCK_SHIFT:
                requests.setdefault((day - timedelta(days=1), False), set()).add(i)
                requests.setdefault((day, False), set()).add(i)
            elif cal.kind[r] == tm.OIL_FROZEN:
                d = EPOCH_START + timedelta(days=source_hour(r) // 24)
                requests.setdefault((d, True), set()).add(i)
        clean = self._clean_rows(requests, day, p)

        def clean_of(d: date, i: int, oil_only: bool = False) -> dict[str, np.ndarray]:
            pos, values = clean[d, oil_only]
            j = int(np.searchsorted(pos, i))
            return {name: values[name][j] for name in _CHANNELS if name in values}

        for r in rows[kind == tm.REPLAY]:
            i = int(cal.device[r])
            src = clean_of(day - timedelta(days=int(cal.value[r])), i)
            if cal.variant[r] == tm.JITTERED:
                src = _jittered(src, _jitter_rng(cal.seed[r], day))
            for name in _CHANNELS:
                out[name][row_of[i]] = src[name]
        for r in rows[kind == tm.CLOCK_SHIFT]:
            i, k = int(cal.device[r]), int(cal.value[r])
            before, today = clean_of(day - timedelta(days=1), i), clean_of(day, i)
            for name in _CHANNELS:
                out[name][row_of[i]] = np.concatenate([before[name][24 - k:], today[name][:24 - k]])
        for r in rows[np.isin(kind, (tm.OIL_FROZEN, tm.OIL_SPOOFED))]:
            i = row_of[cal.device[r]]
            a = int(max(cal.start[r], h0) - h0)
            b = min(int(np.ceil(cal.end[r] - h0)), 24)
            if cal.kind[r] == tm.OIL_FROZEN:
                h = source_hour(r)
                src = clean_of(EPOCH_START + timedelta(days=h // 24), int(cal.device[r]), True)
                out["oil_temp_c"][i, a:b] = src["oil_temp_c"][h % 24]
                out["hot_spot_temp_c"][i, a:b] = src["hot_spot_temp_c"][h % 24]
            else:
                amb = out["ambient_temp_c"][i, a:b]
                for name in ("oil_temp_c", "hot_spot_temp_c"):
                    out[name][i, a:b] = np.round(amb + (out[name][i, a:b] - amb) * cal.value[r], 1)
        return ids, out

    def _frozen_values(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The threat-free oil and hot-spot readings the frozen sensors of `rows` repeat."""
        cal = self._threat_calendar
        hours = cal.start[rows].astype(np.int64) - 1
        requests: dict[date, set[int]] = {}
        for h, i in zip(hours, cal.device[rows]):
            requests.setdefault(EPOCH_START + timedelta(days=int(h // 24)), set()).add(int(i))
        oil, hot = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
        for d, wanted in requests.items():
            pos = np.array(sorted(wanted), dtype=np.int64)
            values = self._make_physics(d, pos, oil_only=True)
            for j, (h, i) in enumerate(zip(hours, cal.device[rows])):
                if EPOCH_START + timedelta(days=int(h // 24)) == d:
                    k = int(np.searchsorted(pos, i))
                    oil[j] = values["oil_temp_c"][k, h % 24]
                    hot[j] = values["hot_spot_temp_c"][k, h % 24]
        return oil, hot

    def _failures_in(self, day: date) -> np.ndarray:
        lv = self._lives
        h0 = _hour0(day)
        end_min = _failure_minute(lv.end)
        fails = np.isin(lv.mode, (_THERMAL, _DIELECTRIC, _EXTERNAL))
        return np.flatnonzero(fails & (end_min >= h0) & (end_min < h0 + 24))

    def _outage_rates(self, day: date) -> dict[str, np.ndarray]:
        """Expected outages per circuit-hour by true cause, shape (circuits, 24) each."""
        f = self._fleet
        w = self._weather(day)
        gust = w["gust"][f.zone]
        precip = w["precip"][f.zone]
        g = (np.clip(gust - OUTAGE_GUST_THRESHOLD_MPH, 0, None) / 20.0) ** 2.5
        lightning = np.where(w["storm_gust"][f.zone] > 0, (precip / 10.0) ** 1.5, 0.0)
        veg = f.canopy / 100.0 * (0.15 + np.minimum(self._years_since_trim(day), 10.0) / 5.0)
        length = f.length[:, None]
        sev = self._physics(day)["severity"]
        sev_sum = np.add.reduceat(sev, f.tx_first, axis=0)
        doy = day.timetuple().tm_yday
        critters = 1 + 0.6 * np.exp(-(((doy - 170) / 60.0) ** 2))
        over = np.clip(self._load(day)["load_mw"] / f.capacity[:, None] - 1.0, 0, None)
        install_year = f.transformers["install_year"].to_numpy()
        mean_age = _mean_by_circuit(REGISTRY_AS_OF.year - install_year, f.tx_first)
        return {
            "weather": A_WEATHER * length * (g + 0.4 * lightning),
            "vegetation": A_VEGETATION * length * veg[:, None] * (0.02 + g),
            "animal": A_ANIMAL * np.sqrt(length) * critters * np.ones((1, 24)),
            "equipment": (
                A_EQUIPMENT_SEVERITY * sev_sum
                + A_EQUIPMENT_BASE * length / 30.0 * (mean_age[:, None] / 30.0)
            ) * (1 + g),
            "overload": A_OVERLOAD * (over > 0) * (0.2 + 20.0 * over),
            "unknown": A_UNKNOWN * (length / 30.0) * np.ones((1, 24)),
        }

    def _years_since_trim(self, day: date) -> np.ndarray:
        """Trims recur every cycle before the registry's last trim; none are recorded after it."""
        f = self._fleet
        d = (day - EPOCH_START).days - f.last_trim_days
        return np.where(d >= 0, d, np.mod(d, f.trim_cycle_days)) / 365.25

    def _outages(self, day: date) -> pd.DataFrame:
        f = self._fleet
        rng = self._day_rng(_S_OUTAGES, day)
        rates = self._outage_rates(day)
        causes = list(rates)
        lam = np.stack([rates[c] for c in causes])  # (causes, circuits, 24)
        counts = rng.poisson(lam)
        ci, cc, hh = np.nonzero(counts)
        reps = counts[ci, cc, hh]
        cause = np.repeat(np.array([_CAUSE[c] for c in causes])[ci], reps)
        circ = np.repeat(cc, reps)
        hour = np.repeat(hh, reps)
        k = len(cause)
        h0 = _hour0(day)
        start = h0 + hour + np.floor(rng.random(k) * 3600.0) / 3600.0
        gust = self._weather(day)["gust"][f.zone[circ], hour]
        storminess = np.clip(gust - OUTAGE_GUST_THRESHOLD_MPH, 0, None)
        p_feeder = np.array([0.15, 0.12, 0.05, 0.08, 0.5, 0.05])[cause] + 0.006 * storminess
        feeder = rng.random(k) < np.minimum(p_feeder, 0.6)
        frac = np.exp(rng.uniform(np.log(0.02), np.log(0.30), k))
        lateral = np.maximum(1, np.round(frac * f.customers[circ]))
        customers = np.where(feeder, f.customers[circ], lateral)
        median_min = np.array([150.0, 180.0, 120.0, 60.0, 45.0, 75.0])[cause]
        minutes = median_min * rng.lognormal(0.0, 0.7, k) * (1 + storminess / 25.0)
        minutes = np.round(np.clip(minutes, 5.0, 4320.0))
        recorded = _noisy_cause(cause, rng.random(k))

        lv = self._lives
        fi = self._failures_in(day)
        # the breaker or fuse operates within minutes, but the outage stays in the failure's day
        f_start = _failure_minute(lv.end[fi]) + lv.outage_offset_min[fi] / 60.0
        f_start = np.minimum(np.floor(f_start * 3600.0), (h0 + 24) * 3600.0 - 1) / 3600.0
        frame = pd.DataFrame({
            "circuit": np.concatenate([circ, f.tx_circuit[lv.pos[fi]]]),
            "start": np.concatenate([start, f_start]),
            "minutes": np.concatenate([minutes, lv.outage_minutes[fi]]),
            "customers_affected": np.concatenate([customers, lv.outage_customers[fi]]),
            "cause": np.concatenate([recorded, lv.outage_cause[fi]]),
        })
        ids = f.circuits["circuit_id"].to_numpy()
        start_ts = _hours_to_ts(frame["start"].to_numpy(), unit="s")
        duration = (frame["minutes"].to_numpy() * 60).astype("timedelta64[s]")
        out = pd.DataFrame({
            "circuit_id": ids[frame["circuit"].to_numpy()],
            "start_ts": start_ts,
            "end_ts": start_ts + duration.astype("timedelta64[ns]"),
            "customers_affected": frame["customers_affected"].to_numpy().astype(np.int64),
            "cause": np.array(OUTAGE_CAUSES, dtype=object)[frame["cause"].to_numpy()],
        })
        key = list(OUTAGE_EVENTS.key)
        out = out.sort_values(key, kind="stable").drop_duplicates(key, keep="first")
        return out.reset_index(drop=True)[OUTAGE_EVENTS.names]


# ---------------------------------------------------------------------- helpers

_TL_START = EPOCH_START - timedelta(days=40)
_TL_END = EPOCH_END + timedelta(days=5)


def _as_date(day: date) -> date:
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    raise TypeError(f"expected a date; got {type(day).__name__}")


def _check_day(day: date) -> date:
    day = _as_date(day)
    if not EPOCH_START <= day <= EPOCH_END:
        raise ValueError(f"day {day} is outside the simulated epoch {EPOCH_START}..{EPOCH_END}")
    return day


def _hour0(day: date) -> int:
    return (day - EPOCH_START).days * 24


def _hours_to_ts(hours: np.ndarray, unit: str = "m") -> np.ndarray:
    scale = {"m": 60, "s": 3600}[unit]
    ticks = np.round(np.asarray(hours, dtype=np.float64) * scale).astype(np.int64)
    return _ORIGIN + ticks.astype(f"timedelta64[{unit}]").astype("timedelta64[ns]")


def _windows_text(starts: np.ndarray, ends: np.ndarray) -> str:
    """'from 14:00 to 21:00 UTC' for one window, else each day's window listed."""
    def span(a: float, b: float) -> tuple[str, str]:
        return f"{int(a % 24):02d}:00", f"{int((b - 1) % 24 + 1):02d}:00"

    if len(starts) == 1:
        return "from {} to {} UTC".format(*span(starts[0], ends[0]))
    parts = ["{} {}-{}".format(EPOCH_START + timedelta(days=int(a // 24)), *span(a, b))
             for a, b in zip(starts, ends)]
    return "on " + ", ".join(parts) + " UTC"


def _failure_minute(hours: np.ndarray) -> np.ndarray:
    """Failure times are recorded to the minute; inf stays inf."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(hours), np.round(hours * 60.0) / 60.0, hours)


def _hourly_frame(
    spec: TableSpec, day: date, ids: np.ndarray, values: dict[str, np.ndarray]
) -> pd.DataFrame:
    """One row per entity and UTC hour of `day`, entity-major, from (entities, 24) arrays."""
    stamps = (np.datetime64(day.isoformat(), "ns") + np.arange(24) * _HOUR).astype("datetime64[ns]")
    data: dict[str, Any] = {
        spec.entity_column: np.repeat(ids, 24), "timestamp": np.tile(stamps, len(ids)),
    }
    for name, v in values.items():
        data[name] = np.asarray(v, dtype=np.float64).reshape(-1)
    return pd.DataFrame(data, columns=spec.names)


@functools.lru_cache(maxsize=16)
def _zone_traits(zones: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Geography of a zone from its name alone, so that a zone looks the same under every seed."""
    rows = []
    for z in zones:
        r = np.random.default_rng(zlib.crc32(z.encode()))
        rows.append((
            r.uniform(LAT_RANGE[0] + 0.3, LAT_RANGE[1] - 0.3),
            r.uniform(LON_RANGE[0] + 0.4, LON_RANGE[1] - 0.4),
            r.uniform(0.1, 0.7),
            r.uniform(9.0, 15.0),
            r.normal(0.0, 1.2),
        ))
    a = np.array(rows, dtype=np.float64)
    names = ("lat", "lon", "wooded", "wind_mean", "temp_offset")
    return {name: a[:, i] for i, name in enumerate(names)}


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts summing to `total`, at least one each, otherwise proportional to weights."""
    n = len(weights)
    share = (total - n) * weights / weights.sum()
    counts = np.floor(share).astype(np.int64)
    rest = total - n - counts.sum()
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts + 1


def _ar1(innovations: np.ndarray, phi: float) -> np.ndarray:
    out = np.empty_like(innovations)
    out[..., 0] = innovations[..., 0] / np.sqrt(1 - phi**2)
    for i in range(1, innovations.shape[-1]):
        out[..., i] = phi * out[..., i - 1] + innovations[..., i]
    return out


def _day_of_year_array(n: int) -> np.ndarray:
    days = np.datetime64(_TL_START.isoformat(), "D") + np.arange(n)
    years = days.astype("datetime64[Y]")
    return (days - years).astype(np.int64) + 1


def _daily_to_hourly(series: np.ndarray, day: date) -> np.ndarray:
    """A daily timeline (values at noon UTC) interpolated to the hour midpoints of `day`."""
    i = (day - _TL_START).days
    x = (np.arange(24) + 0.5 - 12.0) / 24.0  # -0.48 .. 0.48 around today's noon
    lo = np.where(x < 0, i - 1, i)
    frac = np.where(x < 0, x + 1, x)
    return series[..., lo] * (1 - frac) + series[..., lo + 1] * frac



def _jitter_rng(seed: int, day: date) -> np.random.Generator:
    """The draws of a jittered replay on one day: from the event's seed and the day alone."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), day.toordinal()]))


def _jittered(values: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A replayed day of one transformer with a little noise, rounded like the originals."""
    tm = threat_model
    eps = dict(zip(_CHANNELS, rng.standard_normal((len(_CHANNELS), 24))))
    out = {}
    for name, v in values.items():
        if name == "load_pct":
            v = np.clip(v * (1 + tm.REPLAY_JITTER_REL * eps[name]), 0.0, 400.0)
        elif name.endswith("_ppm"):
            v = np.clip(v * (1 + tm.REPLAY_JITTER_REL * eps[name]), 0.0, 100_000.0)
        else:
            v = v + tm.REPLAY_JITTER_TEMP_C * eps[name]
        out[name] = np.round(v, 1)
    return out


def _severity(lv: _Lives, life: np.ndarray, t: np.ndarray) -> np.ndarray:
    onset = lv.onset[life]
    with np.errstate(invalid="ignore"):
        span = np.maximum(lv.t_intrinsic[life] - onset, 1.0)
        x = np.where(np.isfinite(onset), (t - onset) / span, 0.0)
    return np.clip(x, 0.0, 1.0) ** lv.power[life]


def _mean_by_circuit(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    counts = np.diff(np.append(first, len(values)))
    return np.add.reduceat(values.astype(np.float64), first) / counts


def _us_dst(day: date) -> tuple[datetime, datetime]:
    """Start and end of US daylight time in `day`'s year, in UTC for Mountain time."""
    y = day.year
    march = date(y, 3, 1)
    second_sunday = march + timedelta(days=(6 - march.weekday()) % 7 + 7)
    nov = date(y, 11, 1)
    first_sunday = nov + timedelta(days=(6 - nov.weekday()) % 7)
    return (datetime(y, 3, second_sunday.day, 9), datetime(y, 11, first_sunday.day, 8))


def _holidays(year: int) -> set[date]:
    def nth_weekday(month: int, weekday: int, nth: int) -> date:
        d = date(year, month, 1)
        d += timedelta(days=(weekday - d.weekday()) % 7)
        return d + timedelta(weeks=nth - 1)

    last_may = date(year, 5, 31)
    memorial = last_may - timedelta(days=(last_may.weekday() - 0) % 7)
    return {
        date(year, 1, 1), memorial, date(year, 7, 4), nth_weekday(9, 0, 1),
        nth_weekday(11, 3, 4), date(year, 12, 25),
    }


def _local_calendar(day: date) -> tuple[np.ndarray, np.ndarray]:
    """Local clock hour and weekend-or-holiday flag (America/Denver) for the UTC hours of `day`."""
    dst_start, dst_end = _us_dst(day)
    hours, weekend = [], []
    for h in range(24):
        utc = datetime(day.year, day.month, day.day, h)
        offset = -6 if dst_start <= utc < dst_end else -7
        local = utc + timedelta(hours=offset)
        hours.append(local.hour)
        weekend.append(local.weekday() >= 5 or local.date() in _holidays(local.year))
    return np.array(hours), np.array(weekend)


def _noisy_cause(cause: np.ndarray, u: np.ndarray) -> np.ndarray:
    """What the outage report says: mostly the true cause, sometimes unknown or a confusion."""
    w, v, e, a, o, unk = (_CAUSE[c] for c in OUTAGE_CAUSES)
    out = cause.copy()
    out[(cause == w) & (u < 0.12)] = unk
    out[(cause == w) & (u >= 0.12) & (u < 0.20)] = v
    out[(cause == v) & (u < 0.12)] = unk
    out[(cause == v) & (u >= 0.12) & (u < 0.27)] = w
    out[(cause == e) & (u < 0.06)] = unk
    out[(cause == a) & (u < 0.15)] = unk
    out[(cause == o) & (u < 0.10)] = e
    return out
