"""A damaged warehouse fails a step at once: one attempt, no Dagster retry; the lock still waits."""

import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest

from gridassets import warehouse
from gridassets.defs.io_manager import WarehouseIOManager
from gridassets.defs.policies import TRANSIENT_RETRY
from gridassets.defs.resources import GridSettings
from gridassets_tests.storage.conftest import corrupt_mid_file, sha256, truncate_past_catalog

# About the DuckDB file itself (a corrupt or truncated file, its lock): one backend.
pytestmark = pytest.mark.duckdb_only


def reading_asset(path, retry_policy=TRANSIENT_RETRY):
    @dg.asset(name="big_total", retry_policy=retry_policy)
    def big_total() -> dg.MaterializeResult:
        with warehouse.connect(path) as con:
            total = con.execute("select sum(x) from raw.big").fetchall()[0][0]
        return dg.MaterializeResult(metadata={"total": total})

    return big_total


def attempts(result: dg.ExecuteInProcessResult) -> tuple[int, int]:
    """(retries requested, step failures) in the run's events."""
    kinds = [e.event_type for e in result.all_events]
    return kinds.count(dg.DagsterEventType.STEP_UP_FOR_RETRY), kinds.count(
        dg.DagsterEventType.STEP_FAILURE)


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    return failure.step_failure_data.error.to_string()


def test_a_corrupt_block_read_in_an_asset_fails_on_the_first_attempt(built):
    corrupt_mid_file(built)
    result = dg.materialize([reading_asset(built.path)], raise_on_error=False)
    assert not result.success
    assert attempts(result) == (0, 1)
    text = failure_text(result)
    assert "WarehouseCorruptError" in text and str(built.path) in text


def test_the_count_sees_retries_when_a_policy_asks_for_them(built):
    """The same step under an explicit RetryPolicy: what TRANSIENT_RETRY used to do."""
    corrupt_mid_file(built)
    warehouse.corrupt_marker(built.path).unlink(missing_ok=True)
    result = dg.materialize([reading_asset(built.path, dg.RetryPolicy(max_retries=2))],
                            raise_on_error=False)
    assert attempts(result) == (2, 1)


def test_an_io_manager_write_into_a_truncated_file_fails_once_and_writes_nothing(built):
    truncate_past_catalog(built)
    before = sha256(built.path)

    @dg.asset(name="circuits", metadata={"schema": "fleet"}, retry_policy=TRANSIENT_RETRY)
    def circuits() -> pd.DataFrame:
        return pd.DataFrame({"circuit_id": ["C1"], "zone": ["MTZ309"], "customers": [10]})

    settings = GridSettings(data_dir=str(built.path.parent), duckdb_path=str(built.path))
    result = dg.materialize([circuits], resources={"io_manager": WarehouseIOManager(
        settings=settings)}, raise_on_error=False)
    assert attempts(result) == (0, 1)
    assert "truncated" in failure_text(result) and str(built.path) in failure_text(result)
    assert sha256(built.path) == before


def test_a_held_lock_is_still_waited_for_inside_connect(built):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); time.sleep(1.5)", str(built.path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = dg.materialize([reading_asset(built.path)])
    finally:
        holder.wait(timeout=30)
    assert result.success and attempts(result) == (0, 0)
