"""Scale-out mode is one setting away, and what it changes in the definitions (read in a child
process: the mode is read when the definitions load)."""

import json
import subprocess
import sys
from datetime import date

import pytest

from gridassets.definitions import defs
from gridassets.scaleout import backfill
from gridassets.scaleout.executor import celery_config
from gridassets.settings import Settings, SettingsError
from gridassets_tests.conftest import REPO_ROOT

BROKER = "redis://127.0.0.1:6399/0"


def test_scaleout_needs_a_broker_and_takes_the_delta_warehouse():
    with pytest.raises(SettingsError, match="GRIDASSETS_CELERY_BROKER"):
        Settings.from_env({"GRIDASSETS_MODE": "scaleout"})
    with pytest.raises(SettingsError, match="GRIDASSETS_WAREHOUSE=delta"):
        Settings.from_env({"GRIDASSETS_MODE": "scaleout", "GRIDASSETS_WAREHOUSE": "duckdb",
                           "GRIDASSETS_CELERY_BROKER": BROKER})
    with pytest.raises(SettingsError, match="GRIDASSETS_MODE must be one of"):
        Settings.from_env({"GRIDASSETS_MODE": "cluster"})
    s = Settings.from_env({"GRIDASSETS_MODE": "scaleout", "GRIDASSETS_CELERY_BROKER": BROKER})
    assert (s.backend, s.celery_results, s.backfill_days) == ("delta", BROKER, 4)
    assert Settings.from_env({}).mode == "embedded"
    with pytest.raises(SettingsError, match="GRIDASSETS_CELERY_REDELIVER_S"):
        Settings.from_env({"GRIDASSETS_CELERY_REDELIVER_S": "1"})


def test_a_step_shares_its_work_among_the_cores_embedded_and_runs_alone_in_scaleout():
    import os
    assert Settings.from_env({}).processes == len(os.sched_getaffinity(0))
    assert Settings.from_env({"GRIDASSETS_MODE": "scaleout",
                              "GRIDASSETS_CELERY_BROKER": BROKER}).processes == 1
    assert Settings.from_env({"GRIDASSETS_STEP_PROCESSES": "3"}).processes == 3
    with pytest.raises(SettingsError, match="GRIDASSETS_STEP_PROCESSES must be at least 1"):
        Settings.from_env({"GRIDASSETS_STEP_PROCESSES": "0"})
    with pytest.raises(SettingsError, match="GRIDASSETS_STEP_PROCESSES must be an integer"):
        Settings.from_env({"GRIDASSETS_STEP_PROCESSES": "two"})


def test_a_task_is_acknowledged_when_done_and_handed_back_when_its_worker_dies():
    config = celery_config(Settings(celery_redeliver_s=120))
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert config["broker_transport_options"]["visibility_timeout"] == 120


PROBE = """
import json
import dagster as dg
from gridassets.definitions import defs
g = defs.resolve_asset_graph()
repo = defs.get_repository_def()
node = lambda k: g.get(dg.AssetKey(k))
print(json.dumps({
    "executor": repo.get_job("daily_graph").executor_def.name,
    "raw_policy": str(node("feeder_load").backfill_policy),
    "model_policy": str(node("maintenance_model").backfill_policy),
    "forecast_subsettable": repo.assets_defs_by_key[dg.AssetKey("load_forecast")].can_subset,
    "op_queues": {k: repo.assets_defs_by_key[dg.AssetKey(k)].op.tags.get("dagster-celery/queue")
                  for k in ("storm_alerts", "storm_outage_risk", "load_forecast", "feeder_load")},
    "storm_order": [repo.assets_defs_by_key[dg.AssetKey(k)].op.tags["dagster-celery/priority"]
                    for k in ("storm_alerts", "storm_outage_risk", "storm_priority_circuits")],
    "storm_priority": repo.get_job("storm_job").tags.get("dagster/priority"),
}))
"""


def _definitions(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_mode_switches_executor_and_backfill_policy_and_nothing_else(monkeypatch):
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("GRIDASSETS_")}
    embedded = _definitions(base)
    scaled = _definitions({**base, "GRIDASSETS_MODE": "scaleout",
                           "GRIDASSETS_CELERY_BROKER": BROKER, "GRIDASSETS_BACKFILL_DAYS": "4"})
    assert embedded["executor"] == "in_process" and scaled["executor"] == "celery"
    assert "single_run" in embedded["raw_policy"]
    assert "multi_run" in scaled["raw_policy"] and "4" in scaled["raw_policy"]
    # The models' promotion runs week after week in one run either way.
    assert "single_run" in embedded["model_policy"] and "single_run" in scaled["model_policy"]
    assert embedded["forecast_subsettable"] and not scaled["forecast_subsettable"]
    for probe in (embedded, scaled):
        assert probe["op_queues"] == {"storm_alerts": "storms", "storm_outage_risk": "storms",
                                      "load_forecast": "forecast", "feeder_load": None}
        assert probe["storm_priority"] == "10"
        # Redis hands out the lowest number first: a storm's later steps before new runs' first.
        assert probe["storm_order"] == ["3", "2", "1"]


def test_a_backfill_asks_for_the_daily_graph_over_its_days_and_the_models_of_its_weeks():
    subset = backfill.target(defs, date(2025, 7, 5), date(2025, 7, 8))  # Sat..Tue
    by_key = {k.to_user_string(): sorted(s.get_partition_keys())
              for k, s in subset.partitions_subsets_by_asset_key.items()}
    days = ["2025-07-05", "2025-07-06", "2025-07-07", "2025-07-08"]
    assert by_key["feeder_load"] == days and by_key["prioritized_circuits"] == days
    assert by_key["load_forecast_models"] == days
    assert by_key["maintenance_model"] == ["2025-06-30", "2025-07-07"]
    assert "storm_alerts" not in by_key and "circuits" not in by_key
    raw_only = backfill.target(defs, date(2025, 7, 5), date(2025, 7, 5), models=False,
                               groups=("raw",))
    assert {k.to_user_string() for k in raw_only.partitions_subsets_by_asset_key} == {
        "transformer_telemetry", "feeder_load", "weather_observations", "outage_events",
        "transformer_failures", "weather_forecasts"}
