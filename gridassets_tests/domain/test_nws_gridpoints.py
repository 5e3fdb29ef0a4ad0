"""Real NWS gridpoint forecasts to hourly rows: intervals expanded, units converted, rain spread
over its interval; and the landing forms of `weather_forecasts`."""

import json
import shutil
from datetime import date, timedelta

import pandas as pd
import pytest

from gridassets.domain import landing, nws_gridpoints
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.domain.schemas import WEATHER_FORECASTS
from gridassets_tests.conftest import SMALL_FLEET
from gridassets_tests.nws_fixtures import GRIDPOINTS, load_gridpoint


def doc(name: str) -> dict:
    return json.loads(load_gridpoint(name))


@pytest.mark.parametrize("name", sorted(GRIDPOINTS))
def test_every_shared_gridpoint_file_imports_to_consecutive_hours(name):
    rows = nws_gridpoints.hourly(doc(name))
    issued = pd.Timestamp(GRIDPOINTS[name].replace(tzinfo=None)).floor("h")
    assert rows["valid_ts"].iloc[0] == issued
    assert (rows["valid_ts"].diff().dropna() == pd.Timedelta(hours=1)).all()
    assert len(rows) >= 100  # four days and more
    assert rows[["temp_c", "wind_speed_mph", "wind_gust_mph", "precip_mm"]].notna().all().all()
    assert rows["temp_c"].between(-40, 50).all() and rows["wind_gust_mph"].between(0, 150).all()
    assert nws_gridpoints.gridpoint_of(doc(name)) == (name[:3], *map(int, name[4:-5].split(",")))


def test_values_match_hand_computed_ones():
    """BMX 32,69: windGust 25.928 km/h for PT2H from the issue hour + 1; 32.426 mm over the
    first PT6H; temperature 13.888... degC for PT2H."""
    rows = nws_gridpoints.hourly(doc("BMX/32,69.json")).set_index("valid_ts")
    t0 = pd.Timestamp("2024-02-23 18:00")
    h = pd.Timedelta(hours=1)
    assert rows.loc[t0 + h, "wind_gust_mph"] == pytest.approx(16.1, abs=0.05)
    assert rows.loc[t0 + 2 * h, "wind_gust_mph"] == pytest.approx(16.1, abs=0.05)
    assert rows.loc[t0 + 3 * h, "wind_gust_mph"] == pytest.approx(29.632 / 1.609344)
    for k in range(6):
        assert rows.loc[t0 + k * h, "precip_mm"] == pytest.approx(32.426 / 6)
    assert rows.loc[t0 + 6 * h, "precip_mm"] == 0
    assert rows.loc[t0, "temp_c"] == pytest.approx(13.8889, abs=1e-3)
    assert rows.loc[t0 + h, "temp_c"] == pytest.approx(13.8889, abs=1e-3)


def test_fahrenheit_inches_and_knots_are_converted():
    d = {"properties": {
        "temperature": {"uom": "wmoUnit:degF", "values": [
            {"validTime": "2025-01-01T00:00:00+00:00/PT2H", "value": 50}]},
        "windSpeed": {"uom": "wmoUnit:kt", "values": [
            {"validTime": "2025-01-01T00:00:00+00:00/PT2H", "value": 10}]},
        "windGust": {"uom": "wmoUnit:m_s-1", "values": [
            {"validTime": "2025-01-01T00:00:00+00:00/PT2H", "value": 10}]},
        "quantitativePrecipitation": {"uom": "wmoUnit:in", "values": [
            {"validTime": "2024-12-31T19:00:00-05:00/PT2H", "value": 1}]},
    }}
    rows = nws_gridpoints.hourly(d)
    assert len(rows) == 2
    assert rows["temp_c"].iloc[0] == pytest.approx(10.0)
    assert rows["wind_speed_mph"].iloc[0] == pytest.approx(11.5078, abs=1e-3)
    assert rows["wind_gust_mph"].iloc[0] == pytest.approx(22.3694, abs=1e-3)
    assert rows["precip_mm"].iloc[1] == pytest.approx(12.7)
    assert rows["precip_probability_pct"].isna().all()


@pytest.mark.parametrize("change, message", [
    (lambda p: p.pop("windGust"), "layer 'windGust' is missing"),
    (lambda p: p["windGust"].update(uom="wmoUnit:furlong"), "layer 'windGust' has unit"),
    (lambda p: p["temperature"]["values"][2].update(validTime="tomorrow/PT1H"),
     "layer 'temperature' value 3: validTime 'tomorrow/PT1H'"),
    (lambda p: p["temperature"]["values"][0].update(
        validTime=p["temperature"]["values"][0]["validTime"].split("/")[0] + "/PT90M"),
     "not whole UTC hours"),
    (lambda p: p["windSpeed"]["values"][1].update(value="fast"), "value 'fast' is not a number"),
])
def test_a_malformed_file_names_the_layer_and_value(change, message):
    d = doc("BMX/32,69.json")
    change(d["properties"])
    with pytest.raises(nws_gridpoints.GridpointError, match=message):
        nws_gridpoints.hourly(d)


def test_iso_durations():
    assert nws_gridpoints.parse_duration("PT1H") == timedelta(hours=1)
    assert nws_gridpoints.parse_duration("P2DT18H") == timedelta(days=2, hours=18)
    assert nws_gridpoints.parse_duration("P7D") == timedelta(days=7)
    with pytest.raises(ValueError):
        nws_gridpoints.parse_duration("P")


# ------------------------------------------------------------------ landing forms

DAY = date(2024, 2, 23)


def gridpoint_landing(root, zones="zone,office,grid_x,grid_y\nMTZ309,BMX,32,69\nMTZ310,BMX,32,69\n"
                                   "MTZ311,LZK,83,73\n"):
    (root / "zones.csv").write_text(zones)
    folder = landing.forecast_folder(root, WEATHER_FORECASTS, DAY)
    for name in ("BMX/32,69.json", "LZK/83,73.json"):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # LZK was issued 2024-02-20: moved to the same issue day for this landing
        raw = load_gridpoint(name).replace(b"2024-02-20T17:36:55", b"2024-02-23T17:36:55")
        path.write_bytes(raw)
    return folder


def test_a_folder_of_gridpoint_files_lands_as_the_forecast_of_its_day(tmp_path):
    gridpoint_landing(tmp_path)
    frame = landing.read_forecast(WEATHER_FORECASTS, tmp_path, DAY)
    assert list(frame.columns) == WEATHER_FORECASTS.names
    assert set(frame["zone"]) == {"MTZ309", "MTZ310", "MTZ311"}
    assert frame["valid_ts"].min() == pd.Timestamp("2024-02-24 00:00")
    assert frame["valid_ts"].max() <= pd.Timestamp("2024-03-01 23:00")
    first = frame[frame["zone"] == "MTZ309"].sort_values("valid_ts")
    assert first["lead_h"].iloc[0] == 1 and (first["lead_h"].diff().dropna() == 1).all()
    assert (first["issued_at"] == pd.Timestamp("2024-02-23 18:40:54")).all()
    same = frame[frame["zone"] == "MTZ310"].sort_values("valid_ts")
    assert first["temp_c"].tolist() == same["temp_c"].tolist()  # one gridpoint, two zones


def test_a_missing_or_misplaced_gridpoint_file_is_named(tmp_path):
    folder = gridpoint_landing(tmp_path)
    (folder / "LZK" / "83,73.json").unlink()
    with pytest.raises(landing.LandingError, match=r"LZK/83,73.json: missing file.*MTZ311"):
        landing.read_forecast(WEATHER_FORECASTS, tmp_path, DAY)
    shutil.copy(folder / "BMX" / "32,69.json", folder / "LZK" / "83,73.json")
    with pytest.raises(landing.LandingError, match="is the forecast of BMX 32,69, not of LZK 83,73"):
        landing.read_forecast(WEATHER_FORECASTS, tmp_path, DAY)


def test_a_forecast_issued_after_its_day_is_refused(tmp_path):
    """Filed under the day before it was made, a forecast would look ahead."""
    folder = gridpoint_landing(tmp_path)
    earlier = DAY - timedelta(days=1)
    folder.rename(landing.forecast_folder(tmp_path, WEATHER_FORECASTS, earlier))
    with pytest.raises(landing.LandingError, match="updateTime 2024-02-23 18:40:54 is after the "
                                                   "end of the issue day 2024-02-22"):
        landing.read_forecast(WEATHER_FORECASTS, tmp_path, earlier)


def test_a_csv_forecast_round_trips_and_its_lead_times_are_checked(tmp_path):
    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    day = date(2025, 6, 1)
    fc = sim.weather_forecasts(day)
    path = tmp_path / "weather_forecasts" / "2025-06-01.csv"
    path.parent.mkdir()
    fc.drop(columns="issue_date").to_csv(path, index=False)
    back = landing.read_forecast(WEATHER_FORECASTS, tmp_path, day)
    pd.testing.assert_frame_equal(back, fc, check_dtype=False)
    bad = fc.drop(columns="issue_date")
    bad.loc[30, "lead_h"] = 5
    bad.to_csv(path, index=False)
    with pytest.raises(landing.LandingError, match=r"row 31, column 'lead_h': lead_h 5 does not "
                                                   r"match valid_ts 2025-06-03 06:00:00"):
        landing.read_forecast(WEATHER_FORECASTS, tmp_path, day)
    bad = fc.drop(columns="issue_date")
    bad.loc[3, "valid_ts"] = pd.Timestamp("2025-06-01 23:00")
    bad.to_csv(path, index=False)
    with pytest.raises(landing.LandingError, match="outside the days the forecast issued at the end "
                                                   "of 2025-06-01 covers"):
        landing.read_forecast(WEATHER_FORECASTS, tmp_path, day)


def test_a_forecast_file_and_folder_for_one_day_are_refused(tmp_path):
    gridpoint_landing(tmp_path)
    (tmp_path / "weather_forecasts" / "2024-02-23.csv").write_text("zone\n")
    with pytest.raises(landing.LandingError, match="keep one"):
        landing.read_forecast(WEATHER_FORECASTS, tmp_path, DAY)


def test_no_forecast_landed_is_an_empty_day_and_passes_its_checks(tmp_path):
    from gridassets.domain import quality

    frame = landing.read_forecast(WEATHER_FORECASTS, tmp_path, DAY)
    assert frame.empty and list(frame.columns) == WEATHER_FORECASTS.names
    outcome = quality.check_completeness(frame, WEATHER_FORECASTS, [DAY], {"MTZ309"})
    assert outcome.passed and "fall back" in outcome.summary


def test_a_forecast_with_a_gap_or_short_of_a_day_fails_completeness():
    from gridassets.domain import quality

    sim = FleetSimulator(FleetConfig(**SMALL_FLEET))
    day = date(2025, 6, 1)
    fc = sim.weather_forecasts(day)
    zones = set(sim.config.zones)
    assert quality.check_completeness(fc, WEATHER_FORECASTS, [day], zones).passed
    gap = fc.drop(index=fc.index[(fc["zone"] == "MTZ310") & (fc["lead_h"] == 30)])
    out = quality.check_completeness(gap, WEATHER_FORECASTS, [day], zones)
    assert not out.passed and "1 zone forecast(s) with missing hours" in out.summary
    short = fc[fc["lead_h"] <= 12]
    out = quality.check_completeness(short, WEATHER_FORECASTS, [day], zones)
    assert not out.passed and "shorter than the 24 hours of the day ahead" in out.summary
    few = fc[fc["zone"] == "MTZ309"]
    out = quality.check_completeness(few, WEATHER_FORECASTS, [day], zones)
    assert not out.passed and "registry zones forecast" in out.summary
