"""The README's commands, run as a user runs them: `dagster asset materialize` and `python -m gridassets`."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from gridassets_tests.conftest import REPO_ROOT, SMALL_FLEET, subprocess_env

pytestmark = pytest.mark.e2e
DAGSTER = str(Path(sys.executable).with_name("dagster"))
RAW = ("transformer_telemetry,feeder_load,weather_observations,outage_events,transformer_failures,"
       "weather_forecasts")


def dagster(env, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "gridassets.definitions", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def count(db: Path, sql: str):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_materialize_one_partition_twice_keeps_the_row_count(tmp_path, dagster_home):
    env = subprocess_env(tmp_path / "data", dagster_home)
    db = tmp_path / "data" / "warehouse.duckdb"
    for _ in range(2):
        out = dagster(env, "--select", "transformer_telemetry", "--partition", "2025-06-01")
        assert out.returncode == 0, out.stderr[-3000:]
        assert count(db, "select count(*) from raw.transformer_telemetry") == [
            (SMALL_FLEET["n_transformers"] * 24,)
        ]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
    assert len(runs) == 2 and all(r.is_success for r in runs)


def test_partition_range_over_the_raw_assets_is_one_run(tmp_path, dagster_home):
    env = subprocess_env(tmp_path / "data", dagster_home)
    out = dagster(env, "--select", RAW, "--partition-range", "2025-06-01...2025-06-07")
    assert out.returncode == 0, out.stderr[-3000:]
    db = tmp_path / "data" / "warehouse.duckdb"
    days = count(db, "select count(distinct cast(timestamp as date)) from raw.feeder_load")
    assert days == [(7,)]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
    assert len(runs) == 1
    assert runs[0].tags["dagster/asset_partition_range_end"] == "2025-06-07"


def test_settings_errors_are_clear(tmp_path, dagster_home):
    env = subprocess_env(tmp_path / "data", dagster_home, GRIDASSETS_SOURCE="warehouse")
    out = dagster(env, "--select", "feeder_load", "--partition", "2025-06-01")
    assert out.returncode != 0
    assert "GRIDASSETS_SOURCE must be one of synthetic, landing; got 'warehouse'" in (
        out.stdout + out.stderr
    )


def test_a_list_from_nothing_fails_and_names_what_to_materialize(tmp_path, dagster_home):
    env = subprocess_env(tmp_path / "data", dagster_home)
    assert dagster(env, "--select", "circuits,transformers").returncode == 0
    out = dagster(env, "--select", "prioritized_circuits", "--partition", "2026-11-30")
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert ("prioritized_circuits 2026-11-30: no circuit_outage_risk for 2026-11-30: "
            "materialize circuit_outage_risk for that day first") in text
    db = tmp_path / "data" / "warehouse.duckdb"
    assert count(db, "select count(*) from information_schema.tables "
                     "where table_name = 'prioritized_circuits'") == [(0,)]
    assert not (tmp_path / "data" / "outputs" / "prioritized_circuits").exists()
