"""Tests of the weather-alert parser: NWS GeoJSON, the minimal form, storm identity, bad files."""

from __future__ import annotations

import ast
import collections
import copy
import json
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gridassets.domain import alerts as alerts_module
from gridassets.domain.alerts import (
    MAX_DEPTH,
    MAX_KEY_CHARS,
    Alert,
    AlertFileError,
    IgnoredAlert,
    ParsedFile,
    classify,
    gust_from_description,
    parse_alert_bytes,
    parse_gust,
    sanitize_key,
)
from gridassets_tests.nws_fixtures import (
    NWS_FILES,
    TEST_NOW,
    load_nws_file,
    nws_data_dir,
    resolve_placeholder,
    with_real_times,
)

UTC = timezone.utc
HWW_ID = "urn:oid:2.49.0.1.840.0.aaaa1111.001.1"


def iso(minutes: int) -> str:
    """A time `minutes` after the test clock, written as the NWS does (local offset, MST)."""
    return (TEST_NOW + timedelta(minutes=minutes)).astimezone(timezone(timedelta(hours=-7))).isoformat()


def at(minutes: int) -> datetime:
    return TEST_NOW + timedelta(minutes=minutes)


def nws_feature(**properties) -> dict:
    """A High Wind Warning as the NWS alerts API serves it; keyword arguments replace properties.

    A parameter is replaced with ``parameters={...}``; a property set to ``...`` is removed.
    """
    props = {
        "@id": f"https://api.weather.gov/alerts/{HWW_ID}",
        "@type": "wx:Alert",
        "id": HWW_ID,
        "areaDesc": "Eastern Pondera and Eastern Teton; Western and Central Chouteau County",
        "geocode": {"SAME": ["030073", "030099"], "UGC": ["MTZ309", "mtz310"]},
        "affectedZones": ["https://api.weather.gov/zones/forecast/MTZ309"],
        "references": [],
        "sent": iso(-42),
        "effective": iso(-42),
        "onset": iso(60),
        "expires": iso(860),
        "ends": iso(1500),
        "status": "Actual",
        "messageType": "Alert",
        "category": "Met",
        "severity": "Severe",
        "certainty": "Likely",
        "urgency": "Expected",
        "event": "High Wind Warning",
        "sender": "w-nws.webmaster@noaa.gov",
        "senderName": "NWS Great Falls MT",
        "headline": "High Wind Warning issued December 15 at 2:13PM MST by NWS Great Falls MT",
        "description": "* WHAT...West winds 30 to 40 mph with gusts up to 75 mph expected.",
        "instruction": "Secure loose objects.",
        "response": "Prepare",
        "parameters": {
            "AWIPSidentifier": ["NPWTFX"],
            "NWSheadline": ["HIGH WIND WARNING IN EFFECT"],
            "VTEC": ["/O.NEW.KTFX.HW.W.0033.251216T0500Z-251217T0500Z/"],
            "maxWindGust": ["70 MPH"],
            "eventEndingTime": ["2025-12-17T05:00:00+00:00"],
        },
    }
    for key, value in properties.items():
        if value is ...:
            props.pop(key, None)
        else:
            props[key] = value
    return {"id": props.get("@id"), "type": "Feature", "geometry": None, "properties": props}


def with_parameters(**parameters) -> dict:
    """The default feature's parameters with some replaced (``...`` removes one)."""
    merged = dict(nws_feature()["properties"]["parameters"])
    for key, value in parameters.items():
        if value is ...:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def collection(*features: dict) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def minimal(**fields) -> dict:
    """A minimal-form alert; keyword arguments replace fields (``...`` removes one)."""
    alert = {
        "id": "acme-2025-12-15-wind",
        "event": "High Wind Warning",
        "onset": iso(60),
        "expires": iso(900),
        "zones": ["MTZ309"],
        "max_wind_gust_mph": 72,
        "precip_mm": 4.5,
    }
    for key, value in fields.items():
        if value is ...:
            alert.pop(key, None)
        else:
            alert[key] = value
    return alert


def encode(document) -> bytes:
    return json.dumps(document).encode("utf-8")


def parse(document) -> ParsedFile:
    return parse_alert_bytes(encode(document))


def parse_one(document) -> Alert:
    parsed = parse(document)
    assert parsed.ignored == ()
    assert len(parsed.alerts) == 1
    return parsed.alerts[0]


# --------------------------------------------------------------------------------------------
# A realistic NWS alert


def test_nws_high_wind_warning_every_field():
    alert = parse_one(nws_feature())
    assert alert == Alert(
        message_id=HWW_ID,
        storm_id="ktfx-hw-w-0033-2025",
        message_type="Alert",
        vtec_action="NEW",
        event="High Wind Warning",
        severity="Severe",
        certainty="Likely",
        urgency="Expected",
        sent=at(-42),
        onset=at(60),
        ends=at(1500),
        expires=at(860),
        zones=("MTZ309", "MTZ310"),
        max_wind_gust_mph=70.0,
        gust_source="parameter",
        precip_mm=None,
        references=(),
        headline="High Wind Warning issued December 15 at 2:13PM MST by NWS Great Falls MT",
        grid_relevant=True,
    )
    assert alert.sent.tzinfo == UTC
    assert alert.is_cancel is False
    assert alert.end_time == at(1500)


def test_a_feature_collection_and_a_single_feature_give_the_same_alert():
    assert parse(collection(nws_feature())).alerts == parse(nws_feature()).alerts


def test_empty_feature_collection_is_a_file_without_alerts():
    assert parse(collection()) == ParsedFile((), ())


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        # Without maxWindGust the description's largest gust counts; without either, the default.
        ({"parameters": with_parameters(maxWindGust=...)}, "max_wind_gust_mph", 75.0),
        ({"parameters": with_parameters(maxWindGust=...)}, "gust_source", "description"),
        ({"parameters": with_parameters(maxWindGust=[])}, "gust_source", "description"),
        ({"parameters": with_parameters(maxWindGust=...), "description": "Strong winds."},
         "max_wind_gust_mph", 58.0),
        ({"parameters": with_parameters(maxWindGust=...), "description": None},
         "gust_source", "default"),
        ({"parameters": with_parameters(maxWindGust=["45 KT"])}, "max_wind_gust_mph", 51.8),
        ({"parameters": with_parameters(maxWindGust=["45 kt", "60 MPH"])}, "max_wind_gust_mph", 60.0),
        # ends falls back to eventEndingTime only when ends is null.
        ({"ends": None}, "ends", datetime(2025, 12, 17, 5, tzinfo=UTC)),
        ({"ends": None, "parameters": with_parameters(eventEndingTime=...)}, "ends", None),
        ({"onset": None}, "onset", None),
        ({"messageType": "update"}, "message_type", "Update"),
        ({"messageType": ...}, "message_type", "Alert"),
        ({"severity": 5}, "severity", None),
        ({"headline": "x" * 5000}, "headline", "x" * 499 + "…"),
        ({"event": "  Winter   Storm Warning "}, "event", "Winter Storm Warning"),
        ({"event": "Gale Warning"}, "grid_relevant", False),
        ({"event": "Blizzard Warning"}, "grid_relevant", True),
        ({"event": "Extreme Cold Warning"}, "grid_relevant", False),
        ({"geocode": {"UGC": []}}, "zones", ()),
        ({"geocode": ...}, "zones", ()),
        ({"geocode": {"UGC": ["WAC033", "MTZ309", "wac033"]}}, "zones", ("WAC033", "MTZ309")),
        ({"parameters": with_parameters(VTEC=...)}, "storm_id", sanitize_key(HWW_ID)),
        ({"parameters": with_parameters(VTEC=...)}, "vtec_action", None),
        # An H-VTEC (hydrologic) string is not a P-VTEC: it is skipped, not an error.
        ({"parameters": with_parameters(
            VTEC=["/00000.N.ER.000000T0000Z.000000T0000Z.000000T0000Z.OO/"])},
         "vtec_action", None),
    ],
)
def test_nws_field_variants(overrides, field, expected):
    assert getattr(parse_one(nws_feature(**overrides)), field) == expected


# --------------------------------------------------------------------------------------------
# Storm identity: VTEC


def vtec_feature(message_id: str, message_type: str, vtecs: list[str], references=(), **more) -> dict:
    return nws_feature(
        id=message_id,
        messageType=message_type,
        references=[
            {"@id": f"https://api.weather.gov/alerts/{r}", "identifier": r,
             "sender": "w-nws.webmaster@noaa.gov", "sent": iso(-600)}
            for r in references
        ],
        parameters=with_parameters(VTEC=vtecs),
        **more,
    )


def test_update_and_cancel_of_one_event_share_the_storm_id():
    new = vtec_feature("urn:a.1", "Alert", ["/O.NEW.KTFX.HW.W.0033.251216T0500Z-251217T0500Z/"])
    con = vtec_feature("urn:a.2", "Update", ["/O.CON.KTFX.HW.W.0033.000000T0000Z-251217T0500Z/"],
                       references=["urn:a.1"])
    ext = vtec_feature("urn:a.3", "Update", ["/O.EXT.KTFX.HW.W.0033.000000T0000Z-251217T1200Z/"],
                       references=["urn:a.2", "urn:a.1"])
    can = vtec_feature("urn:a.4", "Cancel", ["/O.CAN.KTFX.HW.W.0033.000000T0000Z-251217T1200Z/"],
                       references=["urn:a.3"])
    parsed = parse(collection(new, con, ext, can))
    assert {a.storm_id for a in parsed.alerts} == {"ktfx-hw-w-0033-2025"}
    assert [a.vtec_action for a in parsed.alerts] == ["NEW", "CON", "EXT", "CAN"]
    assert [a.references for a in parsed.alerts] == [
        (), ("urn:a.1",), ("urn:a.2", "urn:a.1"), ("urn:a.3",)
    ]
    assert [a.is_cancel for a in parsed.alerts] == [False, False, False, True]


def test_expired_references_count_as_references():
    feature = nws_feature(
        references=[{"identifier": "urn:x.2", "sender": "s", "sent": iso(-60)}],
        parameters=with_parameters(expiredReferences=[
            "w-nws.webmaster@noaa.gov,urn:x.1,2025-12-14T13:57:00-07:00 "
            "w-nws.webmaster@noaa.gov,urn:x.0,2025-12-14T12:19:00-07:00",
            "w-nws.webmaster@noaa.gov,urn:x.2,2025-12-14T14:00:00-07:00",
        ]),
    )
    assert parse_one(feature).references == ("urn:x.2", "urn:x.1", "urn:x.0")


@pytest.mark.parametrize(
    ("vtecs", "storm_id", "action"),
    [
        # The event the message is about wins over the one it ends.
        (["/O.CAN.KTFX.HW.A.0005.251216T0500Z-251217T0500Z/",
          "/O.NEW.KTFX.HW.W.0033.251216T0500Z-251217T0500Z/"], "ktfx-hw-w-0033-2025", "NEW"),
        (["/O.UPG.KBOI.WS.A.0007.251216T0500Z-251217T0500Z/",
          "/O.EXA.KBOI.WS.W.0010.251216T0500Z-251217T0500Z/"], "kboi-ws-w-0010-2025", "EXA"),
        # When all of them end an event, the first.
        (["/O.EXP.KTFX.HW.W.0032.000000T0000Z-251215T2200Z/",
          "/O.CAN.KTFX.HW.W.0033.251216T0500Z-251217T0500Z/"], "ktfx-hw-w-0032-2025", "EXP"),
        # Several in one string, as a product's text carries them.
        (["/O.EXP.KTFX.HW.W.0032.000000T0000Z-251215T2200Z/\n"
          "/O.CON.KTFX.HW.W.0033.000000T0000Z-251217T0500Z/"],
         "ktfx-hw-w-0033-2025", "CON"),
        # The year comes from the VTEC begin time, not from the message.
        (["/O.NEW.KLOX.HW.W.0001.240103T1800Z-240105T0900Z/"], "klox-hw-w-0001-2024", "NEW"),
    ],
)
def test_vtec_choice(vtecs, storm_id, action):
    alert = parse_one(nws_feature(parameters=with_parameters(VTEC=vtecs)))
    assert (alert.storm_id, alert.vtec_action) == (storm_id, action)


@pytest.mark.parametrize(
    ("onset", "sent", "storm_id"),
    [
        ("2026-01-01T03:00:00+00:00", "2025-12-31T23:00:00+00:00", "ktfx-hw-w-0033-2026"),
        (None, "2025-12-31T23:00:00+00:00", "ktfx-hw-w-0033-2025"),
        (None, None, sanitize_key(HWW_ID)),
    ],
)
def test_vtec_in_effect_takes_the_year_from_onset_then_sent(onset, sent, storm_id):
    feature = nws_feature(
        onset=onset, sent=sent,
        parameters=with_parameters(VTEC=["/O.CON.KTFX.HW.W.0033.000000T0000Z-260101T0500Z/"]),
    )
    assert parse_one(feature).storm_id == storm_id


# --------------------------------------------------------------------------------------------
# Gusts


@pytest.mark.parametrize(
    ("text", "mph"),
    [
        ("70 MPH", 70.0),
        ("70mph", 70.0),
        ("45 KT", 51.8),
        ("45 kts", 51.8),
        ("50 knots", 57.5),
        ("100 km/h", 62.1),
        ("25 m/s", 55.9),
        ("60", 60.0),
        (" 58.5 MPH ", 58.5),
    ],
)
def test_parse_gust(text, mph):
    assert parse_gust(text) == mph


@pytest.mark.parametrize("text", ["fast", "", "70 furlongs", "-5 MPH", "999 MPH", "MPH 70"])
def test_parse_gust_rejects(text):
    with pytest.raises(ValueError):
        parse_gust(text)


@pytest.mark.parametrize(
    ("description", "mph"),
    [
        ("West winds 30 to 40 mph with gusts up to 65 mph expected.", 65.0),
        ("North winds 25 to 35 mph with gusts 50 to 60 mph expected.", 60.0),
        ("Winds gusting as high as 70 mph near the ridges.", 70.0),
        ("North winds 25 to 35 mph with gusts up to 60 to 65 mph\nexpected.", 65.0),
        ("Southwest winds 25 to 35 kt with gusts up to 45 kt and seas 10 to 14 ft.", 51.8),
        ("Gusts over 50 mph expected and greater than 60 mph possible.", 60.0),
        ("There is a 20-30% chance for gusts in excess of 60mph.", 60.0),
        ("HAZARD...70 mph wind gusts and penny size hail.", 70.0),
        # The largest mentioned gust, even when the text names two warnings.
        ("For the first warning, gusts up to 70 mph. For the second, gusts up to 80 mph.", 80.0),
        # Sustained winds before the word "gusts" are not gusts; places are not gusts.
        ("West winds 40 to 50 mph with frequent gusts.", None),
        ("Augusta and Augustine, 10 to 20 mph winds.", None),
        ("Gusty winds will blow around unsecured objects.", None),
        ("", None),
    ],
)
def test_gust_from_description(description, mph):
    assert gust_from_description(description) == mph


# --------------------------------------------------------------------------------------------
# The minimal form


def test_minimal_form_object():
    alert = parse_one(minimal())
    assert alert == Alert(
        message_id="acme-2025-12-15-wind",
        storm_id="acme-2025-12-15-wind",
        message_type="Alert",
        vtec_action=None,
        event="High Wind Warning",
        severity=None,
        certainty=None,
        urgency=None,
        sent=None,
        onset=at(60),
        ends=None,
        expires=at(900),
        zones=("MTZ309",),
        max_wind_gust_mph=72.0,
        gust_source="parameter",
        precip_mm=4.5,
        references=(),
        headline=None,
        grid_relevant=True,
    )


def test_minimal_form_list_with_update_and_cancel_on_one_storm():
    first = minimal(id="acme-1")
    update = minimal(id="acme-2", messageType="Update", references=["acme-1"], max_wind_gust_mph=80,
                     ends=iso(1200), severity="Extreme")
    cancel = minimal(id="acme-3", messageType="Cancel", references=["acme-1", "acme-2"])
    parsed = parse([first, update, cancel])
    assert [a.storm_id for a in parsed.alerts] == ["acme-1", "acme-1", "acme-1"]
    assert [a.message_type for a in parsed.alerts] == ["Alert", "Update", "Cancel"]
    assert parsed.alerts[1].max_wind_gust_mph == 80.0
    assert parsed.alerts[1].ends == at(1200)
    assert parsed.alerts[1].severity == "Extreme"
    assert parsed.alerts[2].references == ("acme-1", "acme-2")


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"max_wind_gust_mph": ...}, "max_wind_gust_mph", 58.0),
        ({"max_wind_gust_mph": None}, "gust_source", "default"),
        ({"max_wind_gust_mph": ..., "event": "Wind Advisory"}, "max_wind_gust_mph", 45.0),
        ({"max_wind_gust_mph": ..., "event": "Hurricane Warning"}, "max_wind_gust_mph", 74.0),
        ({"max_wind_gust_mph": ..., "event": "Flood Watch"}, "max_wind_gust_mph", 0.0),
        ({"max_wind_gust_mph": "45 KT"}, "max_wind_gust_mph", 51.8),
        ({"precip_mm": ...}, "precip_mm", None),
        ({"onset": ...}, "onset", None),
        ({"id": "../../etc/passwd"}, "storm_id", sanitize_key("../../etc/passwd")),
    ],
)
def test_minimal_form_variants(overrides, field, expected):
    assert getattr(parse_one(minimal(**overrides)), field) == expected


def test_a_list_may_mix_minimal_alerts_and_nws_features():
    parsed = parse([minimal(), nws_feature()])
    assert [a.storm_id for a in parsed.alerts] == ["acme-2025-12-15-wind", "ktfx-hw-w-0033-2025"]


# --------------------------------------------------------------------------------------------
# classify


OUR_ZONES = {"MTZ309", "WAC033"}


@pytest.mark.parametrize(
    ("alert_overrides", "now", "reason"),
    [
        ({}, TEST_NOW, None),
        # Lower-case zones of ours still match.
        ({"zones": ["mtz309"]}, TEST_NOW, None),
        ({"event": "Flood Watch"}, TEST_NOW, "not a grid-relevant event: 'Flood Watch'"),
        ({"event": "Gale Warning", "zones": ["PZZ110"]}, TEST_NOW,
         "not a grid-relevant event: 'Gale Warning'"),
        ({"zones": ["IDZ001", "IDZ002"]}, TEST_NOW, "no zone of ours: its zones are IDZ001, IDZ002"),
        ({"zones": [f"IDZ{i:03d}" for i in range(10)]}, TEST_NOW,
         "no zone of ours: its zones are IDZ000, IDZ001, IDZ002, IDZ003, IDZ004, IDZ005, IDZ006, "
         "IDZ007 and 2 more"),
        ({"zones": []}, TEST_NOW, "no zone of ours: the alert names no UGC zone"),
        ({}, at(900), "expired at 2025-12-16T12:55:00+00:00 (now is 2025-12-16T12:55:00+00:00)"),
        # Still in force while the event goes on after the message expires.
        ({"ends": iso(1200)}, at(1000), None),
        ({"ends": iso(1200)}, at(1300),
         "expired at 2025-12-16T17:55:00+00:00 (now is 2025-12-16T19:35:00+00:00)"),
        # A cancel marks its storm cancelled, however late it is read.
        ({"messageType": "Cancel", "references": ["acme-0"]}, at(5000), None),
        ({"messageType": "Cancel", "zones": ["IDZ001"]}, TEST_NOW,
         "no zone of ours: its zones are IDZ001"),
        # Future onset is fine: a storm run before the storm is the point.
        ({"onset": iso(3000), "expires": iso(4000)}, TEST_NOW, None),
        # A window that ends before it starts cannot be scored, expired or not.
        ({"onset": iso(3000), "expires": iso(2000)}, TEST_NOW,
         "onset 2025-12-17T23:55:00+00:00 is not before its end 2025-12-17T07:15:00+00:00 (the "
         "later of ends and expires): the alert's window ends before it starts"),
        ({"onset": iso(600), "expires": iso(600)}, TEST_NOW,
         "onset 2025-12-16T07:55:00+00:00 is not before its end 2025-12-16T07:55:00+00:00 (the "
         "later of ends and expires): the alert's window ends before it starts"),
        # ends later than onset makes the window good, even if the message expires before onset.
        ({"onset": iso(600), "expires": iso(300), "ends": iso(1200)}, TEST_NOW, None),
        # A cancel carries no window to score: its times do not matter.
        ({"messageType": "Cancel", "references": ["acme-0"], "onset": iso(600),
          "expires": iso(300)}, TEST_NOW, None),
    ],
)
def test_classify(alert_overrides, now, reason):
    alert = parse_one(minimal(**alert_overrides))
    assert classify(alert, OUR_ZONES, now) == reason


def test_classify_treats_a_vtec_cancel_sent_as_alert_as_a_cancel():
    # Real NWS data has a CAN segment with messageType "Alert".
    feature = nws_feature(
        expires=iso(-10), ends=iso(-10),
        parameters=with_parameters(VTEC=["/O.CAN.KTFX.HW.W.0033.251216T0500Z-251217T0500Z/"]),
    )
    alert = parse_one(feature)
    assert alert.message_type == "Alert" and alert.is_cancel
    assert classify(alert, OUR_ZONES, TEST_NOW) is None


@pytest.mark.parametrize(("text", "shown"), [
    ("a\nFORGED line.json", "a\\nFORGED line.json"),
    ("cr\rlf\r\n", "cr\\rlf\\r\\n"),
    ("tab\tesc\x1b[31mred", "tab\\tesc\\x1b[31mred"),
    ("nul\x00 del\x7f", "nul\\x00 del\\x7f"),
    ("line\u2028separator", "line\\u2028separator"),
    ("bad-byte-\udcff.json", "bad-byte-\\udcff.json"),  # as os.listdir decodes a non-UTF-8 byte
    ("Übersicht — Sturm.json", "Übersicht — Sturm.json"),
    ("plain.json", "plain.json"),
    (42, "42"),
])
def test_printable_escapes_what_could_forge_a_line(text, shown):
    assert alerts_module.printable(text) == shown
    assert alerts_module.printable(text).isprintable()


def test_event_and_headline_hold_no_control_characters():
    alert = parse_one(nws_feature(event="High Wind Warning\x1b[2J",
                                  headline="High Wind Warning\nFORGED line"))
    assert alert.event == "High Wind Warning\\x1b[2J"
    assert alert.headline == "High Wind Warning FORGED line"


def test_classify_needs_an_aware_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        classify(parse_one(minimal()), OUR_ZONES, datetime(2025, 12, 15, 12))


# --------------------------------------------------------------------------------------------
# Bad files and bad alerts


def deeply_nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"  \n\t ", "the file is empty (only whitespace)"),
        (b"\xff\xfe{\x00}", "the file is not UTF-8 text (invalid byte at offset 0)"),
        (b'{"id": "caf\xe9"}', "the file is not UTF-8 text (invalid byte at offset 11)"),
        (b"<html>alerts</html>", "the file is not valid JSON: Expecting value: line 1 column 1"),
        (b'{"type": "FeatureCollection", "features": [', "the file is not valid JSON"),
        (b'{"id": "a", "max_wind_gust_mph": NaN}', "NaN is not a JSON number"),
        (b"42", "the JSON document is a number, not an alert"),
        (b'"High Wind Warning"', "the JSON document is a string, not an alert"),
        (b"null", "the JSON document is null, not an alert"),
        (b"[1, 2, 3]", "the JSON array holds a number, not alert objects"),
        (b'[1, "x"]', "the JSON array holds a number and a string, not alert objects"),
        (b"[]", "the JSON array is empty: there is no alert in it"),
        (b'{"name": "storm", "speed": 80}',
         "the JSON object is not an alert: it has none of the fields of an NWS alert"),
        (b"{}", "the JSON object is not an alert"),
        (b'{"type": "Feature", "geometry": null}',
         "the GeoJSON Feature has no 'properties' object, so it is not an alert"),
        (b'{"type": "Feature", "properties": [1]}', "the GeoJSON Feature has no 'properties' object"),
        (b'{"type": "FeatureCollection", "features": {"a": 1}}',
         "the FeatureCollection has no 'features' list (it is an object)"),
        (deeply_nested(10_000), "the JSON is nested 10000 levels deep, deeper than the limit of 32"),
        (b'{"a": ' * 33 + b"1" + b"}" * 33, "the JSON is nested 33 levels deep"),
    ],
)
def test_unusable_files(data, reason):
    with pytest.raises(AlertFileError) as error:
        parse_alert_bytes(data)
    assert reason in str(error.value)


def test_too_large_file_is_refused_before_reading_it():
    data = encode(collection(*[nws_feature()] * 50))
    expected = rf"the file is {len(data)} bytes, larger than the limit of 1000 bytes"
    with pytest.raises(AlertFileError, match=expected):
        parse_alert_bytes(data, max_bytes=1000)
    with pytest.raises(AlertFileError, match="larger than the limit of 10485760 bytes"):
        parse_alert_bytes(b" " * (10 * 1024 * 1024 + 1))


def test_depth_limit_counts_nesting_not_brackets_in_strings():
    text = {"id": "a" + "[" * 40 + "b", "event": "{" * 40, "headline": 'quote \\" ' + "[" * 40,
            "onset": iso(0), "expires": iso(60), "zones": ["MTZ309"]}
    assert parse_one(text).event.startswith("{{{")
    nested = {"properties": {"parameters": {"a": [[[[1]]]]}}}
    with pytest.raises(AlertFileError, match="nested 7 levels deep, deeper than the limit of 5"):
        parse_alert_bytes(encode(nested), max_depth=5)
    assert MAX_DEPTH == 32


# Each malformed alert: as the only alert of a file it makes the file unusable; inside a
# collection it is ignored with the same reason and the other alerts still parse.
BAD_NWS_ALERTS = [
    ({"onset": "tomorrow morning"}, "onset 'tomorrow morning' is not an ISO 8601 time"),
    ({"expires": "date:now +860 minutes"}, "expires 'date:now +860 minutes' is not an ISO 8601 time"),
    ({"sent": "2025-12-15T14:13:00"},
     "sent '2025-12-15T14:13:00' has no UTC offset (ambiguous local time)"),
    ({"ends": "2025-12-15"}, "ends '2025-12-15' has no UTC offset (ambiguous local time)"),
    ({"onset": 1765836000}, "onset is a number, not an ISO 8601 time"),
    ({"ends": None, "parameters": with_parameters(eventEndingTime=["soon"])},
     "eventEndingTime 'soon' is not an ISO 8601 time"),
    ({"geocode": {"UGC": ["MTZ309", "MT309"]}},
     "zone code 'MT309' is not a UGC code like 'MTZ309' or 'WAC033'"),
    ({"geocode": {"UGC": ["MTZ309", "../../etc"]}}, "zone code '../../etc' is not a UGC code"),
    ({"geocode": {"UGC": ["MTX309"]}}, "zone code 'MTX309' is not a UGC code"),
    ({"geocode": {"UGC": [309]}}, "zone code 309 is not a UGC code"),
    ({"geocode": {"UGC": "MTZ309"}}, "geocode.UGC is a string, not a list of UGC codes"),
    ({"id": ...}, "missing id"),
    ({"id": "  "}, "missing id (it is empty)"),
    ({"id": 12}, "id is a number, not text"),
    ({"id": "x" * 300}, "id is 300 characters long, longer than 256"),
    ({"id": "urn:a\nb"}, "contains control characters"),
    ({"event": ...}, "missing event name"),
    ({"messageType": "Ack"}, "messageType 'Ack' is not one of Alert, Update, Cancel"),
    ({"parameters": with_parameters(maxWindGust=["strong"])},
     "parameters.maxWindGust: 'strong' is not a speed like '70 MPH' or '45 KT'"),
    ({"parameters": with_parameters(maxWindGust=["900 MPH"])},
     "parameters.maxWindGust: '900 MPH' is outside 0 to 300 mph"),
    ({"parameters": "VTEC"}, "'parameters' is a string, not an object"),
    ({"references": [{"sender": "x"}]}, "references entry 1 has no identifier"),
    ({"parameters": with_parameters(expiredReferences=["urn:only-an-id"])},
     "parameters.expiredReferences entry 'urn:only-an-id' is not 'sender,identifier,sent'"),
]


@pytest.mark.parametrize(("overrides", "reason"), BAD_NWS_ALERTS)
def test_malformed_nws_alert_alone_makes_the_file_unusable(overrides, reason):
    with pytest.raises(AlertFileError) as error:
        parse(nws_feature(**overrides))
    assert "is unusable: " in str(error.value)
    assert reason in str(error.value)


@pytest.mark.parametrize(("overrides", "reason"), BAD_NWS_ALERTS)
def test_malformed_nws_alert_in_a_collection_is_ignored_with_its_reason(overrides, reason):
    bad = nws_feature(**overrides)
    good = nws_feature(id="urn:good.1")
    parsed = parse(collection(good, bad))
    assert [a.message_id for a in parsed.alerts] == ["urn:good.1"]
    (ignored,) = parsed.ignored
    assert reason in ignored.reason
    # The record keeps the id when it is a usable one.
    assert ignored.message_id == (HWW_ID if bad["properties"].get("id") == HWW_ID else None)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"id": ...}, "missing id"),
        ({"zones": ...}, "'zones' is missing: the minimal form needs a list of UGC codes"),
        ({"zones": ["MTZ30"]}, "zone code 'MTZ30' is not a UGC code"),
        ({"expires": ...}, "'expires' is missing: the minimal form needs it"),
        ({"expires": "2025-12-16 08:00"},
         "expires '2025-12-16 08:00' has no UTC offset (ambiguous local time)"),
        ({"onset": "next tuesday"}, "onset 'next tuesday' is not an ISO 8601 time"),
        ({"max_wind_gust_mph": "fast"},
         "max_wind_gust_mph: 'fast' is not a speed like '70 MPH' or '45 KT'"),
        ({"max_wind_gust_mph": True}, "max_wind_gust_mph is a boolean, not a speed"),
        ({"max_wind_gust_mph": -3}, "max_wind_gust_mph: -3 is outside 0 to 300 mph"),
        ({"precip_mm": "lots"}, "precip_mm 'lots' is not a number"),
        ({"precip_mm": -1}, "precip_mm -1 is outside 0 to 5000"),
        ({"references": "acme-1"}, "references is a string, not a list"),
    ],
)
def test_malformed_minimal_alert(overrides, reason):
    data = encode(minimal(**overrides))
    with pytest.raises(AlertFileError) as error:
        parse_alert_bytes(data)
    assert reason in str(error.value)
    # In a list, only that alert is ignored.
    listed = parse_alert_bytes(b"[" + encode(minimal(id="ok")) + b", " + data + b"]")
    assert [a.message_id for a in listed.alerts] == ["ok"]
    assert reason in listed.ignored[0].reason


def test_a_number_too_large_for_a_float_is_not_a_gust():
    # JSON cannot say "infinity", but a huge literal such as 1e400 parses to it.
    data = encode(minimal(max_wind_gust_mph=1)).replace(b": 1,", b": 1e400,")
    with pytest.raises(AlertFileError, match="max_wind_gust_mph: inf is outside 0 to 300 mph"):
        parse_alert_bytes(data)


def test_every_entry_unusable_makes_the_file_unusable_and_names_the_reasons():
    bad = [nws_feature(id=f"urn:bad.{i}", onset="soon") for i in range(5)]
    with pytest.raises(AlertFileError) as error:
        parse(collection(*bad))
    message = str(error.value)
    assert message.startswith("none of the 5 features is a usable alert: #1 urn:bad.0: onset 'soon'")
    assert message.endswith("; and 2 more")


def test_non_alert_items_of_a_list_are_ignored_with_their_kind():
    parsed = parse([minimal(), 7, {"colour": "red"}])
    assert len(parsed.alerts) == 1
    assert [i.reason for i in parsed.ignored] == [
        "it is a number, not an alert object",
        "the object has none of the fields of an alert ('id', 'event', 'zones')",
    ]
    assert parse(collection(nws_feature(), {"type": "Feature"})).ignored == (
        IgnoredAlert(None, None, "the Feature has no 'properties' object"),
    )


@pytest.mark.parametrize("status", ["Test", "Exercise", "Draft", 3])
def test_messages_that_are_not_actual_are_ignored_not_errors(status):
    single = parse(nws_feature(status=status))
    assert single.alerts == ()
    reason = f"status is {status!r}, not 'Actual'"
    assert single.ignored == (IgnoredAlert(HWW_ID, "High Wind Warning", reason),)
    mixed = parse(collection(nws_feature(status=status), nws_feature(id="urn:real")))
    assert [a.message_id for a in mixed.alerts] == ["urn:real"]


def test_a_byte_order_mark_is_accepted():
    parsed = parse_alert_bytes(b"\xef\xbb\xbf" + encode(minimal()))
    assert parsed.alerts[0].message_id == "acme-2025-12-15-wind"


def test_parsing_does_not_modify_its_input():
    feature = nws_feature()
    before = copy.deepcopy(feature)
    data = encode(feature)
    parse_alert_bytes(data)
    assert feature == before and data == encode(before)


# --------------------------------------------------------------------------------------------
# sanitize_key


KEY = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ktfx-hw-w-0033-2025", "ktfx-hw-w-0033-2025"),
        ("acme-1", "acme-1"),
        ("../../etc/passwd", "etc-passwd-"),
        ("..", "key-"),
        (".", "key-"),
        ("", "key-"),
        ("///", "key-"),
        ("Storm ONE", "storm-one-"),
        ("urn:oid:2.49.0.1.840.0.3e62e6020ed3c0068e5499ab4376e9372d494c2d.002.2",
         "urn-oid-2-49-0-1-840-0-3e62e6020ed3c0068e5499ab4376e9372d494c2d-002-2-"),
        ("Ünïcødé ☂ storm", "n-c-d-storm-"),
        ("x" * 500, "x" * 69 + "-"),
        ("a\ud800b", "a-b-"),
        ("-leading", "leading-"),
    ],
)
def test_sanitize_key(text, expected):
    key = sanitize_key(text)
    assert KEY.fullmatch(key), key
    assert len(key) <= MAX_KEY_CHARS
    assert key not in (".", "..") and "/" not in key and "." not in key
    assert sanitize_key(text) == key  # deterministic
    if expected.endswith("-"):
        # Changed text carries a 10-hex-digit hash of the original.
        assert key.startswith(expected) and re.fullmatch(r"[0-9a-f]{10}", key[len(expected):])
    else:
        assert key == expected


def test_sanitize_key_keeps_different_texts_apart():
    texts = ["Storm One", "storm one", "storm-one", "storm_one", "x" * 500, "x" * 501, ".", "..", ""]
    assert len({sanitize_key(t) for t in texts}) == len(texts)


def test_path_traversal_id_becomes_a_harmless_storm_id():
    alert = parse_one(minimal(id="../../etc/passwd"))
    assert alert.message_id == "../../etc/passwd"
    assert "/" not in alert.storm_id and "." not in alert.storm_id
    assert alert.storm_id.startswith("etc-passwd-")
    assert Path("/tmp/storms", alert.storm_id).parent == Path("/tmp/storms")


# --------------------------------------------------------------------------------------------
# The real NWS collections


@pytest.fixture(scope="module")
def real_files() -> dict[str, tuple[dict, ParsedFile]]:
    if nws_data_dir() is None:
        pytest.skip("gridassets_tests/data/nws is missing")
    parsed = {}
    for name in NWS_FILES:
        data = load_nws_file(name)
        parsed[name] = (json.loads(data), parse_alert_bytes(data))
    return parsed


@pytest.mark.parametrize(("name", "features", "alerts"), [
    ("northwest-active-alerts.json", 529, 529),
    ("washington-active-alerts.json", 38, 38),
])
def test_real_collections_parse_completely(real_files, name, features, alerts):
    document, parsed = real_files[name]
    assert len(document["features"]) == features
    assert len(parsed.alerts) + len(parsed.ignored) == features
    assert len(parsed.alerts) == alerts
    assert all(i.reason for i in parsed.ignored)
    for alert in parsed.alerts:
        for t in (alert.sent, alert.onset, alert.ends, alert.expires):
            assert t is None or t.utcoffset() == timedelta(0)
        assert all(re.fullmatch(r"[A-Z]{2}[CZ]\d{3}", z) for z in alert.zones)
        assert sanitize_key(alert.storm_id) == alert.storm_id
        assert alert.message_type in ("Alert", "Update", "Cancel")
        assert alert.gust_source in ("parameter", "description", "default")


def test_real_message_types_and_vtec(real_files):
    _, parsed = real_files["northwest-active-alerts.json"]
    assert collections.Counter(a.message_type for a in parsed.alerts) == {"Alert": 378, "Update": 151}
    assert sum(a.vtec_action is None for a in parsed.alerts) == 9


def test_real_mtz309_high_wind_warnings(real_files):
    _, parsed = real_files["northwest-active-alerts.json"]
    hww = [a for a in parsed.alerts if a.event == "High Wind Warning" and "MTZ309" in a.zones]
    by_storm = {a.storm_id: a for a in hww}
    assert len(hww) == 2
    assert set(by_storm) == {"ktfx-hw-w-0033-2025", "ktfx-hw-w-0032-2025"}
    new, con = by_storm["ktfx-hw-w-0033-2025"], by_storm["ktfx-hw-w-0032-2025"]
    assert (new.message_type, new.vtec_action, new.references) == ("Alert", "NEW", ())
    assert (con.message_type, con.vtec_action) == ("Update", "CON")
    assert con.references == (
        "urn:oid:2.49.0.1.840.0.9dd63448cea7509fa5bd195d228338fb1f2d1a4d.001.2",
        "urn:oid:2.49.0.1.840.0.9dd63448cea7509fa5bd195d228338fb1f2d1a4d.003.1",
    )
    # One description speaks of both warnings ("For the first High Wind Warning, ... gusts up to
    # 70 mph. For the second ..., gusts up to 80 mph"): each message takes its own warning's.
    assert (con.max_wind_gust_mph, con.gust_source) == (70.0, "description")
    assert (new.max_wind_gust_mph, new.gust_source) == (80.0, "description")
    assert new.onset == TEST_NOW + timedelta(minutes=2165)
    assert new.ends == TEST_NOW + timedelta(minutes=3425)
    assert all(classify(a, {"MTZ309"}, TEST_NOW) is None for a in hww)
    assert classify(con, {"MTZ309"}, con.ends) is not None


def test_real_segments_of_two_warnings_each_take_their_own_gust(real_files):
    _, parsed = real_files["northwest-active-alerts.json"]
    gusts = {(a.storm_id, zone): a.max_wind_gust_mph for a in parsed.alerts
             if a.event == "High Wind Warning" and a.storm_id.startswith("ktfx-hw-w-003")
             for zone in a.zones}
    # In effect now (0032) and to come (0033), per segment: the first warning's gust, then the
    # second's; a segment about one warning only (MTZ316, MTZ327) has its own.
    assert [gusts[("ktfx-hw-w-0032-2025", z)] for z in ("MTZ309", "MTZ312", "MTZ305")] == [
        70.0, 70.0, 60.0]
    assert [gusts[("ktfx-hw-w-0033-2025", z)] for z in ("MTZ309", "MTZ312", "MTZ305")] == [
        80.0, 80.0, 80.0]
    assert gusts[("ktfx-hw-w-0033-2025", "MTZ316")] == gusts[("ktfx-hw-w-0033-2025", "MTZ327")] == 70


TWO_WARNINGS = ("* WHAT...For the first High Wind Warning, west winds 30 to 40 mph with gusts "
                "up to 70 mph. For the second High\nWind Warning, westerly winds 30 to 50 mph "
                "with gusts up to 80 mph expected.\n\n* WHERE...Cascade County.\n\n* WHEN..."
                "For the first High Wind Warning, until 11 AM MST Tuesday. For the second High "
                "Wind Warning, from 3 AM Wednesday to midnight MST Wednesday Night.")


def two_warning_segment(vtec: str, message_id: str, **parameters) -> dict:
    return nws_feature(id=message_id, description=TWO_WARNINGS,
                       parameters=with_parameters(maxWindGust=..., VTEC=[vtec], **parameters))


IN_EFFECT = "/O.CON.KTFX.HW.W.0032.000000T0000Z-251216T1800Z/"
TO_COME = "/O.NEW.KTFX.HW.W.0033.251217T1000Z-251218T0700Z/"


@pytest.mark.parametrize(("event", "mph"), [(None, 80.0), (1, 70.0), (2, 80.0), (3, 80.0)])
def test_a_description_of_two_warnings_gives_each_its_gust(event, mph):
    assert alerts_module.description_parts(TWO_WARNINGS).keys() == {1, 2}
    assert gust_from_description(TWO_WARNINGS, event) == mph


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_each_segment_of_two_warnings_takes_its_own_gust(order):
    features = [two_warning_segment(IN_EFFECT, "seg.002.3"),
                two_warning_segment(TO_COME, "seg.002.2")]
    parsed = parse_alert_bytes(json.dumps(collection(*[features[i] for i in order])).encode())
    gusts = {a.storm_id: (a.max_wind_gust_mph, a.gust_source) for a in parsed.alerts}
    assert gusts == {"ktfx-hw-w-0032-2025": (70.0, "description"),
                     "ktfx-hw-w-0033-2025": (80.0, "description")}


def test_a_lone_segment_of_two_warnings_is_the_first_only_when_in_effect():
    [in_effect] = parse_alert_bytes(json.dumps(
        two_warning_segment(IN_EFFECT, "seg.002.3")).encode()).alerts
    [to_come] = parse_alert_bytes(json.dumps(
        two_warning_segment(TO_COME, "seg.002.2")).encode()).alerts
    assert in_effect.max_wind_gust_mph == 70.0
    assert to_come.max_wind_gust_mph == 80.0  # cannot tell which: the largest mentioned


def test_segments_with_their_own_max_wind_gust_keep_them_zone_by_zone():
    first = nws_feature(id="seg.001.1", geocode={"UGC": ["MTZ309"]},
                        parameters=with_parameters(maxWindGust=["70 MPH"]))
    second = nws_feature(id="seg.002.1", geocode={"UGC": ["MTZ310"]},
                         parameters=with_parameters(maxWindGust=["80 MPH"]))
    parsed = parse_alert_bytes(json.dumps(collection(first, second)).encode())
    assert {a.zones: a.max_wind_gust_mph for a in parsed.alerts} == {("MTZ309",): 70.0,
                                                                      ("MTZ310",): 80.0}


def test_real_washington_gusts(real_files):
    _, parsed = real_files["washington-active-alerts.json"]
    (svr,) = [a for a in parsed.alerts if a.event == "Severe Thunderstorm Warning"]
    assert (svr.max_wind_gust_mph, svr.gust_source) == (70.0, "parameter")
    assert svr.storm_id == "kjax-sv-w-0011-2024"
    (hww,) = [a for a in parsed.alerts if a.event == "High Wind Warning"]
    # "gusts up to 60 to 65 mph"; the test file's warning names no UGC zone.
    assert (hww.max_wind_gust_mph, hww.gust_source, hww.zones) == (65.0, "description", ())
    assert hww.storm_id == "klox-hw-w-0001-2024"
    assert classify(hww, {"CAZ054"}, TEST_NOW) == "no zone of ours: the alert names no UGC zone"


def test_real_file_with_placeholders_left_in_is_unusable():
    folder = nws_data_dir()
    if folder is None:
        pytest.skip("gridassets_tests/data/nws is missing")
    expected = r"none of the 38 features is a usable alert: #1 .* is not an ISO 8601 time"
    with pytest.raises(AlertFileError, match=expected):
        parse_alert_bytes((folder / "washington-active-alerts.json").read_bytes())


@pytest.mark.parametrize(
    ("placeholder", "expected"),
    [
        ("date:now", "2025-12-15T21:55:00+00:00"),
        ("date:now +2165 minutes", "2025-12-17T10:00:00+00:00"),
        ("date:now -1 hour", "2025-12-15T20:55:00+00:00"),
        ("date:now 3 days", "2025-12-18T21:55:00+00:00"),
        ("date:now -30 seconds", "2025-12-15T21:54:30+00:00"),
        ("date:today 16:00:-5 +24 hours", "2025-12-16T16:00:00-05:00"),
    ],
)
def test_placeholder_substitution(placeholder, expected):
    assert resolve_placeholder(placeholder) == expected
    assert with_real_times(f'{{"t": "{placeholder}"}}'.encode()) == f'{{"t": "{expected}"}}'.encode()


# --------------------------------------------------------------------------------------------
# The module stays light


def test_alerts_module_imports_only_the_standard_library():
    tree = ast.parse(Path(alerts_module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
