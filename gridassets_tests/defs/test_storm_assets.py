"""storm_alerts: from the messages the sensor stored to the storms.storm_alerts table of the
warehouse (either backend)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pandas as pd
import pytest

from gridassets.defs.resources import build_resources
from gridassets.defs.storms.assets import storm_alerts
from gridassets.domain.alerts import parse_alert_bytes
from gridassets.domain.storm_messages import current_zone_conditions
from gridassets.storage import alert_store
from gridassets_tests.conftest import read_warehouse
from gridassets_tests.defs.test_storm_sensor import (  # noqa: F401  (fixture)
    NW_FILE,
    Inbox,
    _no_deployment_settings,
    iso,
    minimal,
    nws_feature,
)
from gridassets_tests.nws_fixtures import load_nws_file

UTC = timezone.utc


@pytest.fixture
def box(tmp_path, backend) -> Inbox:
    return Inbox(tmp_path, backend)


def receive(box: Inbox, *documents) -> list[str]:
    """Drop each document into the inbox as its own file (oldest first) and run one tick;
    returns the storm partitions the tick requested runs for."""
    for i, document in enumerate(documents):
        box.drop(f"alert-{i}.json", document, age=60 - i)
    result = box.tick()
    return list(dict.fromkeys(r.partition_key for r in result.run_requests))


def materialize(box: Inbox, storm_id: str, raise_on_error: bool = True):
    if not box.instance.has_dynamic_partition("storms", storm_id):
        box.instance.add_dynamic_partitions("storms", [storm_id])
    return dg.materialize([storm_alerts], partition_key=storm_id, instance=box.instance,
                          resources=build_resources(box.settings), raise_on_error=raise_on_error)


ALL_ROWS = "select * from storms.storm_alerts order by storm_id, received_at, message_id"


def table(box: Inbox, sql: str = ALL_ROWS, params=()) -> pd.DataFrame:
    with read_warehouse(box.settings) as con:
        return con.execute(sql, list(params)).fetchdf()


def output_metadata(result, key: str):
    [event] = result.get_asset_materialization_events()
    return event.materialization.metadata[key].value


def test_real_high_wind_warning_becomes_the_storm_table(box):
    storms = receive(box, load_nws_file(NW_FILE, now=datetime.now(UTC)))
    storm = next(s for s in storms if s.startswith("ktfx-hw-w-0033-"))
    result = materialize(box, storm)

    rows = table(box)
    assert list(rows["storm_id"].unique()) == [storm]
    assert len(rows) == 2  # two segments of one product, each naming its own zones
    assert set(rows["status"]) == {"active"} and rows["is_current"].all()
    assert sorted(rows["current_zones"]) == ["MTZ309,MTZ310,MTZ311,MTZ314,MTZ315,MTZ317,MTZ318",
                                             "MTZ312,MTZ313"]
    assert set(rows["event"]) == {"High Wind Warning"}
    assert (rows["max_wind_gust_mph"] > 58).all() and rows["precip_mm"].isna().all()
    assert rows["sent"].notna().all() and rows["headline"].str.contains("High Wind").all()

    types = dict(table(box, "select column_name, data_type from information_schema.columns "
                            "where table_name = 'storm_alerts'").itertuples(index=False))
    for column in ("sent", "received_at", "onset", "ends", "expires", "as_of"):
        assert types[column] == "TIMESTAMP"
    assert types["max_wind_gust_mph"] == types["precip_mm"] == "DOUBLE"
    assert types["is_current"] == "BOOLEAN"

    assert output_metadata(result, "status") == "active"
    assert output_metadata(result, "event") == "High Wind Warning"
    assert "MTZ312" in output_metadata(result, "zones")
    by_zone = output_metadata(result, "gust_mph_by_zone")
    assert by_zone == {z: 80.0 for z in ("MTZ309", "MTZ310", "MTZ311", "MTZ312", "MTZ313",
                                         "MTZ314", "MTZ315", "MTZ317", "MTZ318")}


def test_each_zone_keeps_the_gust_of_the_segment_that_names_it(box):
    # Two segments of one warning: each zone's conditions are its own segment's.
    segments = [nws_feature("urn:oid:seg.001.1", zones=("MTZ309",)),
                nws_feature("urn:oid:seg.002.1", zones=("MTZ310", "MTZ311"))]
    segments[1]["properties"]["parameters"]["maxWindGust"] = ["80 MPH"]
    [storm] = receive(box, {"type": "FeatureCollection", "features": segments})
    result = materialize(box, storm)

    conditions = current_zone_conditions(table(box))
    assert dict(zip(conditions["zone"], conditions["max_wind_gust_mph"])) == {
        "MTZ309": 70.0, "MTZ310": 80.0, "MTZ311": 80.0}
    assert output_metadata(result, "gust_mph_by_zone") == {"MTZ309": 70.0, "MTZ310": 80.0,
                                                           "MTZ311": 80.0}
    assert "| message_type |" in output_metadata(result, "preview")


def test_a_cancel_marks_the_storm_cancelled(box):
    [storm] = receive(box, minimal(), minimal(id="acme-wind-2", messageType="Cancel",
                                              references=["acme-wind-1"]))
    materialize(box, storm)

    rows = table(box)
    assert list(rows["message_type"]) == ["Alert", "Cancel"]
    assert set(rows["status"]) == {"cancelled"}
    assert not rows["is_current"].any()
    assert list(rows["is_cancel"]) == [False, True]


def test_an_update_is_current_and_the_alert_it_replaces_is_not(box):
    [storm] = receive(box, minimal(max_wind_gust_mph=60),
                      minimal(id="acme-wind-2", messageType="Update", references=["acme-wind-1"],
                              max_wind_gust_mph=85, sent=iso(0)))
    materialize(box, storm)

    rows = table(box)
    assert list(zip(rows["message_id"], rows["is_current"])) == [("acme-wind-1", False),
                                                                 ("acme-wind-2", True)]
    conditions = current_zone_conditions(rows)
    assert list(conditions["zone"]) == ["MTZ309", "MTZ310"]
    assert set(conditions["max_wind_gust_mph"]) == {85.0}


def test_a_cancel_for_some_zones_leaves_the_others_active(box):
    [storm] = receive(box, minimal(zones=["MTZ309", "MTZ310"]),
                      minimal(id="acme-wind-2", messageType="Cancel", references=["acme-wind-1"],
                              zones=["MTZ309"]))
    materialize(box, storm)

    rows = table(box)
    assert set(rows["status"]) == {"active"}
    assert list(rows["current_zones"]) == ["MTZ310", ""]
    assert list(current_zone_conditions(rows)["zone"]) == ["MTZ310"]


def test_a_storm_whose_alerts_have_all_ended_is_expired(box):
    # The sensor would ignore an expired alert, so the message is stored directly, as a sensor
    # tick of an hour ago would have stored it.
    alert = parse_alert_bytes(minimal_bytes(onset=iso(-300), expires=iso(-30))).alerts[0]
    alert_store.write_message(box.root, alert_store.message_record(
        alert, alert.storm_id, datetime.now(UTC) - timedelta(hours=1), "old.json"))
    materialize(box, alert.storm_id)

    assert set(table(box)["status"]) == {"expired"}


def test_rematerializing_replaces_the_storm_and_leaves_the_others(box):
    [first] = receive(box, minimal())
    [second] = receive(box, minimal(id="other-storm", zones=["MTZ312"]))
    materialize(box, first)
    materialize(box, second)
    receive(box, minimal(id="acme-wind-2", messageType="Update", references=["acme-wind-1"]))
    materialize(box, first)

    counts = table(box, "select storm_id, count(*) as n from storms.storm_alerts "
                        "group by 1 order by 1")
    assert list(counts.itertuples(index=False, name=None)) == [(first, 2), (second, 1)]


def test_precipitation_stays_a_number_when_the_first_storm_has_none(box):
    nws = receive(box, load_nws_file(NW_FILE, now=datetime.now(UTC)))
    materialize(box, nws[0])  # NWS products state no precipitation total: all empty
    [storm] = receive(box, minimal(id="rainy", precip_mm=12.5))
    materialize(box, storm)

    rows = table(box, "select precip_mm from storms.storm_alerts where storm_id = ?", [storm])
    assert list(rows["precip_mm"]) == [12.5]


def test_the_alerts_check_passes_before_the_table_is_written(box):
    [storm] = receive(box, minimal())
    result = materialize(box, storm)
    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("alerts_valid", True)
    assert check.description == "1 message(s), active"


def test_a_stored_alert_whose_window_ends_before_it_starts_fails_the_check_and_writes_nothing(box):
    # The sensor ignores such an alert; one stored another way (by hand, an older sensor) is
    # refused by the asset's blocking check before anything is written.
    alert = parse_alert_bytes(minimal_bytes(onset=iso(600), expires=iso(60))).alerts[0]
    alert_store.write_message(box.root, alert_store.message_record(
        alert, alert.storm_id, datetime.now(UTC), "backwards.json"))
    result = materialize(box, alert.storm_id, raise_on_error=False)

    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("alerts_valid", False)
    assert "window ends before it starts: acme-wind-1" in check.description
    assert "check alerts_valid failed, nothing written" in failure_message(result)
    assert not box.settings.resolve().warehouse_location.exists() or table(
        box, "select count(*) as n from information_schema.tables "
             "where table_name = 'storm_alerts'")["n"].iloc[0] == 0


def failure_message(result) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.message


def test_a_storm_without_messages_fails_clearly(box):
    result = materialize(box, "no-such-storm", raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    text = failure.step_failure_data.error.message
    assert "no alert messages" in text and "no-such-storm" in text


def test_a_partition_key_that_is_not_a_storm_id_is_refused(box):
    result = materialize(box, "Not A Storm", raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "is not a storm id" in failure.step_failure_data.error.message


def test_a_corrupt_message_file_fails_naming_the_file(box):
    [storm] = receive(box, minimal())
    (box.root / "storms" / storm / "acme-wind-1.json").write_text("{ broken")
    result = materialize(box, storm, raise_on_error=False)
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "acme-wind-1.json" in failure.step_failure_data.error.message


def minimal_bytes(**fields) -> bytes:
    import json

    return json.dumps(minimal(**fields)).encode()
