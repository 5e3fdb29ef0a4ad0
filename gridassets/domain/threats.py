"""The calendar of telemetry threats the simulator writes into its raw tables.

Tampered or broken telemetry (false data injection, replayed days, frozen or spoofed oil sensors,
shifted clocks, groups of meters that go silent) is rare and must be noticed and kept out of the
models. `build_calendar` lays out every threat over the whole epoch from the seed alone, in one
vectorized pass; `gridassets.domain.fleet.FleetSimulator` applies the events that overlap a day
when it produces that day's `feeder_load` and `transformer_telemetry`, and returns the calendar as
hidden truth (`FleetSimulator.threats(start, end)`), for evaluation only. The generative model is
documented in fleet.py's module docstring and in docs/ground-truth.md ("Telemetry threats").

No dagster here; plain numpy over arrays the simulator passes in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --- rates and ranges (per device-year over the epoch; documented in fleet.py and the docs) ---

LOAD_INJECTION_RATE = 0.5  # per circuit-year
LOAD_INJECTION_DAYS = (1, 3)
LOAD_INJECTION_WINDOW_HOURS = (3, 10)  # consecutive UTC hours inside each day
LOAD_INJECTION_VARIANT_SHARE = (0.6, 0.2, 0.2)  # scale_up, scale_down, offset
LOAD_SCALE_UP = (1.15, 1.40)
LOAD_SCALE_DOWN = (0.65, 0.85)
LOAD_OFFSET_OF_BASE = (0.15, 0.35)  # times the circuit's base load

REPLAY_CIRCUIT_RATE = 0.2  # per circuit-year (feeder load)
REPLAY_TRANSFORMER_RATE = 0.01  # per unit-year (every telemetry channel)
REPLAY_DAYS = (1, 2)
REPLAY_OFFSET_DAYS = (1, 7)  # day D re-sends day D - k
REPLAY_JITTERED_SHARE = 0.5
REPLAY_JITTER_REL = 0.002  # load and gases x (1 + N(0, this))
REPLAY_JITTER_TEMP_C = 0.05  # temperatures + N(0, this)

OIL_FROZEN_BEFORE_FAILURE_SHARE = 0.2  # of thermal wear-out failures in the epoch
OIL_SPOOFED_BEFORE_FAILURE_SHARE = 0.2  # another, disjoint, share of them
BEFORE_FAILURE_LEAD_DAYS = (7.0, 30.0)
OIL_FROZEN_BACKGROUND_RATE = 0.005  # per unit-year
OIL_FROZEN_BACKGROUND_DAYS = (2, 10)
OIL_SPOOF_RISE_FACTOR = (0.55, 0.75)

CLOCK_SHIFT_RATE = 0.01  # per transformer-year
CLOCK_SHIFT_DAYS = (1, 5)
CLOCK_SHIFT_HOURS = (2, 3, 4, 6, 7)

SILENT_GROUP_RATE = 0.3  # per circuit-year
SILENT_GROUP_DAYS = (1, 2)
SILENT_GROUP_SHARE = (0.3, 1.0)  # of the circuit's transformers
SILENT_GROUP_MIN = 3
SILENT_GROUP_MAX_FLEET_SHARE = 0.03  # one group
SILENT_DAY_MAX_FLEET_SHARE = 0.04  # all groups of one day, below the 5% completeness margin

# Kinds, in the order they are applied to a day (silent last: it removes rows).
THREAT_KINDS = ("replay", "load_injection", "clock_shift", "oil_sensor_frozen",
                "oil_sensor_spoofed", "silent_group")
REPLAY, LOAD_INJECTION, CLOCK_SHIFT, OIL_FROZEN, OIL_SPOOFED, SILENT = range(6)
VARIANTS = ("scale_up", "scale_down", "offset", "exact", "jittered", "before_failure",
            "background", "scaled_rise", "whole_day") + tuple(
                f"late_{k}h" for k in CLOCK_SHIFT_HOURS)
(SCALE_UP, SCALE_DOWN, OFFSET, EXACT, JITTERED, BEFORE_FAILURE, BACKGROUND, SCALED_RISE,
 WHOLE_DAY) = range(9)
_LATE = np.zeros(max(CLOCK_SHIFT_HOURS) + 1, np.int64)
_LATE[list(CLOCK_SHIFT_HOURS)] = 9 + np.arange(len(CLOCK_SHIFT_HOURS))
CIRCUIT, TRANSFORMER = 0, 1
DEVICE_TYPES = ("circuit", "transformer")


@dataclass(frozen=True)
class LivesView:
    """What the calendar needs of the transformer lives (see fleet._Lives)."""

    pos: np.ndarray
    start: np.ndarray
    end: np.ndarray
    mode: np.ndarray
    wear_mode: np.ndarray
    service_from: np.ndarray
    key: np.ndarray
    key_stride: float
    thermal: int


@dataclass(frozen=True)
class Calendar:
    """One row per device and event, sorted by (event, device); times in hours from the epoch.

    `value` is the event's parameter: the load factor (scale variants), the offset as a share of
    base load, the replay's source offset in days, the clock shift in hours or the spoofed rise
    factor; 0 otherwise. `seed` feeds the replay jitter. Load injection windows are listed
    separately (`win_event`, `win_start`, `win_end`).
    """

    event: np.ndarray  # 0, 1, ... in order of the event's start
    kind: np.ndarray
    variant: np.ndarray
    device_type: np.ndarray
    device: np.ndarray  # circuit or transformer position
    circuit: np.ndarray
    start: np.ndarray
    end: np.ndarray  # exclusive
    value: np.ndarray
    seed: np.ndarray
    group_size: np.ndarray  # transformers silent together (silent groups), else 1
    win_event: np.ndarray
    win_start: np.ndarray
    win_end: np.ndarray

    def overlapping(self, lo: float, hi: float) -> np.ndarray:
        """Row indices of the events overlapping hours [lo, hi)."""
        return np.flatnonzero((self.start < hi) & (self.end > lo))


def build_calendar(
    rng: np.random.Generator,
    n_days: int,
    base_mw: np.ndarray,
    tx_first: np.ndarray,
    tx_count: np.ndarray,
    tx_circuit: np.ndarray,
    lives: LivesView,
) -> Calendar:
    """Every threat of the epoch (`n_days` days from hour 0), drawn from `rng` in a fixed order.

    Takes the circuits' base load (MW) and transformer layout and the transformer lives; returns
    the `Calendar`. Transformer events that would straddle a unit's failure, replacement or repair
    are dropped (a failed or out-of-service unit keeps its normal readings), except the
    before-failure sensor attacks, which end at the failure.
    """
    n_c, n_t = len(base_mw), len(tx_circuit)
    years = n_days / 365.25
    n_hours = n_days * 24
    parts: list[dict[str, np.ndarray]] = []

    def part(kind, variant, dtype, device, start, end, value=None, seed=None, group=None,
             size=None):
        k = len(device)
        parts.append({
            "kind": np.full(k, kind), "variant": np.asarray(variant, dtype=np.int64),
            "device_type": np.full(k, dtype), "device": np.asarray(device, dtype=np.int64),
            "start": np.asarray(start, dtype=np.float64), "end": np.asarray(end, dtype=np.float64),
            "value": np.zeros(k) if value is None else np.asarray(value, dtype=np.float64),
            "seed": np.zeros(k, np.int64) if seed is None else np.asarray(seed, dtype=np.int64),
            "group": np.arange(k) if group is None else np.asarray(group, dtype=np.int64),
            "group_size": np.ones(k, np.int64) if size is None else np.asarray(size, np.int64),
        })

    def whole_days(rate: float, n: int, first_day: int, days: tuple[int, int]):
        counts = rng.poisson(rate * years, n)
        dev = np.repeat(np.arange(n), counts)
        k = len(dev)
        day0 = rng.integers(first_day, n_days, k)
        nd = np.minimum(rng.integers(days[0], days[1] + 1, k), n_days - day0)
        return dev, day0, nd

    def same_life(pos: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """The unit in place at t0 is in service then and stays in place until t1 (exclusive)."""
        a = np.searchsorted(lives.key, pos * lives.key_stride + np.maximum(t0, 0.0), "right") - 1
        b = np.searchsorted(lives.key, pos * lives.key_stride + np.maximum(t1 - 1e-6, 0.0),
                            "right") - 1
        return (a == b) & (lives.service_from[a] <= t0)

    # 1. false data injection on feeder load: a window of hours on each day of the event
    c, day0, nd = whole_days(LOAD_INJECTION_RATE, n_c, 0, LOAD_INJECTION_DAYS)
    k = len(c)
    u = rng.random(k)
    up, down = LOAD_INJECTION_VARIANT_SHARE[:2]
    variant = np.where(u < up, SCALE_UP, np.where(u < up + down, SCALE_DOWN, OFFSET))
    f_up = rng.uniform(*LOAD_SCALE_UP, k)
    f_down = rng.uniform(*LOAD_SCALE_DOWN, k)
    f_off = rng.uniform(*LOAD_OFFSET_OF_BASE, k)
    value = np.where(variant == SCALE_UP, f_up, np.where(variant == SCALE_DOWN, f_down, f_off))
    w_ev = np.repeat(np.arange(k), nd)
    w_day = day0[w_ev] + np.arange(len(w_ev)) - np.repeat(np.cumsum(nd) - nd, nd)
    lo_h, hi_h = LOAD_INJECTION_WINDOW_HOURS
    w_len = rng.integers(lo_h, hi_h + 1, len(w_ev))
    w_start = w_day * 24.0 + np.floor(rng.random(len(w_ev)) * (25 - w_len))
    w_end = w_start + w_len
    first = np.cumsum(nd) - nd
    last = np.cumsum(nd) - 1
    part(LOAD_INJECTION, variant, CIRCUIT, c, w_start[first], w_end[last], value)
    inj_parts = len(parts) - 1

    # 2. replayed days, feeder load and transformer telemetry
    for rate, n, dtype in ((REPLAY_CIRCUIT_RATE, n_c, CIRCUIT),
                           (REPLAY_TRANSFORMER_RATE, n_t, TRANSFORMER)):
        lo_k, hi_k = REPLAY_OFFSET_DAYS
        dev, day0, nd = whole_days(rate, n, hi_k + 1, REPLAY_DAYS)
        k = len(dev)
        back = rng.integers(lo_k, hi_k + 1, k)
        variant = np.where(rng.random(k) < REPLAY_JITTERED_SHARE, JITTERED, EXACT)
        seed = rng.integers(0, 2**62, k)
        start, end = day0 * 24.0, (day0 + nd) * 24.0
        ok = np.ones(k, bool)
        if dtype == TRANSFORMER:
            # the thermal history of the source day reaches 12 h further back
            ok = same_life(dev, start - 24.0 * back - 12.0, end)
        part(REPLAY, variant[ok], dtype, dev[ok], start[ok], end[ok], back[ok], seed[ok])

    # 3, 4. frozen and spoofed oil sensors before thermal failures
    cand = np.flatnonzero((lives.mode == lives.thermal) & (lives.wear_mode == lives.thermal)
                          & np.isfinite(lives.end) & (lives.end < n_hours))
    u = rng.random(len(cand))
    lead = rng.uniform(*BEFORE_FAILURE_LEAD_DAYS, len(cand))
    rise = rng.uniform(*OIL_SPOOF_RISE_FACTOR, len(cand))
    fail = np.round(lives.end[cand] * 60.0) / 60.0  # failures are recorded to the minute
    start = np.floor(fail - 24.0 * lead)
    start = np.maximum(start, np.maximum(np.ceil(lives.service_from[cand]) + 1.0, 1.0))
    ok = start < fail
    frozen = ok & (u < OIL_FROZEN_BEFORE_FAILURE_SHARE)
    spoofed = ok & (u >= OIL_FROZEN_BEFORE_FAILURE_SHARE) & (
        u < OIL_FROZEN_BEFORE_FAILURE_SHARE + OIL_SPOOFED_BEFORE_FAILURE_SHARE)
    pos = lives.pos[cand]
    part(OIL_FROZEN, np.full(frozen.sum(), BEFORE_FAILURE), TRANSFORMER, pos[frozen],
         start[frozen], fail[frozen])
    part(OIL_SPOOFED, np.full(spoofed.sum(), SCALED_RISE), TRANSFORMER, pos[spoofed],
         start[spoofed], fail[spoofed], rise[spoofed])

    # 3b. frozen oil sensors at any time, on a unit in service
    counts = rng.poisson(OIL_FROZEN_BACKGROUND_RATE * years, n_t)
    pos = np.repeat(np.arange(n_t), counts)
    k = len(pos)
    start = rng.integers(1, n_hours, k).astype(np.float64)
    lo_d, hi_d = OIL_FROZEN_BACKGROUND_DAYS
    end = np.minimum(start + rng.integers(24 * lo_d, 24 * hi_d + 1, k), n_hours)
    ok = same_life(pos, start - 1.0, end)
    part(OIL_FROZEN, np.full(ok.sum(), BACKGROUND), TRANSFORMER, pos[ok], start[ok], end[ok])

    # 5. clocks running late; the first hours of a day come from the day before
    pos, day0, nd = whole_days(CLOCK_SHIFT_RATE, n_t, 1, CLOCK_SHIFT_DAYS)
    shift = rng.choice(np.array(CLOCK_SHIFT_HOURS), len(pos))
    start, end = day0 * 24.0, (day0 + nd) * 24.0
    ok = same_life(pos, start - 24.0, end)
    part(CLOCK_SHIFT, _LATE[shift[ok]], TRANSFORMER, pos[ok], start[ok], end[ok], shift[ok])

    # 6. groups of a circuit's transformers that send nothing for whole days
    c, day0, nd = whole_days(SILENT_GROUP_RATE, n_c, 0, SILENT_GROUP_DAYS)
    k = len(c)
    share = rng.uniform(*SILENT_GROUP_SHARE, k)
    where = rng.random(k)
    count = tx_count[c]
    cap = int(np.floor(SILENT_GROUP_MAX_FLEET_SHARE * n_t))
    size = np.maximum(SILENT_GROUP_MIN, np.ceil(share * count)).astype(np.int64)
    size = np.minimum(size, np.minimum(count, cap))
    ok = (count >= SILENT_GROUP_MIN) & (cap >= SILENT_GROUP_MIN)
    ok &= _within_daily_cap(day0, nd, np.where(ok, size, 0),
                            int(np.floor(SILENT_DAY_MAX_FLEET_SHARE * n_t)), n_days)
    c, day0, nd, size = c[ok], day0[ok], nd[ok], size[ok]
    offset = np.floor(where[ok] * (count[ok] - size + 1)).astype(np.int64)
    group = np.repeat(np.arange(len(c)), size)
    member = np.arange(len(group)) - np.repeat(np.cumsum(size) - size, size)
    pos = tx_first[c][group] + offset[group] + member
    part(SILENT, np.full(len(pos), WHOLE_DAY), TRANSFORMER, pos, day0[group] * 24.0,
         (day0 + nd)[group] * 24.0, group=group, size=size[group])

    # number the events by start, then kind, then their order of drawing
    kind_of = np.concatenate([p["kind"] for p in parts])
    group_key = np.concatenate([p["group"] + (i << 40) for i, p in enumerate(parts)])
    start_all = np.concatenate([p["start"] for p in parts])
    device_all = np.concatenate([p["device"] for p in parts])
    ukeys, inverse = np.unique(group_key, return_inverse=True)
    ev_start = np.full(len(ukeys), np.inf)
    np.minimum.at(ev_start, inverse, start_all)
    ev_kind = np.zeros(len(ukeys), np.int64)
    ev_kind[inverse] = kind_of
    ev_order = np.lexsort((ukeys, ev_kind, ev_start))
    ev_number = np.empty(len(ukeys), np.int64)
    ev_number[ev_order] = np.arange(len(ukeys))
    event = ev_number[inverse]
    order = np.lexsort((device_all, event))
    cat = {name: np.concatenate([p[name] for p in parts])[order] for name in parts[0]}
    device_type = cat["device_type"]
    circuit = np.where(device_type == CIRCUIT, cat["device"],
                       tx_circuit[np.where(device_type == TRANSFORMER, cat["device"], 0)])
    inj_event = ev_number[np.searchsorted(ukeys, parts[inj_parts]["group"] + (inj_parts << 40))]
    return Calendar(
        event=event[order], kind=cat["kind"], variant=cat["variant"], device_type=device_type,
        device=cat["device"], circuit=circuit, start=cat["start"], end=cat["end"],
        value=cat["value"], seed=cat["seed"], group_size=cat["group_size"],
        win_event=inj_event[w_ev], win_start=w_start, win_end=w_end,
    )


def _within_daily_cap(day0: np.ndarray, nd: np.ndarray, size: np.ndarray, cap: int,
                      n_days: int) -> np.ndarray:
    """Keep events in order of their first day (then of drawing) while every day they cover stays
    within `cap` silent transformers; a later event that would exceed it is dropped whole."""
    keep = size > 0
    ev = np.repeat(np.flatnonzero(keep), nd[keep])
    days = day0[ev] + np.arange(len(ev)) - np.repeat(np.cumsum(nd[keep]) - nd[keep], nd[keep])
    if (np.bincount(days, weights=size[ev], minlength=n_days) <= cap).all():
        return keep
    used = np.zeros(n_days, np.int64)
    for i in np.lexsort((np.arange(len(day0)), day0)):
        if not keep[i]:
            continue
        days = slice(day0[i], day0[i] + nd[i])
        if (used[days] + size[i] > cap).any():
            keep[i] = False
        else:
            used[days] += size[i]
    return keep
