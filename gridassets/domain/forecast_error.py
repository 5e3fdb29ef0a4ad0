"""The error model of the simulator's weather forecasts (the synthetic `weather_forecasts`).

The forecast issued at the end of day D covers every hour of D+1..D+7. It is the simulator's true
weather seen through errors that depend on nothing but the lead time L (days from the end of D to
the end of the hour) and random draws of their own (streams of `(seed, D)` that no other table
uses), so a forecast holds no information about the truth beyond what this model lets through:

- Temperature: the truth without thunderstorm cooling, + s_T(L) e_T, with s_T = 1.0 + 0.5 L within
  the first day and 1.5 + 2.5 (L - 1) / 6 after it (1.5 degC a day ahead, 4 degC at a week);
  e_T unit-variance, AR(1) over hours with phi 0.97, 60 % of its variance shared by all zones (a
  forecast bust is synoptic). The forecast storms bring their own cooling.
- Fair-weather wind and gust: the truth x exp(s_W e_W - s_W^2 / 2), s_W = 0.12 + 0.05 L (0.17 a
  day ahead, 0.47 at a week), e_W AR(1) phi 0.95, half shared; one factor for wind and gust.
- Showers (rain outside storms): each zone-day's rain is missed with p = 0.10 + 0.04 L, otherwise
  its amount is x exp(s_P e - s_P^2 / 2), s_P = 0.3 + 0.08 L; a dry zone-day gets a phantom
  shower with p = 0.04 + 0.02 L (2-10 hours of 0.2-0.8 mm/h from a random hour).
- Storms: a true storm under way at the issue time is always forecast; one that starts later is
  forecast with p = max(0.97 - 0.075 L_s, 0.45), L_s its start's lead in days (0.90 a day ahead,
  0.45 from a week). A forecast storm's peak gust is the truth's x exp(-0.02 L_s + (0.08 +
  0.035 L_s) N) (a little weak, more so and more spread the further out), its start, peak and end
  shifted together by N(0, 1 + 1.5 L_s) hours (early or late), its duration x exp(0.15 N); each
  zone it hits is forecast hit with p = 0.9 at intensity x exp(0.1 N); rain x exp(0.25 N).
  Phantom storms that never come: Poisson with rate 0.01 + 0.012 L per day of lead (about 0.4 per
  forecast, most far out), drawn as the simulator draws real ones (the month's thunderstorm share,
  peak gust 40 + 50 Beta(1.6, 3.2) mph, zones hit with p ~ Beta(2, 2), intensity U(0.7, 1)).
- In a forecast storm's hours: gust = max(fair-weather forecast, storm gust x profile), wind =
  max(fair forecast, storm gust x profile / 1.5), rain = shower + storm rain (the simulator's
  profile and amounts), and thunderstorms cool the air by 3 x intensity x profile degC.
- precip_probability_pct: 88 - 6.5 L where rain is forecast (0.1 mm or more in the hour), else
  1.5 + 0.4 L: about how often such a forecast hour turns out wet under this model.

All arrays are (zones, hours) with hour 0 the first hour of D+1; times in hours from its start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOURS = 168
FAIR_GUST_OVER_WIND = 1.5
STORM_WIND_RATIO = 1.5
PHANTOM_MEAN_GUST = (40.0, 50.0)  # 40 + 50 Beta(1.6, 3.2), as the simulator's calendar


def lead_days(hours: int = HOURS) -> np.ndarray:
    """Lead time in days of each forecast hour: to the end of the hour, from the end of D."""
    return (np.arange(hours) + 1) / 24.0


def temp_sd(lead: np.ndarray) -> np.ndarray:
    lead = np.asarray(lead, dtype=float)
    return np.where(lead <= 1.0, 1.0 + 0.5 * lead, 1.5 + 2.5 * (lead - 1.0) / 6.0)


def wind_log_sd(lead: np.ndarray) -> np.ndarray:
    return 0.12 + 0.05 * np.asarray(lead, dtype=float)


def storm_detection(lead_of_start: np.ndarray) -> np.ndarray:
    """P(a true storm is in the forecast) by the lead of its start (<= 0: under way, always)."""
    lead = np.asarray(lead_of_start, dtype=float)
    return np.where(lead <= 0, 1.0, np.maximum(0.97 - 0.075 * lead, 0.45))


@dataclass(frozen=True)
class Truth:
    """The simulator's weather for the forecast's hours, storms taken apart from the rest."""

    temp_no_cooling: np.ndarray
    fair_wind: np.ndarray
    fair_gust: np.ndarray
    fair_precip: np.ndarray


@dataclass(frozen=True)
class Storms:
    """The simulator's storms that overlap the forecast's hours (times relative to hour 0)."""

    start: np.ndarray
    peak: np.ndarray
    end: np.ndarray
    gust: np.ndarray
    precip: np.ndarray
    thunder: np.ndarray
    intensity: np.ndarray  # (storms, zones), 0 where a zone is not hit


def forecast(truth: Truth, storms: Storms, seed: np.random.SeedSequence,
             thunder_share: float) -> dict[str, np.ndarray]:
    """temp_c, wind_speed_mph, wind_gust_mph, precip_mm, precip_probability_pct (zones, HOURS)."""
    r_temp, r_wind, r_rain, r_storm, r_phantom = (np.random.default_rng(s) for s in seed.spawn(5))
    nz, nh = truth.fair_gust.shape
    lead = lead_days(nh)[None, :]

    temp = truth.temp_no_cooling + temp_sd(lead) * _shared_ar1(r_temp, nz, nh, 0.97, 0.6)
    factor = np.exp(wind_log_sd(lead) * _shared_ar1(r_wind, nz, nh, 0.95, 0.5)
                    - wind_log_sd(lead) ** 2 / 2)
    wind = truth.fair_wind * factor
    gust = truth.fair_gust * factor
    precip = _showers(truth.fair_precip, r_rain, lead[0])

    fs = _forecast_storms(storms, r_storm, nz)
    ph = _phantom_storms(r_phantom, nz, nh, thunder_share)
    mids = np.arange(nh) + 0.5
    for s in (fs, ph):
        for i in range(len(s.start)):
            prof = storm_profile(mids, s.start[i], s.peak[i], s.end[i])
            if not prof.any():
                continue
            g = s.gust[i] * s.intensity[i][:, None] * prof[None, :]
            gust = np.maximum(gust, g)
            wind = np.maximum(wind, g / STORM_WIND_RATIO)
            shape = prof**4 if s.thunder[i] else prof
            precip = precip + s.precip[i] * s.intensity[i][:, None] * shape[None, :]
            if s.thunder[i]:
                temp = temp - 3.0 * s.intensity[i][:, None] * prof[None, :]

    wet = precip >= 0.1
    pop = np.where(wet, 88.0 - 6.5 * lead, 1.5 + 0.4 * lead)
    wind = np.round(np.clip(wind, 0.0, 200.0), 1)
    return {
        "temp_c": np.round(np.clip(temp, -55.0, 55.0), 1),
        "wind_speed_mph": wind,
        "wind_gust_mph": np.round(np.clip(np.maximum(gust, wind), 0.0, 250.0), 1),
        "precip_mm": np.round(np.clip(precip, 0.0, 500.0), 1),
        "precip_probability_pct": np.round(np.broadcast_to(pop, (nz, nh))),
    }


def _shared_ar1(rng: np.random.Generator, nz: int, nh: int, phi: float, shared: float
                ) -> np.ndarray:
    """Unit-variance AR(1) noise over hours, `shared` of its variance common to all zones."""
    x = rng.standard_normal((nz + 1, nh)) * np.sqrt(1 - phi**2)
    x[:, 0] = rng.standard_normal(nz + 1)
    for h in range(1, nh):
        x[:, h] += phi * x[:, h - 1]
    return np.sqrt(shared) * x[:1] + np.sqrt(1 - shared) * x[1:]


def _showers(fair: np.ndarray, rng: np.random.Generator, lead: np.ndarray) -> np.ndarray:
    nz, nh = fair.shape
    days = nh // 24
    by_day = fair.reshape(nz, days, 24)
    day_lead = lead.reshape(days, 24).mean(axis=1)[None, :]
    u_miss, u_phantom = rng.random((nz, days)), rng.random((nz, days))
    amount = rng.standard_normal((nz, days))
    first, span, rate = rng.random((nz, days)), rng.random((nz, days)), rng.random((nz, days))
    sd = 0.3 + 0.08 * day_lead
    kept = by_day * (np.exp(sd * amount - sd**2 / 2) * (u_miss >= 0.10 + 0.04 * day_lead))[..., None]
    dry = by_day.sum(axis=2) == 0
    phantom = dry & (u_phantom < 0.04 + 0.02 * day_lead)
    h = np.arange(24)[None, None, :]
    start = np.floor(first * 24)[..., None]
    hours = (2 + np.floor(span * 9))[..., None]
    raining = phantom[..., None] & (h >= start) & (h < start + hours)
    kept = kept + np.where(raining, (0.2 + 0.6 * rate)[..., None], 0.0)
    return kept.reshape(nz, nh)


def _forecast_storms(st: Storms, rng: np.random.Generator, nz: int) -> Storms:
    k = len(st.start)
    u_detect, shift, spread = rng.random(k), rng.standard_normal(k), rng.standard_normal(k)
    stretch, rain = rng.standard_normal(k), rng.standard_normal(k)
    u_zone, zone_int = rng.random((k, nz)), rng.standard_normal((k, nz))
    lead = np.maximum(st.start / 24.0, 0.0)
    under_way = st.start <= 0
    seen = u_detect < storm_detection(np.where(under_way, 0.0, lead))
    offset = np.where(under_way, 0.5, 1.0 + 1.5 * lead) * shift
    duration = (st.end - st.start) * np.exp(0.15 * stretch)
    start = np.where(under_way, st.start, st.start + offset)
    peak_at = (st.peak - st.start) / np.maximum(st.end - st.start, 1e-9)
    gust = st.gust * np.exp(-0.02 * lead + (0.08 + 0.035 * lead) * spread)
    intensity = np.where((st.intensity > 0) & (u_zone < 0.9),
                         np.clip(st.intensity * np.exp(0.1 * zone_int), 0.0, 1.2), 0.0)
    keep = seen & (intensity > 0).any(axis=1)
    return Storms(start=start[keep], peak=(start + peak_at * duration)[keep],
                  end=(start + duration)[keep], gust=gust[keep],
                  precip=(st.precip * np.exp(0.25 * rain))[keep], thunder=st.thunder[keep],
                  intensity=intensity[keep])


def _phantom_storms(rng: np.random.Generator, nz: int, nh: int, thunder_share: float) -> Storms:
    days = nh // 24
    rate = 0.01 + 0.012 * (np.arange(days) + 0.5)
    counts = rng.poisson(rate)
    day = np.repeat(np.arange(days), counts)
    k = len(day)
    start = (day + rng.random(k)) * 24.0
    thunder = rng.random(k) < thunder_share
    duration = np.round(np.where(thunder, rng.uniform(6, 14, k), rng.uniform(12, 36, k)))
    gust = PHANTOM_MEAN_GUST[0] + PHANTOM_MEAN_GUST[1] * rng.beta(1.6, 3.2, k)
    peak = start + duration * rng.uniform(0.3, 0.6, k)
    extent = rng.beta(2.0, 2.0, k)
    u = rng.random((k, nz))
    hit = u < extent[:, None]
    if k:
        hit[np.arange(k), np.argmin(u, axis=1)] = True
    intensity = np.where(hit, 0.7 + 0.3 * rng.random((k, nz)), 0.0)
    precip = np.where(thunder, 4.0 + 16.0 * rng.beta(1.5, 3.0, k), 1.5 * rng.random(k))
    return Storms(start=start, peak=peak, end=start + duration, gust=gust, precip=precip,
                  thunder=thunder, intensity=intensity)


def storm_profile(t: np.ndarray, start: float, peak: float, end: float) -> np.ndarray:
    """0 outside the storm, rising smoothly to 1 at its peak and falling to 0 at its end (the
    simulator's storms and the forecast's alike)."""
    up = np.clip((t - start) / max(peak - start, 1e-9), 0, 1)
    down = np.clip((end - t) / max(end - peak, 1e-9), 0, 1)
    u = np.where(t <= peak, up, down)
    return np.sin(np.pi / 2 * u) ** 2
