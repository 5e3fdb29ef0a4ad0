"""storm_outage_risk and storm_priority_circuits: the list, the circuit state it was scored with,
its checks, and no list from missing inputs.

The alerts are stored as the sensor stores them, with fixed times, so the state's age (counted from
the storm's latest alert, not the clock) is the same on every run.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from gridassets.defs.fleet.assets import circuits
from gridassets.defs.resources import GridSettings, build_resources
from gridassets.defs.storms.assets import storm_alerts
from gridassets.defs.storms.jobs import STORM_ASSETS
from gridassets.domain import storm_sheet
from gridassets.domain.alerts import parse_alert_bytes
from gridassets.storage import alert_store
from gridassets_tests.conftest import TEST_FLEET, TEST_WINDOW, read_warehouse
from gridassets_tests.defs.test_model_assets import copy_demo

UTC = timezone.utc
STATE_DAY = TEST_WINDOW[1]  # the newest circuit state of the shared warehouse: 2025-06-30


def july_alert(**fields) -> dict:
    """A High Wind Warning sent ten days after the warehouse's newest state."""
    alert = {"id": "acme-july", "event": "High Wind Warning", "sent": "2025-07-10T12:00:00Z",
             "onset": "2025-07-10T18:00:00Z", "expires": "2025-07-11T06:00:00Z",
             "zones": ["MTZ309", "MTZ310"], "max_wind_gust_mph": 72}
    alert.update(fields)
    return alert


def store_alert(data: Path, document: dict, storm_id: str | None = None) -> str:
    """Store a message as the sensor does (the sensor itself would judge expiry by the clock)."""
    [alert] = parse_alert_bytes(json.dumps(document).encode()).alerts
    storm_id = storm_id or alert.storm_id
    alert_store.write_message(data / "alerts", alert_store.message_record(
        alert, storm_id, datetime(2025, 7, 10, 12, 5, tzinfo=UTC), "july.json"))
    return storm_id


def run_storm(data: Path, storm_id: str, settings: GridSettings, instance, selection=None):
    if not instance.has_dynamic_partition("storms", storm_id):
        instance.add_dynamic_partitions("storms", [storm_id])
    return dg.materialize(STORM_ASSETS, selection=selection or STORM_ASSETS,
                          partition_key=storm_id, instance=instance,
                          resources=build_resources(settings), raise_on_error=False)


def rows(settings: GridSettings, table: str, storm_id: str) -> pd.DataFrame:
    with read_warehouse(settings) as con:
        return con.execute(f"select * from storms.{table} where storm_id = ? order by circuit_id",
                           [storm_id]).fetchdf()


def failure_message(result) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.message


def metadata(result, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events()
               if e.materialization.asset_key == dg.AssetKey(asset)]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def checks(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(c.asset_key.to_user_string(), c.check_name): c
            for c in result.get_asset_check_evaluations()}


def logged_warnings(instance, result) -> list[str]:
    return [r.user_message for r in instance.all_logs(result.run_id)
            if r.level == logging.WARNING]


# --------------------------------------------------------------------------------------------
# On the shared warehouse (state of 2025-06-30, a serving outage model), of either backend


@pytest.fixture
def data(tmp_path, backend, request) -> Path:
    return copy_demo(request, backend, tmp_path / "data")


def fleet_settings(data: Path, backend: str, **fields) -> GridSettings:
    return GridSettings(data_dir=str(data), backend=backend, **TEST_FLEET, **fields)


def test_a_storm_scored_on_stale_state_says_so_everywhere(data, backend, instance):
    storm = store_alert(data, july_alert())
    settings = fleet_settings(data, backend)
    result = run_storm(data, storm, settings, instance)
    assert result.success  # planners need the list all the same

    stale = "circuit state of 2025-06-30, 10 days old"
    for table in ("storm_outage_risk", "storm_priority_circuits"):
        stored = rows(settings, table, storm)
        assert len(stored) == 3  # the circuits of MTZ309 and MTZ310
        assert set(stored["state_date"]) == {pd.Timestamp(STATE_DAY)}
        assert set(stored["state_age_days"]) == {10}
        assert metadata(result, table)["state_date"] == STATE_DAY
        assert stale in metadata(result, table)["circuit_state"]
        check = checks(result)[(table, "circuit_state_fresh")]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert stale in check.description
    listed = rows(settings, "storm_priority_circuits", storm)
    assert all(r.startswith(f"stale: {stale} (the limit is 2 days); High Wind Warning")
               for r in listed["reason"])

    csv = pd.read_csv(data / "outputs" / "storms" / storm / "priority.csv")
    assert set(csv["state_date"]) == {STATE_DAY} and set(csv["state_age_days"]) == {10}
    assert all(stale in r for r in csv["reason"])
    assert list(csv["rank"]) == [1, 2, 3]
    assert any(stale in w and "GRIDASSETS_STORM_STATE_MAX_AGE_DAYS" in w
               for w in logged_warnings(instance, result))
    planner_files_of(data, storm, csv, listed, metadata(result, "storm_priority_circuits"))


def planner_files_of(data: Path, storm: str, csv: pd.DataFrame, listed: pd.DataFrame,
                     shown: dict) -> None:
    """The planner's sheet of `july_alert`'s storm, its zone summary and GeoJSON beside it, and
    the metadata that shows them."""
    folder = data / "outputs" / "storms" / storm
    assert list(csv.columns) == storm_sheet.SHEET_COLUMNS
    assert set(csv["alert_onset_utc"]) == {"2025-07-10T18:00Z"}
    assert set(csv["alert_end_utc"]) == {"2025-07-11T06:00Z"}
    assert set(csv["alert_onset_local"]) == {"2025-07-10T12:00-06:00"}  # Montana, summer time
    assert set(csv["time_zone"]) == {"America/Denver"} and set(csv["gust_mph"]) == {72}
    assert set(csv["zone"]) == {"MTZ309", "MTZ310"}
    assert csv[["latitude", "longitude"]].notna().all().all()
    assert listed["latitude"].notna().all() and listed["window_start"].notna().all()
    zones = pd.read_csv(folder / "zones.csv")
    assert list(zones.columns) == storm_sheet.ZONE_COLUMNS
    assert sorted(zones["zone"]) == ["MTZ309", "MTZ310"] and zones["circuits"].sum() == 3
    assert zones["customers"].sum() == csv["customers"].sum()
    assert list(zones["suggested_crews"]) == [storm_sheet.suggested_crews(
        float(listed.loc[listed["zone"] == z, "expected_outages"].sum())) for z in zones["zone"]]
    layer = json.loads((folder / "priority.geojson").read_text())
    assert layer["type"] == "FeatureCollection"
    assert [f["properties"]["circuit_id"] for f in layer["features"]] == list(csv["circuit_id"])
    for feature, row in zip(layer["features"], csv.itertuples()):
        assert feature["geometry"] == {"type": "Point",
                                       "coordinates": [row.longitude, row.latitude]}
        assert feature["properties"]["state_date"] == row.state_date
    assert shown["suggested_crews"] == zones["suggested_crews"].sum()
    assert [r.data["zone"] for r in shown["zones"].records] == list(zones["zone"])
    assert shown["map"].startswith("![map](data:image/png;base64,")
    assert shown["geojson"] == str(folder / "priority.geojson")


def test_the_daily_list_shows_a_map_of_its_circuits(demo_data):
    data, _ = demo_data
    with dg.DagsterInstance.from_config(str(data.parent / "dagster_home")) as instance:
        [record] = instance.fetch_materializations(dg.AssetKey("prioritized_circuits"),
                                                   limit=1).records
    shown = record.asset_materialization.metadata["map"].value
    assert shown.startswith("![map](data:image/png;base64,")
    assert base64.b64decode(shown.split(",", 1)[1].rstrip(")")).startswith(b"\x89PNG")


def test_state_within_the_limit_is_recorded_and_not_flagged(data, backend, instance):
    # Sent the day after the state's day: one day old, inside the default limit of two.
    storm = store_alert(data, july_alert(id="acme-jul-1", sent="2025-07-01T06:00:00Z",
                                         onset="2025-07-01T12:00:00Z",
                                         expires="2025-07-02T00:00:00Z"))
    settings = fleet_settings(data, backend)
    result = run_storm(data, storm, settings, instance)
    assert result.success

    listed = rows(settings, "storm_priority_circuits", storm)
    assert set(listed["state_date"]) == {pd.Timestamp(STATE_DAY)}
    assert set(listed["state_age_days"]) == {1}
    assert not any("stale" in r for r in listed["reason"])
    assert metadata(result, "storm_priority_circuits")["circuit_state"] == (
        "circuit state of 2025-06-30, 1 day old")
    assert all(c.passed for c in checks(result).values())
    assert not any("circuit state" in w for w in logged_warnings(instance, result))

    # The same storm with no day of slack is stale.
    strict = run_storm(data, storm, fleet_settings(data, backend, storm_state_max_age_days=0),
                       instance)
    assert strict.success
    assert not checks(strict)[("storm_priority_circuits", "circuit_state_fresh")].passed
    assert all(r.startswith("stale: circuit state of 2025-06-30, 1 day old (the limit is 0 days)")
               for r in rows(settings, "storm_priority_circuits", storm)["reason"])


def test_a_cancelled_storm_stands_down_without_circuit_state(data, backend, instance):
    storm = store_alert(data, july_alert())
    store_alert(data, july_alert(id="acme-july-can", messageType="Cancel",
                                 references=["acme-july"], sent="2025-07-10T15:00:00Z"), storm)
    settings = fleet_settings(data, backend)
    result = run_storm(data, storm, settings, instance)
    assert result.success

    assert rows(settings, "storm_outage_risk", storm).empty
    listed = rows(settings, "storm_priority_circuits", storm)
    assert len(listed) == 3 and set(listed["status"]) == {"cancelled"}
    assert listed["state_date"].isna().all()
    assert all(c.passed for c in checks(result).values())
    assert metadata(result, "storm_priority_circuits")["circuit_state"] == (
        "none used (storm cancelled)")


def test_an_active_storm_without_its_outage_risk_rows_fails_instead_of_standing_down(
        data, backend, instance):
    storm = store_alert(data, july_alert())
    result = run_storm(data, storm, fleet_settings(data, backend), instance,
                       selection=[storm_alerts.key, dg.AssetKey("storm_priority_circuits")])
    assert not result.success
    assert "materialize storm_outage_risk for partition acme-july first" in failure_message(result)
    assert not (data / "outputs" / "storms" / storm / "priority.csv").exists()


# --------------------------------------------------------------------------------------------
# Missing inputs, on a warehouse of nothing but what each test materializes


def test_no_circuits_fails_naming_them(tmp_path, settings, instance):
    data = tmp_path / "data"
    storm = store_alert(data, july_alert())
    result = run_storm(data, storm, settings, instance)
    assert not result.success
    assert "materialize circuits first" in failure_message(result)
    with read_warehouse(settings) as con:
        tables = {t for (t,) in con.execute(
            "select table_name from information_schema.tables").fetchall()}
    assert "storm_outage_risk" not in tables and "storm_priority_circuits" not in tables
    assert not (data / "outputs" / "storms").exists()


def test_no_circuit_state_fails_naming_the_features(tmp_path, settings, instance):
    data = tmp_path / "data"
    assert dg.materialize([circuits], resources=build_resources(settings),
                          instance=instance).success
    storm = store_alert(data, july_alert())
    result = run_storm(data, storm, settings, instance)
    assert not result.success
    assert "materialize circuit_exposure_features" in failure_message(result)
    assert not (data / "outputs" / "storms").exists()


def test_no_storm_alerts_rows_fails_naming_them(tmp_path, settings, instance):
    data = tmp_path / "data"
    assert dg.materialize([circuits], resources=build_resources(settings),
                          instance=instance).success
    storm = store_alert(data, july_alert())
    result = run_storm(data, storm, settings, instance,
                       selection=[dg.AssetKey("storm_outage_risk")])
    assert not result.success
    assert "materialize storm_alerts for partition acme-july first" in failure_message(result)


def test_every_storm_output_has_a_check_and_the_blocking_ones_are_known():
    from gridassets.definitions import defs

    graph = defs.resolve_asset_graph()
    specs = {}
    for key in graph.asset_check_keys:
        specs.setdefault(key.asset_key.to_user_string(), {})[key.name] = (
            graph.get_check_spec(key).blocking)
    assert specs["storm_alerts"] == {"alerts_valid": True}
    assert specs["storm_outage_risk"] == {"circuits_scored": True, "circuit_state_fresh": False}
    assert specs["storm_priority_circuits"] == {"ranked": True, "circuit_state_fresh": False}

