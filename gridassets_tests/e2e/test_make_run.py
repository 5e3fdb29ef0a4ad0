"""`python -m gridassets run` (what `make run` calls) builds the whole daily graph and prints the list."""

import duckdb
import pandas as pd
import pytest

from gridassets_tests.conftest import TEST_FLEET, TEST_WINDOW

pytestmark = pytest.mark.e2e


def test_run_prints_the_list_and_where_outputs_went(demo_data):
    data, stdout = demo_data
    end = TEST_WINDOW[1]
    assert f"Prioritized circuits for {end}" in stdout
    assert "models: outage outage-" in stdout and "maintenance maintenance-" in stdout
    assert str(data / "warehouse.duckdb") in stdout
    assert "prioritized_circuits/<date>.csv" in stdout

    csv = pd.read_csv(data / "outputs" / "prioritized_circuits" / f"{end}.csv")
    assert list(csv["rank"]) == list(range(1, TEST_FLEET["n_circuits"] + 1))
    assert csv["priority_score"].is_monotonic_decreasing
    assert csv["reason"].str.len().min() > 20
    # the components add up to the score (each rounded to a tenth of a customer-minute)
    assert (csv["priority_score"] - csv[["outage_score", "transformer_score", "loading_score"]]
            .sum(axis=1)).abs().max() <= 0.2
    # The list printed first is the CSV's first row.
    first = csv.iloc[0]
    assert f"   1  {first['circuit_id']}" in stdout


def test_every_score_row_carries_its_model_version(demo_data):
    data, _ = demo_data
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        for table in ("transformer_risk", "circuit_outage_risk"):
            missing = con.execute(
                f"select count(*) from scores.{table} where model_version is null").fetchall()
            assert missing == [(0,)], table
        served = con.execute(
            "select distinct r.model_version, m.status from scores.transformer_risk r "
            "join models.maintenance_model m on m.version = r.model_version").fetchall()
    assert served and all(status == "promoted" for _, status in served)
