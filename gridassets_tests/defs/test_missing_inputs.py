"""No output from missing input: a feature, score or list whose inputs for the day are absent
fails naming what to materialize first, and writes nothing."""

import dagster as dg
import pytest

from gridassets.definitions import defs
from gridassets.defs.fleet.assets import circuits, transformers
from gridassets_tests.conftest import read_warehouse

DAY = "2026-11-30"
ASSETS = {a.key.to_user_string(): a for a in defs.assets
          if isinstance(a, dg.AssetsDefinition) and len(a.keys) == 1}


@pytest.mark.parametrize("asset, first", [
    ("transformer_daily_stats", "no transformer_telemetry for 2026-11-30"),
    ("transformer_health_features", "no transformer_daily_stats for 2026-11-30"),
    ("circuit_exposure_features", "no weather_observations for 2026-11-30"),
    ("transformer_risk", "no transformer_health_features for 2026-11-30"),
    ("circuit_outage_risk", "no circuit_exposure_features for 2026-11-30"),
    ("vegetation_risk", "no circuit_outage_risk for 2026-11-30"),
    ("prioritized_circuits", "no circuit_outage_risk for 2026-11-30"),
    ("work_orders", "no transformer_risk for 2026-11-30"),
])
def test_an_output_without_its_inputs_fails_and_names_them(resources, settings, asset, first):
    assert dg.materialize([circuits, transformers], resources=resources).success
    result = dg.materialize([ASSETS[asset]], resources=resources, partition_key=DAY,
                            raise_on_error=False)
    assert not result.success
    [failure] = result.get_step_failure_events()  # not retried: waiting does not help
    message = failure.event_specific_data.error.message
    assert f"{asset} {DAY}: {first}: materialize" in message, message
    assert "Nothing was written" in message
    with read_warehouse(settings) as con:
        tables = {t for (t,) in con.execute(
            "select table_name from information_schema.tables").fetchall()}
    assert asset not in tables
    assert result.get_asset_materialization_events() == []


def test_the_list_names_every_missing_input(resources):
    assert dg.materialize([circuits, transformers], resources=resources).success
    result = dg.materialize([ASSETS["prioritized_circuits"]], resources=resources,
                            partition_key=DAY, raise_on_error=False)
    message = result.get_step_failure_events()[0].event_specific_data.error.message
    for table in ("circuit_outage_risk", "vegetation_risk", "transformer_risk", "load_forecast"):
        assert f"no {table} for {DAY}: materialize {table} for that day first" in message
