"""The named warehouse reads of the forecast, score and storm assets, on both backends: tiny
inline tables published whole, then read back through `open_warehouse(...).connect()`."""

from datetime import date

import pandas as pd

from gridassets.domain.forecasting import FittedModel
from gridassets.domain.integrity import RECENT_DAYS
from gridassets.storage import forecasting as forecast_reads
from gridassets.storage import integrity as integrity_reads
from gridassets.storage import scores as score_reads
from gridassets.storage import storms as storm_reads
from gridassets.storage.backend import open_warehouse
from gridassets.storage.publish import Slice
from gridassets.warehouse import SCHEMA_OF
from gridassets_tests.conftest import read_warehouse

D1, D2, D3 = pd.Timestamp("2025-05-01"), pd.Timestamp("2025-05-02"), pd.Timestamp("2025-05-03")


def store(settings, table: str, frame: pd.DataFrame) -> None:
    open_warehouse(settings.resolve()).publish(Slice(SCHEMA_OF[table], table), frame,
                                               asset=table, run_id="test")


def model(circuit_id: str, day: date) -> FittedModel:
    return FittedModel(circuit_id=circuit_id, method="sarimax", spec={"transform": "log"},
                       params=[0.5, 1.0], fitted_on=day, train_end=day, checked_on=day)


def test_the_model_state_is_the_latest_stored_day_before_the_first(settings):
    with open_warehouse(settings.resolve()).connect() as con:  # read-only needs a file
        assert forecast_reads.model_state_before(con, D3) == ({}, None)
    stored = [("c1", D1.date()), ("c2", D1.date()), ("c1", D3.date())]
    store(settings, "load_forecast_models", pd.DataFrame(
        {"circuit_id": [c for c, _ in stored], "issue_date": [d for _, d in stored],
         "model_json": [model(c, d).to_json() for c, d in stored]}))
    with read_warehouse(settings) as con:
        # 2025-05-02 has none, and the model of the first day itself is never read
        fitted, day = forecast_reads.model_state_before(con, D3)
        assert pd.Timestamp(day) == D1
        assert fitted == {"c1": model("c1", D1.date()), "c2": model("c2", D1.date())}
        assert forecast_reads.model_state_before(con, D1) == ({}, None)


def test_forecasts_and_load_are_read_over_half_open_ranges(settings):
    store(settings, "load_forecast", pd.DataFrame({
        "issue_date": [D1.date(), D2.date(), D3.date()], "circuit_id": ["c1", "c1", "c1"],
        "target_ts": [D2, D3, D3 + pd.Timedelta(days=1)], "load_mw": [1.0, 2.0, 3.0]}))
    store(settings, "feeder_load", pd.DataFrame({
        "circuit_id": ["c1", "c2", "c1"], "timestamp": [D1, D2, D3], "load_mw": [4.0, 5.0, 6.0]}))
    with read_warehouse(settings) as con:
        assert pd.Timestamp(forecast_reads.first_forecast_issue(con)) == D1
        issued = forecast_reads.forecasts_issued(con, ["issue_date", "load_mw"], D1.date(),
                                                 D3.date())
        assert list(issued.columns) == ["issue_date", "load_mw"]
        assert sorted(issued["load_mw"]) == [1.0, 2.0]
        load = forecast_reads.feeder_load_between(con, D1, D3)
        assert sorted(load["load_mw"]) == [4.0, 5.0]
        assert load["circuit_id"].dtype == object
        compact = forecast_reads.feeder_load_between(con, D1, D3, compact=True)
        assert isinstance(compact["circuit_id"].dtype, pd.CategoricalDtype)
        assert sorted(compact["load_mw"]) == [4.0, 5.0]


def test_a_day_slice_is_half_open_and_in_order(settings):
    store(settings, "vegetation_risk", pd.DataFrame({
        "date": [D3, D1, D2, D1], "circuit_id": ["c1", "c2", "c1", "c1"],
        "vegetation_score": [3.0, 2.0, 1.0, 0.0]}))
    with read_warehouse(settings) as con:
        rows = score_reads.day_slice(con, "vegetation_risk", D1, D3)
    assert list(zip(rows["date"], rows["circuit_id"])) == [(D1, "c1"), (D1, "c2"), (D2, "c1")]


def test_outages_are_read_by_cause(settings):
    store(settings, "outage_events", pd.DataFrame({
        "outage_id": ["o1", "o2", "o3", "o4"], "circuit_id": ["c1", "c1", "c2", "c2"],
        "start_ts": [D1, D2, D2, D3], "cause": ["vegetation", "equipment", "animal", "weather"]}))
    with read_warehouse(settings) as con:
        environmental = score_reads.environmental_outages(con, D1, D3)
        equipment = score_reads.equipment_outages(con, D1, D3)
    assert sorted(environmental["outage_id"]) == ["o1", "o3"]
    assert list(equipment["outage_id"]) == ["o2"]


def test_the_forecast_peak_carries_its_hours_interval(settings):
    with open_warehouse(settings.resolve()).connect() as con:
        assert score_reads.forecast_peaks(con, D1, D3).empty  # no forecast stored yet
    store(settings, "load_forecast", pd.DataFrame({
        "issue_date": [D1.date()] * 3 + [D3.date()], "circuit_id": ["c1"] * 4,
        "target_ts": [D2, D2 + pd.Timedelta(hours=1), D2 + pd.Timedelta(hours=2), D3],
        "load_mw": [5.0, 9.0, 7.0, 20.0], "lower_mw": [4.0, 8.0, 6.0, 19.0],
        "upper_mw": [6.0, 10.0, 8.0, 21.0]}))
    with read_warehouse(settings) as con:
        peaks = score_reads.forecast_peaks(con, D1.date(), D3.date())
    assert peaks[["circuit_id", "forecast_peak_mw", "lower_mw", "upper_mw"]].values.tolist() == [
        ["c1", 9.0, 8.0, 10.0]]


def test_the_top_of_a_list_and_the_table_sizes(settings):
    store(settings, "prioritized_circuits", pd.DataFrame({
        "date": [D1, D1, D1, D2], "rank": [2, 1, 3, 1], "circuit_id": ["c2", "c1", "c3", "c1"],
        **{c: [1.0, 2.0, 3.0, 4.0] for c in ("priority_score", "outage_score",
                                              "transformer_score", "vegetation_score",
                                              "loading_score")},
        "customers": [10, 20, 30, 40], "reason": ["r"] * 4, "outage_model_version": ["o"] * 4,
        "maintenance_model_version": ["m"] * 4}))
    with read_warehouse(settings) as con:
        top = score_reads.top_of_list(con, D1.date(), 2)
        counts = score_reads.table_counts(con)
    assert [(r[0], r[1]) for r in top] == [(1, "c1"), (2, "c2")]
    assert top[0][7:] == (20, "r", "o", "m")
    assert counts == {"prioritized_circuits": 4}


def test_storm_reads_take_the_storm_and_the_latest_day(settings):
    with open_warehouse(settings.resolve()).connect() as con:  # nothing stored yet: empty frames
        assert storm_reads.storm_alerts(con, "s1").empty
        assert storm_reads.circuits(con).empty
        assert storm_reads.latest_circuit_state(con).empty
        assert storm_reads.storm_outage_risk(con, "s1").empty
        assert storm_reads.latest_transformer_risk(con).empty
    store(settings, "storm_alerts", pd.DataFrame({"storm_id": ["s1", "s2"], "event": ["a", "b"]}))
    store(settings, "circuit_exposure_features", pd.DataFrame({
        "circuit_id": ["c1", "c2", "c1"], "date": [D1, D2, D2], "peak_gust_mph": [1.0, 2.0, 3.0]}))
    store(settings, "transformer_risk", pd.DataFrame({
        "transformer_id": ["t1", "t1"], "date": [D2, D1], "p_fail_30d": [0.2, 0.1]}))
    store(settings, "outage_events", pd.DataFrame({
        "outage_id": ["o1", "o2", "o3"], "start_ts": [D1, D2, D3],
        "cause": ["weather", "weather", "equipment"]}))
    with read_warehouse(settings) as con:
        assert list(storm_reads.storm_alerts(con, "s2")["event"]) == ["b"]
        state = storm_reads.latest_circuit_state(con)
        assert sorted(state["circuit_id"]) == ["c1", "c2"] and set(state["date"]) == {D2}
        assert list(storm_reads.latest_transformer_risk(con)["p_fail_30d"]) == [0.2]
        assert list(storm_reads.environmental_outages_since(con, D2)["outage_id"]) == ["o2"]


def test_a_transformers_references_are_its_normal_days_since_its_last_failure(settings):
    """The month's usual and the last RECENT_DAYS normal days' thermal index: days a check
    flagged and days before a failure are left out, and the recent ones must be within
    RECENT_MAX_AGE_DAYS."""
    day = pd.Timestamp("2025-05-20")
    rows = []
    for k in range(1, 20):  # 2025-05-01 .. 2025-05-19
        d = day - pd.Timedelta(days=20 - k)
        # T1: usual 30 °C, then a developing fault lifts it to 40 °C; one day judged not ok
        index = 30.0 if k <= 12 else 40.0
        rows.append(("T1", d, 25.0 if k == 19 else index, k != 19))
        # T2: failed on 2025-05-10; 50 °C before, 35 °C after
        rows.append(("T2", d, 50.0 if k < 10 else 35.0, True))
        # T3: its last normal days are more than a week old
        rows.append(("T3", d, 30.0, k <= 9))
    signals = pd.DataFrame(rows, columns=["device_id", "date", "thermal_index_c", "thermal_ok"])
    signals = signals.assign(device_type="transformer", circuit_id="C1", hours=24,
                             oil_spread_c=5.0, load_spread_rel=0.5, balance_ok=False,
                             balance_ratio=None, balance_sd=None)
    store(settings, "telemetry_signals", signals)
    store(settings, "transformer_failures", pd.DataFrame({
        "transformer_id": ["T2"], "failed_at": [pd.Timestamp("2025-05-10 06:00")],
        "failure_mode": ["thermal"]}))
    with read_warehouse(settings) as con:
        tx, _ = integrity_reads.references(con, day.date())
    ref = tx.set_index("device_id")
    assert ref.loc["T1", "thermal_reference_c"] == 30.0  # 12 days of 30, 6 of 40
    assert ref.loc["T1", "thermal_recent_c"] == 40.0  # the ones before the day not ok
    assert ref.loc["T1", "recent_days"] == RECENT_DAYS
    assert ref.loc["T2", "thermal_reference_c"] == 35.0  # nothing before its failure
    assert ref.loc["T2", "reference_days"] == 9  # nor the day it failed
    assert ref.loc["T2", "thermal_recent_c"] == 35.0
    assert ref.loc["T3", "reference_days"] == 9 and ref.loc["T3", "recent_days"] == 0
    assert pd.isna(ref.loc["T3", "thermal_recent_c"])


def test_of_equally_close_earlier_days_a_transformers_repeat_names_the_latest(settings):
    """T1's readings sit as close to two earlier days (3 and 5 days back) as to each other;
    T2's repeat exactly one day 6 back. Whatever order the readings are stored or summed in, the
    repeat names the latest of the closest days."""
    day = pd.Timestamp("2025-05-20")
    hours = pd.date_range(day, periods=24, freq="h")
    load = pd.Series([40.0 + 10 * (h % 12) for h in range(24)])
    oil = pd.Series([50.0 + h % 7 for h in range(24)])
    rows = []
    for back in (1, 2, 3, 4, 5, 6, 7, 0):  # stored out of order
        for unit in ("T1", "T2"):
            if unit == "T1":
                near = back in (3, 5)
                l, o = (load + 4, oil + 1) if near else (load * 0.5, oil + 9)
            else:
                l, o = (load, oil) if back == 6 else (load + 20, oil + 5)
            if back == 0:
                l, o = load, oil
            rows.append(pd.DataFrame({"transformer_id": unit,
                                      "timestamp": hours - pd.Timedelta(days=back),
                                      "load_pct": l, "oil_temp_c": o, "ambient_temp_c": 10.0}))
    store(settings, "transformer_telemetry", pd.concat(rows, ignore_index=True))
    store(settings, "transformers", pd.DataFrame({"transformer_id": ["T1", "T2"],
                                                  "circuit_id": ["C1", "C1"]}))
    store(settings, "circuits", pd.DataFrame({"circuit_id": ["C1"], "zone": ["Z"]}))
    store(settings, "weather_observations", pd.DataFrame({
        "zone": ["Z"], "timestamp": [day], "temp_c": [10.0]}))
    with read_warehouse(settings) as con:
        found = integrity_reads.transformer_day(con, day.date()).set_index("transformer_id")
    assert found.loc["T1", "repeat_all_day"] == day - pd.Timedelta(days=3)
    assert found.loc["T1", "repeat_all"] > 0
    assert found.loc["T2", "repeat_all_day"] == day - pd.Timedelta(days=6)
    assert found.loc["T2", "repeat_all"] == 0
