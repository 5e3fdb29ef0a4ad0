"""`python -m gridassets bench --only-long-growth` (growth over years, `growth_ratio_2y_1y`) on a
tiny fleet and two short histories. In a file of its own, so that a second test worker can run it
beside the main bench test."""

import json
import subprocess
import sys
from datetime import date

import duckdb
import pytest

from gridassets_tests.conftest import REPO_ROOT, SMALL_FLEET, subprocess_env
from gridassets_tests.test_bench import BENCH_TIMEOUT_S


@pytest.mark.e2e
@pytest.mark.timeout(BENCH_TIMEOUT_S + 120)
def test_growth_over_years_compares_two_days_each_with_all_its_history(tmp_path):
    """`--only-long-growth` (growth_ratio_2y_1y) on a tiny fleet and two short histories: each
    point is measured on a warehouse holding every raw day before it and none after, and the ratio,
    its days and its section of the page are written."""
    data = tmp_path / "data"
    page = tmp_path / "results.md"
    page.write_text((REPO_ROOT / "docs" / "results.md").read_text())
    done = subprocess.run(
        [sys.executable, "-m", "gridassets", "bench", "--scale", "demo",
         "--circuits", str(SMALL_FLEET["n_circuits"]),
         "--transformers", str(SMALL_FLEET["n_transformers"]),
         "--only-long-growth", "--long-growth", "3,5", "--repeat", "1",
         "--forecast-warmup", "1", "--backend", "duckdb", "--docs", str(page)],
        cwd=REPO_ROOT, env=subprocess_env(data),
        capture_output=True, text=True, timeout=BENCH_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((data / "outputs" / "bench-years.json").read_text())
    g = result["growth_years"]
    assert g["history_days"] == [3, 5] and g["days"] == ["2024-01-04", "2024-01-06"]
    assert result["growth_ratio_2y_1y"] == g["ratio"] > 0
    assert result["growth_ratio_2y_1y"] == round(g["seconds"][1] / g["seconds"][0], 3)
    assert {"load_forecast", "telemetry_signals", "transformer_telemetry"} <= set(g["steps"])
    assert result["targets"]["growth_ratio_2y_1y"]["target"] == "<= 1.05"
    assert "assets" not in result  # nothing else was measured
    years = data / "bench" / "demo" / "duckdb" / "years"
    # each point's warehouse: every day of raw telemetry up to its measured day, none after
    for folder, last in ((years / "history-3d" / "data", "2024-01-04"),
                         (years / "data", "2024-01-06")):
        with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as con:
            first_day, last_day, days = con.execute(
                "select min(timestamp)::date::varchar, max(timestamp)::date::varchar, "
                "count(distinct timestamp::date) from raw.transformer_telemetry").fetchone()
        assert (first_day, last_day) == ("2024-01-01", last)
        assert days == (date.fromisoformat(last) - date(2024, 1, 1)).days + 1
    text = page.read_text()
    section = text[text.index("<!-- bench:demo:years:start -->"):
                   text.index("<!-- bench:demo:years:end -->")]
    assert "growth_ratio_2y_1y" in section and "--only-long-growth" in section
    assert "not every window full" in section  # 3 days are far from the forecast's window
