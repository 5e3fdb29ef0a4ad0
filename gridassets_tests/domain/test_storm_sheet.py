"""The planner's sheet, the zone summary, the GeoJSON layer and the map: pure functions on small
inline frames, and the writer of the three files."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gridassets.domain import plots, storm_sheet
from gridassets.domain.storm_sheet import (
    SHEET_COLUMNS,
    ZONE_COLUMNS,
    planner_sheet,
    sheet_geojson,
    suggested_crews,
    zone_summary,
    zone_time_zone,
)
from gridassets.storage import storm_lists


def storm_list(**columns) -> pd.DataFrame:
    """A storm_priority_circuits frame: three circuits in two zones of two states, July."""
    base = {
        "storm_id": "acme-july", "rank": [1, 2, 3], "circuit_id": ["C2", "C0", "C1"],
        "zone": ["MTZ309", "MTZ309", "WAZ503"], "latitude": [47.123456789, 47.2, 46.9],
        "longitude": [-111.3, -111.1, -120.5], "status": "active", "event": "High Wind Warning",
        "max_wind_gust_mph": [79.6, 79.6, 70.4],
        "window_start": pd.to_datetime(["2025-07-10 18:00"] * 3),
        "window_end": pd.to_datetime(["2025-07-11 06:00"] * 2 + ["2025-07-11 03:30"]),
        "expected_outages": [0.8646778504, 1.2049, 2.5],
        "priority_score": [12345.67, 9000.2, 700.5], "outage_score": [12000.4, 9000.2, 700.5],
        "transformer_score": [345.27, 0.0, 0.0], "vegetation_score": [1500.5, 0.0, 10.0],
        "customers": [1200, 800, 300], "critical_customers": [2, 0, 1],
        "state_date": pd.to_datetime(["2025-06-30"] * 3), "state_age_days": [10, 10, 10],
        "reason": ["r2", "r0", "r1"], "outage_model_version": "outage-v1",
        "conditions_source": "alert only",
    }
    base.update(columns)
    return pd.DataFrame(base)


@pytest.mark.parametrize(("zone", "tz"), [
    ("MTZ309", "America/Denver"), ("WAZ503", "America/Los_Angeles"),
    ("ORZ061", "America/Los_Angeles"), ("IDZ012", "America/Boise"), ("WAC033", "America/Los_Angeles"),
    ("azz501", "America/Phoenix"), ("PZZ673", "UTC"), ("", "UTC"),
])
def test_the_time_zone_of_a_zone_comes_from_its_state(zone, tz):
    assert zone_time_zone(zone) == tz


def test_every_state_time_zone_is_a_real_one():
    from zoneinfo import ZoneInfo

    for state, name in storm_sheet.STATE_TIME_ZONES.items():
        assert len(state) == 2 and ZoneInfo(name) is not None


def test_the_sheet_has_the_window_in_utc_and_local_time_and_rounded_numbers():
    sheet = planner_sheet(storm_list().iloc[::-1])  # any order in, rank order out
    assert list(sheet.columns) == SHEET_COLUMNS
    assert list(sheet["rank"]) == [1, 2, 3] and list(sheet["circuit_id"]) == ["C2", "C0", "C1"]
    first, last = sheet.iloc[0], sheet.iloc[2]
    # Montana is on Mountain Daylight Time in July, Washington on Pacific Daylight Time.
    assert (first["alert_onset_utc"], first["alert_end_utc"]) == ("2025-07-10T18:00Z",
                                                                 "2025-07-11T06:00Z")
    assert (first["alert_onset_local"], first["alert_end_local"]) == ("2025-07-10T12:00-06:00",
                                                                     "2025-07-11T00:00-06:00")
    assert first["time_zone"] == "America/Denver"
    assert (last["alert_onset_local"], last["alert_end_local"]) == ("2025-07-10T11:00-07:00",
                                                                   "2025-07-10T20:30-07:00")
    assert list(sheet["gust_mph"]) == [80, 80, 70]
    assert list(sheet["expected_outages"]) == [0.86, 1.2, 2.5]
    assert list(sheet["priority_customer_minutes"]) == [12346, 9000, 700]
    assert list(sheet["transformer_customer_minutes"]) == [345, 0, 0]
    assert first["latitude"] == 47.12346 and first["longitude"] == -111.3
    assert set(sheet["state_date"]) == {"2025-06-30"}


def test_winter_times_use_standard_time():
    sheet = planner_sheet(storm_list(window_start=pd.to_datetime(["2025-12-17 10:00"] * 3),
                                     window_end=pd.to_datetime(["2025-12-18 07:00"] * 3)))
    assert list(sheet["alert_onset_local"]) == ["2025-12-17T03:00-07:00"] * 2 + [
        "2025-12-17T02:00-08:00"]


def test_a_cancelled_list_has_no_window_and_a_circuit_may_lack_coordinates():
    frame = storm_list(status="cancelled", window_start=pd.NaT, window_end=pd.NaT,
                       state_date=pd.NaT, state_age_days=pd.NA, latitude=[np.nan, 47.2, 46.9],
                       outage_model_version=None)
    frame["window_start"] = frame["window_start"].astype("datetime64[us]")
    frame["window_end"] = frame["window_end"].astype("datetime64[us]")
    sheet = planner_sheet(frame)
    assert set(sheet["alert_onset_utc"]) == {""} and set(sheet["alert_end_local"]) == {""}
    assert sheet["state_date"].isna().all() and sheet["state_age_days"].isna().all()
    assert math.isnan(sheet["latitude"].iloc[0])


def test_a_list_missing_a_column_is_refused_by_name():
    with pytest.raises(ValueError, match="planner_sheet: the storm list lacks column.s. "
                                         "latitude, window_start"):
        planner_sheet(storm_list().drop(columns=["window_start", "latitude"]))
    with pytest.raises(ValueError, match="zone_summary: .* max_wind_gust_mph"):
        zone_summary(storm_list().drop(columns=["max_wind_gust_mph"]))


@pytest.mark.parametrize(("outages", "crews"), [
    (0.0, 0), (0.49, 0), (0.5, 1), (3.0, 1), (3.01, 2), (9.0, 3), (float("nan"), 0),
])
def test_one_crew_per_outages_per_crew_rounded_up(outages, crews):
    assert storm_sheet.OUTAGES_PER_CREW == 3.0
    assert suggested_crews(outages) == crews


def test_the_zone_summary_sums_before_rounding_and_suggests_crews():
    zones = zone_summary(storm_list())
    assert list(zones.columns) == ZONE_COLUMNS
    assert list(zones["zone"]) == ["MTZ309", "WAZ503"]  # most customer-minutes first
    mt = zones.iloc[0]
    assert (mt["circuits"], mt["customers"], mt["critical_customers"]) == (2, 2000, 2)
    assert mt["expected_outages"] == round(0.8646778504 + 1.2049, 2) == 2.07
    assert mt["priority_customer_minutes"] == round(12345.67 + 9000.2) == 21346
    assert mt["gust_mph"] == 80 and mt["suggested_crews"] == 1
    assert mt["alert_onset_local"] == "2025-07-10T12:00-06:00"
    wa = zones.iloc[1]
    assert (wa["gust_mph"], wa["suggested_crews"], wa["time_zone"]) == (70, 1,
                                                                       "America/Los_Angeles")
    assert wa["alert_end_utc"] == "2025-07-11T03:30Z"
    assert zone_summary(storm_list().iloc[0:0]).columns.tolist() == ZONE_COLUMNS


def test_the_geojson_has_a_point_per_circuit_in_longitude_latitude_order():
    sheet = planner_sheet(storm_list(latitude=[47.5, np.nan, 46.9]))
    layer = json.loads(json.dumps(sheet_geojson(sheet), allow_nan=False))
    assert layer["type"] == "FeatureCollection" and len(layer["features"]) == 3
    first, unplaced, last = layer["features"]
    assert first["type"] == "Feature"
    assert first["geometry"] == {"type": "Point", "coordinates": [-111.3, 47.5]}
    assert unplaced["geometry"] is None and unplaced["properties"]["latitude"] is None
    assert last["geometry"]["coordinates"] == [-120.5, 46.9]
    assert list(first["properties"]) == SHEET_COLUMNS
    assert first["properties"]["circuit_id"] == "C2" and first["properties"]["gust_mph"] == 80
    assert first["properties"]["alert_onset_local"] == "2025-07-10T12:00-06:00"
    assert first["properties"]["expected_outages"] == 0.86


def test_the_three_files_are_written_beside_each_other_and_parse(tmp_path):
    frame = storm_list()
    files = storm_lists.storm_list_files(tmp_path, "acme-july")
    sheet = planner_sheet(frame)
    storm_lists.write_storm_list(files, sheet, zone_summary(frame), sheet_geojson(sheet))
    assert files.sheet == tmp_path / "storms" / "acme-july" / "priority.csv"
    assert {p.name for p in files.sheet.parent.iterdir()} == {"priority.csv", "zones.csv",
                                                               "priority.geojson"}
    csv = pd.read_csv(files.sheet)
    assert list(csv.columns) == SHEET_COLUMNS and list(csv["gust_mph"]) == [80, 80, 70]
    assert list(pd.read_csv(files.zones)["suggested_crews"]) == [1, 1]
    layer = json.loads(files.geojson.read_text())
    assert [f["properties"]["rank"] for f in layer["features"]] == [1, 2, 3]


@pytest.mark.parametrize("storm_id", ["../x", "Acme", ""])
def test_a_storm_id_that_is_not_a_key_gets_no_files(tmp_path, storm_id):
    with pytest.raises(ValueError, match="is not a storm id"):
        storm_lists.storm_list_files(tmp_path, storm_id)


def test_the_map_is_a_png_and_names_what_it_left_off():
    frame = storm_list(latitude=[47.5, np.nan, 46.9])
    png = plots.circuit_map(frame, "storm acme-july")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    with pytest.raises(ValueError, match="circuit_map: the circuits lack column.s. latitude"):
        plots.circuit_map(frame.drop(columns=["latitude"]), "x")


def test_plots_and_the_sheet_do_not_import_matplotlib_until_a_plot_is_drawn():
    code = ("import sys, gridassets.domain.plots, gridassets.domain.storm_sheet, "
            "gridassets.storage.storm_lists; print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
