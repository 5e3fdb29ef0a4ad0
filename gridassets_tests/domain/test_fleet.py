"""The fleet simulator: determinism, the table contracts, and the hidden signal the models need."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from gridassets.domain.fleet import (
    DEFAULT_ZONES,
    EPOCH_END,
    EPOCH_START,
    FleetConfig,
    FleetSimulator,
)
from gridassets.domain.schemas import (
    CIRCUITS,
    FAILURE_MODES,
    OUTAGE_CAUSES,
    RAW_TABLES,
    SPECS,
    TRANSFORMERS,
)

SMALL = FleetConfig(seed=3, n_circuits=12, n_transformers=400)
DEMO = FleetConfig()  # 40 circuits, 2,000 transformers
WINDOW_START = date(2025, 1, 1)
WINDOW_DAYS = 180


def assert_conforms(frame: pd.DataFrame, spec, day: date | None = None, entities=None) -> None:
    """Columns, dtypes, nulls, ranges, keys, order and (for hourly tables) completeness."""
    assert list(frame.columns) == spec.names
    for col in spec.columns:
        s = frame[col.name]
        if col.dtype == "str":
            assert s.dtype == object and s.map(type).eq(str).all(), col.name
        elif col.dtype == "int":
            assert s.dtype == np.int64, col.name
        elif col.dtype == "float":
            assert s.dtype == np.float64, col.name
        elif col.dtype == "timestamp":
            assert s.dtype == "datetime64[ns]", col.name
        elif col.dtype == "date":
            assert s.dtype == object and s.dropna().map(type).eq(date).all(), col.name
        if not col.nullable and col.name not in ("hot_spot_temp_c", "h2_ppm", "c2h2_ppm", "c2h4_ppm"):
            assert s.notna().all(), f"{col.name} has nulls"
        values = s.dropna()
        if col.min is not None and len(values):
            assert values.min() >= col.min, col.name
        if col.max is not None and len(values):
            assert values.max() <= col.max, col.name
    key = list(spec.key)
    assert not frame.duplicated(key).any()
    assert frame.equals(frame.sort_values(key, kind="stable").reset_index(drop=True))
    first, last = spec.valid_days or (0, 1)
    if day is not None and spec.time_column:
        t = frame[spec.time_column]
        assert (t >= pd.Timestamp(day) + pd.Timedelta(days=first)).all()
        assert (t < pd.Timestamp(day) + pd.Timedelta(days=last)).all()
    if spec.hourly:
        counts = frame.groupby(spec.entity_column).size()
        assert (counts == 24 * (last - first)).all()
        assert set(counts.index) == set(entities)
        t = frame[spec.time_column]
        assert (t.dt.minute == 0).all() and (t.dt.second == 0).all()


def first_day_with_failures(sim: FleetSimulator, start: date) -> date:
    day = start
    while day <= EPOCH_END:
        if len(sim.transformer_failures(day)):
            return day
        day += timedelta(days=1)
    raise AssertionError(f"no failure from {start} to the end of the epoch")


# ---------------------------------------------------------------------------- determinism


def test_a_day_is_the_same_in_any_order_and_any_instance():
    day = date(2025, 3, 10)
    fresh = FleetSimulator(SMALL)
    expected = fresh.raw_day(day)
    expected_condition = fresh.transformer_condition(day)

    # another instance that built its timelines from other entry points and other days first
    other = FleetSimulator(SMALL)
    other.storms(date(2030, 1, 1), date(2030, 2, 1))
    other.transformer_failures(date(2031, 7, 4))
    for d in (date(2025, 6, 1), date(2024, 12, 30), day + timedelta(days=1), day - timedelta(days=3)):
        other.raw_day(d)
    got = other.raw_day(day)
    assert set(got) == {spec.name for spec in RAW_TABLES}
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True)
    pd.testing.assert_frame_equal(other.transformer_condition(day), expected_condition)
    pd.testing.assert_frame_equal(other.circuits(), FleetSimulator(SMALL).circuits())
    pd.testing.assert_frame_equal(other.transformers(), FleetSimulator(SMALL).transformers())
    # the per-table methods agree with raw_day
    pd.testing.assert_frame_equal(FleetSimulator(SMALL).feeder_load(day), expected["feeder_load"])


def test_one_instance_can_serve_several_threads():
    days = [date(2025, 4, 1) + timedelta(days=i % 3) for i in range(9)]
    expected = {d: FleetSimulator(SMALL).raw_day(d) for d in set(days)}
    shared = FleetSimulator(SMALL)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(shared.raw_day, days))
    for day, got in zip(days, results):
        for name, frame in expected[day].items():
            pd.testing.assert_frame_equal(got[name], frame)


def test_different_seeds_give_different_fleets_and_days():
    day = date(2025, 3, 10)
    a = FleetSimulator(FleetConfig(seed=1, n_circuits=12, n_transformers=400))
    b = FleetSimulator(FleetConfig(seed=2, n_circuits=12, n_transformers=400))
    assert not a.circuits()["customers"].equals(b.circuits()["customers"])
    assert not a.transformers()["install_year"].equals(b.transformers()["install_year"])
    assert not a.feeder_load(day)["load_mw"].equals(b.feeder_load(day)["load_mw"])
    assert not a.weather_observations(day)["temp_c"].equals(b.weather_observations(day)["temp_c"])
    assert not a.storms(WINDOW_START, date(2025, 12, 31)).equals(b.storms(WINDOW_START, date(2025, 12, 31)))


def test_hourly_series_run_on_across_midnight_without_jumps():
    sim = FleetSimulator(SMALL)
    days = [date(2025, 2, 1) + timedelta(days=i) for i in range(20)]
    load = pd.concat([sim.feeder_load(d) for d in days]).pivot(
        index="timestamp", columns="circuit_id", values="load_mw")
    temp = pd.concat([sim.weather_observations(d) for d in days]).pivot(
        index="timestamp", columns="zone", values="temp_c")
    for frame in (load, temp):
        # without the daily shape, 00:00 UTC (evening in Montana) is an hour like any other
        anomaly = frame - frame.groupby(frame.index.hour).transform("mean")
        step = anomaly.diff().abs().iloc[1:]
        at_midnight = step[step.index.hour == 0].to_numpy().mean()
        elsewhere = step[step.index.hour != 0].to_numpy().mean()
        assert at_midnight < 1.5 * elsewhere


# ---------------------------------------------------------------------------- contracts


def test_registries_conform():
    sim = FleetSimulator(DEMO)
    circuits, transformers = sim.circuits(), sim.transformers()
    assert_conforms(circuits, CIRCUITS)
    assert_conforms(transformers, TRANSFORMERS)
    assert len(circuits) == 40 and len(transformers) == 2000
    assert set(transformers["circuit_id"]) == set(circuits["circuit_id"])
    assert set(circuits["zone"]) == set(DEFAULT_ZONES)
    assert circuits["customers"].between(300, 6000).all()
    assert circuits["latitude"].between(46.5, 48.8).all()
    assert circuits["longitude"].between(-112.5, -108.5).all()
    trim_age = (pd.Timestamp("2025-01-01") - pd.to_datetime(circuits["last_trim_date"])).dt.days / 365.25
    assert trim_age.between(0.9, 8.1).all()
    assert transformers["rating_kva"].between(25, 2500).all()
    assert transformers["rating_kva"].median() <= 100
    assert transformers["install_year"].between(1965, 2024).all()


@pytest.mark.parametrize("config", [SMALL, FleetConfig(seed=5, n_circuits=3, n_transformers=3)],
                         ids=["small", "tiny"])
def test_raw_tables_conform_to_their_specs(config):
    sim = FleetSimulator(config)
    day = first_day_with_failures(sim, EPOCH_START)
    circuits, transformers = sim.circuits(), sim.transformers()
    entities = {
        "transformer_telemetry": transformers["transformer_id"],
        "feeder_load": circuits["circuit_id"],
        "weather_observations": config.zones,
        "weather_forecasts": config.zones,
    }
    raw = sim.raw_day(day)
    for spec in RAW_TABLES:
        assert_conforms(raw[spec.name], spec, day, entities.get(spec.name))
    assert set(circuits["zone"]) <= set(config.zones)
    assert raw["outage_events"]["cause"].isin(OUTAGE_CAUSES).all()
    assert raw["transformer_failures"]["failure_mode"].isin(FAILURE_MODES).all()
    assert len(raw["transformer_failures"]) > 0
    assert (raw["outage_events"]["end_ts"] > raw["outage_events"]["start_ts"]).all()


def test_epoch_edges_and_bad_input():
    sim = FleetSimulator(SMALL)
    for day in (EPOCH_START, EPOCH_END):
        raw = sim.raw_day(day)
        assert_conforms(raw["feeder_load"], SPECS["feeder_load"], day, sim.circuits()["circuit_id"])
    # the last forecasts of the epoch reach no further than its end
    assert sim.raw_day(EPOCH_END)["weather_forecasts"].empty
    assert sim.weather_forecasts(EPOCH_END - timedelta(days=2))["valid_ts"].max() == \
        pd.Timestamp(EPOCH_END) + pd.Timedelta(hours=23)
    with pytest.raises(ValueError, match="outside the simulated epoch"):
        sim.feeder_load(EPOCH_START - timedelta(days=1))
    with pytest.raises(ValueError, match="outside the simulated epoch"):
        sim.raw_day(EPOCH_END + timedelta(days=1))
    with pytest.raises(ValueError, match="n_transformers"):
        FleetConfig(n_circuits=10, n_transformers=5)
    with pytest.raises(ValueError, match="seed"):
        FleetConfig(seed=-1)
    with pytest.raises(ValueError, match="zones"):
        FleetConfig(zones=())


def test_the_simulator_never_imports_dagster():
    code = "import sys, gridassets.domain.fleet; sys.exit('dagster' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_utility_scale_day_has_every_row():
    sim = FleetSimulator(FleetConfig(n_circuits=500, n_transformers=20_000))
    day = date(2025, 7, 15)
    tele = sim.transformer_telemetry(day)
    assert len(tele) == 20_000 * 24
    assert_conforms(tele, SPECS["transformer_telemetry"], day, sim.transformers()["transformer_id"])
    assert len(sim.feeder_load(day)) == 500 * 24


# ---------------------------------------------------------------------------- the hidden signal


@pytest.fixture(scope="module")
def window():
    """180 days of the demo fleet, telemetry reduced to one row per transformer and day.

    Without telemetry threats: these tests are about the physics the models learn from (the
    threats are tested in test_threats.py)."""
    sim = FleetSimulator(replace(DEMO, threats=False))
    ids = sim.transformers()["transformer_id"].to_numpy()
    parts: dict[str, list] = {k: [] for k in ("weather", "load", "outages", "failures", "daily")}
    for i in range(WINDOW_DAYS):
        day = WINDOW_START + timedelta(days=i)
        raw = sim.raw_day(day)
        parts["weather"].append(raw["weather_observations"])
        parts["load"].append(raw["feeder_load"])
        parts["outages"].append(raw["outage_events"])
        parts["failures"].append(raw["transformer_failures"])
        tele = raw["transformer_telemetry"]

        def daily(col: str):
            return tele[col].to_numpy().reshape(len(ids), 24).mean(axis=1)

        cond = sim.transformer_condition(day)
        parts["daily"].append(pd.DataFrame({
            "transformer_id": ids, "date": pd.Timestamp(day),
            "load2": (tele["load_pct"].to_numpy().reshape(len(ids), 24) / 100.0) ** 2 @ np.ones(24) / 24,
            "oil_rise": daily("oil_temp_c") - daily("ambient_temp_c"),
            "h2": daily("h2_ppm"), "c2h2": daily("c2h2_ppm"), "c2h4": daily("c2h4_ppm"),
            "hot_spot": daily("hot_spot_temp_c"),
            "severity": cond["severity"].to_numpy(), "degrading": cond["degrading"].to_numpy(),
            "next_failure_at": cond["next_failure_at"].to_numpy(),
            "failure_mode": cond["failure_mode"].to_numpy(),
        }))
    out = {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}
    out["sim"] = sim
    return out


def test_failures_over_a_demo_window_are_several_dozen_and_mostly_foreshadowed(window):
    failures, daily = window["failures"], window["daily"]
    assert 25 <= len(failures) <= 80
    # the hidden truth names each recorded failure, at the same minute
    first = daily[daily["date"] == pd.Timestamp(WINDOW_START)].set_index("transformer_id")
    true_modes = []
    for row in failures.itertuples():
        cond = daily[(daily["transformer_id"] == row.transformer_id)
                     & (daily["date"] == row.failed_at.normalize())].iloc[0]
        assert cond["next_failure_at"] == row.failed_at
        true_modes.append(cond["failure_mode"])
        if row.failure_mode != "unknown":
            assert row.failure_mode == cond["failure_mode"]
    foreshadowed = np.isin(true_modes, ["thermal", "dielectric"]).mean()
    assert 0.6 <= foreshadowed <= 0.95
    assert first["degrading"].sum() >= 3


def test_every_failure_takes_its_customers_out(window):
    sim, outages = window["sim"], window["outages"]
    circuit_of = sim.transformers().set_index("transformer_id")["circuit_id"]
    for row in window["failures"].itertuples():
        o = outages[(outages["circuit_id"] == circuit_of[row.transformer_id])
                    & (outages["start_ts"] >= row.failed_at)
                    & (outages["start_ts"] <= row.failed_at + pd.Timedelta(minutes=5))]
        assert len(o) >= 1 and o["cause"].isin(["equipment", "unknown"]).all()


def test_degrading_units_run_hot_and_gas_before_they_fail(window):
    d = window["daily"]
    healthy = d[~d["degrading"]]
    # the fleet's oil rise as a function of loading, fitted on healthy unit-days
    b, a = np.polyfit(healthy["load2"], healthy["oil_rise"], 1)
    d = d.assign(residual=d["oil_rise"] - (a + b * d["load2"]))
    late = d[d["severity"] > 0.4]
    well = d[~d["degrading"]]
    assert len(late["transformer_id"].unique()) >= 5
    assert late["residual"].mean() > well["residual"].mean() + 3.0
    for gas, factor in (("h2", 3.0), ("c2h4", 2.0), ("c2h2", 2.0)):
        assert late[gas].median() > factor * well[gas].median(), gas
    thermal = late[late["failure_mode"] == "thermal"]
    dielectric = late[late["failure_mode"] == "dielectric"]
    assert thermal["c2h4"].median() > dielectric["c2h4"].median()
    assert dielectric["c2h2"].median() > thermal["c2h2"].median()


def test_no_single_reading_gives_the_failures_away(window):
    d = window["daily"]
    days_left = (d["next_failure_at"] - d["date"]).dt.days
    d = d.assign(fails_soon=days_left.between(0, 30))
    healthy = d[~d["degrading"]]
    b, a = np.polyfit(healthy["load2"], healthy["oil_rise"], 1)
    d = d.assign(residual=d["oil_rise"] - (a + b * d["load2"]))
    aucs = {}
    for col in ("residual", "h2", "c2h2", "c2h4", "hot_spot"):
        sub = d.dropna(subset=[col])
        aucs[col] = roc_auc_score(sub["fails_soon"], sub[col])
    assert max(aucs.values()) > 0.6, aucs
    assert max(aucs.values()) < 0.95, aucs


def test_sensors_are_fitted_on_part_of_the_fleet(window):
    d = window["daily"]
    first = d[d["date"] == pd.Timestamp(WINDOW_START)]
    gas_share = first["h2"].notna().mean()
    hot_spot_share = first["hot_spot"].notna().mean()
    assert 0.25 <= gas_share <= 0.42
    assert 0.5 <= hot_spot_share <= 0.7
    # high but stable gas levels exist on healthy units too
    healthy = d[~d["degrading"] & d["h2"].notna()]
    assert (healthy.groupby("transformer_id")["h2"].median() > 150).sum() >= 5


def test_outages_rise_steeply_with_gust(window):
    sim = window["sim"]
    weather, outages = window["weather"], window["outages"]
    gust = (weather.assign(date=weather["timestamp"].dt.normalize())
            .groupby(["zone", "date"])["wind_gust_mph"].max().rename("gust").reset_index())
    circuit_days = sim.circuits()[["circuit_id", "zone"]].merge(gust, on="zone")
    counts = (outages.assign(date=outages["start_ts"].dt.normalize())
              .groupby(["circuit_id", "date"]).size().rename("n").reset_index())
    cd = circuit_days.merge(counts, how="left", on=["circuit_id", "date"]).fillna({"n": 0})
    calm = cd[cd["gust"] < 35]["n"].mean()
    windy = cd[cd["gust"].between(45, 60)]["n"].mean()
    stormy = cd[cd["gust"] >= 60]["n"].mean()
    assert (cd["gust"] >= 60).sum() >= 20
    assert windy > 1.5 * calm
    assert stormy > 5 * calm


def test_storms_in_the_calendar_show_in_the_weather(window):
    sim, weather = window["sim"], window["weather"]
    storms = sim.storms(WINDOW_START, WINDOW_START + timedelta(days=WINDOW_DAYS - 1))
    assert storms["storm_id"].nunique() >= 6 * 2  # several a month over the region
    assert set(storms["kind"]) <= {"wind", "thunderstorm"}
    hours = (storms["end_ts"] - storms["start_ts"]).dt.total_seconds() / 3600
    assert hours.between(6, 36).all()
    assert storms["peak_gust_mph"].max() <= 90 and storms["peak_gust_mph"].min() >= 40 * 0.7
    assert set(storms["zone"]) <= set(DEFAULT_ZONES)
    w = weather.set_index(["zone", "timestamp"])["wind_gust_mph"]
    inside = storms[(storms["start_ts"] >= pd.Timestamp(WINDOW_START) + pd.Timedelta(days=1))
                    & (storms["end_ts"] < pd.Timestamp(WINDOW_START) + pd.Timedelta(days=WINDOW_DAYS - 1))]
    for row in inside.itertuples():
        observed = w.loc[row.zone].loc[row.start_ts:row.end_ts].max()
        assert observed >= 0.8 * row.peak_gust_mph


def test_load_has_a_daily_cycle_and_follows_temperature(window):
    sim = window["sim"]
    load = window["load"].merge(sim.circuits()[["circuit_id", "zone"]], on="circuit_id")
    load = load.merge(window["weather"][["zone", "timestamp", "temp_c"]], on=["zone", "timestamp"])
    rel = load["load_mw"] / load.groupby("circuit_id")["load_mw"].transform("mean")
    by_hour = rel.groupby(load["timestamp"].dt.hour).mean()
    assert by_hour.max() / by_hour.min() > 1.5
    daily = (load.assign(rel=rel, date=load["timestamp"].dt.normalize())
             .groupby(["circuit_id", "date"])[["rel", "temp_c"]].mean())
    cold = daily[daily["temp_c"] < 10]
    assert np.corrcoef(cold["temp_c"], cold["rel"])[0, 1] < -0.5
    # weekends are lighter (commercial load), in local time
    local = load["timestamp"] - pd.Timedelta(hours=7)
    weekend = rel[local.dt.dayofweek >= 5].mean()
    weekday = rel[local.dt.dayofweek < 5].mean()
    assert weekend < weekday - 0.02
