"""Telemetry threats in the simulator: only the listed device-hours change, as the truth says."""

import re
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from gridassets.domain import threats as tm
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.domain.quality import MIN_COVERAGE

DEMO = FleetConfig()  # 40 circuits, 2,000 transformers, seed 7
YEAR = (date(2024, 7, 1), date(2025, 6, 30))
CHANNELS = ["load_pct", "oil_temp_c", "ambient_temp_c", "hot_spot_temp_c", "h2_ppm", "c2h2_ppm",
            "c2h4_ppm"]
KEYS = {"transformer": ("transformer_id", CHANNELS), "circuit": ("circuit_id", ["load_mw"])}


@pytest.fixture(scope="module")
def sims():
    return FleetSimulator(DEMO), FleetSimulator(replace(DEMO, threats=False))


@pytest.fixture(scope="module")
def truth(sims):
    frame = sims[0].threats(*YEAR)
    return frame[frame["start_ts"] >= pd.Timestamp(YEAR[0])]


def table(sim: FleetSimulator, device_type: str, day: date) -> pd.DataFrame:
    if device_type == "circuit":
        return sim.feeder_load(day)
    return sim.transformer_telemetry(day)


def series(sim: FleetSimulator, device_type: str, device: str, day: date, col: str) -> np.ndarray:
    frame = table(sim, device_type, day)
    return frame.loc[frame[KEYS[device_type][0]] == device, col].to_numpy()


def first(truth: pd.DataFrame, threat: str, variant: str | None = None, **where) -> pd.Series:
    rows = truth[truth["threat"] == threat]
    if variant:
        rows = rows[rows["variant"] == variant]
    for col, value in where.items():
        rows = rows[rows[col] == value]
    assert len(rows), (threat, variant, where)
    return rows.iloc[0]


def day_of(ts: pd.Timestamp) -> date:
    return ts.date()


def test_threats_off_gives_full_clean_tables_and_no_truth(sims):
    sim, clean = sims
    assert clean.threats(*YEAR).empty
    assert list(clean.threats(*YEAR).columns) == list(sim.threats(*YEAR).columns)
    day = date(2025, 1, 1)
    tele = clean.transformer_telemetry(day)
    assert len(tele) == 24 * DEMO.n_transformers
    raw, raw_clean = sim.raw_day(day), clean.raw_day(day)
    for name in ("weather_observations", "outage_events", "transformer_failures",
                 "weather_forecasts"):
        pd.testing.assert_frame_equal(raw[name], raw_clean[name])


def test_truth_has_its_columns_and_every_type(truth):
    assert list(truth.columns) == ["threat_id", "threat", "variant", "device_type", "device_id",
                                   "circuit_id", "start_ts", "end_ts", "detail"]
    assert set(truth["threat"]) == set(tm.THREAT_KINDS)
    assert (truth["end_ts"] > truth["start_ts"]).all()
    assert truth["threat_id"].str.fullmatch(r"TH-\d{6}").all()
    # one event per id, except silent groups, which share one
    per_id = truth.groupby("threat_id").agg(n=("device_id", "size"), kind=("threat", "first"))
    assert (per_id.loc[per_id["kind"] != "silent_group", "n"] == 1).all()
    assert per_id.loc[per_id["kind"] == "silent_group", "n"].min() >= tm.SILENT_GROUP_MIN


def test_only_the_listed_device_hours_change(sims, truth):
    sim, clean = sims
    # the first day of the first event of every kind and variant, and a run of ordinary days
    days = {day_of(ts) for ts in truth.groupby(["threat", "variant"])["start_ts"].min()}
    days |= {date(2025, 2, 10) + timedelta(days=i) for i in range(4)}
    all_truth = sim.threats(min(days), max(days))
    checked = set()
    for day in sorted(days):
        lo, hi = pd.Timestamp(day), pd.Timestamp(day) + pd.Timedelta(days=1)
        today = all_truth[(all_truth["start_ts"] < hi) & (all_truth["end_ts"] > lo)]
        for device_type, (id_col, cols) in KEYS.items():
            merged = table(clean, device_type, day).merge(
                table(sim, device_type, day), on=[id_col, "timestamp"], how="left",
                suffixes=("", "_t"), indicator=True)
            differs = merged["_merge"] == "left_only"
            for c in cols:
                a, b = merged[c], merged[f"{c}_t"]
                differs |= ~((a == b) | (a.isna() & b.isna()))
            changed = merged.loc[differs, [id_col, "timestamp"]].rename(
                columns={id_col: "device_id"})
            listed = today[today["device_type"] == device_type]
            joined = changed.merge(listed, on="device_id", how="left")
            covered = (joined["start_ts"] <= joined["timestamp"]) & (
                joined["timestamp"] < joined["end_ts"])
            hit = covered.groupby([joined["device_id"], joined["timestamp"]]).any()
            assert hit.all(), hit[~hit].head()
            # and every event listed for the day changes something of its device that day
            for _, row in listed.iterrows():
                mine = changed[(changed["device_id"] == row["device_id"])
                               & (changed["timestamp"] >= row["start_ts"])
                               & (changed["timestamp"] < row["end_ts"])]
                assert len(mine), row.to_dict()
                checked.add(row["threat"])
    assert checked == set(tm.THREAT_KINDS)


def test_a_day_is_the_same_alone_in_any_order_and_in_a_fresh_simulator(truth):
    days = [day_of(first(truth, kind)["start_ts"]) for kind in
            ("replay", "clock_shift", "oil_sensor_frozen", "silent_group", "load_injection")]
    forward = FleetSimulator(DEMO)
    expected = {d: (forward.transformer_telemetry(d), forward.feeder_load(d)) for d in days}
    backward = FleetSimulator(DEMO)
    for d in reversed(days):
        pd.testing.assert_frame_equal(backward.transformer_telemetry(d), expected[d][0])
        pd.testing.assert_frame_equal(backward.feeder_load(d), expected[d][1])
    for d in days:
        alone = FleetSimulator(DEMO)
        pd.testing.assert_frame_equal(alone.transformer_telemetry(d), expected[d][0])
        pd.testing.assert_frame_equal(alone.feeder_load(d), expected[d][1])
    pd.testing.assert_frame_equal(FleetSimulator(DEMO).threats(*YEAR), forward.threats(*YEAR))


def windows(detail: str, day: date) -> list[tuple[int, int]]:
    """The injected hours of `day` listed in a load injection's detail."""
    one = re.search(r"from (\d\d):00 to (\d\d):00 UTC", detail)
    if one:
        return [(int(one[1]), int(one[2]))]
    return [(int(a), int(b)) for d, a, b in re.findall(r"(\S+) (\d\d):00-(\d\d):00", detail)
            if d == day.isoformat()]


@pytest.mark.parametrize("variant", ["scale_up", "scale_down", "offset"])
def test_a_load_injection_changes_exactly_the_listed_hours_by_the_listed_amount(
    sims, truth, variant
):
    sim, clean = sims
    row = first(truth, "load_injection", variant)
    day = day_of(row["start_ts"])
    hours = np.zeros(24, bool)
    for a, b in windows(row["detail"], day):
        hours[a:b] = True
    assert hours.any() and not hours.all()
    got = series(sim, "circuit", row["device_id"], day, "load_mw")
    base = series(clean, "circuit", row["device_id"], day, "load_mw")
    np.testing.assert_array_equal(got[~hours], base[~hours])
    if variant == "offset":
        mw = float(re.search(r"\+([\d.]+) MW", row["detail"])[1])
        np.testing.assert_allclose(got[hours] - base[hours], mw, atol=0.0015)
    else:
        factor = float(re.search(r"x([\d.]+)", row["detail"])[1])
        np.testing.assert_allclose(got[hours] / base[hours], factor, atol=0.006)
        lo, hi = tm.LOAD_SCALE_UP if variant == "scale_up" else tm.LOAD_SCALE_DOWN
        assert lo - 0.005 <= factor <= hi + 0.005


@pytest.mark.parametrize("device_type", ["circuit", "transformer"])
@pytest.mark.parametrize("variant", ["exact", "jittered"])
def test_a_replay_resends_the_clean_readings_of_an_earlier_day(sims, truth, device_type, variant):
    sim, clean = sims
    row = first(truth, "replay", variant, device_type=device_type)
    day = day_of(row["start_ts"])
    source = date.fromisoformat(re.search(r"re-sends (\S+)", row["detail"])[1])
    assert 1 <= (day - source).days <= 7
    for col in KEYS[device_type][1]:
        got = series(sim, device_type, row["device_id"], day, col)
        want = series(clean, device_type, row["device_id"], source, col)
        if variant == "exact":
            np.testing.assert_array_equal(got, want)
        else:
            tol = 0.3 if col.endswith("_c") else 0.01 * np.nan_to_num(np.abs(want)) + 0.11
            assert np.all((np.abs(got - want) <= tol) | (np.isnan(got) & np.isnan(want))), col
    if variant == "jittered":
        col = KEYS[device_type][1][0]
        got = series(sim, device_type, row["device_id"], day, col)
        assert not np.array_equal(got, series(clean, device_type, row["device_id"], source, col))


@pytest.mark.parametrize("variant", ["before_failure", "background"])
def test_a_frozen_oil_sensor_repeats_the_reading_before_the_attack(sims, truth, variant):
    sim, clean = sims
    rows = truth[(truth["threat"] == "oil_sensor_frozen") & (truth["variant"] == variant)]
    row = rows[rows["detail"].str.contains("hot spot")].iloc[0]
    before = row["start_ts"] - pd.Timedelta(hours=1)
    frame = clean.transformer_telemetry(day_of(before))
    reading = frame[(frame["transformer_id"] == row["device_id"])
                    & (frame["timestamp"] == before)].iloc[0]
    assert f"oil frozen at {reading['oil_temp_c']:.1f} C" in row["detail"]
    day = day_of(row["start_ts"]) + timedelta(days=1)  # a whole day inside the attack
    assert pd.Timestamp(day) + pd.Timedelta(days=1) <= row["end_ts"]
    for col in ("oil_temp_c", "hot_spot_temp_c"):
        got = series(sim, "transformer", row["device_id"], day, col)
        assert (got == reading[col]).all(), col
    # the other channels are untouched
    np.testing.assert_array_equal(series(sim, "transformer", row["device_id"], day, "load_pct"),
                                  series(clean, "transformer", row["device_id"], day, "load_pct"))


def test_a_spoofed_oil_sensor_reports_a_scaled_rise(sims, truth):
    sim, clean = sims
    rows = truth[truth["threat"] == "oil_sensor_spoofed"]
    row = rows[rows["detail"].str.contains("hot spot")].iloc[0]
    c = float(re.search(r"x([\d.]+)", row["detail"])[1])
    assert tm.OIL_SPOOF_RISE_FACTOR[0] - 0.005 <= c <= tm.OIL_SPOOF_RISE_FACTOR[1] + 0.005
    day = day_of(row["start_ts"]) + timedelta(days=1)
    amb = series(sim, "transformer", row["device_id"], day, "ambient_temp_c")
    np.testing.assert_array_equal(amb, series(clean, "transformer", row["device_id"], day,
                                              "ambient_temp_c"))
    for col in ("oil_temp_c", "hot_spot_temp_c"):
        got = series(sim, "transformer", row["device_id"], day, col) - amb
        want = series(clean, "transformer", row["device_id"], day, col) - amb
        assert np.all(np.abs(got - want * c) <= 0.06 + 0.005 * np.abs(want)), col
        assert (got < want).all()


def test_a_clock_shift_reports_the_clean_series_hours_late(sims, truth):
    sim, clean = sims
    for k in tm.CLOCK_SHIFT_HOURS[:3]:
        row = first(truth, "clock_shift", f"late_{k}h")
        assert row["detail"] == f"readings {k} h late"
        day = day_of(row["start_ts"])
        for col in CHANNELS:
            both = np.concatenate([
                series(clean, "transformer", row["device_id"], day - timedelta(days=1), col),
                series(clean, "transformer", row["device_id"], day, col)])
            np.testing.assert_array_equal(
                series(sim, "transformer", row["device_id"], day, col), both[24 - k:48 - k])


def test_a_silent_group_sends_nothing_and_the_day_stays_complete(sims, truth):
    sim, _ = sims
    row = first(truth, "silent_group")
    group = truth[truth["threat_id"] == row["threat_id"]]
    n = int(re.search(r"with (\d+) other", row["detail"])[1]) + 1
    assert len(group) == n and (group["circuit_id"] == row["circuit_id"]).all()
    circuit_size = (sim.transformers()["circuit_id"] == row["circuit_id"]).sum()
    assert n >= max(tm.SILENT_GROUP_MIN, np.ceil(0.3 * circuit_size))
    for day in pd.date_range(row["start_ts"], row["end_ts"] - pd.Timedelta(hours=1), freq="D"):
        tele = sim.transformer_telemetry(day.date())
        assert not tele["transformer_id"].isin(group["device_id"]).any()
        assert tele["transformer_id"].nunique() >= MIN_COVERAGE * DEMO.n_transformers
        assert (tele.groupby("transformer_id").size() == 24).all()


MID = FleetConfig(seed=7, n_circuits=200, n_transformers=4000)
SPAN = (date(2023, 7, 1), date(2025, 6, 30))  # two years


@pytest.fixture(scope="module")
def mid_truth():
    sim = FleetSimulator(MID)
    frame = sim.threats(*SPAN)
    return sim, frame[frame["start_ts"] >= pd.Timestamp(SPAN[0])]


def test_rates_over_two_years_are_about_right(mid_truth):
    sim, truth = mid_truth
    years = ((SPAN[1] - SPAN[0]).days + 1) / 365.25
    events = truth.drop_duplicates("threat_id")
    count = events.groupby(["threat", "variant", "device_type"]).size()

    def n(threat, variant=None, device_type=None) -> int:
        sel = count.xs(threat, level="threat")
        if variant:
            sel = sel[sel.index.get_level_values("variant") == variant]
        if device_type:
            sel = sel[sel.index.get_level_values("device_type") == device_type]
        return int(sel.sum())

    c_years, t_years = MID.n_circuits * years, MID.n_transformers * years
    expected = {
        ("load_injection", None, None): tm.LOAD_INJECTION_RATE * c_years,
        ("replay", None, "circuit"): tm.REPLAY_CIRCUIT_RATE * c_years,
        ("replay", None, "transformer"): tm.REPLAY_TRANSFORMER_RATE * t_years,
        ("clock_shift", None, None): tm.CLOCK_SHIFT_RATE * t_years,
        ("oil_sensor_frozen", "background", None): tm.OIL_FROZEN_BACKGROUND_RATE * t_years,
        ("silent_group", None, None): tm.SILENT_GROUP_RATE * c_years,
    }
    for key, want in expected.items():
        assert 0.65 * want <= n(*key) <= 1.35 * want, (key, n(*key), want)
    scale_up = n("load_injection", "scale_up") / n("load_injection")
    assert 0.45 <= scale_up <= 0.75


def test_before_failure_attacks_end_at_the_failure_and_take_about_a_fifth_each(mid_truth):
    sim, truth = mid_truth
    failures = pd.concat([sim.transformer_failures(SPAN[0] + timedelta(days=i))
                          for i in range((SPAN[1] - SPAN[0]).days + 1)])
    thermal = (failures["failure_mode"] == "thermal").sum() / 0.85  # 15% are recorded unknown
    attacks = truth[truth["variant"].isin(["before_failure", "scaled_rise"])]
    attacks = attacks[attacks["end_ts"] <= pd.Timestamp(SPAN[1]) + pd.Timedelta(days=1)]
    ends = attacks.merge(failures, left_on=["device_id", "end_ts"],
                         right_on=["transformer_id", "failed_at"], how="left")
    assert ends["failure_mode"].isin(["thermal", "unknown"]).all()
    lead = (attacks["end_ts"] - attacks["start_ts"]) / pd.Timedelta(days=1)
    assert (lead <= tm.BEFORE_FAILURE_LEAD_DAYS[1] + 0.05).all()
    assert (lead >= tm.BEFORE_FAILURE_LEAD_DAYS[0] - 0.05).mean() > 0.9  # a few units are young
    for variant, share in (("before_failure", tm.OIL_FROZEN_BEFORE_FAILURE_SHARE),
                           ("scaled_rise", tm.OIL_SPOOFED_BEFORE_FAILURE_SHARE)):
        got = (attacks["variant"] == variant).sum()
        assert 0.5 * share * thermal <= got <= 1.6 * share * thermal, (variant, got, thermal)


def test_silent_transformers_of_any_day_stay_under_four_percent(mid_truth):
    sim, truth = mid_truth
    silent = truth[truth["threat"] == "silent_group"]
    per_day = {}
    for _, row in silent.iterrows():
        for day in pd.date_range(row["start_ts"], row["end_ts"] - pd.Timedelta(hours=1), freq="D"):
            per_day[day] = per_day.get(day, 0) + 1
    assert max(per_day.values()) <= tm.SILENT_DAY_MAX_FLEET_SHARE * MID.n_transformers


def test_the_readings_of_a_few_positions_are_those_of_the_whole_fleet():
    """Replays, clock shifts and frozen sensors read other days through this subset."""
    day = date(2025, 3, 3)
    whole = FleetSimulator(DEMO)._make_physics(day)
    positions = np.array([3, 250, 1999])
    for oil_only in (False, True):
        part = FleetSimulator(DEMO)._make_physics(day, positions, oil_only=oil_only)
        for name, values in part.items():
            np.testing.assert_array_equal(values, whole[name][positions], err_msg=name)


def test_the_load_of_a_few_circuits_is_that_of_all_circuits():
    sim = FleetSimulator(FleetConfig(seed=11, n_circuits=300, n_transformers=600))
    circuits = np.array([0, 7, 7, 150, 299])
    for day in (date(2015, 1, 1), date(2025, 1, 20), date(2025, 7, 14)):
        whole = sim._make_load(day)
        part = sim._make_load(day, circuits)
        for name in ("load_mw", "ratio"):
            np.testing.assert_array_equal(part[name], whole[name][circuits], err_msg=name)


@pytest.mark.parametrize("day0, nd, size, cap, keep", [
    ([0, 0, 1], [1, 1, 1], [50, 40, 40], 80, [True, False, True]),  # second one would make 90
    ([0, 1, 1], [2, 1, 1], [50, 30, 10], 80, [True, True, False]),  # 50 + 30 on day 1 is full
    ([0, 5, 3], [2, 2, 2], [60, 60, 60], 80, [True, True, True]),  # never on the same day
    ([2, 2], [1, 1], [0, 90], 80, [False, False]),  # an empty group is never kept; 90 never fits
])
def test_silent_groups_that_would_crowd_a_day_are_dropped_in_order_of_start(
    day0, nd, size, cap, keep
):
    got = tm._within_daily_cap(np.array(day0), np.array(nd), np.array(size), cap, 10)
    assert got.tolist() == keep
