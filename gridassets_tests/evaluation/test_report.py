"""`make evaluate`'s figures read from a warehouse built by `python -m gridassets run`."""

import subprocess
import sys
from datetime import timedelta

import duckdb
import pytest

from gridassets.evaluation import integration, load_forecasts, report
from gridassets_tests.conftest import TEST_FLEET

pytestmark = pytest.mark.e2e


def test_stored_forecasts_are_scored_against_what_happened(demo_data):
    data, _ = demo_data
    db = data / "warehouse.duckdb"
    s = report.stored_forecasts(db)
    with duckdb.connect(str(db), read_only=True) as con:
        origins, circuits = con.execute(
            "select count(distinct issue_date), count(distinct circuit_id) from scores.load_forecast "
            "where target_ts <= (select max(timestamp) from raw.feeder_load)").fetchall()[0]
        # the same MAPE computed independently, on the hours with a positive actual
        # (the report also needs both naive baselines, known for every hour here)
        mape, hours = con.execute("""
            select 100 * avg(abs(f.load_mw - l.load_mw) / l.load_mw), count(*)
            from scores.load_forecast f
            join raw.feeder_load l on l.circuit_id = f.circuit_id and l.timestamp = f.target_ts
            where l.load_mw > 0""").fetchall()[0]
    assert (s["origins"], s["circuits"]) == (origins, circuits)
    assert s["hours"] == hours == origins * circuits * 24
    assert s["mape"] == pytest.approx(mape, rel=1e-9)
    assert s["mape"] < s["mape_prev_day"]
    assert abs(s["coverage"] - 100 * s["interval_level"]) <= 10
    assert "Stored day-ahead load forecasts" in report.format_stored(s)


def test_integration_lift_ranks_every_model_and_random(demo_data):
    data, _ = demo_data
    ev = integration.evaluate(data / "warehouse.duckdb", data / "models")
    lift = ev.lift.set_index("ranking")
    assert {"integrated list", "outage model alone (probability)",
            "maintenance model alone (worst failure probability)", "random"} <= set(lift.index)
    assert ev.lift_days > 0 and lift.loc["integrated list", "days"] == ev.lift_days
    assert 0.0 <= lift.loc["integrated list", "captured"] <= 1.0
    # random picks of 10 % of the circuits capture about 10 % of the impact
    assert 0.03 < lift.loc["random", "captured"] < 0.25
    assert ev.outage["rows"] > 0 and set(ev.registry["model_name"]) == {"maintenance_model",
                                                                         "outage_model"}
    # a fleet this small gets told that its top 10 % is a handful of circuits
    assert ev.circuits == TEST_FLEET["n_circuits"]
    top = max(1, round(0.1 * ev.circuits))
    assert f"the top 10% is {top} circuit(s) of {ev.circuits}" in integration.format_report(ev)


def test_evaluating_a_missing_warehouse_says_so_and_creates_nothing(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    with pytest.raises(ValueError, match="does not exist: build it first"):
        integration.evaluate(db, tmp_path / "models")
    assert not db.exists()


def test_the_oracle_and_the_forecasts_timing_are_reported(demo_data):
    from gridassets.domain.fleet import FleetConfig, FleetSimulator

    data, _ = demo_data
    sim = FleetSimulator(FleetConfig(**TEST_FLEET))
    ev = integration.evaluate(data / "warehouse.duckdb", data / "models", sim)
    lift = ev.lift.set_index("ranking")
    # (with a top of one circuit over a few lists, the oracle need not beat random here; it is
    # 40.7 % against 10 % on the large fleet)
    oracle = lift.loc["oracle: the simulator's true expected customer-minutes"]
    assert 0.0 <= oracle["captured"] <= 1.0 and oracle["days"] == ev.lift_days
    for name in ("integrated list, climatology instead of the forecast", "customers alone",
                 "outage probability x customers", "expected transformer failures x customers"):
        assert 0.0 <= lift.loc[name, "captured"] <= 1.0, name
    assert integration.evaluate(data / "warehouse.duckdb", data / "models").best_single()[0] \
        != "customers alone"


def test_the_forecast_temperature_gain_and_the_intraday_refresh_are_replayed(demo_data):
    data, _ = demo_data
    db = data / "warehouse.duckdb"
    gain = load_forecasts.forecast_temperature_gain(db, n_origins=3)
    with duckdb.connect(str(db), read_only=True) as con:
        last_load = con.execute("select max(timestamp) from raw.feeder_load").fetchall()[0][0]
    # the last origin is the last day whose next day's load is stored
    assert gain["origins"][1] == str((last_load - timedelta(days=1)).date())
    assert gain["n_origins"] == 3 and gain["circuits"] == TEST_FLEET["n_circuits"]
    with_, without = (gain["mape_with_forecast_temperature"],
                      gain["mape_without_forecast_temperature"])
    assert 0 < with_ < 20 and 0 < without < 20
    assert with_ != without  # the forecast temperature reached the models

    intra = load_forecasts.intraday_accuracy(db, days=1, every_h=6)
    assert intra["n_cutoffs"] == 4 and intra["circuits"] == TEST_FLEET["n_circuits"]
    by = {r["horizon_h"]: r for r in intra["by_horizon"]}
    assert set(by) == set(range(1, 25))
    assert by[1]["n"] == 4 * TEST_FLEET["n_circuits"]
    assert by[1]["mape_intraday"] < by[1]["mape_prev_day"]
    text = load_forecasts.format_report(gain, intra)
    assert "with forecast temperature" in text and "Intraday refresh by horizon" in text


def test_the_evaluation_only_reads_the_warehouse(demo_data):
    """Another process reading the warehouse (a report, the UI) does not stop `make evaluate`:
    its reads take no write lock."""
    data, _ = demo_data
    db = data / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\n"
         f"con = duckdb.connect({str(db)!r}, read_only=True)\n"
         "print('open', flush=True)\ntime.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        assert report.data_span(db) is not None
        assert report.stored_forecasts(db) is not None
        assert len(integration.evaluate(db, data / "models").lift)
        assert load_forecasts.intraday_accuracy(db, days=1) is not None
    finally:
        holder.kill()
        holder.wait()
