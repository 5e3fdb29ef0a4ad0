"""`python -m gridassets bench` (behind `make bench`) on a tiny fleet and a short history.

Timing targets belong to the benchmark itself; here we check that it runs end to end in its own
folder and writes a bench.json with the contract keys and sane values.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gridassets import bench_pandas
from gridassets_tests.conftest import REPO_ROOT, SMALL_FLEET, subprocess_env

RAW = ["transformer_telemetry", "feeder_load", "weather_observations", "outage_events",
       "transformer_failures"]
# About 5 minutes on an idle 2-core machine (many fresh processes on both backends); more beside
# another test worker.
BENCH_TIMEOUT_S = 1500
FEATURES = ["transformer_daily_stats", "transformer_health_features", "circuit_exposure_features"]


@pytest.mark.e2e
@pytest.mark.timeout(BENCH_TIMEOUT_S + 120)
def test_bench_writes_the_contract_keys(tmp_path):
    data = tmp_path / "data"
    env = subprocess_env(data)
    page = tmp_path / "results.md"
    shutil.copyfile(REPO_ROOT / "docs" / "results.md", page)
    before = (REPO_ROOT / "docs" / "results.md").read_text()
    out = subprocess.run(
        [sys.executable, "-m", "gridassets", "bench", "--scale", "demo",
         "--circuits", str(SMALL_FLEET["n_circuits"]),
         "--transformers", str(SMALL_FLEET["n_transformers"]),
         # No models (they need ~200 days): raw, features and forecasts of a short history.
         "--no-models", "--growth", "2,4", "--day", "2024-01-06", "--repeat", "1",
         "--forecast-warmup", "1",
         # `make bench` writes docs/results.md; the test writes a copy of it.
         "--docs", str(page)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S,
    )
    assert out.returncode == 0, f"{out.stdout[-3000:]}\n{out.stderr[-5000:]}"

    # Its section of the page, and only that, holds the printed table, headed by when, where and
    # how it was measured; the repository's page is untouched.
    start, end = "<!-- bench:demo:start -->", "<!-- bench:demo:end -->"
    text = page.read_text()
    section = text[text.index(start):text.index(end)]
    assert section.count("\nMeasured 20") == 1 and "UTC by `python -m gridassets bench" in section
    assert "--circuits 6" in section and "CPUs (" in section and "Python 3." in section
    assert "whole daily partition, in-process" in section and "the backends side by side" in section
    def outside(t):
        return t[:t.index(start)] + t[t.index(end):]
    assert outside(text) == outside(before)
    assert (REPO_ROOT / "docs" / "results.md").read_text() == before

    # The benchmark works in its own folder, one per backend, and writes bench.json under the
    # data folder.
    result = json.loads((data / "outputs" / "bench.json").read_text())
    assert (data / "bench" / "demo" / "duckdb" / "data" / "warehouse.duckdb").is_file()
    assert (data / "bench" / "demo" / "delta" / "data" / "lake" / "raw" / "feeder_load"
            / "_delta_log").is_dir()
    assert not (data / "warehouse.duckdb").exists() and not (data / "lake").exists()
    assert result["backend"] == "duckdb"
    assert set(result["backends"]) == {"duckdb", "delta"}
    delta = result["backends"]["delta"]
    assert set(delta["assets"]) == set(result["assets"])
    assert delta["assets"]["transformer_telemetry"]["rows"] == 24 * SMALL_FLEET["n_transformers"]
    assert delta["daily_graph_seconds"] > 0 and delta["peak_rss_mb"] > 50
    read = result["delta_read"]
    assert read["delta"]["day_rows"] == read["duckdb"]["day_rows"] == \
        24 * SMALL_FLEET["n_transformers"]
    assert read["delta"]["files"] > 0 and read["delta"]["connect_cold_s"] > 0
    assert "the backends side by side" in out.stdout

    for key in ("scale", "assets", "daily_graph_seconds", "peak_rss_mb", "incremental_ratio"):
        assert key in result, key
    assert result["scale"] == "demo"
    assets = result["assets"]
    assert set(RAW + FEATURES) <= set(assets)
    assert not any(a.get("group") == "scores" for a in assets.values())
    for name, a in assets.items():
        assert a["seconds"] > 0, name
        assert a["peak_memory_mb"] is None or 30 < a["peak_memory_mb"] <= result["peak_rss_mb"] + 1
    n = SMALL_FLEET["n_transformers"]
    assert assets["transformer_telemetry"]["rows"] == 24 * n
    assert assets["transformer_daily_stats"]["rows"] == n
    assert assets["transformer_health_features"]["rows"] == n

    steps = result["daily_graph"]["step_seconds"]
    assert 0 < steps <= result["daily_graph_seconds"] <= result["daily_graph"]["process_seconds"]
    assert 50 < result["peak_rss_mb"] < 8192
    assert result["incremental_ratio"] > 0
    assert result["growth"]["history_days"] == [2, 4, 5]
    assert result["growth"]["ratio_full"] > 0
    assert result["cli"]["seconds"] > 0 and result["cli"]["peak_rss_mb"] > 50

    versus = result["sql_vs_pandas"]
    assert versus["equal"], versus
    assert versus["max_abs_diff"] < 1e-6
    assert versus["health_features"]["rows"] == n
    assert versus["duckdb_seconds"] > 0 and versus["pandas_seconds"] > 0

    assert "incremental_ratio" in out.stdout and "transformer_telemetry" in out.stdout


def test_compare_reports_a_difference():
    left = pd.DataFrame({"k": ["a", "b"], "x": [1.0, np.nan], "y": ["u", "v"]})
    assert bench_pandas.compare(left, left.copy(), ["k"]).equal

    moved = left.assign(x=[1.5, np.nan])
    result = bench_pandas.compare(moved, left, ["k"])
    assert not result.equal and result.max_abs_diff == pytest.approx(0.5)
    assert any(p.startswith("x:") for p in result.problems)

    missing = left.assign(x=[1.0, 2.0])
    assert "x: missing in 1 row(s) on one side only" in bench_pandas.compare(missing, left, ["k"]).problems
    assert not bench_pandas.compare(left.iloc[:1], left, ["k"]).equal


def test_the_bulk_history_covers_exactly_what_the_measured_day_reads():
    """At large scale the history is only what partition D reads: a year and a week of circuit
    tables for the forecast, telemetry for the signals' references and the anomaly model's weeks,
    30 days of verdicts and features, the forecasts' warm-up; never before the first partition."""
    from datetime import date, timedelta

    from gridassets.bench import bulk_default_day
    from gridassets.bench_history import plan
    from gridassets.defs.forecasting.assets import CONFIG

    start = date(2024, 1, 1)
    day = bulk_default_day(start)
    assert day.weekday() == 2 and day - timedelta(days=CONFIG.window_days) >= start
    p = plan(start, day, forecast_warmup_days=2)
    assert p.circuit_first == day - timedelta(days=CONFIG.window_days)
    assert p.integrity_week == day - timedelta(days=2)  # D's Monday
    # the model of D's week learns on the 35 days before it; D's references are its 28 before
    assert p.signals_first == p.integrity_week - timedelta(days=35)
    assert p.telemetry_first == p.signals_first - timedelta(days=7)  # the repeats' 7 days
    assert p.features_first == day - timedelta(days=30)
    assert p.forecast_first == day - timedelta(days=2) and p.last == day - timedelta(days=1)
    early = plan(start, date(2024, 1, 20), forecast_warmup_days=28)
    assert early.circuit_first == early.telemetry_first == early.signals_first == start
    assert early.forecast_first == start
