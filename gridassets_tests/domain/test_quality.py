from datetime import date

import numpy as np
import pandas as pd
import pytest

from gridassets.domain import quality
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.domain.schemas import (
    CIRCUITS,
    FEEDER_LOAD,
    OUTAGE_EVENTS,
    SPECS,
    TRANSFORMER_TELEMETRY,
    WEATHER_OBSERVATIONS,
)
from gridassets_tests.conftest import SMALL_FLEET

DAY = date(2025, 6, 1)


def load_frame(circuits=("C1", "C2"), hours=24) -> pd.DataFrame:
    ts = pd.date_range("2025-06-01", periods=hours, freq="h")
    return pd.DataFrame({
        "circuit_id": np.repeat(list(circuits), hours),
        "timestamp": np.tile(ts, len(circuits)),
        "load_mw": np.linspace(2, 5, hours * len(circuits)),
    })


def test_good_frame_passes_every_rule():
    frame = load_frame()
    assert quality.check_schema(frame, FEEDER_LOAD).passed
    assert quality.check_ranges(frame, FEEDER_LOAD).passed
    assert quality.check_duplicates(frame, FEEDER_LOAD).passed
    assert quality.check_completeness(frame, FEEDER_LOAD, [DAY], {"C1", "C2"}).passed


def test_schema_names_missing_column_and_wrong_type():
    frame = load_frame().drop(columns="load_mw")
    out = quality.check_schema(frame, FEEDER_LOAD)
    assert not out.passed and "missing columns ['load_mw']" in out.summary
    frame = load_frame().assign(timestamp="2025-06-01")
    out = quality.check_schema(frame, FEEDER_LOAD)
    assert not out.passed and "timestamp is object, expected timestamp" in out.summary


def test_ranges_report_count_and_extremes():
    frame = load_frame()
    frame.loc[3, "load_mw"] = -5000.0
    out = quality.check_ranges(frame, FEEDER_LOAD)
    assert not out.passed
    assert "load_mw: 1 value(s) outside" in out.summary and "-5000" in out.summary
    assert out.details["examples"][0].startswith("circuit_id=C1")


def test_outage_ending_before_start_fails_ranges():
    frame = pd.DataFrame({
        "circuit_id": ["C1"], "start_ts": [pd.Timestamp("2025-06-01 10:00")],
        "end_ts": [pd.Timestamp("2025-06-01 09:00")], "customers_affected": [5], "cause": ["animal"],
    })
    out = quality.check_ranges(frame, OUTAGE_EVENTS)
    assert not out.passed and "end before they start" in out.summary


def test_duplicates_are_counted():
    frame = pd.concat([load_frame(), load_frame().head(3)])
    out = quality.check_duplicates(frame, FEEDER_LOAD)
    assert not out.passed and out.summary.startswith("3 duplicate row(s)")


@pytest.mark.parametrize(
    "frame, expected, words",
    [
        (load_frame().drop(index=[5]), {"C1", "C2"}, "without exactly 24 hourly rows"),
        (load_frame(circuits=("C1",)), {"C1", "C2"}, "only 50.0% of 2 registry circuit_ids"),
        (load_frame(circuits=("C1", "C9")), {"C1", "C2"}, "not in the registry"),
    ],
    ids=["missing-hour", "missing-circuit", "unknown-circuit"],
)
def test_completeness_failures(frame, expected, words):
    out = quality.check_completeness(frame, FEEDER_LOAD, [DAY], expected)
    assert not out.passed and words in out.summary


def test_completeness_of_events_checks_references():
    frame = pd.DataFrame({
        "circuit_id": ["C1", "CX"], "start_ts": pd.to_datetime(["2025-06-01 01:00"] * 2),
        "end_ts": pd.to_datetime(["2025-06-01 02:00"] * 2), "customers_affected": [1, 2],
        "cause": ["animal", "weather"],
    })
    assert not quality.check_completeness(frame, OUTAGE_EVENTS, [DAY], {"C1"}).passed
    assert quality.check_completeness(frame, OUTAGE_EVENTS, [DAY], {"C1", "CX"}).passed


def test_all_nan_optional_gas_columns_pass_schema():
    ts = pd.date_range("2025-06-01", periods=24, freq="h")
    frame = pd.DataFrame({
        "transformer_id": "T1", "timestamp": ts, "load_pct": 50.0, "oil_temp_c": 40.0,
        "ambient_temp_c": 20.0, "hot_spot_temp_c": np.nan, "h2_ppm": np.nan,
        "c2h2_ppm": np.nan, "c2h4_ppm": np.nan,
    })
    assert quality.check_schema(frame, TRANSFORMER_TELEMETRY).passed


def circuits_frame(zones=("MTZ309", "MTZ310"), ids=("C1", "C2")) -> pd.DataFrame:
    return pd.DataFrame({
        "circuit_id": list(ids), "zone": list(zones), "customers": [10, 20],
        "critical_customers": [0, 0], "length_km": [15.0, 15.0], "tree_canopy_pct": [30.0, 30.0],
        "last_trim_date": [None, None], "latitude": [47.0, 47.0], "longitude": [-110.0, -110.0],
        "capacity_mw": [5.0, 5.0],
    })


@pytest.mark.parametrize(
    "frame, words",
    [
        (circuits_frame(zones=("MTZ309", "MTZ309'; drop table x; --")),
         "zone: 1 value(s) not an NWS UGC zone code"),
        (circuits_frame(ids=("C1", "C\n2")), "circuit_id: 1 value(s) not printable text"),
        (circuits_frame(ids=("C1", 2)), "circuit_id: 1 value(s) not text"),
    ],
    ids=["zone", "control-character", "not-text"],
)
def test_schema_flags_text_that_breaks_its_column_rule(frame, words):
    out = quality.check_schema(frame, CIRCUITS)
    assert not out.passed and words in out.summary
    assert repr(frame.iloc[1][out.summary.split(":")[0]]) in out.summary


def test_schema_flags_a_bad_weather_zone():
    frame = pd.DataFrame({
        "zone": ["MTZ309", "MTZ 309"], "timestamp": pd.to_datetime(["2025-06-01"] * 2),
        "wind_speed_mph": 5.0, "wind_gust_mph": 9.0, "precip_mm": 0.0, "temp_c": 12.0,
    })
    out = quality.check_schema(frame, WEATHER_OBSERVATIONS)
    assert not out.passed and "'MTZ 309'" in out.summary


def test_a_synthetic_day_passes_the_schema_rules():
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    frames = {"circuits": sim.circuits(), "transformers": sim.transformers(), **sim.raw_day(DAY)}
    for name, frame in frames.items():
        out = quality.check_schema(frame, SPECS[name])
        assert out.passed, (name, out.summary)
