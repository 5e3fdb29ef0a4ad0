"""The telemetry integrity evaluation: detection within 2 days, false alarms on clean device-days,
the real ETT transformers through the landing path, and the features without the quarantine."""

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from gridassets import warehouse
from gridassets.domain.fleet import FleetConfig, FleetSimulator
from gridassets.evaluation import integrity as ie
from gridassets.storage import features as feature_sql
from gridassets_tests.conftest import TEST_DATA, TEST_FLEET

DAY0 = pd.Timestamp("2025-03-10")


def _truth(*rows) -> pd.DataFrame:
    """Threat rows: (threat_id, threat, device_type, device_id, start day offset, days)."""
    return pd.DataFrame([{
        "threat_id": tid, "threat": kind, "variant": "v", "device_type": dtype,
        "device_id": dev, "circuit_id": "C1", "start_ts": DAY0 + pd.Timedelta(days=off, hours=5),
        "end_ts": DAY0 + pd.Timedelta(days=off + n), "detail": ""}
        for tid, kind, dtype, dev, off, n in rows])


def _flags(*rows) -> pd.DataFrame:
    """Flag rows: (device_type, device_id, day offset, check)."""
    return pd.DataFrame([{"device_type": t, "device_id": d, "date": DAY0 + pd.Timedelta(days=o),
                          "check": c, "reason": "r"} for t, d, o, c in rows],
                        columns=["device_type", "device_id", "date", "check", "reason"])


def test_a_threat_flagged_on_its_third_day_is_not_detected_within_two_days():
    truth = _truth(("TH-1", "clock_shift", "transformer", "T1", 0, 4),
                   ("TH-2", "clock_shift", "transformer", "T2", 0, 4),
                   ("TH-3", "silent_group", "transformer", "T3", 0, 1),
                   ("TH-3", "silent_group", "transformer", "T4", 0, 1))
    flags = _flags(("transformer", "T1", 2, "clock"), ("transformer", "T2", 1, "clock"),
                   ("transformer", "T4", 0, "reporting"),
                   # another device's flag, and T1's own before the event, detect nothing
                   ("transformer", "T9", 0, "clock"), ("transformer", "T1", -1, "repeat"))
    first = (DAY0 - pd.Timedelta(days=ie.WARMUP_DAYS)).date()
    det = ie.detection(truth, flags, first, (DAY0 + pd.Timedelta(days=30)).date()
                       ).set_index("threat_id")
    assert det.loc["TH-1", "detected"] and not det.loc["TH-1", "detected_in_time"]
    assert det.loc["TH-2", "detected_in_time"]
    assert det.loc["TH-3", "detected_in_time"] and det.loc["TH-3", "devices"] == 2
    # from 05:00 of day 0 to the end of day 1 (TH-2), of day 0 (TH-3)
    assert det.loc["TH-2", "hours_to_detect"] == pytest.approx(43)
    assert det.loc["TH-3", "hours_to_detect"] == pytest.approx(19)
    rates = ie._rates(det.reset_index(), ["threat"]).set_index("threat")
    assert rates.loc["clock_shift", "recall_2d"] == 0.5
    assert rates.loc["clock_shift", "ttd_max_h"] == pytest.approx(67)


def test_events_in_the_warm_up_or_without_their_next_day_judged_are_left_out():
    truth = _truth(("TH-1", "replay", "circuit", "C1", 0, 1), ("TH-2", "replay", "circuit", "C1",
                                                              5, 1))
    det = ie.detection(truth, _flags(), (DAY0 - pd.Timedelta(days=3)).date(),
                       (DAY0 + pd.Timedelta(days=5)).date())
    assert det.empty


@pytest.fixture
def judged_con():
    """An in-memory warehouse of 3 transformers and a circuit judged over 20 days."""
    con = duckdb.connect()
    days = pd.date_range(DAY0 - pd.Timedelta(days=10), periods=20)
    devices = [("transformer", "T1"), ("transformer", "T2"), ("transformer", "T3"),
               ("circuit", "C1")]
    signals = pd.DataFrame([{"device_type": t, "device_id": d, "date": day}
                            for day in days for t, d in devices])
    checks = {"transformer": ["repeat", "clock"], "circuit": ["load_balance"]}
    verdict = pd.DataFrame([{"device_type": t, "device_id": d, "date": day, "check": c,
                             "score": 0.1, "flagged": False} for day in days for t, d in devices
                            for c in checks[t]])

    def plant(device, offset, check):
        hit = ((verdict["device_id"] == device) & (verdict["check"] == check)
               & (verdict["date"] == DAY0 + pd.Timedelta(days=offset)))
        assert hit.sum() == 1
        verdict.loc[hit, ["flagged", "score"]] = True, 2.0

    plant("T1", 0, "repeat")  # on the replay
    plant("T1", 1, "repeat")  # the day after it: neither precise nor a false alarm
    plant("T2", 3, "clock")  # a clean device-day: a false alarm
    plant("T2", 3, "repeat")  # the same device-day again, by another check
    plant("C1", 4, "load_balance")  # a clean circuit-day
    verdict.loc[(verdict["device_id"] == "C1") & (verdict["date"] == DAY0), "score"] = 0.9
    warehouse.replace_rows(con, "telemetry_signals", signals)
    warehouse.replace_rows(con, "telemetry_integrity", verdict)
    yield con, days
    con.close()


def test_a_planted_flag_on_a_clean_device_day_is_a_false_alarm(judged_con):
    con, days = judged_con
    truth = _truth(("TH-1", "replay", "transformer", "T1", 0, 1))
    per_check, overall = ie.check_figures(con, ie.threat_days(truth), days[0].date(),
                                          days[-1].date())
    # 80 device-days, of which T1's replay day and the day after are not clean
    assert overall["device_days"] == 80 and overall["clean_device_days"] == 78
    assert overall["false_alarm_device_days"] == 2  # T2 day 3 (two checks, one day), C1 day 4
    assert overall["per_1000"] == pytest.approx(1000 * 2 / 78)
    assert overall["transformer_per_1000"] == pytest.approx(1000 / 58)
    assert overall["circuit_per_1000"] == pytest.approx(1000 / 20)
    c = per_check.set_index("check")
    assert (c.loc["repeat", "flags"], c.loc["repeat", "on_threat"],
            c.loc["repeat", "day_after"], c.loc["repeat", "false_alarms"]) == (3, 1, 1, 1)
    assert c.loc["repeat", "precision"] == pytest.approx(1 / 3)
    assert c.loc["clock", "clean_device_days"] == 58  # transformers only
    assert c.loc["load_balance", "false_alarms_per_1000"] == pytest.approx(1000 / 20)
    # the clean days' scores: C1's near miss and its false alarm, T2's clock false alarm
    assert c.loc["load_balance", ["clean_near", "clean_score_max"]].tolist() == [2, 2.0]
    assert c.loc["clock", "clean_near"] == 1


def test_the_ett_files_judged_through_the_landing_path_give_one_verdict_per_device_day(tmp_path):
    files = ie.ett_files(TEST_DATA / "ett")
    assert set(files) == {"ETTh1", "ETTh2"}
    days = 6
    out = ie.ett_evaluation(files, tmp_path, days=days)
    assert out["days"] == days and out["refused_files"] == []
    # each transformer and its feeder judged on each day of the files, from their own readings
    assert out["transformer_days"] == out["circuit_days"] == 2 * days
    assert {r["transformer_id"]: r["days"] for r in out["hours"]} == {"ETTh1": days,
                                                                      "ETTh2": days}
    # UTC+8 to UTC, then whole weeks forward: the weekday stays
    first = date.fromisoformat(out["first_day"])
    assert (first - timedelta(weeks=out["shift_weeks"])) == date(2016, 6, 30)
    assert out["first_day"] == str(date(2016, 6, 30) + ie.ETT_SHIFT)
    assert 0 <= out["per_1000"] <= 1000


def test_the_ett_landing_files_hold_both_transformers_each_day(tmp_path):
    written = ie.write_ett_landing(ie.ett_files(TEST_DATA / "ett"), tmp_path, days=2)
    frame = pd.read_csv(tmp_path / "transformer_telemetry" / f"{written[1]}.csv")
    assert frame.groupby(frame.columns[0]).size().to_dict() == {"ETTh1": 24, "ETTh2": 24}
    raw = pd.read_csv(TEST_DATA / "ett" / "ETTh1.csv")
    whole = pd.to_datetime(raw["date"]) - pd.Timedelta(hours=8)
    assert len(ie.write_ett_landing({"ETTh1": TEST_DATA / "ett" / "ETTh1.csv"},
                                    tmp_path / "all")) == whole.dt.date.nunique()


def test_without_the_quarantine_a_flagged_days_oil_readings_count_again():
    con = duckdb.connect()
    hours = pd.date_range(DAY0, periods=48, freq="h")
    telemetry = pd.DataFrame({"transformer_id": "T1", "timestamp": hours, "load_pct": 50.0,
                              "oil_temp_c": np.arange(48, dtype=float), "ambient_temp_c": 10.0,
                              "hot_spot_temp_c": 70.0, "h2_ppm": np.nan, "c2h2_ppm": np.nan,
                              "c2h4_ppm": np.nan})
    warehouse.replace_rows(con, "transformer_telemetry", telemetry)
    warehouse.replace_rows(con, "transformers", pd.DataFrame(
        {"transformer_id": ["T1"], "circuit_id": ["C1"], "rating_kva": [100.0],
         "install_year": [2000]}))
    warehouse.replace_rows(con, "circuits", pd.DataFrame({"circuit_id": ["C1"], "zone": ["Z"]}))
    warehouse.replace_rows(con, "weather_observations", pd.DataFrame(
        {"zone": ["Z"], "timestamp": [DAY0], "temp_c": [5.0]}))
    end = (DAY0 + pd.Timedelta(days=2)).date()
    before = feature_sql.transformer_daily_stats(con, DAY0.date(), end)
    warehouse.replace_rows(con, "telemetry_integrity", pd.DataFrame({
        "device_type": ["transformer"], "device_id": ["T1"], "date": [DAY0 + pd.Timedelta(days=1)],
        "check": ["frozen"], "flagged": [True], "quarantine": ["oil_temperature"]}))
    kept = feature_sql.transformer_daily_stats(con, DAY0.date(), end)
    assert kept["oil_max_c"].isna().tolist() == [False, True]
    everything = feature_sql.transformer_daily_stats(con, DAY0.date(), end, quarantine=False)
    pd.testing.assert_frame_equal(everything, before)
    assert everything["oil_max_c"].tolist() == [23.0, 47.0]


@pytest.mark.e2e
def test_the_demo_warehouse_is_evaluated_against_the_simulators_truth(demo_data):
    data, _ = demo_data
    sim = FleetSimulator(FleetConfig(**TEST_FLEET))
    ev = ie.evaluate(data / "warehouse.duckdb", data / "models", sim)
    assert ev is not None and ev.ett is None
    fa = ev.false_alarms
    assert 0 < fa["clean_device_days"] <= fa["device_days"]
    assert fa["false_alarm_device_days"] <= fa["flagged_device_days"]
    assert set(ev.threats["threat"]) <= {"load_injection", "replay", "oil_sensor_frozen",
                                         "oil_sensor_spoofed", "clock_shift", "silent_group"}
    assert (ev.threats["detected_in_2d"] <= ev.threats["events"]).all()
    assert (ev.checks["on_threat"] + ev.checks["day_after"] + ev.checks["false_alarms"]
            == ev.checks["flags"]).all()
    f = ev.failures
    assert f["hidden"] + f["other_wear_out"] <= f["all_failures"]
    text = ie.format_report(ev)
    assert "false alarms:" in text and "acceptance:" in text
    assert ev.to_dict()["acceptance"]["false_alarms"] == (fa["per_1000"] <= 1.0)


@pytest.mark.e2e
def test_recomputed_without_the_quarantine_an_unflagged_units_scores_are_the_warehouses(
        demo_data):
    data, _ = demo_data
    db = data / "warehouse.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        last = pd.Timestamp(con.execute("select max(date) from scores.transformer_risk"
                                        ).fetchall()[0][0])
        units = con.execute("""
            select transformer_id from scores.transformer_risk r
            where date = ? and not exists (
                select 1 from integrity.telemetry_integrity i
                where i.flagged and i.device_id = r.transformer_id)
            order by transformer_id limit 3""", [last]).fetchdf()["transformer_id"].tolist()
        stored = con.execute(
            "select transformer_id, date, p_fail_30d from scores.transformer_risk "
            "where transformer_id in (select unnest(?))", [units]).fetchdf()
    failures = pd.DataFrame({"transformer_id": units, "day": last + pd.Timedelta(days=1)})
    p = ie.scores_without_quarantine(db, data / "models", failures)
    both = p.merge(stored, on=["transformer_id", "date"], suffixes=("", "_stored"))
    assert len(both) == len(units) * ie.LEAD_DAYS
    np.testing.assert_allclose(both["p_fail_30d"], both["p_fail_30d_stored"], rtol=1e-9)
    assert (both["threshold"] > 0).all()
